package oidc

import (
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/sessionfence/sessionfence/internal/httpx"
)

// Steps of a login or logout, as recorded in [LoginError.Step]. go-oidc's
// errors are mostly plain strings, so the step is what tells them apart in
// logs and metrics.
const (
	StepRequest  = "request"  // malformed /login or /callback request
	StepState    = "state"    // login-state cookie missing, forged, expired or replayed
	StepProvider = "provider" // the provider answered the authorization request with an error
	StepExchange = "exchange" // the code exchange at the token endpoint failed
	StepIDToken  = "id_token" // the ID token failed verification (signature, iss, aud, exp, nonce, at_hash)
	StepHook     = "on_login" // Config.OnLogin refused the login
	StepRevoked  = "revoked"  // a fence refuses this login (IdP session logged out, token older than a fence)
	StepReauth   = "reauth"   // the provider did not perform the re-authentication a fence demands
	StepStore    = "store"    // the store could not be read or written
	StepLogout   = "logout"   // logout refused (method or cross-site request)
)

// Sentinel errors wrapped by [LoginError] for callers that branch.
var (
	// ErrReauthNotPerformed: after the single retry with prompt=login,
	// max_age=0 (and acr_values for MFA), the provider still returned an
	// authentication that does not meet the fence's demand. It is
	// joined with the guard's *middleware.ReauthRequiredError.
	ErrReauthNotPerformed = errors.New("sessionfence/oidc: the provider did not perform the required re-authentication")
	// ErrCrossSite: a logout request did not come from our own origin.
	ErrCrossSite = errors.New("sessionfence/oidc: cross-site request refused")
	// ErrIDToken wraps every ID token refusal.
	ErrIDToken = errors.New("sessionfence/oidc: ID token refused")
)

// LoginError is the error handed to Config.OnError: which step failed, the
// HTTP status the response should carry, and the cause (for logs only:
// it may contain provider messages and token details).
type LoginError struct {
	Step   string
	Status int
	Err    error
}

// Error describes the failure for logs; it may include provider messages
// and must not be shown to users.
func (e *LoginError) Error() string {
	return fmt.Sprintf("sessionfence/oidc: %s failed: %v", e.Step, e.Err)
}

// Unwrap returns the cause.
func (e *LoginError) Unwrap() error { return e.Err }

// fail logs err and answers with the error hook.
func (rp *RP) fail(w http.ResponseWriter, r *http.Request, step string, status int, err error) {
	le := &LoginError{Step: step, Status: status, Err: err}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	rp.log.Log(r.Context(), level, "sessionfence/oidc: request refused", "path", r.URL.Path, "step", step,
		"status", status, "cause", err.Error())
	if rp.cfg.OnError != nil {
		httpx.NoStore(w.Header())
		rp.cfg.OnError(w, r, le)
		return
	}
	rp.WriteErrorPage(w, r, le)
}

// WriteErrorPage writes the default answer to a failed login, callback or
// logout: a fixed, generic HTML page with the status of err (a
// *[LoginError]; 403 for any other error), Cache-Control: no-store and a
// link to Config.DefaultReturnTo. It never includes the cause, which may
// carry provider messages or token contents, and it never redirects, so a
// failing login cannot loop. A Config.OnError hook may call it after
// logging.
func (rp *RP) WriteErrorPage(w http.ResponseWriter, _ *http.Request, err error) {
	status := http.StatusForbidden
	if le := (*LoginError)(nil); errors.As(err, &le) && le.Status >= 400 && le.Status <= 599 {
		status = le.Status
	}
	writeErrorPage(w, status, rp.cfg.DefaultReturnTo)
}

var pageText = map[int]string{
	http.StatusBadRequest:          "The sign-in request was not valid or has expired. Please start again.",
	http.StatusForbidden:           "Sign-in could not be completed. If this keeps happening, contact your administrator.",
	http.StatusMethodNotAllowed:    "This action is not available that way.",
	http.StatusBadGateway:          "The identity provider could not be reached. Please try again shortly.",
	http.StatusServiceUnavailable:  "Sign-in is temporarily unavailable. Please try again shortly.",
	http.StatusInternalServerError: "Something went wrong. Please try again shortly.",
}

func writeErrorPage(w http.ResponseWriter, status int, home string) {
	text, ok := pageText[status]
	if !ok {
		text = pageText[http.StatusForbidden]
	}
	h := w.Header()
	httpx.NoStore(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	w.WriteHeader(status)
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	_, _ = fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title></head>
<body><h1>%s</h1><p>%s</p><p><a href="%s">Continue</a></p></body></html>
`, html.EscapeString(title), html.EscapeString(title), html.EscapeString(text), html.EscapeString(home))
}
