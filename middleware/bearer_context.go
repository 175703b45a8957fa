package middleware

import "context"

// TokenFromContext returns the verified bearer token claims of the request,
// put there by a bearer middleware (adapters' Bearer) through
// [NewContext]. ok is false when no bearer middleware ran or the request
// was not authenticated by a bearer token; it never panics.
func TokenFromContext(ctx context.Context) (*TokenClaims, bool) {
	d, ok := ctx.Value(decisionKey{}).(*Decision)
	if !ok || d == nil || d.Token == nil {
		return nil, false
	}
	return d.Token, true
}
