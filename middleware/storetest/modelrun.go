package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// ModelOptions configures [RunModel]. The zero value runs the default
// number of sequences.
type ModelOptions struct {
	// Sequences is how many random sequences to run: seeds 0 to
	// Sequences-1. Default 100. The environment variable
	// SESSIONFENCE_MODEL_SEQUENCES overrides it (for long runs), and
	// SESSIONFENCE_MODEL_SEED=n runs sequence n alone (to replay a
	// failure); the regression sequences always run.
	Sequences int
	// MinSteps and MaxSteps bound the length of a sequence. Default 20
	// and 40.
	MinSteps, MaxSteps int
	// Parallel runs the random sequences in parallel with each other (up
	// to go test's -parallel): for a store where a sequence mostly waits
	// on the network and on short announcements. Each sequence is still
	// run alone against its own harness.
	Parallel bool
}

// Environment variables read by [RunModel].
const (
	EnvModelSequences = "SESSIONFENCE_MODEL_SEQUENCES"
	EnvModelSeed      = "SESSIONFENCE_MODEL_SEED"
)

// Lifetimes of the sessions the model issues. With a real-time store
// nothing expires during a sequence; expiry is exercised where the harness
// can move time.
const (
	modelAccess   = 5 * time.Minute
	modelAbsolute = 2 * time.Hour
)

// RunModel runs the model-based test of the fence algebra against the
// store newHarness builds: random, reproducible sequences of logins,
// revocations with each policy, announcements, cancels, kept sessions,
// reloads, renewals, user and back-channel logouts, clock moves, wipes
// and restarts from an older snapshot, each step checked against the
// reference model in model.go: after every step, every cookie ever issued
// must pass [middleware.Guard.Check] exactly when the model says so, and a
// login with each IdP session must be refused exactly when the model says
// so. Every sequence gets a fresh harness and one guard on Harness.Store.
//
// Time: when the harness can move the store's clock (Harness.Advance), the
// guard shares that clock and the sequence moves it freely. Otherwise the
// guard's clock is frozen at the store's clock ([middleware.Clock], read
// before every step), announcements are either long (never due during the
// test) or short (tens of milliseconds), and before any write while a short
// one is pending the test waits until the store's clock has passed it, so
// the store and the guard never disagree on whether it is due.
//
// Wipe and restore steps need Harness.Wipe and Harness.Snapshot; without
// them they are skipped.
//
// A failure reports the seed, the sequence, the first step at which the
// store and guard disagree with the model and, when it can be found within
// a small budget, a shorter sequence that still fails.
func RunModel(t *testing.T, newHarness func(t *testing.T) Harness, opts ModelOptions) {
	t.Helper()
	if opts.Sequences <= 0 {
		opts.Sequences = 100
	}
	if opts.MinSteps <= 0 {
		opts.MinSteps = 20
	}
	if opts.MaxSteps < opts.MinSteps {
		opts.MaxSteps = max(40, opts.MinSteps)
	}
	if v := os.Getenv(EnvModelSequences); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a number of sequences", EnvModelSequences, v)
		}
		opts.Sequences = n
	}
	first, last := uint64(0), uint64(opts.Sequences)
	if v := os.Getenv(EnvModelSeed); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a seed", EnvModelSeed, v)
		}
		first, last = n, n+1
	}
	for _, rc := range modelRegressions {
		t.Run("regression/"+rc.name, func(t *testing.T) {
			checkSequence(t, newHarness, opts, "regression "+rc.name, rc.ops)
		})
	}
	for seed := first; seed < last; seed++ {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			if opts.Parallel {
				t.Parallel()
			}
			ops := generate(seed, opts.MinSteps, opts.MaxSteps)
			checkSequence(t, newHarness, opts, fmt.Sprintf("seed %d (replay: %s=%d)", seed, EnvModelSeed, seed), ops)
		})
	}
}

// checkSequence runs ops and, when they diverge from the model, fails t
// with a report and a shortened sequence.
func checkSequence(t *testing.T, newHarness func(t *testing.T) Harness, opts ModelOptions, name string, ops []Op) {
	t.Helper()
	div := runSequence(t, newHarness(t), opts, ops)
	if div == nil {
		return
	}
	short := minimise(t, newHarness, opts, ops)
	sdiv := runSequence(t, newHarness(t), opts, short)
	if sdiv == nil { // the failure did not reproduce: report the original
		short, sdiv = ops, div
	}
	t.Fatalf("model divergence, %s:\n%s\nsequence (%d steps):\n%s\nshortest failing sequence found (%d steps):\n%s\nits run:\n%s",
		name, div, len(ops), goOps(ops), len(short), goOps(short), sdiv.trace())
}

// goOps formats ops as a Go slice literal.
func goOps(ops []Op) string {
	var b strings.Builder
	b.WriteString("[]Op{\n")
	for i, o := range ops {
		fmt.Fprintf(&b, "\t%#v, // %d: %v\n", o, i, o)
	}
	b.WriteString("}")
	return b.String()
}

// minimise removes steps from ops, in chunks of halving size, for as long
// as what is left still diverges, within a budget of runs and time.
func minimise(t *testing.T, newHarness func(t *testing.T) Harness, opts ModelOptions, ops []Op) []Op {
	const maxRuns, maxTime = 400, 60 * time.Second
	deadline := time.Now().Add(maxTime)
	runs := 0
	cur := ops
	for chunk := len(cur) / 2; chunk >= 1; chunk /= 2 {
		for start := 0; start+chunk <= len(cur); {
			if runs == maxRuns || time.Now().After(deadline) {
				return cur
			}
			cand := append(append([]Op(nil), cur[:start]...), cur[start+chunk:]...)
			runs++
			if runSequence(t, newHarness(t), opts, cand) != nil {
				cur = cand
				continue
			}
			start += chunk
		}
	}
	return cur
}

// divergence is the first step at which the implementation disagreed
// with the model.
type divergence struct {
	step  int
	op    Op
	msg   string
	steps []string // what each step did, up to the divergence
}

func (d *divergence) String() string {
	return fmt.Sprintf("step %d (%v): %s", d.step, d.op, d.msg)
}

func (d *divergence) trace() string {
	return strings.Join(d.steps, "\n") + "\n  DIVERGED: " + d.msg
}

// runner drives one sequence through a guard and the model in lockstep.
type runner struct {
	t    *testing.T
	ctx  context.Context
	h    Harness
	opts ModelOptions
	g    *middleware.Guard
	m    *model

	// real: the store's clock cannot be moved; frozen is the guard's.
	real   bool
	frozen *frozenClock

	values   []string       // cookie values, by model index
	sessions map[int]string // session ids, by the index of the first cookie

	restore     func()
	snapVersion middleware.Version

	note string // what the current step did, for the trace
}

// errSkip marks a step that could not run (nothing to act on, no hook);
// it is traced and the sequence goes on.
var errSkip = errors.New("skipped")

// runSequence runs ops against h and returns the first divergence, or nil.
func runSequence(t *testing.T, h Harness, opts ModelOptions, ops []Op) *divergence {
	t.Helper()
	if h.Store == nil {
		t.Fatal("storetest: Harness.Store is nil")
	}
	r := &runner{t: t, ctx: t.Context(), h: h, opts: opts, real: h.Advance == nil, sessions: map[int]string{}}
	now := h.Now
	if r.real {
		r.frozen = &frozenClock{}
		r.frozen.set(r.storeNow())
		now = r.frozen.now
	} else if now == nil {
		t.Fatal("storetest: a harness with Advance must set Now")
	}
	key := make([]byte, middleware.KeySize)
	_, _ = rand.Read(key)
	g, err := middleware.New(middleware.Config{
		Store: h.Store, Keys: [][]byte{key}, Now: now,
		AccessLifetime: modelAccess, AbsoluteLifetime: modelAbsolute,
		Renewer: renewAll{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	r.g = g
	r.m = newModel(now(), modelAccess, modelAbsolute)
	div := &divergence{}
	for i, o := range ops {
		r.note = ""
		err := r.step(o)
		switch {
		case errors.Is(err, errSkip):
			div.steps = append(div.steps, fmt.Sprintf("  %2d %-40v skipped: %s", i, o, r.note))
			continue
		case err == nil:
			err = r.checkAll()
		}
		div.steps = append(div.steps, fmt.Sprintf("  %2d %-40v %s", i, o, r.note))
		if err != nil {
			div.step, div.op, div.msg = i, o, err.Error()
			return div
		}
	}
	return nil
}

// renewAll renews every session, as a provider that never refuses would.
type renewAll struct{}

func (renewAll) Renew(context.Context, *middleware.Session) error { return nil }

// frozenClock is the guard's clock with a real-time store: it moves only
// when the test sets it, and never back.
type frozenClock struct{ ns atomic.Int64 }

func (c *frozenClock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// set moves the clock to t unless it is already later; only the
// sequence's own goroutine sets it.
func (c *frozenClock) set(t time.Time) { c.ns.Store(max(c.ns.Load(), t.UnixNano())) }

// storeNow reads the store's clock (the machine's when it has none).
func (r *runner) storeNow() time.Time {
	if c, ok := r.h.Store.(middleware.Clock); ok {
		now, err := c.Now(r.ctx)
		if err != nil {
			r.t.Fatalf("reading the store clock: %v", err)
		}
		return now
	}
	if r.h.Now != nil {
		return r.h.Now()
	}
	return time.Now()
}

// tick brings the guard's clock (real time) and the model to the store's
// present.
func (r *runner) tick() {
	if r.real {
		r.frozen.set(r.storeNow())
		r.m.advance(r.frozen.now())
		return
	}
	r.m.advance(r.h.Now())
}

// settle, with a real-time store, waits until every short announcement
// still pending is due on the store's clock, so that the next write and
// the guard agree on it.
func (r *runner) settle() {
	if !r.real {
		return
	}
	var last time.Time
	for _, a := range r.m.pending {
		if a.at.Sub(r.m.now) < shortAnnouncement && a.at.After(last) {
			last = a.at
		}
	}
	if last.IsZero() {
		return
	}
	r.waitFor("the store clock to pass "+last.Format(time.RFC3339Nano), func() bool {
		return !r.storeNow().Before(last)
	})
	r.tick()
}

// waitFor polls cond with a growing interval, bounded by waitLimit.
func (r *runner) waitFor(what string, cond func() bool) {
	eventually(r.t, waitLimit, what, cond)
}

// version reads the store's version directly (not through the guard).
func (r *runner) version() middleware.Version {
	v, err := r.h.Store.Fences(r.ctx, nil, nil)
	if err != nil {
		r.t.Fatalf("reading the store version: %v", err)
	}
	return v
}

// pick resolves a cookie reference: among the cookies that pass now
// (every cookie when o.Any is set or none passes).
func (r *runner) pick(o Op) (int, bool) {
	var cand []int
	if !o.Any {
		for i := range r.m.cookies {
			if pass, _ := r.m.passes(i); pass {
				cand = append(cand, i)
			}
		}
	}
	if len(cand) == 0 {
		for i := range r.m.cookies {
			cand = append(cand, i)
		}
	}
	if len(cand) == 0 {
		return -1, false
	}
	return cand[o.Ref%len(cand)], true
}

// scope returns the library's scope for a model scope.
func (r *runner) scope(sc mscope) middleware.Scope {
	switch sc.kind {
	case middleware.ScopeGlobal:
		return middleware.GlobalScope()
	case middleware.ScopeTenant:
		return middleware.TenantScope(tenantName(sc.id))
	case middleware.ScopeSubject:
		return middleware.SubjectScope(modelIssuer, userName(sc.id))
	case middleware.ScopeIdPSession:
		return middleware.IdPSessionScope(modelIssuer, sidName(sc.id))
	}
	return middleware.SessionScope(r.sessions[sc.id])
}

func tenantName(i int) string { return "t" + strconv.Itoa(i) }
func userName(i int) string   { return "u" + strconv.Itoa(i) }

func (r *runner) claims(user, tenant, sid int) middleware.Claims {
	c := middleware.Claims{
		Issuer: modelIssuer, Subject: userName(user), Tenant: tenantName(tenant),
		AuthTime: r.g.Config().Now(), AMR: []string{"mfa"},
	}
	if sid >= 0 {
		c.IdPSession = sidName(sid)
	}
	return c
}

func (r *runner) session(i int) *middleware.Session {
	s, err := r.g.SessionFromCookie(r.values[i])
	if err != nil {
		r.t.Fatalf("opening cookie #%d: %v", i, err)
	}
	return s
}

// step runs one op on the implementation and the model and compares what
// each step returns (the checks of every cookie follow in checkAll).
func (r *runner) step(o Op) error {
	r.tick()
	switch o.Kind {
	case OpLogin:
		return r.login(o.Ref%modelUsers, o.Tenant%modelTenants, max(o.SID, -1)%modelSIDs)
	case OpRevoke, OpAnnounce, OpCancel, OpReload:
		return r.change(o)
	case OpBackchannel:
		sc := mscope{middleware.ScopeIdPSession, max(o.SID, 0) % modelSIDs}
		return r.write(middleware.BumpRevoke, sc, -1, o)
	case OpLogout:
		i, ok := r.pick(o)
		if !ok {
			r.note = "no cookie"
			return errSkip
		}
		r.settle()
		err := r.g.EndSession(r.ctx, r.session(i), "model logout")
		r.m.change(middleware.BumpRevoke, mscope{middleware.ScopeSession, r.m.cookies[i].session}, -1, time.Time{})
		r.note = fmt.Sprintf("c%d's session", i)
		return err
	case OpVisit:
		return r.visit(o)
	case OpAdvance:
		if r.real {
			r.settle()
		} else {
			r.h.Advance(o.D)
		}
		r.tick()
		return nil
	case OpWipe:
		return r.wipe()
	case OpSnapshot:
		if r.h.Snapshot == nil {
			r.note = "harness has no Snapshot"
			return errSkip
		}
		r.snapVersion = r.version()
		r.restore = r.h.Snapshot()
		r.m.snapshot()
		r.note = fmt.Sprintf("at seq %d", r.snapVersion.Seq)
		return nil
	case OpRestore:
		return r.restoreSnapshot()
	}
	return fmt.Errorf("unknown op %v", o.Kind)
}

func (r *runner) login(user, tenant, sid int) error {
	s, ck, err := r.g.Issue(r.ctx, r.claims(user, tenant, sid))
	want := r.m.login(user, tenant, sid)
	if want < 0 {
		var rev *middleware.RevokedError
		if !errors.As(err, &rev) || rev.Scope.Kind != middleware.ScopeIdPSession {
			return fmt.Errorf("login with tombstoned %s: got %v, want *RevokedError by the IdP session", sidName(sid), err)
		}
		r.note = "refused (tombstone)"
		return nil
	}
	if err != nil {
		return fmt.Errorf("login: %v, want a session", err)
	}
	r.values = append(r.values, ck.Value)
	r.sessions[want] = s.ID
	r.note = fmt.Sprintf("→ c%d", want)
	return nil
}

// change resolves the scope and kept cookie of a revoke, announce, cancel
// or reload and writes it.
func (r *runner) change(o Op) error {
	kinds := map[OpKind]middleware.BumpKind{
		OpRevoke: middleware.BumpRevoke, OpAnnounce: middleware.BumpAnnounce,
		OpCancel: middleware.BumpCancel, OpReload: middleware.BumpReload,
	}
	kind := kinds[o.Kind]
	keep := -1
	var sc mscope
	if o.usesCookie() {
		i, ok := r.pick(o)
		if !ok {
			r.note = "no cookie"
			return errSkip
		}
		s, ok := r.m.scopeOf(o.Scope, r.m.cookies[i])
		if !ok { // no sid: the subject instead
			s, _ = r.m.scopeOf(middleware.ScopeSubject, r.m.cookies[i])
		}
		sc = s
		if o.Keep && kind != middleware.BumpReload {
			keep = i
		}
	} else {
		n := map[middleware.ScopeKind]int{
			middleware.ScopeGlobal: 1, middleware.ScopeTenant: modelTenants,
			middleware.ScopeSubject: modelUsers, middleware.ScopeIdPSession: modelSIDs,
		}[o.Scope]
		if n == 0 {
			return fmt.Errorf("op %v: scope kind %v", o, o.Scope)
		}
		sc = mscope{o.Scope, o.Ref % n}
	}
	return r.write(kind, sc, keep, o)
}

// write changes sc through the guard's writer, keeping cookie keep (-1:
// none), and compares the result with the model's.
func (r *runner) write(kind middleware.BumpKind, sc mscope, keep int, o Op) error {
	r.settle()
	c := middleware.Change{
		Scope: r.scope(sc), Kind: kind, Policy: o.Policy, Reason: "model", Actor: "model",
	}
	if o.Kind == OpBackchannel {
		c.Actor, c.Action = "backchannel:"+modelIssuer, "backchannel_logout"
	}
	if kind == middleware.BumpAnnounce {
		c.At = time.UnixMilli(r.m.now.Add(o.D).UnixMilli()).UTC()
	}
	if keep >= 0 {
		c.Keep = r.session(keep)
	}
	r.note = sc.String()
	if keep >= 0 {
		r.note += fmt.Sprintf(" keeping c%d", keep)
	}
	w, err := r.g.Writer().Write(r.ctx, c)
	if r.real && kind == middleware.BumpAnnounce && errors.Is(err, middleware.ErrInvalidBump) &&
		!r.storeNow().Before(c.At) {
		// The machine was too slow for a short announcement: the store's
		// clock passed it before the write. Nothing was written.
		r.note += ": announcement time passed before the write"
		return errSkip
	}
	want := r.m.change(kind, sc, keep, c.At)
	var rev *middleware.RevokedError
	switch {
	case want.keepExpired:
		if !errors.Is(err, middleware.ErrKeepNotCovered) {
			return fmt.Errorf("%s: got %v, want ErrKeepNotCovered (the kept cookie is past its absolute expiry)", r.note, err)
		}
		r.note += ": keep refused (expired)"
	case want.keepRefused && want.nothingPending:
		if !errors.As(err, &rev) && !errors.Is(err, middleware.ErrNothingPending) {
			return fmt.Errorf("%s: got %v, want *RevokedError or ErrNothingPending", r.note, err)
		}
		r.note += ": refused"
	case want.keepRefused:
		if !errors.As(err, &rev) {
			return fmt.Errorf("%s: got %v, want *RevokedError (the kept cookie does not pass)", r.note, err)
		}
		r.note += ": keep refused"
	case want.nothingPending:
		if !errors.Is(err, middleware.ErrNothingPending) {
			return fmt.Errorf("%s: got %v, want ErrNothingPending", r.note, err)
		}
		r.note += ": nothing pending"
	case err != nil:
		return fmt.Errorf("%s: %v", r.note, err)
	case (w.Cookie != nil) != (want.cookie >= 0):
		return fmt.Errorf("%s: written cookie %v, the model expects one: %v (notes %q)",
			r.note, w.Cookie != nil, want.cookie >= 0, w.Entry.Notes)
	case want.cookie >= 0:
		r.values = append(r.values, w.Cookie.Value)
		r.note += fmt.Sprintf(" → c%d", want.cookie)
	}
	return nil
}

func (r *runner) visit(o Op) error {
	i, ok := r.pick(o)
	if !ok {
		r.note = "no cookie"
		return errSkip
	}
	r.note = fmt.Sprintf("c%d", i)
	pass, expired := r.m.passes(i)
	d := r.g.Authenticate(r.ctx, r.values[i])
	renewed, shared := r.m.visit(i)
	switch {
	case !pass:
		if d.Kind == middleware.DecisionAllowed || d.Kind == middleware.DecisionAccessExpired {
			return fmt.Errorf("visit c%d: %v, the model says it was ended (%s)", i, d, r.ended(i))
		}
		r.note += ": " + d.Kind.String()
	case d.Kind != middleware.DecisionAllowed:
		return fmt.Errorf("visit c%d: %v, want allowed", i, d)
	case expired && d.Cookie == nil:
		return fmt.Errorf("visit c%d past its access expiry: allowed without a renewed cookie", i)
	case expired:
		if shared { // the same renewal again, re-issued when a reload moved
			renewed = r.m.add(r.m.derive(r.m.cookies[renewed], nil))
			r.note += ": renewal shared"
		} else {
			r.note += ": renewed"
		}
		r.values = append(r.values, d.Cookie.Value)
		r.note += fmt.Sprintf(" → c%d", renewed)
		if got, want := r.session(renewed).AccessExpiry, r.m.cookies[renewed].accessExp; !got.Equal(want) {
			return fmt.Errorf("visit c%d: renewed until %v, the model says %v", i, got, want)
		}
	case d.Cookie != nil: // re-issued after a reload
		n := r.m.add(r.m.derive(r.m.cookies[i], nil))
		r.values = append(r.values, d.Cookie.Value)
		r.note += fmt.Sprintf(": re-issued → c%d", n)
	}
	return nil
}

func (r *runner) wipe() error {
	if r.h.Wipe == nil {
		r.note = "harness has no Wipe"
		return errSkip
	}
	r.settle()
	old := r.version().Epoch
	r.h.Wipe()
	r.waitFor("a new epoch after the wipe", func() bool { return r.version().Epoch != old })
	r.m.wipe()
	return nil
}

func (r *runner) restoreSnapshot() error {
	if !r.m.restorable() {
		r.note = "no snapshot"
		return errSkip
	}
	r.settle()
	r.restore()
	want := r.snapVersion
	r.waitFor("the store to read as the snapshot", func() bool { return r.version() == want })
	r.note = fmt.Sprintf("back to seq %d", want.Seq)
	if r.m.restore() {
		r.note += ": writes lost"
	}
	return nil
}

// checkAll checks every cookie ever issued, and a login with each IdP
// session, against the model.
func (r *runner) checkAll() error {
	r.tick()
	for i, v := range r.values {
		d := r.g.Check(r.ctx, v)
		pass, expired := r.m.passes(i)
		got := d.Kind == middleware.DecisionAllowed || d.Kind == middleware.DecisionAccessExpired
		c := r.m.cookies[i]
		switch {
		case got != pass:
			return fmt.Errorf("check c%d: %v; the model says it must %s", i, d, r.standing(i))
		case pass && (d.Kind == middleware.DecisionAccessExpired) != expired:
			return fmt.Errorf("check c%d: %v; the model says access expired = %v", i, d, expired)
		case !pass && !r.m.now.Before(c.absExp) && d.Kind != middleware.DecisionSessionExpired:
			return fmt.Errorf("check c%d: %v; want session_expired", i, d)
		case !pass && r.m.now.Before(c.absExp) && d.Kind != middleware.DecisionRevoked && d.Kind != middleware.DecisionReauthRequired:
			return fmt.Errorf("check c%d: %v; want revoked or reauth_required", i, d)
		}
	}
	for sid := -1; sid < modelSIDs; sid++ {
		_, _, err := r.g.Issue(r.ctx, r.claims(0, 0, sid))
		var rev *middleware.RevokedError
		refused := errors.As(err, &rev)
		if err != nil && !refused {
			return fmt.Errorf("login probe with %s: %v", sidName(sid), err)
		}
		if want := sid >= 0 && r.m.tomb[sid]; refused != want {
			return fmt.Errorf("login probe with %s: refused = %v (%v), the model says %v", sidName(sid), refused, err, want)
		}
	}
	return nil
}

func (r *runner) ended(i int) string {
	if c := r.m.cookies[i]; !c.live {
		return c.ended
	}
	return "past its absolute expiry"
}

func (r *runner) standing(i int) string {
	if pass, _ := r.m.passes(i); pass {
		return "pass"
	}
	return "be refused (" + r.ended(i) + ")"
}
