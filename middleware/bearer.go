package middleware

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// TokenVerifier verifies a bearer token's signature and standard claims
// (issuer, audience, expiry, allowed algorithms, maximum age) and returns
// its claims for [Guard.CheckToken]. The oidc package provides one for
// JWT access tokens. Errors wrapping [ErrInvalidToken] are answered with
// RFC 6750 invalid_token.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, raw string) (*TokenClaims, error)
}

// ErrInvalidToken is wrapped by [TokenVerifier] implementations for every
// token they refuse (bad signature, wrong audience, expired, too old).
var ErrInvalidToken = errors.New("sessionfence: invalid bearer token")

// bearerToken extracts the token from an "Authorization: Bearer ..." header
// (RFC 6750 section 2.1); ok is false when there is none or it is malformed.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// AuthenticateBearer verifies the request's bearer token with v and checks
// it against the fences. A missing token is DecisionNoSession, a refused
// one DecisionInvalid with the verifier's error as Cause.
func (g *Guard) AuthenticateBearer(ctx context.Context, r *http.Request, v TokenVerifier) Decision {
	raw, ok := bearerToken(r)
	if !ok {
		return Decision{Kind: DecisionNoSession}
	}
	tc, err := v.VerifyToken(ctx, raw)
	if err != nil {
		d := Decision{Kind: DecisionInvalid, Cause: err}
		g.logRefusal(ctx, d)
		observeDecision(g.cfg.Observer, d)
		return d
	}
	d := g.CheckToken(ctx, tc)
	if !d.Allowed() {
		g.logRefusal(ctx, d)
	}
	observeDecision(g.cfg.Observer, d)
	return d
}

// BearerChallenge returns the status and WWW-Authenticate value for a
// refused bearer request:
//
//   - no token: 401, `Bearer realm="..."` (RFC 6750 section 3: no error code)
//   - invalid, revoked or expired: 401, `Bearer realm="...", error="invalid_token", error_description="..."`
//   - re-authentication needed: 401, RFC 9470
//     `Bearer error="insufficient_user_authentication", error_description="...", max_age="0"`
//     plus `acr_values="..."` when the MFA policy names ACR values
//   - store unavailable: 503 and no challenge.
func (g *Guard) BearerChallenge(d Decision, realm string) (status int, challenge string) {
	q := func(s string) string { return strconv.Quote(s) }
	prefix := "Bearer"
	if realm != "" {
		prefix += " realm=" + q(realm) + ","
	}
	switch d.Kind {
	case DecisionAllowed:
		return http.StatusOK, ""
	case DecisionStoreUnavailable:
		return http.StatusServiceUnavailable, ""
	case DecisionNoSession:
		return http.StatusUnauthorized, strings.TrimSuffix(prefix, ",")
	case DecisionReauthRequired:
		c := prefix + ` error="insufficient_user_authentication", error_description=` +
			q("A fresh authentication is required") + `, max_age="0"`
		if d.Policy == PolicyMFA && len(g.cfg.MFA.ACR) > 0 {
			c += ", acr_values=" + q(strings.Join(g.cfg.MFA.ACR, " "))
		}
		return http.StatusUnauthorized, c
	}
	desc := "The access token is invalid"
	switch d.Kind {
	case DecisionRevoked:
		desc = "The access token was revoked"
	case DecisionSessionExpired, DecisionAccessExpired:
		desc = "The access token expired"
	}
	return http.StatusUnauthorized, prefix + ` error="invalid_token", error_description=` + q(desc)
}
