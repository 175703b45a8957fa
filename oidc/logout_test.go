package oidc_test

import (
	"net/http"
	"testing"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/oidc"
)

func TestLogoutEndsTheSessionEverywhere(t *testing.T) {
	r := newRig(t)
	me := r.mustLogin()
	ck := r.sessionCookie()
	id := me["session"].(string)
	// The server-side record, at the key docs/oidc.md documents.
	secretKey := "oidc/tokens/" + id
	if _, ok, _ := r.store.Secret(t.Context(), secretKey); !ok {
		t.Fatal("no server-side tokens after login")
	}

	p := r.do(r.browser, http.MethodPost, r.url+"/logout", http.Header{"Origin": {r.url}}, false)
	if p.status != 200 || p.url.Path != "/bye" || p.body != "bye" {
		t.Fatalf("logout ended at %s (%d) %q", p.url, p.status, p.body)
	}
	// The provider was asked to end its session, with our hint.
	calls := r.idp.EndSessionCalls()
	if len(calls) != 1 {
		t.Fatalf("%d end_session calls, want 1", len(calls))
	}
	c := calls[0]
	if c.Error != "" || c.Params.Get("id_token_hint") == "" || c.ClientID != clientID || c.SID != me["sid"] {
		t.Fatalf("end_session call %+v", c)
	}
	if c.PostLogoutRedirectURI != r.url+"/bye" || c.State == "" || p.url.Query().Get("state") != c.State {
		t.Fatalf("post-logout redirect %q state %q, landed on %s", c.PostLogoutRedirectURI, c.State, p.url)
	}
	// Our session's fence moved, so every copy of the cookie is dead.
	f := make([]middleware.Fence, 1)
	if _, err := r.store.Fences(t.Context(), []middleware.Scope{middleware.SessionScope(id)}, f); err != nil || f[0].Gen != 1 {
		t.Fatalf("session fence = %+v (%v), want generation 1", f[0], err)
	}
	if q, _ := r.api(ck, "/app/me"); decisionCode(t, q) != "revoked" {
		t.Fatalf("old cookie after logout: %d %s", q.status, q.body)
	}
	if r.sessionCookie() != nil {
		t.Fatal("the browser still has the session cookie")
	}
	// The refresh token was revoked at the provider (RFC 7009) and is gone
	// from our store: even past the access lifetime nothing renews it.
	revoked := false
	for _, rv := range r.idp.Revoked() {
		if rv.ClientID == clientID && rv.Kind == "refresh_token" {
			revoked = true
		}
	}
	if !revoked {
		t.Fatalf("no refresh token revoked at the provider: %+v", r.idp.Revoked())
	}
	if _, ok, _ := r.store.Secret(t.Context(), secretKey); ok {
		t.Fatal("the server-side tokens survived the logout")
	}
}

func TestLogoutRefusesCrossSiteRequests(t *testing.T) {
	cases := []struct {
		name   string
		method string
		header http.Header
		status int
	}{
		{"GET is not allowed", http.MethodGet, http.Header{"Sec-Fetch-Site": {"same-origin"}}, http.StatusMethodNotAllowed},
		{"a cross-site form post is refused", http.MethodPost, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"a same-site but cross-origin post is refused", http.MethodPost, http.Header{"Sec-Fetch-Site": {"same-site"}}, http.StatusForbidden},
		{"a foreign Origin is refused", http.MethodPost, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"an opaque Origin is refused", http.MethodPost, http.Header{"Origin": {"null"}}, http.StatusForbidden},
		{"a post with neither header is refused", http.MethodPost, nil, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.mustLogin()
			ck := r.sessionCookie()
			p := r.do(r.browser, tc.method, r.url+"/logout", tc.header, false)
			assertErrorPage(t, p, tc.status)
			if le := r.lastLoginError(); le.Step != oidc.StepLogout {
				t.Fatalf("step = %s", le.Step)
			}
			if q, _ := r.api(ck, "/app/me"); q.status != 200 {
				t.Fatalf("session after a refused logout: %d %s", q.status, q.body)
			}
			if len(r.idp.EndSessionCalls()) != 0 || r.sessionCookie() == nil {
				t.Fatal("a refused logout had effects")
			}
		})
	}
}

func TestLogoutAcceptsSameOriginFetchMetadata(t *testing.T) {
	r := newRig(t)
	r.mustLogin()
	p := r.do(r.browser, http.MethodPost, r.url+"/logout", http.Header{"Sec-Fetch-Site": {"same-origin"}}, false)
	if p.url.Path != "/bye" {
		t.Fatalf("logout ended at %s (%d)", p.url, p.status)
	}
}

func TestLogoutWithoutASessionGoesToTheLoggedOutPage(t *testing.T) {
	r := newRig(t)
	p := r.do(r.browser, http.MethodPost, r.url+"/logout", http.Header{"Origin": {r.url}}, false)
	if p.status != 200 || p.url.Path != "/" || p.body != "home" {
		t.Fatalf("logout without session ended at %s (%d)", p.url, p.status)
	}
	if len(r.idp.EndSessionCalls()) != 0 {
		t.Fatal("the provider was called without a session")
	}
}
