package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sessionfence/sessionfence/internal/httpx"
	"github.com/sessionfence/sessionfence/middleware"
)

// APIConfig configures the HTTP API built by [NewAPI]. The zero value is
// valid and refuses every action (see Authorize).
type APIConfig struct {
	// Prefix is the path the API answers under, as the browser sees it;
	// it must start and end with '/'. Endpoints are Prefix +
	// "terminate-all" and so on. Default "/admin/api/". Mount the API (or
	// the page of package ui, which serves it too) at full paths: not
	// behind http.StripPrefix.
	Prefix string

	// Authorize decides whether the caller's session may make a
	// [Request]: an operation on a target scope, announced or
	// immediate. A nil error allows; any error refuses with 403
	// "forbidden" (503 when it wraps [middleware.ErrStoreUnavailable]).
	// Default [DenyAll], so an API mounted without thinking about who may
	// use it does nothing. See [AllowIfDataContains], [AllowSubjects]
	// and [AnyOf].
	Authorize AuthorizeFunc

	// PublicOrigin is the origin the admin page is served from, e.g.
	// "https://admin.example.com" (scheme, host and optional port; no
	// path). When set, a state-changing request without Sec-Fetch-Site
	// must carry exactly this Origin. When empty, its Origin must equal
	// Scheme + "://" + the request's Host. Set it when a proxy rewrites
	// Host.
	PublicOrigin string

	// Scheme is used with the request's Host when PublicOrigin is empty:
	// "https" or "http". Default "https", or "http" when the guard has
	// Config.InsecureCookies (loopback development). It is never taken
	// from the request: r.URL.Scheme is empty on server requests and
	// X-Forwarded-Proto is whatever the client says.
	Scheme string

	// MaxBodyBytes bounds request bodies; larger ones are refused with 413
	// before they are parsed. Default 16 KiB.
	MaxBodyBytes int64
}

// ConfirmTerminateAll is the value the "confirm" field of terminate-all
// must have. A typed confirmation, not a boolean, so that a replayed or
// mistyped request for another action can never end every session.
const ConfirmTerminateAll = "terminate-all"

// Limits of the API's input.
const (
	defaultMaxBody = 16 << 10
	// maxAPIReason bounds the reason kept in the audit log (the fence
	// keeps middleware.MaxReasonLen bytes of it).
	maxAPIReason = 1000
	// maxAPIIdentifier bounds tenants, issuers, subjects and ids.
	maxAPIIdentifier = 512
	// maxFenceQuery bounds the scopes one GET fences asks for.
	maxFenceQuery = 16
	maxRequestID  = 64
)

// API serves the administration JSON API over a [Service]. Mount it
// behind the guard's adapter (adapters/nethttp.Middleware or
// adapters/gin.Middleware), which authenticates the caller's session
// cookie; requests that reach it without a session are refused with 401.
// The page of package ui serves the API too, so one mount is enough. See
// docs/admin.md for every endpoint.
//
// Every response is JSON with Cache-Control: no-store; errors are
// {"error": "<stable code>", "error_description": "..."} and never carry
// internal error text. A refused request changes nothing. An API is safe
// for concurrent use.
type API struct {
	svc       *Service
	now       func() time.Time
	login     string
	prefix    string
	authorize AuthorizeFunc
	origin    string // lower-case configured origin, or ""
	scheme    string
	maxBody   int64
	csrfKeys  [][]byte
	log       *slog.Logger
	routes    map[string]route
}

type route struct {
	method string
	fn     func(w http.ResponseWriter, r *http.Request, c *apiCall)
}

// apiCall is the authenticated context of one request.
type apiCall struct {
	s     *middleware.Session
	reqID string
	ip    string
}

func (c *apiCall) actor() string { return c.s.Issuer + "|" + c.s.Subject }

// NewAPI returns the HTTP API over svc, which must have been built with
// Config.Guard: the API authenticates callers by that guard's cookies,
// derives its anti-CSRF keys from its key ring, and keeps the caller's
// session through the actions that cover it. It validates cfg once; every
// error wraps [ErrInvalidConfig].
func NewAPI(svc *Service, cfg APIConfig) (*API, error) {
	if svc == nil || svc.g == nil {
		return nil, fmt.Errorf("%w: NewAPI needs a Service built with Config.Guard", ErrInvalidConfig)
	}
	gc := svc.g.Config()
	if cfg.Prefix == "" {
		cfg.Prefix = "/admin/api/"
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || !strings.HasSuffix(cfg.Prefix, "/") || strings.Contains(cfg.Prefix, "//") {
		return nil, fmt.Errorf("%w: APIConfig.Prefix %q must be a path starting and ending with '/'", ErrInvalidConfig, cfg.Prefix)
	}
	if cfg.Authorize == nil {
		cfg.Authorize = DenyAll
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("%w: APIConfig.MaxBodyBytes is negative", ErrInvalidConfig)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = defaultMaxBody
	}
	switch cfg.Scheme {
	case "":
		cfg.Scheme = "https"
		if gc.InsecureCookies {
			cfg.Scheme = "http"
		}
	case "http", "https":
	default:
		return nil, fmt.Errorf("%w: APIConfig.Scheme %q must be http or https", ErrInvalidConfig, cfg.Scheme)
	}
	origin := ""
	if cfg.PublicOrigin != "" {
		u, err := url.Parse(cfg.PublicOrigin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("%w: APIConfig.PublicOrigin %q must be scheme://host[:port]", ErrInvalidConfig, cfg.PublicOrigin)
		}
		origin = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	keys := svc.g.DeriveKeys(csrfPurpose)
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: the guard derived no anti-CSRF key", ErrInvalidConfig)
	}
	log, now := gc.Logger, gc.Now
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	api := &API{
		svc: svc, now: now, login: gc.LoginURL, prefix: cfg.Prefix, authorize: cfg.Authorize, origin: origin,
		scheme: cfg.Scheme, maxBody: cfg.MaxBodyBytes, csrfKeys: keys, log: log,
	}
	api.routes = map[string]route{
		OpTerminateAll.String():     {http.MethodPost, api.terminateAll},
		OpTerminateTenant.String():  {http.MethodPost, api.terminateTenant},
		OpTerminateUser.String():    {http.MethodPost, api.terminateUser},
		OpTerminateSession.String(): {http.MethodPost, api.terminateSession},
		OpCancel.String():           {http.MethodPost, api.cancel},
		OpReload.String():           {http.MethodPost, api.reload},
		OpSessions.String():         {http.MethodGet, api.sessions},
		OpAudit.String():            {http.MethodGet, api.audit},
		OpFences.String():           {http.MethodGet, api.fences},
		"me":                        {http.MethodGet, api.me},
		"csrf":                      {http.MethodGet, api.csrf},
	}
	return api, nil
}

// LoginURL returns where people whose session ended are sent to sign in
// again: the guard's Config.LoginURL. The admin page (package ui) links
// to it.
func (api *API) LoginURL() string { return api.login }

// Prefix returns the path the API answers under.
func (api *API) Prefix() string { return api.prefix }

// ServeHTTP implements http.Handler.
func (api *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	httpx.NoStore(h)
	h.Set("X-Content-Type-Options", "nosniff")
	c := &apiCall{reqID: requestID(r), ip: middleware.ClientInfoFromRequest(r).IP}
	h.Set("X-Request-Id", c.reqID)

	name, ok := strings.CutPrefix(r.URL.Path, api.prefix)
	rt, found := api.routes[name]
	if !ok || !found {
		writeAPIError(w, http.StatusNotFound, "not_found", "no such admin endpoint")
		return
	}
	if r.Method != rt.method {
		h.Set("Allow", rt.method)
		writeAPIError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+rt.method)
		return
	}
	s, ok := middleware.FromContext(r.Context())
	if !ok {
		// Mounted without the guard's middleware, or behind it in
		// optional mode: there is no caller to authorize.
		writeAPIError(w, http.StatusUnauthorized, "no_session", "a session is required")
		return
	}
	c.s = s
	if r.Method != http.MethodGet {
		// Every state-changing call is authenticated by a cookie the
		// browser attaches on its own, so it must prove it comes from our
		// page: first where it comes from, then a token only our page
		// can read.
		if err := api.sameOrigin(r); err != nil {
			api.refused(r, c, name, "csrf_origin", err)
			writeAPIError(w, http.StatusForbidden, "csrf_origin", "the request does not come from the admin page's origin")
			return
		}
		if !validCSRF(api.csrfKeys, s.ID, r.Header.Get(HeaderCSRFToken)) {
			api.refused(r, c, name, "csrf_token", errors.New("missing or wrong "+HeaderCSRFToken))
			writeAPIError(w, http.StatusForbidden, "csrf_token", "missing or wrong "+HeaderCSRFToken+" header; get one from GET csrf")
			return
		}
	}
	rt.fn(w, r, c)
}

// sameOrigin is the origin half of the CSRF check. Sec-Fetch-Site, sent by
// every current browser and not settable by page script, decides when
// present. Otherwise Origin must be present and ours. The scheme is never
// taken from the request.
func (api *API) sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		if site == "same-origin" {
			return nil
		}
		return fmt.Errorf("Sec-Fetch-Site is %q", site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return errors.New("neither Sec-Fetch-Site nor a usable Origin header")
	}
	want := api.origin
	if want == "" {
		if r.Host == "" {
			return errors.New("no Host to compare the Origin with")
		}
		want = strings.ToLower(api.scheme + "://" + r.Host)
	}
	if strings.ToLower(origin) != want {
		return fmt.Errorf("Origin %q is not %q", origin, want)
	}
	return nil
}

// requestID returns the client's X-Request-Id when it is 1 to 64
// printable ASCII characters without spaces (so it is safe in logs), and a
// fresh random id otherwise.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= maxRequestID {
		ok := true
		for i := 0; i < len(id); i++ {
			if id[i] <= ' ' || id[i] >= 0x7f {
				ok = false
				break
			}
		}
		if ok {
			return id
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// apiError is a refusal with a stable code.
type apiError struct {
	status int
	code   string
	desc   string
}

func badRequest(code, desc string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, desc: desc}
}

// apiErrorBody is the JSON shape of every error response.
type apiErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func writeAPIError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	writeJSON(w, status, apiErrorBody{Error: code, Description: desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	httpx.NoStore(h)
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers a request whose action failed, mapping sentinel errors to
// stable codes. Causes go to the log, never to the client.
func (api *API) fail(w http.ResponseWriter, r *http.Request, c *apiCall, op Op, err error) {
	switch {
	case errors.Is(err, middleware.ErrStoreUnavailable):
		api.log.ErrorContext(r.Context(), "sessionfence: admin API: store unavailable", "op", op.String(), "request_id", c.reqID, "cause", err.Error())
		writeAPIError(w, http.StatusServiceUnavailable, "store_unavailable", "the session store could not be reached; nothing was changed; try again")
	case errors.Is(err, ErrNotSupported):
		writeAPIError(w, http.StatusNotImplemented, "not_supported", "the session store does not support this operation")
	case errors.Is(err, middleware.ErrNothingPending):
		writeAPIError(w, http.StatusConflict, "nothing_pending", "no announced termination is pending on this scope")
	case errors.Is(err, middleware.ErrInvalidBump):
		// The store judges announcement times by its own clock.
		writeAPIError(w, http.StatusBadRequest, "invalid_at", "the announcement time is not in the future by the store's clock")
	case errors.Is(err, middleware.ErrInvalidScope):
		writeAPIError(w, http.StatusBadRequest, "invalid_scope", "the scope is not valid")
	case errors.Is(err, middleware.ErrKeepNotCovered):
		writeAPIError(w, http.StatusBadRequest, "invalid_request", "the session to keep is not covered by the scope")
	default:
		api.log.ErrorContext(r.Context(), "sessionfence: admin API: internal error", "op", op.String(), "request_id", c.reqID, "cause", err.Error())
		writeAPIError(w, http.StatusInternalServerError, "internal_error", "the operation failed; see the server log for request id "+c.reqID)
	}
}

// refused logs a refusal of a security check at warning level: someone
// tried something they may not do.
func (api *API) refused(r *http.Request, c *apiCall, op, code string, cause error) {
	attrs := []slog.Attr{slog.String("op", op), slog.String("code", code), slog.String("request_id", c.reqID),
		slog.String("client_ip", c.ip)}
	if c.s != nil {
		attrs = append(attrs, slog.String("actor", c.actor()), slog.String("session", c.s.ID))
	}
	if cause != nil {
		attrs = append(attrs, slog.String("cause", cause.Error()))
	}
	api.log.LogAttrs(r.Context(), slog.LevelWarn, "sessionfence: admin API request refused", attrs...)
}

// authorized asks the hook about rq; it writes the refusal and returns
// false when the caller may not proceed.
func (api *API) authorized(w http.ResponseWriter, r *http.Request, c *apiCall, rq Request) bool {
	err := api.authorize(r.Context(), c.s, rq)
	if err == nil {
		return true
	}
	if errors.Is(err, middleware.ErrStoreUnavailable) {
		api.fail(w, r, c, rq.Op, err)
		return false
	}
	api.refused(r, c, rq.Op.String(), "forbidden", err)
	writeAPIError(w, http.StatusForbidden, "forbidden", "you may not perform this operation")
	return false
}

// decode reads a JSON object body into dst: application/json only, at
// most maxBody bytes, one flat object (scalar values only) without
// duplicate or unknown keys, and nothing after it.
func (api *API) decode(w http.ResponseWriter, r *http.Request, dst any) *apiError {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be UTF-8"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{http.StatusRequestEntityTooLarge, "request_too_large",
				"the body exceeds " + strconv.FormatInt(api.maxBody, 10) + " bytes"}
		}
		return badRequest("invalid_request", "the body could not be read")
	}
	if !utf8.Valid(body) {
		return badRequest("invalid_request", "the body is not valid UTF-8")
	}
	if e := checkFlatObject(body); e != nil {
		return e
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badRequest("invalid_request", "field "+strconv.Quote(te.Field)+" has the wrong type")
		}
		return badRequest("invalid_request", "the body has a field this endpoint does not accept")
	}
	return nil
}

// checkFlatObject verifies that body is exactly one JSON object whose
// values are all scalars, with no key repeated (a decoder would silently
// keep the last one, so a proxy and this server could read different
// requests), and nothing but white space after it.
func checkFlatObject(body []byte) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return badRequest("invalid_request", "the body must be one JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badRequest("invalid_request", "the body is not well-formed JSON")
		}
		k, _ := tok.(string)
		if seen[k] {
			return badRequest("invalid_request", "field "+strconv.Quote(k)+" appears twice")
		}
		seen[k] = true
		v, err := dec.Token()
		if err != nil {
			return badRequest("invalid_request", "the body is not well-formed JSON")
		}
		if _, nested := v.(json.Delim); nested {
			return badRequest("invalid_request", "field "+strconv.Quote(k)+" must be a string, number, boolean or null")
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return badRequest("invalid_request", "the body is not well-formed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid_request", "unexpected data after the JSON object")
	}
	return nil
}

// validText reports whether v is valid UTF-8 without control characters
// and at most n bytes.
func validText(v string, n int) bool {
	if len(v) > n || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

func validIdentifier(v string) bool { return v != "" && validText(v, maxAPIIdentifier) }

// terminateFields are the body fields shared by the terminate endpoints.
type terminateFields struct {
	Reason string `json:"reason"`
	// Reauth is the policy for the next login: none, login or mfa.
	Reauth string `json:"reauth"`
	// At announces the termination for a future RFC 3339 time.
	At string `json:"at"`
	// KeepSession keeps the caller's session when the scope covers it;
	// default true.
	KeepSession *bool `json:"keep_session"`
}

// action validates the shared fields and builds the Action for scope.
func (api *API) action(c *apiCall, f terminateFields, scope middleware.Scope) (Action, *apiError) {
	act := Action{Actor: c.actor(), RequestID: c.reqID, ClientIP: c.ip}
	if !validText(f.Reason, maxAPIReason) {
		return act, badRequest("invalid_reason", fmt.Sprintf("reason must be at most %d bytes of text without control characters", maxAPIReason))
	}
	act.Reason = f.Reason
	p, ok := middleware.ParsePolicy(f.Reauth)
	if !ok {
		return act, badRequest("invalid_policy", `reauth must be "none", "login" or "mfa"`)
	}
	act.Policy = p
	if f.At != "" {
		at, err := time.Parse(time.RFC3339, f.At)
		if err != nil {
			return act, badRequest("invalid_at", "at must be an RFC 3339 time such as 2026-11-23T18:00:00Z")
		}
		if !at.After(api.now()) {
			return act, badRequest("invalid_at", "at must be in the future; omit it to act now")
		}
		act.At = at
	}
	if (f.KeepSession == nil || *f.KeepSession) && scope.Covers(c.s) {
		act.Keep = c.s
	}
	return act, nil
}

// actionResponse is the body of a successful action.
type actionResponse struct {
	Entry       middleware.AuditEntry `json:"entry"`
	Fence       FenceView             `json:"fence"`
	KeptSession bool                  `json:"kept_session"`
}

// respond writes a successful action, with the caller's re-issued cookie
// when it was kept.
func (api *API) respond(w http.ResponseWriter, scope middleware.Scope, res Result) {
	if res.Cookie != nil {
		setSessionCookie(w, res.Cookie)
	}
	writeJSON(w, http.StatusOK, actionResponse{Entry: res.Entry, Fence: NewFenceView(scope, res.Fence, api.now()),
		KeptSession: res.Cookie != nil})
}

// setSessionCookie sets c, replacing any Set-Cookie for the same name the
// adapter already added (a renewal or reload in the same request), so the
// browser keeps the cookie issued under the new generation.
func setSessionCookie(w http.ResponseWriter, c *http.Cookie) {
	h := w.Header()
	prefix := c.Name + "="
	var kept []string
	for _, v := range h.Values("Set-Cookie") {
		if !strings.HasPrefix(v, prefix) {
			kept = append(kept, v)
		}
	}
	h.Del("Set-Cookie")
	for _, v := range kept {
		h.Add("Set-Cookie", v)
	}
	http.SetCookie(w, c)
}

// terminate runs one termination after authorization.
func (api *API) terminate(w http.ResponseWriter, r *http.Request, c *apiCall, op Op, scope middleware.Scope, f terminateFields, confirm *string) {
	act, e := api.action(c, f, scope)
	if e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	// The hook sees whether the termination acts now or is announced:
	// a policy may allow announcing what it would not do at once.
	rq := Request{Op: op, Target: scope, At: act.At, Policy: act.Policy, Keep: act.Keep != nil}
	if !api.authorized(w, r, c, rq) {
		return
	}
	if confirm != nil && *confirm != ConfirmTerminateAll {
		writeAPIError(w, http.StatusBadRequest, "confirmation_required",
			`terminate-all needs "confirm": "`+ConfirmTerminateAll+`"`)
		return
	}
	res, err := api.svc.Terminate(r.Context(), scope, act)
	if err != nil {
		api.fail(w, r, c, op, err)
		return
	}
	api.respond(w, scope, res)
}

func (api *API) terminateAll(w http.ResponseWriter, r *http.Request, c *apiCall) {
	var req struct {
		terminateFields
		Confirm string `json:"confirm"`
	}
	if e := api.decode(w, r, &req); e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	api.terminate(w, r, c, OpTerminateAll, middleware.GlobalScope(), req.terminateFields, &req.Confirm)
}

func (api *API) terminateTenant(w http.ResponseWriter, r *http.Request, c *apiCall) {
	var req struct {
		Tenant string `json:"tenant"`
		terminateFields
	}
	if e := api.decode(w, r, &req); e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	if !validIdentifier(req.Tenant) {
		writeAPIError(w, http.StatusBadRequest, "invalid_scope", "tenant must be a non-empty identifier")
		return
	}
	api.terminate(w, r, c, OpTerminateTenant, middleware.TenantScope(req.Tenant), req.terminateFields, nil)
}

func (api *API) terminateUser(w http.ResponseWriter, r *http.Request, c *apiCall) {
	var req struct {
		Issuer string `json:"issuer"`
		Sub    string `json:"sub"`
		terminateFields
	}
	if e := api.decode(w, r, &req); e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	if !validIdentifier(req.Issuer) || !validIdentifier(req.Sub) {
		writeAPIError(w, http.StatusBadRequest, "invalid_scope", "issuer and sub must be non-empty identifiers")
		return
	}
	api.terminate(w, r, c, OpTerminateUser, middleware.SubjectScope(req.Issuer, req.Sub), req.terminateFields, nil)
}

func (api *API) terminateSession(w http.ResponseWriter, r *http.Request, c *apiCall) {
	// No keep_session: asking to end one session and keep it is a
	// contradiction.
	var req struct {
		SessionID string `json:"session_id"`
		Reason    string `json:"reason"`
		Reauth    string `json:"reauth"`
		At        string `json:"at"`
	}
	if e := api.decode(w, r, &req); e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	if !validIdentifier(req.SessionID) {
		writeAPIError(w, http.StatusBadRequest, "invalid_scope", "session_id must be a non-empty identifier")
		return
	}
	no := false
	api.terminate(w, r, c, OpTerminateSession, middleware.SessionScope(req.SessionID),
		terminateFields{Reason: req.Reason, Reauth: req.Reauth, At: req.At, KeepSession: &no}, nil)
}

// scopeFields name one scope in a body or a query: scope is the kind and
// the other fields are those the kind needs, and no others.
type scopeFields struct {
	Scope     string `json:"scope"`
	Tenant    string `json:"tenant"`
	Issuer    string `json:"issuer"`
	Sub       string `json:"sub"`
	SID       string `json:"sid"`
	SessionID string `json:"session_id"`
}

func (f scopeFields) scope() (middleware.Scope, *apiError) {
	kind, ok := fenceKind(f.Scope)
	if !ok {
		return middleware.Scope{}, badRequest("invalid_scope", `scope must be "global", "tenant", "subject", "idp_session" or "session"`)
	}
	var sc middleware.Scope
	var need []string
	switch kind {
	case middleware.ScopeGlobal:
		sc = middleware.GlobalScope()
	case middleware.ScopeTenant:
		sc, need = middleware.TenantScope(f.Tenant), []string{f.Tenant}
	case middleware.ScopeSubject:
		sc, need = middleware.SubjectScope(f.Issuer, f.Sub), []string{f.Issuer, f.Sub}
	case middleware.ScopeIdPSession:
		sc, need = middleware.IdPSessionScope(f.Issuer, f.SID), []string{f.Issuer, f.SID}
	case middleware.ScopeSession:
		sc, need = middleware.SessionScope(f.SessionID), []string{f.SessionID}
	}
	// Fields the kind does not use must be empty: a body naming a tenant
	// under scope "global" is a mistake, not a global action.
	given := 0
	for _, v := range []string{f.Tenant, f.Issuer, f.Sub, f.SID, f.SessionID} {
		if v != "" {
			given++
		}
	}
	for _, v := range need {
		if !validIdentifier(v) {
			return middleware.Scope{}, badRequest("invalid_scope", "scope "+kind.String()+" needs its identifying fields (see docs/admin.md)")
		}
	}
	if given != len(need) || !sc.Valid() {
		return middleware.Scope{}, badRequest("invalid_scope", "fields that scope "+kind.String()+" does not use must be absent")
	}
	return sc, nil
}

// scopedRequest decodes and checks the body shared by cancel and reload: a
// scope and a reason. It writes the refusal itself and returns ok=false.
// A cancel keeps the caller when the scope covers them.
func (api *API) scopedRequest(w http.ResponseWriter, r *http.Request, c *apiCall, op Op) (middleware.Scope, string, bool) {
	var req struct {
		scopeFields
		Reason string `json:"reason"`
	}
	if e := api.decode(w, r, &req); e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return middleware.Scope{}, "", false
	}
	sc, e := req.scope()
	if e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return middleware.Scope{}, "", false
	}
	if !validText(req.Reason, maxAPIReason) {
		writeAPIError(w, http.StatusBadRequest, "invalid_reason", "reason must be text without control characters")
		return middleware.Scope{}, "", false
	}
	if !api.authorized(w, r, c, Request{Op: op, Target: sc, Keep: op == OpCancel && sc.Covers(c.s)}) {
		return middleware.Scope{}, "", false
	}
	return sc, req.Reason, true
}

func (api *API) cancel(w http.ResponseWriter, r *http.Request, c *apiCall) {
	sc, reason, ok := api.scopedRequest(w, r, c, OpCancel)
	if !ok {
		return
	}
	act := Action{Actor: c.actor(), Reason: reason, RequestID: c.reqID, ClientIP: c.ip}
	if sc.Covers(c.s) {
		// A caller kept through the announcement holds the generation
		// that will now never come; Cancel re-issues their cookie.
		act.Keep = c.s
	}
	res, err := api.svc.Cancel(r.Context(), sc, act)
	if err != nil {
		api.fail(w, r, c, OpCancel, err)
		return
	}
	api.respond(w, sc, res)
}

func (api *API) reload(w http.ResponseWriter, r *http.Request, c *apiCall) {
	sc, reason, ok := api.scopedRequest(w, r, c, OpReload)
	if !ok {
		return
	}
	res, err := api.svc.Reload(r.Context(), sc, Action{Actor: c.actor(), Reason: reason, RequestID: c.reqID, ClientIP: c.ip})
	if err != nil {
		api.fail(w, r, c, OpReload, err)
		return
	}
	api.respond(w, sc, res)
}

// query returns r's query parameters after checking that only allowed
// names appear, each at most once unless repeatable.
func query(r *http.Request, allowed []string, repeatable string) (url.Values, *apiError) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("invalid_request", "the query string is malformed")
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			return nil, badRequest("invalid_request", "unknown query parameter "+strconv.Quote(k))
		}
		if len(vs) > 1 && k != repeatable {
			return nil, badRequest("invalid_request", "query parameter "+strconv.Quote(k)+" given more than once")
		}
	}
	return q, nil
}

func (api *API) sessions(w http.ResponseWriter, r *http.Request, c *apiCall) {
	q, e := query(r, []string{"issuer", "sub"}, "")
	if e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	iss, sub := q.Get("issuer"), q.Get("sub")
	if !validIdentifier(iss) || !validIdentifier(sub) {
		writeAPIError(w, http.StatusBadRequest, "invalid_scope", "issuer and sub are required")
		return
	}
	sc := middleware.SubjectScope(iss, sub)
	if !api.authorized(w, r, c, Request{Op: OpSessions, Target: sc}) {
		return
	}
	list, err := api.svc.Sessions(r.Context(), iss, sub)
	if err != nil {
		api.fail(w, r, c, OpSessions, err)
		return
	}
	if list == nil {
		list = []middleware.SessionInfo{}
	}
	writeJSON(w, http.StatusOK, struct {
		Issuer   string                   `json:"issuer"`
		Sub      string                   `json:"sub"`
		Sessions []middleware.SessionInfo `json:"sessions"`
	}{iss, sub, list})
}

func (api *API) audit(w http.ResponseWriter, r *http.Request, c *apiCall) {
	q, e := query(r, []string{"before", "limit"}, "")
	if e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	aq := middleware.AuditQuery{Before: q.Get("before")}
	if aq.Before != "" && !validText(aq.Before, 128) {
		writeAPIError(w, http.StatusBadRequest, "invalid_cursor", "before must be a cursor returned as next")
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 || strconv.Itoa(n) != l {
			writeAPIError(w, http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to 500")
			return
		}
		aq.Limit = n
	}
	if !api.authorized(w, r, c, Request{Op: OpAudit, Target: middleware.GlobalScope()}) {
		return
	}
	entries, next, err := api.svc.Audit(r.Context(), aq)
	if err != nil {
		if aq.Before != "" && !errors.Is(err, middleware.ErrStoreUnavailable) && !errors.Is(err, ErrNotSupported) {
			// The stores refuse a cursor they did not issue before
			// touching anything.
			writeAPIError(w, http.StatusBadRequest, "invalid_cursor", "before must be a cursor returned as next")
			return
		}
		api.fail(w, r, c, OpAudit, err)
		return
	}
	if entries == nil {
		entries = []middleware.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, struct {
		Entries []middleware.AuditEntry `json:"entries"`
		Next    string                  `json:"next,omitempty"`
	}{entries, next})
}

func (api *API) fences(w http.ResponseWriter, r *http.Request, c *apiCall) {
	q, e := query(r, []string{"scope"}, "scope")
	if e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	names := q["scope"]
	if len(names) == 0 {
		names = []string{"global"}
	}
	if len(names) > maxFenceQuery {
		writeAPIError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("at most %d scopes per request", maxFenceQuery))
		return
	}
	scopes := make([]middleware.Scope, 0, len(names))
	for _, n := range names {
		sc, err := ParseScope(n)
		if err != nil || !validText(n, 2*maxAPIIdentifier+32) {
			writeAPIError(w, http.StatusBadRequest, "invalid_scope", "scope must look like global, tenant:<t>, subject:<iss>|<sub>, idp_session:<iss>|<sid> or session:<id>")
			return
		}
		scopes = append(scopes, sc)
	}
	for _, sc := range scopes {
		if !api.authorized(w, r, c, Request{Op: OpFences, Target: sc}) {
			return
		}
	}
	fs, epoch, err := api.svc.Fences(r.Context(), scopes...)
	if err != nil {
		api.fail(w, r, c, OpFences, err)
		return
	}
	now := api.now()
	views := make([]FenceView, len(fs))
	for i, f := range fs {
		views[i] = NewFenceView(scopes[i], f, now)
	}
	writeJSON(w, http.StatusOK, struct {
		Epoch  string      `json:"epoch"`
		Now    time.Time   `json:"now"`
		Fences []FenceView `json:"fences"`
	}{epoch, now.UTC(), views})
}

// noticeView is the JSON form of an announced termination.
type noticeView struct {
	At     time.Time `json:"at"`
	Scope  string    `json:"scope"`
	Policy string    `json:"policy"`
	Reason string    `json:"reason,omitempty"`
}

func (api *API) me(w http.ResponseWriter, r *http.Request, c *apiCall) {
	if _, e := query(r, nil, ""); e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	s := c.s
	// Whether the page should offer the admin console. Only a refusal
	// by the hook means "no"; an outage of what the hook consults must
	// not look like a demotion.
	err := api.authorize(r.Context(), s, Request{Op: OpConsole, Target: middleware.GlobalScope()})
	if err != nil && errors.Is(err, middleware.ErrStoreUnavailable) {
		api.fail(w, r, c, OpConsole, err)
		return
	}
	resp := struct {
		Issuer    string      `json:"issuer"`
		Sub       string      `json:"sub"`
		Tenant    string      `json:"tenant,omitempty"`
		SessionID string      `json:"session_id"`
		AuthTime  *time.Time  `json:"auth_time,omitempty"`
		ACR       string      `json:"acr,omitempty"`
		AMR       []string    `json:"amr,omitempty"`
		IssuedAt  time.Time   `json:"issued_at"`
		ExpiresAt time.Time   `json:"expires_at"`
		Admin     bool        `json:"admin"`
		Notice    *noticeView `json:"termination,omitempty"`
	}{Issuer: s.Issuer, Sub: s.Subject, Tenant: s.Tenant, SessionID: s.ID, ACR: s.ACR, AMR: s.AMR(),
		IssuedAt: s.IssuedAt.UTC(), ExpiresAt: s.AbsoluteExpiry.UTC(), Admin: err == nil}
	if !s.AuthTime.IsZero() {
		t := s.AuthTime.UTC()
		resp.AuthTime = &t
	}
	if d, ok := middleware.DecisionFromContext(r.Context()); ok && d.Notice != nil {
		resp.Notice = &noticeView{At: d.Notice.At.UTC(), Scope: d.Notice.Scope.Kind.String(),
			Policy: d.Notice.Policy.String(), Reason: d.Notice.Reason}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (api *API) csrf(w http.ResponseWriter, r *http.Request, c *apiCall) {
	if _, e := query(r, nil, ""); e != nil {
		writeAPIError(w, e.status, e.code, e.desc)
		return
	}
	k := api.csrfKeys[0]
	writeJSON(w, http.StatusOK, struct {
		Token  string `json:"csrf_token"`
		Header string `json:"header"`
	}{csrfMAC(k, c.s.ID), HeaderCSRFToken})
}
