package oidc_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/oidc"
)

// revokeAlice logs alice in, lets a minute pass, and bumps her subject
// fence with policy p, so that her SSO session's auth_time predates the
// fence by more than the skew.
func revokeAlice(r *rig, p middleware.Policy) {
	r.t.Helper()
	r.mustLogin()
	advance(r, time.Minute)
	r.bump(middleware.SubjectScope(r.idp.Issuer(), "alice"), p)
	advance(r, time.Second)
}

func TestForcedReauthentication(t *testing.T) {
	cases := []struct {
		name   string
		policy middleware.Policy
		user   fakeidp.User
		quirks fakeidp.Quirks
		mfa    *middleware.MFAPolicy // nil: the rig's (acr MFA or amr otp)
		// wants
		ok       bool
		requests int // authorization requests after the revocation
		check    string
	}{
		{name: "fresh-login fence is met by a provider that honours prompt=login",
			policy: middleware.PolicyFreshLogin, user: alice, ok: true, requests: 1},
		{name: "MFA fence is met by a provider that steps up on acr_values",
			policy: middleware.PolicyMFA, user: alice, ok: true, requests: 1},
		{name: "auth_time not after the fence is refused after one retry when the provider ignores prompt and max_age",
			policy: middleware.PolicyFreshLogin, user: alice, quirks: fakeidp.Quirks{IgnorePrompt: true, IgnoreMaxAge: true},
			requests: 2, check: "auth_time"},
		{name: "an acr too weak is refused after one retry",
			policy: middleware.PolicyMFA, user: fakeidp.User{Subject: "alice", Tenant: "acme"}, // cannot do MFA
			mfa:      &middleware.MFAPolicy{ACR: []string{fakeidp.DefaultMFAACR}},
			requests: 2, check: "mfa"},
		{name: "amr without the MFA method is refused after one retry",
			policy: middleware.PolicyMFA, user: alice, quirks: fakeidp.Quirks{IgnoreACR: true},
			mfa:      &middleware.MFAPolicy{AMR: []string{"otp"}},
			requests: 2, check: "mfa"},
		{name: "a claimed MFA acr is not enough when the fence demands a fresh login too",
			policy: middleware.PolicyMFA, user: alice,
			quirks:   fakeidp.Quirks{IgnorePrompt: true, IgnoreMaxAge: true, IgnoreACR: true, ExtraIDTokenClaims: map[string]any{"acr": fakeidp.DefaultMFAACR}},
			requests: 2, check: "auth_time"},
		{name: "a missing auth_time counts as not fresh",
			policy: middleware.PolicyFreshLogin, user: alice, quirks: fakeidp.Quirks{OmitAuthTime: true},
			requests: 2, check: "auth_time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *oidc.Config) {
				if tc.mfa != nil {
					c.Guard.MFA = *tc.mfa
				}
			})
			r.idp.SetUser(tc.user)
			revokeAlice(r, tc.policy)
			before := len(r.authorizations())
			r.idp.SetQuirks(tc.quirks)

			// The old session is refused and the browser sent to log in
			// with the policy; the login runs in the same navigation.
			p := r.navigate("/app/me")
			reqs := r.authorizations()[before:]
			if len(reqs) != tc.requests {
				t.Fatalf("%d authorization requests, want %d", len(reqs), tc.requests)
			}
			for i, a := range reqs {
				if a.Params.Get("prompt") != "login" || a.Params.Get("max_age") != "0" {
					t.Errorf("request %d: prompt=%q max_age=%q, want login and 0", i, a.Params.Get("prompt"), a.Params.Get("max_age"))
				}
				wantACR := ""
				if tc.policy == middleware.PolicyMFA && (tc.mfa == nil || len(tc.mfa.ACR) > 0) {
					wantACR = fakeidp.DefaultMFAACR
				}
				if got := a.Params.Get("acr_values"); got != wantACR {
					t.Errorf("request %d: acr_values = %q, want %q", i, got, wantACR)
				}
			}
			if tc.ok {
				if p.status != 200 || p.url.Path != "/app/me" {
					t.Fatalf("landed on %s (%d): %s; errors %v", p.url, p.status, p.body, r.loginErrors())
				}
				got := p.json(t)
				if at := int64(got["auth_time"].(float64)); at != reqs[0].AuthTime.Unix() || !reqs[0].Authenticated {
					t.Fatalf("session auth_time %d is not the fresh authentication %v", at, reqs[0].AuthTime)
				}
				return
			}
			assertErrorPage(t, p, http.StatusForbidden)
			le := r.lastLoginError()
			var re *middleware.ReauthRequiredError
			if le.Step != oidc.StepReauth || !errors.Is(le, oidc.ErrReauthNotPerformed) || !errors.As(le, &re) || re.Reason != tc.check {
				t.Fatalf("got %v, want step reauth, check %s", le, tc.check)
			}
			if r.sessionCookie() != nil {
				t.Fatal("a refused login left a session cookie")
			}
		})
	}
}

// A user who goes to /login directly (without the guard's reauth hint)
// after a fence gets a silent SSO answer first; the callback notices and
// retries once with the strong request, which a good provider honours.
func TestPlainLoginAfterAFenceIsUpgradedOnce(t *testing.T) {
	r := newRig(t)
	revokeAlice(r, middleware.PolicyFreshLogin)
	before := len(r.authorizations())
	p := r.login("return_to=/app/me")
	reqs := r.authorizations()[before:]
	if p.status != 200 || len(reqs) != 2 {
		t.Fatalf("status %d after %d requests, want 200 after 2", p.status, len(reqs))
	}
	if reqs[0].Params.Has("prompt") || reqs[0].Authenticated {
		t.Fatalf("first request should be a plain silent SSO: %+v", reqs[0])
	}
	if reqs[1].Params.Get("prompt") != "login" || reqs[1].Params.Get("max_age") != "0" || !reqs[1].Authenticated {
		t.Fatalf("retry should re-authenticate: %+v", reqs[1])
	}
}

// The retry never becomes a loop, whatever the provider does: the browser
// ends on an error page after exactly two trips to the provider.
func TestProviderIgnoringPromptEndsOnAnErrorPageNotALoop(t *testing.T) {
	r := newRig(t)
	revokeAlice(r, middleware.PolicyMFA)
	r.idp.SetQuirks(fakeidp.Quirks{IgnorePrompt: true, IgnoreMaxAge: true, IgnoreACR: true})
	redirects := 0
	r.browser.CheckRedirect = func(*http.Request, []*http.Request) error { redirects++; return nil }
	before := len(r.authorizations())
	p := r.navigate("/app/me")
	assertErrorPage(t, p, http.StatusForbidden)
	if n := len(r.authorizations()) - before; n != 2 {
		t.Fatalf("%d authorization requests, want 2", n)
	}
	// app → login → provider → callback → provider (retry) → callback
	if redirects != 5 {
		t.Fatalf("%d redirects, want 5", redirects)
	}
	// Going back to the page starts one more attempt (a user action), not
	// an automatic loop.
	assertErrorPage(t, r.navigate("/app/me"), http.StatusForbidden)
	if n := len(r.authorizations()) - before; n != 4 {
		t.Fatalf("%d authorization requests after a second visit, want 4", n)
	}
}
