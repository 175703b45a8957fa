package fakeidp

import "maps"

// Quirks are deliberate protocol violations, each one a way real providers
// (or attackers in the middle) have been seen to fail, so that tests can
// prove the relying party refuses the result instead of trusting it. The
// zero value is a well-behaved provider.
type Quirks struct {
	// IgnorePrompt answers prompt=login with a silent SSO when a session
	// exists: the old auth_time comes back.
	IgnorePrompt bool
	// IgnoreMaxAge never re-authenticates because of max_age.
	IgnoreMaxAge bool
	// IgnoreACR ignores acr_values: no step-up, no second factor; new
	// logins report the password acr.
	IgnoreACR bool
	// IgnoreEndSession makes /end_session, EndSession and EndSID look
	// successful (redirects, records, back-channel tokens) while the SSO
	// session and its refresh tokens stay valid, so the next /authorize is
	// a silent SSO.
	IgnoreEndSession bool

	// WrongNonce puts a different nonce in ID tokens; OmitNonce leaves it
	// out.
	WrongNonce bool
	OmitNonce  bool
	// WrongAudience issues ID tokens for another client.
	WrongAudience bool
	// WrongIssuer sets an iss other than [Provider.Issuer] in ID tokens.
	WrongIssuer bool
	// ExpiredIDToken issues ID tokens whose exp has passed.
	ExpiredIDToken bool
	// OmitAuthTime and OmitSID leave auth_time and sid out of ID and
	// access tokens.
	OmitAuthTime bool
	OmitSID      bool
	// WrongAtHash puts an at_hash that does not match the access token.
	WrongAtHash bool
	// UnpublishedKey signs ID and access tokens with a key of the right
	// algorithm that is not in the JWKS.
	UnpublishedKey bool
	// ExtraIDTokenClaims are set on (and override) ID token claims, e.g.
	// {"acr": "urn:sessionfence:mfa"} to claim a second factor that never
	// happened, or {"auth_time": nil} to remove one. A nil value removes
	// the claim.
	ExtraIDTokenClaims map[string]any

	// ExpiredAccessToken issues access tokens whose exp has passed.
	ExpiredAccessToken bool
	// PlainJWTAccessToken gives access tokens the header typ "JWT" instead
	// of RFC 9068's "at+jwt".
	PlainJWTAccessToken bool
	// ExtraAccessTokenClaims works like ExtraIDTokenClaims for access
	// tokens.
	ExtraAccessTokenClaims map[string]any

	// NoRefreshRotation keeps the same refresh token valid after use and
	// leaves refresh_token out of refresh responses (as some providers do).
	NoRefreshRotation bool
	// RefreshWithoutIDToken leaves id_token out of refresh responses, which
	// OpenID Connect allows.
	RefreshWithoutIDToken bool
	// RefreshOtherSubject issues refresh-time ID tokens for a different
	// sub, which OpenID Connect Core §12.2 forbids.
	RefreshOtherSubject bool

	// OmitIssParameter and WrongIssParameter break the RFC 9207 iss
	// parameter of authorization responses.
	OmitIssParameter  bool
	WrongIssParameter bool
	// WrongDiscoveryIssuer serves a discovery document whose issuer is not
	// the URL it was fetched from.
	WrongDiscoveryIssuer bool
}

// wrongIssuer is what the issuer-breaking quirks put in place of ours.
const wrongIssuer = "https://wrong-issuer.invalid"

func (q Quirks) clone() Quirks {
	q.ExtraIDTokenClaims = maps.Clone(q.ExtraIDTokenClaims)
	q.ExtraAccessTokenClaims = maps.Clone(q.ExtraAccessTokenClaims)
	return q
}

// SetQuirks replaces the provider's misbehaviour with q, from the next
// request on. SetQuirks(Quirks{}) restores correct behaviour. The maps in q
// are copied.
func (p *Provider) SetQuirks(q Quirks) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.quirks = q.clone()
}

// UpdateQuirks changes the current quirks in place under the provider's
// lock, e.g. p.UpdateQuirks(func(q *Quirks) { q.WrongNonce = true }).
func (p *Provider) UpdateQuirks(f func(*Quirks)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.quirks.clone()
	f(&q)
	p.quirks = q.clone()
}

// Quirks returns a copy of the current misbehaviour switches.
func (p *Provider) Quirks() Quirks {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.quirks.clone()
}

// RefuseRefresh makes every refresh_token grant fail with invalid_grant
// while on (the user was disabled, the grant revoked at the provider…),
// without touching the grants themselves: turning it off again lets the
// same refresh tokens work.
func (p *Provider) RefuseRefresh(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseRefresh = on
}

// RefreshCount returns the number of successful refresh_token grants.
func (p *Provider) RefreshCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refreshCount
}
