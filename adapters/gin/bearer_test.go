package ginadapter_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/sessionfence/sessionfence/adapters/gin"
	"github.com/sessionfence/sessionfence/internal/adaptertest"
	"github.com/sessionfence/sessionfence/middleware"
)

func TestSharedBearerTable(t *testing.T) {
	gin.SetMode(gin.TestMode)
	adaptertest.RunBearer(t, func(g *middleware.Guard, v middleware.TokenVerifier, next http.Handler) http.Handler {
		r := gin.New()
		r.Use(ginadapter.Bearer(g, v, ginadapter.BearerRealm("api")))
		r.GET("/api/items", func(c *gin.Context) {
			if _, ok := ginadapter.Token(c); !ok {
				c.String(http.StatusInternalServerError, "no token on the gin context")
				return
			}
			next.ServeHTTP(c.Writer, c.Request)
		})
		return r
	})
}

func TestTokenWithoutMiddlewareDoesNotPanic(t *testing.T) {
	c, _ := gin.CreateTestContext(nil)
	if tok, ok := ginadapter.Token(c); ok || tok != nil {
		t.Fatal("Token reported claims without the middleware")
	}
}
