package ginadapter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/sessionfence/sessionfence/adapters/gin"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// The README's gin quickstart: the session is on the gin context, and a
// revoked session never reaches the handler.
func ExampleMiddleware() {
	gin.SetMode(gin.ReleaseMode)
	store := memstore.New(memstore.Config{})
	guard, err := middleware.New(middleware.Config{Store: store, Keys: [][]byte{middleware.GenerateKey()}})
	if err != nil {
		panic(err)
	}
	r := gin.New()
	api := r.Group("/", ginadapter.Middleware(guard))
	api.GET("/me", func(c *gin.Context) {
		s, _ := ginadapter.Session(c)
		c.JSON(http.StatusOK, gin.H{"sub": s.Subject})
	})

	_, cookie, _ := guard.Issue(context.Background(), middleware.Claims{Issuer: "https://idp.example", Subject: "bob", Tenant: "acme"})
	get := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/me", nil)
		req.AddCookie(cookie)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	fmt.Println(get().Body.String())

	_, _ = store.Bump(context.Background(), middleware.TenantScope("acme"), middleware.Bump{Kind: middleware.BumpRevoke})
	w := get()
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// {"sub":"bob"}
	// 401 {"error":"revoked","error_description":"the session was ended by an administrator or the identity provider","scope":"tenant","reauth":"none"}
}
