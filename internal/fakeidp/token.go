package fakeidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// authCode is an issued authorization code. Used codes stay in the map so
// that a second redemption is recognised as replay, not as an unknown code.
type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	nonce       string
	scope       string
	session     *ssoSession
	authn       authentication
	expires     time.Time
	used        bool
	grant       *grant // set once redeemed
}

// grant is what one code redemption created: the chain of refresh tokens
// that rotation produces. Every token of the chain maps to the grant, and
// only current works; presenting an older one is reuse.
type grant struct {
	clientID string
	scope    string
	authn    authentication
	session  *ssoSession
	current  string
	revoked  bool
}

// usable reports whether the grant may still mint tokens: not revoked, and
// the SSO session it came from not ended (so that ending a session at the
// provider is honoured at the relying party's next refresh).
func (g *grant) usable() bool { return !g.revoked && !g.session.ended }

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status int
	code   string
	desc   string
	// basic: the client tried HTTP Basic, so a 401 must challenge it.
	basic bool
}

func badRequest(code, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: desc}
}

func invalidGrant(desc string) *oauthError { return badRequest("invalid_grant", desc) }

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized && e.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="fakeidp"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

// tokenResponse is RFC 6749 §5.1 plus OpenID Connect's id_token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "POST required"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, badRequest("invalid_request", "malformed form body"))
		return
	}
	client, oerr := p.authenticateClient(r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	var resp *tokenResponse
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		resp, oerr = p.redeemCode(client, r.PostForm)
	case "refresh_token":
		resp, oerr = p.refresh(client, r.PostForm)
	case "":
		oerr = badRequest("invalid_request", "grant_type is required")
	default:
		oerr = badRequest("unsupported_grant_type", "unsupported grant_type "+gt)
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// authenticateClient accepts client_secret_basic, client_secret_post, or
// none for public clients, and refuses a request using two methods at once
// (RFC 6749 §2.3).
func (p *Provider) authenticateClient(r *http.Request) (Client, *oauthError) {
	unauthorized := func(desc string, basic bool) (Client, *oauthError) {
		return Client{}, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: desc, basic: basic}
	}
	form := r.PostForm
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic
		// encoding (x/oauth2 does this), so decode them.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return unauthorized("malformed Basic credentials", true)
		}
		if form.Has("client_secret") {
			return Client{}, badRequest("invalid_request", "more than one client authentication method")
		}
		if bid := form.Get("client_id"); bid != "" && bid != id {
			return unauthorized("client_id does not match the Basic credentials", true)
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return unauthorized("client authentication required", false)
	}
	p.mu.Lock()
	c, ok := p.clients[id]
	p.mu.Unlock()
	if !ok {
		return unauthorized("unknown client", basic)
	}
	if c.Secret == "" {
		// Basic with an empty password is tolerated: it is how x/oauth2's
		// header style sends a public client's id.
		if secret != "" {
			return unauthorized("public client must not send a secret", basic)
		}
		return c, nil
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return unauthorized("wrong client secret", basic)
	}
	return c, nil
}

func (p *Provider) redeemCode(client Client, form url.Values) (*tokenResponse, *oauthError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.codes[form.Get("code")]
	switch {
	case c == nil:
		return nil, invalidGrant("unknown authorization code")
	case c.clientID != client.ID:
		return nil, invalidGrant("code was issued to another client")
	case c.used:
		// RFC 6749 §4.1.2: a replayed code suggests it leaked, so the
		// tokens it produced are revoked too.
		if c.grant != nil {
			c.grant.revoked = true
		}
		return nil, invalidGrant("authorization code already used")
	}
	// Single use starts at the first redemption attempt by its client,
	// successful or not, as on real providers.
	c.used = true
	if p.now().After(c.expires) {
		return nil, invalidGrant("authorization code expired")
	}
	if form.Get("redirect_uri") != c.redirectURI {
		return nil, invalidGrant("redirect_uri does not match the authorization request")
	}
	verifier := form.Get("code_verifier")
	switch {
	case c.challenge == "" && verifier != "":
		return nil, invalidGrant("code_verifier sent but no code_challenge was")
	case c.challenge != "" && verifier == "":
		return nil, invalidGrant("code_verifier required")
	case c.challenge != "":
		if len(verifier) < 43 || len(verifier) > 128 || !validPKCEValue(verifier) {
			return nil, invalidGrant("malformed code_verifier")
		}
		sum := sha256.Sum256([]byte(verifier))
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.challenge)) != 1 {
			return nil, invalidGrant("code_verifier does not match code_challenge")
		}
	}
	if c.session.ended {
		return nil, invalidGrant("the login session has ended")
	}
	g := &grant{clientID: client.ID, scope: c.scope, authn: c.authn.clone(), session: c.session}
	c.grant = g
	return p.issueLocked(g, c.nonce, false)
}

func (p *Provider) refresh(client Client, form url.Values) (*tokenResponse, *oauthError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rt := form.Get("refresh_token")
	g := p.grants[rt]
	switch {
	case rt == "":
		return nil, badRequest("invalid_request", "refresh_token is required")
	case p.refuseRefresh:
		return nil, invalidGrant("refresh refused (RefuseRefresh)")
	case g == nil:
		return nil, invalidGrant("unknown refresh token")
	case g.clientID != client.ID:
		return nil, invalidGrant("refresh token was issued to another client")
	case !g.usable():
		return nil, invalidGrant("refresh token revoked or its session ended")
	case g.current != rt:
		// Reuse of a rotated token means two parties hold the chain; the
		// OAuth Security BCP answer is to revoke the whole grant, so the
		// legitimate current token stops working too.
		g.revoked = true
		return nil, invalidGrant("refresh token already used; grant revoked")
	}
	if s := form.Get("scope"); s != "" {
		granted := strings.Fields(g.scope)
		for _, v := range strings.Fields(s) {
			if !slices.Contains(granted, v) {
				return nil, badRequest("invalid_scope", "scope exceeds the original grant")
			}
		}
	}
	resp, oerr := p.issueLocked(g, "", true)
	if oerr == nil {
		p.refreshCount++
		p.refreshes = append(p.refreshes, Refresh{ClientID: client.ID, Presented: rt, Issued: resp.RefreshToken})
	}
	return resp, oerr
}

// issueLocked mints the token response for g. Caller holds p.mu.
func (p *Provider) issueLocked(g *grant, nonce string, refresh bool) (*tokenResponse, *oauthError) {
	q := p.quirks
	user := p.users[g.authn.subject]
	access, err := p.accessTokenLocked(g, user, q)
	if err != nil {
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: err.Error()}
	}
	resp := &tokenResponse{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   int64(p.cfg.accessTTL / time.Second),
		Scope:       g.scope,
	}
	if !refresh || !q.RefreshWithoutIDToken {
		// Refresh-time ID tokens keep auth_time, acr, amr and sid of the
		// original authentication (OpenID Connect Core §12.2) and carry
		// no nonce.
		id, err := p.idTokenLocked(g, user, nonce, access, refresh, q)
		if err != nil {
			return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: err.Error()}
		}
		resp.IDToken = id
	}
	if !refresh || !q.NoRefreshRotation {
		g.current = randomID(32)
		p.grants[g.current] = g
		resp.RefreshToken = g.current
	}
	return resp, nil
}
