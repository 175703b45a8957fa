package devidp_test

import (
	"context"
	"crypto/rand"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
)

const (
	clientID     = "app"
	clientSecret = "app-secret"
	// rpHost never resolves: browsers stop at the redirect to it.
	rpHost     = "rp.test"
	rpCallback = "http://" + rpHost + "/callback"
)

// clock is the provider's injected clock: tests move time instead of
// sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a running devidp and a relying party built from go-oidc and
// x/oauth2, as the demo's will be.
type env struct {
	s        *devidp.Server
	issuer   string
	clock    *clock
	ctx      context.Context
	op       *oidc.Provider
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// newEnv serves a devidp at an httptest server; path is the issuer's path
// ("" for none).
func newEnv(t *testing.T, path string, clients ...devidp.Client) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + path
	clk := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	clients = append(clients, devidp.Client{ID: clientID, Secret: clientSecret, RedirectURIs: []string{rpCallback}})
	s, err := devidp.New(devidp.Config{Issuer: issuer, Clients: clients, Now: clk.Now})
	if err != nil {
		srv.Listener.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = s
	srv.Start()
	t.Cleanup(srv.Close)
	ctx := oidc.ClientContext(t.Context(), srv.Client())
	op, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &env{
		s: s, issuer: issuer, clock: clk, ctx: ctx, op: op,
		conf: &oauth2.Config{
			ClientID: clientID, ClientSecret: clientSecret, Endpoint: op.Endpoint(),
			RedirectURL: rpCallback, Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
		},
		verifier: op.VerifierContext(ctx, &oidc.Config{ClientID: clientID, Now: clk.Now}),
	}
}

// newBrowser returns a client with its own cookie jar that follows
// redirects within the provider and stops at the one to the RP.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == rpHost {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// page is a response as a browser sees it.
type page struct {
	status int
	body   string
	loc    *url.URL // the redirect to the RP, if that is what came back
}

// get, post and do send a request and read the answer as a page.
func get(t *testing.T, b *http.Client, u string) page {
	t.Helper()
	resp, err := b.Get(u)
	return read(t, resp, err)
}

func post(t *testing.T, b *http.Client, u string, v url.Values) page {
	t.Helper()
	resp, err := b.PostForm(u, v)
	return read(t, resp, err)
}

func do(t *testing.T, b *http.Client, req *http.Request) page {
	t.Helper()
	resp, err := b.Do(req)
	return read(t, resp, err)
}

func read(t *testing.T, resp *http.Response, err error) page {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := page{status: resp.StatusCode, body: string(b)}
	if loc, err := resp.Location(); err == nil {
		p.loc = loc
	}
	return p
}

// callback returns the authorization response the RP received, failing
// unless the browser was sent to the RP.
func (p page) callback(t *testing.T) url.Values {
	t.Helper()
	if p.loc == nil || p.loc.Host != rpHost {
		t.Fatalf("not redirected to the RP: status %d\n%s", p.status, p.body)
	}
	return p.loc.Query()
}

// form is one HTML form of a page.
type form struct {
	action string
	fields url.Values // hidden inputs
}

var (
	formRe  = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)">(.*?)</form>`)
	inputRe = regexp.MustCompile(`<input ([^>]*)>`)
	attrRe  = regexp.MustCompile(`([a-z-]+)(?:="([^"]*)")?`)
)

// forms parses the forms of a page the provider rendered (its templates
// are known, so a few expressions read them).
func (p page) forms() []form {
	var out []form
	for _, m := range formRe.FindAllStringSubmatch(p.body, -1) {
		f := form{action: html.UnescapeString(m[1]), fields: url.Values{}}
		for _, in := range inputRe.FindAllStringSubmatch(m[2], -1) {
			attrs := map[string]string{}
			for _, a := range attrRe.FindAllStringSubmatch(in[1], -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			if attrs["type"] == "hidden" {
				f.fields.Set(attrs["name"], attrs["value"])
			}
		}
		out = append(out, f)
	}
	return out
}

// onlyForm returns the page's single form.
func (p page) onlyForm(t *testing.T) form {
	t.Helper()
	fs := p.forms()
	if len(fs) != 1 {
		t.Fatalf("want one form, found %d: status %d\n%s", len(fs), p.status, p.body)
	}
	return fs[0]
}

// submit posts f with its hidden fields plus extra.
func submit(t *testing.T, b *http.Client, f form, extra url.Values) page {
	t.Helper()
	v := url.Values{}
	for k, vs := range f.fields {
		v[k] = vs
	}
	for k, vs := range extra {
		v[k] = vs
	}
	return post(t, b, f.action, v)
}

// request is one authorization request and what it needs at the callback.
type request struct {
	verifier, nonce, state string
}

// authorize sends the browser to the authorization endpoint.
func (e *env) authorize(t *testing.T, b *http.Client, opts ...oauth2.AuthCodeOption) (request, page) {
	t.Helper()
	r := request{verifier: oauth2.GenerateVerifier(), nonce: rand.Text(), state: rand.Text()}
	opts = append(opts, oauth2.S256ChallengeOption(r.verifier), oidc.Nonce(r.nonce))
	return r, get(t, b, e.conf.AuthCodeURL(r.state, opts...))
}

// claims are the ID token claims the tests look at.
type claims struct {
	Sub      string   `json:"sub"`
	Nonce    string   `json:"nonce"`
	SID      string   `json:"sid"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
	Tenant   string   `json:"tenant"`
	Email    string   `json:"email"`
	Roles    []string `json:"roles"`
}

// finish checks the authorization response like a careful RP (state,
// iss, nonce, at_hash) and redeems the code with the PKCE verifier.
func (e *env) finish(t *testing.T, r request, p page) (*oauth2.Token, claims) {
	t.Helper()
	q := p.callback(t)
	if q.Get("error") != "" || q.Get("state") != r.state || q.Get("iss") != e.issuer {
		t.Fatalf("authorization response %v", q)
	}
	tok, err := e.conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(r.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := e.verifier.Verify(e.ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var c claims
	if err := id.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Nonce != r.nonce {
		t.Fatalf("nonce %q, want %q", c.Nonce, r.nonce)
	}
	return tok, c
}

// signIn fills in the login form on p.
func signIn(t *testing.T, b *http.Client, p page, user, password string) page {
	t.Helper()
	if (p.status != http.StatusOK && p.status != http.StatusUnauthorized) || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("no login form: status %d\n%s", p.status, p.body)
	}
	return submit(t, b, p.onlyForm(t), url.Values{"username": {user}, "password": {password}, "action": {"login"}})
}

// login runs a whole code flow through the login form.
func (e *env) login(t *testing.T, b *http.Client, user string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, claims) {
	t.Helper()
	r, p := e.authorize(t, b, opts...)
	return e.finish(t, r, signIn(t, b, p, user, devidp.DefaultPassword))
}

func TestCodeFlowWithPKCEThroughTheLoginForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "")
	b := newBrowser(t)
	r, p := e.authorize(t, b)
	if !strings.Contains(p.body, devidp.Banner) || !strings.Contains(p.body, `<code>dev</code>`) ||
		!strings.Contains(p.body, `<label for="username">`) || !strings.Contains(p.body, `autofocus`) {
		t.Errorf("login page lacks the banner, the password, a label or autofocus:\n%s", p.body)
	}
	tok, c := e.finish(t, r, signIn(t, b, p, "alice", "dev"))
	if c.Sub != "alice" || c.ACR != devidp.PasswordACR || !slices.Equal(c.AMR, []string{"pwd"}) ||
		c.AuthTime != e.clock.Now().Unix() || c.SID == "" || c.Tenant != "acme" || c.Email != "alice@example.com" ||
		!slices.Equal(c.Roles, []string{"admin"}) {
		t.Errorf("claims = %+v", c)
	}
	// The refresh token works, and rotates.
	next, err := e.conf.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh: %v, %+v", err, next)
	}
}

func TestSecondAuthorizationIsASilentSSO(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "")
	b := newBrowser(t)
	_, first := e.login(t, b, "bob")
	e.clock.Advance(time.Minute)
	r, p := e.authorize(t, b)
	if p.status != http.StatusFound {
		t.Fatalf("second authorization: status %d, want a redirect without a page\n%s", p.status, p.body)
	}
	_, second := e.finish(t, r, p)
	if second.Sub != "bob" || second.SID != first.SID || second.AuthTime != first.AuthTime {
		t.Errorf("silent SSO: %+v after %+v", second, first)
	}
}

func TestReauthenticationShowsTheFormAgain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       []oauth2.AuthCodeOption
		wantReason string
	}{
		{"prompt=login", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login")}, "prompt=login"},
		{"max_age exceeded", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "300")}, "max_age"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "")
			b := newBrowser(t)
			_, first := e.login(t, b, "alice")
			e.clock.Advance(10 * time.Minute)
			r, p := e.authorize(t, b, tt.opts...)
			if p.status != http.StatusOK || !strings.Contains(p.body, tt.wantReason) || !strings.Contains(p.body, `value="alice"`) {
				t.Fatalf("want the form, prefilled with alice, saying %q: status %d\n%s", tt.wantReason, p.status, p.body)
			}
			_, second := e.finish(t, r, signIn(t, b, p, "alice", "dev"))
			if second.AuthTime != e.clock.Now().Unix() || second.AuthTime == first.AuthTime || second.SID != first.SID {
				t.Errorf("re-authentication: %+v after %+v", second, first)
			}
		})
	}
	t.Run("max_age not exceeded is silent", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "")
		b := newBrowser(t)
		e.login(t, b, "alice")
		e.clock.Advance(time.Minute)
		if _, p := e.authorize(t, b, oauth2.SetAuthURLParam("max_age", "3600")); p.status != http.StatusFound {
			t.Errorf("status %d, want a silent redirect", p.status)
		}
	})
}

func TestMFAAsksForTheFixedOneTimeCode(t *testing.T) {
	t.Parallel()
	mfa := oauth2.SetAuthURLParam("acr_values", devidp.DefaultMFAACR)
	t.Run("wrong code refused, fixed code accepted", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "")
		b := newBrowser(t)
		r, p := e.authorize(t, b, mfa)
		otp := signIn(t, b, p, "alice", "dev")
		if otp.status != http.StatusOK || !strings.Contains(otp.body, `<code>123456</code>`) ||
			!strings.Contains(otp.body, "fixed") || !strings.Contains(otp.body, devidp.Banner) || !strings.Contains(otp.body, `name="otp"`) {
			t.Fatalf("one-time-code page: status %d\n%s", otp.status, otp.body)
		}
		wrong := submit(t, b, otp.onlyForm(t), url.Values{"otp": {"000000"}, "action": {"verify"}})
		if wrong.status != http.StatusUnauthorized || wrong.loc != nil || !strings.Contains(wrong.body, "Wrong one-time code") {
			t.Fatalf("wrong code: status %d\n%s", wrong.status, wrong.body)
		}
		_, c := e.finish(t, r, submit(t, b, wrong.onlyForm(t), url.Values{"otp": {devidp.OTP}, "action": {"verify"}}))
		if c.ACR != devidp.DefaultMFAACR || !slices.Equal(c.AMR, []string{"pwd", "otp"}) || c.AuthTime != e.clock.Now().Unix() {
			t.Errorf("claims = %+v", c)
		}
		// The MFA session answers later MFA requests silently.
		if _, p := e.authorize(t, b, mfa); p.status != http.StatusFound {
			t.Errorf("MFA session asked again: status %d", p.status)
		}
	})
	t.Run("step-up from a password session", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "")
		b := newBrowser(t)
		_, first := e.login(t, b, "bob")
		e.clock.Advance(time.Minute)
		r, p := e.authorize(t, b, mfa)
		if !strings.Contains(p.body, "second factor") {
			t.Fatalf("step-up page does not say why:\n%s", p.body)
		}
		otp := signIn(t, b, p, "bob", "dev")
		_, c := e.finish(t, r, submit(t, b, otp.onlyForm(t), url.Values{"otp": {devidp.OTP}}))
		if c.ACR != devidp.DefaultMFAACR || c.SID != first.SID || c.AuthTime == first.AuthTime {
			t.Errorf("step-up: %+v after %+v", c, first)
		}
	})
	t.Run("account without a second factor gets the password acr", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "")
		b := newBrowser(t)
		if _, c := e.login(t, b, "carol", mfa); c.ACR != devidp.PasswordACR {
			t.Errorf("acr = %q", c.ACR)
		}
	})
	t.Run("too many wrong codes end the request", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "")
		b := newBrowser(t)
		_, p := e.authorize(t, b, mfa)
		p = signIn(t, b, p, "alice", "dev")
		for range 5 {
			if p.loc != nil {
				break
			}
			p = submit(t, b, p.onlyForm(t), url.Values{"otp": {"999999"}})
		}
		if q := p.callback(t); q.Get("error") != "access_denied" {
			t.Errorf("after five wrong codes: %v", q)
		}
	})
}

func TestLoginFormRefusals(t *testing.T) {
	t.Parallel()
	t.Run("wrong password shows the form again", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "")
		b := newBrowser(t)
		r, p := e.authorize(t, b)
		wrong := signIn(t, b, p, "alice", "nope")
		if wrong.status != http.StatusUnauthorized || !strings.Contains(wrong.body, "wrong password") || !strings.Contains(wrong.body, `value="alice"`) {
			t.Fatalf("wrong password: status %d\n%s", wrong.status, wrong.body)
		}
		if _, c := e.finish(t, r, signIn(t, b, wrong, "alice", "dev")); c.Sub != "alice" {
			t.Errorf("sub = %q", c.Sub)
		}
	})
	t.Run("prompt=none without a session is login_required", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "")
		r, p := e.authorize(t, newBrowser(t), oauth2.SetAuthURLParam("prompt", "none"))
		if q := p.callback(t); q.Get("error") != "login_required" || q.Get("state") != r.state || q.Get("iss") != e.issuer {
			t.Errorf("prompt=none: %v", q)
		}
	})
	t.Run("cancel is access_denied", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "")
		b := newBrowser(t)
		_, p := e.authorize(t, b)
		if q := submit(t, b, p.onlyForm(t), url.Values{"action": {"cancel"}}).callback(t); q.Get("error") != "access_denied" {
			t.Errorf("cancel: %v", q)
		}
	})
	forged := []struct {
		name string
		post func(t *testing.T, e *env, b *http.Client, f form) page
	}{
		{"wrong CSRF token", func(t *testing.T, _ *env, b *http.Client, f form) page {
			f.fields.Set("csrf_token", strings.Repeat("0", 64))
			return submit(t, b, f, url.Values{"username": {"alice"}, "password": {"dev"}})
		}},
		{"form posted from another browser", func(t *testing.T, _ *env, _ *http.Client, f form) page {
			return submit(t, newBrowser(t), f, url.Values{"username": {"alice"}, "password": {"dev"}})
		}},
		{"form replayed after use", func(t *testing.T, _ *env, b *http.Client, f form) page {
			submit(t, b, f, url.Values{"username": {"alice"}, "password": {"dev"}}).callback(t)
			return submit(t, b, f, url.Values{"username": {"alice"}, "password": {"dev"}})
		}},
		{"form expired", func(t *testing.T, e *env, b *http.Client, f form) page {
			e.clock.Advance(11 * time.Minute)
			return submit(t, b, f, url.Values{"username": {"alice"}, "password": {"dev"}})
		}},
	}
	for _, tt := range forged {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "")
			b := newBrowser(t)
			_, p := e.authorize(t, b)
			got := tt.post(t, e, b, p.onlyForm(t))
			if got.status != http.StatusBadRequest || got.loc != nil || !strings.Contains(got.body, devidp.Banner) {
				t.Errorf("status %d location %v\n%s", got.status, got.loc, got.body)
			}
		})
	}
	t.Run("cross-origin post is refused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "")
		b := newBrowser(t)
		_, p := e.authorize(t, b)
		f := p.onlyForm(t)
		f.fields.Set("username", "alice")
		f.fields.Set("password", "dev")
		req, _ := http.NewRequest(http.MethodPost, f.action, strings.NewReader(f.fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if got := do(t, b, req); got.status != http.StatusForbidden {
			t.Errorf("status %d", got.status)
		}
	})
}

// receiver is a back-channel logout endpoint that verifies with go-oidc.
type receiver struct {
	mu     sync.Mutex
	tokens []*oidc.LogoutToken
	errs   []error
}

func (rc *receiver) got() ([]*oidc.LogoutToken, []error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.tokens), slices.Clone(rc.errs)
}

// newReceiver starts a receiver and registers it as client id.
func newReceiver(t *testing.T, e *env, id string) *receiver {
	t.Helper()
	rc := &receiver{}
	v := e.op.VerifierContext(e.ctx, &oidc.Config{ClientID: id, Now: e.clock.Now})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lt, err := v.VerifyLogout(r.Context(), r.PostFormValue("logout_token"))
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err != nil {
			rc.errs = append(rc.errs, err)
			http.Error(w, "bad logout token", http.StatusBadRequest)
			return
		}
		rc.tokens = append(rc.tokens, lt)
	}))
	t.Cleanup(srv.Close)
	if err := e.s.AddClient(devidp.Client{ID: id, Secret: "x", BackchannelLogoutURI: srv.URL + "/backchannel"}); err != nil {
		t.Fatal(err)
	}
	return rc
}

func TestDevPageEndsASessionAndDeliversBackchannelLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "")
	rc := newReceiver(t, e, "bc")
	user := newBrowser(t)
	tok, c := e.login(t, user, "alice")

	admin := newBrowser(t)
	p := get(t, admin, e.issuer+"/dev/")
	if p.status != http.StatusOK || !strings.Contains(p.body, devidp.Banner) || !strings.Contains(p.body, c.SID) ||
		!strings.Contains(p.body, time.Unix(c.AuthTime, 0).UTC().Format(time.RFC3339)) {
		t.Fatalf("admin page does not list the session %s: status %d\n%s", c.SID, p.status, p.body)
	}
	var end *form
	for _, f := range p.forms() {
		if f.fields.Get("sid") == c.SID {
			end = &f
		}
	}
	if end == nil || end.fields.Get("csrf_token") == "" {
		t.Fatalf("no CSRF-protected form ends session %s", c.SID)
	}
	done := submit(t, admin, *end, nil) // 303, followed to the result
	if done.status != http.StatusOK || !strings.Contains(done.body, "Ended provider session "+c.SID) ||
		!strings.Contains(done.body, "accepted (HTTP 200)") || !strings.Contains(done.body, "/backchannel") {
		t.Fatalf("result page: status %d\n%s", done.status, done.body)
	}
	toks, errs := rc.got()
	if len(errs) != 0 || len(toks) != 1 || toks[0].Subject != "alice" || toks[0].SessionID != c.SID {
		t.Fatalf("receiver got %+v, refused %v", toks, errs)
	}
	if strings.Contains(get(t, admin, e.issuer+"/dev/").body, "End provider session "+c.SID) {
		t.Error("the ended session is still listed")
	}
	// The provider session is really over: no silent SSO, no refresh.
	if _, p := e.authorize(t, user, oauth2.SetAuthURLParam("prompt", "none")); p.callback(t).Get("error") != "login_required" {
		t.Error("SSO survived the admin action")
	}
	_, err := e.conf.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh after the admin action: %v", err)
	}
}

func TestDevPageEndsEverySessionOfAUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "")
	rc := newReceiver(t, e, "bc")
	_, c1 := e.login(t, newBrowser(t), "bob")
	_, c2 := e.login(t, newBrowser(t), "bob")
	admin := newBrowser(t)
	var end *form
	for _, f := range get(t, admin, e.issuer+"/dev/").forms() {
		if f.fields.Get("sub") == "bob" {
			end = &f
		}
	}
	if end == nil {
		t.Fatal("no form ends bob's sessions")
	}
	if done := submit(t, admin, *end, nil); strings.Count(done.body, "accepted (HTTP 200)") < 2 {
		t.Errorf("result page lacks two deliveries:\n%s", done.body)
	}
	toks, _ := rc.got()
	if len(toks) != 2 || !slices.ContainsFunc(toks, func(l *oidc.LogoutToken) bool { return l.SessionID == c1.SID }) ||
		!slices.ContainsFunc(toks, func(l *oidc.LogoutToken) bool { return l.SessionID == c2.SID }) {
		t.Errorf("receiver got %+v", toks)
	}
	if got := e.s.Sessions(); len(got) != 0 {
		t.Errorf("Sessions() = %+v", got)
	}
}

func TestDevPageRefusesForgedPosts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "")
	_, c := e.login(t, newBrowser(t), "alice")
	admin := newBrowser(t)
	token := get(t, admin, e.issuer+"/dev/").forms()[0].fields.Get("csrf_token")
	tests := []struct {
		name   string
		client *http.Client
		fields url.Values
		header http.Header
	}{
		{"without a token", admin, url.Values{"sid": {c.SID}}, nil},
		{"with a wrong token", admin, url.Values{"sid": {c.SID}, "csrf_token": {"x" + token}}, nil},
		{"from a browser without the CSRF cookie", newBrowser(t), url.Values{"sid": {c.SID}, "csrf_token": {token}}, nil},
		{"cross-origin", admin, url.Values{"sid": {c.SID}, "csrf_token": {token}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/dev/end", strings.NewReader(tt.fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range tt.header {
			req.Header[k] = v
		}
		if got := do(t, tt.client, req); got.status != http.StatusForbidden {
			t.Errorf("%s: status %d", tt.name, got.status)
		}
	}
	if got := e.s.Sessions(); len(got) != 1 || got[0].SID != c.SID {
		t.Errorf("a forged post ended a session: %+v", got)
	}
}

func TestEveryPageCarriesTheBanner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "")
	b := newBrowser(t)
	_, login := e.authorize(t, b)
	pages := map[string]page{
		"index":                 get(t, b, e.issuer+"/"),
		"admin":                 get(t, b, e.issuer+"/dev/"),
		"login":                 login,
		"unknown client":        get(t, b, e.issuer+"/authorize?client_id=nope"),
		"stale login form":      post(t, b, e.issuer+"/login", url.Values{"login_request": {"x"}}),
		"RP-initiated sign-out": get(t, b, e.issuer+"/end_session"),
	}
	for name, p := range pages {
		if !strings.Contains(p.body, devidp.Banner) || !strings.Contains(p.body, `<html lang="en">`) {
			t.Errorf("%s page (status %d) lacks the banner:\n%s", name, p.status, p.body)
		}
	}
}

func TestIssuerWithAPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "/realms/dev")
	b := newBrowser(t)
	if _, c := e.login(t, b, "carol"); c.Sub != "carol" || c.Tenant != "globex" {
		t.Errorf("claims = %+v", c)
	}
	for _, path := range []string{"/", "/dev/"} {
		if p := get(t, b, e.issuer+path); p.status != http.StatusOK || !strings.Contains(p.body, devidp.Banner) {
			t.Errorf("%s: status %d", path, p.status)
		}
	}
	u, _ := url.Parse(e.issuer)
	if p := get(t, b, u.Scheme+"://"+u.Host+"/authorize"); p.status != http.StatusNotFound {
		t.Errorf("endpoint outside the issuer path: status %d", p.status)
	}
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  devidp.Config
	}{
		{"no issuer", devidp.Config{}},
		{"relative issuer", devidp.Config{Issuer: "/idp"}},
		{"issuer with a trailing slash", devidp.Config{Issuer: "http://127.0.0.1:9000/"}},
		{"issuer with a query", devidp.Config{Issuer: "http://127.0.0.1:9000?x=1"}},
		{"no users", devidp.Config{Issuer: "http://127.0.0.1:9000", Users: []devidp.User{}}},
		{"duplicate users", devidp.Config{Issuer: "http://127.0.0.1:9000", Users: []devidp.User{{Subject: "a"}, {Subject: "a"}}}},
		{"user without subject", devidp.Config{Issuer: "http://127.0.0.1:9000", Users: []devidp.User{{Name: "A"}}}},
		{"unknown signing algorithm", devidp.Config{Issuer: "http://127.0.0.1:9000", SigningAlg: "HS256"}},
		{"client without ID", devidp.Config{Issuer: "http://127.0.0.1:9000", Clients: []devidp.Client{{}}}},
		{"client with a relative redirect", devidp.Config{Issuer: "http://127.0.0.1:9000", Clients: []devidp.Client{{ID: "a", RedirectURIs: []string{"/cb"}}}}},
		{"client with a fragment", devidp.Config{Issuer: "http://127.0.0.1:9000", Clients: []devidp.Client{{ID: "a", BackchannelLogoutURI: "http://x/bc#f"}}}},
	}
	for _, tt := range tests {
		if _, err := devidp.New(tt.cfg); !errors.Is(err, devidp.ErrInvalidConfig) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func TestEndSIDOfAnUnknownSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "")
	if ds, err := e.s.EndSID(t.Context(), "nope"); !errors.Is(err, devidp.ErrUnknownSession) || len(ds) != 0 {
		t.Errorf("EndSID = %v, %v", ds, err)
	}
}
