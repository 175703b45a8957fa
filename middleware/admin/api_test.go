package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/internal/testclock"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// The endpoint-by-endpoint table runs behind both adapters, from
// adapters/nethttp and adapters/gin (internal/adminapitest). These tests
// cover the pieces on their own.

// allReq is an immediate terminate-all.
var allReq = admin.Request{Op: admin.OpTerminateAll, Target: middleware.GlobalScope()}

func TestAllowIfDataContains(t *testing.T) {
	tests := []struct {
		name      string
		key, want string
		data      string
		allowed   bool
	}{
		{"a string array containing the value allows", "roles", "admin", `{"roles":["user","admin"]}`, true},
		{"a string equal to the value allows", "role", "admin", `{"role":"admin"}`, true},
		{"a nested path allows", "realm_access.roles", "admin", `{"realm_access":{"roles":["admin"]}}`, true},
		{"a longer string does not allow", "role", "admin", `{"role":"administrator"}`, false},
		{"a space-separated string does not allow", "role", "admin", `{"role":"admin user"}`, false},
		{"an array without the value does not allow", "roles", "admin", `{"roles":["user"]}`, false},
		{"non-string array elements do not allow", "roles", "1", `{"roles":[1,true]}`, false},
		{"a missing key does not allow", "roles", "admin", `{"groups":["admin"]}`, false},
		{"a path through a non-object does not allow", "roles.admin", "x", `{"roles":["admin"]}`, false},
		{"data that is not JSON does not allow", "roles", "admin", `roles=admin`, false},
		{"data that is a JSON array does not allow", "roles", "admin", `["admin"]`, false},
		{"empty data does not allow", "roles", "admin", ``, false},
		{"an empty key does not allow", "", "admin", `{"":"admin"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := admin.AllowIfDataContains(tt.key, tt.want)
			err := fn(context.Background(), &middleware.Session{ID: "x", Data: tt.data}, allReq)
			if (err == nil) != tt.allowed {
				t.Fatalf("err = %v, allowed want %v", err, tt.allowed)
			}
			if err != nil && !errors.Is(err, admin.ErrForbidden) {
				t.Fatalf("refusal %v does not wrap ErrForbidden", err)
			}
		})
	}
	if err := admin.AllowIfDataContains("roles", "admin")(context.Background(), nil, allReq); err == nil {
		t.Fatal("a nil session was allowed")
	}
}

func TestAllowSubjectsAndAnyOf(t *testing.T) {
	root := &middleware.Session{ID: "1", Issuer: "https://idp.test", Subject: "root"}
	spoof := &middleware.Session{ID: "2", Issuer: "https://other.test", Subject: "root"}
	alice := &middleware.Session{ID: "3", Issuer: "https://idp.test", Subject: "alice", Data: `{"roles":["admin"]}`}
	down := func(context.Context, *middleware.Session, admin.Request) error {
		return fmt.Errorf("lookup: %w", middleware.ErrStoreUnavailable)
	}
	tests := []struct {
		name string
		fn   admin.AuthorizeFunc
		s    *middleware.Session
		want error // nil: allowed
	}{
		{"a listed subject at the issuer is allowed", admin.AllowSubjects("https://idp.test", "root"), root, nil},
		{"the same subject at another issuer is refused", admin.AllowSubjects("https://idp.test", "root"), spoof, admin.ErrForbidden},
		{"an unlisted subject is refused", admin.AllowSubjects("https://idp.test", "root"), alice, admin.ErrForbidden},
		{"no subjects refuse everyone", admin.AllowSubjects("https://idp.test"), root, admin.ErrForbidden},
		{"DenyAll refuses", admin.DenyAll, root, admin.ErrForbidden},
		{"AnyOf allows what one allows", admin.AnyOf(admin.AllowSubjects("https://idp.test", "root"),
			admin.AllowIfDataContains("roles", "admin")), alice, nil},
		{"AnyOf of nothing refuses", admin.AnyOf(), root, admin.ErrForbidden},
		{"AnyOf reports an outage when nothing allows", admin.AnyOf(down, admin.DenyAll), root, middleware.ErrStoreUnavailable},
		{"AnyOf allows despite another's outage", admin.AnyOf(down, admin.AllowSubjects("https://idp.test", "root")), root, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn(context.Background(), tt.s, allReq)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// apiOf is the API over guard g with the default configuration.
func apiOf(t testing.TB, g *middleware.Guard) *admin.API {
	t.Helper()
	svc, err := admin.New(admin.Config{Guard: g})
	if err != nil {
		t.Fatal(err)
	}
	api, err := admin.NewAPI(svc, admin.APIConfig{Authorize: admin.AllowSubjects("https://idp.test", "alice")})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// post is a state-changing call as the admin page makes it, with token
// as the anti-CSRF header, from session s.
func post(s *middleware.Session, token string) *http.Request {
	ctx := middleware.NewContext(context.Background(), middleware.Decision{Kind: middleware.DecisionAllowed, Session: s})
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/admin/api/reload", strings.NewReader(`{"scope":"global"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if token != "" {
		r.Header.Set(admin.HeaderCSRFToken, token)
	}
	return r
}

func TestCSRFToken(t *testing.T) {
	f := newFixture(t, nil)
	s, _ := f.issue(t, alice)
	other, _ := f.issue(t, alice)
	api := apiOf(t, f.guard)
	tok := api.CSRFToken(s)
	if tok == "" || tok != api.CSRFToken(s) {
		t.Fatalf("token %q is not stable", tok)
	}
	if tok == api.CSRFToken(other) {
		t.Fatal("two sessions share a token")
	}
	if api.CSRFToken(nil) != "" {
		t.Fatal("a nil session has a token")
	}
	guard := func(keys ...[]byte) *admin.API {
		g, err := middleware.New(middleware.Config{Store: f.mem, Keys: keys, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return apiOf(t, g)
	}
	rotated, dropped := guard(key(2), key(1)), guard(key(2))
	tests := []struct {
		name  string
		api   *admin.API
		s     *middleware.Session
		token string
		valid bool
	}{
		{"the session's own token is valid", api, s, tok, true},
		{"a token made before a key rotation stays valid while the old key is in the ring", rotated, s, tok, true},
		{"the new key's token is valid", rotated, s, rotated.CSRFToken(s), true},
		{"a token under a dropped key is refused", dropped, s, tok, false},
		{"another session's token is refused", api, other, tok, false},
		{"an empty token is refused", api, s, "", false},
		{"a prefix of the token is refused", api, s, tok[:10], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.api.ServeHTTP(rec, post(tt.s, tt.token))
			refused := rec.Code == http.StatusForbidden && strings.Contains(rec.Body.String(), `"csrf_token"`)
			if refused == tt.valid {
				t.Fatalf("status %d %s; valid want %v", rec.Code, rec.Body, tt.valid)
			}
		})
	}
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want middleware.Scope
		ok   bool
	}{
		{"global", middleware.GlobalScope(), true},
		{"tenant:acme", middleware.TenantScope("acme"), true},
		{"tenant:a:b", middleware.TenantScope("a:b"), true},
		{"subject:https://idp.test|alice", middleware.SubjectScope("https://idp.test", "alice"), true},
		{"subject:https://x.auth0.com/|auth0|123", middleware.SubjectScope("https://x.auth0.com/", "auth0|123"), true},
		{"idp_session:https://idp.test|sid-1", middleware.IdPSessionScope("https://idp.test", "sid-1"), true},
		{"session:abc", middleware.SessionScope("abc"), true},
		{"global:x", middleware.Scope{}, false},
		{"tenant:", middleware.Scope{}, false},
		{"tenant", middleware.Scope{}, false},
		{"subject:alice", middleware.Scope{}, false},
		{"subject:|alice", middleware.Scope{}, false},
		{"subject:https://idp.test|", middleware.Scope{}, false},
		{"epoch", middleware.Scope{}, false},
		{"user:x|y", middleware.Scope{}, false},
		{"", middleware.Scope{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := admin.ParseScope(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("ParseScope(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
			if err != nil && !errors.Is(err, middleware.ErrInvalidScope) {
				t.Fatalf("error %v does not wrap ErrInvalidScope", err)
			}
			if err == nil && got.String() != tt.in {
				t.Fatalf("String() = %q, want the input back", got.String())
			}
		})
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"global", "tenant:acme", "subject:https://idp|a|b", "idp_session:i|s", "session:x", "epoch", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sc, err := admin.ParseScope(in)
		if err != nil {
			return
		}
		if !sc.Valid() {
			t.Fatalf("ParseScope(%q) returned an invalid scope %v", in, sc)
		}
		again, err := admin.ParseScope(sc.String())
		if err != nil || again != sc {
			t.Fatalf("round trip of %q: %v, %v", in, again, err)
		}
	})
}

func TestNewAPIValidatesItsConfig(t *testing.T) {
	f := newFixture(t, nil)
	a := f.service(t)
	tests := []struct {
		name string
		cfg  admin.APIConfig
	}{
		{"a prefix without a leading slash", admin.APIConfig{Prefix: "admin/"}},
		{"a prefix without a trailing slash", admin.APIConfig{Prefix: "/admin"}},
		{"an unknown scheme", admin.APIConfig{Scheme: "ftp"}},
		{"an origin with a path", admin.APIConfig{PublicOrigin: "https://admin.test/app"}},
		{"an origin without a scheme", admin.APIConfig{PublicOrigin: "admin.test"}},
		{"an origin with user info", admin.APIConfig{PublicOrigin: "https://u@admin.test"}},
		{"a negative body limit", admin.APIConfig{MaxBodyBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := admin.NewAPI(a, tt.cfg); !errors.Is(err, admin.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := admin.NewAPI(nil, admin.APIConfig{}); !errors.Is(err, admin.ErrInvalidConfig) {
		t.Fatalf("a nil Service: %v", err)
	}
	api, err := admin.NewAPI(a, admin.APIConfig{PublicOrigin: "https://Admin.Test/"})
	if err != nil || api.Prefix() != "/admin/api/" {
		t.Fatalf("defaults: %v, %v", api, err)
	}
}

func TestAPIWithoutASessionIs401(t *testing.T) {
	f := newFixture(t, nil)
	api, err := admin.NewAPI(f.service(t), admin.APIConfig{Authorize: admin.AllowSubjects("x", "y")})
	if err != nil {
		t.Fatal(err)
	}
	for _, rq := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/admin/api/me", nil),
		httptest.NewRequest(http.MethodPost, "/admin/api/terminate-all", strings.NewReader(`{"confirm":"terminate-all"}`)),
	} {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, rq)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), `"error":"no_session"`) ||
			rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %s %v", rq.URL.Path, rec.Code, rec.Body, rec.Header())
		}
	}
}

// FuzzAPIBody throws arbitrary bodies at terminate-tenant as an
// authorized caller: whatever the input, the handler answers with one of
// its documented statuses, never panics, and changes a fence only when it
// answers 200.
func FuzzAPIBody(f *testing.F) {
	for _, s := range []string{`{"tenant":"globex"}`, `{"tenant":"a","reauth":"mfa","at":"2030-01-01T00:00:00Z"}`,
		`{"tenant":"a","tenant":"b"}`, `{"tenant":{"x":1}}`, `null`, `{"tenant":"a"} x`, "{\"tenant\":\"\xff\"}", `{`, ``} {
		f.Add(s)
	}
	c := testclock.New()
	mem := memstore.New(memstore.Config{Now: c.Now})
	g, err := middleware.New(middleware.Config{Store: mem, Keys: [][]byte{key(1)}, Now: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	a, _ := admin.New(admin.Config{Guard: g})
	api, err := admin.NewAPI(a, admin.APIConfig{Authorize: admin.AllowSubjects("https://idp.test", "root")})
	if err != nil {
		f.Fatal(err)
	}
	s, _, err := g.Issue(context.Background(), middleware.Claims{Issuer: "https://idp.test", Subject: "root", AuthTime: c.Now()})
	if err != nil {
		f.Fatal(err)
	}
	ctx := middleware.NewContext(context.Background(), middleware.Decision{Kind: middleware.DecisionAllowed, Session: s})
	tok := api.CSRFToken(s)
	f.Fuzz(func(t *testing.T, body string) {
		var before, after [1]middleware.Fence
		if _, err := mem.Fences(context.Background(), []middleware.Scope{middleware.GlobalScope()}, before[:]); err != nil {
			t.Fatal(err)
		}
		newest := func() string {
			e, _, err := mem.Audit(context.Background(), middleware.AuditQuery{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(e) == 0 {
				return ""
			}
			return e[0].ID
		}
		last := newest()
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/admin/api/terminate-tenant", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set(admin.HeaderCSRFToken, tok)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		switch rec.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if _, err := mem.Fences(context.Background(), []middleware.Scope{middleware.GlobalScope()}, after[:]); err != nil {
			t.Fatal(err)
		}
		if before != after {
			t.Fatalf("terminate-tenant moved the global fence for %q", body)
		}
		if rec.Code != 200 && newest() != last {
			t.Fatalf("a refused request (%d) was audited: %q", rec.Code, body)
		}
	})
}

func TestOpNamesAreTheEndpoints(t *testing.T) {
	want := []string{"unknown", "terminate-all", "terminate-tenant", "terminate-user", "terminate-session",
		"cancel", "reload", "sessions", "audit", "fences", "console", "unknown"}
	for i, w := range want {
		if got := admin.Op(i).String(); got != w {
			t.Errorf("Op(%d) = %q, want %q", i, got, w)
		}
	}
	if (admin.Request{}).Announced() {
		t.Error("a request without At is announced")
	}
}
