package interop_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/backchannel"
	"github.com/sessionfence/sessionfence/examples/internal/app"
	"github.com/sessionfence/sessionfence/examples/internal/apptest"
	"github.com/sessionfence/sessionfence/examples/interop/hydra"
	"github.com/sessionfence/sessionfence/examples/interop/internal/child"
	"github.com/sessionfence/sessionfence/examples/interop/loginapp"
	"github.com/sessionfence/sessionfence/examples/nethttp/nethttpapp"
)

const (
	password = "correct horse"
	otp      = "246810"
	// waitFor bounds every poll for something Hydra does asynchronously
	// (it posts back-channel logout tokens from a goroutine).
	waitFor = 10 * time.Second
	// lenientPath is a second back-channel receiver on the app that
	// tolerates a missing exp (see TestHydraLogout).
	lenientPath = app.BackchannelPath + "-lenient"
)

var alice = loginapp.Credentials{Username: "alice", Password: password, Remember: true}

// site is the nethttp example app as the suite runs it against any
// provider, with its back-channel deliveries recorded, and the provider's
// sign-in page as a browser meets it.
type site struct {
	App  *app.App
	URL  string // the example app's origin
	BC   *deliveries
	op   signInPage
	logs *child.SyncBuffer
}

// signInPage finds a provider's sign-in form: whether p is that page, and
// the URL its form posts to (the markup is loginapp's in both providers).
type signInPage func(p page) (action string, ok bool)

// listen reserves the example app's port: the provider must know the
// app's URLs (redirect, back-channel) before the app can discover it.
func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// startSite runs the example app on ln against the provider at issuer, as
// clientID; everything stops in t.Cleanup. Beside the app's own receiver
// it mounts one at lenientPath that tolerates a missing exp.
func startSite(t *testing.T, ln net.Listener, issuer, clientID, clientSecret string, op signInPage) *site {
	t.Helper()
	s := &site{URL: "http://" + ln.Addr().String(), BC: &deliveries{}, op: op, logs: &child.SyncBuffer{}}
	store := apptest.AgedStore() // bearer tokens issued right after start pass
	var err error
	s.App, err = app.New(t.Context(), app.Config{
		Name: "nethttp", Addr: ln.Addr().String(), PublicURL: s.URL, Store: store,
		Issuer: issuer, ClientID: clientID, ClientSecret: clientSecret,
		TenantClaim: "tenant", AdminSubjects: []string{"alice"}, InsecureCookies: true,
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Logger:     slog.New(slog.NewTextHandler(s.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.App.Close)

	// The receiver the app will have once logout tokens without exp are
	// accepted (issue 12); mounted beside the app's own.
	lenient, err := backchannel.New(backchannel.Config{
		Guard:                   s.App.Guard,
		Issuers:                 []backchannel.Issuer{{Issuer: issuer, ClientID: clientID}},
		InsecureAllowMissingExp: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(lenientPath, lenient)
	mux.Handle("/", nethttpapp.Handler(s.App))
	s.BC.next = mux
	srv := httptest.NewUnstartedServer(s.BC)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("example app's log:\n%s", s.logs.String())
		}
	})
	return s
}

// env is Hydra, our login app, and the nethttp example app registered at
// Hydra as a web client.
type env struct {
	*site
	Hydra    *hydra.Server
	Login    *loginapp.App
	LoginURL string
	Client   hydra.Client
}

// start runs the whole environment; everything stops in t.Cleanup.
func start(t *testing.T) *env {
	t.Helper()
	e := &env{}
	var err error
	e.Login, err = loginapp.New(loginapp.Config{
		Users:  map[string]string{"alice": password, "bob": password},
		OTP:    otp,
		Claims: map[string]map[string]any{"alice": {"tenant": "acme"}, "bob": {"tenant": "acme"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	loginSrv := httptest.NewServer(e.Login)
	t.Cleanup(loginSrv.Close)
	e.LoginURL = loginSrv.URL

	appLn, appURL := listen(t)
	e.Hydra = hydra.Start(t, hydra.Options{
		LoginURL:              e.LoginURL + loginapp.LoginPath,
		ConsentURL:            e.LoginURL + loginapp.ConsentPath,
		LogoutURL:             e.LoginURL + loginapp.LogoutPath,
		ErrorURL:              e.LoginURL + loginapp.ErrorPath,
		PostLogoutRedirectURL: appURL + "/",
	})
	e.Login.SetAdminURL(e.Hydra.AdminURL)
	e.Client = e.Hydra.CreateClient(t, hydra.WebClient(appURL+app.CallbackPath, appURL+"/", appURL+app.BackchannelPath))
	e.site = startSite(t, appLn, e.Hydra.Issuer, e.Client.ClientID, e.Client.ClientSecret, func(p page) (string, bool) {
		target := e.LoginURL + loginapp.LoginPath
		return target, strings.HasPrefix(p.URL.String(), target)
	})
	return e
}

// browser returns a cookie-jar client that follows redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// page is the end of a navigation.
type page struct {
	URL      *url.URL
	Code     int
	Body     string
	Location string // of a redirect the client did not follow
}

func navigate(t *testing.T, b *http.Client, method, u string, form url.Values, hdr http.Header) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return page{URL: res.Request.URL, Code: res.StatusCode, Body: string(raw), Location: res.Header.Get("Location")}
}

// signIn types c into p when it is the provider's sign-in page and
// returns where the redirects end, and whether it typed. A step-up page
// (code only) with no code in c fails the test.
func signIn(t *testing.T, b *http.Client, op signInPage, p page, c loginapp.Credentials) (page, bool) {
	t.Helper()
	action, ok := op(p)
	if !ok {
		return p, false
	}
	form, stepUp, ok := c.Form(p.Body)
	if !ok {
		t.Fatalf("not a sign-in page: %s (%d)\n%s", p.URL, p.Code, p.Body)
	}
	if stepUp && c.OTP == "" {
		t.Fatalf("a step-up form at %s, and no code to type", p.URL)
	}
	return navigate(t, b, http.MethodPost, action, form, nil), true
}

// login starts a login at the app (GET /login with query, return_to
// /me), types c if the provider shows its form, and returns the /me
// body and whether the form was shown.
func (s *site) login(t *testing.T, b *http.Client, c loginapp.Credentials, query url.Values) (app.Me, bool) {
	t.Helper()
	if query == nil {
		query = url.Values{}
	}
	query.Set("return_to", "/me")
	p := navigate(t, b, http.MethodGet, s.URL+app.LoginPath+"?"+query.Encode(), nil, nil)
	p, form := signIn(t, b, s.op, p, c)
	if p.Code != http.StatusOK || p.URL.String() != s.URL+"/me" {
		t.Fatalf("login ended on %s (%d), form shown %v:\n%s", p.URL, p.Code, form, p.Body)
	}
	var me app.Me
	if err := json.Unmarshal([]byte(p.Body), &me); err != nil {
		t.Fatalf("/me: %v: %s", err, p.Body)
	}
	return me, form
}

// providerLogout signs b out at the provider (OP-initiated: GET
// /oauth2/sessions/logout, no id_token_hint; our login app accepts) and
// stops at the redirect to the post-logout page, so the app's cookie is
// still in the jar whenever the back-channel token arrives: a visit to the
// app's home could drop a refused cookie first and make the outcome
// depend on that race.
func (e *env) providerLogout(t *testing.T, b *http.Client) {
	t.Helper()
	appHost := strings.TrimPrefix(e.URL, "http://")
	nb := *b
	nb.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == appHost {
			return http.ErrUseLastResponse
		}
		return nil
	}
	p := navigate(t, &nb, http.MethodGet, e.Hydra.PublicURL+"/oauth2/sessions/logout", nil, nil)
	if p.Code/100 != 3 || p.Location != e.URL+"/" {
		t.Fatalf("provider logout ended on %s (%d), redirecting to %q", p.URL, p.Code, p.Location)
	}
}

// me calls GET /me as an API client: the status and the error code.
func (s *site) me(t *testing.T, b *http.Client) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/me", nil)
	req.Header.Set("Accept", "application/json")
	res, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body app.ErrorBody
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body.Error
}

// bearer calls the example's GET /api/hello with an access token: the
// status and the body.
func (s *site) bearer(t *testing.T, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/api/hello", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(raw)) + " " + res.Header.Get("WWW-Authenticate")
}

// delivery is one back-channel logout request the app answered.
type delivery struct {
	Path   string
	Token  string // the logout_token form value
	Status int
	Body   string
}

// deliveries records the POSTs to the back-channel paths, and passes
// every request on to next.
type deliveries struct {
	next http.Handler
	mu   sync.Mutex
	ds   []delivery
}

func (d *deliveries) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, app.BackchannelPath) {
		d.next.ServeHTTP(w, r)
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(raw))
	form, _ := url.ParseQuery(string(raw))
	rec := httptest.NewRecorder()
	d.next.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	d.mu.Lock()
	d.ds = append(d.ds, delivery{Path: r.URL.Path, Token: form.Get("logout_token"), Status: rec.Code, Body: rec.Body.String()})
	d.mu.Unlock()
}

// after waits until more than n deliveries were recorded and returns
// those after the first n. It fails the test after waitFor.
func (d *deliveries) after(t *testing.T, n int) []delivery {
	t.Helper()
	return poll(t, "a back-channel logout delivery", func() ([]delivery, bool) {
		d.mu.Lock()
		defer d.mu.Unlock()
		return append([]delivery(nil), d.ds[min(n, len(d.ds)):]...), len(d.ds) > n
	})
}

func (d *deliveries) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ds)
}

// poll calls f every 20 ms until it reports done, for at most waitFor.
func poll[T any](t *testing.T, what string, f func() (T, bool)) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		v, done := f()
		if done {
			return v
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s within %s", what, waitFor)
		case <-tick.C:
		}
	}
}

// jwtParts decodes a compact JWS's header and claims without verifying
// it (the quirks test reports what Hydra sends; the app verifies).
func jwtParts(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	for i, out := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWS part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("JWS part %d: %v", i, err)
		}
	}
	return header, claims
}
