package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/oidc"
)

const (
	clientID     = "rp"
	clientSecret = "rp-secret"
)

var alice = fakeidp.User{Subject: "alice", Email: "alice@example.com", Tenant: "acme", MFA: true}

// rig is one relying party (an httptest TLS server running the oidc
// handlers and a guarded app) in front of one fake provider, driven by a
// browser with a cookie jar.
type rig struct {
	t       *testing.T
	idp     *fakeidp.Provider
	store   *memstore.Store
	rp      *oidc.RP
	srv     *httptest.Server
	url     string
	browser *http.Client

	mu   sync.Mutex
	errs []error // every error handed to Config.OnError
}

type rigOption func(*oidc.Config)

// newRig starts a provider, a relying party and a browser. The provider's
// clock (moved with idp.Advance) is everyone's clock: the store's, the
// guard's and the RP's.
func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	idp := fakeidp.New(t, fakeidp.WithTLS())
	store := memstore.New(memstore.Config{Now: idp.Now})
	r := &rig{t: t, idp: idp, store: store}
	r.srv = httptest.NewUnstartedServer(nil)
	r.url = "https://" + r.srv.Listener.Addr().String()
	idp.AddClient(fakeidp.Client{
		ID: clientID, Secret: clientSecret,
		RedirectURIs:           []string{r.url + "/callback"},
		PostLogoutRedirectURIs: []string{r.url + "/bye"},
	})
	idp.SetUser(alice)
	cfg := oidc.Config{
		Guard: middleware.Config{
			Store: store, Keys: [][]byte{middleware.GenerateKey()}, Now: idp.Now,
			MFA:    middleware.MFAPolicy{ACR: []string{fakeidp.DefaultMFAACR}, AMR: []string{"otp"}},
			Logger: slog.New(slog.DiscardHandler),
		},
		Providers: []oidc.ProviderConfig{{
			Name: "fake", Issuer: idp.Issuer(), ClientID: clientID, ClientSecret: clientSecret,
			RedirectURL: r.url + "/callback", TenantClaim: "tenant", PostLogoutRedirectURL: r.url + "/bye",
		}},
		HTTPClient: idp.Client(),
		OnError: func(w http.ResponseWriter, req *http.Request, err error) {
			r.mu.Lock()
			r.errs = append(r.errs, err)
			r.mu.Unlock()
			r.rp.WriteErrorPage(w, req, err)
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	rp, err := oidc.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("oidc.New: %v", err)
	}
	r.rp = rp
	r.srv.Config.Handler = r.mux(rp)
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	r.browser = idp.Browser()
	return r
}

// mux is the application: login, callback and logout outside the guard,
// everything under /app/ behind it.
func (r *rig) mux(rp *oidc.RP) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /login", rp.LoginHandler())
	mux.Handle("/callback", rp.CallbackHandler())
	mux.Handle("/logout", rp.LogoutHandler())
	mux.HandleFunc("GET /bye", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "bye") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "home") })
	app := http.NewServeMux()
	app.HandleFunc("/app/", func(w http.ResponseWriter, req *http.Request) {
		s, _ := middleware.FromContext(req.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{
			"path": req.URL.Path, "sub": s.Subject, "tenant": s.Tenant, "acr": s.ACR, "sid": s.IdPSession,
			"amr": s.AMR(), "auth_time": s.AuthTime.Unix(), "session": s.ID, "data": s.Data,
		})
	})
	mux.Handle("/app/", nethttp.Middleware(rp.Guard())(app))
	return mux
}

// page is one response as the browser ended up with it.
type page struct {
	status int
	url    *url.URL // final URL after redirects
	header http.Header
	body   string
}

func (p page) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(p.body), &m); err != nil {
		t.Fatalf("body %q at %s is not JSON: %v", p.body, p.url, err)
	}
	return m
}

// navigate GETs path on the RP as a top-level browser navigation, following
// every redirect (through the provider and back).
func (r *rig) navigate(path string) page {
	r.t.Helper()
	return r.do(r.browser, http.MethodGet, r.url+path, nil, true)
}

func (r *rig) do(c *http.Client, method, target string, hdr http.Header, navigation bool) page {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), method, target, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if navigation {
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Accept", "text/html")
	}
	resp, err := c.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(b)}
}

// login runs a full login from /login?<query> and returns the final page.
func (r *rig) login(query string) page {
	r.t.Helper()
	return r.navigate("/login?" + query)
}

// mustLogin logs alice in and checks she lands on /app/me.
func (r *rig) mustLogin() map[string]any {
	r.t.Helper()
	p := r.login("return_to=/app/me")
	if p.status != http.StatusOK || p.url.Path != "/app/me" {
		r.t.Fatalf("login ended at %s with %d: %s (errors %v)", p.url, p.status, p.body, r.loginErrors())
	}
	return p.json(r.t)
}

// sessionCookie returns the browser's session cookie for the RP.
func (r *rig) sessionCookie() *http.Cookie {
	r.t.Helper()
	u, _ := url.Parse(r.url)
	for _, c := range r.browser.Jar.Cookies(u) {
		if c.Name == r.rp.Guard().CookieName() {
			return c
		}
	}
	return nil
}

// api calls path on the RP as an API client carrying only cookie (no jar),
// so concurrent calls present the very same cookie.
func (r *rig) api(cookie *http.Cookie, path string) (page, *http.Cookie) {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), http.MethodGet, r.url+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	resp, err := r.idp.Client().Do(req)
	if err != nil {
		r.t.Errorf("GET %s: %v", path, err)
		return page{}, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == r.rp.Guard().CookieName() {
			set = c
		}
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(b)}, set
}

func (r *rig) loginErrors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// lastLoginError returns the last error handed to OnError as a
// *oidc.LoginError.
func (r *rig) lastLoginError() *oidc.LoginError {
	r.t.Helper()
	errs := r.loginErrors()
	if len(errs) == 0 {
		r.t.Fatal("no login error was reported")
	}
	var le *oidc.LoginError
	if !errors.As(errs[len(errs)-1], &le) {
		r.t.Fatalf("OnError got %T, want *oidc.LoginError", errs[len(errs)-1])
	}
	return le
}

// authorizations returns the RP's requests to the provider's /authorize.
func (r *rig) authorizations() []fakeidp.Authorization {
	var out []fakeidp.Authorization
	for _, a := range r.idp.Authorizations() {
		if a.ClientID == clientID {
			out = append(out, a)
		}
	}
	return out
}

// bump revokes scope at the store's (the provider's) current time.
func (r *rig) bump(scope middleware.Scope, p middleware.Policy) {
	r.t.Helper()
	if _, err := r.store.Bump(context.Background(), scope, middleware.Bump{Kind: middleware.BumpRevoke, Policy: p}); err != nil {
		r.t.Fatal(err)
	}
}

// assertErrorPage checks the generic error page: HTML, status, no-store,
// and no detail of the cause.
func assertErrorPage(t *testing.T, p page, status int) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status = %d at %s, want %d; body %q", p.status, p.url, status, p.body)
	}
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type = %q, want HTML", ct)
	}
	if cc := p.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q, want no-store", cc)
	}
	for _, leak := range []string{"nonce", "aud", "auth_time", "invalid_grant", "sessionfence", "token", "acr"} {
		if strings.Contains(p.body, leak) {
			t.Fatalf("error page leaks %q: %s", leak, p.body)
		}
	}
}

func advance(r *rig, d time.Duration) { r.idp.Advance(d) }
