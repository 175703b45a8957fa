package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/oidc"
)

func TestLoginIssuesASessionFromTheIDToken(t *testing.T) {
	r := newRig(t)
	got := r.mustLogin()
	a := r.authorizations()
	if len(a) != 1 {
		t.Fatalf("%d authorization requests, want 1", len(a))
	}
	q := a[0].Params
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		t.Errorf("PKCE not S256: %v", q)
	}
	if len(q.Get("state")) != 43 || len(q.Get("nonce")) != 43 {
		t.Errorf("state/nonce not 256-bit random values: %v", q)
	}
	if q.Has("prompt") || q.Has("max_age") {
		t.Errorf("a plain login asked for re-authentication: %v", q)
	}
	if !strings.Contains(q.Get("scope"), "offline_access") {
		t.Errorf("scope %q lacks offline_access though refresh is server side", q.Get("scope"))
	}
	if got["sub"] != "alice" || got["tenant"] != "acme" || got["acr"] != fakeidp.PasswordACR || got["sid"] != a[0].SID {
		t.Errorf("session = %v, want alice@acme with the provider's acr and sid %q", got, a[0].SID)
	}
	if int64(got["auth_time"].(float64)) != a[0].AuthTime.Unix() {
		t.Errorf("auth_time = %v, want %d", got["auth_time"], a[0].AuthTime.Unix())
	}
	// The browser holds the session cookie and nothing else of ours: the
	// login-state cookie is gone and no token was ever sent to it.
	u, _ := url.Parse(r.url)
	for _, c := range r.browser.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "__Host-sessionfence-login") {
			t.Errorf("login-state cookie %s survived the callback", c.Name)
		}
	}
	if r.sessionCookie() == nil {
		t.Fatal("no session cookie")
	}
}

func TestLoginLandsOnReturnTo(t *testing.T) {
	r := newRig(t)
	p := r.login("return_to=" + url.QueryEscape("/app/reports?year=2026"))
	if p.status != 200 || p.url.Path != "/app/reports" || p.url.RawQuery != "year=2026" {
		t.Fatalf("landed on %s (%d)", p.url, p.status)
	}
}

func TestLoginNeverRedirectsOffSite(t *testing.T) {
	attacks := []string{
		"//evil.example/",
		"/\\evil.example",
		"\\\\evil.example",
		"https://evil.example/",
		"HTTPS://evil.example",
		"javascript:alert(1)",
		"/%2F%2Fevil.example",
		"/%2f/evil.example",
		"/%5Cevil.example",
		"/%252F%252Fevil.example",
		"/\t/evil.example",
		"/%09/evil.example",
		"/x/..//evil.example",
		"/%2e%2e//evil.example",
		"evil.example",
		"/app/me#@evil.example",
		"//%65vil.example",
		"/ /evil.example",
		"",
	}
	for _, rt := range attacks {
		t.Run("return_to "+strings.ReplaceAll(rt, "/", "∕"), func(t *testing.T) {
			r := newRig(t)
			p := r.login("return_to=" + url.QueryEscape(rt))
			if p.url.Host != strings.TrimPrefix(r.url, "https://") || p.url.Path != "/" || p.body != "home" {
				t.Fatalf("return_to %q landed on %s, want the default %s/", rt, p.url, r.url)
			}
		})
	}
}

func TestLoginForwardsRequestedACR(t *testing.T) {
	r := newRig(t)
	got := r.login("return_to=/app/me&acr_values=" + url.QueryEscape(fakeidp.DefaultMFAACR)).json(t)
	if v := r.authorizations()[0].Params.Get("acr_values"); v != fakeidp.DefaultMFAACR {
		t.Fatalf("acr_values = %q", v)
	}
	if got["acr"] != fakeidp.DefaultMFAACR {
		t.Fatalf("session acr = %v, want the MFA acr the provider reported", got["acr"])
	}
}

func TestLoginRefusesMalformedRequests(t *testing.T) {
	r := newRig(t)
	for name, q := range map[string]string{
		"unknown provider":        "provider=other",
		"acr_values with a quote": "acr_values=" + url.QueryEscape(`a"b`),
		"too many acr_values":     "acr_values=" + url.QueryEscape("a b c d e f g h i"),
	} {
		t.Run(name, func(t *testing.T) {
			assertErrorPage(t, r.login(q), http.StatusBadRequest)
			if len(r.authorizations()) != 0 {
				t.Fatal("a malformed login reached the provider")
			}
		})
	}
}

func TestCallbackRefusesBadIDTokens(t *testing.T) {
	cases := []struct {
		name  string
		q     fakeidp.Quirks
		check string
	}{
		{"wrong nonce is refused", fakeidp.Quirks{WrongNonce: true}, oidc.CheckNonce},
		{"missing nonce is refused", fakeidp.Quirks{OmitNonce: true}, oidc.CheckNonce},
		{"token for another client is refused", fakeidp.Quirks{WrongAudience: true}, oidc.CheckAudience},
		{"token from another issuer is refused", fakeidp.Quirks{WrongIssuer: true}, oidc.CheckIssuer},
		{"expired token is refused", fakeidp.Quirks{ExpiredIDToken: true}, oidc.CheckExpiry},
		{"at_hash not matching the access token is refused", fakeidp.Quirks{WrongAtHash: true}, oidc.CheckAtHash},
		{"token signed with an unpublished key is refused", fakeidp.Quirks{UnpublishedKey: true}, oidc.CheckSignature},
		{"token without the configured tenant claim is refused", fakeidp.Quirks{ExtraIDTokenClaims: map[string]any{"tenant": nil}}, oidc.CheckTenant},
		{"token with a future iat is refused", fakeidp.Quirks{ExtraIDTokenClaims: map[string]any{"iat": time.Now().Add(time.Hour).Unix()}}, oidc.CheckIssuedAt},
		{"token for several audiences without azp is refused", fakeidp.Quirks{ExtraIDTokenClaims: map[string]any{"aud": []string{clientID, "other"}}}, oidc.CheckAZP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.idp.SetQuirks(tc.q)
			p := r.login("return_to=/app/me")
			assertErrorPage(t, p, http.StatusForbidden)
			le := r.lastLoginError()
			var te *oidc.TokenError
			if le.Step != oidc.StepIDToken || !errors.Is(le, oidc.ErrIDToken) || !errors.As(le, &te) || te.Check != tc.check {
				t.Fatalf("got %v, want step id_token, check %s", le, tc.check)
			}
			if r.sessionCookie() != nil {
				t.Fatal("a refused login left a session cookie")
			}
			// The refresh token the provider issued for the refused login
			// was revoked rather than left live.
			if rv := r.idp.Revoked(); len(rv) != 1 || rv[0].Kind != "refresh_token" {
				t.Fatalf("revocations at the provider: %+v", rv)
			}
		})
	}
}

// stopAtCallback makes the browser stop before the provider's redirect to
// our callback is followed, and returns that redirect.
func stopAtCallback(r *rig, query string) (*url.URL, []*http.Cookie) {
	r.t.Helper()
	b := *r.browser
	b.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/callback" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	req, _ := http.NewRequestWithContext(r.t.Context(), http.MethodGet, r.url+"/login?"+query, nil)
	resp, err := b.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || loc.Path != "/callback" {
		r.t.Fatalf("provider answered %d %v, want a redirect to /callback", resp.StatusCode, loc)
	}
	u, _ := url.Parse(r.url)
	return loc, r.browser.Jar.Cookies(u)
}

func TestCallbackStateChecks(t *testing.T) {
	t.Run("a replayed callback with the same state and cookie is refused", func(t *testing.T) {
		r := newRig(t)
		cb, cookies := stopAtCallback(r, "return_to=/app/me")
		replay := func() page {
			hdr := http.Header{}
			for _, c := range cookies {
				hdr.Add("Cookie", c.Name+"="+c.Value)
			}
			c := r.idp.Client()
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			return r.do(c, http.MethodGet, cb.String(), hdr, false)
		}
		if p := replay(); p.status != http.StatusSeeOther {
			t.Fatalf("first callback = %d, want 303", p.status)
		}
		assertErrorPage(t, replay(), http.StatusBadRequest)
		if le := r.lastLoginError(); le.Step != oidc.StepState {
			t.Fatalf("step = %s, want state", le.Step)
		}
	})
	t.Run("a callback without state is refused", func(t *testing.T) {
		r := newRig(t)
		cb, _ := stopAtCallback(r, "")
		q := cb.Query()
		q.Del("state")
		cb.RawQuery = q.Encode()
		assertErrorPage(t, r.do(r.browser, http.MethodGet, cb.String(), nil, true), http.StatusBadRequest)
		if le := r.lastLoginError(); le.Step != oidc.StepState {
			t.Fatalf("step = %s, want state", le.Step)
		}
	})
	t.Run("a callback with another state is refused", func(t *testing.T) {
		r := newRig(t)
		cb, _ := stopAtCallback(r, "")
		q := cb.Query()
		q.Set("state", strings.Repeat("A", 43))
		cb.RawQuery = q.Encode()
		assertErrorPage(t, r.do(r.browser, http.MethodGet, cb.String(), nil, true), http.StatusBadRequest)
	})
	t.Run("a callback delivered to another browser is refused (login CSRF)", func(t *testing.T) {
		r := newRig(t)
		cb, _ := stopAtCallback(r, "")
		victim := r.idp.Browser()
		assertErrorPage(t, r.do(victim, http.MethodGet, cb.String(), nil, true), http.StatusBadRequest)
	})
	t.Run("a callback after the login timeout is refused", func(t *testing.T) {
		r := newRig(t)
		cb, _ := stopAtCallback(r, "")
		advance(r, oidc.DefaultLoginTimeout+time.Second)
		assertErrorPage(t, r.do(r.browser, http.MethodGet, cb.String(), nil, true), http.StatusBadRequest)
	})
	t.Run("a response from another issuer is refused (RFC 9207 mix-up)", func(t *testing.T) {
		r := newRig(t)
		r.idp.SetQuirks(fakeidp.Quirks{WrongIssParameter: true})
		assertErrorPage(t, r.login(""), http.StatusBadRequest)
		if le := r.lastLoginError(); le.Step != oidc.StepProvider {
			t.Fatalf("step = %s, want provider", le.Step)
		}
	})
	t.Run("a response without the advertised iss parameter is refused", func(t *testing.T) {
		r := newRig(t)
		r.idp.SetQuirks(fakeidp.Quirks{OmitIssParameter: true})
		assertErrorPage(t, r.login(""), http.StatusBadRequest)
	})
	t.Run("two logins in two tabs both complete", func(t *testing.T) {
		r := newRig(t)
		cb1, _ := stopAtCallback(r, "return_to=/app/one")
		cb2, _ := stopAtCallback(r, "return_to=/app/two")
		for cb, want := range map[*url.URL]string{cb2: "/app/two", cb1: "/app/one"} {
			if p := r.do(r.browser, http.MethodGet, cb.String(), nil, true); p.url.Path != want || p.status != 200 {
				t.Fatalf("callback landed on %s (%d), want %s", p.url, p.status, want)
			}
		}
	})
}

func TestCallbackShowsProviderErrorsWithoutLooping(t *testing.T) {
	r := newRig(t)
	r.idp.SetUser(fakeidp.User{}) // nobody logs in: access_denied
	assertErrorPage(t, r.login("return_to=/app/me"), http.StatusForbidden)
	if le := r.lastLoginError(); le.Step != oidc.StepProvider {
		t.Fatalf("step = %s, want provider", le.Step)
	}
	if n := len(r.authorizations()); n != 1 {
		t.Fatalf("%d authorization requests, want 1", n)
	}
}

func TestLoginSurvivesKeyRotation(t *testing.T) {
	r := newRig(t)
	r.mustLogin()
	r.idp.RotateKey()
	advance(r, 15*time.Second) // past the refetch rate limit
	b := r.idp.Browser()
	r.browser = b
	r.mustLogin()
}

func TestLoginRefusedWhenTheIdPSessionWasLoggedOut(t *testing.T) {
	r := newRig(t)
	first := r.mustLogin()
	// A back-channel logout of the provider session arrives (as the
	// backchannel receiver would record it) but the provider keeps the
	// SSO session: the next silent login carries the same sid.
	r.bump(middleware.IdPSessionScope(r.idp.Issuer(), first["sid"].(string)), middleware.PolicyNone)
	r.idp.SetQuirks(fakeidp.Quirks{IgnoreEndSession: true})
	p := r.login("return_to=/app/me")
	assertErrorPage(t, p, http.StatusForbidden)
	le := r.lastLoginError()
	var rev *middleware.RevokedError
	if le.Step != oidc.StepRevoked || !errors.As(le, &rev) || rev.Scope.Kind != middleware.ScopeIdPSession {
		t.Fatalf("got %v, want a revoked idp_session", le)
	}
}

func TestLoginRefusedWhenTheIDTokenPredatesAFence(t *testing.T) {
	r := newRig(t)
	advance(r, time.Minute)
	r.bump(middleware.SubjectScope(r.idp.Issuer(), "alice"), middleware.PolicyNone)
	// A token minted before the fence (replayed, or from a provider whose
	// clock lags by more than the skew).
	r.idp.SetQuirks(fakeidp.Quirks{ExtraIDTokenClaims: map[string]any{"iat": r.idp.Now().Add(-30 * time.Second).Unix()}})
	assertErrorPage(t, r.login("return_to=/app/me"), http.StatusForbidden)
	var rev *middleware.RevokedError
	if le := r.lastLoginError(); le.Step != oidc.StepRevoked || !errors.As(le, &rev) || rev.Scope.Kind != middleware.ScopeSubject {
		t.Fatalf("got %v, want a revoked subject", le)
	}
}

func TestOnLoginMapsClaimsButNotIdentity(t *testing.T) {
	r := newRig(t, func(c *oidc.Config) {
		c.OnLogin = func(_ context.Context, l *oidc.Login) error {
			var all struct {
				Email string `json:"email"`
			}
			if err := l.IDTokenClaims(&all); err != nil {
				return err
			}
			l.Claims.Data = "role=admin;email=" + all.Email
			l.Claims.Subject = "mallory" // ignored: identity comes from the token
			l.Claims.ACR = fakeidp.DefaultMFAACR
			return nil
		}
	})
	got := r.mustLogin()
	if got["data"] != "role=admin;email=alice@example.com" || got["sub"] != "alice" || got["acr"] != fakeidp.PasswordACR {
		t.Fatalf("session = %v", got)
	}
}

func TestOnLoginCanRefuse(t *testing.T) {
	errNotHere := errors.New("not allowed here")
	r := newRig(t, func(c *oidc.Config) {
		c.OnLogin = func(context.Context, *oidc.Login) error { return errNotHere }
	})
	assertErrorPage(t, r.login(""), http.StatusForbidden)
	if le := r.lastLoginError(); le.Step != oidc.StepHook || !errors.Is(le, errNotHere) {
		t.Fatalf("got %v", le)
	}
}

// A login whose session would not fit in a cookie the guard can open
// ends at the error page, once: before the fix it "succeeded", and every
// request then bounced the browser through silent logins.
func TestLoginWhoseSessionIsTooLargeForACookieFailsOnce(t *testing.T) {
	r := newRig(t, func(c *oidc.Config) {
		c.OnLogin = func(_ context.Context, l *oidc.Login) error {
			l.Claims.Data = strings.Repeat("r", 2049) // roles that grew too much
			return nil
		}
	})
	assertErrorPage(t, r.login("return_to=/app/me"), http.StatusForbidden)
	var tl *middleware.CookieTooLargeError
	if le := r.lastLoginError(); !errors.As(le, &tl) || tl.Field != "Data" {
		t.Fatalf("got %v, want a *CookieTooLargeError for Data", le)
	}
	if n := len(r.authorizations()); n != 1 {
		t.Fatalf("%d authorization requests, want 1 (no login loop)", n)
	}
	if ck := r.sessionCookie(); ck != nil {
		t.Fatalf("a session cookie was set: %v", ck)
	}
	// The refresh token the provider issued for the refused login is
	// revoked, not left live.
	if rv := r.idp.Revoked(); len(rv) != 1 || rv[0].Kind != "refresh_token" {
		t.Fatalf("revocations at the provider: %+v, want the login's refresh token", rv)
	}
}

func TestGuardedPageSendsAnonymousBrowsersToLogin(t *testing.T) {
	r := newRig(t)
	p := r.navigate("/app/reports?year=2026")
	if p.status != 200 || p.url.Path != "/app/reports" || p.url.Query().Get("year") != "2026" {
		t.Fatalf("landed on %s (%d), want the page asked for", p.url, p.status)
	}
}
