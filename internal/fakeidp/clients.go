package fakeidp

import (
	"maps"
	"slices"
)

// Client is a registered relying party.
type Client struct {
	// ID is the client_id. Required and unique: registering an existing ID
	// replaces the earlier registration.
	ID string
	// Secret authenticates the client at /token and /revoke (HTTP Basic or
	// client_secret_post). Empty makes it a public client: it sends only
	// client_id and must use PKCE.
	Secret string
	// RedirectURIs are matched exactly (no prefix or wildcard matching) at
	// /authorize, as OAuth 2.0 Security BCP requires.
	RedirectURIs []string
	// PostLogoutRedirectURIs are matched exactly at /end_session.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI receives logout tokens from [Provider.EndSession],
	// [Provider.EndSID] and /end_session. Empty: no back-channel logout.
	BackchannelLogoutURI string
	// BackchannelSessionRequired (backchannel_logout_session_required):
	// every logout token sent to this client carries a sid, so a
	// subject-wide logout without a known session sends it nothing.
	BackchannelSessionRequired bool
}

// User is an account the test lets log in.
type User struct {
	// Subject is the sub claim. Required.
	Subject string
	// Email, Name and Tenant become the email, name and tenant claims of ID
	// tokens, access tokens and /userinfo when not empty.
	Email  string
	Name   string
	Tenant string
	// MFA says the user can do a second factor: when acr_values asks for
	// the MFA acr, the authentication then uses one (acr = the MFA acr,
	// amr = ["pwd","otp"]).
	MFA bool
	// Claims are extra claims added to ID tokens, access tokens and
	// /userinfo (roles, groups…). They cannot override the registered
	// claims the provider sets.
	Claims map[string]any
}

func (u User) clone() User {
	u.Claims = maps.Clone(u.Claims)
	return u
}

// AddClient registers (or replaces) a relying party. An empty ID fails the
// test.
func (p *Provider) AddClient(c Client) {
	if c.ID == "" {
		p.fatalf("fakeidp: AddClient: empty client ID")
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.clients[c.ID]; !ok {
		p.clientOrder = append(p.clientOrder, c.ID)
	}
	p.clients[c.ID] = c
}

// SetUser registers u (replacing any user with the same Subject) and makes
// u the person who logs in whenever /authorize needs a new authentication.
// Existing SSO sessions keep their own user: a silent SSO still answers for
// whoever logged in. Refreshes pick up the new attributes (email, tenant,
// claims) of the session's subject, as a provider reading its directory
// would; auth_time, acr and amr stay those of the original login.
//
// With [WithLoginUI], the person who logs in is whoever fills in the login
// page: SetUser then only registers (or replaces) the user's attributes.
//
// SetUser(User{}) means nobody logs in: an authorization request that needs
// an authentication is answered with error=access_denied (the user
// cancelled). An empty Subject with other fields set fails the test.
func (p *Provider) SetUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if u.Subject == "" {
		if u.Email != "" || u.Name != "" || u.Tenant != "" || u.MFA || len(u.Claims) > 0 {
			p.fatalf("fakeidp: SetUser: user without Subject")
		}
		p.current = ""
		return
	}
	p.users[u.Subject] = u.clone()
	p.current = u.Subject
}

// UpdateUser changes the attributes of a registered user without changing
// who logs in next, e.g. to move them to another tenant before a refresh.
// An unknown Subject fails the test.
func (p *Provider) UpdateUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.users[u.Subject]; !ok {
		p.fatalf("fakeidp: UpdateUser: unknown subject %q", u.Subject)
	}
	p.users[u.Subject] = u.clone()
}
