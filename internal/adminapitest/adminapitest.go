package adminapitest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

const (
	confirmAll = `{"reason":"incident 42","reauth":"mfa","confirm":"terminate-all"}`
	post       = http.MethodPost
	get        = http.MethodGet
	api        = "/admin/api/"
)

// refusal is a request the API must refuse without changing anything.
type refusal struct {
	name   string
	opts   options
	rq     func(t *testing.T, e *env) req
	status int
	code   string
}

func asRoot(method, endpoint, body string, mod ...func(*http.Request)) func(*testing.T, *env) req {
	return func(_ *testing.T, e *env) req {
		r := req{method: method, path: api + endpoint, body: body, as: e.root}
		if len(mod) > 0 {
			r.mod = mod[0]
		}
		return r
	}
}

func header(k, v string) func(*http.Request) {
	return func(r *http.Request) {
		if v == "" {
			r.Header.Del(k)
			return
		}
		r.Header.Set(k, v)
	}
}

func headers(fns ...func(*http.Request)) func(*http.Request) {
	return func(r *http.Request) {
		for _, f := range fns {
			f(r)
		}
	}
}

var noFetchMeta = header("Sec-Fetch-Site", "")

var refusals = []refusal{
	// Confirmation.
	{name: "terminate-all without confirm is refused", rq: asRoot(post, "terminate-all", `{"reason":"x"}`),
		status: 400, code: "confirmation_required"},
	{name: "terminate-all with the wrong confirm word is refused", rq: asRoot(post, "terminate-all", `{"confirm":"yes"}`),
		status: 400, code: "confirmation_required"},
	{name: "terminate-all with confirm true is refused", rq: asRoot(post, "terminate-all", `{"confirm":true}`),
		status: 400, code: "invalid_request"},

	// CSRF: origin.
	{name: "cross-site Sec-Fetch-Site is refused", rq: asRoot(post, "terminate-all", confirmAll, header("Sec-Fetch-Site", "cross-site")),
		status: 403, code: "csrf_origin"},
	{name: "same-site but not same-origin Sec-Fetch-Site is refused", rq: asRoot(post, "terminate-all", confirmAll, header("Sec-Fetch-Site", "same-site")),
		status: 403, code: "csrf_origin"},
	{name: "without Sec-Fetch-Site a foreign Origin is refused", rq: asRoot(post, "terminate-all", confirmAll,
		headers(noFetchMeta, header("Origin", "https://evil.test"))), status: 403, code: "csrf_origin"},
	{name: "without Sec-Fetch-Site an http Origin for the https site is refused", rq: asRoot(post, "terminate-all", confirmAll,
		headers(noFetchMeta, header("Origin", "http://admin.test"))), status: 403, code: "csrf_origin"},
	{name: "without Sec-Fetch-Site a null Origin is refused", rq: asRoot(post, "terminate-all", confirmAll,
		headers(noFetchMeta, header("Origin", "null"))), status: 403, code: "csrf_origin"},
	{name: "without Sec-Fetch-Site or Origin the request is refused", rq: asRoot(post, "terminate-all", confirmAll,
		headers(noFetchMeta, header("Origin", ""))), status: 403, code: "csrf_origin"},
	{name: "the origin check runs before the body is read", rq: asRoot(post, "terminate-all", `not json`,
		header("Sec-Fetch-Site", "cross-site")), status: 403, code: "csrf_origin"},

	// CSRF: token.
	{name: "a missing CSRF token is refused", rq: asRoot(post, "terminate-all", confirmAll, header(admin.HeaderCSRFToken, "")),
		status: 403, code: "csrf_token"},
	{name: "another session's CSRF token is refused", rq: func(_ *testing.T, e *env) req {
		return req{method: post, path: api + "terminate-all", body: confirmAll, as: e.root,
			mod: header(admin.HeaderCSRFToken, e.api.CSRFToken(e.alice.s))}
	}, status: 403, code: "csrf_token"},
	{name: "a CSRF token under another key ring is refused", rq: func(t *testing.T, e *env) req {
		other, err := middleware.New(middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{key(9)}})
		if err != nil {
			t.Fatal(err)
		}
		return req{method: post, path: api + "terminate-all", body: confirmAll, as: e.root,
			mod: header(admin.HeaderCSRFToken, apiOf(t, other).CSRFToken(e.root.s))}
	}, status: 403, code: "csrf_token"},
	{name: "a truncated CSRF token is refused", rq: func(_ *testing.T, e *env) req {
		tok := e.api.CSRFToken(e.root.s)
		return req{method: post, path: api + "terminate-all", body: confirmAll, as: e.root,
			mod: header(admin.HeaderCSRFToken, tok[:len(tok)-1])}
	}, status: 403, code: "csrf_token"},

	// Authentication and authorization.
	{name: "no session cookie is refused by the adapter", rq: func(*testing.T, *env) req {
		return req{method: post, path: api + "terminate-all", body: confirmAll}
	}, status: 401, code: "no_session"},
	{name: "a revoked caller is refused by the adapter", rq: func(t *testing.T, e *env) req {
		if _, err := e.mem.Bump(context.Background(), middleware.SessionScope(e.root.s.ID), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
			t.Fatal(err)
		}
		return req{method: post, path: api + "terminate-all", body: confirmAll, as: e.root}
	}, status: 401, code: "revoked"},
	{name: "a non-administrator is forbidden", rq: func(_ *testing.T, e *env) req {
		return req{method: post, path: api + "terminate-all", body: confirmAll, as: e.alice}
	}, status: 403, code: "forbidden"},
	{name: "the default authorizer forbids terminate-all", opts: options{noAuthz: true},
		rq: asRoot(post, "terminate-all", confirmAll), status: 403, code: "forbidden"},
	{name: "the default authorizer forbids terminate-user", opts: options{noAuthz: true},
		rq: asRoot(post, "terminate-user", `{"issuer":"https://idp.test","sub":"bob"}`), status: 403, code: "forbidden"},
	{name: "the default authorizer forbids reload", opts: options{noAuthz: true},
		rq: asRoot(post, "reload", `{"scope":"global"}`), status: 403, code: "forbidden"},
	{name: "the default authorizer forbids reading the audit log", opts: options{noAuthz: true},
		rq: asRoot(get, "audit", ""), status: 403, code: "forbidden"},
	{name: "the default authorizer forbids listing sessions", opts: options{noAuthz: true},
		rq: asRoot(get, "sessions?issuer=https://idp.test&sub=bob", ""), status: 403, code: "forbidden"},
	{name: "the default authorizer forbids reading fences", opts: options{noAuthz: true},
		rq: asRoot(get, "fences", ""), status: 403, code: "forbidden"},
	{name: "a data-role authorizer forbids a session without the role",
		opts: options{authorize: admin.AllowIfDataContains("roles", "admin")},
		rq: func(_ *testing.T, e *env) req {
			return req{method: post, path: api + "terminate-tenant", body: `{"tenant":"globex"}`, as: e.alice}
		}, status: 403, code: "forbidden"},

	// Routing.
	{name: "an unknown endpoint is 404", rq: asRoot(get, "nope", ""), status: 404, code: "not_found"},
	{name: "GET on a POST endpoint is 405", rq: asRoot(get, "terminate-all", ""), status: 405, code: "method_not_allowed"},
	{name: "POST on a GET endpoint is 405", rq: asRoot(post, "audit", `{}`), status: 405, code: "method_not_allowed"},

	// Strict input.
	{name: "a form body is 415", rq: asRoot(post, "terminate-all", "confirm=terminate-all",
		header("Content-Type", "application/x-www-form-urlencoded")), status: 415, code: "unsupported_media_type"},
	{name: "text/plain is 415", rq: asRoot(post, "terminate-all", confirmAll, header("Content-Type", "text/plain")),
		status: 415, code: "unsupported_media_type"},
	{name: "a missing content type is 415", rq: asRoot(post, "terminate-all", confirmAll, header("Content-Type", "")),
		status: 415, code: "unsupported_media_type"},
	{name: "a non-UTF-8 charset is 415", rq: asRoot(post, "terminate-all", confirmAll,
		header("Content-Type", "application/json; charset=latin1")), status: 415, code: "unsupported_media_type"},
	{name: "a body over 16 KiB is 413", rq: asRoot(post, "terminate-all",
		`{"confirm":"terminate-all","reason":"`+strings.Repeat("a", 17<<10)+`"}`), status: 413, code: "request_too_large"},
	{name: "an unknown field is refused", rq: asRoot(post, "terminate-all", `{"confirm":"terminate-all","force":true}`),
		status: 400, code: "invalid_request"},
	{name: "another endpoint's field is refused", rq: asRoot(post, "terminate-all", `{"confirm":"terminate-all","tenant":"acme"}`),
		status: 400, code: "invalid_request"},
	{name: "keep_session on terminate-session is refused", rq: asRoot(post, "terminate-session", `{"session_id":"x","keep_session":true}`),
		status: 400, code: "invalid_request"},
	{name: "a repeated field is refused", rq: asRoot(post, "terminate-tenant", `{"tenant":"globex","tenant":"acme"}`),
		status: 400, code: "invalid_request"},
	{name: "a nested object is refused", rq: asRoot(post, "terminate-all", `{"confirm":"terminate-all","reason":{"a":1}}`),
		status: 400, code: "invalid_request"},
	{name: "a null body is refused", rq: asRoot(post, "terminate-all", `null`), status: 400, code: "invalid_request"},
	{name: "an array body is refused", rq: asRoot(post, "terminate-all", `[{"confirm":"terminate-all"}]`),
		status: 400, code: "invalid_request"},
	{name: "an empty body is refused", rq: asRoot(post, "terminate-all", ``), status: 400, code: "invalid_request"},
	{name: "data after the object is refused", rq: asRoot(post, "terminate-all", confirmAll+` {}`),
		status: 400, code: "invalid_request"},
	{name: "malformed JSON is refused", rq: asRoot(post, "terminate-all", `{"confirm":"terminate-all"`),
		status: 400, code: "invalid_request"},
	{name: "a wrong type is refused", rq: asRoot(post, "terminate-all", `{"confirm":"terminate-all","keep_session":"yes"}`),
		status: 400, code: "invalid_request"},
	{name: "an unknown reauth policy is refused", rq: asRoot(post, "terminate-all", `{"confirm":"terminate-all","reauth":"strong"}`),
		status: 400, code: "invalid_policy"},
	{name: "an at that is not RFC 3339 is refused", rq: asRoot(post, "terminate-all", `{"confirm":"terminate-all","at":"tomorrow"}`),
		status: 400, code: "invalid_at"},
	{name: "an at in the past is refused", rq: asRoot(post, "terminate-all", `{"confirm":"terminate-all","at":"2026-11-23T09:59:00Z"}`),
		status: 400, code: "invalid_at"},
	{name: "a reason with control characters is refused", rq: asRoot(post, "terminate-all", `{"confirm":"terminate-all","reason":"a\u0007b"}`),
		status: 400, code: "invalid_reason"},
	{name: "terminate-tenant without a tenant is refused", rq: asRoot(post, "terminate-tenant", `{"reason":"x"}`),
		status: 400, code: "invalid_scope"},
	{name: "terminate-user without a sub is refused", rq: asRoot(post, "terminate-user", `{"issuer":"https://idp.test"}`),
		status: 400, code: "invalid_scope"},
	{name: "terminate-session with an empty id is refused", rq: asRoot(post, "terminate-session", `{"session_id":""}`),
		status: 400, code: "invalid_scope"},
	{name: "cancel with an unknown scope kind is refused", rq: asRoot(post, "cancel", `{"scope":"planet"}`),
		status: 400, code: "invalid_scope"},
	{name: "cancel of the epoch is refused", rq: asRoot(post, "cancel", `{"scope":"epoch"}`),
		status: 400, code: "invalid_scope"},
	{name: "cancel global naming a tenant is refused", rq: asRoot(post, "cancel", `{"scope":"global","tenant":"acme"}`),
		status: 400, code: "invalid_scope"},
	{name: "reload of a subject without issuer is refused", rq: asRoot(post, "reload", `{"scope":"subject","sub":"bob"}`),
		status: 400, code: "invalid_scope"},
	{name: "cancel with nothing pending is 409", rq: asRoot(post, "cancel", `{"scope":"global"}`),
		status: 409, code: "nothing_pending"},
	{name: "sessions without sub is refused", rq: asRoot(get, "sessions?issuer=https://idp.test", ""),
		status: 400, code: "invalid_scope"},
	{name: "an unknown query parameter is refused", rq: asRoot(get, "sessions?issuer=https://idp.test&sub=bob&all=1", ""),
		status: 400, code: "invalid_request"},
	{name: "a repeated query parameter is refused", rq: asRoot(get, "audit?limit=1&limit=2", ""),
		status: 400, code: "invalid_request"},
	{name: "audit limit 0 is refused", rq: asRoot(get, "audit?limit=0", ""), status: 400, code: "invalid_limit"},
	{name: "audit limit 501 is refused", rq: asRoot(get, "audit?limit=501", ""), status: 400, code: "invalid_limit"},
	{name: "a non-numeric audit limit is refused", rq: asRoot(get, "audit?limit=ten", ""), status: 400, code: "invalid_limit"},
	{name: "a foreign audit cursor is refused", rq: asRoot(get, "audit?before=zzz", ""), status: 400, code: "invalid_cursor"},
	{name: "fences of the epoch are refused", rq: asRoot(get, "fences?scope=epoch", ""), status: 400, code: "invalid_scope"},
	{name: "fences of a malformed subject are refused", rq: asRoot(get, "fences?scope=subject:alice", ""),
		status: 400, code: "invalid_scope"},

	// Store problems.
	{name: "audit on a store without an audit log is 501", opts: options{plain: true},
		rq: asRoot(get, "audit", ""), status: 501, code: "not_supported"},
	{name: "sessions on a store without a registry is 501", opts: options{plain: true},
		rq: asRoot(get, "sessions?issuer=https://idp.test&sub=bob", ""), status: 501, code: "not_supported"},
	{name: "a store that cannot bump is 503", rq: func(_ *testing.T, e *env) req {
		e.bumps.down.Store(true)
		return req{method: post, path: api + "terminate-all", body: confirmAll, as: e.root}
	}, status: 503, code: "store_unavailable"},
	{name: "a store that cannot bump is 503 for reload", rq: func(_ *testing.T, e *env) req {
		e.bumps.down.Store(true)
		return req{method: post, path: api + "reload", body: `{"scope":"tenant","tenant":"acme"}`, as: e.root}
	}, status: 503, code: "store_unavailable"},
}

// Run runs every admin API case against the application mount builds.
func Run(t *testing.T, mount Mount) {
	t.Run("refusals change nothing", func(t *testing.T) {
		for _, tc := range refusals {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, mount, tc.opts)
				rq := tc.rq(t, e)
				before := e.state(t)
				cookie := ""
				if rq.as != nil {
					cookie = rq.as.cookie
				}
				rec := e.do(t, rq)
				if rec.Code != tc.status || errorCode(rec) != tc.code {
					t.Fatalf("got %d %q, want %d %q; body %s", rec.Code, errorCode(rec), tc.status, tc.code, rec.Body)
				}
				if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
					t.Errorf("Content-Type = %q", got)
				}
				if !e.state(t).equal(before) {
					t.Errorf("a refused request changed the fences or the audit log:\nbefore %+v\nafter  %+v", before, e.state(t))
				}
				if rq.as != nil && tc.status != 401 && rq.as.cookie != cookie {
					t.Errorf("a refused request re-issued the caller's cookie")
				}
				if tc.status == 503 && rec.Header().Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
			})
		}
	})
	t.Run("actions", func(t *testing.T) { runActions(t, mount) })
	t.Run("reads", func(t *testing.T) { runReads(t, mount) })
	t.Run("authorization", func(t *testing.T) { runAuthorization(t, mount) })
}

// actionResponse mirrors the API's answer to an action.
type actionResponse struct {
	Entry       middleware.AuditEntry `json:"entry"`
	KeptSession bool                  `json:"kept_session"`
	Fence       struct {
		Scope               string     `json:"scope"`
		Generation          uint64     `json:"generation"`
		EffectiveGeneration uint64     `json:"effective_generation"`
		Reload              uint64     `json:"reload"`
		Policy              string     `json:"policy"`
		PendingAt           *time.Time `json:"pending_at"`
		PendingPolicy       string     `json:"pending_policy"`
	} `json:"fence"`
}

// act posts body to endpoint as u with a fixed request id and checks 200.
func (e *env) act(t *testing.T, u *user, endpoint, body string) (actionResponse, *httptest.ResponseRecorder) {
	t.Helper()
	rec := e.do(t, req{method: post, path: api + endpoint, body: body, as: u, mod: header("X-Request-Id", "req-"+endpoint)})
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", endpoint, rec.Code, rec.Body)
	}
	var out actionResponse
	decode(t, rec, &out)
	if got := rec.Header().Get("X-Request-Id"); got != "req-"+endpoint {
		t.Errorf("X-Request-Id = %q", got)
	}
	return out, rec
}

type expect struct {
	root, alice, bob int // probe status after the action, with the user's updated cookie
	kept             bool
	entry            middleware.AuditEntry // compared field by field (ID, Time ignored)
}

func (e *env) check(t *testing.T, res actionResponse, rec *httptest.ResponseRecorder, want expect) {
	t.Helper()
	cookies := 0
	for _, c := range rec.Result().Cookies() {
		if c.Name == e.guard.CookieName() {
			cookies++
		}
	}
	if want.kept && (cookies != 1 || !res.KeptSession) {
		t.Errorf("kept caller: %d session cookies in the response, kept_session=%v; want exactly 1 and true", cookies, res.KeptSession)
	}
	if !want.kept && (cookies != 0 || res.KeptSession) {
		t.Errorf("caller not kept, yet %d session cookies, kept_session=%v", cookies, res.KeptSession)
	}
	for _, u := range []struct {
		name string
		u    *user
		want int
	}{{"root", e.root, want.root}, {"alice", e.alice, want.alice}, {"bob", e.bob, want.bob}} {
		if got, code := e.app(t, u.u); got != u.want {
			t.Errorf("%s's next request: %d %s, want %d", u.name, got, code, u.want)
		}
	}
	got := res.Entry
	w := want.entry
	w.ID, w.Time = got.ID, got.Time
	if got.ID == "" || got.Time.IsZero() {
		t.Errorf("entry has no id or time: %+v", got)
	}
	if entryString(got) != entryString(w) {
		t.Errorf("audit entry in the response\n got %+v\nwant %+v", got, w)
	}
	stored := e.entries(t)
	if len(stored) == 0 || entryString(stored[0]) != entryString(got) {
		t.Errorf("stored audit entry %+v differs from the response's %+v", stored, got)
	}
}

func runActions(t *testing.T, mount Mount) {
	t.Run("terminate-all keeps the caller with the cookie in the same response", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		old, alice := e.root.cookie, *e.alice
		res, rec := e.act(t, e.root, "terminate-all", confirmAll)
		e.check(t, res, rec, expect{root: 200, alice: 401, bob: 401, kept: true, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "terminate_all", Scope: "global", Reason: "incident 42", Policy: "mfa",
			Generation: 1, Affected: 2, RequestID: "req-terminate-all", ClientIP: "192.0.2.1", KeptSession: e.root.s.ID,
		}})
		if res.Fence.Generation != 1 || res.Fence.Policy != "mfa" || res.Fence.Scope != "global" {
			t.Errorf("fence = %+v", res.Fence)
		}
		if code, _ := e.app(t, &user{s: e.root.s, cookie: old}); code != 401 {
			t.Errorf("the caller's old cookie still works: %d", code)
		}
		if _, code := e.app(t, &alice); code != "reauth_required" {
			t.Errorf("alice's refusal code = %q, want reauth_required (policy mfa)", code)
		}
	})
	t.Run("terminate-all without keep_session signs the caller out too", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		res, rec := e.act(t, e.root, "terminate-all", `{"confirm":"terminate-all","keep_session":false}`)
		e.check(t, res, rec, expect{root: 401, alice: 401, bob: 401, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "terminate_all", Scope: "global", Policy: "none",
			Generation: 1, Affected: 3, RequestID: "req-terminate-all", ClientIP: "192.0.2.1",
		}})
	})
	t.Run("keep-caller cookie replaces a cookie the adapter re-issued in the same request", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		// A reload of root's tenant makes the adapter re-issue root's
		// cookie on the next request: the same request that
		// terminates everyone.
		if _, err := e.admin.Reload(context.Background(), middleware.TenantScope("acme"), admin.Action{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		res, rec := e.act(t, e.root, "terminate-all", confirmAll)
		e.check(t, res, rec, expect{root: 200, alice: 401, bob: 401, kept: true, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "terminate_all", Scope: "global", Reason: "incident 42", Policy: "mfa",
			Generation: 1, Affected: 2, RequestID: "req-terminate-all", ClientIP: "192.0.2.1", KeptSession: e.root.s.ID,
		}})
	})
	t.Run("terminate-tenant of the caller's own tenant keeps the caller", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		res, rec := e.act(t, e.root, "terminate-tenant", `{"tenant":"acme","reason":"offboarding","reauth":"login"}`)
		e.check(t, res, rec, expect{root: 200, alice: 401, bob: 200, kept: true, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "terminate_tenant", Scope: "tenant:acme", Reason: "offboarding", Policy: "login",
			Generation: 1, Affected: 1, RequestID: "req-terminate-tenant", ClientIP: "192.0.2.1", KeptSession: e.root.s.ID,
		}})
	})
	t.Run("terminate-tenant of another tenant", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		res, rec := e.act(t, e.root, "terminate-tenant", `{"tenant":"globex"}`)
		e.check(t, res, rec, expect{root: 200, alice: 200, bob: 401, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "terminate_tenant", Scope: "tenant:globex", Policy: "none",
			Generation: 1, Affected: 1, RequestID: "req-terminate-tenant", ClientIP: "192.0.2.1",
		}})
	})
	t.Run("terminate-user ends one user on every device", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		second := e.issue(t, middleware.Claims{Issuer: Issuer, Subject: "alice", Tenant: "acme"})
		res, rec := e.act(t, e.root, "terminate-user", `{"issuer":"https://idp.test","sub":"alice","reason":"lost laptop","reauth":"mfa"}`)
		e.check(t, res, rec, expect{root: 200, alice: 401, bob: 200, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "terminate_user", Scope: "subject:https://idp.test|alice", Reason: "lost laptop",
			Policy: "mfa", Generation: 1, Affected: 2, RequestID: "req-terminate-user", ClientIP: "192.0.2.1",
		}})
		if code, _ := e.app(t, second); code != 401 {
			t.Errorf("alice's second device: %d, want 401", code)
		}
	})
	t.Run("terminate-session ends one session", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		second := e.issue(t, middleware.Claims{Issuer: Issuer, Subject: "alice", Tenant: "acme"})
		res, rec := e.act(t, e.root, "terminate-session", `{"session_id":"`+e.alice.s.ID+`","reason":"stolen cookie"}`)
		e.check(t, res, rec, expect{root: 200, alice: 401, bob: 200, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "terminate_session", Scope: "session:" + e.alice.s.ID, Reason: "stolen cookie",
			Policy: "none", Generation: 1, Affected: 1, RequestID: "req-terminate-session", ClientIP: "192.0.2.1",
		}})
		if code, _ := e.app(t, second); code != 200 {
			t.Errorf("alice's other session: %d, want 200", code)
		}
	})
	t.Run("announced terminate-all passes before its time and refuses after", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		at := e.clock.Now().Add(10 * time.Minute)
		res, rec := e.act(t, e.root, "terminate-all",
			`{"confirm":"terminate-all","reason":"maintenance","reauth":"login","at":"`+at.Format(time.RFC3339)+`"}`)
		e.check(t, res, rec, expect{root: 200, alice: 200, bob: 200, kept: true, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "announce", Scope: "global", Reason: "maintenance", Policy: "login",
			EffectiveAt: &at, Generation: 0, Affected: 2, RequestID: "req-terminate-all", ClientIP: "192.0.2.1",
			KeptSession: e.root.s.ID,
		}})
		if res.Fence.PendingAt == nil || !res.Fence.PendingAt.Equal(at) || res.Fence.PendingPolicy != "login" {
			t.Errorf("fence = %+v", res.Fence)
		}
		rec = e.do(t, req{method: get, path: "/app", as: e.bob})
		if rec.Header().Get("Sessionfence-Termination") != at.Format(time.RFC3339) ||
			rec.Header().Get("Sessionfence-Termination-Reason") != "maintenance" ||
			rec.Header().Get("Sessionfence-Termination-Policy") != "login" {
			t.Errorf("announcement headers: %v", rec.Header())
		}
		e.clock.Advance(10 * time.Minute)
		if code, reason := e.app(t, e.bob); code != 401 || reason != "reauth_required" {
			t.Errorf("bob after the time: %d %s", code, reason)
		}
		if code, _ := e.app(t, e.root); code != 200 {
			t.Errorf("the kept caller after the time: %d", code)
		}
	})
	t.Run("cancel withdraws an announcement and restores the kept caller", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		at := e.clock.Now().Add(10 * time.Minute)
		e.act(t, e.root, "terminate-all", `{"confirm":"terminate-all","at":"`+at.Format(time.RFC3339)+`"}`)
		res, rec := e.act(t, e.root, "cancel", `{"scope":"global","reason":"false alarm"}`)
		e.check(t, res, rec, expect{root: 200, alice: 200, bob: 200, kept: true, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "cancel", Scope: "global", Reason: "false alarm",
			Generation: 0, Affected: -1, RequestID: "req-cancel", ClientIP: "192.0.2.1", KeptSession: e.root.s.ID,
		}})
		e.clock.Advance(time.Hour)
		for _, u := range []*user{e.root, e.alice, e.bob} {
			if code, _ := e.app(t, u); code != 200 {
				t.Errorf("%s after the cancelled time: %d", u.s.Subject, code)
			}
		}
	})
	t.Run("reload runs the reload hook once per covered session", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		res, rec := e.act(t, e.root, "reload", `{"scope":"tenant","tenant":"acme","reason":"role change"}`)
		e.check(t, res, rec, expect{root: 200, alice: 200, bob: 200, entry: middleware.AuditEntry{
			Actor: Issuer + "|root", Action: "reload", Scope: "tenant:acme", Reason: "role change",
			Generation: 0, Affected: 2, RequestID: "req-reload", ClientIP: "192.0.2.1",
		}})
		for range 3 {
			for _, u := range []*user{e.root, e.alice, e.bob} {
				e.app(t, u)
			}
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		want := map[string]int{e.root.s.ID: 1, e.alice.s.ID: 1}
		if fmt.Sprint(e.reloads) != fmt.Sprint(want) {
			t.Errorf("reload hook calls = %v, want %v", e.reloads, want)
		}
	})
	t.Run("a sane X-Request-Id is kept and an unsafe one replaced", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		rec := e.do(t, req{method: post, path: api + "reload", body: `{"scope":"global"}`, as: e.root,
			mod: header("X-Request-Id", "has space")})
		if rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		id := rec.Header().Get("X-Request-Id")
		if len(id) != 32 || id == "has space" {
			t.Errorf("generated request id = %q", id)
		}
		if got := e.entries(t)[0].RequestID; got != id {
			t.Errorf("audit request id %q, response header %q", got, id)
		}
		long := strings.Repeat("r", 65)
		rec = e.do(t, req{method: post, path: api + "reload", body: `{"scope":"global"}`, as: e.root,
			mod: header("X-Request-Id", long)})
		if rec.Header().Get("X-Request-Id") == long {
			t.Errorf("a 65-character request id was kept")
		}
	})
	t.Run("the origin check accepts the request's host when no public origin is configured", func(t *testing.T) {
		e := newEnv(t, mount, options{cfg: func(c *admin.APIConfig) { c.PublicOrigin = "" }})
		ok := headers(noFetchMeta, header("Origin", "https://admin.test"))
		rec := e.do(t, req{method: post, path: api + "reload", body: `{"scope":"global"}`, as: e.root, mod: ok})
		if rec.Code != 200 {
			t.Fatalf("same host: %d %s", rec.Code, rec.Body)
		}
		bad := headers(noFetchMeta, header("Origin", "http://admin.test"))
		rec = e.do(t, req{method: post, path: api + "reload", body: `{"scope":"global"}`, as: e.root, mod: bad})
		if rec.Code != 403 || errorCode(rec) != "csrf_origin" {
			t.Fatalf("scheme taken from the request? %d %s", rec.Code, rec.Body)
		}
	})
}

func runReads(t *testing.T, mount Mount) {
	t.Run("me reports the caller and whether they are an administrator", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		for _, tc := range []struct {
			u     *user
			admin bool
		}{{e.root, true}, {e.alice, false}} {
			rec := e.do(t, req{method: get, path: api + "me", as: tc.u})
			var me struct {
				Issuer, Sub, Tenant string
				SessionID           string `json:"session_id"`
				Admin               bool
			}
			decode(t, rec, &me)
			if rec.Code != 200 || me.Sub != tc.u.s.Subject || me.Issuer != Issuer || me.Tenant != "acme" ||
				me.SessionID != tc.u.s.ID || me.Admin != tc.admin {
				t.Errorf("me for %s: %d %+v", tc.u.s.Subject, rec.Code, me)
			}
		}
	})
	t.Run("the page is served by the same mount and wired to the API", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		rec := e.do(t, req{method: get, path: "/admin/", as: e.alice})
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `<body data-api="/admin/api/" data-login="/login">`) {
			t.Fatalf("GET /admin/: %d %.300s", rec.Code, rec.Body)
		}
		if rec := e.do(t, req{method: get, path: "/admin/admin.js", as: e.alice}); rec.Code != 200 {
			t.Fatalf("GET /admin/admin.js: %d", rec.Code)
		}
		if rec := e.do(t, req{method: get, path: "/admin/", as: nil}); rec.Code == 200 {
			t.Fatalf("the page was served without a session: %d", rec.Code)
		}
	})
	t.Run("csrf returns the session's token", func(t *testing.T) {
		e := newEnv(t, mount, options{noAuthz: true})
		rec := e.do(t, req{method: get, path: api + "csrf", as: e.alice})
		var out struct {
			Token  string `json:"csrf_token"`
			Header string `json:"header"`
		}
		decode(t, rec, &out)
		if rec.Code != 200 || out.Token == "" || out.Token != e.api.CSRFToken(e.alice.s) || out.Header != "X-CSRF-Token" {
			t.Errorf("csrf: %d %+v", rec.Code, out)
		}
	})
	t.Run("sessions lists one user's sessions", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		rec := e.do(t, req{method: get, path: api + "sessions?issuer=https%3A%2F%2Fidp.test&sub=alice", as: e.root})
		var out struct {
			Issuer, Sub string
			Sessions    []middleware.SessionInfo
		}
		decode(t, rec, &out)
		if rec.Code != 200 || out.Sub != "alice" || len(out.Sessions) != 1 || out.Sessions[0].ID != e.alice.s.ID ||
			out.Sessions[0].Tenant != "acme" {
			t.Errorf("sessions: %d %+v", rec.Code, out)
		}
	})
	t.Run("audit pages newest first", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		e.act(t, e.root, "terminate-tenant", `{"tenant":"globex","reason":"first"}`)
		e.act(t, e.root, "reload", `{"scope":"global","reason":"second"}`)
		type page struct {
			Entries []middleware.AuditEntry
			Next    string
		}
		var p1, p2 page
		rec := e.do(t, req{method: get, path: api + "audit?limit=1", as: e.root})
		decode(t, rec, &p1)
		if rec.Code != 200 || len(p1.Entries) != 1 || p1.Entries[0].Reason != "second" || p1.Next == "" {
			t.Fatalf("page 1: %d %+v", rec.Code, p1)
		}
		rec = e.do(t, req{method: get, path: api + "audit?limit=1&before=" + p1.Next, as: e.root})
		decode(t, rec, &p2)
		if rec.Code != 200 || len(p2.Entries) != 1 || p2.Entries[0].Reason != "first" || p2.Next != "" {
			t.Fatalf("page 2: %d %+v", rec.Code, p2)
		}
	})
	t.Run("fences shows the current fences and the epoch", func(t *testing.T) {
		e := newEnv(t, mount, options{})
		e.act(t, e.root, "terminate-tenant", `{"tenant":"globex","reauth":"mfa","reason":"r"}`)
		rec := e.do(t, req{method: get, path: api + "fences?scope=global&scope=tenant:globex&scope=subject:https://idp.test|auth0|x", as: e.root})
		var out struct {
			Epoch  string
			Fences []struct {
				Scope      string
				Generation uint64
				Policy     string
				Reason     string
			}
		}
		decode(t, rec, &out)
		epoch, _ := e.mem.Epoch(context.Background())
		if rec.Code != 200 || out.Epoch != epoch || len(out.Fences) != 3 ||
			out.Fences[0].Scope != "global" || out.Fences[0].Generation != 0 ||
			out.Fences[1].Scope != "tenant:globex" || out.Fences[1].Generation != 1 || out.Fences[1].Policy != "mfa" ||
			out.Fences[2].Scope != "subject:https://idp.test|auth0|x" {
			t.Errorf("fences: %d %s", rec.Code, rec.Body)
		}
	})
}

func runAuthorization(t *testing.T, mount Mount) {
	t.Run("the hook sees each operation, its target and how it acts", func(t *testing.T) {
		var mu sync.Mutex
		var calls []admin.Request
		record := func(_ context.Context, s *middleware.Session, r admin.Request) error {
			mu.Lock()
			calls = append(calls, r)
			mu.Unlock()
			if s.Subject != "root" {
				return errors.New("not root")
			}
			return nil
		}
		e := newEnv(t, mount, options{authorize: record})
		at := e.clock.Now().Add(time.Hour).UTC()
		announce := `{"tenant":"globex","at":"` + at.Format(time.RFC3339) + `","reauth":"login"}`
		steps := []struct {
			method, path, body string
			want               admin.Request
		}{
			{post, "terminate-all", confirmAll, admin.Request{Op: admin.OpTerminateAll, Target: middleware.GlobalScope(), Policy: middleware.PolicyMFA, Keep: true}},
			{post, "terminate-tenant", announce, admin.Request{Op: admin.OpTerminateTenant, Target: middleware.TenantScope("globex"), At: at, Policy: middleware.PolicyFreshLogin}},
			{post, "terminate-user", `{"issuer":"https://idp.test","sub":"bob"}`, admin.Request{Op: admin.OpTerminateUser, Target: middleware.SubjectScope(Issuer, "bob")}},
			{post, "terminate-session", `{"session_id":"abc"}`, admin.Request{Op: admin.OpTerminateSession, Target: middleware.SessionScope("abc")}},
			{post, "reload", `{"scope":"idp_session","issuer":"https://idp.test","sid":"s1"}`, admin.Request{Op: admin.OpReload, Target: middleware.IdPSessionScope(Issuer, "s1")}},
			{post, "cancel", `{"scope":"session","session_id":"abc"}`, admin.Request{Op: admin.OpCancel, Target: middleware.SessionScope("abc")}},
			{post, "cancel", `{"scope":"tenant","tenant":"acme"}`, admin.Request{Op: admin.OpCancel, Target: middleware.TenantScope("acme"), Keep: true}},
			{get, "sessions?issuer=https://idp.test&sub=bob", "", admin.Request{Op: admin.OpSessions, Target: middleware.SubjectScope(Issuer, "bob")}},
			{get, "audit", "", admin.Request{Op: admin.OpAudit, Target: middleware.GlobalScope()}},
			{get, "fences?scope=tenant:acme", "", admin.Request{Op: admin.OpFences, Target: middleware.TenantScope("acme")}},
			{get, "me", "", admin.Request{Op: admin.OpConsole, Target: middleware.GlobalScope()}},
		}
		for _, st := range steps {
			mu.Lock()
			calls = nil
			mu.Unlock()
			e.do(t, req{method: st.method, path: api + st.path, body: st.body, as: e.root})
			mu.Lock()
			if len(calls) != 1 || calls[0] != st.want || calls[0].Announced() != !st.want.At.IsZero() {
				t.Errorf("%s %s: hook calls %+v, want %+v", st.path, st.body, calls, st.want)
			}
			mu.Unlock()
		}
	})
	t.Run("an authorizer may allow announcing what it refuses to do at once", func(t *testing.T) {
		// Support staff may warn everyone of a sign-out, but only the
		// on-call administrator may end every session now.
		announceOnly := func(_ context.Context, _ *middleware.Session, r admin.Request) error {
			if r.Op == admin.OpTerminateAll && !r.Announced() {
				return admin.ErrForbidden
			}
			return nil
		}
		e := newEnv(t, mount, options{authorize: announceOnly})
		before := e.state(t)
		rec := e.do(t, req{method: post, path: api + "terminate-all", body: confirmAll, as: e.root})
		if rec.Code != 403 || errorCode(rec) != "forbidden" || !e.state(t).equal(before) {
			t.Fatalf("immediate terminate-all: %d %s", rec.Code, rec.Body)
		}
		if code, _ := e.app(t, e.bob); code != 200 {
			t.Fatalf("bob after the refused terminate-all: %d", code)
		}
		at := e.clock.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
		res, rec := e.act(t, e.root, "terminate-all", `{"confirm":"terminate-all","reason":"maintenance","at":"`+at+`"}`)
		if rec.Code != 200 || res.Entry.Action != "announce" || res.Entry.EffectiveAt == nil {
			t.Fatalf("announced terminate-all: %d %s", rec.Code, rec.Body)
		}
		if code, _ := e.app(t, e.bob); code != 200 {
			t.Fatalf("bob before the announced time: %d", code)
		}
		e.clock.Advance(31 * time.Minute)
		if code, _ := e.app(t, e.bob); code != 401 {
			t.Fatalf("bob after the announced time: %d", code)
		}
	})
	t.Run("a data-role authorizer allows a session with the role", func(t *testing.T) {
		e := newEnv(t, mount, options{authorize: admin.AllowIfDataContains("roles", "admin")})
		e.act(t, e.root, "terminate-tenant", `{"tenant":"globex"}`)
	})
	t.Run("an authorizer whose backend is down answers 503", func(t *testing.T) {
		down := func(context.Context, *middleware.Session, admin.Request) error {
			return fmt.Errorf("role lookup: %w", middleware.ErrStoreUnavailable)
		}
		e := newEnv(t, mount, options{authorize: down})
		before := e.state(t)
		rec := e.do(t, req{method: post, path: api + "terminate-all", body: confirmAll, as: e.root})
		if rec.Code != 503 || errorCode(rec) != "store_unavailable" || !e.state(t).equal(before) {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("with the default authorizer only me and csrf answer", func(t *testing.T) {
		e := newEnv(t, mount, options{noAuthz: true})
		rec := e.do(t, req{method: get, path: api + "me", as: e.root})
		var me struct{ Admin bool }
		decode(t, rec, &me)
		if rec.Code != 200 || me.Admin {
			t.Errorf("me: %d %s", rec.Code, rec.Body)
		}
	})
}

// entryString formats e for comparison, with pointers replaced by values
// and times in UTC.
func entryString(e middleware.AuditEntry) string {
	eff := "none"
	if e.EffectiveAt != nil {
		eff = e.EffectiveAt.UTC().Format(time.RFC3339Nano)
	}
	e.EffectiveAt = nil
	e.Time = e.Time.UTC()
	return fmt.Sprintf("%+v effective_at=%s", e, eff)
}
