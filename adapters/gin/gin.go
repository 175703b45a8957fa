// Package ginadapter adapts a [middleware.Guard] to gin with a native
// gin.HandlerFunc. It is declared as package ginadapter so that it does not
// collide with the caller's gin import.
//
//	guard, _ := middleware.New(middleware.Config{Store: memstore.New(), Keys: keys})
//	r := gin.New()
//	r.Use(ginadapter.Middleware(guard))
//	r.GET("/me", func(c *gin.Context) { s, _ := ginadapter.Session(c); c.JSON(200, s.Subject) })
//
// Every refusal aborts the chain (c.Abort…), so a refused request never
// reaches later handlers.
package ginadapter

import (
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/sessionfence/sessionfence/middleware"
)

// ContextKey is the gin context key under which the session is stored.
const ContextKey = "sessionfence.session"

// Option adjusts [Middleware].
type Option func(*options)

type options struct {
	optional bool
}

// Optional lets requests without a session cookie through unauthenticated.
// Invalid, revoked and expired sessions are still refused.
func Optional() Option { return func(o *options) { o.optional = true } }

// Middleware returns a gin handler enforcing g. The session is available
// through [Session] and, on c.Request's context, [middleware.FromContext].
func Middleware(g *middleware.Guard, opts ...Option) gin.HandlerFunc {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	name := g.CookieName()
	return func(c *gin.Context) {
		value := ""
		if ck, err := c.Request.Cookie(name); err == nil {
			value = ck.Value
		}
		d := g.AuthenticateRequest(c.Request, value)
		d.SetHeaders(c.Writer.Header()) // no-store, the cookie, announcement headers
		if d.Kind == middleware.DecisionNoSession && o.optional {
			c.Next()
			return
		}
		if !d.Allowed() {
			ref := g.Refusal(d, c.Request)
			if ref.RetryAfter > 0 {
				c.Header("Retry-After", strconv.Itoa(ref.RetryAfter))
			}
			if ref.Location != "" {
				c.Header("Location", ref.Location)
				c.AbortWithStatus(ref.Status)
				return
			}
			c.AbortWithStatusJSON(ref.Status, ref.Body)
			return
		}
		c.Set(ContextKey, d.Session)
		c.Request = c.Request.WithContext(middleware.NewContext(c.Request.Context(), d))
		c.Next()
	}
}

// Session returns the authenticated session of c; ok is false when the
// middleware did not run or let the request through without a session. It
// never panics.
func Session(c *gin.Context) (*middleware.Session, bool) {
	v, ok := c.Get(ContextKey)
	if !ok {
		return nil, false
	}
	s, ok := v.(*middleware.Session)
	return s, ok && s != nil
}
