// Package app is the wiring the example applications share, whatever
// their router: configuration from the environment, the store, the OpenID
// Connect relying party (which builds the guard), the back-channel logout
// receiver, the admin API and page, the bearer verifier, the pages and the
// server-sent-event stream. examples/nethttp and examples/gin only route
// requests to these pieces with their own framework.
package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/backchannel"
	"github.com/sessionfence/sessionfence/metrics/prom"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/admin/ui"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
	"github.com/sessionfence/sessionfence/oidc"
)

const (
	httpTimeout = 10 * time.Second
	// healthTimeout bounds the store probe of GET /healthz.
	healthTimeout = 2 * time.Second
)

// Fixed paths of the example applications (the routers use them too).
const (
	LoginPath       = "/login"
	CallbackPath    = "/callback"
	LogoutPath      = "/logout"
	BackchannelPath = "/backchannel-logout"
	AdminPath       = "/admin/"
	AdminAPIPath    = "/admin/api/"
	BannerPath      = "/banner.js"
	AssetsPath      = "/assets/"
)

// App holds every piece an example routes requests to. Build it with
// [New]; it is safe for concurrent use.
type App struct {
	cfg Config
	log *slog.Logger

	// Guard judges every session cookie and bearer token; the RP built it.
	Guard *middleware.Guard
	// Metrics serves this instance's Prometheus metrics (GET /metrics):
	// decisions, bumps, back-channel results, store errors and latency.
	Metrics http.Handler
	// RP logs users in and out (GET /login, GET /callback, POST /logout)
	// and renews their sessions.
	RP *oidc.RP
	// Receiver handles POST /backchannel-logout.
	Receiver *backchannel.Receiver
	// Admin performs administrative actions. Console serves the admin
	// page at /admin/ and, below it, the JSON API at /admin/api/ (one
	// mount, behind the guard). Banner serves banner.js (outside the
	// guard).
	Admin   *admin.Service
	Console http.Handler
	Banner  http.Handler
	// Bearer verifies the provider's JWT access tokens for GET /api/hello.
	Bearer middleware.TokenVerifier

	store      middleware.Store
	closeStore func()
	authorize  admin.AuthorizeFunc
}

// New validates cfg, opens the store, discovers the provider and builds
// every piece. Call Close when done.
func New(ctx context.Context, cfg Config) (*App, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: cfg.Logger.With("instance", cfg.Name)}
	if cfg.RandomKeys {
		a.log.Warn("SESSION_KEYS is empty: using a random key; sessions end at restart and are not shared with other instances")
	}
	if err := a.openStore(); err != nil {
		return nil, err
	}
	if err := a.build(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) openStore() error {
	switch {
	case a.cfg.Store != nil:
		a.store = a.cfg.Store
	case a.cfg.ValkeyAddr == "":
		a.store = memstore.New(memstore.Config{})
		a.log.Info("store: in this process (memstore); set VALKEY_ADDR to share fences between instances")
	default:
		// valkey-go turns on server-assisted client-side caching by
		// default (RESP3); valkeystore.New checks that it works.
		client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{a.cfg.ValkeyAddr}})
		if err != nil {
			return fmt.Errorf("VALKEY_ADDR %s: %w", a.cfg.ValkeyAddr, err)
		}
		st, err := valkeystore.New(client, valkeystore.Config{})
		if err != nil {
			client.Close()
			return fmt.Errorf("VALKEY_ADDR %s: %w", a.cfg.ValkeyAddr, err)
		}
		a.store, a.closeStore = st, client.Close
		a.log.Info("store: valkey", "addr", a.cfg.ValkeyAddr)
	}
	return nil
}

func (a *App) build(ctx context.Context) error {
	cfg := a.cfg
	// One registry per instance: the demo runs two instances in one
	// process, and each exposes its own figures.
	reg := prometheus.NewRegistry()
	obs, err := prom.New(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	a.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	rp, err := oidc.New(ctx, oidc.Config{
		Guard: middleware.Config{
			Observer:        obs,
			Store:           a.store,
			Keys:            cfg.SessionKeys,
			InsecureCookies: cfg.InsecureCookies,
			MFA:             middleware.MFAPolicy{ACR: []string{cfg.MFAACR}},
			Logger:          a.log,
		},
		Providers: []oidc.ProviderConfig{{
			Issuer:                cfg.Issuer,
			ClientID:              cfg.ClientID,
			ClientSecret:          cfg.ClientSecret,
			RedirectURL:           cfg.PublicURL + CallbackPath,
			PostLogoutRedirectURL: cfg.PublicURL + "/",
			TenantClaim:           cfg.TenantClaim,
		}},
		HTTPClient: cfg.HTTPClient,
		OnLogin:    onLogin,
		Logger:     a.log,
	})
	if err != nil {
		return fmt.Errorf("OpenID Connect: %w", err)
	}
	a.RP, a.Guard = rp, rp.Guard()

	if a.Receiver, err = backchannel.New(backchannel.Config{
		Guard:      a.Guard,
		Issuers:    []backchannel.Issuer{{Issuer: cfg.Issuer, ClientID: cfg.ClientID}},
		HTTPClient: cfg.HTTPClient,
	}); err != nil {
		return fmt.Errorf("back-channel logout: %w", err)
	}

	if a.Admin, err = admin.New(admin.Config{Guard: a.Guard}); err != nil {
		return err
	}
	a.authorize = authorizer(cfg.Issuer, cfg.AdminSubjects)
	api, err := admin.NewAPI(a.Admin, admin.APIConfig{
		Prefix:       AdminAPIPath,
		Authorize:    a.authorize,
		PublicOrigin: cfg.PublicURL,
	})
	if err != nil {
		return err
	}
	// The page is one level above the API (AdminPath) and takes the
	// API's prefix and the guard's login URL from the API.
	if a.Console, err = ui.New(api, ui.Config{BannerInterval: bannerInterval}); err != nil {
		return err
	}
	a.Banner = ui.BannerHandler()
	if len(cfg.AdminSubjects) == 0 {
		a.log.Warn("ADMIN_SUBJECTS is empty: nobody can use the admin API")
	}

	// A plain-HTTP development provider is accepted on loopback only, and
	// only because the cookies are already relaxed for plain HTTP.
	if a.Bearer, err = oidc.NewBearerVerifier(ctx, oidc.BearerConfig{
		Issuers:                 []string{cfg.Issuer},
		Audience:                cfg.APIAudience,
		TenantClaim:             cfg.TenantClaim,
		HTTPClient:              cfg.HTTPClient,
		InsecureAllowHTTPIssuer: cfg.InsecureCookies,
	}); err != nil {
		return fmt.Errorf("bearer tokens: %w", err)
	}
	return nil
}

// bannerInterval is how often, in seconds, banner.js asks whether a
// sign-out is announced: short, so the demo reacts quickly.
const bannerInterval = 5

// onLogin keeps the user's display name and roles from the ID token in
// the session's Data, for the pages; authorization uses ADMIN_SUBJECTS.
func onLogin(_ context.Context, l *oidc.Login) error {
	var c struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
	}
	if err := l.IDTokenClaims(&c); err != nil {
		return nil // the claims are optional
	}
	if len(c.Name) > 100 {
		c.Name = c.Name[:100]
	}
	if len(c.Roles) > 10 {
		c.Roles = c.Roles[:10]
	}
	b, err := json.Marshal(map[string]any{"name": c.Name, "roles": c.Roles})
	if err != nil {
		return nil
	}
	l.Claims.Data = string(b)
	return nil
}

// authorizer lets the listed subjects do everything, and everyone list
// their own sessions (the page's "your sessions").
func authorizer(issuer string, admins []string) admin.AuthorizeFunc {
	adminFn := admin.AllowSubjects(issuer, admins...)
	return func(ctx context.Context, s *middleware.Session, r admin.Request) error {
		if adminFn(ctx, s, r) == nil {
			return nil
		}
		if r.Op == admin.OpSessions && s != nil && r.Target == middleware.SubjectScope(s.Issuer, s.Subject) {
			return nil
		}
		return admin.ErrForbidden
	}
}

// Close releases what New opened (a Valkey client); a Store passed in
// Config is left open.
func (a *App) Close() {
	if a.closeStore != nil {
		a.closeStore()
		a.closeStore = nil
	}
}

// Config returns the configuration with defaults applied.
func (a *App) Config() Config { return a.cfg }

// Logger returns the instance's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// IsAdmin reports whether s may use the admin console.
func (a *App) IsAdmin(ctx context.Context, s *middleware.Session) bool {
	return s != nil && a.authorize(ctx, s, admin.Request{Op: admin.OpConsole, Target: middleware.GlobalScope()}) == nil
}

// Me is the body of GET /me.
type Me struct {
	Sub    string `json:"sub"`
	SID    string `json:"sid"` // the ID token's sid (the provider's session)
	Tenant string `json:"tenant"`
	// AuthTime is the ID token's auth_time in Unix seconds; null when the
	// provider sent none.
	AuthTime *int64   `json:"auth_time"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
}

// MeOf returns the /me body for s.
func MeOf(s *middleware.Session) Me {
	m := Me{Sub: s.Subject, SID: s.IdPSession, Tenant: s.Tenant, ACR: s.ACR, AMR: s.AMR()}
	if m.AMR == nil {
		m.AMR = []string{}
	}
	if !s.AuthTime.IsZero() {
		t := s.AuthTime.Unix()
		m.AuthTime = &t
	}
	return m
}

// Hello is the body of GET /api/hello.
type Hello struct {
	Hello    string `json:"hello"`
	Issuer   string `json:"iss"`
	Tenant   string `json:"tenant,omitempty"`
	SID      string `json:"sid,omitempty"`
	IssuedAt int64  `json:"iat"`
}

// HelloOf returns the /api/hello body for a verified token.
func HelloOf(tc *middleware.TokenClaims) Hello {
	return Hello{Hello: tc.Subject, Issuer: tc.Issuer, Tenant: tc.Tenant, SID: tc.IdPSession, IssuedAt: tc.IssuedAt.Unix()}
}

// ErrorBody is the JSON error shape of the example's own routes, the same
// as the library's.
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// Health is the body of GET /healthz.
type Health struct {
	Status string `json:"status"`
	Store  string `json:"store"`
}

// Healthz probes the store with one fence read. It answers 200 when the
// store answers and 503 otherwise: an instance that cannot read fences
// refuses every session, so it should not get traffic.
func (a *App) Healthz(ctx context.Context) (int, Health) {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	var f [1]middleware.Fence
	if _, err := a.store.Fences(ctx, []middleware.Scope{middleware.GlobalScope()}, f[:]); err != nil {
		a.log.Error("healthz: store unavailable", "cause", err.Error())
		return http.StatusServiceUnavailable, Health{Status: "unavailable", Store: "unavailable"}
	}
	return http.StatusOK, Health{Status: "ok", Store: "ok"}
}

// WriteJSON writes v with status and Cache-Control: no-store, for the
// net/http routes (gin uses c.JSON).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// dataName returns the display name kept in s.Data by onLogin.
func dataName(s *middleware.Session) string {
	var d struct {
		Name string `json:"name"`
	}
	if s == nil || s.Data == "" || json.Unmarshal([]byte(s.Data), &d) != nil {
		return ""
	}
	return d.Name
}

// admins reports the configured administrators, for the start-up log.
func (a *App) admins() []string { return slices.Clone(a.cfg.AdminSubjects) }
