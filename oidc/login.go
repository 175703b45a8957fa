package oidc

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/sessionfence/sessionfence/internal/httpx"
	"github.com/sessionfence/sessionfence/middleware"
)

// LoginOption adjusts the authorization requests of one [RP.LoginHandler].
// Options only ever add to what a fence demands: a fence's prompt=login,
// max_age=0 and MFA acr_values are sent whatever the options say.
type LoginOption func(*loginOptions)

type loginOptions struct {
	provider  string
	prompt    []string
	maxAge    time.Duration
	hasMaxAge bool
	acr       []string
	params    [][2]string
}

// WithProvider makes the handler use the named provider when the request
// does not name one (?provider=). Default: the first configured provider.
func WithProvider(name string) LoginOption { return func(o *loginOptions) { o.provider = name } }

// WithPrompt sends prompt with these values (e.g. "select_account",
// "login"). "none" is dropped: a login that may not show any UI could not
// satisfy a fence's demand for a fresh authentication.
func WithPrompt(values ...string) LoginOption {
	return func(o *loginOptions) { o.prompt = append(o.prompt, values...) }
}

// WithMaxAge sends max_age (whole seconds; 0 forces a fresh
// authentication).
func WithMaxAge(d time.Duration) LoginOption {
	return func(o *loginOptions) { o.maxAge, o.hasMaxAge = d, true }
}

// WithACRValues sends acr_values with these values.
func WithACRValues(values ...string) LoginOption {
	return func(o *loginOptions) { o.acr = append(o.acr, values...) }
}

// WithAuthParam sends an extra authorization parameter. Parameters the RP
// controls (state, nonce, PKCE, prompt, max_age, acr_values…) are ignored.
func WithAuthParam(key, value string) LoginOption {
	return func(o *loginOptions) { o.params = append(o.params, [2]string{key, value}) }
}

// maxACRValues bounds acr_values taken from a request.
const maxACRValues = 8

// LoginHandler returns the handler that starts a login (mount it on the
// guard's LoginURL, default GET /login, outside the guard's middleware).
// It redirects the browser to the provider's authorization endpoint with
// the authorization code flow, PKCE (S256), a state and a nonce, which it
// keeps in a short-lived sealed cookie bound to this browser.
//
// Query parameters, all optional:
//
//	provider    which configured provider (default: the first, or WithProvider)
//	return_to   where to land after login; only local paths (see ValidReturnTo),
//	            anything else is replaced by Config.DefaultReturnTo
//	reauth      "login" or "mfa", set by the guard's refusal redirect: the request
//	            then carries prompt=login and max_age=0, plus the MFA acr_values
//	acr_values  space-separated ACR values to request from the provider
//	reason      set by the guard's refusal redirect; informational only
//
// Every response carries Cache-Control: no-store.
func (rp *RP) LoginHandler(opts ...LoginOption) http.Handler {
	var o loginOptions
	for _, fn := range opts {
		fn(&o)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w.Header())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			rp.fail(w, r, StepRequest, http.StatusMethodNotAllowed, errors.New("login requires GET"))
			return
		}
		q := r.URL.Query()
		name := q.Get("provider")
		if name == "" {
			name = o.provider
		}
		p := rp.providers[0]
		if name != "" {
			if p = rp.byName[name]; p == nil {
				rp.fail(w, r, StepRequest, http.StatusBadRequest, errors.New("unknown provider "+strconv.Quote(name)))
				return
			}
		}
		var acr []string
		if v := q.Get("acr_values"); v != "" {
			acr = strings.Fields(v)
			if len(acr) > maxACRValues || slices.ContainsFunc(acr, func(s string) bool { return !validACR(s) }) {
				rp.fail(w, r, StepRequest, http.StatusBadRequest, errors.New("malformed acr_values"))
				return
			}
		}
		policy, _ := middleware.ParsePolicy(q.Get("reauth")) // unknown values: no demand
		st := &loginState{
			State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
			Provider: p.cfg.Name, ReturnTo: rp.returnTo(q.Get("return_to")),
			Created: rp.now().Unix(), ACR: strings.Join(acr, " "),
		}
		rp.redirectToProvider(w, r, p, st, o, policy)
	})
}

// redirectToProvider stores st and sends the browser to p's authorization
// endpoint. policy is what a fence demands of this login: PolicyFreshLogin
// adds prompt=login and max_age=0, PolicyMFA also adds p's MFA acr_values.
func (rp *RP) redirectToProvider(w http.ResponseWriter, r *http.Request, p *provider, st *loginState, o loginOptions, policy middleware.Policy) {
	authOpts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(st.Verifier),
		oauth2.SetAuthURLParam("nonce", st.Nonce),
	}
	for k, v := range p.cfg.AuthParams {
		authOpts = append(authOpts, oauth2.SetAuthURLParam(k, v))
	}
	for _, kv := range o.params {
		if !slices.Contains(reservedParams, kv[0]) {
			authOpts = append(authOpts, oauth2.SetAuthURLParam(kv[0], kv[1]))
		}
	}
	prompt := slices.DeleteFunc(slices.Clone(o.prompt), func(s string) bool { return s == "none" || s == "login" })
	maxAge, hasMaxAge := o.maxAge, o.hasMaxAge
	acr := slices.Clone(o.acr)
	acr = append(acr, strings.Fields(st.ACR)...)
	if policy != middleware.PolicyNone || slices.Contains(o.prompt, "login") {
		// A fresh authentication: prompt=login asks for it and max_age=0
		// is the request a provider must answer with auth_time (OpenID
		// Connect Core 3.1.2.1). Providers may ignore both; the callback
		// checks auth_time whatever happened.
		prompt = append([]string{"login"}, prompt...)
	}
	if policy != middleware.PolicyNone {
		maxAge, hasMaxAge = 0, true
	}
	if policy == middleware.PolicyMFA {
		acr = append(slices.Clone(p.mfaACR), acr...)
	}
	if len(prompt) > 0 {
		authOpts = append(authOpts, oauth2.SetAuthURLParam("prompt", strings.Join(prompt, " ")))
	}
	if hasMaxAge {
		authOpts = append(authOpts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(int64(maxAge/time.Second), 10)))
	}
	if acr = compactStrings(acr); len(acr) > 0 {
		authOpts = append(authOpts, oauth2.SetAuthURLParam("acr_values", strings.Join(acr, " ")))
	}
	rp.setState(w, r, st)
	http.Redirect(w, r, p.oauth.AuthCodeURL(st.State, authOpts...), http.StatusFound)
}

// compactStrings removes duplicates, keeping the first occurrence.
func compactStrings(in []string) []string {
	out := in[:0]
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
