package oidc

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// The checks a token can fail, as recorded in [TokenError.Check].
const (
	CheckSize      = "size"      // larger than the accepted maximum
	CheckSignature = "signature" // malformed JWS, disallowed alg (none, HS*), or no published key verifies it
	CheckType      = "typ"       // header typ not accepted (bearer tokens)
	CheckClaims    = "claims"    // claims not JSON, or a claim of the wrong type
	CheckIssuer    = "iss"       // issuer differs from the provider's
	CheckAudience  = "aud"       // our client id (ID token) or API audience (bearer) is not in aud
	CheckAZP       = "azp"       // authorized party is another client
	CheckExpiry    = "exp"       // missing or passed
	CheckNotBefore = "nbf"       // not yet valid
	CheckIssuedAt  = "iat"       // missing, or in the future
	CheckMaxAge    = "max_age"   // bearer token older than BearerConfig.MaxAge
	CheckSubject   = "sub"       // missing, or (refresh) not the session's subject
	CheckNonce     = "nonce"     // ID token nonce differs from the login's
	CheckAtHash    = "at_hash"   // at_hash does not match the access token
	CheckTenant    = "tenant"    // the configured tenant claim is missing
	CheckVerifier  = "go-oidc"   // go-oidc's own verification refused the token
	CheckSession   = "sid"       // (refresh) the IdP session id changed
	kindIDToken    = "id_token"  // TokenError.Kind of ID tokens
	kindAccess     = "access_token"
)

// TokenError is a refused token: which kind ("id_token" or
// "access_token"), which check failed (one of the Check constants), and
// the cause. errors.Is matches [ErrIDToken] for ID tokens and
// [middleware.ErrInvalidToken] for access tokens, so the core answers the
// latter with RFC 6750 invalid_token.
type TokenError struct {
	Kind  string
	Check string
	Err   error
}

// Error describes the refusal for logs.
func (e *TokenError) Error() string {
	if e.Err == nil {
		return "sessionfence/oidc: " + e.Kind + " refused: " + e.Check
	}
	return "sessionfence/oidc: " + e.Kind + " refused: " + e.Check + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// Is matches the sentinel of the token's kind.
func (e *TokenError) Is(target error) bool {
	switch e.Kind {
	case kindIDToken:
		return target == ErrIDToken
	case kindAccess:
		return target == middleware.ErrInvalidToken
	}
	return false
}

// ErrTokenTooOld is the cause of a bearer token refused because its iat is
// older than BearerConfig.MaxAge, whatever its exp says.
var ErrTokenTooOld = errors.New("sessionfence/oidc: bearer token older than the maximum age")

// numericDate is a JWT NumericDate: seconds since the epoch, possibly
// fractional.
type numericDate struct{ t time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("NumericDate: %w", err)
	}
	if math.IsNaN(f) || f < 0 || f > 1<<40 {
		return errors.New("NumericDate out of range")
	}
	sec, frac := math.Modf(f)
	d.t = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

func (d *numericDate) time() time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.t
}

// audience is aud: a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// stringList is amr: an array of strings; a lone string is tolerated.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = stringList{s}
		return nil
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*l = v
	return nil
}

// jwtClaims are the claims the RP reads from ID tokens and access tokens.
type jwtClaims struct {
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	Audience  audience     `json:"aud"`
	Expiry    *numericDate `json:"exp"`
	NotBefore *numericDate `json:"nbf"`
	IssuedAt  *numericDate `json:"iat"`
	AuthTime  *numericDate `json:"auth_time"`
	Nonce     string       `json:"nonce"`
	AtHash    string       `json:"at_hash"`
	AZP       string       `json:"azp"`
	ACR       string       `json:"acr"`
	AMR       stringList   `json:"amr"`
	SID       string       `json:"sid"`
}

// tenantOf reads the string claim name from payload. ok is false when it
// is absent, empty or not a string.
func tenantOf(payload []byte, name string) (string, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return "", false
	}
	raw, ok := m[name]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || s == "" {
		return "", false
	}
	return s, true
}

// maxFutureIAT is how far in the future an ID token's iat may be (the
// provider's clock running ahead). A token stamped later than that could
// pass fences bumped after the login, so it is refused.
const maxFutureIAT = 5 * time.Minute

// maxTokenSize bounds tokens before any parsing.
const maxTokenSize = 16 << 10

// idToken is a verified ID token.
type idToken struct {
	raw     string
	payload []byte
	claims  jwtClaims
	tenant  string
}

// verifyIDToken verifies an ID token from p's token endpoint: signature
// (published key, asymmetric algorithm), iss, aud (our client id), azp,
// exp, iat, nonce (when nonce is not empty: login, not refresh), at_hash
// (when present), sub, and the tenant claim when configured. It then runs
// go-oidc's verifier as well, as a second opinion and for at_hash.
//
// The RP does its own checks first so that the failing check is known: go-oidc's
// errors are plain strings.
func (rp *RP) verifyIDToken(ctx context.Context, p *provider, raw, nonce, accessToken string) (*idToken, error) {
	fail := func(check string, err error) error { return &TokenError{Kind: kindIDToken, Check: check, Err: err} }
	if len(raw) > maxTokenSize {
		return nil, fail(CheckSize, nil)
	}
	payload, err := p.keys.VerifySignature(ctx, raw)
	if err != nil {
		return nil, fail(CheckSignature, err)
	}
	t := &idToken{raw: raw, payload: payload}
	c := &t.claims
	if err := json.Unmarshal(payload, c); err != nil {
		return nil, fail(CheckClaims, err)
	}
	now := rp.now()
	switch {
	case c.Issuer != p.cfg.Issuer:
		return nil, fail(CheckIssuer, fmt.Errorf("got %q", c.Issuer))
	case !slices.Contains(c.Audience, p.cfg.ClientID):
		return nil, fail(CheckAudience, fmt.Errorf("got %q", []string(c.Audience)))
	case c.AZP != "" && c.AZP != p.cfg.ClientID, c.AZP == "" && len(c.Audience) > 1:
		// OpenID Connect Core 3.1.3.7: with several audiences, azp names
		// the client the token was issued to; it must be us.
		return nil, fail(CheckAZP, fmt.Errorf("got %q", c.AZP))
	case c.Expiry == nil || !now.Before(c.Expiry.time()):
		return nil, fail(CheckExpiry, nil)
	case c.NotBefore != nil && now.Add(rp.guard.Config().Skew).Before(c.NotBefore.time()):
		return nil, fail(CheckNotBefore, nil)
	case c.IssuedAt == nil || c.IssuedAt.time().After(now.Add(maxFutureIAT)):
		return nil, fail(CheckIssuedAt, nil)
	case c.Subject == "":
		return nil, fail(CheckSubject, errors.New("no sub"))
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1 {
		return nil, fail(CheckNonce, nil)
	}
	if name := p.cfg.TenantClaim; name != "" {
		var ok bool
		if t.tenant, ok = tenantOf(payload, name); !ok {
			// Fail closed: a session without its tenant would escape the
			// tenant's fence.
			return nil, fail(CheckTenant, fmt.Errorf("claim %q missing or not a string", name))
		}
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fail(CheckVerifier, errors.New(err.Error())) // go-oidc's types stay out of our errors
	}
	if c.AtHash != "" && accessToken != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return nil, fail(CheckAtHash, errors.New(err.Error()))
		}
	}
	return t, nil
}
