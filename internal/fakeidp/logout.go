package fakeidp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	// BackchannelLogoutEvent is the member of a logout token's events claim
	// that makes it a logout token (Back-Channel Logout 1.0 §2.4).
	BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// LogoutTokenType is the JWT typ the provider puts in the header of the
	// logout tokens it sends (Back-Channel Logout 1.0 §2.4, recommended).
	LogoutTokenType = "logout+jwt"
	// logoutTokenTTL: the spec asks for a short lifetime (two minutes is
	// its own example).
	logoutTokenTTL = 2 * time.Minute
	// deliveryTimeout bounds a back-channel POST made from /end_session,
	// whose request context belongs to the browser.
	deliveryTimeout = 10 * time.Second
)

// ErrUnknownSession is returned by [Provider.EndSID] for a sid the provider
// never issued.
var ErrUnknownSession = errors.New("fakeidp: unknown session")

// DeliveryError is a failed back-channel logout delivery: the POST failed
// (Err set) or the receiver answered with a non-2xx status.
type DeliveryError struct {
	// ClientID and URI identify the receiver.
	ClientID string
	URI      string
	// StatusCode is the receiver's answer, 0 when none arrived.
	StatusCode int
	// Err is the transport error, nil when the receiver answered.
	Err error
}

// Error describes the failed delivery.
func (e *DeliveryError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("fakeidp: back-channel logout to client %q at %s: %v", e.ClientID, e.URI, e.Err)
	}
	return fmt.Sprintf("fakeidp: back-channel logout to client %q at %s: status %d", e.ClientID, e.URI, e.StatusCode)
}

// Unwrap returns the transport error, if any.
func (e *DeliveryError) Unwrap() error { return e.Err }

// LogoutToken returns the claim set of a valid back-channel logout token
// for clientID: iss, aud, iat, exp (two minutes), a fresh jti, the
// back-channel logout event, and sub and sid unless empty. Tests modify it
// (add a nonce, drop the event, change aud…) and sign it with
// [Provider.SignLogoutToken], [Provider.Sign] or [Provider.SignWith].
func (p *Provider) LogoutToken(clientID, sub, sid string) map[string]any {
	now := p.now()
	c := map[string]any{
		"iss":    p.issuer,
		"aud":    clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenTTL).Unix(),
		"jti":    randomID(16),
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// SignLogoutToken signs claims with the current key and the header typ
// [LogoutTokenType], as the provider signs the logout tokens it sends.
func (p *Provider) SignLogoutToken(claims map[string]any) string {
	return p.Sign(map[string]any{"typ": LogoutTokenType}, claims)
}

// Deliver POSTs rawToken as logout_token to the BackchannelLogoutURI of
// clientID, the way the provider delivers its own logout tokens, and
// records the attempt (see [Provider.Deliveries]). It returns a
// *[DeliveryError] unless the receiver answers 2xx.
func (p *Provider) Deliver(ctx context.Context, clientID, rawToken string) error {
	p.mu.Lock()
	c, ok := p.clients[clientID]
	p.mu.Unlock()
	if !ok || c.BackchannelLogoutURI == "" {
		return fmt.Errorf("fakeidp: client %q has no back-channel logout URI", clientID)
	}
	return p.deliver(ctx, []logoutJob{{clientID: clientID, uri: c.BackchannelLogoutURI, token: rawToken}})
}

// EndSession ends every SSO session of sub at the provider (the browser's
// next /authorize needs a login, the sessions' refresh tokens fail with
// invalid_grant) and sends back-channel logout tokens to every client with
// a BackchannelLogoutURI, in registration order: one token with sub and sid
// per ended session or, when sub had no session, one with sub only (not
// sent to clients with BackchannelSessionRequired). It returns the
// delivery failures joined (each a *[DeliveryError]); the sessions end
// whatever the deliveries do.
func (p *Provider) EndSession(ctx context.Context, sub string) error {
	p.mu.Lock()
	var ended []*ssoSession
	for _, s := range p.sessions {
		if s.authn.subject == sub && !s.ended {
			ended = append(ended, s)
		}
	}
	// Map order is random; tests want deliveries in a stable order.
	slices.SortFunc(ended, func(a, b *ssoSession) int {
		return cmp.Or(a.authn.authTime.Compare(b.authn.authTime), strings.Compare(a.authn.sid, b.authn.sid))
	})
	jobs, err := p.endLocked(sub, ended)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return p.deliver(ctx, jobs)
}

// EndSID is [Provider.EndSession] for the one session whose sid is sid. It
// returns [ErrUnknownSession] when no session ever had that sid; an
// already ended session is notified again.
func (p *Provider) EndSID(ctx context.Context, sid string) error {
	p.mu.Lock()
	var found *ssoSession
	for _, s := range p.sessions {
		if s.authn.sid == sid {
			found = s
		}
	}
	if found == nil {
		p.mu.Unlock()
		return fmt.Errorf("%w: sid %q", ErrUnknownSession, sid)
	}
	jobs, err := p.endLocked(found.authn.subject, []*ssoSession{found})
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return p.deliver(ctx, jobs)
}

// logoutJob is one logout token to POST.
type logoutJob struct{ clientID, uri, token string }

// endLocked ends sessions (unless Quirks.IgnoreEndSession) and prepares
// the back-channel logout tokens. Caller holds p.mu.
func (p *Provider) endLocked(sub string, sessions []*ssoSession) ([]logoutJob, error) {
	if !p.quirks.IgnoreEndSession {
		for _, s := range sessions {
			s.ended = true
		}
	}
	var jobs []logoutJob
	add := func(c Client, sub, sid string) error {
		claims := p.LogoutToken(c.ID, sub, sid) // takes no lock: safe under p.mu
		k := p.keys[0]
		raw, err := signJWT(k.Signer, k.Alg, map[string]any{"kid": k.ID, "typ": LogoutTokenType}, claims)
		if err != nil {
			return fmt.Errorf("fakeidp: signing logout token: %w", err)
		}
		jobs = append(jobs, logoutJob{clientID: c.ID, uri: c.BackchannelLogoutURI, token: raw})
		return nil
	}
	for _, id := range p.clientOrder {
		c := p.clients[id]
		if c.BackchannelLogoutURI == "" {
			continue
		}
		if len(sessions) == 0 && !c.BackchannelSessionRequired {
			if err := add(c, sub, ""); err != nil {
				return nil, err
			}
		}
		for _, s := range sessions {
			if err := add(c, s.authn.subject, s.authn.sid); err != nil {
				return nil, err
			}
		}
	}
	return jobs, nil
}

// deliver POSTs each job in order, records it, and joins the failures.
// It runs without p.mu: the receiver may well call back into the provider
// (JWKS, discovery) while handling the POST.
func (p *Provider) deliver(ctx context.Context, jobs []logoutJob) error {
	var errs []error
	for _, j := range jobs {
		d := p.post(ctx, j)
		p.record(func() { p.deliveries = append(p.deliveries, d) })
		if d.Err != nil {
			errs = append(errs, d.Err)
		}
	}
	return errors.Join(errs...)
}

func (p *Provider) post(ctx context.Context, j logoutJob) Delivery {
	d := Delivery{ClientID: j.clientID, URI: j.uri, Token: j.token}
	fail := func(err error) Delivery {
		d.Err = &DeliveryError{ClientID: j.clientID, URI: j.uri, StatusCode: d.StatusCode, Err: err}
		return d
	}
	body := url.Values{"logout_token": {j.token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.uri, strings.NewReader(body))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.backchannelClient().Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	d.StatusCode = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail(nil)
	}
	return d
}

func (p *Provider) handleEndSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid_request: malformed parameters", http.StatusBadRequest)
		return
	}
	rec := EndSessionCall{Params: cloneValues(r.Form)}
	fail := func(msg string) {
		rec.Error = msg
		p.record(func() { p.endSessionCalls = append(p.endSessionCalls, rec) })
		p.showError(w, http.StatusBadRequest, "invalid_request: "+msg)
	}

	// The hint may be expired (RP-initiated Logout 1.0 §2 says the OP
	// should accept that), but must be an ID token we signed.
	var hint *ownClaims
	if raw := r.Form.Get("id_token_hint"); raw != "" {
		c, typ, err := p.parseOwn(raw)
		if err != nil || typ == "at+jwt" || c.ClientID != "" || len(c.Audience) == 0 {
			fail("id_token_hint is not an ID token issued by this provider")
			return
		}
		hint = &c
	}
	clientID := r.Form.Get("client_id")
	if hint != nil {
		if clientID != "" && !hint.Audience.Contains(clientID) {
			fail("client_id does not match the id_token_hint audience")
			return
		}
		if clientID == "" {
			clientID = hint.Audience[0]
		}
	}
	p.mu.Lock()
	client, known := p.clients[clientID]
	p.mu.Unlock()
	if clientID != "" && !known {
		fail("unknown client")
		return
	}
	rec.ClientID = clientID
	plr := r.Form.Get("post_logout_redirect_uri")
	if plr != "" {
		// Without a client there is no list to match against, and an
		// unchecked redirect would be an open redirector.
		if !known {
			fail("post_logout_redirect_uri requires id_token_hint or client_id")
			return
		}
		if !slices.Contains(client.PostLogoutRedirectURIs, plr) {
			fail("post_logout_redirect_uri is not registered for this client")
			return
		}
	}
	rec.PostLogoutRedirectURI, rec.State = plr, r.Form.Get("state")

	// The session to end is the browser's; a browser without the cookie
	// (another device, cleared cookies) is identified by the hint's sid.
	p.mu.Lock()
	var sess *ssoSession
	if ck, err := r.Cookie(p.cookieName); err == nil {
		if s := p.sessions[ck.Value]; s != nil && !s.ended {
			sess = s
		}
	}
	if sess == nil && hint != nil && hint.SID != "" {
		for _, s := range p.sessions {
			if s.authn.sid == hint.SID && !s.ended {
				sess = s
			}
		}
	}
	var (
		jobs []logoutJob
		err  error
	)
	if sess != nil {
		rec.Subject, rec.SID = sess.authn.subject, sess.authn.sid
		jobs, err = p.endLocked(sess.authn.subject, []*ssoSession{sess})
	}
	p.endSessionCalls = append(p.endSessionCalls, rec)
	p.mu.Unlock()
	if err != nil {
		http.Error(w, "server_error", http.StatusInternalServerError)
		return
	}

	// Other relying parties learn of the logout through the back channel
	// before the browser is sent back, as on providers that deliver
	// synchronously. Failures are recorded in Deliveries, not shown.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), deliveryTimeout)
	defer cancel()
	_ = p.deliver(ctx, jobs)

	if !p.Quirks().IgnoreEndSession {
		http.SetCookie(w, &http.Cookie{Name: p.cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure})
	}
	if plr != "" {
		v := url.Values{}
		if rec.State != "" {
			v.Set("state", rec.State)
		}
		http.Redirect(w, r, addQuery(plr, v), http.StatusFound)
		return
	}
	if p.ui != nil {
		p.render(w, http.StatusOK, "signedout", page{Title: "Signed out"})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "signed out\n")
}
