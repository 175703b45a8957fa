// Package adminapitest holds the table of admin API cases that every
// framework adapter must pass with the API mounted behind it: each
// endpoint, terminate-all's confirmation, CSRF origin and token refusals,
// default-deny authorization, strict input that changes nothing when
// refused, the caller kept through terminate-all with the cookie in the
// same response, and exact audit entries.
//
// Each adapter's test calls [Run] with a [Mount] that puts the admin
// console (the page of package ui, which serves the API below it) and a
// probe handler behind its middleware.
package adminapitest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/testclock"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/admin/ui"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// Mount puts console under /admin/ (the page there, the API under
// /admin/api/) and probe at GET /app, both behind the adapter's
// middleware for g, and returns the whole application.
type Mount func(g *middleware.Guard, console http.Handler, probe http.Handler) http.Handler

// Issuer is the issuer of every test user.
const Issuer = "https://idp.test"

// Origin is the public origin the API is configured with.
const Origin = "https://admin.test"

// bumpStore fails every Bump while down is set; embedding the concrete
// memstore keeps its audit log and registry visible to the Service.
type bumpStore struct {
	*memstore.Store
	down atomic.Bool
}

func (b *bumpStore) Bump(ctx context.Context, s middleware.Scope, bp middleware.Bump) (middleware.Fence, error) {
	if b.down.Load() {
		return middleware.Fence{}, middleware.ErrStoreUnavailable
	}
	return b.Store.Bump(ctx, s, bp)
}

// plainStore hides every optional ability (no audit log, no registry).
type plainStore struct{ middleware.Store }

// user is a browser: a session and its current cookie value.
type user struct {
	s      *middleware.Session
	cookie string
}

type env struct {
	clock *testclock.Clock
	mem   *memstore.Store
	bumps *bumpStore
	guard *middleware.Guard
	admin *admin.Service
	api   *admin.API
	h     http.Handler

	root, alice, bob *user

	mu      sync.Mutex
	reloads map[string]int
}

type options struct {
	plain     bool // store without audit log and registry
	authorize admin.AuthorizeFunc
	noAuthz   bool // leave Authorize nil: the default
	cfg       func(*admin.APIConfig)
}

var rootData = `{"roles":["admin","user"]}`

func newEnv(t *testing.T, mount Mount, o options) *env {
	t.Helper()
	c := testclock.New()
	mem := memstore.New(memstore.Config{Now: c.Now})
	e := &env{clock: c, mem: mem, bumps: &bumpStore{Store: mem}, reloads: map[string]int{}}
	var st middleware.Store = e.bumps
	if o.plain {
		st = plainStore{e.bumps}
	}
	g, err := middleware.New(middleware.Config{
		Store: st, Keys: [][]byte{key(7)}, Now: c.Now, AccessLifetime: 2 * time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReload: func(_ context.Context, s *middleware.Session) error {
			e.mu.Lock()
			e.reloads[s.ID]++
			e.mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.guard = g
	e.admin, err = admin.New(admin.Config{Guard: g})
	if err != nil {
		t.Fatal(err)
	}
	cfg := admin.APIConfig{PublicOrigin: Origin, Authorize: admin.AllowSubjects(Issuer, "root")}
	if o.authorize != nil {
		cfg.Authorize = o.authorize
	}
	if o.noAuthz {
		cfg.Authorize = nil
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if e.api, err = admin.NewAPI(e.admin, cfg); err != nil {
		t.Fatal(err)
	}
	console, err := ui.New(e.api, ui.Config{})
	if err != nil {
		t.Fatal(err)
	}
	probe := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := middleware.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session in context", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, s.Subject)
	})
	e.h = mount(g, console, probe)
	e.root = e.issue(t, middleware.Claims{Issuer: Issuer, Subject: "root", Tenant: "acme", Data: rootData})
	e.alice = e.issue(t, middleware.Claims{Issuer: Issuer, Subject: "alice", Tenant: "acme", Data: `{"roles":["user"]}`})
	e.bob = e.issue(t, middleware.Claims{Issuer: Issuer, Subject: "bob", Tenant: "globex"})
	return e
}

func key(b byte) []byte {
	k := make([]byte, middleware.KeySize)
	for i := range k {
		k[i] = b
	}
	return k
}

func (e *env) issue(t *testing.T, c middleware.Claims) *user {
	t.Helper()
	c.AuthTime = e.clock.Now()
	s, ck, err := e.guard.Issue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return &user{s: s, cookie: ck.Value}
}

// req describes one request to the application.
type req struct {
	method string
	path   string
	body   string
	as     *user
	// mod adjusts the request after the defaults (same-origin headers,
	// JSON content type, the user's CSRF token) are set.
	mod func(r *http.Request)
}

// do sends rq like a browser on the admin page would and applies any
// Set-Cookie for the session cookie to the user, as a browser would.
func (e *env) do(t *testing.T, rq req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, "https://admin.test"+rq.path, body)
	r.Header.Set("Accept", "application/json")
	if rq.method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", Origin)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if rq.as != nil {
		r.AddCookie(&http.Cookie{Name: e.guard.CookieName(), Value: rq.as.cookie})
		r.Header.Set(admin.HeaderCSRFToken, e.api.CSRFToken(rq.as.s))
	}
	if rq.mod != nil {
		rq.mod(r)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s %s: Cache-Control = %q, want no-store", rq.method, rq.path, got)
	}
	if rq.as != nil {
		for _, c := range rec.Result().Cookies() {
			if c.Name == e.guard.CookieName() {
				rq.as.cookie = c.Value
			}
		}
	}
	return rec
}

// app requests the probe as u and returns the status and error code.
func (e *env) app(t *testing.T, u *user) (int, string) {
	t.Helper()
	rec := e.do(t, req{method: http.MethodGet, path: "/app", as: u})
	return rec.Code, errorCode(rec)
}

func errorCode(rec *httptest.ResponseRecorder) string {
	var b struct {
		Error string `json:"error"`
	}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(rec.Body.Bytes(), &b)
	}
	return b.Error
}

func decode(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, body %s", ct, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("decoding %s: %v", rec.Body, err)
	}
}

// state is everything a refused request must leave alone.
type state struct {
	fences []middleware.Fence
	audit  int
}

func (e *env) state(t *testing.T) state {
	t.Helper()
	scopes := []middleware.Scope{
		middleware.GlobalScope(), middleware.TenantScope("acme"), middleware.TenantScope("globex"),
		middleware.SubjectScope(Issuer, "root"), middleware.SubjectScope(Issuer, "alice"),
		middleware.SubjectScope(Issuer, "bob"), middleware.SessionScope(e.root.s.ID),
		middleware.SessionScope(e.alice.s.ID), middleware.SessionScope(e.bob.s.ID),
	}
	fs := make([]middleware.Fence, len(scopes))
	if _, err := e.mem.Fences(context.Background(), scopes, fs); err != nil {
		t.Fatal(err)
	}
	entries, _, err := e.mem.Audit(context.Background(), middleware.AuditQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return state{fences: fs, audit: len(entries)}
}

func (s state) equal(o state) bool { return reflect.DeepEqual(s, o) }

// entries returns the audit log, newest first.
func (e *env) entries(t *testing.T) []middleware.AuditEntry {
	t.Helper()
	out, _, err := e.mem.Audit(context.Background(), middleware.AuditQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apiOf builds the API over guard g with the default configuration (for
// tokens made under another key ring).
func apiOf(t *testing.T, g *middleware.Guard) *admin.API {
	t.Helper()
	svc, err := admin.New(admin.Config{Guard: g})
	if err != nil {
		t.Fatal(err)
	}
	api, err := admin.NewAPI(svc, admin.APIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return api
}
