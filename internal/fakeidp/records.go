package fakeidp

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The provider records what relying parties asked of it, so tests can
// assert on the request (did the login handler really send prompt=login?)
// and not only on the outcome.

// Authorization records one request to /authorize.
type Authorization struct {
	// Params are the request's parameters as received.
	Params url.Values
	// ClientID is the client_id parameter.
	ClientID string
	// Authenticated reports a new authentication (a "login page"), as
	// opposed to a silent SSO answer from an existing session.
	Authenticated bool
	// Subject, SID, AuthTime and ACR describe the authentication the code
	// stands for; empty on error.
	Subject  string
	SID      string
	AuthTime time.Time
	ACR      string
	// Error is the OAuth error code returned ("login_required",
	// "invalid_request"…); "" on success.
	Error string
}

// EndSessionCall records one request to /end_session.
type EndSessionCall struct {
	// Params are the request's parameters as received (query or form).
	Params url.Values
	// ClientID is the client identified by id_token_hint or client_id.
	ClientID string
	// Subject and SID are those of the session that ended; empty when the
	// browser had none.
	Subject string
	SID     string
	// PostLogoutRedirectURI and State are the accepted redirect and the
	// state echoed to it.
	PostLogoutRedirectURI string
	State                 string
	// Error says why the request was refused with 400; "" when accepted.
	Error string
}

// Revocation records one accepted request to /revoke.
type Revocation struct {
	// ClientID is the authenticated client that asked.
	ClientID string
	// Token and TypeHint are the token and token_type_hint parameters.
	Token    string
	TypeHint string
	// Kind is what the provider found the token to be: "refresh_token",
	// "access_token", or "unknown" (RFC 7009 answers 200 either way).
	Kind string
}

// Refresh records one successful refresh_token grant at /token.
type Refresh struct {
	// ClientID is the authenticated client that redeemed.
	ClientID string
	// Presented is the refresh token the client sent.
	Presented string
	// Issued is the rotated refresh token the provider answered with; ""
	// when it kept the presented one (Quirks.NoRefreshRotation).
	Issued string
}

// Delivery records one back-channel logout POST.
type Delivery struct {
	// ClientID and URI identify the receiver.
	ClientID string
	URI      string
	// Token is the logout token sent.
	Token string
	// StatusCode is the receiver's HTTP status, 0 if none came back.
	StatusCode int
	// Err is the failure (a *[DeliveryError]), nil on a 2xx answer.
	Err error
}

// Authorizations returns every /authorize request so far, oldest first.
func (p *Provider) Authorizations() []Authorization {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.authorizations)
	for i := range out {
		out[i].Params = cloneValues(out[i].Params)
	}
	return out
}

// EndSessionCalls returns every /end_session request so far, oldest first.
func (p *Provider) EndSessionCalls() []EndSessionCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.endSessionCalls)
	for i := range out {
		out[i].Params = cloneValues(out[i].Params)
	}
	return out
}

// Revoked returns every accepted /revoke request so far, oldest first.
func (p *Provider) Revoked() []Revocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.revoked)
}

// Refreshes returns every successful refresh_token grant so far, oldest
// first: with [Provider.Revoked] it tells whether a relying party revoked
// the very token it was handed.
func (p *Provider) Refreshes() []Refresh {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.refreshes)
}

// Deliveries returns every back-channel logout attempt so far, oldest
// first, whichever way it was triggered.
func (p *Provider) Deliveries() []Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.deliveries)
}

// record runs f under the provider's lock.
func (p *Provider) record(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

// Session describes a live SSO session at the provider: one browser's
// login, as /authorize sees it.
type Session struct {
	// Subject and SID are the sub and sid its tokens carry.
	Subject string
	SID     string
	// AuthTime, ACR and AMR describe its latest authentication.
	AuthTime time.Time
	ACR      string
	AMR      []string
}

// Sessions returns the SSO sessions that have not ended, ordered by
// subject, then auth_time, then sid. It is how a development admin page
// lists what [Provider.EndSession] and [Provider.EndSID] can end.
func (p *Provider) Sessions() []Session {
	p.mu.Lock()
	var out []Session
	for _, s := range p.sessions {
		if !s.ended {
			a := s.authn
			out = append(out, Session{Subject: a.subject, SID: a.sid, AuthTime: a.authTime, ACR: a.acr, AMR: slices.Clone(a.amr)})
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Session) int {
		return cmp.Or(strings.Compare(a.Subject, b.Subject), a.AuthTime.Compare(b.AuthTime), strings.Compare(a.SID, b.SID))
	})
	return out
}
