package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/sessionfence/sessionfence/internal/sealer"
	"github.com/sessionfence/sessionfence/middleware"
)

// RefreshMode says whether sessions renew through the provider with a
// refresh token when their access part expires. The zero value,
// [RefreshServerSide], is the safe default: it refuses to start rather than
// silently running without renewal.
type RefreshMode uint8

const (
	// RefreshServerSide keeps each session's refresh token on the server,
	// sealed, in the store's [middleware.Secrets] ability, and renews
	// sessions with it under a [middleware.Locker] lease. [New] fails when
	// the store lacks either ability.
	RefreshServerSide RefreshMode = iota
	// RefreshNone runs without refresh tokens: when the access part of a
	// session expires, the user is sent to log in again (usually a silent
	// SSO round trip at the provider, unless a fence demands more). The
	// store may still offer Secrets; the RP then keeps the ID token there
	// for the logout hint.
	RefreshNone
)

// String returns "server_side" or "none".
func (m RefreshMode) String() string {
	switch m {
	case RefreshServerSide:
		return "server_side"
	case RefreshNone:
		return "none"
	}
	return "unknown"
}

// ProviderConfig describes one OpenID Provider and this application's
// client registration there. Issuer, ClientID and RedirectURL are
// required.
type ProviderConfig struct {
	// Name selects the provider in /login?provider=<name> and in logs.
	// Default: the issuer URL's host. Names must be unique.
	Name string
	// Issuer is the provider's issuer identifier, exactly as its discovery
	// document states it (go-oidc refuses a mismatch). Required.
	Issuer string
	// ClientID and ClientSecret are the client credentials. An empty
	// secret makes a public client, which relies on PKCE alone.
	ClientID     string
	ClientSecret string
	// RedirectURL is the absolute URL of the callback handler, registered
	// at the provider. Required. Several providers may share one.
	RedirectURL string
	// Scopes requested at login. Default "openid profile email", plus
	// "offline_access" with [RefreshServerSide]. "openid" is always added.
	Scopes []string
	// AuthParams are extra parameters sent on every authorization request
	// (for example Auth0's "audience" or Entra's "domain_hint"). They may
	// not set a protocol parameter that the RP controls (state, nonce,
	// PKCE, prompt, max_age, acr_values…): use a [LoginOption] for those.
	AuthParams map[string]string
	// MFAACRValues are the acr_values requested when a fence demands MFA.
	// Default: the guard's Config.MFA.ACR. Empty (both): no acr_values are
	// sent, and the callback relies on amr to prove MFA.
	MFAACRValues []string
	// TenantClaim names the ID-token claim that holds the tenant
	// (workspace) of the user, e.g. "tid" on Entra ID. Empty: sessions
	// have no tenant unless Config.OnLogin sets one.
	TenantClaim string
	// PostLogoutRedirectURL is the absolute URL the provider sends the
	// browser back to after RP-initiated logout; it must be registered at
	// the provider. Empty: the parameter is not sent.
	PostLogoutRedirectURL string
}

// Config configures a relying party ([RP]). Guard and at least one provider
// are required; every other field has a safe default, stated next to it.
type Config struct {
	// Guard configures the core guard that the RP builds and renews
	// sessions for (see [RP.Guard]). Its Renewer must be nil: the RP is the
	// renewer. Its Keys also seal the login-state cookie and the
	// server-side refresh tokens, each under its own derived key.
	Guard middleware.Config
	// Providers are the OpenID Providers users can log in with. The first
	// is the default for /login. Required.
	Providers []ProviderConfig
	// HTTPClient makes every back-channel call: discovery, JWKS, token,
	// revocation. It is applied through go-oidc's ClientContext. Default:
	// a client with a 10 second timeout. Never closed by the RP.
	HTTPClient *http.Client
	// Refresh chooses how sessions renew. Default [RefreshServerSide].
	Refresh RefreshMode
	// LoginTimeout bounds the time between /login and the callback; the
	// login-state cookie lives that long. Default 10 minutes.
	LoginTimeout time.Duration
	// RefreshTimeout bounds one renewal at the provider, including the
	// wait for another instance's lease. Default 10 seconds.
	RefreshTimeout time.Duration
	// DefaultReturnTo is where a login lands when it has no valid
	// return_to. A local path. Default "/".
	DefaultReturnTo string
	// LoggedOutURL is where logout lands when the provider has no
	// end_session_endpoint. A local path. Default "/".
	LoggedOutURL string
	// Origins are extra origins ("https://app.example") allowed to POST to
	// the logout handler. The origins of every RedirectURL are always
	// allowed.
	Origins []string
	// OnLogin, if set, is called after the ID token is verified and before
	// the session is issued. It may set l.Claims.Tenant and l.Claims.Data
	// (from its own directory, or from [Login.IDTokenClaims]); the identity
	// and authentication claims are restored afterwards. An error refuses
	// the login with 403.
	OnLogin func(ctx context.Context, l *Login) error
	// OnError writes the response for a failed login, callback or logout.
	// err is a *[LoginError] carrying the step, status and cause, for
	// logs; never show err.Error() to the client. Default: a small HTML
	// page with the status and a generic sentence, Cache-Control: no-store.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
	// Now is the clock for token checks. Default: the guard's clock.
	Now func() time.Time
	// Logger receives login failures and renewal events. Default: the
	// guard's logger.
	Logger *slog.Logger
}

// Defaults of [Config].
const (
	DefaultLoginTimeout   = 10 * time.Minute
	DefaultRefreshTimeout = 10 * time.Second
	defaultHTTPTimeout    = 10 * time.Second
	maxRetiring           = 16
)

// reservedParams are the authorization request parameters the RP sets
// itself; AuthParams may not override them.
var reservedParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "max_age", "acr_values",
	"response_mode", "request", "request_uri",
}

// asymmetricAlgs are the signature algorithms accepted for ID tokens and,
// by default, for bearer tokens. "none" and the HMAC algorithms are never
// in it: an ID token MACed with the client secret proves nothing to
// another instance that holds the same secret, and "none" proves nothing.
var asymmetricAlgs = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
}

// RP is an OpenID Connect relying party bound to a [middleware.Guard]: it
// logs users in (authorization code flow with PKCE), renews their sessions
// with server-side refresh tokens, forces re-authentication when a fence
// demands it, and logs them out. It is safe for concurrent use; build it
// with [New].
type RP struct {
	guard     *middleware.Guard
	cfg       Config
	providers []*provider
	byName    map[string]*provider
	byIssuer  map[string]*provider

	stateSealer  *sealer.Sealer
	secretSealer *sealer.Sealer
	secrets      middleware.Secrets // nil when the store has none
	locker       middleware.Locker  // nil when the store has none
	replay       middleware.Replay  // nil when the store has none

	client      *http.Client
	now         func() time.Time
	log         *slog.Logger
	stateCookie string
	secure      bool
	origins     map[string]bool
	userRevoked func(context.Context, middleware.Decision)
	retiring    chan struct{} // bounds background clean-ups of revoked sessions
}

// provider is one discovered OpenID Provider.
type provider struct {
	cfg        ProviderConfig
	oauth      oauth2.Config
	verifier   *gooidc.IDTokenVerifier
	keys       *keySet
	mfaACR     []string
	endSession string
	revocation string
	// issParam: discovery says authorization responses carry iss (RFC
	// 9207), so a response without it is refused.
	issParam bool
}

// discovery holds the metadata fields go-oidc does not expose.
type discovery struct {
	JWKSURL      string   `json:"jwks_uri"`
	Algorithms   []string `json:"id_token_signing_alg_values_supported"`
	EndSession   string   `json:"end_session_endpoint"`
	Revocation   string   `json:"revocation_endpoint"`
	IssParameter bool     `json:"authorization_response_iss_parameter_supported"`
}

// Construction errors callers may branch on.
var (
	// ErrNoSecretsStore: [RefreshServerSide] was chosen but the store
	// lacks the Secrets or Locker ability. Choose a store that has them
	// (memstore, valkeystore) or set Config.Refresh to [RefreshNone].
	ErrNoSecretsStore = errors.New("sessionfence/oidc: RefreshServerSide needs a store with the Secrets and Locker abilities")
	// ErrInvalidConfig wraps every other validation failure of [New].
	ErrInvalidConfig = errors.New("sessionfence/oidc: invalid config")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// New validates cfg, discovers every provider (one HTTP round trip each,
// bounded by ctx), builds the guard with the RP as its renewer, and returns
// the RP. Validation happens before any network access, so a bad Config
// fails fast with an error wrapping [ErrInvalidConfig] or
// [ErrNoSecretsStore].
func New(ctx context.Context, cfg Config) (*RP, error) {
	if cfg.Guard.Renewer != nil {
		return nil, invalid("Guard.Renewer must be nil: the RP renews sessions itself")
	}
	if cfg.Guard.Store == nil {
		return nil, invalid("Guard.Store is nil")
	}
	if len(cfg.Providers) == 0 {
		return nil, invalid("no Providers")
	}
	if cfg.Refresh > RefreshNone {
		return nil, invalid("unknown Refresh mode %d", cfg.Refresh)
	}
	if cfg.LoginTimeout < 0 || cfg.RefreshTimeout < 0 {
		return nil, invalid("negative timeouts are not allowed")
	}
	if cfg.LoginTimeout == 0 {
		cfg.LoginTimeout = DefaultLoginTimeout
	}
	if cfg.RefreshTimeout == 0 {
		cfg.RefreshTimeout = DefaultRefreshTimeout
	}
	if cfg.DefaultReturnTo == "" {
		cfg.DefaultReturnTo = "/"
	}
	if _, ok := ValidReturnTo(cfg.DefaultReturnTo); !ok {
		return nil, invalid("DefaultReturnTo %q is not a local path", cfg.DefaultReturnTo)
	}
	if cfg.LoggedOutURL == "" {
		cfg.LoggedOutURL = "/"
	}
	if _, ok := ValidReturnTo(cfg.LoggedOutURL); !ok {
		return nil, invalid("LoggedOutURL %q is not a local path", cfg.LoggedOutURL)
	}

	rp := &RP{cfg: cfg, byName: map[string]*provider{}, byIssuer: map[string]*provider{}, origins: map[string]bool{},
		retiring: make(chan struct{}, maxRetiring)}
	st := cfg.Guard.Store
	rp.secrets, _ = st.(middleware.Secrets)
	rp.locker, _ = st.(middleware.Locker)
	rp.replay, _ = st.(middleware.Replay)
	if cfg.Refresh == RefreshServerSide && (rp.secrets == nil || rp.locker == nil) {
		return nil, fmt.Errorf("%w (store %T); or set Config.Refresh to oidc.RefreshNone so sessions log in again at access expiry", ErrNoSecretsStore, st)
	}

	gcfg := cfg.Guard
	if cfg.Refresh == RefreshServerSide {
		gcfg.Renewer = rp
	}
	rp.userRevoked = gcfg.OnRevoked
	if rp.secrets != nil {
		gcfg.OnRevoked = rp.onRevoked
	}
	g, err := middleware.New(gcfg)
	if err != nil {
		return nil, fmt.Errorf("%w: guard: %w", ErrInvalidConfig, err)
	}
	rp.guard = g
	gc := g.Config()
	if rp.stateSealer, err = sealer.New("login-state", gc.Keys); err != nil {
		return nil, err
	}
	if rp.secretSealer, err = sealer.New("refresh-token", gc.Keys); err != nil {
		return nil, err
	}
	rp.now = cfg.Now
	if rp.now == nil {
		rp.now = gc.Now
	}
	rp.log = cfg.Logger
	if rp.log == nil {
		rp.log = gc.Logger
	}
	rp.client = cfg.HTTPClient
	if rp.client == nil {
		rp.client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	rp.secure = !gc.InsecureCookies
	rp.stateCookie = "__Host-sessionfence-login"
	if gc.InsecureCookies {
		rp.stateCookie = "sessionfence-login"
	}
	for _, o := range cfg.Origins {
		origin, ok := originOf(o)
		if !ok || origin != strings.TrimSuffix(o, "/") {
			return nil, invalid("Origins entry %q is not an origin (scheme://host[:port])", o)
		}
		rp.origins[origin] = true
	}

	// Validate every provider before discovering any, so that a typo is
	// reported without waiting for the network.
	pcs := make([]ProviderConfig, len(cfg.Providers))
	for i, pc := range cfg.Providers {
		if pc, err = validateProvider(pc, cfg.Refresh, gc); err != nil {
			return nil, fmt.Errorf("%w (provider %d)", err, i)
		}
		if rp.byName[pc.Name] != nil || rp.byIssuer[pc.Issuer] != nil {
			return nil, invalid("provider %q (%s) is configured twice", pc.Name, pc.Issuer)
		}
		rp.byName[pc.Name], rp.byIssuer[pc.Issuer] = &provider{}, &provider{} // placeholders for the duplicate check
		pcs[i] = pc
		origin, _ := originOf(pc.RedirectURL)
		rp.origins[origin] = true
	}
	for _, pc := range pcs {
		p, err := rp.discover(ctx, pc)
		if err != nil {
			return nil, err
		}
		rp.providers = append(rp.providers, p)
		rp.byName[pc.Name], rp.byIssuer[pc.Issuer] = p, p
	}
	return rp, nil
}

// validateProvider checks one provider's static configuration and fills
// its defaults.
func validateProvider(pc ProviderConfig, mode RefreshMode, gc middleware.Config) (ProviderConfig, error) {
	iu, err := url.Parse(pc.Issuer)
	if pc.Issuer == "" || err != nil || iu.Host == "" || (iu.Scheme != "https" && iu.Scheme != "http") {
		return pc, invalid("Issuer %q is not an absolute http(s) URL", pc.Issuer)
	}
	if iu.Scheme == "http" && !gc.InsecureCookies {
		// A plain-HTTP issuer lets anyone on the path swap the signing
		// keys; allow it only in the loopback development mode.
		return pc, invalid("Issuer %q uses http; only allowed with Guard.InsecureCookies (development)", pc.Issuer)
	}
	if pc.ClientID == "" {
		return pc, invalid("ClientID is empty for %s", pc.Issuer)
	}
	ru, err := url.Parse(pc.RedirectURL)
	if err != nil || !ru.IsAbs() || ru.Host == "" || ru.Fragment != "" || (ru.Scheme != "https" && ru.Scheme != "http") {
		return pc, invalid("RedirectURL %q is not an absolute http(s) URL without fragment", pc.RedirectURL)
	}
	if ru.Scheme == "http" && !gc.InsecureCookies {
		return pc, invalid("RedirectURL %q uses http; the session cookie is Secure, so the callback must be https (or set Guard.InsecureCookies for development)", pc.RedirectURL)
	}
	if pc.PostLogoutRedirectURL != "" {
		pu, err := url.Parse(pc.PostLogoutRedirectURL)
		if err != nil || !pu.IsAbs() || pu.Host == "" {
			return pc, invalid("PostLogoutRedirectURL %q is not an absolute URL", pc.PostLogoutRedirectURL)
		}
	}
	if pc.Name == "" {
		pc.Name = iu.Host
	}
	if !validName(pc.Name) {
		return pc, invalid("provider Name %q: use letters, digits, '.', ':', '-' and '_' only (at most 64)", pc.Name)
	}
	for k := range pc.AuthParams {
		if slices.Contains(reservedParams, k) {
			return pc, invalid("AuthParams may not set %q; the RP controls it (use a LoginOption for prompt, max_age, acr_values)", k)
		}
	}
	if len(pc.Scopes) == 0 {
		pc.Scopes = []string{gooidc.ScopeOpenID, "profile", "email"}
		if mode == RefreshServerSide {
			pc.Scopes = append(pc.Scopes, gooidc.ScopeOfflineAccess)
		}
	} else {
		pc.Scopes = slices.Clone(pc.Scopes)
	}
	if !slices.Contains(pc.Scopes, gooidc.ScopeOpenID) {
		pc.Scopes = append([]string{gooidc.ScopeOpenID}, pc.Scopes...)
	}
	if len(pc.MFAACRValues) == 0 {
		pc.MFAACRValues = slices.Clone(gc.MFA.ACR)
	}
	for _, v := range pc.MFAACRValues {
		if !validACR(v) {
			return pc, invalid("MFAACRValues entry %q is not a valid acr value", v)
		}
	}
	return pc, nil
}

// discover fetches the provider's metadata and builds its verifier.
func (rp *RP) discover(ctx context.Context, pc ProviderConfig) (*provider, error) {
	op, err := gooidc.NewProvider(gooidc.ClientContext(ctx, rp.client), pc.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sessionfence/oidc: discovery of %s: %w", pc.Issuer, err)
	}
	var meta discovery
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("sessionfence/oidc: discovery of %s: %w", pc.Issuer, err)
	}
	if meta.JWKSURL == "" {
		return nil, fmt.Errorf("sessionfence/oidc: discovery of %s: no jwks_uri", pc.Issuer)
	}
	// ID tokens: the algorithms the provider says it uses, minus "none"
	// and the HMAC family; RS256 (mandatory to implement) when it says
	// nothing usable.
	var algs []string
	for _, a := range meta.Algorithms {
		if slices.Contains(asymmetricAlgs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{"RS256"}
	}
	ks := newKeySet(meta.JWKSURL, rp.client, rp.now, algs)
	return &provider{
		cfg: pc,
		oauth: oauth2.Config{
			ClientID: pc.ClientID, ClientSecret: pc.ClientSecret, Endpoint: op.Endpoint(),
			RedirectURL: pc.RedirectURL, Scopes: pc.Scopes,
		},
		verifier: gooidc.NewVerifier(pc.Issuer, ks, &gooidc.Config{
			ClientID: pc.ClientID, SupportedSigningAlgs: algs, Now: rp.now,
		}),
		keys:       ks,
		mfaACR:     pc.MFAACRValues,
		endSession: meta.EndSession,
		revocation: meta.Revocation,
		issParam:   meta.IssParameter,
	}, nil
}

// Guard returns the guard the RP built. Use it with the adapters
// (nethttp.Middleware, ginadapter.Middleware) and the admin service.
func (rp *RP) Guard() *middleware.Guard { return rp.guard }

// Providers returns the names of the configured providers, the default
// first.
func (rp *RP) Providers() []string {
	out := make([]string, len(rp.providers))
	for i, p := range rp.providers {
		out[i] = p.cfg.Name
	}
	return out
}

// clientContext returns ctx carrying the RP's HTTP client for go-oidc and
// x/oauth2. It is built per call and never stored.
func (rp *RP) clientContext(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, rp.client)
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

// validACR accepts an acr value as OpenID Connect allows it in the
// space-separated acr_values parameter: printable ASCII without space,
// quote or backslash (which would break the RFC 9470 challenge), at most
// 256 bytes.
func validACR(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// originOf returns scheme://host[:port] of an absolute URL.
func originOf(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), true
}

// joseAlgs converts names to go-jose's type.
func joseAlgs(names []string) []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(names))
	for i, n := range names {
		out[i] = jose.SignatureAlgorithm(n)
	}
	return out
}
