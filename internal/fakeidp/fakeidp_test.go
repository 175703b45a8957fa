package fakeidp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
)

const (
	clientID     = "rp"
	clientSecret = "rp-secret"
	redirectURI  = "https://rp.example/callback"
	byeURI       = "https://rp.example/bye"
)

var alice = fakeidp.User{Subject: "alice", Email: "alice@example.com", Name: "Alice", Tenant: "acme", MFA: true}

// rig is a relying party built only from go-oidc and x/oauth2, driving the
// fake provider the way our oidc package will.
type rig struct {
	p        *fakeidp.Provider
	ctx      context.Context
	op       *oidc.Provider
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
	browser  *http.Client
}

func newRig(t *testing.T, opts ...fakeidp.Option) *rig {
	t.Helper()
	p := fakeidp.New(t, opts...)
	p.AddClient(fakeidp.Client{
		ID: clientID, Secret: clientSecret,
		RedirectURIs:           []string{redirectURI},
		PostLogoutRedirectURIs: []string{byeURI},
	})
	p.SetUser(alice)
	ctx := oidc.ClientContext(t.Context(), p.Client())
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	browser := p.Browser()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &rig{
		p: p, ctx: ctx, op: op, browser: browser,
		conf: &oauth2.Config{
			ClientID: clientID, ClientSecret: clientSecret, Endpoint: op.Endpoint(),
			RedirectURL: redirectURI, Scopes: []string{oidc.ScopeOpenID, "email"},
		},
		// The provider's clock may be advanced; the verifier must agree.
		verifier: op.VerifierContext(ctx, &oidc.Config{ClientID: clientID, Now: p.Now}),
	}
}

// authz is one authorization request and the provider's answer.
type authz struct {
	verifier, nonce, state string
	resp                   url.Values // query of the redirect back to the RP
}

// authorize sends the browser to /authorize and returns the redirect's
// query, failing the test unless the provider redirected to redirectURI.
func (r *rig) authorize(t *testing.T, opts ...oauth2.AuthCodeOption) authz {
	t.Helper()
	a := authz{verifier: oauth2.GenerateVerifier(), nonce: rand.Text(), state: rand.Text()}
	opts = append(opts, oauth2.S256ChallengeOption(a.verifier), oidc.Nonce(a.nonce))
	resp, err := r.browser.Get(r.conf.AuthCodeURL(a.state, opts...))
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorize: status %d, location %v", resp.StatusCode, err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", got, redirectURI)
	}
	a.resp = loc.Query()
	return a
}

type claims struct {
	Nonce    string   `json:"nonce"`
	SID      string   `json:"sid"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime *int64   `json:"auth_time"`
	Tenant   string   `json:"tenant"`
	Email    string   `json:"email"`
}

func (c claims) authTime(t *testing.T) int64 {
	t.Helper()
	if c.AuthTime == nil {
		t.Fatal("no auth_time")
	}
	return *c.AuthTime
}

// login runs a whole code flow and checks everything a careful relying
// party checks: state, iss, nonce, at_hash.
func (r *rig) login(t *testing.T, opts ...oauth2.AuthCodeOption) (*oauth2.Token, claims) {
	t.Helper()
	a := r.authorize(t, opts...)
	if e := a.resp.Get("error"); e != "" {
		t.Fatalf("authorize error %s: %s", e, a.resp.Get("error_description"))
	}
	if a.resp.Get("state") != a.state || a.resp.Get("iss") != r.p.Issuer() {
		t.Fatalf("state/iss not echoed: %v", a.resp)
	}
	tok, err := r.conf.Exchange(r.ctx, a.resp.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	c, id := r.verify(t, tok)
	if id.Nonce != a.nonce || c.Nonce != a.nonce {
		t.Fatalf("nonce = %q, want %q", id.Nonce, a.nonce)
	}
	return tok, c
}

func (r *rig) verify(t *testing.T, tok *oauth2.Token) (claims, *oidc.IDToken) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	id, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var c claims
	if err := id.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c, id
}

func (r *rig) refresh(refreshToken string) (*oauth2.Token, error) {
	return r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
}

// oauthCode returns the RFC 6749 error code of a failed token request.
func oauthCode(t *testing.T, err error) string {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want *oauth2.RetrieveError, got %v", err)
	}
	return re.ErrorCode
}

func TestCodeFlowWithPKCEAndNonce(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			r := newRig(t, fakeidp.WithSigningAlg(alg))
			tok, c := r.login(t)
			if c.SID == "" || c.ACR != fakeidp.PasswordACR || !slices.Equal(c.AMR, []string{"pwd"}) ||
				c.Tenant != "acme" || c.Email != alice.Email {
				t.Errorf("claims = %+v", c)
			}
			if tok.RefreshToken == "" || tok.TokenType != "Bearer" {
				t.Errorf("token = %+v", tok)
			}
			info, err := r.op.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
			if err != nil || info.Subject != "alice" || info.Email != alice.Email {
				t.Errorf("userinfo = %+v, %v", info, err)
			}
		})
	}
}

func TestAccessTokenIsRFC9068JWT(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakeidp.WithAPIAudience("https://api.example"))
	tok, c := r.login(t)
	parsed, err := jwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := parsed.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		t.Errorf("typ = %v", typ)
	}
	var at struct {
		jwt.Claims
		ClientID string   `json:"client_id"`
		SID      string   `json:"sid"`
		ACR      string   `json:"acr"`
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
		Tenant   string   `json:"tenant"`
		Scope    string   `json:"scope"`
	}
	if err := parsed.Claims(r.p.SigningKey().Public(), &at); err != nil {
		t.Fatal(err)
	}
	if at.Issuer != r.p.Issuer() || !at.Audience.Contains("https://api.example") || at.ClientID != clientID ||
		at.ID == "" || at.SID != c.SID || at.AuthTime != c.authTime(t) || at.Tenant != "acme" || at.Scope != "openid email" {
		t.Errorf("access token claims = %+v", at)
	}
}

func TestSilentSSOKeepsAuthTimeAndSID(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	_, first := r.login(t)
	r.p.Advance(time.Minute)
	_, second := r.login(t)
	if second.authTime(t) != first.authTime(t) || second.SID != first.SID {
		t.Errorf("silent SSO: auth_time %d→%d sid %s→%s", first.authTime(t), second.authTime(t), first.SID, second.SID)
	}
	if got := r.p.Authorizations(); len(got) != 2 || !got[0].Authenticated || got[1].Authenticated {
		t.Errorf("authorizations = %+v", got)
	}
}

func TestReauthentication(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		quirks    fakeidp.Quirks
		opts      []oauth2.AuthCodeOption
		wantFresh bool
	}{
		{"prompt=login renews auth_time", fakeidp.Quirks{}, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login")}, true},
		{"max_age=0 renews auth_time", fakeidp.Quirks{}, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "0")}, true},
		{"max_age older than the login renews", fakeidp.Quirks{}, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "30")}, true},
		{"max_age younger than the login is silent", fakeidp.Quirks{}, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "3600")}, false},
		{"IgnorePrompt answers prompt=login silently", fakeidp.Quirks{IgnorePrompt: true}, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login")}, false},
		{"IgnoreMaxAge answers max_age=0 silently", fakeidp.Quirks{IgnoreMaxAge: true}, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "0")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			_, first := r.login(t)
			r.p.Advance(time.Minute)
			r.p.SetQuirks(tt.quirks)
			before := r.p.Now().Unix()
			_, second := r.login(t, tt.opts...)
			after := r.p.Now().Unix()
			fresh := second.authTime(t) != first.authTime(t)
			if fresh != tt.wantFresh {
				t.Errorf("new auth_time = %v, want %v", fresh, tt.wantFresh)
			}
			// The login may cross a second boundary: now is a range.
			if at := second.authTime(t); fresh && (at < before || at > after) {
				t.Errorf("auth_time = %d, want now (%d..%d)", at, before, after)
			}
			if second.SID != first.SID {
				t.Errorf("re-authentication in the same browser changed sid")
			}
		})
	}
}

func TestPromptNone(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	a := r.authorize(t, oauth2.SetAuthURLParam("prompt", "none"))
	if a.resp.Get("error") != "login_required" || a.resp.Get("state") != a.state || a.resp.Get("iss") != r.p.Issuer() {
		t.Fatalf("without a session: %v", a.resp)
	}
	r.login(t)
	if a := r.authorize(t, oauth2.SetAuthURLParam("prompt", "none")); a.resp.Get("code") == "" {
		t.Errorf("with a session: %v", a.resp)
	}
	if a := r.authorize(t, oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("max_age", "0")); a.resp.Get("error") != "login_required" {
		t.Errorf("prompt=none with max_age=0: %v", a.resp)
	}
}

func TestACRValues(t *testing.T) {
	t.Parallel()
	mfa := oauth2.SetAuthURLParam("acr_values", fakeidp.DefaultMFAACR)
	t.Run("MFA requested and possible", func(t *testing.T) {
		r := newRig(t)
		_, c := r.login(t, mfa)
		if c.ACR != fakeidp.DefaultMFAACR || !slices.Equal(c.AMR, []string{"pwd", "otp"}) {
			t.Errorf("acr %q amr %v", c.ACR, c.AMR)
		}
	})
	t.Run("step-up from a password session re-authenticates", func(t *testing.T) {
		r := newRig(t)
		_, first := r.login(t)
		r.p.Advance(time.Minute)
		_, second := r.login(t, mfa)
		if second.ACR != fakeidp.DefaultMFAACR || second.authTime(t) == first.authTime(t) || second.SID != first.SID {
			t.Errorf("step-up: %+v after %+v", second, first)
		}
		// An MFA session answers later MFA requests silently.
		r.p.Advance(time.Minute)
		if _, third := r.login(t, mfa); third.authTime(t) != second.authTime(t) {
			t.Errorf("MFA session re-authenticated")
		}
	})
	t.Run("user without MFA gets the password acr", func(t *testing.T) {
		r := newRig(t)
		r.p.SetUser(fakeidp.User{Subject: "bob"})
		if _, c := r.login(t, mfa); c.ACR != fakeidp.PasswordACR {
			t.Errorf("acr = %q", c.ACR)
		}
	})
	t.Run("IgnoreACR", func(t *testing.T) {
		r := newRig(t, fakeidp.WithQuirks(fakeidp.Quirks{IgnoreACR: true}))
		if _, c := r.login(t, mfa); c.ACR != fakeidp.PasswordACR {
			t.Errorf("acr = %q", c.ACR)
		}
	})
	t.Run("custom MFA acr", func(t *testing.T) {
		r := newRig(t, fakeidp.WithMFAACR("phr"))
		if _, c := r.login(t, oauth2.SetAuthURLParam("acr_values", "foo phr")); c.ACR != "phr" {
			t.Errorf("acr = %q", c.ACR)
		}
	})
}

func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	verifier := oauth2.GenerateVerifier()
	valid := func() url.Values {
		return url.Values{
			"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"st"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
			"code_challenge_method": {"S256"},
		}
	}
	tests := []struct {
		name   string
		change func(url.Values)
		// wantError is the redirected error; "" means a 400 page and no redirect.
		wantError string
		setUser   *fakeidp.User
	}{
		{name: "unknown client is a 400 page", change: func(v url.Values) { v.Set("client_id", "nope") }},
		{name: "unregistered redirect_uri is a 400 page", change: func(v url.Values) { v.Set("redirect_uri", redirectURI+"/") }},
		{name: "missing redirect_uri is a 400 page", change: func(v url.Values) { v.Del("redirect_uri") }},
		{name: "missing PKCE is refused", change: func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, wantError: "invalid_request"},
		{name: "plain PKCE is refused", change: func(v url.Values) { v.Set("code_challenge", verifier); v.Set("code_challenge_method", "plain") }, wantError: "invalid_request"},
		{name: "implicit flow is refused", change: func(v url.Values) { v.Set("response_type", "id_token") }, wantError: "unsupported_response_type"},
		{name: "missing openid scope is refused", change: func(v url.Values) { v.Set("scope", "email") }, wantError: "invalid_scope"},
		{name: "prompt=none with login is refused", change: func(v url.Values) { v.Set("prompt", "none login") }, wantError: "invalid_request"},
		{name: "bad max_age is refused", change: func(v url.Values) { v.Set("max_age", "-1") }, wantError: "invalid_request"},
		{name: "nobody logging in is access_denied", change: func(url.Values) {}, wantError: "access_denied", setUser: &fakeidp.User{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			if tt.setUser != nil {
				r.p.SetUser(*tt.setUser)
			}
			v := valid()
			tt.change(v)
			resp, err := r.browser.Get(r.p.Issuer() + "/authorize?" + v.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if tt.wantError == "" {
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
					t.Fatalf("status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
				}
				return
			}
			loc, err := resp.Location()
			if err != nil {
				t.Fatalf("status %d, no redirect", resp.StatusCode)
			}
			q := loc.Query()
			if q.Get("error") != tt.wantError || q.Get("state") != "st" || q.Get("iss") != r.p.Issuer() || q.Has("code") {
				t.Errorf("redirect = %v", q)
			}
			if got := r.p.Authorizations(); len(got) != 1 || got[0].Error != tt.wantError {
				t.Errorf("recorded %+v", got)
			}
		})
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		r := newRig(t)
		a := r.authorize(t)
		_, err := r.conf.Exchange(r.ctx, a.resp.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
		if got := oauthCode(t, err); got != "invalid_grant" {
			t.Errorf("error = %q", got)
		}
	})
	t.Run("code reuse revokes the first grant", func(t *testing.T) {
		r := newRig(t)
		a := r.authorize(t)
		tok, err := r.conf.Exchange(r.ctx, a.resp.Get("code"), oauth2.VerifierOption(a.verifier))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.conf.Exchange(r.ctx, a.resp.Get("code"), oauth2.VerifierOption(a.verifier))
		if got := oauthCode(t, err); got != "invalid_grant" {
			t.Errorf("reuse error = %q", got)
		}
		if _, err := r.refresh(tok.RefreshToken); oauthCode(t, err) != "invalid_grant" {
			t.Errorf("refresh after code reuse: %v", err)
		}
	})
	t.Run("expired code", func(t *testing.T) {
		r := newRig(t)
		a := r.authorize(t)
		r.p.Advance(fakeidp.DefaultCodeTTL + time.Second)
		_, err := r.conf.Exchange(r.ctx, a.resp.Get("code"), oauth2.VerifierOption(a.verifier))
		if got := oauthCode(t, err); got != "invalid_grant" {
			t.Errorf("error = %q", got)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		r := newRig(t)
		a := r.authorize(t)
		conf := *r.conf
		conf.ClientSecret = "wrong"
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		_, err := conf.Exchange(r.ctx, a.resp.Get("code"), oauth2.VerifierOption(a.verifier))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("error body and cache headers follow RFC 6749", func(t *testing.T) {
		r := newRig(t)
		resp, err := r.p.Client().PostForm(r.p.Issuer()+"/token", url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {"nope"},
			"client_id": {clientID}, "client_secret": {clientSecret},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 || body["error"] != "invalid_grant" || body["error_description"] == "" ||
			resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("status %d body %v headers %v", resp.StatusCode, body, resp.Header)
		}
	})
}

func TestInsecureAllowMissingPKCE(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakeidp.InsecureAllowMissingPKCE())
	r.p.AddClient(fakeidp.Client{ID: "spa", RedirectURIs: []string{redirectURI}})
	for _, tt := range []struct{ client, want string }{{clientID, "code"}, {"spa", "error"}} {
		v := url.Values{"client_id": {tt.client}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"}}
		resp, err := r.browser.Get(r.p.Issuer() + "/authorize?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil || !loc.Query().Has(tt.want) {
			t.Errorf("client %s without PKCE: %v %v", tt.client, loc, err)
		}
		if tt.want == "code" {
			if _, err := r.conf.Exchange(r.ctx, loc.Query().Get("code")); err != nil {
				t.Errorf("exchange without verifier: %v", err)
			}
		}
	}
}

func TestPublicClient(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.p.AddClient(fakeidp.Client{ID: "spa", RedirectURIs: []string{redirectURI}})
	r.conf.ClientID, r.conf.ClientSecret = "spa", ""
	r.conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	r.verifier = r.op.VerifierContext(r.ctx, &oidc.Config{ClientID: "spa", Now: r.p.Now})
	r.login(t)
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	t.Run("rotation keeps the original authentication", func(t *testing.T) {
		r := newRig(t)
		tok, first := r.login(t, oauth2.SetAuthURLParam("acr_values", fakeidp.DefaultMFAACR))
		r.p.Advance(time.Minute)
		r.p.UpdateUser(fakeidp.User{Subject: "alice", Email: alice.Email, Tenant: "globex", MFA: true})
		next, err := r.refresh(tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
			t.Fatal("tokens not rotated")
		}
		c, id := r.verify(t, next)
		if c.authTime(t) != first.authTime(t) || c.ACR != first.ACR || !slices.Equal(c.AMR, first.AMR) || c.SID != first.SID {
			t.Errorf("refreshed %+v, original %+v", c, first)
		}
		if c.Nonce != "" || c.Tenant != "globex" || !id.IssuedAt.Equal(r.p.Now().Truncate(time.Second)) {
			t.Errorf("refreshed ID token: %+v iat %v", c, id.IssuedAt)
		}
		if r.p.RefreshCount() != 1 {
			t.Errorf("RefreshCount = %d", r.p.RefreshCount())
		}
		want := []fakeidp.Refresh{{ClientID: clientID, Presented: tok.RefreshToken, Issued: next.RefreshToken}}
		if got := r.p.Refreshes(); !slices.Equal(got, want) {
			t.Errorf("Refreshes() = %+v, want %+v", got, want)
		}
	})
	t.Run("reuse of a rotated token revokes the grant", func(t *testing.T) {
		r := newRig(t)
		tok, _ := r.login(t)
		next, err := r.refresh(tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.refresh(tok.RefreshToken); oauthCode(t, err) != "invalid_grant" {
			t.Errorf("reuse: %v", err)
		}
		if _, err := r.refresh(next.RefreshToken); oauthCode(t, err) != "invalid_grant" {
			t.Errorf("current token after reuse: %v", err)
		}
		if r.p.RefreshCount() != 1 {
			t.Errorf("RefreshCount = %d", r.p.RefreshCount())
		}
	})
	t.Run("RefuseRefresh", func(t *testing.T) {
		r := newRig(t)
		tok, _ := r.login(t)
		r.p.RefuseRefresh(true)
		if _, err := r.refresh(tok.RefreshToken); oauthCode(t, err) != "invalid_grant" {
			t.Errorf("refused: %v", err)
		}
		r.p.RefuseRefresh(false)
		if _, err := r.refresh(tok.RefreshToken); err != nil {
			t.Errorf("after RefuseRefresh(false): %v", err)
		}
	})
	t.Run("NoRefreshRotation and RefreshWithoutIDToken", func(t *testing.T) {
		r := newRig(t, fakeidp.WithQuirks(fakeidp.Quirks{NoRefreshRotation: true, RefreshWithoutIDToken: true}))
		tok, _ := r.login(t)
		for range 2 {
			next, err := r.refresh(tok.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			if next.RefreshToken != tok.RefreshToken || next.Extra("id_token") != nil {
				t.Errorf("refresh_token %q id_token %v", next.RefreshToken, next.Extra("id_token"))
			}
		}
	})
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	tok, _ := r.login(t)
	for _, tt := range []struct{ token, hint, kind string }{
		{tok.RefreshToken, "refresh_token", "refresh_token"},
		{tok.AccessToken, "", "access_token"},
		{"never-issued", "", "unknown"},
	} {
		req, _ := http.NewRequest(http.MethodPost, r.p.Issuer()+"/revoke",
			strings.NewReader(url.Values{"token": {tt.token}, "token_type_hint": {tt.hint}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, clientSecret)
		resp, err := r.p.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("revoke %s: status %d", tt.kind, resp.StatusCode)
		}
	}
	got := r.p.Revoked()
	if len(got) != 3 || got[0].Kind != "refresh_token" || got[1].Kind != "access_token" || got[2].Kind != "unknown" || got[0].ClientID != clientID {
		t.Errorf("Revoked() = %+v", got)
	}
	if _, err := r.refresh(tok.RefreshToken); oauthCode(t, err) != "invalid_grant" {
		t.Errorf("refresh after revoke: %v", err)
	}
	if _, err := r.op.UserInfo(r.ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("userinfo accepted a revoked access token")
	}
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	tok, c := r.login(t)
	hint := tok.Extra("id_token").(string)

	bad := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}}
	resp, err := r.browser.Get(r.p.Issuer() + "/end_session?" + bad.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unregistered post_logout_redirect_uri: status %d", resp.StatusCode)
	}

	var endSession struct {
		URL string `json:"end_session_endpoint"`
	}
	if err := r.op.Claims(&endSession); err != nil {
		t.Fatal(err)
	}
	good := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {byeURI}, "state": {"s1"}}
	resp, err = r.browser.Get(endSession.URL + "?" + good.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != byeURI+"?state=s1" {
		t.Fatalf("status %d location %q", resp.StatusCode, loc)
	}
	calls := r.p.EndSessionCalls()
	if len(calls) != 2 || calls[0].Error == "" || calls[1].Error != "" || calls[1].SID != c.SID ||
		calls[1].Subject != "alice" || calls[1].ClientID != clientID || calls[1].State != "s1" {
		t.Errorf("EndSessionCalls() = %+v", calls)
	}
	if a := r.authorize(t, oauth2.SetAuthURLParam("prompt", "none")); a.resp.Get("error") != "login_required" {
		t.Errorf("SSO survived end_session: %v", a.resp)
	}
	if _, err := r.refresh(tok.RefreshToken); oauthCode(t, err) != "invalid_grant" {
		t.Errorf("refresh after end_session: %v", err)
	}
	// A new login is a new session with a new sid.
	if _, again := r.login(t); again.SID == c.SID {
		t.Error("sid reused after logout")
	}
}

func TestEndSessionIgnoredByQuirk(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakeidp.WithQuirks(fakeidp.Quirks{IgnoreEndSession: true}))
	tok, _ := r.login(t)
	resp, err := r.browser.Get(r.p.Issuer() + "/end_session?" + url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := r.authorize(t, oauth2.SetAuthURLParam("prompt", "none")); a.resp.Get("code") == "" {
		t.Errorf("IgnoreEndSession: %v", a.resp)
	}
}

// receiver is a back-channel logout endpoint verifying with go-oidc.
type receiver struct {
	mu     sync.Mutex
	tokens []*oidc.LogoutToken
	errs   []error
}

func (rc *receiver) handler(verifier *oidc.IDTokenVerifier) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		lt, err := verifier.VerifyLogout(req.Context(), req.PostFormValue("logout_token"))
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err != nil {
			rc.errs = append(rc.errs, err)
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		rc.tokens = append(rc.tokens, lt)
	}
}

func (rc *receiver) got() ([]*oidc.LogoutToken, []error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.tokens), slices.Clone(rc.errs)
}

func newReceiver(t *testing.T, r *rig, id string, sessionRequired bool) *receiver {
	rc := &receiver{}
	v := r.op.VerifierContext(r.ctx, &oidc.Config{ClientID: id, Now: r.p.Now})
	srv := httptest.NewServer(rc.handler(v))
	t.Cleanup(srv.Close)
	r.p.AddClient(fakeidp.Client{ID: id, Secret: "x", BackchannelLogoutURI: srv.URL, BackchannelSessionRequired: sessionRequired})
	return rc
}

func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	t.Run("EndSession delivers sub and sid and ends the session", func(t *testing.T) {
		r := newRig(t)
		rc := newReceiver(t, r, "bc", false)
		tok, c := r.login(t)
		if err := r.p.EndSession(t.Context(), "alice"); err != nil {
			t.Fatal(err)
		}
		toks, errs := rc.got()
		if len(errs) != 0 || len(toks) != 1 || toks[0].Subject != "alice" || toks[0].SessionID != c.SID || toks[0].TokenID == "" {
			t.Fatalf("received %+v, errors %v", toks, errs)
		}
		if _, err := r.refresh(tok.RefreshToken); oauthCode(t, err) != "invalid_grant" {
			t.Errorf("refresh after EndSession: %v", err)
		}
		if a := r.authorize(t, oauth2.SetAuthURLParam("prompt", "none")); a.resp.Get("error") != "login_required" {
			t.Errorf("SSO survived EndSession: %v", a.resp)
		}
	})
	t.Run("EndSession without a session sends sub only, not to sid-only clients", func(t *testing.T) {
		r := newRig(t)
		plain := newReceiver(t, r, "bc", false)
		strict := newReceiver(t, r, "bc-sid", true)
		if err := r.p.EndSession(t.Context(), "carol"); err != nil {
			t.Fatal(err)
		}
		if toks, _ := plain.got(); len(toks) != 1 || toks[0].Subject != "carol" || toks[0].SessionID != "" {
			t.Errorf("plain receiver got %+v", toks)
		}
		if toks, _ := strict.got(); len(toks) != 0 {
			t.Errorf("sid-required receiver got %+v", toks)
		}
	})
	t.Run("EndSID and end_session deliver", func(t *testing.T) {
		r := newRig(t)
		rc := newReceiver(t, r, "bc", false)
		tok, c := r.login(t)
		if err := r.p.EndSID(t.Context(), "no-such-sid"); !errors.Is(err, fakeidp.ErrUnknownSession) {
			t.Errorf("unknown sid: %v", err)
		}
		if err := r.p.EndSID(t.Context(), c.SID); err != nil {
			t.Fatal(err)
		}
		r.login(t)
		resp, err := r.browser.Get(r.p.Issuer() + "/end_session?" + url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		toks, errs := rc.got()
		if len(errs) != 0 || len(toks) != 2 || toks[0].SessionID != c.SID || toks[1].SessionID == c.SID || toks[1].SessionID == "" {
			t.Errorf("received %+v, errors %v", toks, errs)
		}
		if d := r.p.Deliveries(); len(d) != 2 || d[1].StatusCode != http.StatusOK || d[1].Err != nil {
			t.Errorf("Deliveries() = %+v", d)
		}
	})
	t.Run("failed delivery is a DeliveryError", func(t *testing.T) {
		r := newRig(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "no", http.StatusInternalServerError)
		}))
		t.Cleanup(srv.Close)
		r.p.AddClient(fakeidp.Client{ID: "down", BackchannelLogoutURI: srv.URL})
		err := r.p.EndSession(t.Context(), "alice")
		var de *fakeidp.DeliveryError
		if !errors.As(err, &de) || de.StatusCode != http.StatusInternalServerError || de.ClientID != "down" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("crafted logout tokens", func(t *testing.T) {
		r := newRig(t)
		rc := newReceiver(t, r, "bc", false)
		valid := r.p.LogoutToken("bc", "alice", "s1")
		withNonce := r.p.LogoutToken("bc", "alice", "s1")
		withNonce["nonce"] = "n"
		noEvent := r.p.LogoutToken("bc", "alice", "")
		delete(noEvent, "events")
		if err := r.p.Deliver(t.Context(), "bc", r.p.SignLogoutToken(valid)); err != nil {
			t.Errorf("valid token refused: %v", err)
		}
		for name, c := range map[string]map[string]any{"nonce": withNonce, "no event": noEvent} {
			var de *fakeidp.DeliveryError
			if err := r.p.Deliver(t.Context(), "bc", r.p.SignLogoutToken(c)); !errors.As(err, &de) || de.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %v", name, err)
			}
		}
		if toks, errs := rc.got(); len(toks) != 1 || len(errs) != 2 {
			t.Errorf("received %d, refused %d", len(toks), len(errs))
		}
	})
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	t.Run("old key removed", func(t *testing.T) {
		r := newRig(t)
		old, _ := r.login(t)
		oldKid := r.p.SigningKey().ID
		if k := r.p.RotateKey(); k.ID == oldKid || k.Alg != "RS256" {
			t.Fatalf("rotated to %+v", k)
		}
		fresh, _ := r.login(t) // verifies: go-oidc refetches on the unknown kid
		_ = fresh
		if _, err := r.verifier.Verify(r.ctx, old.Extra("id_token").(string)); err == nil {
			t.Error("token signed by the removed key still verifies")
		}
	})
	t.Run("old key kept", func(t *testing.T) {
		r := newRig(t, fakeidp.WithKeepRetiredKeys())
		old, _ := r.login(t)
		r.p.RotateKey()
		r.login(t)
		if _, err := r.verifier.Verify(r.ctx, old.Extra("id_token").(string)); err != nil {
			t.Errorf("retired key: %v", err)
		}
	})
	t.Run("rotation to another algorithm", func(t *testing.T) {
		r := newRig(t, fakeidp.WithKeepRetiredKeys())
		old, _ := r.login(t)
		r.p.RotateKeyAlg("EdDSA")
		// go-oidc takes the allowed algorithms from discovery once, so a
		// relying party only follows an algorithm change after rediscovery.
		op, err := oidc.NewProvider(r.ctx, r.p.Issuer())
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Algs []string `json:"id_token_signing_alg_values_supported"`
		}
		if err := op.Claims(&d); err != nil || !slices.Equal(d.Algs, []string{"EdDSA", "RS256"}) {
			t.Fatalf("algs = %v, %v", d.Algs, err)
		}
		r.verifier = op.VerifierContext(r.ctx, &oidc.Config{ClientID: clientID, Now: r.p.Now})
		r.login(t)
		if _, err := r.verifier.Verify(r.ctx, old.Extra("id_token").(string)); err != nil {
			t.Errorf("retired RS256 key: %v", err)
		}
	})
}

func TestCraftedTokens(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	idClaims := func() map[string]any {
		now := r.p.Now()
		return map[string]any{"iss": r.p.Issuer(), "sub": "alice", "aud": clientID, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"Sign with the current key verifies", r.p.Sign(nil, idClaims()), true},
		{"unsigned is refused", r.p.Unsigned(idClaims()), false},
		// go-jose wants an HMAC key at least as long as the hash.
		{"HS256 is refused", r.p.SignWith([]byte(strings.Repeat(clientSecret, 4)), "HS256", nil, idClaims()), false},
		{"a foreign key is refused", r.p.SignWith(other, "ES256", map[string]any{"kid": r.p.SigningKey().ID}, idClaims()), false},
		{"a header claiming another alg is refused", r.p.Sign(map[string]any{"alg": "ES256"}, idClaims()), false},
		{"an unknown kid is refused", r.p.Sign(map[string]any{"kid": "nope"}, idClaims()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.verifier.Verify(r.ctx, tt.token)
			if (err == nil) != tt.ok {
				t.Errorf("verify err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestCraftedAccessTokens(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	userinfo := func(access string) int {
		req, _ := http.NewRequest(http.MethodGet, r.p.Issuer()+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		resp, err := r.p.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	valid := r.p.AccessTokenClaims(clientID, alice)
	if got := userinfo(r.p.SignAccessToken(valid)); got != http.StatusOK {
		t.Errorf("valid crafted access token: status %d", got)
	}
	expired := r.p.AccessTokenClaims(clientID, alice)
	expired["exp"] = r.p.Now().Add(-time.Minute).Unix()
	if got := userinfo(r.p.SignAccessToken(expired)); got != http.StatusUnauthorized {
		t.Errorf("expired crafted access token: status %d", got)
	}
	if got := userinfo(r.p.Sign(nil, r.p.LogoutToken(clientID, "alice", ""))); got != http.StatusUnauthorized {
		t.Errorf("logout token as access token: status %d", got)
	}
}

func TestQuirksAreRefusedByARelyingParty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		quirks fakeidp.Quirks
		// check returns nil when the misbehaviour is visible.
		check func(r *rig, raw, access string, a authz) error
	}{
		{"WrongAudience", fakeidp.Quirks{WrongAudience: true}, verifyFails},
		{"WrongIssuer", fakeidp.Quirks{WrongIssuer: true}, verifyFails},
		{"ExpiredIDToken", fakeidp.Quirks{ExpiredIDToken: true}, verifyFails},
		{"UnpublishedKey", fakeidp.Quirks{UnpublishedKey: true}, verifyFails},
		{"WrongNonce", fakeidp.Quirks{WrongNonce: true}, func(r *rig, raw, _ string, a authz) error {
			return claimDiffers(r, raw, func(id *oidc.IDToken, _ claims) bool { return id.Nonce != a.nonce })
		}},
		{"WrongAtHash", fakeidp.Quirks{WrongAtHash: true}, func(r *rig, raw, access string, _ authz) error {
			id, err := r.verifier.Verify(r.ctx, raw)
			if err != nil {
				return err
			}
			if id.VerifyAccessToken(access) == nil {
				return errors.New("at_hash matched")
			}
			return nil
		}},
		{"OmitAuthTime", fakeidp.Quirks{OmitAuthTime: true}, func(r *rig, raw, _ string, _ authz) error {
			return claimDiffers(r, raw, func(_ *oidc.IDToken, c claims) bool { return c.AuthTime == nil })
		}},
		{"OmitSID", fakeidp.Quirks{OmitSID: true}, func(r *rig, raw, _ string, _ authz) error {
			return claimDiffers(r, raw, func(_ *oidc.IDToken, c claims) bool { return c.SID == "" })
		}},
		{"ExtraIDTokenClaims fakes MFA", fakeidp.Quirks{ExtraIDTokenClaims: map[string]any{"acr": fakeidp.DefaultMFAACR}}, func(r *rig, raw, _ string, _ authz) error {
			return claimDiffers(r, raw, func(_ *oidc.IDToken, c claims) bool {
				return c.ACR == fakeidp.DefaultMFAACR && slices.Equal(c.AMR, []string{"pwd"})
			})
		}},
		{"WrongIssParameter", fakeidp.Quirks{WrongIssParameter: true}, func(r *rig, _, _ string, a authz) error {
			if a.resp.Get("iss") == r.p.Issuer() {
				return errors.New("iss parameter correct")
			}
			return nil
		}},
		{"PlainJWTAccessToken", fakeidp.Quirks{PlainJWTAccessToken: true}, func(_ *rig, _, access string, _ authz) error {
			tok, err := jwt.ParseSigned(access, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				return err
			}
			if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "JWT" {
				return errors.New("typ is still at+jwt")
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, fakeidp.WithQuirks(tt.quirks))
			a := r.authorize(t)
			tok, err := r.conf.Exchange(r.ctx, a.resp.Get("code"), oauth2.VerifierOption(a.verifier))
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.check(r, tok.Extra("id_token").(string), tok.AccessToken, a); err != nil {
				t.Errorf("misbehaviour not visible: %v", err)
			}
		})
	}
	t.Run("WrongDiscoveryIssuer", func(t *testing.T) {
		p := fakeidp.New(t, fakeidp.WithQuirks(fakeidp.Quirks{WrongDiscoveryIssuer: true}))
		if _, err := oidc.NewProvider(oidc.ClientContext(t.Context(), p.Client()), p.Issuer()); err == nil {
			t.Error("go-oidc accepted a mismatched discovery issuer")
		}
	})
}

func verifyFails(r *rig, raw, _ string, _ authz) error {
	if _, err := r.verifier.Verify(r.ctx, raw); err == nil {
		return errors.New("ID token verified")
	}
	return nil
}

func claimDiffers(r *rig, raw string, bad func(*oidc.IDToken, claims) bool) error {
	id, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		return err
	}
	var c claims
	if err := id.Claims(&c); err != nil {
		return err
	}
	if !bad(id, c) {
		return errors.New("claims look correct")
	}
	return nil
}

func TestTLS(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakeidp.WithTLS())
	if !strings.HasPrefix(r.p.Issuer(), "https://") {
		t.Fatalf("issuer %s", r.p.Issuer())
	}
	_, first := r.login(t)
	_, second := r.login(t)
	if first.SID != second.SID {
		t.Error("SSO cookie not kept over TLS")
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	var d struct {
		Issuer           string   `json:"issuer"`
		EndSession       string   `json:"end_session_endpoint"`
		Revocation       string   `json:"revocation_endpoint"`
		Userinfo         string   `json:"userinfo_endpoint"`
		PKCE             []string `json:"code_challenge_methods_supported"`
		BackchannelLo    bool     `json:"backchannel_logout_supported"`
		BackchannelSID   bool     `json:"backchannel_logout_session_supported"`
		ACRValues        []string `json:"acr_values_supported"`
		ResponseTypes    []string `json:"response_types_supported"`
		SigningAlgValues []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := r.op.Claims(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != r.p.Issuer() || d.EndSession == "" || d.Revocation == "" || d.Userinfo == "" ||
		!slices.Equal(d.PKCE, []string{"S256"}) || !d.BackchannelLo || !d.BackchannelSID ||
		!slices.Contains(d.ACRValues, fakeidp.DefaultMFAACR) || !slices.Equal(d.ResponseTypes, []string{"code"}) ||
		!slices.Equal(d.SigningAlgValues, []string{"RS256"}) {
		t.Errorf("discovery = %+v", d)
	}
}
