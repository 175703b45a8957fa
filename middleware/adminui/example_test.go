package adminui_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/sessionfence/sessionfence/middleware/adminui"
)

// The page is mounted next to the admin API, behind the guard's
// middleware (left out here); banner.js is also served on its own, outside
// the guard, for every page of the application.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("/admin/", adminui.Handler(adminui.Config{})) // API at /admin/api/
	mux.Handle("GET /banner.js", adminui.BannerHandler())

	for _, path := range []string{"/admin/", "/admin/admin.js", "/banner.js"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// /admin/ 200 text/html; charset=utf-8
	// /admin/admin.js 200 text/javascript; charset=utf-8
	// /banner.js 200 text/javascript; charset=utf-8
}
