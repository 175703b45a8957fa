package ginadapter

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// BackchannelHandler serves h, normally a *backchannel.Receiver, as a gin
// route, e.g.
//
//	r.POST("/backchannel-logout", ginadapter.BackchannelHandler(rcv))
//
// The receiver writes the whole response itself (status, Cache-Control:
// no-store, the JSON error); the chain is then aborted so no later handler
// writes to it. It takes an http.Handler so that this package does not
// depend on the backchannel package (and through it on go-oidc). Register
// it for every method if the provider might not POST: the receiver answers
// 405 with Allow: POST itself.
func BackchannelHandler(h http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		h.ServeHTTP(c.Writer, c.Request)
		c.Abort()
	}
}
