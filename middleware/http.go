package middleware

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
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
// navigations (see [IsNavigation]) are redirected to Config.LoginURL with
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
	if r != nil && IsNavigation(r) {
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

// IsNavigation reports whether r is a top-level browser navigation (which
// should be redirected to log in) rather than an API call (which should get
// a status code). It trusts Sec-Fetch-Mode when present and falls back to
// a GET whose Accept prefers HTML.
func IsNavigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate" && r.Method == http.MethodGet
	}
	if r.Method != http.MethodGet {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// SetNoStore marks a response as not cacheable by browsers or proxies. Every
// authenticated or refused response gets it.
func SetNoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// SetNoticeHeaders adds the announced-termination headers for n, if any.
func SetNoticeHeaders(h http.Header, n *Notice) {
	if n == nil {
		return
	}
	h.Set(HeaderTermination, n.At.UTC().Format(time.RFC3339))
	h.Set(HeaderTerminationScope, n.Scope.Kind.String())
	h.Set(HeaderTerminationPolicy, n.Policy.String())
	if n.Reason != "" {
		h.Set(HeaderTerminationReason, url.PathEscape(n.Reason))
	}
}

// WriteRefusal writes the answer to a refused request on w: the clearing
// cookie if any, Cache-Control: no-store, and the redirect or JSON body
// from [Guard.Refusal]. The nethttp adapter uses it; the gin adapter writes
// the same Refusal through gin's own abort functions.
func (g *Guard) WriteRefusal(w http.ResponseWriter, r *http.Request, d Decision) {
	ref := g.Refusal(d, r)
	h := w.Header()
	if d.Cookie != nil {
		http.SetCookie(w, d.Cookie)
	}
	SetNoStore(h)
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
