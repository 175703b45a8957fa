package middleware

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// HeaderCSRFToken is the request header that carries the anti-CSRF token
// of [Guard.CSRFToken] on state-changing calls of the admin API.
const HeaderCSRFToken = "X-CSRF-Token"

// csrfInfo labels the HKDF derivation of the CSRF MAC key. It differs from
// every sealer purpose ("sessionfence/v1/aead/..."), so the MAC key is
// independent of the cookie encryption keys derived from the same ring.
const csrfInfo = "sessionfence/v1/csrf"

// CSRFToken returns the anti-CSRF token of session s: base64url (no
// padding) of HMAC-SHA256 of the session id, under a key derived with
// HKDF-SHA256 from the first key of the guard's key ring. The token is
// stable for the life of the session (renewals, reloads and re-issues keep
// the id) and useless for any other session. Knowing a session id (admins
// see them in session lists and the audit log) does not give its token:
// that needs the server's key.
//
// A page obtains it from an authenticated same-origin call (the admin
// API's GET csrf) and sends it back in the [HeaderCSRFToken] header; a
// cross-site page can neither read it nor compute it. It returns "" for a
// nil session or one without an id.
func (g *Guard) CSRFToken(s *Session) string {
	if s == nil || s.ID == "" {
		return ""
	}
	k, err := csrfKey(g.cfg.Keys[0])
	if err != nil {
		return ""
	}
	return csrfMAC(k, s.ID)
}

// ValidCSRFToken reports whether token is the anti-CSRF token of s under
// any key of the guard's key ring, so pages loaded before a key rotation
// keep working until the old key is dropped. The comparison is constant
// time. An empty token, a nil session or a session without an id is never
// valid.
func (g *Guard) ValidCSRFToken(s *Session, token string) bool {
	if s == nil || s.ID == "" || token == "" {
		return false
	}
	keys, err := csrfKeys(g.cfg.Keys)
	if err != nil {
		return false
	}
	return validCSRF(keys, s.ID, token)
}

// csrfKeys derives the MAC key of each ring key, in ring order.
func csrfKeys(ring [][]byte) ([][]byte, error) {
	out := make([][]byte, 0, len(ring))
	for _, k := range ring {
		d, err := csrfKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func csrfKey(k []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, k, nil, csrfInfo, KeySize)
}

func csrfMAC(key []byte, sessionID string) string {
	m := hmac.New(sha256.New, key)
	// The label keeps this MAC distinct from any other HMAC a future
	// feature might compute under the same derived key.
	m.Write([]byte(csrfInfo))
	m.Write([]byte{0})
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCSRF compares token with the MAC under every key. Every key is
// tried even after a match, so the time taken does not tell which key (or
// whether any) matched.
func validCSRF(keys [][]byte, sessionID, token string) bool {
	ok := 0
	for _, k := range keys {
		ok |= subtle.ConstantTimeCompare([]byte(csrfMAC(k, sessionID)), []byte(token))
	}
	return ok == 1
}
