package devidp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
)

// Defaults and fixed values of the development provider.
const (
	// Banner heads every page the provider serves, and its README.
	Banner = fakeidp.DevelopmentBanner
	// DefaultMFAACR is the acr value that asks for, and reports, a second
	// factor ([Config].MFAACR).
	DefaultMFAACR = fakeidp.DefaultMFAACR
	// PasswordACR is the acr value of a login with a password only.
	PasswordACR = fakeidp.PasswordACR
	// DefaultPassword is the password of every account whose
	// [User].Password is empty. It is shown on the login page.
	DefaultPassword = "dev"
	// OTP is the one-time code of every account with MFA. It is fixed,
	// and shown on the one-time-code page.
	OTP = fakeidp.DefaultOTP
	// DefaultSigningAlg is the algorithm of the key generated at start
	// ([Config].SigningAlg).
	DefaultSigningAlg = "ES256"
)

// ErrInvalidConfig is wrapped by every error [New] and [Server.AddClient]
// return for a configuration mistake.
var ErrInvalidConfig = errors.New("devidp: invalid config")

// User is an account that can sign in.
type User struct {
	// Subject is the sub claim and the user name typed on the login page.
	// Required and unique.
	Subject string
	// Name, Email and Tenant become the name, email and tenant claims
	// (ID token, access token, /userinfo) when not empty.
	Name   string
	Email  string
	Tenant string
	// Password defaults to [DefaultPassword]. It is shown on the login
	// page: never use a real one.
	Password string
	// MFA says the account has a second factor (the fixed [OTP]): when a
	// client sends acr_values with the MFA acr, the login asks for the
	// code and reports acr = the MFA acr, amr = ["pwd","otp"]. Without
	// it, such a login reports the password acr, and the client decides.
	MFA bool
	// Claims are extra claims (roles, groups…) added to the tokens and
	// /userinfo; they cannot override the registered ones.
	Claims map[string]any
}

// Client is a registered relying party.
type Client struct {
	// ID is the client_id. Required; registering an existing ID replaces
	// it.
	ID string
	// Secret authenticates the client at /token (HTTP Basic or form).
	// Empty makes it a public client, which must use PKCE.
	Secret string
	// RedirectURIs and PostLogoutRedirectURIs are matched exactly.
	// Absolute http or https URLs without fragment.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI receives a logout token whenever a provider
	// session ends (the /dev/ page, /end_session, [Server.EndSession]).
	// Empty: none.
	BackchannelLogoutURI string
	// BackchannelSessionRequired: every logout token sent to this client
	// carries a sid, so a user-wide logout without a live session sends
	// it nothing.
	BackchannelSessionRequired bool
}

// Config configures a [Server]. Only Issuer is required.
type Config struct {
	// Issuer is the issuer identifier: the absolute http or https URL,
	// without query, fragment or trailing slash, at which the Server is
	// reachable. Its path, if any, prefixes every endpoint.
	Issuer string
	// Clients are registered at start; more can be added with
	// [Server.AddClient]. Default: none (see [DefaultClient]).
	Clients []Client
	// Users can sign in, listed in this order. Default [DefaultUsers]:
	// alice and bob with MFA, carol without.
	Users []User
	// MFAACR is the acr value meaning "with a second factor". Default
	// [DefaultMFAACR].
	MFAACR string
	// SigningAlg is the algorithm of the signing key generated at start:
	// "ES256" (default), "RS256" or "EdDSA". The key lives in memory only,
	// so tokens do not survive a restart.
	SigningAlg string
	// APIAudience is the aud of the (JWT, RFC 9068) access tokens.
	// Default "api".
	APIAudience string
	// AccessTokenTTL and IDTokenTTL default to 5 and 10 minutes.
	AccessTokenTTL time.Duration
	IDTokenTTL     time.Duration
	// BackchannelClient delivers logout tokens. Default: a client with a
	// 10 s timeout over http.DefaultTransport.
	BackchannelClient *http.Client
	// Now is the provider's clock. Default time.Now.
	Now func() time.Time
}

// DefaultUsers returns the development accounts: alice (tenant acme,
// role admin, MFA), bob (tenant acme, MFA) and carol (tenant globex, no
// second factor). Every password is [DefaultPassword].
func DefaultUsers() []User {
	return []User{
		{Subject: "alice", Name: "Alice Example", Email: "alice@example.com", Tenant: "acme", MFA: true,
			Claims: map[string]any{"roles": []string{"admin"}}},
		{Subject: "bob", Name: "Bob Example", Email: "bob@example.com", Tenant: "acme", MFA: true,
			Claims: map[string]any{"roles": []string{"member"}}},
		{Subject: "carol", Name: "Carol Example", Email: "carol@example.com", Tenant: "globex",
			Claims: map[string]any{"roles": []string{"member"}}},
	}
}

// DefaultClient returns the demo's client: ID "demo", secret
// "demo-secret", callbacks http://127.0.0.1:8080/callback and
// http://127.0.0.1:8081/callback, post-logout redirects to the two roots,
// and back-channel logout to
// http://127.0.0.1:8080/backchannel-logout.
func DefaultClient() Client {
	return Client{
		ID:                     "demo",
		Secret:                 "demo-secret",
		RedirectURIs:           []string{"http://127.0.0.1:8080/callback", "http://127.0.0.1:8081/callback"},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1:8080/", "http://127.0.0.1:8081/"},
		BackchannelLogoutURI:   "http://127.0.0.1:8080/backchannel-logout",
	}
}

// Server is a development OpenID Provider: an http.Handler serving the
// provider's endpoints, its login pages, an index page at the issuer's
// path and the /dev/ admin page. Its methods are safe for concurrent use.
type Server struct {
	issuer string
	prefix string // the issuer's path: "" or "/…"
	secure bool
	now    func() time.Time
	idp    *fakeidp.Provider
	mux    *http.ServeMux
	users  []User
	// csrfKey signs the admin page's CSRF tokens.
	csrfKey []byte

	mu       sync.Mutex
	clients  []Client // registration order; AddClient replaces by ID
	outcomes map[string]*outcome
	order    []string // outcome ids, oldest first
	// actions serialises admin actions, so that the deliveries an action
	// reports are its own.
	actions sync.Mutex
}

// New validates cfg, generates the signing key and returns the Server.
// Nothing listens yet: serve the Server at cfg.Issuer.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("%w: Issuer is required", ErrInvalidConfig)
	}
	iss, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: Issuer: %v", ErrInvalidConfig, err)
	}
	if cfg.Users == nil {
		cfg.Users = DefaultUsers()
	}
	if cfg.MFAACR == "" {
		cfg.MFAACR = DefaultMFAACR
	}
	if cfg.SigningAlg == "" {
		cfg.SigningAlg = DefaultSigningAlg
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	users := make([]User, len(cfg.Users))
	accounts := make([]fakeidp.Account, len(cfg.Users))
	for i, u := range cfg.Users {
		if u.Password == "" {
			u.Password = DefaultPassword
		}
		u.Claims = maps.Clone(u.Claims)
		users[i] = u
		accounts[i] = fakeidp.Account{Password: u.Password, User: fakeidp.User{
			Subject: u.Subject, Name: u.Name, Email: u.Email, Tenant: u.Tenant, MFA: u.MFA, Claims: u.Claims,
		}}
	}
	opts := []fakeidp.Option{
		fakeidp.WithLoginUI(fakeidp.LoginUI{Accounts: accounts}),
		fakeidp.WithMFAACR(cfg.MFAACR),
		fakeidp.WithSigningAlg(cfg.SigningAlg),
		fakeidp.WithClock(cfg.Now),
	}
	if cfg.APIAudience != "" {
		opts = append(opts, fakeidp.WithAPIAudience(cfg.APIAudience))
	}
	if cfg.AccessTokenTTL > 0 {
		opts = append(opts, fakeidp.WithAccessTokenTTL(cfg.AccessTokenTTL))
	}
	if cfg.IDTokenTTL > 0 {
		opts = append(opts, fakeidp.WithIDTokenTTL(cfg.IDTokenTTL))
	}
	if cfg.BackchannelClient != nil {
		opts = append(opts, fakeidp.WithBackchannelClient(cfg.BackchannelClient))
	}
	idp, err := fakeidp.NewProvider(cfg.Issuer, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	s := &Server{
		issuer: cfg.Issuer, prefix: iss.Path, secure: iss.Scheme == "https", now: cfg.Now,
		idp: idp, users: users, csrfKey: make([]byte, 32), outcomes: map[string]*outcome{},
	}
	_, _ = rand.Read(s.csrfKey) // crypto/rand.Read never fails (Go ≥ 1.24)
	for i, c := range cfg.Clients {
		if err := s.AddClient(c); err != nil {
			return nil, fmt.Errorf("%w (client %d)", err, i)
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+s.prefix+"/{$}", s.handleIndex)
	s.mux.HandleFunc("GET "+s.prefix+"/dev/{$}", s.handleAdmin)
	// The admin forms post from the admin page only: cross-origin browser
	// posts are refused before the CSRF token is even looked at.
	s.mux.Handle("POST "+s.prefix+"/dev/end", http.NewCrossOriginProtection().Handler(http.HandlerFunc(s.handleEnd)))
	s.mux.Handle("/", idp.Handler())
	return s, nil
}

// ServeHTTP serves the provider: its OpenID endpoints and login pages
// (under the issuer's path), the index page at the issuer's path and the
// admin page at /dev/ below it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.issuer }

// AddClient registers c, or replaces the client with the same ID. It
// returns an error wrapping [ErrInvalidConfig] when the ID is empty or
// holds white space, or a URI is not an absolute http or https URL
// without fragment.
func (s *Server) AddClient(c Client) error {
	if c.ID == "" || strings.ContainsFunc(c.ID, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: client ID %q is empty or holds white space", ErrInvalidConfig, c.ID)
	}
	uris := slices.Concat(c.RedirectURIs, c.PostLogoutRedirectURIs)
	if c.BackchannelLogoutURI != "" {
		uris = append(uris, c.BackchannelLogoutURI)
	}
	for _, u := range uris {
		if err := checkURI(u); err != nil {
			return fmt.Errorf("%w: client %q: %v", ErrInvalidConfig, c.ID, err)
		}
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Registered under the lock, so that the provider and the list shown
	// on the pages agree on the order of concurrent registrations.
	s.idp.AddClient(fakeidp.Client{
		ID: c.ID, Secret: c.Secret, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelSessionRequired: c.BackchannelSessionRequired,
	})
	if i := slices.IndexFunc(s.clients, func(old Client) bool { return old.ID == c.ID }); i >= 0 {
		s.clients[i] = c
	} else {
		s.clients = append(s.clients, c)
	}
	return nil
}

func checkURI(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("URI %q: %v", raw, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("URI %q is not an absolute http or https URL", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("URI %q has a fragment", raw)
	}
	return nil
}

// Clients returns the registered clients in registration order.
func (s *Server) Clients() []Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.clients)
	for i := range out {
		out[i].RedirectURIs = slices.Clone(out[i].RedirectURIs)
		out[i].PostLogoutRedirectURIs = slices.Clone(out[i].PostLogoutRedirectURIs)
	}
	return out
}

// Users returns the accounts that can sign in, passwords included.
func (s *Server) Users() []User {
	out := slices.Clone(s.users)
	for i := range out {
		out[i].Claims = maps.Clone(out[i].Claims)
	}
	return out
}

// Session is a live login session at the provider (one browser's SSO).
type Session struct {
	// Subject and SID are the sub and sid of the tokens it produced.
	Subject string
	SID     string
	// AuthTime, ACR and AMR describe its latest authentication.
	AuthTime time.Time
	ACR      string
	AMR      []string
}

// Sessions returns the live sessions ordered by subject, then auth_time.
func (s *Server) Sessions() []Session {
	var out []Session
	for _, x := range s.idp.Sessions() {
		out = append(out, Session{Subject: x.Subject, SID: x.SID, AuthTime: x.AuthTime, ACR: x.ACR, AMR: x.AMR})
	}
	return out
}

// Delivery is one back-channel logout POST and its result.
type Delivery struct {
	// ClientID and URI identify the receiver.
	ClientID string
	URI      string
	// Subject and SID are the logout token's sub and sid ("" if absent).
	Subject string
	SID     string
	// Token is the logout token sent.
	Token string
	// StatusCode is the receiver's HTTP status, 0 if none came back.
	StatusCode int
	// Err is the failure: a transport error or a non-2xx status. nil
	// when the receiver accepted the token.
	Err error
}

// Deliveries returns every back-channel logout attempt so far, oldest
// first, whatever triggered it (the /dev/ page, /end_session,
// [Server.EndSession], [Server.EndSID]).
func (s *Server) Deliveries() []Delivery {
	var out []Delivery
	for _, d := range s.idp.Deliveries() {
		c := tokenClaims(d.Token)
		sub, _ := c["sub"].(string)
		sid, _ := c["sid"].(string)
		out = append(out, Delivery{
			ClientID: d.ClientID, URI: d.URI, Subject: sub, SID: sid, Token: d.Token, StatusCode: d.StatusCode, Err: d.Err,
		})
	}
	return out
}

// EndSession ends every live session of sub (their refresh tokens stop
// working, the next login in those browsers asks for the password) and
// sends a logout token to every client with a back-channel logout URI:
// one per ended session, or one with sub only when sub had none. It
// returns those deliveries; the error joins the failed ones.
func (s *Server) EndSession(ctx context.Context, sub string) ([]Delivery, error) {
	return s.act(func() error { return s.idp.EndSession(ctx, sub) },
		func(d Delivery) bool { return d.Subject == sub })
}

// EndSID is [Server.EndSession] for the one session whose sid is sid. An
// unknown sid is an error and sends nothing.
func (s *Server) EndSID(ctx context.Context, sid string) ([]Delivery, error) {
	return s.act(func() error { return s.idp.EndSID(ctx, sid) },
		func(d Delivery) bool { return d.SID == sid })
}

// act runs an ending action and returns the deliveries it caused: those
// recorded meanwhile that match mine (an RP-initiated logout may deliver
// at the same time; admin actions themselves are serialised).
func (s *Server) act(do func() error, mine func(Delivery) bool) ([]Delivery, error) {
	s.actions.Lock()
	defer s.actions.Unlock()
	before := len(s.idp.Deliveries())
	err := do()
	var out []Delivery
	for _, d := range s.Deliveries()[before:] {
		if mine(d) {
			out = append(out, d)
		}
	}
	return out, err
}

// tokenClaims decodes the payload of a JWT the provider itself signed,
// for display and matching only (nothing is trusted from it).
func tokenClaims(raw string) map[string]any {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c map[string]any
	if json.Unmarshal(b, &c) != nil {
		return nil
	}
	return c
}

// csrfToken is the admin forms' token for the browser whose CSRF cookie
// holds cookie: an HMAC, so a cookie planted by someone else is useless
// without the server's key.
func (s *Server) csrfToken(cookie string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
