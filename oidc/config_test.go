package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/oidc"
)

func TestNewValidatesConfigBeforeDiscovery(t *testing.T) {
	store := memstore.New(memstore.Config{})
	good := func() oidc.Config {
		return oidc.Config{
			Guard: middleware.Config{Store: store, Keys: [][]byte{middleware.GenerateKey()}},
			Providers: []oidc.ProviderConfig{{
				// Never contacted: every case fails validation first.
				Issuer: "https://idp.invalid", ClientID: "app", RedirectURL: "https://app.example/callback",
			}},
		}
	}
	cases := []struct {
		name string
		mod  func(*oidc.Config)
	}{
		{"a guard renewer is refused", func(c *oidc.Config) { c.Guard.Renewer = stubRenewer{} }},
		{"a missing store is refused", func(c *oidc.Config) { c.Guard.Store = nil }},
		{"no provider is refused", func(c *oidc.Config) { c.Providers = nil }},
		{"an unknown refresh mode is refused", func(c *oidc.Config) { c.Refresh = 7 }},
		{"a negative timeout is refused", func(c *oidc.Config) { c.LoginTimeout = -time.Second }},
		{"a non-local default return_to is refused", func(c *oidc.Config) { c.DefaultReturnTo = "https://evil.example" }},
		{"a non-local logged-out URL is refused", func(c *oidc.Config) { c.LoggedOutURL = "//evil.example" }},
		{"an origin with a path is refused", func(c *oidc.Config) { c.Origins = []string{"https://app.example/x"} }},
		{"a relative issuer is refused", func(c *oidc.Config) { c.Providers[0].Issuer = "idp.example" }},
		{"a plain-HTTP issuer is refused outside development", func(c *oidc.Config) { c.Providers[0].Issuer = "http://idp.example" }},
		{"a missing client id is refused", func(c *oidc.Config) { c.Providers[0].ClientID = "" }},
		{"a relative redirect URL is refused", func(c *oidc.Config) { c.Providers[0].RedirectURL = "/callback" }},
		{"a redirect URL with a fragment is refused", func(c *oidc.Config) { c.Providers[0].RedirectURL = "https://app.example/cb#x" }},
		{"a relative post-logout URL is refused", func(c *oidc.Config) { c.Providers[0].PostLogoutRedirectURL = "/bye" }},
		{"a provider name with spaces is refused", func(c *oidc.Config) { c.Providers[0].Name = "my idp" }},
		{"an auth param overriding nonce is refused", func(c *oidc.Config) { c.Providers[0].AuthParams = map[string]string{"nonce": "x"} }},
		{"an auth param overriding prompt is refused", func(c *oidc.Config) { c.Providers[0].AuthParams = map[string]string{"prompt": "none"} }},
		{"an MFA acr value with a quote is refused", func(c *oidc.Config) { c.Providers[0].MFAACRValues = []string{`a"b`} }},
		{"the same issuer twice is refused", func(c *oidc.Config) {
			p := c.Providers[0]
			p.Name = "other"
			c.Providers = append(c.Providers, p)
		}},
		{"a bad guard config is refused", func(c *oidc.Config) { c.Guard.Keys = nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mod(&c)
			if _, err := oidc.New(t.Context(), c); !errors.Is(err, oidc.ErrInvalidConfig) {
				t.Fatalf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

type stubRenewer struct{}

func (stubRenewer) Renew(context.Context, *middleware.Session) error { return nil }

func TestLoginOptionsShapeTheRequest(t *testing.T) {
	r := newRig(t)
	h := r.rp.LoginHandler(
		oidc.WithPrompt("select_account", "none"), oidc.WithMaxAge(time.Hour), oidc.WithACRValues("urn:a"),
		oidc.WithAuthParam("ui_locales", "fr"), oidc.WithAuthParam("state", "forced"), oidc.WithProvider("fake"),
	)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login?acr_values=urn:b", nil))
	if rec.Code != http.StatusFound {
		t.Fatalf("status %d", rec.Code)
	}
	loc, _ := rec.Result().Location()
	q := loc.Query()
	for k, want := range map[string]string{
		"prompt": "select_account", "max_age": "3600", "acr_values": "urn:a urn:b", "ui_locales": "fr",
		"client_id": clientID, "response_type": "code", "code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if q.Get("state") == "forced" || len(q.Get("state")) != 43 {
		t.Errorf("an option overrode state: %q", q.Get("state"))
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	// A fence's demand wins over the options.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login?reauth=mfa", nil))
	loc, _ = rec.Result().Location()
	q = loc.Query()
	if q.Get("prompt") != "login select_account" || q.Get("max_age") != "0" || !strings.HasPrefix(q.Get("acr_values"), fakeidp.DefaultMFAACR) {
		t.Errorf("reauth=mfa with options: prompt %q max_age %q acr_values %q", q.Get("prompt"), q.Get("max_age"), q.Get("acr_values"))
	}
}

func TestLoginHandlerRefusesOtherMethods(t *testing.T) {
	r := newRig(t)
	rec := httptest.NewRecorder()
	r.rp.LoginHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/login", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") == "" {
		t.Fatalf("POST /login: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	r.rp.CallbackHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/callback", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /callback: %d", rec.Code)
	}
}

// Two providers behind one RP: ?provider= picks one, the callback knows
// which one answered from the login state, and sessions record the right
// issuer.
func TestSeveralProviders(t *testing.T) {
	second := fakeidp.New(t, fakeidp.WithTLS())
	second.SetUser(fakeidp.User{Subject: "bob", Tenant: "globex"})
	var rigURL string
	r := newRig(t, func(c *oidc.Config) {
		rigURL = c.Providers[0].RedirectURL
		c.Providers = append(c.Providers, oidc.ProviderConfig{
			Name: "second", Issuer: second.Issuer(), ClientID: "rp2", ClientSecret: "s2",
			RedirectURL: rigURL, TenantClaim: "tenant",
		})
	})
	second.AddClient(fakeidp.Client{ID: "rp2", Secret: "s2", RedirectURIs: []string{rigURL}})
	if got := r.rp.Providers(); len(got) != 2 || got[0] != "fake" || got[1] != "second" {
		t.Fatalf("Providers() = %v", got)
	}
	// The second provider's SSO cookie lives in the same browser.
	p := r.login("provider=second&return_to=/app/me")
	if p.status != 200 {
		t.Fatalf("login at the second provider: %d %s %v", p.status, p.body, r.loginErrors())
	}
	if got := p.json(t); got["sub"] != "bob" || got["tenant"] != "globex" {
		t.Fatalf("session = %v", got)
	}
}
