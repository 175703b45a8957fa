package middleware

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type decisionKey struct{}

// NewContext returns a copy of ctx carrying the allowed decision d (and its
// session). Adapters call it; handlers read with [FromContext]. One context
// value holds both, to keep the per-request cost to one allocation.
func NewContext(ctx context.Context, d Decision) context.Context {
	return context.WithValue(ctx, decisionKey{}, &d)
}

// FromContext returns the authenticated session of the request. ok is false
// when the middleware did not run or the request was not authenticated by
// a session cookie; it never panics.
func FromContext(ctx context.Context) (*Session, bool) {
	d, ok := ctx.Value(decisionKey{}).(*Decision)
	if !ok || d == nil || d.Session == nil {
		return nil, false
	}
	return d.Session, true
}

// DecisionFromContext returns the decision that let the request through
// (including any announced termination in Notice).
func DecisionFromContext(ctx context.Context) (Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(*Decision)
	if !ok || d == nil {
		return Decision{}, false
	}
	return *d, true
}

// Refusal is how a refused request is answered, computed by
// [Guard.Refusal] and written by adapters.
type Refusal struct {
	// Status is 401 for API requests (503 when the store is unavailable),
	// 303 for browser navigations sent to the login page.
	Status int
	// Location is the login URL for browser navigations, empty otherwise.
	Location string
	// Body is the JSON body for API requests.
	Body RefusalBody
	// RetryAfter, in seconds, is set with 503.
	RetryAfter int
}

// RefusalBody is the JSON body of an API refusal. Error is a stable code
// ([DecisionKind.String]); Scope and Reauth are set for revocations.
type RefusalBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Scope       string `json:"scope,omitempty"`
	Reauth      string `json:"reauth,omitempty"`
}

var refusalText = map[DecisionKind]string{
	DecisionNoSession:        "authentication required",
	DecisionInvalid:          "the session cookie is not valid",
	DecisionRevoked:          "the session was ended by an administrator or the identity provider",
	DecisionReauthRequired:   "the session was ended; sign in again",
	DecisionAccessExpired:    "the session needs to be renewed; sign in again",
	DecisionSessionExpired:   "the session has expired",
	DecisionStoreUnavailable: "the session could not be verified; try again shortly",
}

// Refusal says how to answer r after decision d refused it. Browser
// navigations (a GET with Sec-Fetch-Mode: navigate, or without that
// header one whose Accept prefers HTML) are redirected to Config.LoginURL with
// reason, reauth (the policy) and return_to (the request's path, for GET);
// other requests get a JSON body with a stable code. A store outage is a
// 503 with Retry-After for both, so a browser is not sent round a login
// loop that cannot succeed.
func (g *Guard) Refusal(d Decision, r *http.Request) Refusal {
	code := d.Kind.String()
	if d.Kind == DecisionStoreUnavailable {
		return Refusal{Status: http.StatusServiceUnavailable, RetryAfter: 2,
			Body: RefusalBody{Error: code, Description: refusalText[d.Kind]}}
	}
	body := RefusalBody{Error: code, Description: refusalText[d.Kind]}
	if d.Kind == DecisionRevoked || d.Kind == DecisionReauthRequired {
		body.Scope = d.Scope.Kind.String()
		body.Reauth = d.Policy.String()
	}
	if r != nil && isNavigation(r) {
		q := url.Values{}
		q.Set("reason", code)
		if d.Policy != PolicyNone {
			q.Set("reauth", d.Policy.String())
		}
		if r.Method == http.MethodGet && r.URL != nil {
			q.Set("return_to", r.URL.RequestURI())
		}
		sep := "?"
		if strings.Contains(g.cfg.LoginURL, "?") {
			sep = "&"
		}
		return Refusal{Status: http.StatusSeeOther, Location: g.cfg.LoginURL + sep + q.Encode(), Body: body}
	}
	return Refusal{Status: http.StatusUnauthorized, Body: body}
}

// isNavigation reports whether r is a top-level browser navigation (which
// should be redirected to log in) rather than an API call (which should get
// a status code). It trusts Sec-Fetch-Mode when present and falls back to
// a GET whose Accept prefers HTML.
func isNavigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate" && r.Method == http.MethodGet
	}
	if r.Method != http.MethodGet {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// SetHeaders sets on h the headers of the response to a request judged d,
// whatever the outcome; adapters call it first, on every path:
//
//   - Cache-Control: no-store (and Pragma: no-cache), since every
//     authenticated or refused response is private to its session;
//
//   - the cookie d carries (renewed, reloaded or re-issued for an allowed
//     request, cleared for a refused one), if any;
//
//   - for a session covered by an announced termination (d.Notice), the
//     headers a page uses to warn people to save their work:
//
//     Sessionfence-Termination: 2026-11-23T10:15:00Z        (RFC 3339, UTC)
//     Sessionfence-Termination-Scope: global
//     Sessionfence-Termination-Policy: mfa                   (none, login, mfa)
//     Sessionfence-Termination-Reason: Rotating%20credentials (URL path-escaped)
//
// A refusal's status and body come from [Guard.Refusal].
func (d Decision) SetHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if d.Cookie != nil {
		if v := d.Cookie.String(); v != "" {
			h.Add("Set-Cookie", v)
		}
	}
	if n := d.Notice; n != nil {
		h.Set(headerTermination, n.At.UTC().Format(time.RFC3339))
		h.Set(headerTerminationScope, n.Scope.Kind.String())
		h.Set(headerTerminationPolicy, n.Policy.String())
		if n.Reason != "" {
			h.Set(headerTerminationReason, url.PathEscape(n.Reason))
		}
	}
}
