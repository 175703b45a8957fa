package ginadapter

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/sessionfence/sessionfence/middleware"
)

// TokenContextKey is the gin context key under which the verified bearer
// token claims are stored.
const TokenContextKey = "sessionfence.token"

// BearerOption adjusts [Bearer].
type BearerOption func(*bearerOptions)

type bearerOptions struct {
	realm    string
	optional bool
}

// BearerRealm sets the realm of WWW-Authenticate challenges. Default: none.
func BearerRealm(realm string) BearerOption { return func(o *bearerOptions) { o.realm = realm } }

// BearerOptional lets requests without an Authorization header through
// unauthenticated. Invalid, revoked and expired tokens are still refused.
func BearerOptional() BearerOption { return func(o *bearerOptions) { o.optional = true } }

// Bearer returns a gin handler for APIs and mobile apps: v verifies the
// "Authorization: Bearer" token (see the oidc package's BearerVerifier)
// and g judges it against the fences by time. The claims are available
// through [Token] and, on c.Request's context,
// [middleware.TokenFromContext].
//
// Every refusal aborts the chain with the status and WWW-Authenticate
// challenge of [middleware.Guard.BearerChallenge] (RFC 6750 / RFC 9470),
// Cache-Control: no-store and a JSON body {"error": <stable code>, ...}; a
// store outage is 503 with Retry-After (fail closed).
func Bearer(g *middleware.Guard, v middleware.TokenVerifier, opts ...BearerOption) gin.HandlerFunc {
	var o bearerOptions
	for _, fn := range opts {
		fn(&o)
	}
	return func(c *gin.Context) {
		d := g.AuthenticateBearer(c.Request.Context(), c.Request, v)
		d.SetHeaders(c.Writer.Header())
		if d.Kind == middleware.DecisionNoSession && o.optional {
			c.Next()
			return
		}
		if !d.Allowed() {
			status, challenge := g.BearerChallenge(d, o.realm)
			if challenge != "" {
				c.Header("WWW-Authenticate", challenge)
			}
			ref := g.Refusal(d, nil)
			if status == http.StatusServiceUnavailable {
				c.Header("Retry-After", strconv.Itoa(ref.RetryAfter))
			}
			c.AbortWithStatusJSON(status, ref.Body)
			return
		}
		c.Set(TokenContextKey, d.Token)
		c.Request = c.Request.WithContext(middleware.NewContext(c.Request.Context(), d))
		c.Next()
	}
}

// Token returns the verified bearer token claims of c; ok is false when
// the Bearer middleware did not run or let the request through without a
// token. It never panics.
func Token(c *gin.Context) (*middleware.TokenClaims, bool) {
	v, ok := c.Get(TokenContextKey)
	if !ok {
		return nil, false
	}
	t, ok := v.(*middleware.TokenClaims)
	return t, ok && t != nil
}
