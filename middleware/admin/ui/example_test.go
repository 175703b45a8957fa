package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/admin/ui"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// The console is built from the API and serves it: one mount behind the
// guard's middleware answers the page, its assets and the API the page
// calls. banner.js is also served on its own, outside the guard, for
// every page of the application.
func ExampleHandler() {
	guard, _ := middleware.New(middleware.Config{
		Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}, Logger: quiet,
	})
	svc, _ := admin.New(admin.Config{Guard: guard})
	api, _ := admin.NewAPI(svc, admin.APIConfig{}) // at /admin/api/

	mux := http.NewServeMux()
	mux.Handle("/admin/", ui.Handler(api, ui.Config{})) // page at /admin/
	app := http.NewServeMux()
	app.Handle("/", nethttp.Middleware(guard)(mux))
	app.Handle("GET /banner.js", ui.BannerHandler())

	_, cookie, _ := guard.Issue(context.Background(), middleware.Claims{Issuer: "https://idp.example", Subject: "alice"})
	for _, path := range []string{"/admin/", "/admin/admin.js", "/admin/api/me", "/banner.js"} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.AddCookie(cookie)
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		fmt.Println(path, w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// /admin/ 200 text/html; charset=utf-8
	// /admin/admin.js 200 text/javascript; charset=utf-8
	// /admin/api/me 200 application/json; charset=utf-8
	// /banner.js 200 text/javascript; charset=utf-8
}
