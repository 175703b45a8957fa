package nethttp

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/sessionfence/sessionfence/middleware"
)

// BearerOption adjusts [Bearer].
type BearerOption func(*bearerOptions)

type bearerOptions struct {
	realm    string
	optional bool
}

// BearerRealm sets the realm of WWW-Authenticate challenges. Default: none.
func BearerRealm(realm string) BearerOption { return func(o *bearerOptions) { o.realm = realm } }

// BearerOptional lets requests without an Authorization header through
// unauthenticated. Invalid, revoked and expired tokens are still refused.
func BearerOptional() BearerOption { return func(o *bearerOptions) { o.optional = true } }

// Bearer returns net/http middleware for APIs and mobile apps: v verifies
// the request's "Authorization: Bearer" token (see the oidc package's
// BearerVerifier) and g judges it against the fences by time. The token's
// claims reach handlers through [middleware.TokenFromContext].
//
// A refused request never reaches the wrapped handler. It gets the
// status and WWW-Authenticate challenge of [middleware.Guard.BearerChallenge]
// (RFC 6750 invalid_token, RFC 9470 insufficient_user_authentication with
// max_age and acr_values when a fence demands a fresh or MFA login), a
// JSON body {"error": <stable code>, ...}, and Cache-Control: no-store; a
// store outage is 503 with Retry-After and no challenge (fail closed).
func Bearer(g *middleware.Guard, v middleware.TokenVerifier, opts ...BearerOption) func(http.Handler) http.Handler {
	var o bearerOptions
	for _, fn := range opts {
		fn(&o)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d := g.AuthenticateBearer(r.Context(), r, v)
			h := w.Header()
			d.SetHeaders(h)
			if d.Kind == middleware.DecisionNoSession && o.optional {
				next.ServeHTTP(w, r)
				return
			}
			if !d.Allowed() {
				status, challenge := g.BearerChallenge(d, o.realm)
				if challenge != "" {
					h.Set("WWW-Authenticate", challenge)
				}
				ref := g.Refusal(d, nil)
				if status == http.StatusServiceUnavailable {
					h.Set("Retry-After", strconv.Itoa(ref.RetryAfter))
				}
				h.Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_ = json.NewEncoder(w).Encode(ref.Body)
				return
			}
			next.ServeHTTP(w, r.WithContext(middleware.NewContext(r.Context(), d)))
		})
	}
}
