package oidc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/oidc"
)

// api is a bearer-mode setup: a provider, a verifier and a guard over a
// memstore, all on the provider's clock. The clock is moved a minute past
// the store's creation so tokens are newer than the store's epoch.
type apiRig struct {
	idp   *fakeidp.Provider
	v     *oidc.BearerVerifier
	store *memstore.Store
	guard *middleware.Guard
}

func newAPIRig(t testing.TB, mod func(*oidc.BearerConfig)) *apiRig {
	t.Helper()
	idp := fakeidp.New(t, fakeidp.WithTLS())
	store := memstore.New(memstore.Config{Now: idp.Now})
	g, err := middleware.New(middleware.Config{
		Store: store, Keys: [][]byte{middleware.GenerateKey()}, Now: idp.Now,
		MFA:    middleware.MFAPolicy{ACR: []string{fakeidp.DefaultMFAACR}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := oidc.BearerConfig{
		Issuers: []string{idp.Issuer()}, Audience: fakeidp.DefaultAPIAudience, TenantClaim: "tenant",
		HTTPClient: idp.Client(), Now: idp.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := oidc.NewBearerVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	idp.Advance(time.Minute)
	return &apiRig{idp: idp, v: v, store: store, guard: g}
}

func (a *apiRig) claims() map[string]any { return a.idp.AccessTokenClaims(clientID, alice) }

func TestBearerVerifierChecks(t *testing.T) {
	a := newAPIRig(t, nil)
	now := a.idp.Now()
	rogue, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(a.idp.SigningKey().Public())
	with := func(mod func(c map[string]any)) string {
		c := a.claims()
		mod(c)
		return a.idp.SignAccessToken(c)
	}
	cases := []struct {
		name  string
		token string
		check string // "" = accepted
	}{
		{"an RFC 9068 access token is accepted", a.idp.SignAccessToken(a.claims()), ""},
		{"typ JWT is accepted", a.idp.Sign(map[string]any{"typ": "JWT"}, a.claims()), ""},
		{"a token without typ is refused", a.idp.SignWith(a.idp.SigningKey().Signer, "RS256", map[string]any{"typ": nil, "kid": a.idp.SigningKey().ID}, a.claims()), oidc.CheckType},
		{"an ID token typ is refused", a.idp.Sign(map[string]any{"typ": "logout+jwt"}, a.claims()), oidc.CheckType},
		{"alg none is refused", a.idp.Unsigned(a.claims()), oidc.CheckSignature},
		{"HS256 keyed with the provider's public key is refused", a.idp.SignWith(pub, "HS256", map[string]any{"typ": "at+jwt", "kid": a.idp.SigningKey().ID}, a.claims()), oidc.CheckSignature},
		{"a header claiming another alg than the signature is refused", a.idp.Sign(map[string]any{"typ": "at+jwt", "alg": "RS512"}, a.claims()), oidc.CheckSignature},
		{"a key the provider never published is refused", a.idp.SignWith(rogue, "RS256", map[string]any{"typ": "at+jwt", "kid": a.idp.SigningKey().ID}, a.claims()), oidc.CheckSignature},
		{"another audience is refused", with(func(c map[string]any) { c["aud"] = "other-api" }), oidc.CheckAudience},
		{"an unknown issuer is refused", with(func(c map[string]any) { c["iss"] = "https://evil.example" }), oidc.CheckIssuer},
		{"an expired token is refused", with(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }), oidc.CheckExpiry},
		{"a token not yet valid is refused", with(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }), oidc.CheckNotBefore},
		{"a token without iat is refused", with(func(c map[string]any) { delete(c, "iat") }), oidc.CheckIssuedAt},
		{"a token issued in the future is refused", with(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), oidc.CheckIssuedAt},
		{"a token older than the max age is refused whatever exp says", with(func(c map[string]any) {
			c["iat"] = now.Add(-11 * time.Minute).Unix()
			c["exp"] = now.Add(time.Hour).Unix()
		}), oidc.CheckMaxAge},
		{"a token without sub is refused", with(func(c map[string]any) { delete(c, "sub") }), oidc.CheckSubject},
		{"a token without the tenant claim is refused", with(func(c map[string]any) { delete(c, "tenant") }), oidc.CheckTenant},
		{"a numeric sub is refused as malformed", with(func(c map[string]any) { c["sub"] = 42 }), oidc.CheckClaims},
		{"an oversized token is refused before parsing", strings.Repeat("a", 20000), oidc.CheckSize},
		{"garbage is refused", "not.a.jwt", oidc.CheckSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := a.v.VerifyToken(t.Context(), tc.token)
			if tc.check == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tok.Subject != "alice" || tok.Tenant != "acme" || tok.IdPSession == "" || tok.ACR != fakeidp.PasswordACR ||
					len(tok.AMR) != 1 || tok.IssuedAt.IsZero() || tok.AuthTime.IsZero() || tok.Issuer != a.idp.Issuer() {
					t.Fatalf("claims = %+v", tok)
				}
				return
			}
			var te *oidc.TokenError
			if !errors.Is(err, middleware.ErrInvalidToken) || !errors.As(err, &te) || te.Check != tc.check {
				t.Fatalf("got %v, want check %s", err, tc.check)
			}
			if tc.check == oidc.CheckMaxAge && !errors.Is(err, oidc.ErrTokenTooOld) {
				t.Fatalf("%v does not match ErrTokenTooOld", err)
			}
		})
	}
}

func TestBearerVerifierAcceptsHMACOnlyWhenConfigured(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a := newAPIRig(t, func(c *oidc.BearerConfig) {
		c.Algorithms = []string{"HS256"}
		c.InsecureHMACSecret = secret
	})
	hs := a.idp.SignWith(secret, "HS256", map[string]any{"typ": "at+jwt"}, a.claims())
	if _, err := a.v.VerifyToken(t.Context(), hs); err != nil {
		t.Fatalf("HS256 with the configured secret: %v", err)
	}
	if _, err := a.v.VerifyToken(t.Context(), a.idp.SignAccessToken(a.claims())); !errors.Is(err, middleware.ErrInvalidToken) {
		t.Fatalf("RS256 accepted though only HS256 is configured: %v", err)
	}
	other := a.idp.SignWith([]byte("another-secret-another-secret-32"), "HS256", map[string]any{"typ": "at+jwt"}, a.claims())
	if _, err := a.v.VerifyToken(t.Context(), other); !errors.Is(err, middleware.ErrInvalidToken) {
		t.Fatalf("HS256 with another secret accepted: %v", err)
	}
}

func TestBearerVerifierRestrictsClients(t *testing.T) {
	a := newAPIRig(t, func(c *oidc.BearerConfig) { c.ClientIDs = []string{"mobile-app"} })
	_, err := a.v.VerifyToken(t.Context(), a.idp.SignAccessToken(a.claims()))
	var te *oidc.TokenError
	if !errors.As(err, &te) || te.Check != oidc.CheckAZP {
		t.Fatalf("token of another client: %v", err)
	}
}

func TestNewBearerVerifierValidatesConfig(t *testing.T) {
	idp := fakeidp.New(t, fakeidp.WithTLS())
	base := oidc.BearerConfig{Issuers: []string{idp.Issuer()}, Audience: "api", HTTPClient: idp.Client()}
	cases := map[string]func(*oidc.BearerConfig){
		"no audience":               func(c *oidc.BearerConfig) { c.Audience = "" },
		"no issuer":                 func(c *oidc.BearerConfig) { c.Issuers = nil },
		"plain-HTTP issuer":         func(c *oidc.BearerConfig) { c.Issuers = []string{"http://idp.example"} },
		"alg none":                  func(c *oidc.BearerConfig) { c.Algorithms = []string{"none"} },
		"HS256 without a secret":    func(c *oidc.BearerConfig) { c.Algorithms = []string{"HS256"} },
		"HS256 with a short secret": func(c *oidc.BearerConfig) { c.Algorithms, c.InsecureHMACSecret = []string{"HS256"}, []byte("short") },
		"a secret without HS256":    func(c *oidc.BearerConfig) { c.InsecureHMACSecret = make([]byte, 32) },
		"negative max age":          func(c *oidc.BearerConfig) { c.MaxAge = -time.Second },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			c := base
			mod(&c)
			if _, err := oidc.NewBearerVerifier(t.Context(), c); !errors.Is(err, oidc.ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestBearerTokenIssuedBeforeAFenceIsRefused(t *testing.T) {
	a := newAPIRig(t, nil)
	before := a.idp.SignAccessToken(a.claims())
	a.idp.Advance(10 * time.Second)
	if _, err := a.store.Bump(t.Context(), middleware.SubjectScope(a.idp.Issuer(), "alice"), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
		t.Fatal(err)
	}
	a.idp.Advance(10 * time.Second)
	after := a.idp.SignAccessToken(a.claims())
	for _, tc := range []struct {
		name  string
		token string
		want  middleware.DecisionKind
	}{
		{"token issued before the fence is revoked", before, middleware.DecisionRevoked},
		{"token issued after the fence passes", after, middleware.DecisionAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api", nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			if d := a.guard.AuthenticateBearer(t.Context(), req, a.v); d.Kind != tc.want {
				t.Fatalf("decision %v, want %v", d, tc.want)
			}
		})
	}
}

// End to end through the net/http adapter: a fence with an MFA policy turns
// a token whose authentication predates it into the RFC 9470 challenge,
// exactly as the RFC writes it; a token from a fresh MFA login passes.
func TestBearerStepUpChallenge(t *testing.T) {
	a := newAPIRig(t, nil)
	old := a.claims() // authenticated now, with a password
	a.idp.Advance(10 * time.Second)
	if _, err := a.store.Bump(t.Context(), middleware.SubjectScope(a.idp.Issuer(), "alice"),
		middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA}); err != nil {
		t.Fatal(err)
	}
	a.idp.Advance(10 * time.Second)
	now := a.idp.Now().Unix()
	old["iat"], old["exp"] = now, now+300 // a new token, still for the old authentication
	fresh := a.claims()
	fresh["acr"], fresh["amr"] = fakeidp.DefaultMFAACR, []string{"pwd", "otp"}

	h := nethttp.Bearer(a.guard, a.v, nethttp.BearerRealm("api"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := middleware.TokenFromContext(r.Context())
		_, _ = w.Write([]byte(tok.ACR))
	}))
	call := func(claims map[string]any) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/payments", nil)
		req.Header.Set("Authorization", "Bearer "+a.idp.SignAccessToken(claims))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := call(old)
	want := `Bearer realm="api", error="insufficient_user_authentication", error_description="A fresh authentication is required", max_age="0", acr_values="` + fakeidp.DefaultMFAACR + `"`
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != want {
		t.Fatalf("old authentication: %d\n  %s\nwant\n  %s", rec.Code, rec.Header().Get("WWW-Authenticate"), want)
	}
	if rec = call(fresh); rec.Code != 200 || rec.Body.String() != fakeidp.DefaultMFAACR {
		t.Fatalf("fresh MFA token: %d %s %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body.String())
	}
}
