// Package nethttp adapts a [middleware.Guard] to net/http: Middleware wraps
// a handler so that only requests whose session passes every fence reach
// it.
//
//	guard, _ := middleware.New(middleware.Config{Store: memstore.New(), Keys: keys})
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /me", me)
//	http.ListenAndServe(addr, nethttp.Middleware(guard)(mux))
//
// A refused request never reaches the wrapped handler: browsers are
// redirected to the login page, API clients get a JSON 401 (503 when the
// store is unavailable), always with Cache-Control: no-store.
package nethttp

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/sessionfence/sessionfence/middleware"
)

// Option adjusts [Middleware].
type Option func(*options)

type options struct {
	optional bool
	onRefuse func(w http.ResponseWriter, r *http.Request, d middleware.Decision)
}

// Optional lets requests without a session cookie through unauthenticated
// (for pages that render differently when signed in). Invalid, revoked and
// expired sessions are still refused.
func Optional() Option { return func(o *options) { o.optional = true } }

// OnRefuse replaces the default refusal response. The handler must write a
// complete response; the wrapped handler is not called either way.
func OnRefuse(fn func(w http.ResponseWriter, r *http.Request, d middleware.Decision)) Option {
	return func(o *options) { o.onRefuse = fn }
}

// Middleware returns net/http middleware enforcing g on every request. The
// session is available to handlers through [middleware.FromContext].
// Announced terminations are signalled with the Sessionfence-Termination
// headers; renewed or reloaded cookies are set on the response.
func Middleware(g *middleware.Guard, opts ...Option) func(http.Handler) http.Handler {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	name := g.CookieName()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			value := ""
			if c, err := r.Cookie(name); err == nil {
				value = c.Value
			}
			d := g.AuthenticateRequest(r, value)
			d.SetHeaders(w.Header()) // no-store, the cookie, announcement headers
			if d.Kind == middleware.DecisionNoSession && o.optional {
				next.ServeHTTP(w, r)
				return
			}
			if !d.Allowed() {
				if o.onRefuse != nil {
					o.onRefuse(w, r, d)
					return
				}
				writeRefusal(w, g.Refusal(d, r))
				return
			}
			next.ServeHTTP(w, r.WithContext(middleware.NewContext(r.Context(), d)))
		})
	}
}

// writeRefusal writes ref: a redirect to log in, or a JSON body with a
// stable code (with Retry-After on a store outage).
func writeRefusal(w http.ResponseWriter, ref middleware.Refusal) {
	h := w.Header()
	if ref.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ref.RetryAfter))
	}
	if ref.Location != "" {
		h.Set("Location", ref.Location)
		w.WriteHeader(ref.Status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(ref.Status)
	_ = json.NewEncoder(w).Encode(ref.Body)
}
