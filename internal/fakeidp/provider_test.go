package fakeidp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
)

// serve starts an httptest server for a provider made by NewProvider at
// the server's address plus path.
func serve(t *testing.T, path string, opts ...fakeidp.Option) (*fakeidp.Provider, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	p, err := fakeidp.NewProvider("http://"+srv.Listener.Addr().String()+path, opts...)
	if err != nil {
		srv.Listener.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return p, srv
}

func TestNewProviderServesItsHandlerAtTheIssuerPath(t *testing.T) {
	t.Parallel()
	p, srv := serve(t, "/realms/test", fakeidp.WithSigningAlg("ES256"))
	p.AddClient(fakeidp.Client{ID: clientID, Secret: clientSecret, RedirectURIs: []string{redirectURI}})
	p.SetUser(alice)
	ctx := oidc.ClientContext(t.Context(), p.Client())
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatalf("discovery at %s: %v", p.Issuer(), err)
	}
	if !strings.HasPrefix(op.Endpoint().TokenURL, srv.URL+"/realms/test/") {
		t.Errorf("token endpoint %s", op.Endpoint().TokenURL)
	}
	conf := &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: op.Endpoint(), RedirectURL: redirectURI, Scopes: []string{"openid"}}
	verifier := oauth2.GenerateVerifier()
	browser := p.Browser()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("status %d, no redirect", resp.StatusCode)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, tok.Extra("id_token").(string)); err != nil {
		t.Errorf("ID token: %v", err)
	}
	if s := p.Sessions(); len(s) != 1 || s[0].Subject != "alice" || s[0].SID == "" {
		t.Errorf("Sessions() = %+v", s)
	}
	// Endpoints exist only under the issuer's path.
	resp, err = p.Client().Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("discovery outside the issuer path: status %d", resp.StatusCode)
	}
}

func TestNewProviderRefusesBadIssuers(t *testing.T) {
	t.Parallel()
	for _, issuer := range []string{
		"", "/relative", "ftp://idp.test", "http://", "http://idp.test/", "http://idp.test?x=1",
		"http://idp.test#f", "http://user@idp.test", "http://idp.test/a//b", "http://idp.test/{x}", "http://idp.test/a%2Fb",
	} {
		if p, err := fakeidp.NewProvider(issuer); err == nil || p != nil {
			t.Errorf("NewProvider(%q) accepted", issuer)
		}
	}
	if _, err := fakeidp.NewProvider("https://idp.test/realms/a-b_c.d~e", fakeidp.WithSigningAlg("ES256")); err != nil {
		t.Errorf("valid issuer refused: %v", err)
	}
}

func TestNewProviderPanicsOnMisuse(t *testing.T) {
	t.Parallel()
	p, err := fakeidp.NewProvider("http://idp.test", fakeidp.WithSigningAlg("ES256"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("AddClient with an empty ID did not panic")
		}
	}()
	p.AddClient(fakeidp.Client{})
}

func TestWithLoginUIRefusesBadAccounts(t *testing.T) {
	t.Parallel()
	for name, ui := range map[string]fakeidp.LoginUI{
		"no account":        {},
		"no subject":        {Accounts: []fakeidp.Account{{Password: "x"}}},
		"no password":       {Accounts: []fakeidp.Account{{User: alice}}},
		"duplicate account": {Accounts: []fakeidp.Account{{User: alice, Password: "x"}, {User: alice, Password: "y"}}},
	} {
		if _, err := fakeidp.NewProvider("http://idp.test", fakeidp.WithLoginUI(ui)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// The interactive mode records the authorization when the form completes,
// as a new authentication; the engine's tests of the pages themselves are
// in examples/devidp.
func TestLoginUIRecordsTheAuthorizationWhenTheFormCompletes(t *testing.T) {
	t.Parallel()
	p := fakeidp.New(t, fakeidp.WithSigningAlg("ES256"), fakeidp.WithLoginUI(fakeidp.LoginUI{Accounts: []fakeidp.Account{{User: alice, Password: "pw"}}}))
	p.AddClient(fakeidp.Client{ID: clientID, Secret: clientSecret, RedirectURIs: []string{redirectURI}})
	browser := p.Browser()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	verifier := oauth2.GenerateVerifier()
	q := url.Values{
		"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"st"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	resp, err := browser.Get(p.Issuer() + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), fakeidp.DevelopmentBanner) {
		t.Fatalf("status %d\n%s", resp.StatusCode, body)
	}
	if got := p.Authorizations(); len(got) != 0 {
		t.Errorf("recorded before the form completed: %+v", got)
	}
	form := url.Values{"username": {"alice"}, "password": {"pw"}}
	for _, m := range hiddenRe.FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], m[2])
	}
	resp, err = browser.PostForm(p.Issuer()+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || err != nil || !loc.Query().Has("code") || loc.Query().Get("state") != "st" {
		t.Fatalf("status %d location %v", resp.StatusCode, loc)
	}
	got := p.Authorizations()
	if len(got) != 1 || !got[0].Authenticated || got[0].Subject != "alice" || got[0].ACR != fakeidp.PasswordACR ||
		!slices.Equal(got[0].Params["state"], []string{"st"}) {
		t.Errorf("Authorizations() = %+v", got)
	}
}
