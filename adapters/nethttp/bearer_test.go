package nethttp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/internal/adaptertest"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

func TestSharedBearerTable(t *testing.T) {
	adaptertest.RunBearer(t, func(g *middleware.Guard, v middleware.TokenVerifier, next http.Handler) http.Handler {
		return nethttp.Bearer(g, v, nethttp.BearerRealm("api"))(next)
	})
}

func TestBearerOptionalLetsAnonymousRequestsThrough(t *testing.T) {
	g, err := middleware.New(middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}})
	if err != nil {
		t.Fatal(err)
	}
	reached := false
	h := nethttp.Bearer(g, staticVerifier{}, nethttp.BearerOptional())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		if _, ok := middleware.TokenFromContext(r.Context()); ok {
			t.Error("anonymous request carries a token")
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if !reached || rec.Code != http.StatusOK {
		t.Fatalf("reached=%v status=%d", reached, rec.Code)
	}
	// A bad token is still refused.
	reached = false
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer nope")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if reached || rec.Code != http.StatusUnauthorized {
		t.Fatalf("reached=%v status=%d", reached, rec.Code)
	}
}

// staticVerifier accepts the token "alice", issued a minute from now so
// it is newer than the store's epoch.
type staticVerifier struct{}

func (staticVerifier) VerifyToken(_ context.Context, raw string) (*middleware.TokenClaims, error) {
	if raw != "alice" {
		return nil, fmt.Errorf("%w: not alice", middleware.ErrInvalidToken)
	}
	now := time.Now().Add(time.Minute)
	return &middleware.TokenClaims{Issuer: "https://idp.example", Subject: "alice", IssuedAt: now, AuthTime: now.Add(-time.Hour)}, nil
}

// A fence with an MFA policy turns a token whose authentication predates
// it into an RFC 9470 step-up challenge.
func ExampleBearer() {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	guard, _ := middleware.New(middleware.Config{
		Store: store, Keys: [][]byte{middleware.GenerateKey()},
		MFA:    middleware.MFAPolicy{ACR: []string{"urn:example:mfa"}},
		Logger: slog.New(slog.DiscardHandler),
	})
	api := nethttp.Bearer(guard, staticVerifier{}, nethttp.BearerRealm("api"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := middleware.TokenFromContext(r.Context())
		fmt.Fprint(w, "hello ", tok.Subject)
	}))

	call := func() {
		req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
		req.Header.Set("Authorization", "Bearer alice")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if ch := rec.Header().Get("WWW-Authenticate"); ch != "" {
			fmt.Println(rec.Code, ch)
			return
		}
		fmt.Println(rec.Code, rec.Body.String())
	}
	call()
	_, _ = store.Bump(ctx, middleware.SubjectScope("https://idp.example", "alice"),
		middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA})
	call()
	// Output:
	// 200 hello alice
	// 401 Bearer realm="api", error="insufficient_user_authentication", error_description="A fresh authentication is required", max_age="0", acr_values="urn:example:mfa"
}
