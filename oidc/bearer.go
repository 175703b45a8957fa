package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/sessionfence/sessionfence/middleware"
)

// BearerConfig configures a [BearerVerifier] for JWT access tokens (RFC
// 9068) sent by mobile apps and API clients. Issuers and Audience are
// required; every other field has a safe default, stated next to it.
type BearerConfig struct {
	// Issuers whose access tokens are accepted, each discovered through
	// its /.well-known/openid-configuration (https only). Required.
	Issuers []string
	// Audience is this API's identifier; it must appear in aud. Required.
	Audience string
	// Algorithms accepted in the alg header. Default: RS256, RS384, RS512,
	// PS256, PS384, PS512, ES256, ES384, ES512, EdDSA. "none" is never
	// accepted; HS256/HS384/HS512 only when listed here and
	// InsecureHMACSecret is set.
	Algorithms []string
	// InsecureHMACSecret is the shared secret (at least 32 bytes) that
	// verifies HS* tokens. Any holder of it can mint tokens, so every
	// service sharing it is as trusted as the issuer. Default: none.
	InsecureHMACSecret []byte
	// TokenTypes are the accepted values of the typ header, compared
	// case-insensitively. Default "at+jwt", "application/at+jwt" (RFC
	// 9068) and "JWT" (common before RFC 9068). Include "" to accept
	// tokens without typ.
	TokenTypes []string
	// MaxAge is the oldest token accepted, measured from iat, whatever
	// exp says: it bounds how long a token survives a revocation that
	// the fences cannot see. Default 10 minutes.
	MaxAge time.Duration
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 5
	// seconds.
	Leeway time.Duration
	// TenantClaim names the claim holding the tenant; tokens without it
	// are refused. Empty: tokens have no tenant.
	TenantClaim string
	// ClientIDs, when set, restricts accepted tokens to those issued to
	// these clients (client_id, or azp). Default: any client.
	ClientIDs []string
	// HTTPClient fetches discovery documents and keys. Default: a client
	// with a 10 second timeout.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// InsecureAllowHTTPIssuer accepts plain-http issuers on loopback
	// addresses (127.0.0.0/8, ::1, localhost), for a development provider.
	// Keys fetched over plain HTTP can be replaced by anyone on the path,
	// so never set it for a provider reached over a network. Default off.
	InsecureAllowHTTPIssuer bool
}

// DefaultBearerMaxAge is the default of BearerConfig.MaxAge.
const DefaultBearerMaxAge = 10 * time.Minute

// BearerVerifier verifies JWT access tokens and implements
// [middleware.TokenVerifier]: use it with [middleware.Guard.AuthenticateBearer]
// or the adapters' Bearer middleware, which then judge the token against
// the fences by time and answer refusals with RFC 6750 / RFC 9470
// challenges. It is safe for concurrent use; build it with
// [NewBearerVerifier].
type BearerVerifier struct {
	cfg     BearerConfig
	algs    []jose.SignatureAlgorithm
	types   []string
	issuers map[string]*keySet
	now     func() time.Time
}

// NewBearerVerifier validates cfg and discovers every issuer's key set
// location (one HTTP round trip each, bounded by ctx). Keys are fetched on
// first use and cached.
func NewBearerVerifier(ctx context.Context, cfg BearerConfig) (*BearerVerifier, error) {
	if len(cfg.Issuers) == 0 {
		return nil, invalid("BearerConfig.Issuers is empty")
	}
	if cfg.Audience == "" {
		return nil, invalid("BearerConfig.Audience is empty; without it a token minted for any other API would be accepted")
	}
	if cfg.MaxAge < 0 || cfg.Leeway < 0 {
		return nil, invalid("negative durations are not allowed in BearerConfig")
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultBearerMaxAge
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 5 * time.Second
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = asymmetricAlgs
	}
	hmacListed := false
	for _, a := range cfg.Algorithms {
		switch {
		case slices.Contains(asymmetricAlgs, a):
		case a == "HS256" || a == "HS384" || a == "HS512":
			hmacListed = true
		default:
			return nil, invalid("algorithm %q is not accepted for bearer tokens", a)
		}
	}
	if hmacListed && len(cfg.InsecureHMACSecret) < 32 {
		return nil, invalid("HS* algorithms need InsecureHMACSecret of at least 32 bytes")
	}
	if !hmacListed && cfg.InsecureHMACSecret != nil {
		return nil, invalid("InsecureHMACSecret is set but no HS* algorithm is listed in Algorithms")
	}
	if len(cfg.TokenTypes) == 0 {
		cfg.TokenTypes = []string{"at+jwt", "application/at+jwt", "JWT"}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &BearerVerifier{cfg: cfg, algs: joseAlgs(cfg.Algorithms), issuers: map[string]*keySet{}, now: cfg.Now}
	for _, t := range cfg.TokenTypes {
		v.types = append(v.types, strings.ToLower(t))
	}
	var asym []string
	for _, a := range cfg.Algorithms {
		if slices.Contains(asymmetricAlgs, a) {
			asym = append(asym, a)
		}
	}
	for _, iss := range cfg.Issuers {
		u, err := url.Parse(iss)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && cfg.InsecureAllowHTTPIssuer && loopbackHost(u.Hostname()))) {
			return nil, invalid("issuer %q is not an https URL (plain http only on loopback, with InsecureAllowHTTPIssuer)", iss)
		}
		op, err := gooidc.NewProvider(gooidc.ClientContext(ctx, cfg.HTTPClient), iss)
		if err != nil {
			return nil, fmt.Errorf("sessionfence/oidc: discovery of %s: %w", iss, err)
		}
		var meta discovery
		if err := op.Claims(&meta); err != nil || meta.JWKSURL == "" {
			return nil, fmt.Errorf("sessionfence/oidc: discovery of %s: no usable jwks_uri", iss)
		}
		v.issuers[iss] = newKeySet(meta.JWKSURL, cfg.HTTPClient, cfg.Now, asym)
	}
	return v, nil
}

// accessClaims adds the access-token claims to the common ones.
type accessClaims struct {
	jwtClaims
	ClientID string `json:"client_id"`
}

// VerifyToken implements [middleware.TokenVerifier]. It checks, in order:
// size, JWS structure and alg (never none; HS* only when configured), the
// typ header, the issuer (one of Issuers), the signature (a published key
// of that issuer), aud, client_id/azp (when ClientIDs is set), exp, nbf,
// iat (present, not in the future, and not older than MaxAge whatever exp
// says), sub, and the tenant claim (when configured). Every refusal is a
// *[TokenError] that matches [middleware.ErrInvalidToken]; a token older
// than MaxAge also matches [ErrTokenTooOld].
//
// Revocation is not its business: the guard judges the returned claims
// against the fences (iat and auth_time against each fence's time).
func (v *BearerVerifier) VerifyToken(ctx context.Context, raw string) (*middleware.TokenClaims, error) {
	fail := func(check string, err error) (*middleware.TokenClaims, error) {
		return nil, &TokenError{Kind: kindAccess, Check: check, Err: err}
	}
	if len(raw) > maxTokenSize {
		return fail(CheckSize, nil)
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		return fail(CheckSignature, err)
	}
	if len(jws.Signatures) != 1 {
		return fail(CheckSignature, errors.New("not exactly one signature"))
	}
	h := jws.Signatures[0].Header
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !slices.Contains(v.types, strings.ToLower(typ)) {
		return fail(CheckType, fmt.Errorf("typ %q", typ))
	}
	// The claims are decoded once, before the signature check, because
	// the issuer picks the keys. Nothing in them is trusted until the
	// signature over these very bytes has been verified just below.
	payload := jws.UnsafePayloadWithoutVerification()
	var c accessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return fail(CheckClaims, err)
	}
	ks := v.issuers[c.Issuer]
	if ks == nil {
		return fail(CheckIssuer, fmt.Errorf("issuer %q is not accepted", c.Issuer))
	}
	if strings.HasPrefix(h.Algorithm, "HS") {
		_, err = jws.Verify(v.cfg.InsecureHMACSecret)
	} else {
		_, err = ks.verify(ctx, jws)
	}
	if err != nil {
		return fail(CheckSignature, err)
	}
	now := v.now()
	lw := v.cfg.Leeway
	iat := c.IssuedAt.time()
	switch {
	case !slices.Contains(c.Audience, v.cfg.Audience):
		return fail(CheckAudience, fmt.Errorf("got %q", []string(c.Audience)))
	case len(v.cfg.ClientIDs) > 0 && !slices.Contains(v.cfg.ClientIDs, c.ClientID) && !slices.Contains(v.cfg.ClientIDs, c.AZP):
		return fail(CheckAZP, fmt.Errorf("client %q", c.ClientID))
	case c.Expiry == nil || !now.Before(c.Expiry.time().Add(lw)):
		return fail(CheckExpiry, nil)
	case c.NotBefore != nil && now.Add(lw).Before(c.NotBefore.time()):
		return fail(CheckNotBefore, nil)
	case iat.IsZero() || iat.After(now.Add(lw)):
		return fail(CheckIssuedAt, nil)
	case now.Sub(iat) > v.cfg.MaxAge:
		return fail(CheckMaxAge, ErrTokenTooOld)
	case c.Subject == "":
		return fail(CheckSubject, nil)
	}
	tc := &middleware.TokenClaims{
		Issuer: c.Issuer, Subject: c.Subject, IdPSession: c.SID, IssuedAt: iat,
		AuthTime: c.AuthTime.time(), ACR: c.ACR, AMR: []string(c.AMR),
	}
	if name := v.cfg.TenantClaim; name != "" {
		t, ok := tenantOf(payload, name)
		if !ok {
			// Fail closed: a token without its tenant would escape the
			// tenant's fence.
			return fail(CheckTenant, fmt.Errorf("claim %q missing or not a string", name))
		}
		tc.Tenant = t
	}
	return tc, nil
}

var _ middleware.TokenVerifier = (*BearerVerifier)(nil)

// loopbackHost reports whether host names this machine only.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
