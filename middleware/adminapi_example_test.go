package middleware_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// The admin API is mounted behind the guard's middleware, which
// authenticates the caller; the authorizer decides who is an administrator.
// Here an administrator terminates every session, keeping their own: the
// response carries their re-issued cookie.
func ExampleNewAdminAPI() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard, _ := middleware.New(middleware.Config{
		Store: memstore.New(memstore.Config{}), Keys: [][]byte{middleware.GenerateKey()}, Logger: quiet,
	})
	admin, _ := middleware.NewAdmin(middleware.AdminConfig{Guard: guard})
	api, err := middleware.NewAdminAPI(admin, middleware.AdminAPIConfig{
		PublicOrigin: "https://app.example.com",
		Authorize:    middleware.AllowIfDataContains("roles", "admin"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/api/", api)
	app := nethttp.Middleware(guard)(mux)

	// An administrator's session, as the login handler would issue it.
	s, cookie, _ := guard.Issue(context.Background(), middleware.Claims{
		Issuer: "https://idp.example.com", Subject: "root", Data: `{"roles":["admin"]}`,
	})

	// What the admin page sends: JSON, same origin, the CSRF token.
	r := httptest.NewRequest(http.MethodPost, "https://app.example.com/admin/api/terminate-all",
		strings.NewReader(`{"confirm":"terminate-all","reason":"credential leak","reauth":"mfa"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set(middleware.HeaderCSRFToken, guard.CSRFToken(s))
	r.AddCookie(cookie)
	w := httptest.NewRecorder()
	app.ServeHTTP(w, r)

	kept := w.Result().Cookies()[0]
	fmt.Println(w.Code, guard.Check(context.Background(), kept.Value).Kind)
	fmt.Println(guard.Check(context.Background(), cookie.Value).Kind)
	// Output:
	// 200 allowed
	// reauth_required
}
