package ginadapter_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/sessionfence/sessionfence/adapters/gin"
	"github.com/sessionfence/sessionfence/internal/adaptertest"
	"github.com/sessionfence/sessionfence/middleware"
)

func TestSharedAdapterTable(t *testing.T) {
	gin.SetMode(gin.TestMode)
	adaptertest.Run(t, func(g *middleware.Guard, next http.Handler) http.Handler {
		r := gin.New()
		r.Use(ginadapter.Middleware(g))
		r.GET("/app/page", func(c *gin.Context) {
			if _, ok := ginadapter.Session(c); !ok {
				c.String(http.StatusInternalServerError, "no session on the gin context")
				return
			}
			next.ServeHTTP(c.Writer, c.Request)
		})
		return r
	})
}

func TestSessionWithoutMiddlewareDoesNotPanic(t *testing.T) {
	c, _ := gin.CreateTestContext(nil)
	if s, ok := ginadapter.Session(c); ok || s != nil {
		t.Fatal("Session reported a session without the middleware")
	}
}
