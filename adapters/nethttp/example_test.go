package nethttp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// The README's quickstart: a guarded handler, a session issued by a login,
// and the same cookie refused once the user is signed out everywhere.
func ExampleMiddleware() {
	store := memstore.New(memstore.Config{})
	guard, err := middleware.New(middleware.Config{Store: store, Keys: [][]byte{middleware.GenerateKey()}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.FromContext(r.Context())
		fmt.Fprintln(w, "hello", s.Subject)
	})
	h := nethttp.Middleware(guard)(mux)

	// What a login handler does after authenticating the user.
	_, cookie, _ := guard.Issue(context.Background(), middleware.Claims{Issuer: "https://idp.example", Subject: "alice"})

	get := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/me", nil)
		r.AddCookie(cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	fmt.Print(get().Body.String())

	_, _ = store.Bump(context.Background(), middleware.SubjectScope("https://idp.example", "alice"),
		middleware.Bump{Kind: middleware.BumpRevoke, Reason: "lost laptop"})
	w := get()
	fmt.Println(w.Code, w.Header().Get("Cache-Control"), w.Body.String())
	// Output:
	// hello alice
	// 401 no-store {"error":"revoked","error_description":"the session was ended by an administrator or the identity provider","scope":"subject","reauth":"none"}
}
