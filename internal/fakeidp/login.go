package fakeidp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
)

// Interactive login mode ([WithLoginUI]): instead of a test choosing who
// logs in with SetUser, /authorize shows an HTML login page whenever it
// needs an authentication, and a second page asking for a one-time code
// when the request asks for the MFA acr. It exists for development
// servers (examples/devidp) and browser tests, not for production: the
// page lists the accounts with their passwords, and the "one-time" code
// never changes.

const (
	// DefaultOTP is the one-time code the login page accepts as a second
	// factor unless [LoginUI].OTP says otherwise. It is fixed, and the
	// page shows it.
	DefaultOTP = "123456"
	// DevelopmentBanner heads every HTML page of the interactive mode.
	DevelopmentBanner = "DEVELOPMENT ONLY — never expose it"

	// loginPath is where the login and one-time-code forms post to.
	loginPath = "/login"
	// loginTTL bounds how long a login page can be submitted.
	loginTTL = 10 * time.Minute
	// maxLoginFailures wrong passwords or codes end the request with
	// access_denied, so that a forgotten tab cannot be guessed at forever.
	maxLoginFailures = 5
	// maxPendingLogins bounds the memory taken by login pages that are
	// never submitted (expired ones are swept first).
	maxPendingLogins = 10000
)

// Account is a user who can sign in on the login page.
type Account struct {
	// User is the account's identity; User.Subject is the user name typed
	// on the page.
	User User
	// Password is the account's password. Required. The login page shows
	// it: never use a real one.
	Password string
}

// LoginUI configures the interactive login mode (see [WithLoginUI]).
type LoginUI struct {
	// Accounts can sign in, in the order the page lists them. At least
	// one; subjects must be unique and passwords non-empty.
	Accounts []Account
	// OTP is the one-time code accepted as the second factor of accounts
	// with User.MFA. Default [DefaultOTP]. It is fixed and shown on the
	// page.
	OTP string
}

// WithLoginUI switches the provider to interactive login: the accounts
// are registered as users, and when /authorize needs an authentication (no
// SSO session, prompt=login, max_age exceeded, or a step-up to the MFA
// acr) it answers with an HTML login page instead of logging in the
// [Provider.SetUser] user. The form posts back, with a CSRF token bound
// to the pending authorization request and to the browser, to /login,
// which checks the password and, when acr_values asks for the MFA acr and
// the account has MFA, shows a one-time-code page; it then issues the code
// as the non-interactive mode does (auth_time now, acr and amr after what
// was done). prompt=none without a session still answers login_required.
// Pages carry [DevelopmentBanner]; errors that cannot be sent back to the
// client are HTML pages too. Invalid accounts make [NewProvider] fail (New:
// the test).
func WithLoginUI(ui LoginUI) Option {
	ui.Accounts = slices.Clone(ui.Accounts)
	for i := range ui.Accounts {
		ui.Accounts[i].User = ui.Accounts[i].User.clone()
	}
	return func(c *config) { c.loginUI = &ui }
}

// loginUI is the validated LoginUI.
type loginUI struct {
	accounts []Account
	password map[string]string // subject → password
	otp      string
}

func newLoginUI(ui LoginUI) (*loginUI, error) {
	if len(ui.Accounts) == 0 {
		return nil, errors.New("login UI: no accounts")
	}
	l := &loginUI{accounts: ui.Accounts, password: map[string]string{}, otp: ui.OTP}
	if l.otp == "" {
		l.otp = DefaultOTP
	}
	for _, a := range ui.Accounts {
		switch {
		case a.User.Subject == "":
			return nil, errors.New("login UI: account without Subject")
		case a.Password == "":
			return nil, fmt.Errorf("login UI: account %q without password", a.User.Subject)
		}
		if _, dup := l.password[a.User.Subject]; dup {
			return nil, fmt.Errorf("login UI: account %q listed twice", a.User.Subject)
		}
		l.password[a.User.Subject] = a.Password
	}
	return l, nil
}

// pendingLogin is an authorization request waiting for its login form.
// Its id and csrf travel in the form; binding is the value of the
// browser's login cookie when the page was shown, so that a form (id and
// token) obtained in one browser cannot be submitted from another: that
// would be login CSRF, logging the victim's browser into the attacker's
// account.
type pendingLogin struct {
	id, csrf, binding string
	req               authRequest
	rec               Authorization
	wantMFA           bool
	reason            string
	username          string // prefilled user name
	subject           string // set once the password is right and a code is due
	failures          int
	expires           time.Time
}

// loginView is what a login or one-time-code page shows.
type loginView struct {
	page
	Action, RequestID, CSRF string
	ClientID                string
	Reason                  string
	Username                string
	Error                   string
	Accounts                []accountView
	WantMFA                 bool
	MFAACR                  string
	// OTP stage: who has given the password, and the fixed code.
	OTPStage bool
	Subject  string
	OTP      string

	status     int
	binding    string // login cookie value to set, if new
	newBinding bool
}

type accountView struct {
	Subject, Password, Name, Email, Tenant string
	MFA                                    bool
}

// reasonText explains on the page why a login is asked for.
var reasonText = map[string]string{
	reasonNoSession:   "You have no session at this provider yet.",
	reasonPromptLogin: "It asks for a fresh sign-in (prompt=login), even though you have a session.",
	reasonMaxAge:      "Your last sign-in is older than it accepts (max_age).",
	reasonStepUp:      "It asks for a second factor (acr_values) that your session does not have.",
}

func (p *Provider) loginCookieName() string { return p.cookieName + "_login" }

// startLoginLocked records a pending login for req and returns the page
// to show. Caller holds p.mu.
func (p *Provider) startLoginLocked(r *http.Request, req authRequest, rec Authorization, sess *ssoSession, wantMFA bool, reason string) (*loginView, *authError) {
	now := p.now()
	maps.DeleteFunc(p.pending, func(_ string, pl *pendingLogin) bool { return !now.Before(pl.expires) })
	if len(p.pending) >= maxPendingLogins {
		return nil, &authError{"temporarily_unavailable", "too many pending logins"}
	}
	pl := &pendingLogin{
		id: randomID(16), csrf: randomID(32), req: req, rec: rec,
		wantMFA: wantMFA, reason: reason, username: req.loginHint, expires: now.Add(loginTTL),
	}
	if sess != nil {
		// Re-authentication: the person is most likely the same.
		pl.username = sess.authn.subject
	}
	newBinding := false
	if c, err := r.Cookie(p.loginCookieName()); err == nil && len(c.Value) == 64 && validPKCEValue(c.Value) {
		pl.binding = c.Value // one per browser, shared by its tabs
	} else {
		pl.binding, newBinding = randomID(32), true
	}
	p.pending[pl.id] = pl
	v := p.viewLocked(pl, "", http.StatusOK)
	v.binding, v.newBinding = pl.binding, newBinding
	return v, nil
}

// viewLocked builds the page for pl's current stage. Caller holds p.mu.
func (p *Provider) viewLocked(pl *pendingLogin, errMsg string, status int) *loginView {
	v := &loginView{
		page:      page{Title: "Sign in"},
		Action:    p.endpoint(loginPath),
		RequestID: pl.id, CSRF: pl.csrf, ClientID: pl.req.client.ID,
		Reason:   reasonText[pl.reason],
		Username: pl.username, Error: errMsg,
		WantMFA: pl.wantMFA, MFAACR: p.cfg.mfaACR,
		OTPStage: pl.subject != "", Subject: pl.subject, OTP: p.ui.otp,
		status: status,
	}
	if v.OTPStage {
		v.Title = "One-time code"
		return v
	}
	for _, a := range p.ui.accounts {
		u := p.users[a.User.Subject] // UpdateUser may have changed it
		v.Accounts = append(v.Accounts, accountView{
			Subject: u.Subject, Password: a.Password, Name: u.Name, Email: u.Email, Tenant: u.Tenant, MFA: u.MFA,
		})
	}
	return v
}

// showLogin writes a login or one-time-code page.
func (p *Provider) showLogin(w http.ResponseWriter, status int, v *loginView) {
	if v.newBinding {
		http.SetCookie(w, &http.Cookie{
			Name: p.loginCookieName(), Value: v.binding, Path: "/",
			HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
		})
	}
	name := "login"
	if v.OTPStage {
		name = "otp"
	}
	p.render(w, status, name, v)
}

// handleLogin receives the login and one-time-code forms.
func (p *Provider) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.showError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	form := r.PostForm
	var binding string
	if c, err := r.Cookie(p.loginCookieName()); err == nil {
		binding = c.Value
	}

	p.mu.Lock()
	pl := p.pending[form.Get("login_request")]
	// Every check runs before anything is revealed about the request; the
	// secrets are compared in constant time.
	if pl == nil || !p.now().Before(pl.expires) ||
		subtle.ConstantTimeCompare([]byte(form.Get("csrf_token")), []byte(pl.csrf)) != 1 ||
		subtle.ConstantTimeCompare([]byte(binding), []byte(pl.binding)) != 1 {
		p.mu.Unlock()
		p.showError(w, http.StatusBadRequest,
			"This sign-in form has expired, was already used, or was not opened in this browser. Go back to the application and sign in again.")
		return
	}
	// finish ends the pending request: a code or an error for the client.
	finish := func(user *User, mfa bool, aerr *authError) {
		delete(p.pending, pl.id)
		rec := pl.rec
		var code string
		var cookie *http.Cookie
		if aerr != nil {
			rec.Error = aerr.code
		} else {
			// The SSO session is read again: it may have ended, or
			// another login may have completed in this browser, since
			// the page was shown.
			var sess *ssoSession
			sess, cookie = p.authenticateLocked(p.sessionLocked(r), *user, mfa, p.now().Truncate(time.Second))
			rec.Authenticated = true
			code = p.issueCodeLocked(pl.req, sess, &rec)
		}
		p.authorizations = append(p.authorizations, rec)
		p.mu.Unlock()
		if cookie != nil {
			http.SetCookie(w, cookie)
		}
		// 303: the browser follows with a GET, whatever it posted.
		p.redirectToClient(w, r, pl.req, code, aerr, http.StatusSeeOther)
	}
	// fail counts a wrong password or code and shows the page again.
	fail := func(msg string) {
		pl.failures++
		if pl.failures >= maxLoginFailures {
			finish(nil, false, &authError{"access_denied", "too many failed sign-in attempts"})
			return
		}
		v := p.viewLocked(pl, msg, http.StatusUnauthorized)
		p.mu.Unlock()
		p.showLogin(w, v.status, v)
	}

	switch {
	case form.Get("action") == "cancel":
		finish(nil, false, &authError{"access_denied", "the user cancelled the login"})
	case pl.subject == "":
		name := form.Get("username")
		want, known := p.ui.password[name]
		// Compare even for an unknown name, so that both failures take
		// the same path.
		ok := subtle.ConstantTimeCompare([]byte(form.Get("password")), []byte(want)) == 1 && known
		if !ok {
			pl.username = name
			fail("Unknown user name or wrong password.")
			return
		}
		user := p.users[name]
		if pl.wantMFA && user.MFA {
			// Password stage done: the form's token changes, so the
			// password post cannot be replayed against the code stage.
			pl.subject, pl.username, pl.csrf, pl.failures = name, name, randomID(32), 0
			v := p.viewLocked(pl, "", http.StatusOK)
			p.mu.Unlock()
			p.showLogin(w, v.status, v)
			return
		}
		finish(&user, false, nil)
	default:
		if subtle.ConstantTimeCompare([]byte(form.Get("otp")), []byte(p.ui.otp)) != 1 {
			fail("Wrong one-time code.")
			return
		}
		user := p.users[pl.subject]
		finish(&user, true, nil)
	}
}
