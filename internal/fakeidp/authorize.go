package fakeidp

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ssoSession is the provider's own login session with one browser, found
// through the provider's cookie. Its sid is what ID tokens, access tokens
// and logout tokens carry; the cookie value is a different random string so
// that knowing a sid (it is in every token) never lets anyone ride the
// session.
type ssoSession struct {
	cookie string
	authn  authentication
	ended  bool
}

// authentication is one authentication event: what auth_time, acr, amr and
// sid describe. Codes and grants copy it, because a refresh must report the
// original authentication even after the browser re-authenticated.
type authentication struct {
	subject  string
	sid      string
	authTime time.Time
	acr      string
	amr      []string
}

// authRequest is a parsed, validated authorization request.
type authRequest struct {
	client      Client
	redirectURI string
	state       string
	scope       string
	nonce       string
	challenge   string
	prompt      []string
	maxAge      time.Duration
	hasMaxAge   bool
	acrValues   []string
	loginHint   string
}

// authError is an OAuth error to send back to the relying party.
type authError struct{ code, desc string }

func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid_request: malformed parameters", http.StatusBadRequest)
		return
	}
	params := cloneValues(r.Form)
	rec := Authorization{Params: params, ClientID: params.Get("client_id")}

	// Until client_id and redirect_uri are known good, errors are shown to
	// the user and never redirected (RFC 6749 §4.1.2.1): redirecting to an
	// unverified URI would make the provider an open redirector.
	req, aerr, redirectable := p.parseAuthRequest(params)
	if aerr != nil && !redirectable {
		rec.Error = aerr.code
		p.record(func() { p.authorizations = append(p.authorizations, rec) })
		p.showError(w, http.StatusBadRequest, aerr.code+": "+aerr.desc)
		return
	}
	var out authzOutcome
	if aerr == nil {
		out = p.authorize(r, req, &rec)
		aerr = out.err
	}
	if out.login != nil {
		// Interactive mode: the request waits for the login form, and is
		// recorded when it completes (see handleLogin).
		p.showLogin(w, http.StatusOK, out.login)
		return
	}
	if aerr != nil {
		rec.Error = aerr.code
	}
	p.record(func() { p.authorizations = append(p.authorizations, rec) })
	if out.cookie != nil {
		http.SetCookie(w, out.cookie)
	}
	p.redirectToClient(w, r, req, out.code, aerr, http.StatusFound)
}

// redirectToClient sends the authorization response (a code or an error)
// to the client's verified redirect_uri.
func (p *Provider) redirectToClient(w http.ResponseWriter, r *http.Request, req authRequest, code string, aerr *authError, status int) {
	resp := url.Values{}
	if aerr != nil {
		resp.Set("error", aerr.code)
		resp.Set("error_description", aerr.desc)
	} else {
		resp.Set("code", code)
	}
	if req.state != "" {
		resp.Set("state", req.state)
	}
	// RFC 9207: the iss parameter lets a client talking to several
	// providers detect a mix-up attack. Sent on errors too.
	q := p.Quirks()
	switch {
	case q.OmitIssParameter:
	case q.WrongIssParameter:
		resp.Set("iss", wrongIssuer)
	default:
		resp.Set("iss", p.issuer)
	}
	http.Redirect(w, r, addQuery(req.redirectURI, resp), status)
}

// parseAuthRequest validates the request. redirectable reports whether the
// client and redirect_uri are trustworthy enough to receive an error.
func (p *Provider) parseAuthRequest(q url.Values) (authRequest, *authError, bool) {
	var req authRequest
	p.mu.Lock()
	client, ok := p.clients[q.Get("client_id")]
	p.mu.Unlock()
	if !ok {
		return req, &authError{"invalid_request", "unknown or missing client_id"}, false
	}
	// Exact string match, no normalisation: that is what the OAuth 2.0
	// Security BCP requires, and what a relying party must be tested
	// against.
	redirect := q.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirect) {
		return req, &authError{"invalid_request", "redirect_uri is missing or not registered for this client"}, false
	}
	req.client, req.redirectURI, req.state = client, redirect, q.Get("state")

	if rt := q.Get("response_type"); rt != "code" {
		return req, &authError{"unsupported_response_type", "only response_type=code is supported"}, true
	}
	if q.Has("request") {
		return req, &authError{"request_not_supported", "request objects are not supported"}, true
	}
	if q.Has("request_uri") {
		return req, &authError{"request_uri_not_supported", "request_uri is not supported"}, true
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return req, &authError{"invalid_request", "only response_mode=query is supported"}, true
	}
	req.scope = q.Get("scope")
	if !slices.Contains(strings.Fields(req.scope), "openid") {
		return req, &authError{"invalid_scope", "scope must include openid"}, true
	}

	req.challenge = q.Get("code_challenge")
	switch method := q.Get("code_challenge_method"); {
	case req.challenge == "" && method != "":
		return req, &authError{"invalid_request", "code_challenge_method without code_challenge"}, true
	case req.challenge == "":
		if client.Secret == "" || !p.cfg.allowMissingPKCE {
			return req, &authError{"invalid_request", "code_challenge (PKCE, S256) is required"}, true
		}
	case method != "S256":
		// An absent method means "plain" (RFC 7636 §4.3), which leaks the
		// verifier to anyone who sees the authorization request.
		return req, &authError{"invalid_request", "code_challenge_method must be S256"}, true
	case !validPKCEValue(req.challenge) || len(req.challenge) != 43:
		return req, &authError{"invalid_request", "malformed code_challenge"}, true
	}

	req.prompt = strings.Fields(q.Get("prompt"))
	for _, v := range req.prompt {
		switch v {
		case "none", "login", "consent", "select_account":
		default:
			return req, &authError{"invalid_request", "unknown prompt value " + strconv.Quote(v)}, true
		}
	}
	if slices.Contains(req.prompt, "none") && len(req.prompt) > 1 {
		return req, &authError{"invalid_request", "prompt=none cannot be combined with other values"}, true
	}
	if q.Has("max_age") {
		n, err := strconv.ParseInt(q.Get("max_age"), 10, 64)
		if err != nil || n < 0 {
			return req, &authError{"invalid_request", "max_age must be a non-negative integer"}, true
		}
		req.maxAge, req.hasMaxAge = time.Duration(n)*time.Second, true
	}
	req.acrValues = strings.Fields(q.Get("acr_values"))
	req.nonce = q.Get("nonce")
	req.loginHint = q.Get("login_hint")
	return req, nil, true
}

// authzOutcome is what /authorize answers: a code (and the SSO cookie to
// set, if any), an error for the client, or, in interactive mode, the
// login page to show first.
type authzOutcome struct {
	code   string
	cookie *http.Cookie
	err    *authError
	login  *loginView
}

// Why a new authentication is needed (shown on the login page).
const (
	reasonNoSession   = "no_session"
	reasonPromptLogin = "prompt_login"
	reasonMaxAge      = "max_age"
	reasonStepUp      = "mfa"
)

// authorize decides between silent SSO and a new authentication, and
// issues the code.
func (p *Provider) authorize(r *http.Request, req authRequest, rec *Authorization) authzOutcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.quirks
	now := p.now().Truncate(time.Second) // JWT times have second precision
	sess := p.sessionLocked(r)
	wantMFA := !q.IgnoreACR && slices.Contains(req.acrValues, p.cfg.mfaACR)

	// Each reason a real provider would ask the user to authenticate again
	// instead of answering from the SSO session.
	reason := ""
	if sess == nil {
		reason = reasonNoSession
	} else {
		switch {
		case slices.Contains(req.prompt, "login") && !q.IgnorePrompt:
			reason = reasonPromptLogin
		case req.hasMaxAge && !q.IgnoreMaxAge && (req.maxAge == 0 || now.Sub(sess.authn.authTime) > req.maxAge):
			// max_age=0 must always re-authenticate, even within the
			// same second as the last login.
			reason = reasonMaxAge
		case wantMFA && sess.authn.acr != p.cfg.mfaACR && p.users[sess.authn.subject].MFA:
			// Step-up: the session has no second factor, the user can do one.
			reason = reasonStepUp
		}
	}
	if reason == "" {
		return authzOutcome{code: p.issueCodeLocked(req, sess, rec)}
	}
	if slices.Contains(req.prompt, "none") {
		return authzOutcome{err: &authError{"login_required", "the user must authenticate"}}
	}
	if p.ui != nil {
		view, aerr := p.startLoginLocked(r, req, *rec, sess, wantMFA, reason)
		return authzOutcome{login: view, err: aerr}
	}
	user, ok := p.users[p.current]
	if p.current == "" || !ok {
		return authzOutcome{err: &authError{"access_denied", "the user cancelled the login"}}
	}
	sess, cookie := p.authenticateLocked(sess, user, wantMFA && user.MFA, now)
	rec.Authenticated = true
	return authzOutcome{code: p.issueCodeLocked(req, sess, rec), cookie: cookie}
}

// sessionLocked returns the browser's live SSO session, nil if none.
// Caller holds p.mu.
func (p *Provider) sessionLocked(r *http.Request) *ssoSession {
	if c, err := r.Cookie(p.cookieName); err == nil {
		if s := p.sessions[c.Value]; s != nil && !s.ended {
			return s
		}
	}
	return nil
}

// authenticateLocked records that user just authenticated in the browser
// whose live session is sess (nil if none), with a second factor when mfa,
// and returns the session and the SSO cookie to set. Caller holds p.mu.
func (p *Provider) authenticateLocked(sess *ssoSession, user User, mfa bool, now time.Time) (*ssoSession, *http.Cookie) {
	authn := authentication{subject: user.Subject, authTime: now, acr: PasswordACR, amr: []string{"pwd"}}
	if mfa {
		authn.acr, authn.amr = p.cfg.mfaACR, []string{"pwd", "otp"}
	}
	if sess != nil && sess.authn.subject == user.Subject {
		// Re-authentication of the same person in the same browser:
		// the session (and its sid) continues with a new auth event,
		// as real providers do.
		authn.sid = sess.authn.sid
		sess.authn = authn
	} else {
		if sess != nil {
			// Another person logs in on this browser: the first
			// one's session ends (without back-channel logout, as a
			// user switch on most providers).
			sess.ended = true
		}
		authn.sid = randomID(16)
		sess = &ssoSession{cookie: randomID(32), authn: authn}
		p.sessions[sess.cookie] = sess
	}
	return sess, &http.Cookie{
		Name: p.cookieName, Value: sess.cookie, Path: "/",
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	}
}

// issueCodeLocked issues an authorization code for req answered from
// sess, and completes rec. Caller holds p.mu.
func (p *Provider) issueCodeLocked(req authRequest, sess *ssoSession, rec *Authorization) string {
	code := randomID(32)
	p.codes[code] = &authCode{
		clientID:    req.client.ID,
		redirectURI: req.redirectURI,
		challenge:   req.challenge,
		nonce:       req.nonce,
		scope:       req.scope,
		session:     sess,
		authn:       sess.authn.clone(),
		expires:     p.now().Add(p.cfg.codeTTL),
	}
	rec.Subject, rec.SID = sess.authn.subject, sess.authn.sid
	rec.AuthTime, rec.ACR = sess.authn.authTime, sess.authn.acr
	return code
}

func (a authentication) clone() authentication {
	a.amr = slices.Clone(a.amr)
	return a
}

// validPKCEValue checks the RFC 7636 alphabet (unreserved characters).
func validPKCEValue(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// addQuery appends params to a registered URI that may already have a
// query of its own (allowed by RFC 6749 §3.1.2).
func addQuery(base string, params url.Values) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // registered URIs were matched exactly; cannot happen in practice
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}
