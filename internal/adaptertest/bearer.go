package adaptertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// BearerWrap builds the bearer adapter under test around next, with the
// realm "api".
type BearerWrap func(g *middleware.Guard, v middleware.TokenVerifier, next http.Handler) http.Handler

// stubVerifier maps raw tokens to claims; anything else is refused as the
// real verifier refuses: an error wrapping middleware.ErrInvalidToken.
type stubVerifier map[string]*middleware.TokenClaims

func (s stubVerifier) VerifyToken(_ context.Context, raw string) (*middleware.TokenClaims, error) {
	if tc, ok := s[raw]; ok {
		cp := *tc
		return &cp, nil
	}
	return nil, fmt.Errorf("%w: unknown test token", middleware.ErrInvalidToken)
}

// Times of the bearer table: the store (and its epoch) starts at t0, a
// fence is bumped at t0+30s, requests arrive at t0+2m.
var (
	t0       = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	fenceAt  = t0.Add(30 * time.Second)
	requestA = t0.Add(2 * time.Minute)
)

const mfaACR = "urn:example:mfa"

var bearerTokens = stubVerifier{
	"fresh": {Issuer: "https://idp.test", Subject: "alice", Tenant: "acme", IssuedAt: t0.Add(time.Minute),
		AuthTime: t0.Add(time.Minute), ACR: "urn:example:pwd"},
	"issued-before-fence": {Issuer: "https://idp.test", Subject: "alice", Tenant: "acme", IssuedAt: t0.Add(20 * time.Second),
		AuthTime: t0.Add(20 * time.Second)},
	"old-authentication": {Issuer: "https://idp.test", Subject: "alice", Tenant: "acme", IssuedAt: t0.Add(time.Minute),
		AuthTime: t0.Add(-time.Hour), ACR: "urn:example:pwd"},
}

type bcase struct {
	name      string
	header    string // Authorization
	fence     middleware.Policy
	fenceOn   bool
	storeDown bool
	status    int
	reached   bool
	challenge string // exact WWW-Authenticate; "" = must be absent
	code      string // JSON error code
}

var bearerCases = []bcase{
	{name: "valid token reaches the handler with its claims", header: "Bearer fresh", status: 200, reached: true},
	{name: "missing token is 401 with a bare challenge", status: 401,
		challenge: `Bearer realm="api"`, code: "no_session"},
	{name: "another scheme counts as no token", header: "Basic YWxpY2U6cHc=", status: 401,
		challenge: `Bearer realm="api"`, code: "no_session"},
	{name: "token the verifier refuses is 401 invalid_token", header: "Bearer forged", status: 401,
		challenge: `Bearer realm="api", error="invalid_token", error_description="The access token is invalid"`, code: "invalid_session"},
	{name: "token issued before a subject fence is 401 invalid_token revoked", header: "Bearer issued-before-fence",
		fenceOn: true, status: 401,
		challenge: `Bearer realm="api", error="invalid_token", error_description="The access token was revoked"`, code: "revoked"},
	{name: "token issued after a plain fence still passes", header: "Bearer fresh", fenceOn: true, status: 200, reached: true},
	{name: "authentication older than an MFA fence gets the RFC 9470 step-up challenge", header: "Bearer old-authentication",
		fenceOn: true, fence: middleware.PolicyMFA, status: 401,
		challenge: `Bearer realm="api", error="insufficient_user_authentication", error_description="A fresh authentication is required", max_age="0", acr_values="urn:example:mfa"`,
		code:      "reauth_required"},
	{name: "authentication older than a fresh-login fence gets max_age without acr_values", header: "Bearer old-authentication",
		fenceOn: true, fence: middleware.PolicyFreshLogin, status: 401,
		challenge: `Bearer realm="api", error="insufficient_user_authentication", error_description="A fresh authentication is required", max_age="0"`,
		code:      "reauth_required"},
	{name: "store outage is 503 without a challenge and never reaches the handler", header: "Bearer fresh", storeDown: true,
		status: 503, code: "store_unavailable"},
}

// RunBearer runs the shared bearer table against the adapter built by wrap.
func RunBearer(t *testing.T, wrap BearerWrap) {
	for _, tc := range bearerCases {
		t.Run(tc.name, func(t *testing.T) {
			var clock atomic.Int64
			clock.Store(t0.UnixNano())
			now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
			mem := memstore.New(memstore.Config{Now: now})
			st := &failing{Store: mem}
			g, err := middleware.New(middleware.Config{
				Store: st, Keys: [][]byte{make([]byte, middleware.KeySize)}, Now: now,
				MFA:    middleware.MFAPolicy{ACR: []string{mfaACR}},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.fenceOn {
				clock.Store(fenceAt.UnixNano())
				if _, err := mem.Bump(t.Context(), middleware.SubjectScope("https://idp.test", "alice"),
					middleware.Bump{Kind: middleware.BumpRevoke, Policy: tc.fence}); err != nil {
					t.Fatal(err)
				}
			}
			clock.Store(requestA.UnixNano())
			st.down.Store(tc.storeDown)

			var reached atomic.Bool
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Store(true)
				tok, ok := middleware.TokenFromContext(r.Context())
				if !ok {
					http.Error(w, "no token in context", 500)
					return
				}
				_, _ = io.WriteString(w, tok.Subject)
			})
			req := httptest.NewRequest(http.MethodGet, "/api/items", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			wrap(g, bearerTokens, next).ServeHTTP(rec, req)

			if reached.Load() != tc.reached {
				t.Fatalf("handler reached = %v, want %v", reached.Load(), tc.reached)
			}
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tc.status, rec.Body.String())
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control = %q, want no-store", cc)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Fatalf("WWW-Authenticate =\n  %s\nwant\n  %s", got, tc.challenge)
			}
			if tc.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if tc.reached && rec.Body.String() != "alice" {
				t.Fatalf("handler saw token subject %q, want alice", rec.Body.String())
			}
			if tc.code != "" {
				var body middleware.RefusalBody
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != tc.code {
					t.Fatalf("body = %q (%v), want error %q", rec.Body.String(), err, tc.code)
				}
			}
		})
	}
}
