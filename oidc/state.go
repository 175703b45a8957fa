package oidc

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// loginState is what the RP remembers between /login and the callback. It
// travels sealed (AES-GCM under a key derived for "login-state") in a
// cookie named after the state, so that two logins in two tabs do not
// overwrite each other, and so that a callback can only complete in the
// browser that started the login (login CSRF).
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`            // PKCE code_verifier
	Provider string `json:"p"`            // provider name
	ReturnTo string `json:"r"`            // validated local path
	Attempt  int    `json:"a"`            // 0, or 1 for the single forced retry
	Created  int64  `json:"c"`            // unix seconds, RP clock
	ACR      string `json:"acr,omitzero"` // acr_values requested by the caller, kept for the retry
}

// stateIDLen is the length of state values: 32 random bytes, base64url.
const stateIDLen = 43

// stateCookieKeyLen is how much of the state names its cookie (96 bits).
const stateCookieKeyLen = 16

// maxPendingLogins bounds the login-state cookies one browser keeps: a
// page that loops on /login must not fill the cookie jar until every
// request of the site fails for an oversized header.
const maxPendingLogins = 4

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validStateParam checks the shape of a state parameter before it is used
// to name a cookie.
func validStateParam(s string) bool {
	if len(s) != stateIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (rp *RP) stateCookieName(state string) string {
	return rp.stateCookie + "_" + state[:stateCookieKeyLen]
}

// setState seals st into its cookie on w, after pruning older pending
// logins of this browser beyond maxPendingLogins.
func (rp *RP) setState(w http.ResponseWriter, r *http.Request, st *loginState) {
	type pending struct {
		name    string
		created int64
	}
	var old []pending
	prefix := rp.stateCookie + "_"
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, prefix) {
			continue
		}
		var created int64 = -1 // unreadable ones go first
		if s, err := rp.openState(c.Value); err == nil {
			created = s.Created
		}
		old = append(old, pending{c.Name, created})
	}
	if len(old) >= maxPendingLogins {
		slices.SortFunc(old, func(a, b pending) int { return cmp.Compare(a.created, b.created) })
		for _, p := range old[:len(old)-maxPendingLogins+1] {
			http.SetCookie(w, rp.clearStateCookie(p.name))
		}
	}
	b, _ := json.Marshal(st) // a struct of strings and ints cannot fail
	http.SetCookie(w, &http.Cookie{
		Name: rp.stateCookieName(st.State), Value: rp.stateSealer.Seal(b), Path: "/",
		MaxAge: int(rp.cfg.LoginTimeout / time.Second), Secure: rp.secure, HttpOnly: true,
		// Lax: the callback is a top-level GET navigation from the
		// provider's site, which Lax cookies accompany.
		SameSite: http.SameSiteLaxMode,
	})
}

func (rp *RP) clearStateCookie(name string) *http.Cookie {
	return &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: rp.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

func (rp *RP) openState(value string) (*loginState, error) {
	pt, err := rp.stateSealer.Open(value, nil)
	if err != nil {
		return nil, err
	}
	st := new(loginState)
	if err := json.Unmarshal(pt, st); err != nil {
		return nil, err
	}
	return st, nil
}

// errState is the cause behind every refused login state; the client sees
// only the generic error page.
var errState = errors.New("sessionfence/oidc: login state missing, expired, forged or already used")

// takeState finds, opens and clears the login-state cookie for the state
// parameter of a callback, and checks that it matches, is fresh, and has
// not been used before (through the store's Replay ability when present;
// clearing the cookie alone would not stop a replay of a captured cookie).
func (rp *RP) takeState(w http.ResponseWriter, r *http.Request, state string) (*loginState, error) {
	if !validStateParam(state) {
		return nil, errors.Join(errState, errors.New("state parameter missing or malformed"))
	}
	name := rp.stateCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, errors.Join(errState, errors.New("no login-state cookie for this state (another browser, expired, or already used)"))
	}
	http.SetCookie(w, rp.clearStateCookie(name))
	st, err := rp.openState(c.Value)
	if err != nil {
		return nil, errors.Join(errState, err)
	}
	if subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		return nil, errors.Join(errState, errors.New("state does not match the login-state cookie"))
	}
	age := rp.now().Sub(time.Unix(st.Created, 0))
	if age > rp.cfg.LoginTimeout || age < -time.Minute {
		return nil, errors.Join(errState, errors.New("login took longer than LoginTimeout"))
	}
	if rp.replay != nil {
		first, err := rp.replay.Remember(r.Context(), "oidc/state/"+state, rp.cfg.LoginTimeout+time.Minute)
		if err != nil {
			return nil, err // wraps ErrStoreUnavailable
		}
		if !first {
			return nil, errors.Join(errState, errors.New("state already used (replay)"))
		}
	}
	return st, nil
}
