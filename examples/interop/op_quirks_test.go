package interop_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/examples/interop/loginapp"
	"github.com/sessionfence/sessionfence/examples/interop/oidcprovider"
)

// TestOIDCProviderQuirks pins what oidc-provider 9.13.3 (configured as
// server.mjs says) puts in its tokens and how it treats prompt, max_age,
// acr_values, resource indicators, refresh and logout: a release that
// behaves otherwise fails it. docs/providers/oidc-provider.md is written
// from its -v output (the QUIRK lines) and must change with it. The
// steps run in order in one browser, each on the provider session the
// previous left.
func TestOIDCProviderQuirks(t *testing.T) {
	e := startOP(t, nil)
	r := e.RP
	b := browser(t)
	note, same := quirkHelpers(t)
	absent := func(what string, ts tokenSet, claims ...string) {
		t.Helper()
		for _, c := range claims {
			if v, ok := ts.ID[c]; ok {
				t.Errorf("%s: ID token has %s %v", what, c, v)
			}
		}
	}

	first, l := e.authorize(t, b, alice, nil)
	note("first login", "interaction", asked(l))
	note("token response", "scope", first.Scope, "refresh token", first.RefreshToken != "", "access token", first.AccessToken)
	note("ID token header", first.IDHdr)
	note("ID token claims", keysOf(first.ID), first.ID)
	if l == nil || !l.Form || !slices.Equal(l.Reasons, []string{"no_session"}) {
		t.Fatalf("first login: %+v", l)
	}
	// No typ header at all (Hydra sends "JWT").
	if _, typ := first.IDHdr["typ"]; typ || first.IDHdr["alg"] != "RS256" || first.IDHdr["kid"] == nil {
		t.Errorf("ID token header %v", first.IDHdr)
	}
	// No auth_time, acr or amr without max_age, prompt=login,
	// require_auth_time or acr_values; tenant comes with openid (our claims
	// configuration).
	if want := []string{"aud", "exp", "iat", "iss", "nonce", "sid", "sub", "tenant"}; !slices.Equal(keysOf(first.ID), want) {
		t.Errorf("ID token claims %v, want %v", keysOf(first.ID), want)
	}
	// offline_access is dropped (no prompt=consent); the refresh token
	// comes from server.mjs's issueRefreshToken; without a resource the
	// access token is opaque (only good at userinfo).
	if first.Scope != "openid" || first.RefreshToken == "" || first.Access != nil {
		t.Errorf("scope %q, refresh token %v, access token %q", first.Scope, first.RefreshToken != "", first.AccessToken)
	}

	silent, l := e.authorize(t, b, alice, nil)
	note("silent login", "interaction", asked(l), "sid", silent.ID["sid"], "was", first.ID["sid"], "claims", keysOf(silent.ID))
	if l != nil {
		t.Errorf("silent login asked: %+v", l)
	}
	same("silent login", silent, first, "sid")
	absent("silent login", silent, "auth_time", "acr", "amr")

	withAge, l := e.authorize(t, b, alice, url.Values{"max_age": {"3600"}})
	note("max_age=3600 with a live session", "interaction", asked(l), "sid", withAge.ID["sid"], "auth_time", withAge.ID["auth_time"], "iat", withAge.ID["iat"])
	if l != nil || withAge.ID["auth_time"] == nil || num(withAge.ID["auth_time"]) > num(first.ID["iat"]) {
		t.Errorf("max_age=3600: %+v, auth_time %v (first iat %v)", l, withAge.ID["auth_time"], first.ID["iat"])
	}
	same("max_age=3600", withAge, first, "sid")

	stepUp, l := e.authorize(t, b, loginapp.Credentials{OTP: otp}, url.Values{"acr_values": {oidcprovider.DefaultMFAACR}})
	note("acr_values=mfa with a live password session", "interaction", asked(l), "sid", stepUp.ID["sid"],
		"auth_time", stepUp.ID["auth_time"], "acr", stepUp.ID["acr"], "amr", stepUp.ID["amr"], "claims", keysOf(stepUp.ID))
	if l == nil || !l.StepUp || !slices.Equal(l.Reasons, []string{"acr_values_mfa"}) || stepUp.ID["acr"] != oidcprovider.DefaultMFAACR {
		t.Errorf("step-up: %+v, acr %v", l, stepUp.ID["acr"])
	}
	same("step-up", stepUp, first, "sid")
	absent("step-up", stepUp, "auth_time", "amr")

	fresh, l := e.authorize(t, b, alice, url.Values{"prompt": {"login"}})
	note("prompt=login with a live session", "interaction", asked(l), "sid", fresh.ID["sid"], "was", first.ID["sid"],
		"auth_time", fresh.ID["auth_time"], "was", withAge.ID["auth_time"], "acr", fresh.ID["acr"], "scope", fresh.Scope)
	if l == nil || !l.Form || !slices.Equal(l.Reasons, []string{"login_prompt"}) || fresh.ID["auth_time"] == nil || num(fresh.ID["auth_time"]) < num(withAge.ID["auth_time"]) {
		t.Errorf("prompt=login: %+v, auth_time %v", l, fresh.ID["auth_time"])
	}
	// The same sid after a fresh login in the same browser.
	same("prompt=login", fresh, first, "sid")
	absent("prompt=login", fresh, "acr", "amr")

	zero, l := e.authorize(t, b, alice, url.Values{"max_age": {"0"}})
	note("max_age=0 with a live session", "interaction", asked(l), "sid", zero.ID["sid"], "auth_time", zero.ID["auth_time"])
	if l == nil || !l.Form || !slices.Equal(l.Reasons, []string{"login_prompt"}) || l.Params.Prompt != "login" || l.Params.MaxAge != "" || zero.ID["auth_time"] == nil {
		t.Errorf("max_age=0: %+v, auth_time %v", l, zero.ID["auth_time"])
	}
	same("max_age=0", zero, first, "sid")

	consents := len(e.OP.Consents(t))
	consent, l := e.authorize(t, b, alice, url.Values{"prompt": {"consent"}, "scope": {"openid offline_access api:read"}, "resource": {api}})
	cs := e.OP.Consents(t)[consents:]
	note("prompt=consent, scope openid offline_access api:read, resource", "login", asked(l), "consent", cs, "scope", consent.Scope,
		"refresh token", consent.RefreshToken != "", "access token", consent.AccessToken)
	if l != nil || len(cs) != 1 || !slices.Equal(cs[0].Reasons, []string{"consent_prompt", "op_scopes_missing", "rs_scopes_missing"}) ||
		consent.Scope != "openid offline_access api:read" || consent.RefreshToken == "" {
		t.Errorf("prompt=consent: login %v, consents %+v, scope %q, refresh token %v", l, cs, consent.Scope, consent.RefreshToken != "")
	}
	// The resource was named at the authorization endpoint only: the
	// token endpoint still answers with an opaque access token
	// (useGrantedResource is false by default).
	if consent.Access != nil {
		t.Errorf("access token without resource at the token endpoint: %v %v", consent.ATHdr, consent.Access)
	}

	refreshed := r.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {consent.RefreshToken}})
	note("refresh", "rotated", refreshed.RefreshToken != consent.RefreshToken, "scope", refreshed.Scope)
	note("refreshed ID token claims", keysOf(refreshed.ID), refreshed.ID)
	// Not rotated: a confidential client's refresh token rotates only
	// after 70% of its lifetime (rotateRefreshToken's default).
	if refreshed.RefreshToken != consent.RefreshToken || refreshed.IDToken == "" {
		t.Errorf("refresh: rotated %v, ID token %v", refreshed.RefreshToken != consent.RefreshToken, refreshed.IDToken != "")
	}
	if want := []string{"aud", "exp", "iat", "iss", "nonce", "sid", "sub", "tenant"}; !slices.Equal(keysOf(refreshed.ID), want) {
		t.Errorf("refreshed ID token claims %v, want %v", keysOf(refreshed.ID), want)
	}
	same("refreshed", refreshed, consent, "sid", "nonce")
	_, code, body := r.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {consent.RefreshToken}})
	note("the same refresh token again", code)
	if code != http.StatusOK {
		t.Errorf("second use of an unrotated refresh token: %d %s", code, body)
	}

	apiTok := r.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {consent.RefreshToken}, "resource": {api}})
	note("access token header (refresh_token grant with resource)", apiTok.ATHdr)
	note("access token claims", keysOf(apiTok.Access), apiTok.Access)
	if apiTok.ATHdr["typ"] != "at+jwt" || apiTok.ATHdr["alg"] != "RS256" || apiTok.Access["aud"] != "api" || apiTok.Access["scope"] != "api:read" {
		t.Errorf("access token %v %v", apiTok.ATHdr, apiTok.Access)
	}
	// No auth_time, sid, acr or amr in access tokens: a bearer check can
	// only judge them by iat. tenant comes from extraTokenClaims.
	if want := []string{"aud", "client_id", "exp", "iat", "iss", "jti", "scope", "sub", "tenant"}; !slices.Equal(keysOf(apiTok.Access), want) {
		t.Errorf("access token claims %v, want %v", keysOf(apiTok.Access), want)
	}
	res, hello := e.bearer(t, apiTok.AccessToken)
	note("that access token at the example's bearer API", res, hello)
	if res != http.StatusOK || !strings.Contains(hello, `"hello":"alice"`) {
		t.Errorf("GET /api/hello with oidc-provider's access token: %d %s", res, hello)
	}

	n := len(r.logoutTokens())
	e.providerLogout(t, b)
	// end_session posts the tokens before it answers: no wait needed.
	toks := r.logoutTokens()[n:]
	for _, tok := range toks {
		h, c := jwtParts(t, tok)
		note("logout token", h, keysOf(c), c)
		if h["typ"] != "logout+jwt" || h["alg"] != "RS256" || !slices.Equal(keysOf(c), []string{"aud", "events", "exp", "iat", "iss", "jti", "sid", "sub"}) {
			t.Errorf("logout token %v %v", h, c)
		}
		if c["sid"] != first.ID["sid"] || c["sub"] != "alice" || num(c["exp"])-num(c["iat"]) != 120 {
			t.Errorf("logout token sid %v (ID tokens' %v), sub %v, exp-iat %v", c["sid"], first.ID["sid"], c["sub"], num(c["exp"])-num(c["iat"]))
		}
	}
	if len(toks) != 1 {
		t.Errorf("%d logout tokens, want 1", len(toks))
	}

	// A grant with offline_access persists logout: its refresh token still
	// works; one issued without it expired with the provider session.
	_, code, body = r.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {consent.RefreshToken}})
	note("refresh after logout, token granted offline_access", code)
	if code != http.StatusOK {
		t.Errorf("offline_access refresh token after logout: %d %s", code, body)
	}
	_, code, body = r.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
	note("refresh after logout, token issued without offline_access", code, body)
	if code != http.StatusBadRequest || !strings.Contains(body, `"invalid_grant"`) {
		t.Errorf("session-bound refresh token after logout: %d %s", code, body)
	}

	p := r.promptNone(t, b)
	note("prompt=none after logout", p.Code, p.Location)
	if loc, err := url.Parse(p.Location); err != nil || loc.Query().Get("error") != "login_required" || loc.Query().Get("iss") != e.OP.Issuer {
		t.Errorf("prompt=none after logout: %d %s", p.Code, p.Location)
	}
}

// api is server.mjs's resource indicator for the example's API.
const api = "urn:sessionfence:api"
