package fakeidp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Default values of the provider's configuration.
const (
	// DefaultMFAACR is the acr value that asks for, and reports, a second
	// factor. Change it with [WithMFAACR].
	DefaultMFAACR = "urn:sessionfence:mfa"
	// PasswordACR is the acr value of an authentication with a password only.
	PasswordACR = "urn:sessionfence:pwd"
	// DefaultAPIAudience is the aud of access tokens. Change it with
	// [WithAPIAudience].
	DefaultAPIAudience = "api"
	// DefaultIDTokenTTL is the lifetime of ID tokens ([WithIDTokenTTL]).
	DefaultIDTokenTTL = 10 * time.Minute
	// DefaultAccessTokenTTL is the lifetime of access tokens
	// ([WithAccessTokenTTL]).
	DefaultAccessTokenTTL = 5 * time.Minute
	// DefaultCodeTTL is how long an authorization code can be redeemed
	// ([WithCodeTTL]).
	DefaultCodeTTL = 60 * time.Second
	// DefaultSigningAlg is the JWS algorithm of the provider's key
	// ([WithSigningAlg]).
	DefaultSigningAlg = "RS256"
)

// Option configures a [Provider] at construction.
type Option func(*config)

type config struct {
	tls              bool
	alg              string
	keepRetired      bool
	mfaACR           string
	apiAudience      string
	idTTL            time.Duration
	accessTTL        time.Duration
	codeTTL          time.Duration
	allowMissingPKCE bool
	clock            func() time.Time
	backchannel      *http.Client
	quirks           Quirks
	loginUI          *LoginUI
}

// WithTLS makes [New] serve the provider with [httptest.NewTLSServer]
// instead of plain HTTP ([NewProvider] ignores it). [Provider.Client] and
// [Provider.Browser] then trust its certificate (httptest uses one
// certificate for every TLS test server, so they also trust a relying
// party started with httptest.NewTLSServer).
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithSigningAlg sets the JWS algorithm of the signing key: "RS256"
// (default), "ES256" or "EdDSA". An unsupported value fails the test in
// [New].
func WithSigningAlg(alg string) Option { return func(c *config) { c.alg = alg } }

// WithKeepRetiredKeys keeps keys replaced by [Provider.RotateKey] in the
// JWKS, as providers do during a graceful rotation, so tokens signed before
// the rotation still verify. By default a rotation removes the old key at
// once.
func WithKeepRetiredKeys() Option { return func(c *config) { c.keepRetired = true } }

// WithMFAACR sets the acr value meaning "authenticated with a second
// factor" (default [DefaultMFAACR]).
func WithMFAACR(acr string) Option { return func(c *config) { c.mfaACR = acr } }

// WithAPIAudience sets the aud claim of access tokens (default
// [DefaultAPIAudience]).
func WithAPIAudience(aud string) Option { return func(c *config) { c.apiAudience = aud } }

// WithIDTokenTTL sets the lifetime of ID tokens (default [DefaultIDTokenTTL]).
func WithIDTokenTTL(d time.Duration) Option { return func(c *config) { c.idTTL = d } }

// WithAccessTokenTTL sets the lifetime of access tokens and the expires_in
// of token responses (default [DefaultAccessTokenTTL]).
func WithAccessTokenTTL(d time.Duration) Option { return func(c *config) { c.accessTTL = d } }

// WithCodeTTL sets how long an authorization code stays redeemable (default
// [DefaultCodeTTL]).
func WithCodeTTL(d time.Duration) Option { return func(c *config) { c.codeTTL = d } }

// InsecureAllowMissingPKCE lets /authorize accept requests without a
// code_challenge (confidential clients only; public clients always need
// PKCE). The "plain" method stays refused: only S256 is supported.
func InsecureAllowMissingPKCE() Option { return func(c *config) { c.allowMissingPKCE = true } }

// WithClock sets the provider's clock (default time.Now). [Provider.Advance]
// adds an offset on top of it.
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithBackchannelClient sets the client that delivers back-channel logout
// tokens. The default uses the provider's own transport (see
// [Provider.Client]) with a 10 s timeout; a plain-HTTP provider's default
// does not trust TLS receivers, so pass a TLS server's Client() here when
// mixing the two.
func WithBackchannelClient(c *http.Client) Option { return func(cfg *config) { cfg.backchannel = c } }

// WithQuirks starts the provider with the given misbehaviour switched on
// (see [Provider.SetQuirks]).
func WithQuirks(q Quirks) Option { return func(c *config) { c.quirks = q } }

// Provider is a fake OpenID Provider. Create it with [New] (a test server,
// closed by t.Cleanup) or [NewProvider] (an http.Handler to serve
// yourself). All methods are safe for concurrent use.
type Provider struct {
	// t is nil for a provider made by NewProvider: see fatalf.
	t          testing.TB
	srv        *httptest.Server // nil for a provider made by NewProvider
	issuer     string
	secure     bool // the issuer is https: cookies get the Secure attribute
	cookieName string
	cfg        config
	handler    http.Handler
	ui         *loginUI // nil unless WithLoginUI

	// offset is added to cfg.clock; atomic so that now() needs no lock.
	offset atomic.Int64

	mu              sync.Mutex
	quirks          Quirks
	keys            []Key // keys[0] signs; all of them are published
	rogue           *Key  // a key never published, for Quirks.UnpublishedKey
	clients         map[string]Client
	clientOrder     []string // back-channel delivery follows registration order
	users           map[string]User
	current         string // subject of the user who logs in next; "" = nobody
	sessions        map[string]*ssoSession
	codes           map[string]*authCode
	grants          map[string]*grant // every refresh token ever issued → its grant
	pending         map[string]*pendingLogin
	refuseRefresh   bool
	refreshCount    int
	refreshes       []Refresh
	revoked         []Revocation
	revokedJTI      map[string]bool
	authorizations  []Authorization
	endSessionCalls []EndSessionCall
	deliveries      []Delivery
}

// New starts a provider on a fresh httptest server (plain HTTP unless
// [WithTLS]) and registers its shutdown with t.Cleanup. It has no clients
// and no user until [Provider.AddClient] and [Provider.SetUser] are called.
// It is a thin wrapper around [NewProvider]: the issuer is the server's
// URL and the server serves [Provider.Handler].
func New(t testing.TB, opts ...Option) *Provider {
	t.Helper()
	cfg := newConfig(opts)
	// Everything handlers read must be written before the server starts
	// serving, so the issuer is derived from the listener (exactly as
	// httptest derives its URL) instead of read back from srv.URL.
	srv := httptest.NewUnstartedServer(nil)
	scheme := "http://"
	if cfg.tls {
		scheme = "https://"
	}
	p, err := newProvider(scheme+srv.Listener.Addr().String(), cfg)
	if err != nil {
		srv.Listener.Close()
		t.Fatalf("fakeidp: %v", err)
	}
	p.t, p.srv = t, srv
	srv.Config.Handler = p.handler
	if cfg.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	if srv.URL != p.issuer {
		t.Fatalf("fakeidp: issuer %s differs from server URL %s", p.issuer, srv.URL)
	}
	return p
}

// NewProvider returns a provider for issuer without starting anything: the
// caller serves [Provider.Handler] at issuer's URL. issuer must be an
// absolute http or https URL without query, fragment or trailing slash;
// its path, if any, prefixes every endpoint. Cookies are Secure when the
// issuer is https. [WithTLS] has no effect here (the scheme of issuer
// decides), and the back-channel client defaults to http.DefaultTransport
// with a 10 s timeout.
//
// A provider made this way has no testing.TB: the methods documented as
// failing the test (AddClient with an empty ID, RotateKeyAlg with an
// unknown algorithm…) panic instead, which is only ever a programming
// error in the caller. It is still a test double with published shortcuts
// (see the package documentation): serve it only for development.
func NewProvider(issuer string, opts ...Option) (*Provider, error) {
	p, err := newProvider(issuer, newConfig(opts))
	if err != nil {
		return nil, fmt.Errorf("fakeidp: %w", err)
	}
	return p, nil
}

func newConfig(opts []Option) config {
	cfg := config{
		alg:         DefaultSigningAlg,
		mfaACR:      DefaultMFAACR,
		apiAudience: DefaultAPIAudience,
		idTTL:       DefaultIDTokenTTL,
		accessTTL:   DefaultAccessTokenTTL,
		codeTTL:     DefaultCodeTTL,
		clock:       time.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func newProvider(issuer string, cfg config) (*Provider, error) {
	u, err := url.Parse(issuer)
	switch {
	case err != nil:
		return nil, fmt.Errorf("issuer %q: %w", issuer, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.User != nil:
		return nil, fmt.Errorf("issuer %q: want an absolute http or https URL", issuer)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#"):
		return nil, fmt.Errorf("issuer %q: no query or fragment allowed", issuer)
	case strings.HasSuffix(u.Path, "/") || u.RawPath != "":
		// A trailing slash would make every endpoint "//x", and go-oidc
		// compares the discovered issuer byte for byte.
		return nil, fmt.Errorf("issuer %q: no trailing slash or escaped path allowed", issuer)
	case !plainPath(u.Path):
		// The path becomes part of ServeMux patterns, where "{", "}" or
		// an empty segment would change their meaning.
		return nil, fmt.Errorf("issuer %q: path may only hold letters, digits and -._~ in non-empty segments", issuer)
	}
	var ui *loginUI
	if cfg.loginUI != nil {
		if ui, err = newLoginUI(*cfg.loginUI); err != nil {
			return nil, err
		}
	}
	key, err := generateKey(cfg.alg)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		issuer: issuer,
		ui:     ui,
		secure: u.Scheme == "https",
		cfg:    cfg,
		// Cookies are not isolated by port, and every httptest server
		// listens on 127.0.0.1: a per-provider name keeps two providers
		// (or the relying party) sharing one cookie jar from clobbering
		// each other's SSO session.
		cookieName: "fakeidp_sso_" + randomID(4),
		quirks:     cfg.quirks.clone(),
		keys:       []Key{key},
		clients:    map[string]Client{},
		users:      map[string]User{},
		sessions:   map[string]*ssoSession{},
		codes:      map[string]*authCode{},
		grants:     map[string]*grant{},
		pending:    map[string]*pendingLogin{},
		revokedJTI: map[string]bool{},
	}
	if ui != nil {
		for _, a := range ui.accounts {
			p.users[a.User.Subject] = a.User.clone()
		}
	}
	prefix := u.Path // "" or "/some/path"
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+"/.well-known/openid-configuration", p.handleDiscovery)
	mux.HandleFunc(prefix+"/keys", p.handleKeys)
	mux.HandleFunc(prefix+"/authorize", p.handleAuthorize)
	mux.HandleFunc(prefix+"/token", p.handleToken)
	mux.HandleFunc(prefix+"/userinfo", p.handleUserinfo)
	mux.HandleFunc(prefix+"/revoke", p.handleRevoke)
	mux.HandleFunc(prefix+"/end_session", p.handleEndSession)
	if p.ui != nil {
		// Only the login page posts here, from the provider's own
		// origin: refuse cross-origin browser requests outright (the
		// per-request CSRF token is checked as well).
		mux.Handle(prefix+loginPath, http.NewCrossOriginProtection().Handler(http.HandlerFunc(p.handleLogin)))
	}
	p.handler = mux
	return p, nil
}

// plainPath reports whether p is "" or "/seg/seg" with unreserved
// characters only.
func plainPath(p string) bool {
	if p == "" {
		return true
	}
	for _, seg := range strings.Split(p, "/")[1:] {
		if seg == "" || seg == "." || seg == ".." || !validPKCEValue(seg) {
			return false
		}
	}
	return strings.HasPrefix(p, "/")
}

// Handler returns the handler serving every endpoint of the provider under
// the issuer's path (see the package documentation for the list). Requests
// for other paths get 404. [New] serves it on its test server.
func (p *Provider) Handler() http.Handler { return p.handler }

// fatalf reports a misuse of the provider: t.Fatalf for a test provider,
// a panic for one made by NewProvider (there is no test to fail).
func (p *Provider) fatalf(format string, args ...any) {
	if p.t != nil {
		p.t.Helper()
		p.t.Fatalf(format, args...)
		return
	}
	panic(fmt.Sprintf(format, args...))
}

// transport is the round tripper of the clients the provider hands out
// and of back-channel deliveries: the test server's (which trusts its
// certificate) or http.DefaultTransport.
func (p *Provider) transport() http.RoundTripper {
	if p.srv != nil {
		return p.srv.Client().Transport
	}
	return http.DefaultTransport
}

// backchannelClient is the client that POSTs logout tokens.
func (p *Provider) backchannelClient() *http.Client {
	if p.cfg.backchannel != nil {
		return p.cfg.backchannel
	}
	return &http.Client{Transport: p.transport(), Timeout: 10 * time.Second}
}

// Issuer returns the issuer identifier, which is the server's base URL
// (no trailing slash), e.g. "http://127.0.0.1:41234".
func (p *Provider) Issuer() string { return p.issuer }

// Client returns a new *http.Client, without a cookie jar, that trusts the
// server's certificate when [WithTLS] is set: for discovery, /token and
// other back-end calls. Each call returns a distinct client, so a test may
// modify it.
func (p *Provider) Client() *http.Client {
	return &http.Client{Transport: p.transport()}
}

// Browser returns a new *http.Client with its own empty cookie jar, so it
// carries the provider's SSO cookie like a user agent: a second /authorize
// from the same Browser is a silent SSO. It follows redirects; set
// CheckRedirect to stop at the redirect back to the relying party.
func (p *Provider) Browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		p.fatalf("fakeidp: cookie jar: %v", err)
	}
	return &http.Client{Transport: p.transport(), Jar: jar}
}

// Advance moves the provider's clock forward by d (or back if d < 0). It
// affects every time the provider reads from now on: iat, exp, auth_time,
// max_age and code expiry.
func (p *Provider) Advance(d time.Duration) { p.offset.Add(int64(d)) }

// Now returns the provider's current time (the [WithClock] clock plus the
// [Provider.Advance] offset).
func (p *Provider) Now() time.Time { return p.now() }

func (p *Provider) now() time.Time {
	return p.cfg.clock().Add(time.Duration(p.offset.Load()))
}

func (p *Provider) endpoint(path string) string { return p.issuer + path }

// randomID returns n random bytes in hex. Codes, tokens, sids and kids all
// come from here so that nothing a test could guess is predictable.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}
