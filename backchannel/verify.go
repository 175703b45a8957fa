package backchannel

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"

	"github.com/sessionfence/sessionfence/middleware"
)

// LogoutEvent is the member of the events claim that makes a JWT a logout
// token (Back-Channel Logout 1.0 §2.4).
const LogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Event describes one validated logout token and, once applied, what it
// revoked. It is passed to Config.OnLogout and returned by
// [Receiver.Logout].
type Event struct {
	// Issuer, Subject, SID and JTI are the token's iss, sub, sid and jti.
	// Subject or SID may be empty, not both.
	Issuer  string
	Subject string
	SID     string
	JTI     string
	// IssuedAt is iat; Expiry is exp (zero when the token had none and
	// Config.InsecureAllowMissingExp let it through).
	IssuedAt time.Time
	Expiry   time.Time
	// Scopes are the fences bumped for this token, in order: the IdP
	// session (when sid is present), then the subject (when sid is absent,
	// or always with Config.EscalateToSubject). Empty for [Receiver.Verify]
	// and for replays.
	Scopes []middleware.Scope
}

// Verify validates a logout token as Back-Channel Logout 1.0 §2.6
// requires, plus the checks listed in docs/backchannel.md (typ, iat
// freshness, event value, azp), and returns what it announces. It does not
// check replays and changes nothing: use [Receiver.Logout] or the handler
// to act on a token.
//
// Errors: an [*InvalidTokenError] (wrapping [ErrInvalidToken]) when the
// token is refused, or an [*UnavailableError] (wrapping
// [ErrKeysUnavailable]) when the issuer's keys could not be fetched.
func (r *Receiver) Verify(ctx context.Context, raw string) (Event, error) {
	e, err := r.verify(ctx, raw)
	if err != nil {
		return Event{}, err
	}
	return e, nil
}

// verify is Verify, but on failure it also returns what it read before
// refusing (unverified, for the log record only).
//
// Order: structure, header, then every claim check, and the signature
// last. All must pass, so the order changes no verdict; checking the
// claims first means only a token that is valid in every other respect
// (our issuer, our audience, fresh, a logout event…) can make us fetch the
// provider's keys, which keeps forged junk from driving key refreshes.
// Nothing from the token is acted upon before the signature is verified:
// on failure the partial Event only feeds the log record.
func (r *Receiver) verify(ctx context.Context, raw string) (Event, error) {
	var e Event
	switch strings.Count(raw, ".") {
	case 2:
	case 4:
		// A JWE in compact form has five parts. Decryption is not
		// implemented (see docs/backchannel.md), so say so plainly rather
		// than "malformed".
		return e, invalid(codeEncrypted, "encrypted logout tokens (JWE) are not supported; have the provider send signed tokens")
	default:
		return e, invalid(codeMalformed, "the logout token is not a compact JWS")
	}
	// The union of every issuer's allow-list: go-jose refuses other algs
	// (above all "none") while parsing. The issuer's own list is checked
	// once iss is known.
	jws, err := jose.ParseSignedCompact(raw, r.algs)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return e, invalid(codeAlg, "the logout token's signature algorithm is not allowed")
		}
		return e, invalid(codeMalformed, "the logout token is not a valid JWS")
	}
	if len(jws.Signatures) != 1 {
		return e, invalid(codeMalformed, "the logout token must carry exactly one signature")
	}
	h := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(h.Algorithm)
	if !r.typeAllowed(h.ExtraHeaders[jose.HeaderType]) {
		return e, invalid(codeTyp, "the logout token's typ header is not allowed")
	}

	// go-jose's JSON decoder matches member names case-sensitively (the
	// standard library would read "ISS" as iss) and refuses duplicate
	// members (RFC 7519 §4 allows refusing them; picking one silently is
	// how parsers end up disagreeing about a token).
	payload := bytes.TrimLeft(jws.UnsafePayloadWithoutVerification(), " \t\r\n")
	var c rawClaims
	if len(payload) == 0 || payload[0] != '{' || json.Unmarshal(payload, &c) != nil {
		return e, invalid(codeMalformed, "the logout token's claims are not a JSON object with unique members")
	}
	var ok bool
	if e.Issuer, ok = claimString(c.Iss); !ok {
		return e, badClaim("iss")
	}
	if e.JTI, ok = claimString(c.JTI); !ok {
		return e, badClaim("jti")
	}
	if e.Subject, ok = claimString(c.Sub); !ok {
		return e, badClaim("sub")
	}
	if e.SID, ok = claimString(c.SID); !ok {
		return e, badClaim("sid")
	}
	if e.Issuer == "" {
		return e, invalid(codeIssMissing, "the logout token has no iss claim")
	}
	is := r.issuers[e.Issuer]
	if is == nil {
		return e, invalid(codeIssuer, "the logout token's issuer is not accepted here")
	}
	if !is.allows(alg) {
		return e, invalid(codeAlg, "the logout token's signature algorithm is not allowed for its issuer")
	}
	if err := checkAudience(&c, is.clientID); err != nil {
		return e, err
	}
	if err := r.checkTimes(&c, &e); err != nil {
		return e, err
	}
	if e.JTI == "" {
		return e, invalid(codeJTIMissing, "the logout token has no jti claim")
	}
	if err := checkEvent(c.Events); err != nil {
		return e, err
	}
	// A nonce makes the token unusable as an ID token in a forged
	// authentication response (§2.4): its mere presence, null included,
	// is refused.
	if c.Nonce != nil {
		return e, invalid(codeNonce, "a logout token must not contain a nonce claim")
	}
	if e.Subject == "" && e.SID == "" {
		return e, invalid(codeSubSIDMissing, "the logout token has neither sub nor sid")
	}
	if r.cfg.SessionRequired && e.SID == "" {
		return e, invalid(codeSIDRequired, "this client requires a sid claim in logout tokens")
	}
	if err := r.checkSignature(ctx, is, jws, alg, h.KeyID); err != nil {
		return e, err
	}
	return e, nil
}

// rawClaims are the claims the receiver reads, each kept as raw JSON so
// that presence (a nil field is an absent member; null reads as "null"),
// type and value are judged separately. Other members are ignored (§2.4).
type rawClaims struct {
	Iss    json.RawMessage `json:"iss"`
	Sub    json.RawMessage `json:"sub"`
	Aud    json.RawMessage `json:"aud"`
	Iat    json.RawMessage `json:"iat"`
	Exp    json.RawMessage `json:"exp"`
	JTI    json.RawMessage `json:"jti"`
	SID    json.RawMessage `json:"sid"`
	AZP    json.RawMessage `json:"azp"`
	Events json.RawMessage `json:"events"`
	Nonce  json.RawMessage `json:"nonce"`
}

func badClaim(name string) *InvalidTokenError {
	return invalid(codeClaimType, "the logout token's "+name+" claim has the wrong type")
}

// typeAllowed applies the explicit-typing rule (§2.4 and §4.1, against
// cross-JWT confusion: an access token or ID token presented as a logout
// token). Media types compare case-insensitively and may omit
// "application/" (RFC 7515 §4.1.9). By default an absent typ or "JWT" is
// tolerated, since many providers still send those; StrictType demands
// logout+jwt.
func (r *Receiver) typeAllowed(v any) bool {
	if v == nil {
		return !r.cfg.StrictType
	}
	s, ok := v.(string)
	if !ok {
		return false
	}
	s = strings.ToLower(s)
	s = strings.TrimPrefix(s, "application/")
	switch s {
	case "logout+jwt":
		return true
	case "jwt":
		return !r.cfg.StrictType
	}
	return false
}

// claimString reads an optional string claim. Absent, null and "" all
// read as "" (ok); any other JSON type is refused (not ok). Treating ""
// as absent errs towards revoking more: a token whose sid is "" revokes
// its whole subject rather than nothing.
func claimString(raw json.RawMessage) (string, bool) {
	if isNull(raw) {
		return "", true
	}
	if raw[0] != '"' {
		return "", false
	}
	if s, ok := plainString(raw); ok {
		return s, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// plainString returns the content of a JSON string literal that needs no
// unescaping (no backslash, no control character, valid UTF-8), the common
// case for identifiers, without a trip through the decoder; ok is false
// for anything else, which the decoder then handles.
func plainString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	for _, b := range body {
		if b < 0x20 || b == '\\' || b == '"' {
			return "", false
		}
	}
	if !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// isNull reports an absent member (nil) or a JSON null.
func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// checkAudience: aud (a string or an array of strings) must contain our
// client id, as for ID tokens (OpenID Connect Core §3.1.3.7). An azp, if
// present, must be our client id too; it is not required when aud has
// several values, because logout tokens rarely carry it.
func checkAudience(c *rawClaims, clientID string) error {
	raw := c.Aud
	if isNull(raw) {
		return invalid(codeAudMissing, "the logout token has no aud claim")
	}
	var auds []string
	switch {
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return badClaim("aud")
		}
		auds = []string{s}
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &auds); err != nil {
			return badClaim("aud")
		}
	default:
		return badClaim("aud")
	}
	found := false
	for _, a := range auds {
		found = found || a == clientID
	}
	if len(auds) == 0 {
		return invalid(codeAudMissing, "the logout token has no aud claim")
	}
	if !found {
		return invalid(codeAudience, "the logout token is not addressed to this client")
	}
	azp, ok := claimString(c.AZP)
	if !ok {
		return badClaim("azp")
	}
	if azp != "" && azp != clientID {
		return invalid(codeAZP, "the logout token's azp is not this client")
	}
	return nil
}

// maxNumericDate bounds iat and exp (year ~5138): larger values are not
// times but garbage, and would overflow time arithmetic.
const maxNumericDate = 1e11

// numericDate reads an optional NumericDate (RFC 7519 §2: seconds, possibly
// fractional). present is false for absent or null.
func numericDate(raw json.RawMessage, name string) (t time.Time, present bool, err error) {
	if isNull(raw) {
		return time.Time{}, false, nil
	}
	f, perr := strconv.ParseFloat(string(raw), 64)
	if perr != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, badClaim(name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// checkTimes validates iat and exp against the clock, with Skew in the
// lenient direction (clocks differ; a correct token must not bounce) and
// MaxAge as an absolute freshness bound that also caps how long a jti
// must be remembered.
func (r *Receiver) checkTimes(c *rawClaims, e *Event) error {
	now := r.now()
	skew := r.cfg.Skew
	iat, ok, err := numericDate(c.Iat, "iat")
	if err != nil {
		return err
	}
	if !ok {
		return invalid(codeIatMissing, "the logout token has no iat claim")
	}
	if iat.After(now.Add(skew)) {
		return invalid(codeIatFuture, "the logout token's iat is in the future")
	}
	if iat.Before(now.Add(-r.cfg.MaxAge - skew)) {
		return invalid(codeIatOld, "the logout token was issued too long ago")
	}
	e.IssuedAt = iat
	exp, ok, err := numericDate(c.Exp, "exp")
	if err != nil {
		return err
	}
	if !ok {
		if !r.cfg.InsecureAllowMissingExp {
			return invalid(codeExpMissing, "the logout token has no exp claim")
		}
		return nil
	}
	// exp is the instant from which the token must not be accepted (RFC
	// 7519 §4.1.4).
	if !now.Before(exp.Add(skew)) {
		return invalid(codeExpired, "the logout token has expired")
	}
	e.Expiry = exp
	return nil
}

// checkEvent: events must be a JSON object with the logout member, whose
// value must itself be a JSON object (§2.4; go-oidc accepts any value).
func checkEvent(raw json.RawMessage) error {
	if isNull(raw) {
		return invalid(codeEventsMissing, "the logout token has no events claim")
	}
	var events map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &events) != nil {
		return badClaim("events")
	}
	v, ok := events[LogoutEvent]
	if !ok {
		return invalid(codeEventMissing, "the logout token's events claim lacks the back-channel logout event")
	}
	if v = bytes.TrimSpace(v); len(v) == 0 || v[0] != '{' {
		return invalid(codeEventNotObject, "the back-channel logout event's value must be a JSON object")
	}
	return nil
}

// checkSignature verifies the signature with the issuer's keys: the
// client secret for HMAC algorithms (only when configured), otherwise the
// published keys, refreshed once (rate-limited) when the kid is unknown.
func (r *Receiver) checkSignature(ctx context.Context, is *issuer, jws *jose.JSONWebSignature, alg jose.SignatureAlgorithm, kid string) error {
	if hmacSize[alg] > 0 {
		// allows(alg) was checked, and an issuer allows an HMAC alg only
		// with a secret long enough for it.
		if _, err := jws.Verify(is.secret); err != nil {
			return invalid(codeSignature, "the logout token's signature does not verify")
		}
		return nil
	}
	ok, known := tryKeys(jws, is.keys.keys(), alg, kid)
	if ok {
		return nil
	}
	if known {
		// The kid names a key we have and it did not verify: refetching
		// would not change that, so no refresh is spent on it.
		return invalid(codeSignature, "the logout token's signature does not verify")
	}
	switch err := is.keys.refresh(ctx); {
	case errors.Is(err, errRateLimited):
	case err != nil:
		return err
	default:
		if ok, known = tryKeys(jws, is.keys.keys(), alg, kid); ok {
			return nil
		}
	}
	if kid == "" || known {
		return invalid(codeSignature, "the logout token's signature does not verify")
	}
	return invalid(codeUnknownKey, "the logout token is signed with a key the issuer does not publish")
}

// tryKeys verifies jws with the keys that match kid (all keys when the
// token has none) and fit alg, at most maxTrials of them. known reports
// that kid named at least one key of the set.
func tryKeys(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, alg jose.SignatureAlgorithm, kid string) (ok, known bool) {
	trials := 0
	for i := range keys {
		k := &keys[i]
		if kid != "" {
			if k.KeyID != kid {
				continue
			}
			known = true
		}
		if !fits(k, alg) {
			continue
		}
		if trials++; trials > maxTrials {
			break
		}
		if _, err := jws.Verify(k.Key); err == nil {
			return true, true
		}
	}
	return false, known
}
