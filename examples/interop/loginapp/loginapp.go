// Package loginapp is the login, consent and logout application that Ory
// Hydra sends browsers to (URLS_LOGIN, URLS_CONSENT, URLS_LOGOUT). It
// talks to Hydra's admin API with net/http and encoding/json only.
//
// Sign-in is a password form with an optional one-time code (the second
// factor) and a "keep me signed in" box (Hydra's remember, which keeps
// the provider's SSO session so a later login can be silent).
//
//   - A login request Hydra marks skip (a remembered SSO session) is
//     accepted without a form, unless it demands a fresh login
//     (prompt=login or max_age=0; Hydra itself never marks those skip)
//     or asks through acr_values for the MFA level the session lacks: then
//     only the code is asked (a step-up; Hydra keeps the session's
//     auth_time, since the password was not typed again).
//   - acr and amr are set at every accept: PasswordACR and ["pwd"] for a
//     password, MFAACR and ["pwd", "otp"] with a code. Hydra does not keep
//     them with its SSO session, so this app remembers them per sid and
//     repeats them on silent logins.
//   - Consent is granted at once (a first-party application) with every
//     requested scope and audience, and the configured per-user claims in
//     the ID token and the access token.
//   - Logout is accepted at once.
//
// Every request Hydra forwarded is recorded ([App.Logins], [App.Logouts])
// so tests can tell a silent login from a form.
package loginapp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sessionfence/sessionfence/examples/interop/hydra"
)

// Default acr values.
const (
	DefaultPasswordACR = "urn:sessionfence:pwd"
	DefaultMFAACR      = "urn:sessionfence:mfa"
)

// Paths the app serves; give Hydra Origin+LoginPath and so on.
const (
	LoginPath   = "/login"
	ConsentPath = "/consent"
	LogoutPath  = "/logout"
	ErrorPath   = "/error"
)

// Config configures the App.
type Config struct {
	// AdminURL is Hydra's admin API. Required; may be set after New, before
	// the first request, with SetAdminURL (Hydra needs this app's URL to
	// start, and this app needs Hydra's).
	AdminURL string
	// Users maps each username (also the subject) to its password.
	Users map[string]string
	// OTP is the one-time code every user's second factor accepts.
	OTP string
	// PasswordACR and MFAACR are the acr values sent after a password
	// alone and after a password and a code. Defaults DefaultPasswordACR,
	// DefaultMFAACR.
	PasswordACR string
	MFAACR      string
	// RememberFor is how long Hydra keeps the SSO session of a user who
	// ticked "keep me signed in". Default 0: a browser-session cookie.
	RememberFor time.Duration
	// Claims are extra claims per user, put in the ID token and the access
	// token at consent (e.g. "tenant").
	Claims map[string]map[string]any
	// HTTPClient calls the admin API. Default: 10 s timeout.
	HTTPClient *http.Client
}

// Login records one login request Hydra forwarded.
type Login struct {
	Challenge string
	Subject   string // as Hydra sent it (set when Skip)
	SessionID string // the sid the ID token will carry
	Skip      bool
	Prompt    []string
	MaxAge    string // "" when absent
	ACRValues []string
	// Form reports that a form was shown (a person had to type); StepUp
	// that it asked only for the code.
	Form, StepUp bool
	// Accepted reports that the login was accepted, with ACR and AMR.
	Accepted bool
	ACR      string
	AMR      []string
}

// Logout records one logout request Hydra forwarded.
type Logout struct {
	Subject     string
	SessionID   string
	RPInitiated bool
}

// App serves the login, consent, logout and error pages.
type App struct {
	cfg  Config
	mux  *http.ServeMux
	mu   sync.Mutex
	adm  string
	auth map[string]level // per sid: how its user last authenticated
	logs []Login
	outs []Logout
	errs []url.Values
}

type level struct {
	acr string
	amr []string
}

// New returns the app.
func New(cfg Config) (*App, error) {
	if len(cfg.Users) == 0 {
		return nil, errors.New("loginapp: no users")
	}
	if cfg.PasswordACR == "" {
		cfg.PasswordACR = DefaultPasswordACR
	}
	if cfg.MFAACR == "" {
		cfg.MFAACR = DefaultMFAACR
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	a := &App{cfg: cfg, adm: cfg.AdminURL, auth: map[string]level{}, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET "+LoginPath, a.loginPage)
	a.mux.HandleFunc("POST "+LoginPath, a.loginSubmit)
	a.mux.HandleFunc("GET "+ConsentPath, a.consent)
	a.mux.HandleFunc("GET "+LogoutPath, a.logout)
	a.mux.HandleFunc("GET "+ErrorPath, a.errorPage)
	return a, nil
}

// SetAdminURL sets Hydra's admin API URL.
func (a *App) SetAdminURL(u string) {
	a.mu.Lock()
	a.adm = u
	a.mu.Unlock()
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	a.mux.ServeHTTP(w, r)
}

// Logins returns the login requests seen so far, oldest first.
func (a *App) Logins() []Login {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.logs)
}

// Logouts returns the logout requests seen so far, oldest first.
func (a *App) Logouts() []Logout {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.outs)
}

// Errors returns the query of every error redirect Hydra made.
func (a *App) Errors() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.errs)
}

func (a *App) admin(ctx context.Context, method, path string, in, out any) error {
	a.mu.Lock()
	adm := a.adm
	a.mu.Unlock()
	if adm == "" {
		return errors.New("loginapp: Hydra's admin URL is not set")
	}
	return hydra.AdminCall(ctx, a.cfg.HTTPClient, adm, method, path, in, out)
}

// loginRequest is Hydra's GET /admin/oauth2/auth/requests/login answer.
type loginRequest struct {
	Challenge  string `json:"challenge"`
	Skip       bool   `json:"skip"`
	Subject    string `json:"subject"`
	SessionID  string `json:"session_id"`
	RequestURL string `json:"request_url"`
	OIDC       struct {
		ACRValues []string `json:"acr_values"`
	} `json:"oidc_context"`
}

// demand is what a login request asks of the person.
type demand struct {
	fresh bool // prompt=login or max_age=0
	mfa   bool // acr_values names MFAACR
	rec   Login
}

func (a *App) fetchLogin(ctx context.Context, challenge string) (loginRequest, demand, error) {
	var lr loginRequest
	if challenge == "" {
		return lr, demand{}, errors.New("no login_challenge")
	}
	if err := a.admin(ctx, http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+url.QueryEscape(challenge), nil, &lr); err != nil {
		return lr, demand{}, err
	}
	var q url.Values
	if u, err := url.Parse(lr.RequestURL); err == nil {
		q = u.Query()
	}
	d := demand{rec: Login{
		Challenge: lr.Challenge, Subject: lr.Subject, SessionID: lr.SessionID, Skip: lr.Skip,
		Prompt: strings.Fields(q.Get("prompt")), MaxAge: q.Get("max_age"), ACRValues: lr.OIDC.ACRValues,
	}}
	d.fresh = slices.Contains(d.rec.Prompt, "login") || d.rec.MaxAge == "0"
	d.mfa = slices.Contains(lr.OIDC.ACRValues, a.cfg.MFAACR)
	return lr, d, nil
}

func (a *App) loginPage(w http.ResponseWriter, r *http.Request) {
	lr, d, err := a.fetchLogin(r.Context(), r.URL.Query().Get("login_challenge"))
	if err != nil {
		http.Error(w, "login request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if lr.Skip && !d.fresh {
		prev := a.level(lr.SessionID)
		if !d.mfa || prev.acr == a.cfg.MFAACR {
			a.accept(w, r, lr, d, prev, true) // Hydra forces remember here
			return
		}
		d.rec.StepUp = true
	}
	d.rec.Form = true
	a.record(d.rec)
	a.render(w, http.StatusOK, formData{Challenge: lr.Challenge, StepUp: d.rec.StepUp, MFA: d.mfa, Username: lr.Subject})
}

func (a *App) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	lr, d, err := a.fetchLogin(r.Context(), r.PostForm.Get("challenge"))
	if err != nil {
		http.Error(w, "login request: "+err.Error(), http.StatusBadRequest)
		return
	}
	d.rec.Form = true
	f := formData{Challenge: lr.Challenge, MFA: d.mfa, Username: r.PostForm.Get("username")}
	otp := r.PostForm.Get("otp")
	if otp != "" && subtle.ConstantTimeCompare([]byte(otp), []byte(a.cfg.OTP)) != 1 {
		f.Error = "That code is not valid."
	}
	if lr.Skip && !d.fresh { // step-up: the session stands, only the code is new
		d.rec.StepUp, f.StepUp = true, true
		if f.Error == "" && otp == "" {
			f.Error = "Enter your one-time code."
		}
		if f.Error != "" {
			a.render(w, http.StatusUnauthorized, f)
			return
		}
		prev := a.level(lr.SessionID)
		amr := prev.amr
		if !slices.Contains(amr, "otp") {
			amr = append(slices.Clone(amr), "otp")
		}
		a.accept(w, r, lr, d, level{acr: a.cfg.MFAACR, amr: amr}, true)
		return
	}
	user := r.PostForm.Get("username")
	want, ok := a.cfg.Users[user]
	switch {
	case f.Error != "":
	case !ok || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("password")), []byte(want)) != 1:
		f.Error = "Wrong username or password."
	case lr.Subject != "" && user != lr.Subject:
		// Hydra refuses another subject for a remembered session.
		f.Error = "Sign in as " + lr.Subject + ", or sign out first."
	case d.mfa && otp == "":
		f.Error = "This application requires your one-time code."
	}
	if f.Error != "" {
		a.render(w, http.StatusUnauthorized, f)
		return
	}
	lv := level{acr: a.cfg.PasswordACR, amr: []string{"pwd"}}
	if otp != "" {
		lv = level{acr: a.cfg.MFAACR, amr: []string{"pwd", "otp"}}
	}
	lr.Subject = user
	a.accept(w, r, lr, d, lv, r.PostForm.Get("remember") != "")
}

// level returns how sid's user last authenticated here; a password when
// unknown.
func (a *App) level(sid string) level {
	a.mu.Lock()
	defer a.mu.Unlock()
	if lv, ok := a.auth[sid]; ok {
		return lv
	}
	return level{acr: a.cfg.PasswordACR, amr: []string{"pwd"}}
}

// record adds l, or updates the record of the same challenge (a form
// shown, then submitted).
func (a *App) record(l Login) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, old := range a.logs {
		if old.Challenge == l.Challenge {
			l.Form = l.Form || old.Form
			l.StepUp = l.StepUp || old.StepUp
			a.logs[i] = l
			return
		}
	}
	a.logs = append(a.logs, l)
}

// acceptLogin is Hydra's accept body (it refuses unknown fields).
type acceptLogin struct {
	Subject     string   `json:"subject"`
	Remember    bool     `json:"remember"`
	RememberFor int      `json:"remember_for"`
	ACR         string   `json:"acr"`
	AMR         []string `json:"amr"`
}

// accept accepts the login as lr.Subject at level lv, records it and
// sends the browser back to Hydra.
func (a *App) accept(w http.ResponseWriter, r *http.Request, lr loginRequest, d demand, lv level, remember bool) {
	var red struct {
		RedirectTo string `json:"redirect_to"`
	}
	body := acceptLogin{Subject: lr.Subject, Remember: remember, RememberFor: int(a.cfg.RememberFor / time.Second), ACR: lv.acr, AMR: lv.amr}
	if err := a.admin(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(lr.Challenge), body, &red); err != nil {
		http.Error(w, "accepting the login: "+err.Error(), http.StatusBadGateway)
		return
	}
	d.rec.Accepted, d.rec.ACR, d.rec.AMR = true, lv.acr, lv.amr
	d.rec.Subject = lr.Subject
	a.mu.Lock()
	a.auth[lr.SessionID] = lv
	a.mu.Unlock()
	a.record(d.rec)
	http.Redirect(w, r, red.RedirectTo, http.StatusSeeOther)
}

func (a *App) consent(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("consent_challenge")
	var cr struct {
		Subject  string   `json:"subject"`
		Scope    []string `json:"requested_scope"`
		Audience []string `json:"requested_access_token_audience"`
	}
	q := "?consent_challenge=" + url.QueryEscape(challenge)
	if err := a.admin(r.Context(), http.MethodGet, "/admin/oauth2/auth/requests/consent"+q, nil, &cr); err != nil {
		http.Error(w, "consent request: "+err.Error(), http.StatusBadRequest)
		return
	}
	claims := a.cfg.Claims[cr.Subject]
	if claims == nil {
		claims = map[string]any{}
	}
	body := map[string]any{
		"grant_scope":                 cr.Scope,
		"grant_access_token_audience": cr.Audience,
		"remember":                    true,
		"remember_for":                0,
		"session":                     map[string]any{"id_token": claims, "access_token": claims},
	}
	var red struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := a.admin(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/consent/accept"+q, body, &red); err != nil {
		http.Error(w, "accepting the consent: "+err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, red.RedirectTo, http.StatusFound)
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	q := "?logout_challenge=" + url.QueryEscape(r.URL.Query().Get("logout_challenge"))
	var lr struct {
		Subject     string `json:"subject"`
		SID         string `json:"sid"`
		RPInitiated bool   `json:"rp_initiated"`
	}
	if err := a.admin(r.Context(), http.MethodGet, "/admin/oauth2/auth/requests/logout"+q, nil, &lr); err != nil {
		http.Error(w, "logout request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var red struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := a.admin(r.Context(), http.MethodPut, "/admin/oauth2/auth/requests/logout/accept"+q, nil, &red); err != nil {
		http.Error(w, "accepting the logout: "+err.Error(), http.StatusBadGateway)
		return
	}
	a.mu.Lock()
	a.outs = append(a.outs, Logout{Subject: lr.Subject, SessionID: lr.SID, RPInitiated: lr.RPInitiated})
	a.mu.Unlock()
	http.Redirect(w, r, red.RedirectTo, http.StatusFound)
}

func (a *App) errorPage(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.errs = append(a.errs, r.URL.Query())
	a.mu.Unlock()
	q := r.URL.Query()
	http.Error(w, fmt.Sprintf("provider error %s: %s %s", q.Get("error"), q.Get("error_description"), q.Get("error_hint")), http.StatusBadRequest)
}

type formData struct {
	Challenge, Username, Error string
	StepUp, MFA                bool
}

var page = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>{{if .StepUp}}Confirm it is you{{else}}Sign in{{end}}</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
{{if .MFA}}<p>This application asks for your one-time code.</p>{{end}}
<form id="signin" method="post" action="login">
<input type="hidden" name="challenge" value="{{.Challenge}}">
{{if not .StepUp}}<label>Username <input name="username" value="{{.Username}}" autocomplete="username"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<label><input type="checkbox" name="remember" value="1"> Keep me signed in</label>
{{end}}<label>One-time code{{if not .MFA}}{{if not .StepUp}} (optional){{end}}{{end}} <input name="otp" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">Continue</button>
</form>
</body></html>
`))

func (a *App) render(w http.ResponseWriter, status int, f formData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = page.Execute(w, f)
}

// Credentials is what a person types on the sign-in page. On a step-up
// page only OTP is read.
type Credentials struct {
	Username, Password, OTP string
	Remember                bool
}

var challengeRE = regexp.MustCompile(`<form id="signin"[^>]*>\s*<input type="hidden" name="challenge" value="([^"]*)">`)

// Form returns the body to POST to LoginPath for the sign-in page body,
// as a person filling it in with c would send it, and whether the page
// was a step-up (code only). ok is false when body is not a sign-in page.
func (c Credentials) Form(body string) (form url.Values, stepUp, ok bool) {
	m := challengeRE.FindStringSubmatch(body)
	if m == nil {
		return nil, false, false
	}
	form = url.Values{"challenge": {html.UnescapeString(m[1])}}
	stepUp = !strings.Contains(body, `name="password"`)
	if !stepUp {
		form.Set("username", c.Username)
		form.Set("password", c.Password)
		if c.Remember {
			form.Set("remember", "1")
		}
	}
	if c.OTP != "" {
		form.Set("otp", c.OTP)
	}
	return form, stepUp, true
}
