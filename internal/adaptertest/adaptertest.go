// Package adaptertest holds the one table of request cases that every
// framework adapter must pass: a refused request never reaches the
// handler, refusals carry the right status, body or redirect and
// Cache-Control: no-store, and an allowed request sees its session.
package adaptertest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// Wrap builds the adapter under test around next, a plain handler that
// records that it ran and echoes the session's subject.
type Wrap func(g *middleware.Guard, next http.Handler) http.Handler

type failing struct {
	middleware.Store
	down atomic.Bool
}

func (f *failing) Fences(ctx context.Context, s []middleware.Scope, dst []middleware.Fence) (middleware.Version, error) {
	if f.down.Load() {
		return middleware.Version{}, middleware.ErrStoreUnavailable
	}
	return f.Store.Fences(ctx, s, dst)
}

type env struct {
	guard *middleware.Guard
	mem   *memstore.Store
	store *failing
	now   time.Time
}

type tcase struct {
	name string
	// prepare returns the cookie value to send (after changing state).
	prepare func(t *testing.T, e *env) string
	browser bool
	// wants
	status       int
	reached      bool
	code         string // JSON error code
	locationHas  string
	clearsCookie bool
}

func issue(t *testing.T, e *env) string {
	t.Helper()
	_, ck, err := e.guard.Issue(context.Background(), middleware.Claims{
		Issuer: "https://idp.test", Subject: "alice", Tenant: "acme", AuthTime: e.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ck.Value
}

func bump(t *testing.T, e *env, s middleware.Scope, p middleware.Policy) {
	t.Helper()
	if _, err := e.mem.Bump(context.Background(), s, middleware.Bump{Kind: middleware.BumpRevoke, Policy: p}); err != nil {
		t.Fatal(err)
	}
}

var cases = []tcase{
	{name: "valid session reaches the handler", prepare: issue, status: 200, reached: true},
	{name: "missing cookie on an API call is 401 no_session", prepare: func(*testing.T, *env) string { return "" },
		status: 401, code: "no_session"},
	{name: "missing cookie on a navigation redirects to login", prepare: func(*testing.T, *env) string { return "" },
		browser: true, status: 303, locationHas: "/login?reason=no_session"},
	{name: "tampered cookie is 401 invalid_session and cleared", prepare: func(t *testing.T, e *env) string {
		v := issue(t, e)
		return Tamper(v)
	}, status: 401, code: "invalid_session", clearsCookie: true},
	{name: "revoked session is 401 revoked and cleared", prepare: func(t *testing.T, e *env) string {
		v := issue(t, e)
		bump(t, e, middleware.GlobalScope(), middleware.PolicyNone)
		return v
	}, status: 401, code: "revoked", clearsCookie: true},
	{name: "revoked session with MFA policy redirects a navigation with reauth=mfa", prepare: func(t *testing.T, e *env) string {
		v := issue(t, e)
		bump(t, e, middleware.TenantScope("acme"), middleware.PolicyMFA)
		return v
	}, browser: true, status: 303, locationHas: "reauth=mfa", clearsCookie: true},
	{name: "store outage is 503 and never reaches the handler", prepare: func(t *testing.T, e *env) string {
		v := issue(t, e)
		e.store.down.Store(true)
		return v
	}, status: 503, code: "store_unavailable"},
	{name: "store outage on a navigation is 503, not a login loop", prepare: func(t *testing.T, e *env) string {
		v := issue(t, e)
		e.store.down.Store(true)
		return v
	}, browser: true, status: 503, code: "store_unavailable"},
}

// Run runs the shared table against the adapter built by wrap.
func Run(t *testing.T, wrap Wrap) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			mem := memstore.New(memstore.Config{Now: func() time.Time { return now }})
			st := &failing{Store: mem}
			g, err := middleware.New(middleware.Config{
				Store: st, Keys: [][]byte{make([]byte, middleware.KeySize)},
				Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			e := &env{guard: g, mem: mem, store: st, now: now}
			value := tc.prepare(t, e)

			var reached atomic.Bool
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Store(true)
				s, ok := middleware.FromContext(r.Context())
				if !ok {
					http.Error(w, "no session in context", 500)
					return
				}
				_, _ = io.WriteString(w, s.Subject)
			})
			h := wrap(g, next)
			req := httptest.NewRequest(http.MethodGet, "/app/page?x=1", nil)
			if value != "" {
				req.AddCookie(&http.Cookie{Name: g.CookieName(), Value: value})
			}
			if tc.browser {
				req.Header.Set("Sec-Fetch-Mode", "navigate")
				req.Header.Set("Accept", "text/html")
			} else {
				req.Header.Set("Accept", "application/json")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if reached.Load() != tc.reached {
				t.Fatalf("handler reached = %v, want %v", reached.Load(), tc.reached)
			}
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tc.status, rec.Body.String())
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control = %q, want no-store", cc)
			}
			if tc.reached && rec.Body.String() != "alice" {
				t.Fatalf("handler saw session %q, want alice", rec.Body.String())
			}
			if tc.code != "" {
				var body middleware.RefusalBody
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != tc.code {
					t.Fatalf("body = %q (%v), want error %q", rec.Body.String(), err, tc.code)
				}
			}
			if tc.locationHas != "" && !strings.Contains(rec.Header().Get("Location"), tc.locationHas) {
				t.Fatalf("Location = %q, want it to contain %q", rec.Header().Get("Location"), tc.locationHas)
			}
			cleared := false
			for _, c := range rec.Result().Cookies() {
				if c.Name == g.CookieName() && c.MaxAge < 0 {
					cleared = true
				}
			}
			if cleared != tc.clearsCookie {
				t.Fatalf("cookie cleared = %v, want %v", cleared, tc.clearsCookie)
			}
		})
	}
}

// Tamper returns v with one character in its middle changed to another
// base64url character, so the sealed value always fails authentication.
// (Changing the last character is not enough: it may only carry padding
// bits, which a lenient decoder ignores.)
func Tamper(v string) string {
	i := len(v) / 2
	c := byte('A')
	if v[i] == 'A' {
		c = 'B'
	}
	return v[:i] + string(c) + v[i+1:]
}
