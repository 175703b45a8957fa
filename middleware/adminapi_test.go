package middleware_test

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

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// The endpoint-by-endpoint table runs behind both adapters, from
// adapters/nethttp and adapters/gin (internal/adminapitest). These tests
// cover the pieces on their own.

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
			fn := middleware.AllowIfDataContains(tt.key, tt.want)
			err := fn(context.Background(), &middleware.Session{ID: "x", Data: tt.data}, middleware.OpTerminateAll, middleware.GlobalScope())
			if (err == nil) != tt.allowed {
				t.Fatalf("err = %v, allowed want %v", err, tt.allowed)
			}
			if err != nil && !errors.Is(err, middleware.ErrForbidden) {
				t.Fatalf("refusal %v does not wrap ErrForbidden", err)
			}
		})
	}
	if err := middleware.AllowIfDataContains("roles", "admin")(context.Background(), nil, "", middleware.GlobalScope()); err == nil {
		t.Fatal("a nil session was allowed")
	}
}

func TestAllowSubjectsAndAnyOf(t *testing.T) {
	root := &middleware.Session{ID: "1", Issuer: "https://idp.test", Subject: "root"}
	spoof := &middleware.Session{ID: "2", Issuer: "https://other.test", Subject: "root"}
	alice := &middleware.Session{ID: "3", Issuer: "https://idp.test", Subject: "alice", Data: `{"roles":["admin"]}`}
	down := func(context.Context, *middleware.Session, string, middleware.Scope) error {
		return fmt.Errorf("lookup: %w", middleware.ErrStoreUnavailable)
	}
	tests := []struct {
		name string
		fn   middleware.AuthorizeFunc
		s    *middleware.Session
		want error // nil: allowed
	}{
		{"a listed subject at the issuer is allowed", middleware.AllowSubjects("https://idp.test", "root"), root, nil},
		{"the same subject at another issuer is refused", middleware.AllowSubjects("https://idp.test", "root"), spoof, middleware.ErrForbidden},
		{"an unlisted subject is refused", middleware.AllowSubjects("https://idp.test", "root"), alice, middleware.ErrForbidden},
		{"no subjects refuse everyone", middleware.AllowSubjects("https://idp.test"), root, middleware.ErrForbidden},
		{"DenyAll refuses", middleware.DenyAll, root, middleware.ErrForbidden},
		{"AnyOf allows what one allows", middleware.AnyOf(middleware.AllowSubjects("https://idp.test", "root"),
			middleware.AllowIfDataContains("roles", "admin")), alice, nil},
		{"AnyOf of nothing refuses", middleware.AnyOf(), root, middleware.ErrForbidden},
		{"AnyOf reports an outage when nothing allows", middleware.AnyOf(down, middleware.DenyAll), root, middleware.ErrStoreUnavailable},
		{"AnyOf allows despite another's outage", middleware.AnyOf(down, middleware.AllowSubjects("https://idp.test", "root")), root, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn(context.Background(), tt.s, middleware.OpTerminateAll, middleware.GlobalScope())
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCSRFToken(t *testing.T) {
	f := newFixture(t, nil)
	s, _ := f.issue(t, alice)
	other, _ := f.issue(t, alice)
	tok := f.guard.CSRFToken(s)
	if tok == "" || tok != f.guard.CSRFToken(s) {
		t.Fatalf("token %q is not stable", tok)
	}
	if tok == f.guard.CSRFToken(other) {
		t.Fatal("two sessions share a token")
	}
	rotated, err := middleware.New(middleware.Config{Store: f.mem, Keys: [][]byte{key(2), key(1)}})
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := middleware.New(middleware.Config{Store: f.mem, Keys: [][]byte{key(2)}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		g     *middleware.Guard
		s     *middleware.Session
		token string
		valid bool
	}{
		{"the session's own token is valid", f.guard, s, tok, true},
		{"a token made before a key rotation stays valid while the old key is in the ring", rotated, s, tok, true},
		{"the new key's token is valid", rotated, s, rotated.CSRFToken(s), true},
		{"a token under a dropped key is refused", dropped, s, tok, false},
		{"another session's token is refused", f.guard, other, tok, false},
		{"an empty token is refused", f.guard, s, "", false},
		{"a nil session is refused", f.guard, nil, tok, false},
		{"a prefix of the token is refused", f.guard, s, tok[:10], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.g.ValidCSRFToken(tt.s, tt.token); got != tt.valid {
				t.Fatalf("ValidCSRFToken = %v, want %v", got, tt.valid)
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
			got, err := middleware.ParseScope(tt.in)
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
		sc, err := middleware.ParseScope(in)
		if err != nil {
			return
		}
		if !sc.Valid() {
			t.Fatalf("ParseScope(%q) returned an invalid scope %v", in, sc)
		}
		again, err := middleware.ParseScope(sc.String())
		if err != nil || again != sc {
			t.Fatalf("round trip of %q: %v, %v", in, again, err)
		}
	})
}

func TestNewAdminAPIValidatesItsConfig(t *testing.T) {
	f := newFixture(t, nil)
	a := newAdmin(t, f)
	tests := []struct {
		name string
		cfg  middleware.AdminAPIConfig
	}{
		{"a prefix without a leading slash", middleware.AdminAPIConfig{Prefix: "admin/"}},
		{"a prefix without a trailing slash", middleware.AdminAPIConfig{Prefix: "/admin"}},
		{"an unknown scheme", middleware.AdminAPIConfig{Scheme: "ftp"}},
		{"an origin with a path", middleware.AdminAPIConfig{PublicOrigin: "https://admin.test/app"}},
		{"an origin without a scheme", middleware.AdminAPIConfig{PublicOrigin: "admin.test"}},
		{"an origin with user info", middleware.AdminAPIConfig{PublicOrigin: "https://u@admin.test"}},
		{"a negative body limit", middleware.AdminAPIConfig{MaxBodyBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := middleware.NewAdminAPI(a, tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := middleware.NewAdminAPI(nil, middleware.AdminAPIConfig{}); err == nil {
		t.Fatal("accepted a nil Admin")
	}
	api, err := middleware.NewAdminAPI(a, middleware.AdminAPIConfig{PublicOrigin: "https://Admin.Test/"})
	if err != nil || api.Prefix() != "/admin/api/" {
		t.Fatalf("defaults: %v, %v", api, err)
	}
}

func TestAdminAPIWithoutASessionIs401(t *testing.T) {
	f := newFixture(t, nil)
	api, err := middleware.NewAdminAPI(newAdmin(t, f), middleware.AdminAPIConfig{Authorize: middleware.AllowSubjects("x", "y")})
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

// FuzzAdminAPIBody throws arbitrary bodies at terminate-tenant as an
// authorized caller: whatever the input, the handler answers with one of
// its documented statuses, never panics, and changes a fence only when it
// answers 200.
func FuzzAdminAPIBody(f *testing.F) {
	for _, s := range []string{`{"tenant":"globex"}`, `{"tenant":"a","reauth":"mfa","at":"2030-01-01T00:00:00Z"}`,
		`{"tenant":"a","tenant":"b"}`, `{"tenant":{"x":1}}`, `null`, `{"tenant":"a"} x`, "{\"tenant\":\"\xff\"}", `{`, ``} {
		f.Add(s)
	}
	c := newClock()
	mem := memstore.New(memstore.Config{Now: c.Now})
	g, err := middleware.New(middleware.Config{Store: mem, Keys: [][]byte{key(1)}, Now: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	a, _ := middleware.NewAdmin(middleware.AdminConfig{Guard: g})
	api, err := middleware.NewAdminAPI(a, middleware.AdminAPIConfig{Authorize: middleware.AllowSubjects("https://idp.test", "root")})
	if err != nil {
		f.Fatal(err)
	}
	s, _, err := g.Issue(context.Background(), middleware.Claims{Issuer: "https://idp.test", Subject: "root", AuthTime: c.Now()})
	if err != nil {
		f.Fatal(err)
	}
	ctx := middleware.NewContext(context.Background(), middleware.Decision{Kind: middleware.DecisionAllowed, Session: s})
	tok := g.CSRFToken(s)
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
		r.Header.Set(middleware.HeaderCSRFToken, tok)
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
