package backchannel

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

	jose "github.com/go-jose/go-jose/v4"

	"github.com/sessionfence/sessionfence/middleware"
)

// Defaults of [Config] and [Issuer].
const (
	// DefaultMaxAge is the default freshness window for iat.
	DefaultMaxAge = 10 * time.Minute
	// DefaultMaxBodyBytes bounds the request body by default. A logout
	// token is well under 4 KiB in practice.
	DefaultMaxBodyBytes = 16 << 10
	// DefaultKeyRefreshInterval is the default minimum time between two
	// JWKS refreshes triggered by an unknown kid, per issuer.
	DefaultKeyRefreshInterval = 30 * time.Second
	// DefaultKeyFetchTimeout bounds discovery plus the JWKS download.
	DefaultKeyFetchTimeout = time.Second
	// DefaultTimeout bounds the handling of one request, so the provider
	// gets its answer well within two seconds.
	DefaultTimeout = 1500 * time.Millisecond
	// DefaultReason is stored as the fence's reason.
	DefaultReason = "signed out by the identity provider"
)

// DefaultAlgorithms returns the signature allow-list used when
// [Issuer.Algorithms] is empty: every asymmetric algorithm go-jose
// verifies (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA). "none" is
// never allowed and HMAC (HS256…) only on request. Each call returns a new
// slice.
func DefaultAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// Config configures a [Receiver]. Guard and Issuers are required; every
// other field has a safe default, stated next to it. The zero value of
// each switch is the strict behaviour.
type Config struct {
	// Guard supplies the store (which must implement [middleware.Replay]),
	// the IdP-session tombstone lifetime (Config().IdPSessionTTL), and the
	// defaults of Skew, Now and Logger. Required.
	Guard *middleware.Guard
	// Issuers are the providers whose logout tokens are accepted, matched
	// on the exact iss value. At least one; no duplicates.
	Issuers []Issuer
	// Policy is what the next login of a logged-out session or user must
	// prove: [middleware.PolicyFreshLogin] (the default, also when left
	// zero) or [middleware.PolicyMFA]. It stops a provider that kept its
	// own SSO session from silently handing the same person a new session.
	Policy middleware.Policy
	// InsecureAllowSilentLogin stores [middleware.PolicyNone] instead, so
	// the login after a back-channel logout may be a silent SSO bounce.
	InsecureAllowSilentLogin bool
	// EscalateToSubject also revokes the whole user (issuer + sub) when a
	// token names a sid, so one IdP session's logout signs the person out
	// everywhere. A token without sub can only revoke its sid.
	EscalateToSubject bool
	// SessionRequired refuses tokens without sid; register
	// backchannel_logout_session_required=true to match (see
	// [Receiver.Registration]). Default false: a sub-only token revokes
	// every session of that user at that issuer.
	SessionRequired bool
	// StrictType accepts only tokens whose header typ is logout+jwt (or
	// application/logout+jwt). By default typ may also be absent or JWT,
	// which many providers still send.
	StrictType bool
	// InsecureAllowMissingExp accepts tokens without exp, for providers
	// that predate the final specification. Such tokens are bounded by
	// iat + MaxAge instead. Default false: exp is required.
	InsecureAllowMissingExp bool
	// Skew is the clock difference tolerated between the provider and us,
	// for iat in the future and exp just passed. Default: the guard's
	// Skew (5 s unless configured).
	Skew time.Duration
	// MaxAge is the freshness window: a token issued more than MaxAge
	// (plus Skew) ago is refused whatever its exp. Default
	// [DefaultMaxAge].
	MaxAge time.Duration
	// MaxBodyBytes bounds the request body. Default [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// KeyRefreshInterval is the minimum time between two JWKS refreshes
	// triggered by an unknown kid, per issuer, and between two retries of
	// a failed first load. Default [DefaultKeyRefreshInterval].
	KeyRefreshInterval time.Duration
	// KeyFetchTimeout bounds discovery plus the JWKS download. Default
	// [DefaultKeyFetchTimeout].
	KeyFetchTimeout time.Duration
	// Timeout bounds the handling of one request (key fetch and store
	// writes included). Default [DefaultTimeout].
	Timeout time.Duration
	// HTTPClient fetches discovery documents and key sets. Default
	// http.DefaultClient. It is not modified; response bodies are read
	// through a size limit.
	HTTPClient *http.Client
	// Reason is stored on the fences this receiver bumps. Default
	// [DefaultReason].
	Reason string
	// OnLogout, when set, is called after a logout was applied (never for
	// a replay or a refused token), synchronously and within Timeout, for
	// applications that keep their own server-side state. The fences
	// already refuse the sessions; the hook cannot undo or fail the
	// logout. It may very rarely be called twice for one token (two
	// concurrent deliveries of it, or a retry after a failed store write),
	// so it must be idempotent.
	OnLogout func(ctx context.Context, e Event)
	// Logger receives one record per request. Default: the guard's logger.
	Logger *slog.Logger
	// Now is the clock that judges iat and exp. Default: the guard's.
	Now func() time.Time
}

// Issuer is one provider whose logout tokens are accepted.
type Issuer struct {
	// Issuer is the exact iss value (and discovery base URL). Required.
	Issuer string
	// ClientID is our client_id at this provider, which aud must contain.
	// Required.
	ClientID string
	// JWKSURL skips discovery. Default: the jwks_uri of
	// Issuer + "/.well-known/openid-configuration", whose issuer member
	// must equal Issuer.
	JWKSURL string
	// Algorithms is the allow-list of JWS algorithms. Default
	// [DefaultAlgorithms](). "none" is refused; HS256, HS384 and HS512 are
	// allowed only if listed here and ClientSecret is set.
	Algorithms []string
	// ClientSecret verifies HMAC-signed tokens (OpenID Connect Core
	// §10.1). Used only for HS* algorithms listed in Algorithms; it must
	// be at least as long as the hash (32, 48, 64 bytes).
	ClientSecret string
}

// issuer is a validated Issuer with its key set.
type issuer struct {
	name     string
	clientID string
	algs     []jose.SignatureAlgorithm
	secret   []byte
	keys     *keySet
}

func (is *issuer) allows(alg jose.SignatureAlgorithm) bool { return slices.Contains(is.algs, alg) }

// hmacSize is the minimum secret length for each HMAC algorithm (go-jose
// refuses shorter keys, RFC 7518 §3.2 requires them).
var hmacSize = map[jose.SignatureAlgorithm]int{jose.HS256: 32, jose.HS384: 48, jose.HS512: 64}

// asymmetric are the algorithms verified with keys from the JWKS.
var asymmetric = map[jose.SignatureAlgorithm]bool{
	jose.RS256: true, jose.RS384: true, jose.RS512: true,
	jose.PS256: true, jose.PS384: true, jose.PS512: true,
	jose.ES256: true, jose.ES384: true, jose.ES512: true,
	jose.EdDSA: true,
}

// New validates cfg and returns a Receiver. It makes no network call:
// keys are fetched when the first token of an issuer arrives. It fails
// when the guard's store does not implement [middleware.Replay], since
// replays could not be refused across instances.
func New(cfg Config) (*Receiver, error) {
	if cfg.Guard == nil {
		return nil, errors.New("backchannel: Config.Guard is nil")
	}
	store := cfg.Guard.Config().Store
	replay, ok := store.(middleware.Replay)
	if !ok {
		return nil, fmt.Errorf("backchannel: the guard's store (%T) does not implement middleware.Replay, "+
			"so logout-token replays could not be refused; use a store that does (memstore, valkeystore)", store)
	}
	gc := cfg.Guard.Config()
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("backchannel: Config.Issuers is empty")
	}
	if cfg.Skew < 0 || cfg.MaxAge < 0 || cfg.MaxBodyBytes < 0 || cfg.KeyRefreshInterval < 0 ||
		cfg.KeyFetchTimeout < 0 || cfg.Timeout < 0 {
		return nil, errors.New("backchannel: negative durations and sizes are not allowed in Config")
	}
	switch {
	case cfg.InsecureAllowSilentLogin && cfg.Policy != middleware.PolicyNone:
		return nil, errors.New("backchannel: InsecureAllowSilentLogin contradicts Config.Policy")
	case cfg.InsecureAllowSilentLogin:
		// PolicyNone, explicitly asked for.
	case cfg.Policy == middleware.PolicyNone:
		cfg.Policy = middleware.PolicyFreshLogin
	case cfg.Policy > middleware.PolicyMFA:
		return nil, fmt.Errorf("backchannel: unknown Config.Policy %d", cfg.Policy)
	}
	if cfg.Skew == 0 {
		cfg.Skew = gc.Skew
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.KeyRefreshInterval == 0 {
		cfg.KeyRefreshInterval = DefaultKeyRefreshInterval
	}
	if cfg.KeyFetchTimeout == 0 {
		cfg.KeyFetchTimeout = DefaultKeyFetchTimeout
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Reason == "" {
		cfg.Reason = DefaultReason
	}
	if cfg.Logger == nil {
		cfg.Logger = gc.Logger
	}
	if cfg.Now == nil {
		cfg.Now = gc.Now
	}
	r := &Receiver{
		cfg: cfg, store: store, replay: replay, writer: cfg.Guard.Writer(),
		log: cfg.Logger, now: cfg.Now, issuers: make(map[string]*issuer, len(cfg.Issuers)),
	}
	client := limitedClient(cfg.HTTPClient, maxDocumentBytes)
	for _, ic := range cfg.Issuers {
		is, err := newIssuer(ic)
		if err != nil {
			return nil, err
		}
		if _, dup := r.issuers[is.name]; dup {
			return nil, fmt.Errorf("backchannel: issuer %q configured twice", is.name)
		}
		if !is.onlyHMAC() {
			is.keys = newKeySet(is.name, ic.JWKSURL, client, cfg.KeyFetchTimeout, cfg.KeyRefreshInterval, cfg.Now, cfg.Logger)
		}
		r.issuers[is.name] = is
		for _, a := range is.algs {
			if !slices.Contains(r.algs, a) {
				r.algs = append(r.algs, a)
			}
		}
	}
	return r, nil
}

func newIssuer(ic Issuer) (*issuer, error) {
	if ic.Issuer == "" || ic.ClientID == "" {
		return nil, errors.New("backchannel: every Issuer needs Issuer and ClientID")
	}
	if u, err := url.Parse(ic.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("backchannel: issuer %q is not an http(s) URL", ic.Issuer)
	}
	if ic.JWKSURL != "" {
		if u, err := url.Parse(ic.JWKSURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("backchannel: JWKSURL %q of issuer %q is not an http(s) URL", ic.JWKSURL, ic.Issuer)
		}
	}
	names := ic.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms()
	}
	is := &issuer{name: ic.Issuer, clientID: ic.ClientID}
	for _, n := range names {
		a := jose.SignatureAlgorithm(n)
		switch {
		case asymmetric[a]:
		case hmacSize[a] > 0:
			if len(ic.ClientSecret) < hmacSize[a] {
				return nil, fmt.Errorf("backchannel: issuer %q allows %s, which needs a ClientSecret of at least %d bytes",
					ic.Issuer, a, hmacSize[a])
			}
			is.secret = []byte(ic.ClientSecret)
		case strings.EqualFold(n, "none"):
			return nil, fmt.Errorf("backchannel: issuer %q: alg none is never allowed (logout tokens must be signed)", ic.Issuer)
		default:
			return nil, fmt.Errorf("backchannel: issuer %q: unsupported algorithm %q", ic.Issuer, n)
		}
		if !slices.Contains(is.algs, a) {
			is.algs = append(is.algs, a)
		}
	}
	return is, nil
}

// onlyHMAC reports whether no algorithm needs the provider's published
// keys, so no key set (and no discovery) is needed.
func (is *issuer) onlyHMAC() bool {
	for _, a := range is.algs {
		if asymmetric[a] {
			return false
		}
	}
	return true
}
