package interop_test

import (
	"crypto/rand"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/examples/internal/app"
	"github.com/sessionfence/sessionfence/examples/interop/loginapp"
	"github.com/sessionfence/sessionfence/examples/interop/oidcprovider"
)

// opEnv is panva's oidc-provider with our sign-in pages, the nethttp
// example app registered there as a web client, and a capture RP (a
// second client) for the quirks test.
type opEnv struct {
	*site
	OP     *oidcprovider.Server
	Client oidcprovider.Client
	RP     *rp
}

// startOP runs the whole environment; mod, when not nil, adjusts the
// provider's options first. Everything stops in t.Cleanup.
func startOP(t *testing.T, mod func(*oidcprovider.Options)) *opEnv {
	t.Helper()
	e := &opEnv{RP: newCapture(t)}
	appLn, appURL := listen(t)
	e.Client = oidcprovider.WebClient("nethttp", rand.Text(), appURL+app.CallbackPath, appURL+"/", appURL+app.BackchannelPath)
	capture := oidcprovider.WebClient("capture", rand.Text(), e.RP.cb, e.RP.origin+"/", e.RP.origin+"/bc")
	users := map[string]oidcprovider.User{}
	for _, u := range []string{"alice", "bob"} {
		users[u] = oidcprovider.User{Password: password, Claims: map[string]any{"tenant": "acme"}}
	}
	o := oidcprovider.Options{Clients: []oidcprovider.Client{e.Client, capture}, Users: users, OTP: otp}
	if mod != nil {
		mod(&o)
	}
	e.OP = oidcprovider.Start(t, o)
	signIn := func(p page) (string, bool) {
		// /interaction/{uid}, or /interaction/{uid}/login after a refused
		// submission; the form posts to the latter.
		rest, ok := strings.CutPrefix(p.URL.Path, oidcprovider.InteractionPath)
		if !ok || p.URL.Host != strings.TrimPrefix(e.OP.Issuer, "http://") || !strings.Contains(p.Body, `<form id="signin"`) {
			return "", false
		}
		uid, _, _ := strings.Cut(rest, "/")
		return e.OP.Issuer + oidcprovider.InteractionPath + uid + "/login", true
	}
	e.site = startSite(t, appLn, e.OP.Issuer, e.Client.ClientID, e.Client.ClientSecret, signIn)
	e.RP.clientID, e.RP.secret = capture.ClientID, capture.ClientSecret
	e.RP.authURL, e.RP.tokenURL = e.OP.Issuer+oidcprovider.AuthPath, e.OP.Issuer+oidcprovider.TokenPath
	e.RP.http, e.RP.op = e.OP.HTTP, signIn
	return e
}

// lastLogin returns the newest login interaction, and how many there are.
func (e *opEnv) lastLogin(t *testing.T) (oidcprovider.Login, int) {
	t.Helper()
	ls := e.OP.Logins(t)
	if len(ls) == 0 {
		return oidcprovider.Login{}, 0
	}
	return ls[len(ls)-1], len(ls)
}

// authorize is rp.authorize on the capture client, with the record of
// the login interaction it caused, nil when the provider answered
// without asking (silent SSO).
func (e *opEnv) authorize(t *testing.T, b *http.Client, c loginapp.Credentials, extra url.Values) (tokenSet, *oidcprovider.Login) {
	t.Helper()
	_, before := e.lastLogin(t)
	ts := e.RP.authorize(t, b, c, extra)
	l, after := e.lastLogin(t)
	if after == before {
		return ts, nil
	}
	return ts, &l
}

// asked describes a login interaction for the QUIRK lines.
func asked(l *oidcprovider.Login) string {
	if l == nil {
		return "none (silent)"
	}
	return fmt.Sprintf("%s %v form %v stepUp %v prompt=%q max_age=%q acr_values=%q scope=%q -> acr %s amr %v ts %d",
		l.Prompt, l.Reasons, l.Form, l.StepUp, l.Params.Prompt, l.Params.MaxAge, l.Params.ACRValues, l.Params.Scope, l.ACR, l.AMR, l.TS)
}

var (
	formRE   = regexp.MustCompile(`<form\b[^>]*\baction="([^"]*)"`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"\s*/?>`)
)

// postForm submits the first form of p with its hidden fields and extra,
// as a browser would (oidc-provider's logout confirmation, or its
// self-submitting form_post page), and returns where the redirects end.
func postForm(t *testing.T, b *http.Client, p page, extra url.Values) page {
	t.Helper()
	m := formRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no form on %s (%d):\n%s", p.URL, p.Code, p.Body)
	}
	action, err := p.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(p.Body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	for k, v := range extra {
		form[k] = v
	}
	return navigate(t, b, http.MethodPost, action.String(), form, nil)
}

// confirmLogout answers oidc-provider's "Sign out?" page p with "Yes"
// (logout=yes: every client of the provider session is logged out).
func confirmLogout(t *testing.T, b *http.Client, p page) page {
	t.Helper()
	if p.Code != http.StatusOK || !strings.Contains(p.Body, `id="op.logoutForm"`) {
		t.Fatalf("not the logout confirmation: %s (%d)\n%s", p.URL, p.Code, p.Body)
	}
	return postForm(t, b, p, url.Values{"logout": {"yes"}})
}

// providerLogout signs b out at the provider without naming a client
// (GET /session/end, then "Yes"). oidc-provider posts every logout token
// before it answers the confirmation, so the deliveries are done when
// this returns; it ends on the provider's own "signed out" page.
func (e *opEnv) providerLogout(t *testing.T, b *http.Client) page {
	t.Helper()
	p := confirmLogout(t, b, navigate(t, b, http.MethodGet, e.OP.Issuer+oidcprovider.EndSessionPath, nil, nil))
	if p.Code != http.StatusOK || p.URL.String() != e.OP.Issuer+oidcprovider.EndSessionPath+"/success" {
		t.Fatalf("provider logout ended on %s (%d)\n%s", p.URL, p.Code, p.Body)
	}
	return p
}
