package interop_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sessionfence/sessionfence/examples/interop/hydra"
	"github.com/sessionfence/sessionfence/examples/interop/loginapp"
)

// rp is a bare OpenID Connect client, driven by hand, so the quirks
// tests see exactly what a provider sends. Its redirect URI (origin/cb)
// and back-channel logout URI (origin/bc) are a capture server.
type rp struct {
	origin            string
	cb                string // redirect URI
	authURL, tokenURL string
	clientID, secret  string
	http              *http.Client // to the token endpoint
	op                signInPage
	mu                sync.Mutex
	tokens            []string // logout tokens received
}

// newCapture starts the capture server; the caller registers the client
// and fills in the provider's side.
func newCapture(t *testing.T) *rp {
	t.Helper()
	r := &rp{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /bc", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.tokens = append(r.tokens, req.PostFormValue("logout_token"))
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.origin, r.cb = srv.URL, srv.URL+"/cb"
	return r
}

// newRP registers a capture RP at Hydra.
func newRP(t *testing.T, e *env) *rp {
	t.Helper()
	r := newCapture(t)
	c := e.Hydra.CreateClient(t, hydra.WebClient(r.cb, r.origin+"/", r.origin+"/bc"))
	r.clientID, r.secret = c.ClientID, c.ClientSecret
	r.authURL, r.tokenURL = e.Hydra.PublicURL+"/oauth2/auth", e.Hydra.PublicURL+"/oauth2/token"
	r.http, r.op = e.Hydra.HTTP, e.op
	return r
}

// authorize is rp.authorize with the login app's record of the request.
func (e *env) authorize(t *testing.T, r *rp, b *http.Client, c loginapp.Credentials, extra url.Values) (tokenSet, loginapp.Login) {
	t.Helper()
	ts := r.authorize(t, b, c, extra)
	logins := e.Login.Logins()
	return ts, logins[len(logins)-1]
}

// tokenSet is the token endpoint's answer, decoded.
type tokenSet struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	ID, Access   map[string]any
	IDHdr, ATHdr map[string]any
}

// authorize runs an authorization request with extra parameters in
// browser b, types c when the provider shows its form, and exchanges the
// code.
func (r *rp) authorize(t *testing.T, b *http.Client, c loginapp.Credentials, extra url.Values) tokenSet {
	t.Helper()
	cb, _ := url.Parse(r.cb)
	nb := *b
	nb.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == cb.Host {
			return http.ErrUseLastResponse // the code is for us
		}
		return nil
	}
	state := rand.Text()
	q := url.Values{
		"response_type": {"code"}, "client_id": {r.clientID}, "redirect_uri": {r.cb},
		"scope": {"openid offline_access"}, "state": {state}, "nonce": {rand.Text()},
	}
	for k, v := range extra {
		q[k] = v
	}
	p := navigate(t, &nb, http.MethodGet, r.authURL+"?"+q.Encode(), nil, nil)
	p, _ = signIn(t, &nb, r.op, p, c)
	if p.Code/100 != 3 {
		t.Fatalf("authorization ended on %s (%d):\n%s", p.URL, p.Code, p.Body)
	}
	return r.exchange(t, p, state)
}

// exchange takes the code from the redirect p (a 3xx to the redirect
// URI) and redeems it.
func (r *rp) exchange(t *testing.T, p page, state string) tokenSet {
	t.Helper()
	loc, err := url.Parse(p.Location)
	if err != nil || loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		t.Fatalf("redirect to %q (%v)", p.Location, err)
	}
	return r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {r.cb}})
}

// token calls the token endpoint with form and fails unless it answers 200.
func (r *rp) token(t *testing.T, form url.Values) tokenSet {
	t.Helper()
	ts, code, body := r.tokenCall(t, form)
	if code != http.StatusOK {
		t.Fatalf("token endpoint: %d %s", code, body)
	}
	return ts
}

func (r *rp) tokenCall(t *testing.T, form url.Values) (tokenSet, int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(r.clientID), url.QueryEscape(r.secret))
	res, err := r.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var ts tokenSet
	if res.StatusCode != http.StatusOK {
		return ts, res.StatusCode, string(raw)
	}
	if err := json.Unmarshal(raw, &ts); err != nil {
		t.Fatal(err)
	}
	if ts.IDToken != "" {
		ts.IDHdr, ts.ID = jwtParts(t, ts.IDToken)
	}
	if strings.Count(ts.AccessToken, ".") == 2 { // else opaque
		ts.ATHdr, ts.Access = jwtParts(t, ts.AccessToken)
	}
	return ts, res.StatusCode, string(raw)
}

// promptNone runs an authorization request with prompt=none in browser
// b and returns the provider's answer: a redirect to the redirect URI,
// not followed.
func (r *rp) promptNone(t *testing.T, b *http.Client) page {
	t.Helper()
	none := *b
	none.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), r.cb) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	q := url.Values{"response_type": {"code"}, "client_id": {r.clientID}, "redirect_uri": {r.cb},
		"scope": {"openid"}, "state": {rand.Text()}, "nonce": {rand.Text()}, "prompt": {"none"}}
	return navigate(t, &none, http.MethodGet, r.authURL+"?"+q.Encode(), nil, nil)
}

func (r *rp) logoutTokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens)
}

func keysOf(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// quirkHelpers returns what both quirks tests use: note logs a QUIRK line
// (the evidence docs/providers quote), same fails unless two ID tokens
// agree on claims.
func quirkHelpers(t *testing.T) (note func(what string, v ...any), same func(what string, a, b tokenSet, claims ...string)) {
	note = func(what string, v ...any) { t.Helper(); t.Logf("QUIRK %s: %v", what, v) }
	same = func(what string, a, b tokenSet, claims ...string) {
		t.Helper()
		for _, c := range claims {
			if !reflect.DeepEqual(a.ID[c], b.ID[c]) {
				t.Errorf("%s: ID token %s %v, want %v", what, c, a.ID[c], b.ID[c])
			}
		}
	}
	return note, same
}

// TestHydraQuirks pins what Hydra v2.3.0 puts in its tokens and how it
// treats prompt, max_age, acr_values, refresh and logout: a release that
// behaves otherwise fails it. docs/providers/hydra.md is written from its
// -v output (the QUIRK lines) and must change with it. The steps run in
// order in one browser, each on the provider session the previous left.
func TestHydraQuirks(t *testing.T) {
	e := start(t)
	r := newRP(t, e)
	b := browser(t)
	note, same := quirkHelpers(t)

	first, l := e.authorize(t, r, b, alice, nil)
	note("first login", "form", l.Form, "skip", l.Skip)
	note("ID token header", first.IDHdr)
	note("ID token claims", keysOf(first.ID), first.ID)
	note("access token header", first.ATHdr)
	note("access token claims", keysOf(first.Access), first.Access)
	if !l.Form || l.Skip || first.IDHdr["typ"] != "JWT" || first.ATHdr["typ"] != "JWT" || first.IDHdr["alg"] != "RS256" {
		t.Errorf("first login: %+v, headers %v %v", l, first.IDHdr, first.ATHdr)
	}
	if want := []string{"acr", "amr", "at_hash", "aud", "auth_time", "exp", "iat", "iss", "jti", "nonce", "rat", "sid", "sub", "tenant"}; !slices.Equal(keysOf(first.ID), want) {
		t.Errorf("ID token claims %v, want %v", keysOf(first.ID), want)
	}
	// No auth_time, sid or acr in access tokens: a bearer check can only
	// judge them by iat. aud is what the request asked for (none here),
	// not the client's registered audience.
	if want := []string{"aud", "client_id", "exp", "ext", "iat", "iss", "jti", "nbf", "scp", "sub", "tenant"}; !slices.Equal(keysOf(first.Access), want) {
		t.Errorf("access token claims %v, want %v", keysOf(first.Access), want)
	}
	if aud, _ := first.Access["aud"].([]any); len(aud) != 0 {
		t.Errorf("access token aud %v without an audience parameter", aud)
	}
	if num(first.ID["auth_time"]) > num(first.ID["iat"]) {
		t.Errorf("auth_time %v after iat %v", first.ID["auth_time"], first.ID["iat"])
	}

	api, _ := e.authorize(t, r, b, alice, url.Values{"audience": {"api"}})
	res, hello := e.bearer(t, api.AccessToken)
	note("access token with audience=api at the example's bearer API", api.Access["aud"], res, hello)
	if res != http.StatusOK || !strings.Contains(hello, `"hello":"alice"`) {
		t.Errorf("GET /api/hello with Hydra's access token: %d %s", res, hello)
	}

	silent, l := e.authorize(t, r, b, alice, nil)
	note("silent login", "form", l.Form, "skip", l.Skip, "sid", silent.ID["sid"], "was", first.ID["sid"],
		"auth_time", silent.ID["auth_time"], "was", first.ID["auth_time"], "acr", silent.ID["acr"], "amr", silent.ID["amr"])
	if l.Form || !l.Skip {
		t.Errorf("silent login: %+v", l)
	}
	same("silent login", silent, first, "sid", "auth_time", "acr", "amr")

	withAge, l := e.authorize(t, r, b, alice, url.Values{"max_age": {"3600"}})
	note("max_age=3600 with a live session", "form", l.Form, "skip", l.Skip, "sid", withAge.ID["sid"], "auth_time", withAge.ID["auth_time"])
	if l.Form || !l.Skip {
		t.Errorf("max_age=3600: %+v", l)
	}
	same("max_age=3600", withAge, first, "sid", "auth_time")

	stepUp, l := e.authorize(t, r, b, loginapp.Credentials{OTP: otp}, url.Values{"acr_values": {loginapp.DefaultMFAACR}})
	note("acr_values=mfa with a live password session", "form", l.Form, "stepUp", l.StepUp, "skip", l.Skip,
		"sid", stepUp.ID["sid"], "auth_time", stepUp.ID["auth_time"], "acr", stepUp.ID["acr"], "amr", stepUp.ID["amr"])
	if !l.Form || !l.StepUp || !l.Skip || stepUp.ID["acr"] != loginapp.DefaultMFAACR || !reflect.DeepEqual(stepUp.ID["amr"], []any{"pwd", "otp"}) {
		t.Errorf("step-up: %+v, acr %v amr %v", l, stepUp.ID["acr"], stepUp.ID["amr"])
	}
	// A step-up on a remembered session keeps its sid and its auth_time.
	same("step-up", stepUp, first, "sid", "auth_time")

	fresh, l := e.authorize(t, r, b, alice, url.Values{"prompt": {"login"}})
	note("prompt=login with a live session", "form", l.Form, "skip", l.Skip, "sid", fresh.ID["sid"], "was", first.ID["sid"],
		"auth_time", fresh.ID["auth_time"], "acr", fresh.ID["acr"], "amr", fresh.ID["amr"])
	if !l.Form || l.Skip || fresh.ID["sid"] == first.ID["sid"] || num(fresh.ID["auth_time"]) < num(first.ID["auth_time"]) {
		t.Errorf("prompt=login: %+v, sid %v (was %v), auth_time %v", l, fresh.ID["sid"], first.ID["sid"], fresh.ID["auth_time"])
	}

	zero, l := e.authorize(t, r, b, alice, url.Values{"max_age": {"0"}})
	note("max_age=0 with a live session", "form", l.Form, "skip", l.Skip, "sid", zero.ID["sid"], "was", fresh.ID["sid"], "auth_time", zero.ID["auth_time"])
	if !l.Form || l.Skip || zero.ID["sid"] == fresh.ID["sid"] {
		t.Errorf("max_age=0: %+v, sid %v (was %v)", l, zero.ID["sid"], fresh.ID["sid"])
	}

	refreshed := r.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {zero.RefreshToken}})
	note("refresh", "rotated", refreshed.RefreshToken != zero.RefreshToken, "ID token", refreshed.IDToken != "")
	note("refreshed ID token claims", keysOf(refreshed.ID), refreshed.ID)
	note("refreshed access token claims", keysOf(refreshed.Access), refreshed.Access)
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == zero.RefreshToken || refreshed.IDToken == "" {
		t.Errorf("refresh: rotated %v, ID token %v", refreshed.RefreshToken != zero.RefreshToken, refreshed.IDToken != "")
	}
	// The refreshed ID token repeats the session's claims, the nonce too.
	same("refreshed", refreshed, zero, "sid", "auth_time", "acr", "amr", "nonce")
	_, code, body := r.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {zero.RefreshToken}})
	note("reuse of a rotated refresh token", code, body)
	if code != http.StatusBadRequest || !strings.Contains(body, `"invalid_grant"`) {
		t.Errorf("reuse: %d %s", code, body)
	}
	_, code, body = r.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken}})
	note("the newest refresh token after that reuse", code, body)
	if code != http.StatusBadRequest || !strings.Contains(body, `"invalid_grant"`) {
		t.Errorf("after reuse, the newest token: %d %s (reuse should revoke the family)", code, body)
	}

	n := len(r.logoutTokens())
	e.providerLogout(t, b)
	toks := poll(t, "a logout token", func() ([]string, bool) {
		ts := r.logoutTokens()
		return ts[n:], len(ts) > n
	})
	for _, tok := range toks {
		h, c := jwtParts(t, tok)
		note("logout token", h, keysOf(c), c)
		// No exp (issue 12), no sub, typ JWT rather than logout+jwt.
		if h["typ"] != "JWT" || !slices.Equal(keysOf(c), []string{"aud", "events", "iat", "iss", "jti", "sid"}) {
			t.Errorf("logout token %v %v", h, c)
		}
		// Only the browser's current provider session is logged out; the
		// sids that prompt=login and max_age=0 replaced get no token.
		if c["sid"] != zero.ID["sid"] {
			t.Errorf("logout token for sid %v, want the current %v", c["sid"], zero.ID["sid"])
		}
	}
	if len(toks) != 1 {
		t.Errorf("%d logout tokens, want 1", len(toks))
	}

	p := r.promptNone(t, b)
	note("prompt=none after logout", p.Code, p.Location)
	if !strings.Contains(p.Location, "error=login_required") {
		t.Errorf("prompt=none after logout: %d %s", p.Code, p.Location)
	}
}

// num reads a JSON number claim.
func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
