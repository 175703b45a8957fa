package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Writer is the one way fences change. Every path that revokes, announces,
// cancels or reloads (the admin service and its HTTP API, the operator CLI,
// the back-channel logout receiver, a user's own logout, deprovisioning)
// goes through [Writer.Write], which applies every rule in one place:
//
//   - the expiry rule: a session or IdP-session fence outlives every session
//     it can revoke, whoever writes it (see [Lifetimes]); other fences are
//     kept for ever;
//   - the keep rule: a caller's session kept through the change is
//     re-issued from the change's own result, and only when nothing else
//     changed the scope in between;
//   - reporting: the Observer's bump count and store latency, one audit
//     entry (when the store keeps an audit log) and one slog record.
//
// A Writer is safe for concurrent use. A guard's own ([Guard.Writer]) can
// keep the caller's session; one made by [NewWriter] (for tools that hold no
// cookie keys, such as the CLI) cannot.
type Writer struct {
	store Store
	obs   Observer
	log   *slog.Logger
	now   func() time.Time
	life  Lifetimes
	guard *Guard // nil: Keep is refused
	audit AuditLog
	reg   Registry
	rec   LifetimeRecorder
}

// WriterConfig configures a [Writer] made by [NewWriter].
type WriterConfig struct {
	// Store holds the fences. Required.
	Store Store
	// Lifetimes are the writer's own knowledge of how long sessions and
	// IdP-session tombstones must last; zero fields defer to what the
	// deployment's guards recorded in the store (and, when nothing is
	// recorded, such fences are kept for ever). Default zero.
	Lifetimes Lifetimes
	// Observer receives bump counts and store latencies. Default none.
	Observer Observer
	// Logger receives one record per change. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for audit entries. Default time.Now.
	Now func() time.Time
}

// NewWriter returns a Writer over cfg.Store that cannot keep sessions.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if cfg.Store == nil {
		return nil, errors.New("sessionfence: WriterConfig.Store is nil")
	}
	if cfg.Lifetimes.Session < 0 || cfg.Lifetimes.IdPSession < 0 {
		return nil, errors.New("sessionfence: negative Lifetimes")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Writer{store: cfg.Store, obs: cfg.Observer, log: cfg.Logger, now: cfg.Now, life: cfg.Lifetimes}
	w.audit, _ = cfg.Store.(AuditLog)
	w.reg, _ = cfg.Store.(Registry)
	w.rec, _ = cfg.Store.(LifetimeRecorder)
	return w, nil
}

// Writer returns the guard's fence writer: its store, observer, logger and
// clock, its lifetimes, and the ability to keep a caller's session.
func (g *Guard) Writer() *Writer { return g.writer }

// Store returns the store the writer changes.
func (w *Writer) Store() Store { return w.store }

// Change is one fence change made through [Writer.Write].
type Change struct {
	// Scope is the fence to change. Required.
	Scope Scope
	// Kind says what to do: [BumpRevoke], [BumpAnnounce] (with At),
	// [BumpCancel] or [BumpReload].
	Kind BumpKind
	// Policy is what the next login must prove (revoke and announce).
	Policy Policy
	// At is the effective time of an announcement.
	At time.Time
	// Reason is free text for the audit log and the fence (truncated to
	// MaxReasonLen there).
	Reason string
	// Actor identifies who acts: an administrator's issuer|sub, "cli:<user>",
	// "backchannel:<issuer>", the user's own issuer|sub for a logout.
	// Required: an anonymous change is refused with [ErrNoActor].
	Actor string
	// Action is the audit verb. Default: terminate_all, terminate_tenant,
	// terminate_user, terminate_idp_session or terminate_session for a
	// revoke, announce, cancel, reload.
	Action string
	// Keep is the caller's own session, to be kept through a revoke,
	// announce or cancel of a scope that covers it: [Written.Cookie] is
	// then its cookie re-issued for the fence after the change. Only a
	// guard's writer can keep sessions.
	Keep *Session
	// RequestID and ClientIP identify the request, for the audit entry.
	RequestID string
	ClientIP  string
	// Then, when set, runs after a successful write and before the audit
	// entry is appended; the notes it returns are added to the entry (for
	// best-effort follow-ups such as revoking refresh tokens).
	Then func(ctx context.Context, f Fence) []string
}

// Written is what [Writer.Write] did.
type Written struct {
	// Fence is the fence after the change.
	Fence Fence
	// Entry is the audit entry recorded for the change.
	Entry AuditEntry
	// Cookie is Change.Keep's cookie re-issued for the new fence; nil when
	// no session was kept (or it could not be, which Entry.Notes says).
	// Send it with the same response.
	Cookie *http.Cookie
}

// Errors of [Writer.Write].
var (
	// ErrNoActor: a change without Change.Actor.
	ErrNoActor = errors.New("sessionfence: a fence change needs an actor")
	// ErrKeepNotCovered: Change.Keep names a session the scope does not
	// cover, or the change is one through which no session is kept.
	ErrKeepNotCovered = errors.New("sessionfence: the session to keep is not covered by the change")
	// ErrKeepUnsupported: Change.Keep on a writer made by [NewWriter].
	ErrKeepUnsupported = errors.New("sessionfence: this writer cannot keep sessions (it holds no cookie keys)")
)

// keepMargin is how much longer than the longest session a session fence
// is kept: room for clock differences between the writer and the store.
const keepMargin = time.Hour

// Write applies c atomically in the store and reports it. Nothing changes
// on error; the errors are [ErrNoActor], [ErrKeepNotCovered],
// [ErrKeepUnsupported], [ErrInvalidScope], [ErrInvalidBump],
// [ErrNothingPending], or one wrapping [ErrStoreUnavailable].
func (w *Writer) Write(ctx context.Context, c Change) (Written, error) {
	if strings.TrimSpace(c.Actor) == "" {
		return Written{}, ErrNoActor
	}
	if !c.Scope.Valid() {
		return Written{}, fmt.Errorf("%w: %v", ErrInvalidScope, c.Scope)
	}
	b := Bump{Kind: c.Kind, Policy: c.Policy, At: c.At, Reason: c.Reason}
	if c.Kind != BumpAnnounce {
		b.At = time.Time{}
	}
	if _, err := ApplyBump(Fence{}, b, time.Time{}); errors.Is(err, ErrInvalidBump) {
		return Written{}, fmt.Errorf("sessionfence: %s %v: %w", c.Kind, c.Scope, err)
	}
	var keep *keeper
	if c.Keep != nil {
		k, err := w.prepareKeep(ctx, c)
		if err != nil {
			return Written{}, err
		}
		keep = k
	}
	ttl, err := w.ttl(ctx, c.Scope)
	if err != nil {
		return Written{}, err
	}
	b.TTL = ttl
	action := c.Action
	if action == "" {
		action = defaultAction(c)
	}
	affected := -1
	if c.Kind != BumpCancel {
		affected = w.count(ctx, c.Scope)
	}

	start := observeStart(w.obs)
	f, err := w.store.Bump(ctx, c.Scope, b)
	observeStore(w.obs, StoreOpBump, start, err)
	if err != nil {
		return Written{}, fmt.Errorf("sessionfence: %s %v: %w", action, c.Scope, err)
	}
	observeBump(w.obs, c.Kind, c.Scope.Kind)

	out := Written{Fence: f}
	var notes []string
	if keep != nil {
		var note string
		out.Cookie, note = keep.issue(c, f)
		if note != "" {
			notes = append(notes, note)
		} else if affected > 0 {
			affected--
		}
	}
	if c.Kind == BumpRevoke && c.Scope.Kind == ScopeSession && w.reg != nil {
		// The registry is advisory: a failure is logged, not returned.
		if err := w.reg.ForgetSession(ctx, SessionInfo{ID: c.Scope.ID}); err != nil {
			w.log.WarnContext(ctx, "sessionfence: session registry update failed", "session", c.Scope.ID, "cause", err.Error())
		}
	}
	if c.Then != nil {
		notes = append(notes, c.Then(ctx, f)...)
	}
	e := AuditEntry{
		Actor: c.Actor, Action: action, Scope: c.Scope.String(), Reason: c.Reason,
		Generation: f.Gen, Affected: affected, RequestID: c.RequestID, ClientIP: c.ClientIP, Notes: notes,
	}
	if c.Kind == BumpRevoke || c.Kind == BumpAnnounce {
		e.Policy = c.Policy.String()
	}
	if c.Kind == BumpAnnounce {
		at := c.At.UTC()
		e.EffectiveAt = &at
	}
	if out.Cookie != nil {
		e.KeptSession = c.Keep.ID
	}
	out.Entry = w.record(ctx, e)
	return out, nil
}

// defaultAction is the audit verb of c when none is given.
func defaultAction(c Change) string {
	switch c.Kind {
	case BumpAnnounce:
		return "announce"
	case BumpCancel:
		return "cancel"
	case BumpReload:
		return "reload"
	}
	switch c.Scope.Kind {
	case ScopeGlobal:
		return "terminate_all"
	case ScopeTenant:
		return "terminate_tenant"
	case ScopeSubject:
		return "terminate_user"
	case ScopeIdPSession:
		return "terminate_idp_session"
	}
	return "terminate_session"
}

// ttl is the expiry rule. Fences of the global, tenant and subject scopes
// are kept for ever: they are few, and a subject or tenant fence may have
// to refuse a bearer token or login at any time. A session fence is
// needed only while a session it covers can live, an IdP-session
// tombstone while the provider may still send tokens with that sid; both
// are written with that much expiry, taken as the longest of this writer's
// own lifetimes and those every guard of the deployment recorded in the
// store (see [Lifetimes]). When neither is known the fence is kept for
// ever: never guess a lifetime, since a fence that expires before its
// session resurrects it.
func (w *Writer) ttl(ctx context.Context, sc Scope) (time.Duration, error) {
	if sc.Kind != ScopeSession && sc.Kind != ScopeIdPSession {
		return 0, nil
	}
	l := w.life
	if w.rec != nil {
		rec, err := w.rec.RaiseLifetimes(ctx, Lifetimes{})
		if err != nil {
			return 0, fmt.Errorf("sessionfence: reading the recorded lifetimes: %w", err)
		}
		l = l.max(rec)
	}
	if sc.Kind == ScopeIdPSession {
		return l.IdPSession, nil // zero: for ever
	}
	if l.Session == 0 {
		return 0, nil
	}
	return l.Session + keepMargin, nil
}

// count asks the registry, when the store keeps one, how many live
// sessions the scope covers; -1 when unknown.
func (w *Writer) count(ctx context.Context, sc Scope) int {
	if w.reg == nil {
		return -1
	}
	n, ok, err := w.reg.CountSessions(ctx, sc)
	if err != nil || !ok {
		if sc.Kind == ScopeSession {
			return 1
		}
		return -1
	}
	return n
}

// record appends e to the audit log (when the store keeps one) and logs it.
func (w *Writer) record(ctx context.Context, e AuditEntry) AuditEntry {
	if e.Time.IsZero() {
		e.Time = w.now().UTC()
	}
	if w.audit != nil {
		start := observeStart(w.obs)
		stored, err := w.audit.AppendAudit(ctx, e)
		observeStore(w.obs, StoreOpAudit, start, err)
		if err != nil {
			e.Notes = append(e.Notes, "audit log write failed: "+err.Error())
			w.log.ErrorContext(ctx, "sessionfence: audit log write failed", "action", e.Action, "scope", e.Scope, "cause", err.Error())
		} else {
			e = stored
		}
	}
	attrs := []slog.Attr{
		slog.String("actor", e.Actor), slog.String("action", e.Action), slog.String("scope", e.Scope),
		slog.String("reason", e.Reason), slog.String("policy", e.Policy), slog.Uint64("generation", e.Generation),
		slog.Int("affected", e.Affected),
	}
	if e.EffectiveAt != nil {
		attrs = append(attrs, slog.Time("effective_at", *e.EffectiveAt))
	}
	if e.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", e.RequestID))
	}
	w.log.LogAttrs(ctx, slog.LevelWarn, "sessionfence: fence changed", attrs...)
	return e
}

// keeper carries what a kept session needs across the write: the session
// as it passed just before, and the fence of the scope it was judged
// against.
type keeper struct {
	g      *Guard
	s      Session
	before Fence
	pos    int
}

// prepareKeep checks that c.Keep may be kept through c: a guard's writer,
// a revoke, announce or cancel of a scope that covers the session, and the
// session passing every fence right now (a caller refused by another
// change a moment ago is not revived by their own).
func (w *Writer) prepareKeep(ctx context.Context, c Change) (*keeper, error) {
	if w.guard == nil {
		return nil, ErrKeepUnsupported
	}
	if c.Kind == BumpReload || !c.Scope.Covers(c.Keep) {
		return nil, ErrKeepNotCovered
	}
	g := w.guard
	sc := g.scratch.Get().(*scratch)
	defer g.scratch.Put(sc)
	k := &keeper{g: g, s: *c.Keep, pos: int(c.Scope.Kind) - 1}
	d := g.decide(ctx, &k.s, sc)
	switch d.Kind {
	case DecisionAllowed, DecisionAccessExpired:
	case DecisionStoreUnavailable:
		return nil, d.Cause
	case DecisionSessionExpired:
		// Past its absolute lifetime: nothing to keep (and its session
		// fence may have expired with it, so the fences prove nothing).
		return nil, fmt.Errorf("%w: %w", ErrKeepNotCovered, d.Cause)
	default:
		return nil, &RevokedError{Scope: d.Scope}
	}
	// judge read the session's scopes in position order, skipping empty
	// ones: the scope's fence is at the index of its position among them.
	j := 0
	for i := 0; i < k.pos; i++ {
		if sc.scopes[i].Kind != 0 {
			j++
		}
	}
	k.before = sc.fences[j]
	k.s.reloads = d.reloads
	k.s.seq = max(k.s.seq, d.seq)
	return k, nil
}

// issue returns the kept session's cookie for the fence after the change,
// or a note saying why it was not kept. The change must be the only one
// between the read in prepareKeep and the write: each revoke and announce
// hands out exactly one new generation and a cancel none, so any other
// difference means someone else changed the scope meanwhile, and their
// change must reach this session too.
func (k *keeper) issue(c Change, after Fence) (*http.Cookie, string) {
	rec := k.s.gens[k.pos]
	raced := "the caller's session was not kept: another change of " + c.Scope.String() + " landed at the same time"
	switch c.Kind {
	case BumpRevoke:
		if after.Reserved != k.before.Reserved+1 {
			return nil, raced
		}
		k.s.gens[k.pos] = after.Gen
	case BumpAnnounce:
		if after.Reserved != k.before.Reserved+1 {
			return nil, raced
		}
		// The generation the announcement reserved: it passes while the
		// announcement is pending and once it takes effect, and never
		// after a later revoke, cancel or re-announcement of the scope.
		k.s.gens[k.pos] = after.Reserved
	case BumpCancel:
		if after.Reserved != k.before.Reserved || after.Gen != k.before.Gen {
			return nil, raced
		}
		if rec == after.Gen {
			return nil, "" // not kept through the announcement: nothing to re-issue
		}
		k.s.gens[k.pos] = after.Gen
	default:
		return nil, ""
	}
	ck, err := k.g.sessionCookie(&k.s)
	if err != nil {
		return nil, "the caller's session was not kept: " + err.Error()
	}
	return ck, ""
}

// Covers reports whether sc is one of the scopes session s was issued
// under, so that a change of sc reaches s (and [Change.Keep] may keep s).
// A nil session is covered by nothing.
func (sc Scope) Covers(s *Session) bool {
	if s == nil {
		return false
	}
	var ss [numScopes]Scope
	s.scopes(&ss)
	i := int(sc.Kind) - 1
	return i >= 0 && i < numScopes && ss[i] == sc
}

// Lifetimes say how long the credentials a deployment issues can live. A
// fence that ends a session must outlive it, or the session passes again
// once the fence expires; but a writer such as the CLI, or a back-channel
// receiver configured apart from the application, cannot know the
// application's lifetimes. So every guard records its own in the store
// (through [LifetimeRecorder], keeping the longest ever recorded) before it
// issues its first session, and every [Writer] takes the longest of its own
// and the recorded ones.
type Lifetimes struct {
	// Session is the longest absolute session lifetime (Config.AbsoluteLifetime).
	Session time.Duration
	// IdPSession is the longest IdP-session tombstone lifetime
	// (Config.IdPSessionTTL).
	IdPSession time.Duration
}

func (l Lifetimes) max(o Lifetimes) Lifetimes {
	return Lifetimes{Session: max(l.Session, o.Session), IdPSession: max(l.IdPSession, o.IdPSession)}
}

// LifetimeRecorder is an optional ability of a store: it keeps the
// deployment's [Lifetimes] so that every fence writer can honour them.
type LifetimeRecorder interface {
	// RaiseLifetimes records, for each field, the longer of what is
	// recorded and l, atomically, and returns what is recorded afterwards
	// (so a zero l reads it). Recorded lifetimes never shrink; a store that
	// lost its data has none recorded. Errors wrap [ErrStoreUnavailable].
	RaiseLifetimes(ctx context.Context, l Lifetimes) (Lifetimes, error)
}

// lifetimeMark remembers that a guard's lifetimes are recorded in its store.
type lifetimeMark struct{ done atomic.Bool }

// recordLifetimes makes sure the store knows this guard's lifetimes before
// it issues a session: once per guard (again after a failure).
func (g *Guard) recordLifetimes(ctx context.Context) error {
	r, ok := g.cfg.Store.(LifetimeRecorder)
	if !ok || g.lifetimes.done.Load() {
		return nil
	}
	l := Lifetimes{Session: g.cfg.AbsoluteLifetime, IdPSession: g.cfg.IdPSessionTTL}
	if _, err := r.RaiseLifetimes(ctx, l); err != nil {
		if !errors.Is(err, ErrStoreUnavailable) {
			err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		}
		return fmt.Errorf("sessionfence: recording session lifetimes: %w", err)
	}
	g.lifetimes.done.Store(true)
	return nil
}
