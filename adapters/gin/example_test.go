package ginadapter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/sessionfence/sessionfence/adapters/gin"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/admin/ui"
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

// The admin console under gin: the page of package ui serves the admin
// API below it, so one catch-all route behind the guard's middleware
// mounts both (gin allows no other route beside a catch-all at the same
// level, so the page and the API cannot have routes of their own). The
// page loads, and its first call, GET /admin/api/me, answers.
func ExampleMiddleware_adminConsole() {
	gin.SetMode(gin.ReleaseMode)
	guard, _ := middleware.New(middleware.Config{Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}})
	svc, _ := admin.New(admin.Config{Guard: guard})
	api, _ := admin.NewAPI(svc, admin.APIConfig{Authorize: admin.AllowSubjects("https://idp.example", "root")})
	console, err := ui.New(api, ui.Config{}) // page at /admin/, API at /admin/api/
	if err != nil {
		panic(err)
	}

	r := gin.New()
	authed := r.Group("/", ginadapter.Middleware(guard))
	authed.Any("/admin/*path", gin.WrapH(console))

	_, cookie, _ := guard.Issue(context.Background(), middleware.Claims{Issuer: "https://idp.example", Subject: "root"})
	for _, path := range []string{"/admin/", "/admin/api/me"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.AddCookie(cookie)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Println(path, w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// /admin/ 200 text/html; charset=utf-8
	// /admin/api/me 200 application/json; charset=utf-8
}
