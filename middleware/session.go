package middleware

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// Session is one of our sessions as carried, sealed, in the session cookie.
// The guard hands a *Session to handlers through the request context (see
// [FromContext]); treat it as read-only there.
type Session struct {
	// ID is our random session id (22 base64url characters). It survives
	// renewal, reload and re-issue; only a new login makes a new one.
	ID string
	// Issuer and Subject identify the user (the ID token's iss and sub).
	Issuer  string
	Subject string
	// Tenant is the workspace the session belongs to; empty if the
	// application has none.
	Tenant string
	// IdPSession is the identity provider's session id (the ID token's
	// sid), empty when the provider sends none.
	IdPSession string
	// AuthTime is when the user last actively authenticated at the
	// provider (auth_time), zero if unknown.
	AuthTime time.Time
	// ACR is the authentication context class reference of that
	// authentication.
	ACR string
	// Data is opaque application data (roles, permissions) re-read by the
	// reload hook. Keep it small: every string of a session is at most
	// 2048 bytes, and the sealed cookie must fit, with its name, in the
	// 4096 bytes browsers keep; a session that would not is refused with
	// a [*CookieTooLargeError] rather than sealed.
	Data string
	// IssuedAt is when the session was created by a login.
	IssuedAt time.Time
	// AccessExpiry ends the short-lived access part; past it the session
	// must be renewed (see [Renewer]).
	AccessExpiry time.Time
	// AbsoluteExpiry ends the session whatever happens.
	AbsoluteExpiry time.Time
	// Epoch is the store epoch the session was issued under.
	Epoch string

	amr     string // space-separated
	gens    [numScopes]uint64
	reloads [numScopes]uint64
	// seq is the store's bump sequence number when the cookie was sealed:
	// a store answering with a smaller one under the same epoch has gone
	// back in time (see rollback.go).
	seq uint64
}

// AMR returns the authentication methods references (amr) of the
// authentication behind the session.
func (s *Session) AMR() []string {
	if s.amr == "" {
		return nil
	}
	return strings.Fields(s.amr)
}

// Generation returns the revocation generation the session recorded for
// the scope kind (global, tenant, subject, IdP session, session).
func (s *Session) Generation(k ScopeKind) uint64 {
	if i := int(k) - 1; i >= 0 && i < numScopes {
		return s.gens[i]
	}
	return 0
}

// scopes fills dst with the session's fence scopes in fixed positions; a
// position whose claim is empty gets the zero Scope and is not read.
func (s *Session) scopes(dst *[numScopes]Scope) {
	dst[0] = Scope{Kind: ScopeGlobal}
	dst[1], dst[2], dst[3] = Scope{}, Scope{}, Scope{}
	if s.Tenant != "" {
		dst[1] = Scope{Kind: ScopeTenant, ID: s.Tenant}
	}
	if s.Subject != "" && s.Issuer != "" {
		dst[2] = Scope{Kind: ScopeSubject, Issuer: s.Issuer, ID: s.Subject}
	}
	if s.IdPSession != "" && s.Issuer != "" {
		dst[3] = Scope{Kind: ScopeIdPSession, Issuer: s.Issuer, ID: s.IdPSession}
	}
	dst[4] = Scope{Kind: ScopeSession, ID: s.ID}
}

// Claims are the facts about a login that [Guard.Issue] turns into a
// session. Only Subject is required.
type Claims struct {
	Issuer     string
	Subject    string
	Tenant     string
	IdPSession string
	AuthTime   time.Time
	ACR        string
	AMR        []string
	Data       string
	// TokenIssuedAt is the iat of the ID token behind the login, if any. A
	// login whose token predates a fence on its scopes is refused: it was
	// minted before the revocation.
	TokenIssuedAt time.Time
}

// newSessionID returns 16 random bytes as base64url, redrawn until the id
// starts with a letter or digit: ids are typed into command lines and
// searched in logs, where a leading '-' reads as a flag. (This costs less
// than 0.05 bits of the 128.)
func newSessionID() string {
	var b [16]byte
	for {
		_, _ = rand.Read(b[:])
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if id[0] != '-' && id[0] != '_' {
			return id
		}
	}
}

// Payload encoding, before sealing:
//
//	version(1)
//	9 strings, each uvarint length + bytes: ID, Issuer, Subject, Tenant,
//	  IdPSession, ACR, AMR (space-separated), Data, Epoch
//	4 times as uvarint Unix seconds (0 = zero): IssuedAt, AuthTime,
//	  AccessExpiry, AbsoluteExpiry
//	5 revocation generations, 5 reload generations, uvarint each
//	the store's bump sequence number, uvarint (version 2 only)
//
// Binary and positional to stay compact: a typical session seals to about
// 400 bytes of cookie text. Version 1 payloads (no sequence number) still
// open, with sequence number 0.
const payloadVersion = 2

// maxStringField bounds each string in a payload; the cookie limit bounds
// the total.
const maxStringField = 2048

var errPayload = errors.New("sessionfence: session payload malformed")

// payloadFields names the payload's strings, in their order, for errors.
var payloadFields = [...]string{"ID", "Issuer", "Subject", "Tenant", "IdPSession", "ACR", "AMR", "Data", "Epoch"}

// fieldValues returns the payload's strings in the order of payloadFields.
func (s *Session) fieldValues() [len(payloadFields)]string {
	return [...]string{s.ID, s.Issuer, s.Subject, s.Tenant, s.IdPSession, s.ACR, s.amr, s.Data, s.Epoch}
}

// checkFields returns a [*CookieTooLargeError] for the first string of s
// longer than a payload may carry (decodePayload would refuse it).
func (s *Session) checkFields() error {
	for i, v := range s.fieldValues() {
		if len(v) > maxStringField {
			return &CookieTooLargeError{Field: payloadFields[i], Size: len(v), Limit: maxStringField}
		}
	}
	return nil
}

func (s *Session) appendPayload(b []byte) []byte {
	b = append(b, payloadVersion)
	for _, v := range s.fieldValues() {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	for _, t := range [...]time.Time{s.IssuedAt, s.AuthTime, s.AccessExpiry, s.AbsoluteExpiry} {
		b = binary.AppendUvarint(b, unixSec(t))
	}
	for _, g := range s.gens {
		b = binary.AppendUvarint(b, g)
	}
	for _, g := range s.reloads {
		b = binary.AppendUvarint(b, g)
	}
	return binary.AppendUvarint(b, s.seq)
}

// decodePayload parses p into s. All strings share the memory of one copy
// of p, so decoding costs a single allocation.
func (s *Session) decodePayload(p []byte) error {
	if len(p) < 1 || (p[0] != payloadVersion && p[0] != 1) {
		return errPayload
	}
	str := string(p[1:])
	off := 0
	next := func() (uint64, bool) {
		v, n := uvarint(str[off:])
		if n <= 0 {
			return 0, false
		}
		off += n
		return v, true
	}
	var fields [len(payloadFields)]string
	for i := range fields {
		l, ok := next()
		if !ok || l > maxStringField || l > uint64(len(str)-off) {
			return errPayload
		}
		fields[i] = str[off : off+int(l)]
		off += int(l)
	}
	var times [4]time.Time
	for i := range times {
		v, ok := next()
		if !ok || v > maxUnixSec {
			return errPayload
		}
		times[i] = fromSec(v)
	}
	for i := range s.gens {
		v, ok := next()
		if !ok {
			return errPayload
		}
		s.gens[i] = v
	}
	for i := range s.reloads {
		v, ok := next()
		if !ok {
			return errPayload
		}
		s.reloads[i] = v
	}
	s.seq = 0
	if p[0] == payloadVersion {
		v, ok := next()
		if !ok {
			return errPayload
		}
		s.seq = v
	}
	if off != len(str) || fields[0] == "" {
		return errPayload
	}
	s.ID, s.Issuer, s.Subject, s.Tenant, s.IdPSession = fields[0], fields[1], fields[2], fields[3], fields[4]
	s.ACR, s.amr, s.Data, s.Epoch = fields[5], fields[6], fields[7], fields[8]
	s.IssuedAt, s.AuthTime, s.AccessExpiry, s.AbsoluteExpiry = times[0], times[1], times[2], times[3]
	return nil
}

// maxUnixSec keeps decoded times in a range time.Time represents exactly.
const maxUnixSec = 1 << 40

func unixSec(t time.Time) uint64 {
	if t.IsZero() || t.Unix() <= 0 {
		return 0
	}
	return uint64(t.Unix())
}

func fromSec(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(int64(v), 0).UTC()
}

// uvarint decodes an unsigned varint from the front of s, like
// binary.Uvarint but over a string; n <= 0 means malformed or truncated.
func uvarint(s string) (v uint64, n int) {
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -1 // overflow
			}
			if c == 0 && i > 0 {
				return 0, -1 // non-minimal encoding: one value, one form
			}
			return v | uint64(c)<<shift, i + 1
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}
