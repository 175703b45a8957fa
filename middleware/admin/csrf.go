package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/sessionfence/sessionfence/middleware"
)

// HeaderCSRFToken is the request header that carries the anti-CSRF token
// of [API.CSRFToken] on state-changing calls of the HTTP API.
const HeaderCSRFToken = "X-CSRF-Token"

// csrfPurpose names the keys the guard derives for the token
// ([middleware.Guard.DeriveKeys]); they are independent of the keys that
// seal cookies.
const csrfPurpose = "admin/csrf"

// CSRFToken returns the anti-CSRF token of session s: base64url (no
// padding) of HMAC-SHA256 of the session id, under a key the guard derives
// from the first key of its ring. The token is stable for the life of the
// session (renewals, reloads and re-issues keep the id) and useless for
// any other session. Knowing a session id (administrators see them in
// session lists and the audit log) does not give its token: that needs
// the server's key.
//
// The admin page obtains it from GET csrf and sends it back in the
// [HeaderCSRFToken] header; a cross-site page can neither read it nor
// compute it. Server-rendered pages that call the API may embed it. It
// returns "" for a nil session or one without an id.
func (api *API) CSRFToken(s *middleware.Session) string {
	if s == nil || s.ID == "" {
		return ""
	}
	return csrfMAC(api.csrfKeys[0], s.ID)
}

func csrfMAC(key []byte, sessionID string) string {
	m := hmac.New(sha256.New, key)
	// The label keeps this MAC distinct from any other HMAC computed
	// under the same derived key.
	m.Write([]byte("sessionfence/v1/csrf"))
	m.Write([]byte{0})
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCSRF reports whether token is the token of sessionID under any of
// keys, so pages loaded before a key rotation keep working until the old
// key leaves the ring. Every key is tried even after a match, so the time
// taken does not tell which key (or whether any) matched. An empty token
// or session id is never valid.
func validCSRF(keys [][]byte, sessionID, token string) bool {
	if sessionID == "" || token == "" {
		return false
	}
	ok := 0
	for _, k := range keys {
		ok |= subtle.ConstantTimeCompare([]byte(csrfMAC(k, sessionID)), []byte(token))
	}
	return ok == 1
}
