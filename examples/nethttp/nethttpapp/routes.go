// Package nethttpapp routes the example application with net/http's
// ServeMux and the nethttp adapter. The pieces it routes to are built by
// examples/internal/app, shared with the gin example.
package nethttpapp

import (
	"net/http"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/examples/internal/app"
	"github.com/sessionfence/sessionfence/middleware"
)

// Handler returns the application's routes:
//
//	GET  /                    home page (signed in or not)
//	GET  /login               start a login (return_to, acr_values)
//	GET  /callback            the provider's redirect back
//	POST /logout              sign out (here and at the provider)
//	POST /backchannel-logout  the provider's back-channel logout
//	GET  /me                  the session as JSON (guarded)
//	GET  /events              event stream, or its page for a browser (guarded)
//	     /admin/api/...       admin JSON API (guarded)
//	GET  /admin/              admin page (guarded)
//	GET  /api/hello           bearer-token API
//	GET  /healthz             store probe
//	GET  /metrics             Prometheus metrics
//	GET  /banner.js, /assets/ scripts and styles
func Handler(a *app.App) http.Handler {
	guard := nethttp.Middleware(a.Guard)
	optional := nethttp.Middleware(a.Guard, nethttp.Optional())
	mux := http.NewServeMux()

	// Outside the guard: the login flow, the provider's calls, probes and
	// static files. The login and logout handlers and the receiver answer
	// wrong methods themselves.
	mux.Handle(app.LoginPath, a.RP.LoginHandler())
	mux.Handle(app.CallbackPath, a.RP.CallbackHandler())
	mux.Handle(app.LogoutPath, a.RP.LogoutHandler())
	mux.Handle(app.BackchannelPath, a.Receiver)
	mux.Handle("GET /metrics", a.Metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		status, body := a.Healthz(r.Context())
		app.WriteJSON(w, status, body)
	})
	mux.Handle("GET "+app.BannerPath, a.Banner)
	mux.Handle("GET "+app.AssetsPath, a.Assets())

	mux.Handle("GET /{$}", optional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.FromContext(r.Context())
		a.RenderHome(w, r, s)
	})))

	// Behind the guard: a refused browser navigation is sent to log in,
	// an API call gets a JSON 401.
	mux.Handle("GET /me", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.FromContext(r.Context())
		app.WriteJSON(w, http.StatusOK, app.MeOf(s))
	})))
	mux.Handle("GET /events", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := middleware.FromContext(r.Context())
		if app.WantsPage(r) {
			a.RenderEvents(w, r, s)
			return
		}
		a.Stream(r.Context(), w, s)
	})))
	// The admin page and, below it, its JSON API: one handler.
	mux.Handle(app.AdminPath, guard(a.Console))

	// Bearer tokens (mobile apps, API clients).
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc, _ := middleware.TokenFromContext(r.Context())
		app.WriteJSON(w, http.StatusOK, app.HelloOf(tc))
	})
	mux.Handle("GET /api/hello", nethttp.Bearer(a.Guard, a.Bearer, nethttp.BearerRealm("api"))(hello))
	return mux
}
