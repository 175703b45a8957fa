package ginadapter_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/sessionfence/sessionfence/adapters/gin"
	"github.com/sessionfence/sessionfence/internal/adminapitest"
	"github.com/sessionfence/sessionfence/middleware"
)

// The admin console (page and API) mounted under gin: the native
// middleware authenticates, gin.WrapH serves the console on one catch-all
// route.
func TestAdminAPIBehindGin(t *testing.T) {
	gin.SetMode(gin.TestMode)
	adminapitest.Run(t, func(g *middleware.Guard, console, probe http.Handler) http.Handler {
		r := gin.New()
		authed := r.Group("/", ginadapter.Middleware(g))
		authed.Any("/admin/*path", gin.WrapH(console))
		authed.GET("/app", gin.WrapH(probe))
		return r
	})
}
