package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sessionfence/sessionfence/internal/sealer"
)

// Config configures a [Guard]. Store and Keys are required; every other
// field has a safe default, stated next to it.
type Config struct {
	// Store holds the fences. Required.
	Store Store
	// Keys is the cookie key ring: each key [KeySize] random bytes; the
	// first seals, all open. Required.
	Keys [][]byte
	// CookieName is the session cookie's name. Default "__Host-sessionfence",
	// or "sessionfence" when InsecureCookies is set (the __Host- prefix
	// requires Secure).
	CookieName string
	// InsecureCookies drops the Secure attribute and the __Host- prefix so
	// the session works over plain HTTP. For loopback development only.
	InsecureCookies bool
	// SameSite for the session cookie. Default http.SameSiteLaxMode.
	SameSite http.SameSite
	// AccessLifetime is how long the access part of a session lasts before
	// it must be renewed. Default 5 minutes.
	AccessLifetime time.Duration
	// AbsoluteLifetime is how long a session lasts from login, whatever
	// renewals happen. Default 12 hours.
	AbsoluteLifetime time.Duration
	// IdPSessionTTL is how long an IdP-session tombstone is kept after a
	// logout. It must exceed how long the provider may still send tokens
	// carrying that sid. Default 30 days.
	IdPSessionTTL time.Duration
	// StaleFor enables bounded staleness: when the store cannot be reached,
	// fences confirmed within this duration are used (and the decision is
	// marked Stale); older ones fail closed. Default 0: fail closed at once.
	// Cost: every successful check then records the fences it read under a
	// mutex (measured at 13–34% of the guard's own time).
	StaleFor time.Duration
	// Skew is the clock skew tolerated between the identity provider and
	// the store when comparing token times with fence times. It is applied
	// in the safe direction for bearer tokens (a token must be issued more
	// than Skew after a fence) and leniently for auth_time at login (a
	// fresh login may report an auth_time up to Skew before the fence).
	// Default 5 seconds.
	Skew time.Duration
	// PolicyWindow is how long after a fence its login policy (fresh
	// authentication, MFA) applies. The policy exists so that the login
	// following a forced sign-out is a real one; once AbsoluteLifetime has
	// passed since the fence, every session it ended would have expired
	// anyway, and a later login is an ordinary one again. Default: the
	// AbsoluteLifetime. A fence bumped again starts a new window.
	PolicyWindow time.Duration
	// MFA says what counts as multi-factor authentication for
	// [PolicyMFA]. Default: amr containing one of "mfa", "otp", "hwk",
	// "swk", "sc".
	MFA MFAPolicy
	// LoginURL is where browser navigations are sent when refused, with
	// the query parameters reason, reauth and return_to. Default "/login".
	LoginURL string
	// Renewer extends sessions whose access part expired, typically with
	// the provider's refresh token (see the oidc package). Nil: such
	// sessions must log in again.
	Renewer Renewer
	// OnReload is called by Authenticate when a reload generation moved:
	// it should re-read the user's claims and permissions into s (Data,
	// Tenant, ACR). The session is then re-issued. An error refuses the
	// request as session_expired (fail closed). Nil: the session is
	// re-issued unchanged.
	OnReload func(ctx context.Context, s *Session) error
	// OnRevoked is called (synchronously, keep it short) for every Revoked
	// and ReauthRequired decision, so the application can clean up state
	// it keeps for the session.
	OnRevoked func(ctx context.Context, d Decision)
	// Observer, when set, receives every decision, fence change and store
	// operation, for metrics (see metrics/prom). It must be safe for
	// concurrent use and must not block. Nil: nothing is observed.
	Observer Observer
	// Logger receives one record per refusal and per renewal. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the application clock. Default time.Now.
	Now func() time.Time
}

// MFAPolicy says which authentications count as multi-factor: one whose acr
// is in ACR, or whose amr contains a method in AMR.
type MFAPolicy struct {
	ACR []string
	AMR []string
}

// Satisfied reports whether an authentication with acr and amr meets p.
func (p MFAPolicy) Satisfied(acr string, amr []string) bool {
	if acr != "" && slices.Contains(p.ACR, acr) {
		return true
	}
	for _, m := range amr {
		if slices.Contains(p.AMR, m) {
			return true
		}
	}
	return false
}

// Renewer renews the access part of a session, normally by redeeming a
// refresh token at the identity provider so that the provider's own
// revocation, account locks and policies are honoured.
type Renewer interface {
	// Renew may update s (ACR, Data) but must not change its identity. An
	// error wrapping [ErrRenewalRefused] ends the session; any other error
	// leaves it expired-but-renewable (the provider may be down).
	//
	// Renew may take seconds, and the session's fences were read before
	// it started. The guard therefore judges the session again, reading
	// the store, after Renew returns: a termination acknowledged while
	// Renew ran refuses the request. A Renew that persists something it
	// obtained (a rotated refresh token) should likewise call
	// [Guard.CheckSession] after the slow step and before persisting, and
	// persist nothing unless the session is still allowed.
	Renew(ctx context.Context, s *Session) error
}

// ErrRenewalRefused is wrapped by a [Renewer] when the provider refused to
// renew (for OAuth 2.0: error invalid_grant), or when the session has no
// means to renew.
var ErrRenewalRefused = errors.New("sessionfence: renewal refused")

// Guard decides, for each request, whether its credential is still good. It
// is safe for concurrent use. Build it with [New].
type Guard struct {
	cfg    Config
	sealer *sealer.Sealer
	log    *slog.Logger
	now    func() time.Time
	name   string
	// maxValue is the longest cookie value issued: browsers keep a
	// cookie whose name and value together fit in MaxCookieLen bytes.
	maxValue int

	scratch   sync.Pool // *scratch
	renew     renewGroup
	stale     *staleCache
	marks     marks
	forgotten forgetSet

	writer    *Writer
	lifetimes lifetimeMark

	hubMu         sync.Mutex
	hub           *hub
	hubSubscribed bool
}

type scratch struct {
	scopes [numScopes]Scope
	list   [numScopes]Scope
	fences [numScopes]Fence
	pos    [numScopes]int
	buf    [2*MaxCookieLen + 64]byte
}

// New validates cfg and returns a Guard.
func New(cfg Config) (*Guard, error) {
	if cfg.Store == nil {
		return nil, errors.New("sessionfence: Config.Store is nil; use memstore.New() for one process or valkeystore.New for many")
	}
	sl, err := sealer.New("session", cfg.Keys)
	if err != nil {
		return nil, err
	}
	if cfg.AccessLifetime < 0 || cfg.AbsoluteLifetime < 0 || cfg.StaleFor < 0 || cfg.Skew < 0 || cfg.IdPSessionTTL < 0 {
		return nil, errors.New("sessionfence: negative durations are not allowed in Config")
	}
	if cfg.AccessLifetime == 0 {
		cfg.AccessLifetime = 5 * time.Minute
	}
	if cfg.AbsoluteLifetime == 0 {
		cfg.AbsoluteLifetime = 12 * time.Hour
	}
	if cfg.AccessLifetime > cfg.AbsoluteLifetime {
		return nil, fmt.Errorf("sessionfence: AccessLifetime %v exceeds AbsoluteLifetime %v", cfg.AccessLifetime, cfg.AbsoluteLifetime)
	}
	if cfg.PolicyWindow < 0 {
		return nil, errors.New("sessionfence: negative PolicyWindow")
	}
	if cfg.PolicyWindow == 0 {
		cfg.PolicyWindow = cfg.AbsoluteLifetime
	}
	if cfg.IdPSessionTTL == 0 {
		cfg.IdPSessionTTL = 30 * 24 * time.Hour
	}
	if cfg.Skew == 0 {
		cfg.Skew = 5 * time.Second
	}
	if len(cfg.MFA.ACR) == 0 && len(cfg.MFA.AMR) == 0 {
		cfg.MFA.AMR = []string{"mfa", "otp", "hwk", "swk", "sc"}
	}
	if cfg.SameSite == 0 {
		cfg.SameSite = http.SameSiteLaxMode
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "__Host-sessionfence"
		if cfg.InsecureCookies {
			cfg.CookieName = "sessionfence"
		}
	}
	if strings.HasPrefix(cfg.CookieName, "__Host-") && cfg.InsecureCookies {
		return nil, errors.New("sessionfence: a __Host- cookie requires Secure; choose another CookieName with InsecureCookies")
	}
	if !validCookieName(cfg.CookieName) {
		return nil, fmt.Errorf("sessionfence: invalid cookie name %q", cfg.CookieName)
	}
	if cfg.LoginURL == "" {
		cfg.LoginURL = "/login"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{cfg: cfg, sealer: sl, log: cfg.Logger, now: cfg.Now, name: cfg.CookieName,
		maxValue: MaxCookieLen - len(cfg.CookieName)}
	g.scratch.New = func() any { return new(scratch) }
	g.renew.done = make(map[string]*renewCall)
	g.forgotten.half = forgetBound / 2
	if cfg.StaleFor > 0 {
		g.stale = newStaleCache(cfg.StaleFor)
	}
	g.writer, _ = NewWriter(WriterConfig{
		Store: cfg.Store, Observer: cfg.Observer, Logger: cfg.Logger, Now: cfg.Now,
		Lifetimes: Lifetimes{Session: cfg.AbsoluteLifetime, IdPSession: cfg.IdPSessionTTL},
	})
	g.writer.guard = g
	return g, nil
}

func validCookieName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// CookieName returns the session cookie's name.
func (g *Guard) CookieName() string { return g.name }

// Config returns the guard's configuration with defaults applied.
func (g *Guard) Config() Config { return g.cfg }

// Check decides for one sealed session cookie value. It opens the cookie,
// reads the session's fences and the store epoch in one batched call, and
// compares. It does not renew, reload or log; see [Guard.Authenticate].
//
// Fails closed: an unreadable store gives DecisionStoreUnavailable (unless
// bounded staleness answers), an epoch mismatch gives Revoked with
// [ScopeEpoch].
func (g *Guard) Check(ctx context.Context, value string) Decision {
	if value == "" {
		return Decision{Kind: DecisionNoSession}
	}
	sc := g.scratch.Get().(*scratch)
	defer g.scratch.Put(sc)
	pt, err := g.sealer.Open(value, sc.buf[:0])
	if err != nil {
		return Decision{Kind: DecisionInvalid, Cause: err}
	}
	s := new(Session)
	if err := s.decodePayload(pt); err != nil {
		return Decision{Kind: DecisionInvalid, Cause: err}
	}
	return g.decide(ctx, s, sc)
}

// CheckSession decides for a session already opened (one from
// [FromContext], a [Decision], or a [Renewer]'s argument) as [Guard.Check]
// does for a cookie: the absolute lifetime first, then one batched read of
// the session's fences and the store epoch, compared with what the session
// recorded. It reads the store every time: use it to ask "is this session
// still good now?" after a slow step, such as a provider's answer to a
// renewal, before acting on that step's result. It does not renew, reload,
// log or report to the Observer; the returned Decision carries a copy of s.
//
// Fails closed like Check: an unreadable store gives
// DecisionStoreUnavailable (unless bounded staleness answers). A nil s
// gives DecisionNoSession. Safe for concurrent use.
func (g *Guard) CheckSession(ctx context.Context, s *Session) Decision {
	if s == nil {
		return Decision{Kind: DecisionNoSession}
	}
	sc := g.scratch.Get().(*scratch)
	defer g.scratch.Put(sc)
	cp := *s
	return g.decide(ctx, &cp, sc)
}

// decide applies the absolute lifetime, then judges s against the store.
// s becomes the Decision's Session.
func (g *Guard) decide(ctx context.Context, s *Session, sc *scratch) Decision {
	now := g.now()
	if !now.Before(s.AbsoluteExpiry) {
		return Decision{Kind: DecisionSessionExpired, Session: s, Cause: ErrCookieExpired}
	}
	return g.judge(ctx, s, now, sc)
}

// judge reads the fences for s and compares them with what s recorded.
func (g *Guard) judge(ctx context.Context, s *Session, now time.Time, sc *scratch) Decision {
	s.scopes(&sc.scopes)
	list, pos := sc.list[:0], sc.pos[:0]
	for i, sp := range sc.scopes {
		if sp.Kind != 0 {
			list = append(list, sp)
			pos = append(pos, i)
		}
	}
	fences := sc.fences[:len(list)]
	d := Decision{Session: s}
	v, err := g.read(ctx, list, fences, &d, true)
	if err != nil {
		failed(&d, err)
		return d
	}
	if v.Epoch != s.Epoch {
		if epochBefore(v.Epoch, s.Epoch) && !d.Stale {
			// The cookie was sealed under an epoch newer than the store's:
			// data from before that epoch came back (or this instance
			// lags a rotation; then the refusal below stands alone).
			if err := g.rollback(ctx, v, math.MaxUint64, s.Epoch); err != nil {
				failed(&d, err)
				return d
			}
		}
		d.Kind, d.Scope = DecisionRevoked, Scope{Kind: ScopeEpoch}
		return d
	}
	if s.seq > v.Seq && !d.Stale {
		// The cookie was sealed after bumps this read does not show:
		// either this instance lags another's bump (the read stands) or
		// the store lost them (rollback).
		if err := g.rollback(ctx, v, s.seq, ""); err != nil {
			failed(&d, err)
			return d
		}
	}
	d.seq = v.Seq
	refused := false
	for j, f := range fences {
		i := pos[j]
		eff := f.EffectiveGen(now)
		rec := s.gens[i]
		// A session passes a fence while the generation it recorded is the
		// one in force, or (for a caller kept through an announced
		// termination) the one that announcement reserved.
		ok := f.Admits(rec, now)
		if sc.scopes[i].Kind == ScopeIdPSession && eff != 0 {
			ok = false // tombstone: a logged-out IdP session never comes back
		}
		d.reloads[i] = f.Reload
		if f.Reload != s.reloads[i] {
			d.Reload = true
		}
		if !ok {
			if !refused {
				d.Scope, d.FenceTime = list[j], f.EffectiveTime(now)
			}
			refused = true
			d.Policy = max(d.Policy, g.policy(f, now))
			continue
		}
		if f.Announced(now) && rec == f.Gen && (d.Notice == nil || f.PendingAt.Before(d.Notice.At)) {
			d.Notice = &Notice{At: f.PendingAt, Scope: list[j], Policy: f.PendingPolicy, Reason: f.Reason}
		}
	}
	switch {
	case refused && d.Policy != PolicyNone:
		d.Kind = DecisionReauthRequired
	case refused:
		d.Kind = DecisionRevoked
	case !now.Before(s.AccessExpiry):
		d.Kind = DecisionAccessExpired
	default:
		d.Kind = DecisionAllowed
	}
	return d
}

// read fetches fences. For checks of existing credentials (check), the
// bounded-staleness cache, when enabled, records what was read and answers
// when the store fails; logins neither feed it nor use it. A store that
// answers older than already seen is a rollback (see rollback.go): the
// error then wraps ErrStoreRolledBack.
func (g *Guard) read(ctx context.Context, list []Scope, fences []Fence, d *Decision, check bool) (Version, error) {
	start := observeStart(g.cfg.Observer)
	v, err := g.cfg.Store.Fences(ctx, list, fences)
	observeStore(g.cfg.Observer, StoreOpFences, start, err)
	if err == nil {
		if back, seen, newer := g.marks.observe(v); back {
			if err := g.rollback(ctx, v, seen, newer); err != nil {
				return Version{}, err
			}
		}
		if g.stale != nil && check {
			g.stale.record(g.now(), v, list, fences)
		}
		return v, nil
	}
	if !errors.Is(err, ErrStoreUnavailable) {
		err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	if g.stale != nil && check {
		if v, ok := g.stale.lookup(g.now(), list, fences); ok {
			d.Stale = true
			return v, nil
		}
	}
	return Version{}, err
}

// Authenticate is what adapters call per request: [Guard.Check], then a
// renewal through Config.Renewer when the access part expired (one renewal
// per session however many requests race), then Config.OnReload when a
// reload generation moved. It logs every refusal, calls Config.OnRevoked,
// and sets Decision.Cookie to the cookie the response must carry (a
// re-issued one, or a clearing one after a refusal that ends the session).
func (g *Guard) Authenticate(ctx context.Context, value string) Decision {
	return g.authenticate(ctx, value, nil)
}

// AuthenticateRequest is [Guard.Authenticate] for an HTTP request: the
// same steps, and when the session is renewed the session registry records
// the request's device (see [ClientInfoFromRequest]). Adapters call it; the
// device is only read on that rare path, so the hot path stays free of it.
func (g *Guard) AuthenticateRequest(r *http.Request, value string) Decision {
	return g.authenticate(r.Context(), value, r)
}

func (g *Guard) authenticate(ctx context.Context, value string, r *http.Request) Decision {
	d := g.Check(ctx, value)
	if d.Kind == DecisionAccessExpired && g.cfg.Renewer != nil {
		if r != nil {
			if _, ok := ClientInfoFrom(ctx); !ok {
				ctx = WithClientInfo(ctx, ClientInfoFromRequest(r))
			}
		}
		d = g.renewed(ctx, value, d)
	}
	if d.Kind == DecisionAllowed && d.Reload {
		d = g.reload(ctx, d)
	}
	if d.Notice != nil && d.Kind == DecisionAllowed {
		g.log.DebugContext(ctx, "sessionfence: termination announced", "session", d.Session.ID,
			"scope", d.Notice.Scope.String(), "at", d.Notice.At)
	}
	if d.Kind != DecisionAllowed {
		g.logRefusal(ctx, d)
		switch d.Kind {
		case DecisionInvalid, DecisionRevoked, DecisionReauthRequired, DecisionSessionExpired:
			d.Cookie = g.ClearCookie()
		}
		if d.Kind == DecisionRevoked || d.Kind == DecisionReauthRequired || d.Kind == DecisionSessionExpired {
			// The session can never pass again: drop it from the device
			// list now rather than at its absolute expiry.
			g.forget(ctx, d.Session)
		}
		if (d.Kind == DecisionRevoked || d.Kind == DecisionReauthRequired) && g.cfg.OnRevoked != nil {
			g.cfg.OnRevoked(ctx, d)
		}
	}
	observeDecision(g.cfg.Observer, d)
	return d
}

func (g *Guard) logRefusal(ctx context.Context, d Decision) {
	if d.Kind == DecisionNoSession {
		return
	}
	attrs := []slog.Attr{slog.String("decision", d.Kind.String())}
	if d.Session != nil {
		attrs = append(attrs, slog.String("session", d.Session.ID), slog.String("sub", d.Session.Subject))
	}
	if d.Kind == DecisionRevoked || d.Kind == DecisionReauthRequired {
		attrs = append(attrs, slog.String("scope", d.Scope.Kind.String()), slog.String("policy", d.Policy.String()))
	}
	if d.Cause != nil {
		attrs = append(attrs, slog.String("cause", d.Cause.Error()))
	}
	level := slog.LevelInfo
	if d.Kind == DecisionStoreUnavailable {
		level = slog.LevelError
	}
	g.log.LogAttrs(ctx, level, "sessionfence: request refused", attrs...)
}

// reload runs the reload hook and re-issues the session with the current
// reload generations.
func (g *Guard) reload(ctx context.Context, d Decision) Decision {
	s := *d.Session
	if g.cfg.OnReload != nil {
		if err := g.cfg.OnReload(ctx, &s); err != nil {
			return Decision{Kind: DecisionSessionExpired, Session: d.Session, Cause: fmt.Errorf("sessionfence: reload hook: %w", err)}
		}
	}
	s.reloads = d.reloads
	s.seq = max(s.seq, d.seq)
	ck, err := g.sessionCookie(&s)
	if err != nil {
		// The hook made the session too large to seal: end it here (the
		// cookie is cleared) instead of issuing one no request can use.
		return Decision{Kind: DecisionSessionExpired, Session: d.Session, Cause: fmt.Errorf("sessionfence: reloaded session: %w", err)}
	}
	d.Session = &s
	d.Reload = false
	d.Cookie = ck
	g.log.InfoContext(ctx, "sessionfence: session reloaded", "session", s.ID, "sub", s.Subject)
	return d
}

// Issue creates a session for a completed login: it reads the fences the
// new session will be bound to, refuses the login if one of them forbids it
// (an IdP session already logged out, a fence newer than the token, or a
// re-authentication policy the login does not meet), and returns the
// session with its cookie. Applications with their own login call it
// directly; the oidc package calls it from its callback.
//
// Errors: [*RevokedError], [*ReauthRequiredError], [*CookieTooLargeError]
// (a claim, or the claims together, too large for a cookie the guard could
// open again), or one wrapping [ErrStoreUnavailable]. No state changes on
// error: the session is not tracked in the registry.
func (g *Guard) Issue(ctx context.Context, c Claims) (*Session, *http.Cookie, error) {
	if c.Subject == "" {
		return nil, nil, errors.New("sessionfence: Claims.Subject is empty")
	}
	now := g.now()
	s := &Session{
		ID: newSessionID(), Issuer: c.Issuer, Subject: c.Subject, Tenant: c.Tenant,
		IdPSession: c.IdPSession, AuthTime: c.AuthTime, ACR: c.ACR, Data: c.Data,
		amr: strings.Join(c.AMR, " "), IssuedAt: now,
		AccessExpiry: now.Add(g.cfg.AccessLifetime), AbsoluteExpiry: now.Add(g.cfg.AbsoluteLifetime),
	}
	if strings.ContainsAny(s.amr, "\t\n\r") {
		return nil, nil, errors.New("sessionfence: amr values must not contain white space")
	}
	if err := s.checkFields(); err != nil {
		return nil, nil, err // before reading the store: no fence makes it fit
	}
	var scopes [numScopes]Scope
	s.scopes(&scopes)
	var list []Scope
	var idx []int
	for i, sp := range scopes {
		if sp.Kind != 0 {
			list, idx = append(list, sp), append(idx, i)
		}
	}
	if err := g.recordLifetimes(ctx); err != nil {
		return nil, nil, err
	}
	fences := make([]Fence, len(list))
	var d Decision
	v, err := g.read(ctx, list, fences, &d, false)
	if errors.Is(err, errRotated) {
		// The epoch was just rotated after a rollback: this login is the
		// first of the new epoch, read under it.
		v, err = g.read(ctx, list, fences, &d, false)
	}
	if err != nil {
		if !errors.Is(err, ErrStoreUnavailable) {
			err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		}
		return nil, nil, err
	}
	if err := g.loginAllowed(c, list, fences, now); err != nil {
		return nil, nil, err
	}
	s.Epoch, s.seq = v.Epoch, v.Seq
	for j, f := range fences {
		s.gens[idx[j]] = f.EffectiveGen(now)
		s.reloads[idx[j]] = f.Reload
	}
	ck, err := g.sessionCookie(s)
	if err != nil {
		return nil, nil, err
	}
	g.track(ctx, s)
	return s, ck, nil
}

// loginAllowed applies the login checks of [Guard.Issue] to claims against
// fences already read for scopes: IdP-session tombstones, tokens older than
// a fence, and re-authentication policies.
func (g *Guard) loginAllowed(c Claims, scopes []Scope, fences []Fence, now time.Time) error {
	var reauth *ReauthRequiredError
	for j, f := range fences {
		sp := scopes[j]
		if sp.Kind == ScopeIdPSession && f.EffectiveGen(now) != 0 {
			return &RevokedError{Scope: sp}
		}
		if f.EffectiveGen(now) == 0 {
			continue
		}
		ft := f.EffectiveTime(now)
		p := g.policy(f, now)
		if !c.TokenIssuedAt.IsZero() && c.TokenIssuedAt.Before(ft) {
			// iat has whole seconds: a token stamped in the fence's own
			// second may have been minted just after it. Only one stamped
			// in an earlier second certainly predates the fence; the
			// other is sent back for a fresh login rather than refused.
			if !c.TokenIssuedAt.Add(time.Second).After(ft) {
				return &RevokedError{Scope: sp}
			}
			if reauth == nil || max(p, PolicyFreshLogin) > reauth.Policy {
				reauth = &ReauthRequiredError{Scope: sp, Policy: max(p, PolicyFreshLogin), FenceTime: ft, Reason: "iat"}
				if reauth.Policy == PolicyMFA {
					reauth.ACR = g.cfg.MFA.ACR
				}
			}
			continue
		}
		if p == PolicyNone {
			continue
		}
		// auth_time comes from the provider's clock; tolerate Skew so a
		// genuinely fresh login is not refused for clock drift.
		fresh := !c.AuthTime.IsZero() && c.AuthTime.After(ft.Add(-g.cfg.Skew))
		reason := ""
		switch {
		case !fresh:
			reason = "auth_time"
		case p == PolicyMFA && !g.cfg.MFA.Satisfied(c.ACR, c.AMR):
			reason = "mfa"
		}
		if reason != "" && (reauth == nil || p > reauth.Policy) {
			reauth = &ReauthRequiredError{Scope: sp, Policy: p, FenceTime: ft, Reason: reason}
			if p == PolicyMFA {
				reauth.ACR = g.cfg.MFA.ACR
			}
		}
	}
	if reauth != nil {
		return reauth
	}
	return nil
}

// Reissue seals s again, for an application that changed its Data or
// claims outside the reload hook. It re-checks the session first, so a
// revoked session is never revived: the error is a [*RevokedError] or
// [*ReauthRequiredError] then, or wraps [ErrStoreUnavailable]. A session
// too large for a cookie the guard could open gives a
// [*CookieTooLargeError].
func (g *Guard) Reissue(ctx context.Context, s *Session) (*http.Cookie, error) {
	if err := s.checkFields(); err != nil {
		return nil, err // before reading the store: no fence makes it fit
	}
	sc := g.scratch.Get().(*scratch)
	defer g.scratch.Put(sc)
	cp := *s
	d := g.judge(ctx, &cp, g.now(), sc)
	switch d.Kind {
	case DecisionAllowed, DecisionAccessExpired:
	case DecisionStoreUnavailable:
		return nil, d.Cause
	case DecisionReauthRequired:
		return nil, &ReauthRequiredError{Scope: d.Scope, Policy: d.Policy, FenceTime: d.FenceTime, Reason: "auth_time"}
	default:
		return nil, &RevokedError{Scope: d.Scope}
	}
	cp.reloads = d.reloads
	cp.seq = max(cp.seq, d.seq)
	return g.sessionCookie(&cp)
}

// seal returns the sealed cookie value for s, or an error when the value
// could not be used: a [*CookieTooLargeError] when a string of s is longer
// than the payload carries or the value longer than g.maxValue, or one
// wrapping errPayload for anything else the decoder refuses. It does not
// judge the session; callers (Issue, Reissue, renewal, reload, the admin
// service's keep-caller) have already decided it may pass.
func (g *Guard) seal(s *Session) (string, error) {
	if err := s.checkFields(); err != nil {
		return "", err
	}
	buf := s.appendPayload(make([]byte, 0, 256))
	if n := sealer.SealedLen(len(buf)); n > g.maxValue {
		return "", &CookieTooLargeError{Field: "cookie", Size: n, Limit: g.maxValue}
	}
	// What is left for the decoder to refuse (a time beyond its range)
	// is found by decoding what is about to be sealed: a session cookie
	// is issued only if the guard can open it.
	if err := new(Session).decodePayload(buf); err != nil {
		return "", fmt.Errorf("sessionfence: session cannot be sealed: %w", err)
	}
	return g.sealer.Seal(buf), nil
}

// sessionCookie returns the session cookie carrying s, or seal's error.
func (g *Guard) sessionCookie(s *Session) (*http.Cookie, error) {
	v, err := g.seal(s)
	if err != nil {
		return nil, err
	}
	maxAge := int(s.AbsoluteExpiry.Sub(g.now()) / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	return &http.Cookie{
		Name: g.name, Value: v, Path: "/", MaxAge: maxAge,
		Secure: !g.cfg.InsecureCookies, HttpOnly: true, SameSite: g.cfg.SameSite,
	}, nil
}

// ClearCookie returns a cookie that makes the browser delete the session
// cookie.
func (g *Guard) ClearCookie() *http.Cookie {
	return &http.Cookie{
		Name: g.name, Value: "", Path: "/", MaxAge: -1,
		Secure: !g.cfg.InsecureCookies, HttpOnly: true, SameSite: g.cfg.SameSite,
	}
}

// SessionFromCookie opens a session cookie value without consulting the
// store. It is for logout and diagnostics, where the session's identity is
// needed even if it is already revoked; never use it to authorize.
func (g *Guard) SessionFromCookie(value string) (*Session, error) {
	pt, err := g.sealer.Open(value, nil)
	if err != nil {
		return nil, err
	}
	s := new(Session)
	if err := s.decodePayload(pt); err != nil {
		return nil, err
	}
	return s, nil
}

// policy returns the login policy of f in force at now: the fence's
// effective policy while within Config.PolicyWindow of its effective time,
// PolicyNone after.
func (g *Guard) policy(f Fence, now time.Time) Policy {
	p := f.EffectivePolicy(now)
	if p != PolicyNone && now.Sub(f.EffectiveTime(now)) > g.cfg.PolicyWindow {
		return PolicyNone
	}
	return p
}
