package backchannel

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	ginadapter "github.com/sessionfence/sessionfence/adapters/gin"
	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
)

// login runs a code flow at the provider with the browser and returns the
// ID token's sub, sid and auth_time. The ID token's signature is not what
// this test is about (the oidc package checks it), so its claims are read
// without verification.
func login(t *testing.T, p *fakeidp.Provider, browser *http.Client) middleware.Claims {
	t.Helper()
	conf := &oauth2.Config{
		ClientID: clientID, ClientSecret: "s", RedirectURL: "https://rp.example/callback", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: p.Issuer() + "/authorize", TokenURL: p.Issuer() + "/token"},
	}
	verifier := oauth2.GenerateVerifier()
	resp, err := browser.Get(conf.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %v %v", resp.StatusCode, loc, err)
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, p.Client())
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	parsed, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Iss      string `json:"iss"`
		Sub      string `json:"sub"`
		SID      string `json:"sid"`
		AuthTime int64  `json:"auth_time"`
		Iat      int64  `json:"iat"`
	}
	if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return middleware.Claims{Issuer: c.Iss, Subject: c.Sub, IdPSession: c.SID,
		AuthTime: time.Unix(c.AuthTime, 0), TokenIssuedAt: time.Unix(c.Iat, 0)}
}

func TestEndToEndProviderDeliversToTheHandler(t *testing.T) {
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, nil)
	srv := httptest.NewServer(e.rcv)
	t.Cleanup(srv.Close)
	reg, err := e.rcv.Registration(srv.URL + "/backchannel")
	if err != nil {
		t.Fatal(err)
	}
	p.AddClient(fakeidp.Client{ID: clientID, Secret: "s", RedirectURIs: []string{"https://rp.example/callback"},
		BackchannelLogoutURI: reg.BackchannelLogoutURI, BackchannelSessionRequired: reg.BackchannelLogoutSessionRequired})
	p.SetUser(fakeidp.User{Subject: sub})
	browser := p.Browser()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	// Two devices: two IdP sessions, two of our sessions.
	laptop := login(t, p, browser)
	phoneBrowser := p.Browser()
	phoneBrowser.CheckRedirect = browser.CheckRedirect
	phone := login(t, p, phoneBrowser)
	_, laptopCookie, err := e.guard.Issue(t.Context(), laptop)
	if err != nil {
		t.Fatal(err)
	}
	_, phoneCookie, err := e.guard.Issue(t.Context(), phone)
	if err != nil {
		t.Fatal(err)
	}

	// The provider ends the laptop's session and tells us.
	clk.Advance(time.Second)
	if err := p.EndSID(t.Context(), laptop.IdPSession); err != nil {
		t.Fatalf("EndSID: %v", err)
	}
	if d := p.Deliveries(); len(d) != 1 || d[0].StatusCode != http.StatusOK {
		t.Fatalf("deliveries %+v", d)
	}
	if d := e.guard.Check(t.Context(), laptopCookie.Value); d.Kind != middleware.DecisionReauthRequired || d.Scope.Kind != middleware.ScopeIdPSession {
		t.Errorf("laptop: %v", d)
	}
	if d := e.guard.Check(t.Context(), phoneCookie.Value); !d.Allowed() {
		t.Errorf("phone: %v", d)
	}
	// The laptop's login callback that was still in flight is refused.
	var re *middleware.RevokedError
	if _, _, err := e.guard.Issue(t.Context(), laptop); !errors.As(err, &re) {
		t.Errorf("late login of the ended IdP session: %v", err)
	}
	// The same delivery again (the provider timed out and resends) is a
	// replay: 200, nothing more.
	if err := p.Deliver(t.Context(), clientID, p.Deliveries()[0].Token); err != nil {
		t.Fatal(err)
	}
	if l := e.logs.last(t); l["outcome"] != outcomeReplay {
		t.Errorf("log %v", l)
	}

	// A logout of the whole user reaches the phone's session too.
	if err := p.EndSession(t.Context(), sub); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if d := e.guard.Check(t.Context(), phoneCookie.Value); d.Allowed() {
		t.Errorf("phone survived EndSession: %v", d)
	}
	// A fresh login afterwards is a new IdP session and is accepted.
	clk.Advance(time.Second)
	again := login(t, p, browser)
	if again.IdPSession == laptop.IdPSession {
		t.Fatal("the provider reused the sid")
	}
	if _, _, err := e.guard.Issue(t.Context(), again); err != nil {
		t.Errorf("fresh login after logout: %v", err)
	}
}

// The receiver behind gin, through the adapter, with the provider
// delivering to it.
func TestBehindGin(t *testing.T) {
	gin.SetMode(gin.TestMode)
	clk := newClock()
	p := fakeidp.New(t, fakeidp.WithClock(clk.Now))
	e := newEnv(t, clk, []*fakeidp.Provider{p}, nil)
	r := gin.New()
	r.Any("/backchannel-logout", ginadapter.BackchannelHandler(e.rcv))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	p.AddClient(fakeidp.Client{ID: clientID, BackchannelLogoutURI: srv.URL + "/backchannel-logout"})

	if err := p.Deliver(t.Context(), clientID, p.SignLogoutToken(p.LogoutToken(clientID, sub, sid))); err != nil {
		t.Fatal(err)
	}
	if g := e.gen(t, middleware.IdPSessionScope(p.Issuer(), sid)); g != 1 {
		t.Errorf("gen %d", g)
	}
	c := p.LogoutToken(clientID, sub, sid)
	c["nonce"] = "n"
	var de *fakeidp.DeliveryError
	if err := p.Deliver(t.Context(), clientID, p.SignLogoutToken(c)); !errors.As(err, &de) || de.StatusCode != http.StatusBadRequest {
		t.Errorf("invalid token through gin: %v", err)
	}
	resp, err := http.Get(srv.URL + "/backchannel-logout")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET through gin: %d %v", resp.StatusCode, resp.Header)
	}
}
