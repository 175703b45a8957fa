package interop_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/examples/internal/app"
	"github.com/sessionfence/sessionfence/examples/interop/loginapp"
	"github.com/sessionfence/sessionfence/examples/interop/oidcprovider"
)

// alice2FA types the password and the one-time code.
var alice2FA = loginapp.Credentials{Username: "alice", Password: password, OTP: otp, Remember: true}

// TestOIDCProviderLogout drives the nethttp example app against panva's
// oidc-provider: a login with the provider's form, a silent SSO login,
// forced re-authentication (reauth=login, reauth=mfa), logout at the
// provider with back-channel delivery, an operator ending the provider
// session, and an RP-initiated logout. The steps run in order on one
// environment.
func TestOIDCProviderLogout(t *testing.T) {
	e := startOP(t, nil)
	b := browser(t)

	var first app.Me
	t.Run("login shows the provider's form and /me answers", func(t *testing.T) {
		me, form := e.login(t, b, alice, nil)
		first = me
		l, n := e.lastLogin(t)
		if !form || n != 1 || !l.Accepted || l.Session != "" || !slices.Equal(l.Reasons, []string{"no_session"}) {
			t.Fatalf("form shown %v, login interactions %d, last %+v", form, n, l)
		}
		// oidc-provider puts auth_time in the ID token only when the
		// request has max_age or prompt=login (or the client registered
		// require_auth_time), acr only when acr_values was sent, and amr
		// never (it is releasable only through the claims parameter):
		// a plain login's session has none of them.
		if me.Sub != "alice" || me.Tenant != "acme" || me.SID == "" ||
			me.AuthTime != nil || me.ACR != "" || len(me.AMR) != 0 {
			t.Errorf("/me = %+v", me)
		}
		if code, _ := e.me(t, b); code != http.StatusOK {
			t.Errorf("GET /me: %d", code)
		}
		// offline_access was dropped (no prompt=consent), but server.mjs's
		// issueRefreshToken gives confidential web clients a refresh token
		// anyway (TestOIDCProviderDefaults shows the default's effect).
		if strings.Contains(e.logs.String(), "the provider issued no refresh token") || l.Params.Scope != "openid profile email" {
			t.Errorf("scope %q; refresh token:\n%s", l.Params.Scope, e.logs.String())
		}
	})

	t.Run("a second login is silent single sign-on in the same provider session", func(t *testing.T) {
		_, before := e.lastLogin(t)
		me, form := e.login(t, b, alice, nil)
		_, after := e.lastLogin(t)
		if form || after != before || me.SID != first.SID {
			t.Errorf("form shown %v, interactions %d -> %d, /me %+v, first %+v", form, before, after, me, first)
		}
	})

	t.Run("reauth=login shows the form and keeps the sid", func(t *testing.T) {
		before := time.Now().Unix()
		me, form := e.login(t, b, alice, url.Values{"reauth": {"login"}})
		l, _ := e.lastLogin(t)
		if !form || l.Session != "alice" || !slices.Contains(l.Reasons, "login_prompt") || l.Params.Prompt != "login" || l.Params.MaxAge != "" {
			t.Fatalf("form shown %v, interaction %+v", form, l)
		}
		// A fresh login in the same browser keeps the provider's sid for
		// this client (oidc-provider keys sid by session and client, not
		// by authentication), and now auth_time is present.
		if me.SID != first.SID || me.AuthTime == nil || *me.AuthTime < before || *me.AuthTime != l.TS {
			t.Errorf("/me %+v, first %+v, interaction ts %d", me, first, l.TS)
		}
	})

	t.Run("reauth=mfa asks for the password and the code", func(t *testing.T) {
		me, form := e.login(t, b, alice2FA, url.Values{"reauth": {"mfa"}})
		l, _ := e.lastLogin(t)
		if !form || l.StepUp || l.ACR != oidcprovider.DefaultMFAACR || !slices.Equal(l.AMR, []string{"pwd", "otp"}) {
			t.Fatalf("form shown %v, interaction %+v", form, l)
		}
		// acr is in the ID token (acr_values asked for it); amr is not.
		if me.SID != first.SID || me.ACR != oidcprovider.DefaultMFAACR || len(me.AMR) != 0 || me.AuthTime == nil {
			t.Errorf("/me %+v", me)
		}
	})

	t.Run("logout at the provider delivers a back-channel logout that ends the session here", func(t *testing.T) {
		n := e.BC.count()
		e.providerLogout(t, b)
		if outs := e.OP.Logouts(t); len(outs) != 1 || outs[0].RPInitiated || outs[0].Subject != "alice" {
			t.Errorf("logouts %+v", outs)
		}
		// The token carries exp, sub and typ logout+jwt: the strict
		// receiver accepts it (no lenient path needed, unlike Hydra's).
		ds := e.BC.after(t, n)
		if len(ds) != 1 || ds[0].Path != app.BackchannelPath || ds[0].Status != http.StatusOK {
			t.Fatalf("deliveries %+v", ds)
		}
		if code, reason := e.me(t, b); code != http.StatusUnauthorized || reason != "reauth_required" {
			t.Errorf("GET /me after logout at the provider: %d %s", code, reason)
		}
		if _, form := e.login(t, b, alice, nil); !form {
			t.Error("the login after logout at the provider was silent")
		}
	})

	t.Run("an operator ending the provider session sends a back-channel logout", func(t *testing.T) {
		c := browser(t)
		me, _ := e.login(t, c, alice, nil)
		n := e.BC.count()
		// alice's provider sessions: this browser's and b's (signed in
		// again after the logout above). The hook returns after posting.
		ended := e.OP.EndSession(t, "alice")
		ds := e.BC.after(t, n)
		if len(ended) != 2 || len(ds) != 2 || ds[0].Status != http.StatusOK || ds[1].Status != http.StatusOK {
			t.Fatalf("ended %+v, deliveries %+v", ended, ds)
		}
		if code, reason := e.me(t, c); code != http.StatusUnauthorized || reason != "reauth_required" {
			t.Errorf("GET /me after the operator ended the session: %d %s (sid %s)", code, reason, me.SID)
		}
	})

	t.Run("logout at the app ends the session here and at the provider", func(t *testing.T) {
		c := browser(t)
		e.login(t, c, alice, nil)
		n := e.BC.count()
		p := navigate(t, c, http.MethodPost, e.URL+app.LogoutPath, nil, http.Header{"Origin": {e.URL}})
		p = confirmLogout(t, c, p)
		if p.Code != http.StatusOK || p.URL.Host != strings.TrimPrefix(e.URL, "http://") || p.URL.Path != "/" || p.URL.Query().Get("state") == "" {
			t.Fatalf("logout ended on %s (%d)\n%s", p.URL, p.Code, p.Body)
		}
		outs := e.OP.Logouts(t)
		if o := outs[len(outs)-1]; !o.RPInitiated || o.Subject != "alice" || o.ClientID != e.Client.ClientID {
			t.Errorf("logouts %+v", outs)
		}
		// oidc-provider also sends a logout token to the RP that started
		// the logout, for a session the app already ended; the receiver
		// answers 200 (it bumps the provider-session fence).
		ds := e.BC.after(t, n)
		if len(ds) != 1 || ds[0].Status != http.StatusOK {
			t.Errorf("deliveries after RP-initiated logout %+v", ds)
		}
		if code, _ := e.me(t, c); code != http.StatusUnauthorized {
			t.Errorf("GET /me after logout: %d", code)
		}
		// The app revoked the session's refresh token at the provider's
		// revocation endpoint (RFC 7009) on its way out; it was accepted.
		if strings.Contains(e.logs.String(), "refresh token revocation at the provider failed") {
			t.Errorf("revocation refused:\n%s", e.logs.String())
		}
		if _, form := e.login(t, c, alice, nil); !form {
			t.Error("the login after logout was silent: the provider session survived")
		}
	})
}

// TestOIDCProviderDefaults runs oidc-provider with three of its own
// defaults that server.mjs otherwise changes, and pins what each does to
// the example app: issueRefreshToken (no refresh token without
// prompt=consent), the login policy (voluntary acr_values ignored) and
// the SSRF protection of outgoing requests (no logout token ever reaches
// an RP on a special-use address: loopback, RFC 1918, ...).
func TestOIDCProviderDefaults(t *testing.T) {
	e := startOP(t, func(o *oidcprovider.Options) {
		o.DefaultIssueRefreshToken, o.NoStepUp, o.SSRFProtection = true, true, true
	})
	b := browser(t)

	me, _ := e.login(t, b, alice, nil)
	if !strings.Contains(e.logs.String(), "the provider issued no refresh token") {
		t.Errorf("a refresh token without prompt=consent:\n%s", e.logs.String())
	}

	_, before := e.lastLogin(t)
	mfa, l := e.authorize(t, b, alice2FA, url.Values{"acr_values": {oidcprovider.DefaultMFAACR}})
	if _, after := e.lastLogin(t); after != before || mfa.ID["acr"] != oidcprovider.DefaultPasswordACR {
		t.Errorf("acr_values=mfa on a password session: interaction %s, acr %v", asked(l), mfa.ID["acr"])
	}

	n := e.BC.count()
	e.providerLogout(t, b)
	ds := e.OP.Deliveries(t)
	t.Logf("deliveries %+v", ds)
	if len(ds) != 2 {
		t.Fatalf("deliveries %+v, want one per client", ds)
	}
	for _, d := range ds {
		if d.OK || !strings.Contains(d.Error, "special-use IP address") {
			t.Errorf("delivery %+v", d)
		}
	}
	if got := e.BC.count(); got != n {
		t.Errorf("the app received %d logout tokens", got-n)
	}
	if code, _ := e.me(t, b); code != http.StatusOK {
		t.Errorf("GET /me after a logout the app never heard of: %d (sid %s)", code, me.SID)
	}
}
