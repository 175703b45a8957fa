// Package apptest is the end-to-end test of the example application that
// both routers (net/http and gin) must pass: a development provider over
// TLS, the application on a loopback port, and cookie-jar clients playing
// browsers. No browser and no external service is needed.
package apptest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
	"github.com/sessionfence/sessionfence/examples/internal/app"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

const (
	clientID     = "example-app"
	clientSecret = "example-secret"
)

// Env is a running provider and application.
type Env struct {
	IdP    *devidp.Server
	Issuer string
	URL    string // the application's origin
	App    *app.App
	tls    *http.Client // trusts the provider's certificate
}

// Start serves the provider over TLS (so the bearer verifier, which
// accepts https issuers only, is exercised) and the application, routed
// by route, over plain HTTP on loopback (INSECURE_COOKIES).
func Start(t *testing.T, name string, route func(*app.App) http.Handler) *Env {
	t.Helper()
	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Issuer: "https://" + idpLn.Addr().String(), URL: "http://" + appLn.Addr().String()}
	e.IdP, err = devidp.New(devidp.Config{
		Issuer: e.Issuer,
		// The provider's clock runs 2 s ahead of ours (within the 5 s
		// skew every check tolerates). Tokens carry whole seconds, and a
		// login whose ID token's iat falls before a fence is refused; ahead
		// by 2 s, a login right after a terminate-all in the same second
		// still carries a later iat, as it would with a person typing.
		Now: func() time.Time { return time.Now().Add(2 * time.Second) },
		Clients: []devidp.Client{{
			ID: clientID, Secret: clientSecret,
			RedirectURIs:           []string{e.URL + app.CallbackPath},
			PostLogoutRedirectURIs: []string{e.URL + "/"},
			BackchannelLogoutURI:   e.URL + app.BackchannelPath,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv := httptest.NewUnstartedServer(e.IdP)
	idpSrv.Listener.Close()
	idpSrv.Listener = idpLn
	idpSrv.StartTLS()
	t.Cleanup(idpSrv.Close)
	e.tls = idpSrv.Client()

	store := AgedStore()

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.App, err = app.New(context.Background(), app.Config{
		Name: name, Addr: appLn.Addr().String(), PublicURL: e.URL, Store: store,
		Issuer: e.Issuer, ClientID: clientID, ClientSecret: clientSecret, TenantClaim: "tenant",
		AdminSubjects: []string{"alice"}, InsecureCookies: true, HTTPClient: e.tls, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.App.Close)
	appSrv := httptest.NewUnstartedServer(route(e.App))
	appSrv.Listener.Close()
	appSrv.Listener = appLn
	appSrv.Start()
	t.Cleanup(appSrv.Close)
	return e
}

// AgedStore returns an in-process store that has existed for a while, as
// in production: bearer tokens issued less than the guard's skew after
// the store's epoch began are refused (a wiped store must not resurrect
// tokens), so a store born in the test's first millisecond would refuse
// every token. Its epoch is stamped a minute in the past (memstore.New
// reads the clock once for it); afterwards its clock is the real one.
func AgedStore() *memstore.Store {
	var ready atomic.Bool
	store := memstore.New(memstore.Config{Now: func() time.Time {
		if ready.Load() {
			return time.Now()
		}
		return time.Now().Add(-time.Minute)
	}})
	ready.Store(true)
	return store
}

// Browser returns a client with its own cookie jar that trusts the
// provider's certificate and follows redirects, as a browser would.
func (e *Env) Browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: e.tls.Transport, Timeout: 10 * time.Second}
}

// page is a fetched HTML page.
type page struct {
	url  *url.URL
	code int
	body string
}

var (
	formRE   = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// form returns the first POST form of p containing marker, its absolute
// action and its hidden fields.
func (p page) form(t *testing.T, marker string) (string, url.Values) {
	t.Helper()
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		if !strings.Contains(m[2], marker) {
			continue
		}
		action, err := p.url.Parse(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		v := url.Values{}
		for _, h := range hiddenRE.FindAllStringSubmatch(m[2], -1) {
			v.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
		}
		return action.String(), v
	}
	t.Fatalf("no form with %q on %s (%d):\n%s", marker, p.url, p.code, p.body)
	return "", nil
}

func do(t *testing.T, b *http.Client, req *http.Request) page {
	t.Helper()
	res, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{url: res.Request.URL, code: res.StatusCode, body: string(body)}
}

func get(t *testing.T, b *http.Client, u string) page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	return do(t, b, req)
}

func post(t *testing.T, b *http.Client, u string, form url.Values) page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	return do(t, b, req)
}

// signIn fills the provider's login page reached at p as user (password
// "dev"), and the one-time-code page if the provider asks for it. It
// returns the page the redirects end on and whether a code was asked.
func signIn(t *testing.T, b *http.Client, p page, user string) (page, bool) {
	t.Helper()
	action, f := p.form(t, `name="password"`)
	f.Set("username", user)
	f.Set("password", devidp.DefaultPassword)
	f.Set("action", "login")
	p = post(t, b, action, f)
	if !strings.Contains(p.body, `name="otp"`) {
		return p, false
	}
	action, f = p.form(t, `name="otp"`)
	f.Set("otp", devidp.OTP)
	f.Set("action", "verify")
	return post(t, b, action, f), true
}

// Login signs user in through GET /login?return_to=/me and returns the
// /me body and whether the provider asked for the one-time code.
func (e *Env) Login(t *testing.T, b *http.Client, user string) (map[string]any, bool) {
	t.Helper()
	p := get(t, b, e.URL+"/login?return_to=%2Fme")
	p, otp := signIn(t, b, p, user)
	if p.code != http.StatusOK || p.url.String() != e.URL+"/me" {
		t.Fatalf("login of %s ended on %s (%d):\n%s", user, p.url, p.code, p.body)
	}
	var me map[string]any
	if err := json.Unmarshal([]byte(p.body), &me); err != nil {
		t.Fatalf("/me: %v: %s", err, p.body)
	}
	return me, otp
}

// API calls path as an API client (JSON, no navigation headers).
func (e *Env) API(t *testing.T, b *http.Client, method, path string, body any, hdr http.Header) (*http.Response, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = strings.NewReader(string(j))
	}
	req, _ := http.NewRequest(method, e.URL+path, r)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	noFollow := *b
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res, out
}

// Admin calls a state-changing admin endpoint as the admin page does: a
// CSRF token from GET csrf, and the page's Origin.
func (e *Env) Admin(t *testing.T, b *http.Client, endpoint string, body any) (*http.Response, map[string]any) {
	t.Helper()
	res, tok := e.API(t, b, http.MethodGet, app.AdminAPIPath+"csrf", nil, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET csrf: %d %v", res.StatusCode, tok)
	}
	return e.API(t, b, http.MethodPost, app.AdminAPIPath+endpoint, body, http.Header{
		"Origin": {e.URL}, admin.HeaderCSRFToken: {tok["csrf_token"].(string)},
	})
}

// AccessToken runs the authorization code flow with PKCE for user, as a
// mobile app would, and returns the provider's JWT access token.
func (e *Env) AccessToken(t *testing.T, user string) string {
	t.Helper()
	b := e.Browser(t)
	appHost := strings.TrimPrefix(e.URL, "http://")
	b.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == appHost {
			return http.ErrUseLastResponse // the code is for us, not for the app
		}
		return nil
	}
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {e.URL + app.CallbackPath},
		"scope": {"openid"}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	p := get(t, b, e.Issuer+"/authorize?"+q.Encode())
	action, f := p.form(t, `name="password"`)
	f.Set("username", user)
	f.Set("password", devidp.DefaultPassword)
	f.Set("action", "login")
	req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := res.Location()
	if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st" {
		t.Fatalf("no code in the redirect: %d %v %v", res.StatusCode, loc, err)
	}
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {e.URL + app.CallbackPath}, "code_verifier": {verifier},
	}
	req, _ = http.NewRequest(http.MethodPost, e.Issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	res, err = b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token endpoint: %d %v", res.StatusCode, err)
	}
	return tok.AccessToken
}

// sse is an open event stream.
type sse struct {
	res *http.Response
	r   *bufio.Reader
}

// next returns the next event's name and data, or fails after the
// stream's client timeout.
func (s *sse) next(t *testing.T) (string, map[string]string, error) {
	t.Helper()
	var name, data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "" && name != "":
			var d map[string]string
			_ = json.Unmarshal([]byte(data), &d)
			return name, d, nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// Events opens GET /events as EventSource does.
func (e *Env) events(t *testing.T, b *http.Client) *sse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	c := *b
	c.Timeout = 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	res, err := c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /events: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &sse{res: res, r: bufio.NewReader(res.Body)}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func fmtBody(m map[string]any) string { return fmt.Sprintf("%v", m) }
