package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// Harness is one store under test, with the hooks the suite needs to
// exercise the parts of the contract that involve more than one client,
// data loss and time. The constructor given to [Run] builds a fresh Harness
// (with empty data) for every subtest.
type Harness struct {
	// Store is the store under test. Required.
	Store middleware.Store

	// Second is an independent client of the same data, as a second
	// application instance would have. Nil means the store has no such
	// thing (an in-process store), and the suite uses Store in its place.
	Second middleware.Store

	// Wipe destroys all the data the store keeps, fences and epoch, the
	// way FLUSHALL, a restart without persistence or a failover to an empty
	// replica would. Nil skips the tests of data loss.
	Wipe func()

	// Snapshot copies all the data the store keeps, as a backup would,
	// and returns a function that puts it back as a restart from that
	// backup would: the epoch and the bump sequence number as they were,
	// every later write lost (the function may be called more than once).
	// When restore returns, reads through Store see the snapshot's data.
	// Nil skips the snapshot and restore steps of [RunModel].
	Snapshot func() (restore func())

	// Reconnect returns a new client of the same data, as a restarted
	// application instance would create. In-process stores return Store
	// itself. Nil skips the tests that need it.
	Reconnect func() middleware.Store

	// Advance moves the store's clock forward by d. Nil means the store
	// runs on real time; the suite then uses short real TTLs and polls.
	Advance func(d time.Duration)

	// Now reads the clock Advance moves. Nil means time.Now. When the
	// store implements [middleware.Clock], the suite reads the store's
	// clock through it instead and uses Now only as a plausibility check.
	Now func() time.Time

	// AuditCap is the audit log capacity the store under test was
	// configured with, for stores that implement [middleware.AuditLog].
	// Zero skips the test of the bound. The suite appends up to
	// AuditCap+AuditSlack+50 entries, so keep it small (a few hundred);
	// other audit tests need a capacity of at least 120 and skip below.
	AuditCap int

	// AuditSlack is how many entries beyond AuditCap the log may keep:
	// zero for a store that trims exactly, more for one that trims
	// approximately (a Valkey stream with MAXLEN ~ keeps up to one stream
	// node, stream-node-max-entries, 100 by default, beyond the cap).
	AuditSlack int
}

// Timing of the real-time variants. The TTL is long enough that a fresh
// write is reliably read before it expires on a loaded CI machine, and
// short enough to keep the suite fast.
const (
	realTTL        = 200 * time.Millisecond
	realAnnounceIn = 300 * time.Millisecond
	// waitLimit bounds every poll. Propagation between clients is expected
	// within milliseconds; the limit only turns a hang into a failure.
	waitLimit = 5 * time.Second
	// propagationLimit is the bound the suite demands for a bump made on
	// one client to be read on another.
	propagationLimit = 2 * time.Second
	// realClockSlack is how far a store's clock may be from the test
	// machine's clock when both are real.
	realClockSlack = 2 * time.Second
)

// Run runs the conformance suite. newHarness is called once per subtest
// and must return a store over empty data.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	for _, tc := range slices.Concat(cases, leaseCases, logCases) {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Store == nil {
				t.Fatal("storetest: Harness.Store is nil")
			}
			tc.run(t, &suite{h: h})
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, s *suite)
}

// cases is the suite, in the order it runs. Names are sentences so that a
// failure reads as the broken promise.
var cases = []testCase{
	{"a scope never written reads as the zero fence", testNeverWritten},
	{"a bump returns the fence it wrote", testBumpReturnsFence},
	{"a bump is visible to the next read on the same store", testReadYourBump},
	{"bump time comes from the store clock", testBumpTimeFromStoreClock},
	{"a bump through the second client is seen by the first within the propagation bound", testPropagation},
	{"concurrent bumps from two clients never lose a generation", testConcurrentBumps},
	{"a reader never sees a generation go back while bumps run", testMonotonicReads},
	{"every bump advances the sequence number of the version", testSeqAdvances},
	{"rotating the epoch replaces it only while it is still the one given and the store is behind the witness", testRotateEpoch},
	{"recorded lifetimes only ever grow and are shared by every client", testLifetimes},
	{"reload moves independently of the generation", testReload},
	{"announce in the future keeps the generation and sets the pending time", testAnnounce},
	{"cancel clears a pending announcement", testCancel},
	{"cancel with nothing pending fails with ErrNothingPending", testCancelNothingPending},
	{"announce with a past time fails with ErrInvalidBump", testAnnouncePast},
	{"a due announcement takes effect without a write and folds into the next revoke", testDueAnnouncement},
	{"fences of many scopes come back in the order asked", testManyScopes},
	{"scopes whose naive keys collide are kept apart", testNoKeyCollision},
	{"an invalid bump changes nothing", testInvalidBump},
	{"a bump on an invalid scope fails with ErrInvalidScope", testInvalidScope},
	{"a long reason is truncated to MaxReasonLen", testReasonTruncated},
	{"the epoch is stable across calls, clients and reconnects", testEpochStable},
	{"wiping the data changes the epoch", testWipeChangesEpoch},
	{"a new epoch carries the store time at which it was made", testEpochTime},
	{"after a wipe fences read as zero under the new epoch", testFencesAfterWipe},
	{"a fence with a ttl reads as zero once the ttl has passed", testTTLExpires},
	{"a fence without a ttl does not expire", testNoTTLKeeps},
	{"a bump without ttl on a fence written with one keeps it for ever", testTTLRemovedByBump},
	{"a watcher hears a bump made through the second client", testWatch},
	{"a stopped watcher is not called again", testWatchStop},
}

// suite carries one subtest's harness and helpers.
type suite struct {
	h Harness
}

func (s *suite) second() middleware.Store {
	if s.h.Second != nil {
		return s.h.Second
	}
	return s.h.Store
}

func (s *suite) realTime() bool { return s.h.Advance == nil }

// hostNow is the harness clock (or the machine's).
func (s *suite) hostNow() time.Time {
	if s.h.Now != nil {
		return s.h.Now()
	}
	return time.Now()
}

// storeNow is the store's own clock when it exposes one.
func (s *suite) storeNow(t *testing.T) time.Time {
	t.Helper()
	if c, ok := s.h.Store.(middleware.Clock); ok {
		now, err := c.Now(t.Context())
		if err != nil {
			t.Fatalf("Clock.Now: %v", err)
		}
		return now
	}
	return s.hostNow()
}

func (s *suite) bump(t *testing.T, st middleware.Store, sc middleware.Scope, b middleware.Bump) middleware.Fence {
	t.Helper()
	f, err := st.Bump(t.Context(), sc, b)
	if err != nil {
		t.Fatalf("Bump(%v, %+v): %v", sc, b, err)
	}
	return f
}

func read(t *testing.T, st middleware.Store, scopes ...middleware.Scope) ([]middleware.Fence, string) {
	t.Helper()
	dst := make([]middleware.Fence, len(scopes))
	v, err := st.Fences(t.Context(), scopes, dst)
	if err != nil {
		t.Fatalf("Fences(%v): %v", scopes, err)
	}
	if v.Epoch == "" {
		t.Fatal("Fences returned an empty epoch")
	}
	return dst, v.Epoch
}

func read1(t *testing.T, st middleware.Store, sc middleware.Scope) middleware.Fence {
	t.Helper()
	f, _ := read(t, st, sc)
	return f[0]
}

func epoch(t *testing.T, st middleware.Store) string {
	t.Helper()
	e, err := st.Epoch(t.Context())
	if err != nil {
		t.Fatalf("Epoch: %v", err)
	}
	if e == "" {
		t.Fatal("Epoch returned an empty epoch")
	}
	return e
}

// eventually polls cond until it holds or limit passes. The poll interval
// grows from 1ms to 20ms, so a fast store passes fast.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	wait := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-t.Context().Done():
			timer.Stop()
			t.Fatalf("test ended while waiting: %s", what)
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// waitStoreTime makes the store's clock reach at: by Advance when the
// harness can move it, otherwise by polling the real clock.
func (s *suite) waitStoreTime(t *testing.T, at time.Time) {
	t.Helper()
	if !s.realTime() {
		if d := at.Sub(s.storeNow(t)); d > 0 {
			s.h.Advance(d)
		}
		return
	}
	eventually(t, waitLimit, "store clock reaches "+at.String(), func() bool {
		return !s.storeNow(t).Before(at)
	})
}

// Equal reports whether two fences are the same, comparing times with
// time.Time.Equal. It is exported for store tests outside the suite.
func Equal(a, b middleware.Fence) bool {
	return a.Gen == b.Gen && a.Reserved == b.Reserved && a.Reload == b.Reload &&
		a.BumpedAt.Equal(b.BumpedAt) && a.Policy == b.Policy &&
		a.PendingAt.Equal(b.PendingAt) && a.PendingPolicy == b.PendingPolicy &&
		a.Reason == b.Reason
}

func fmtFence(f middleware.Fence) string {
	return fmt.Sprintf("{Gen:%d Reserved:%d Reload:%d BumpedAt:%s Policy:%v PendingAt:%s PendingPolicy:%v Reason:%q}",
		f.Gen, f.Reserved, f.Reload, f.BumpedAt.Format(time.RFC3339Nano), f.Policy,
		f.PendingAt.Format(time.RFC3339Nano), f.PendingPolicy, f.Reason)
}

func wantFence(t *testing.T, what string, got, want middleware.Fence) {
	t.Helper()
	if !Equal(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, fmtFence(got), fmtFence(want))
	}
}

func testNeverWritten(t *testing.T, s *suite) {
	scopes := []middleware.Scope{
		middleware.GlobalScope(),
		middleware.TenantScope("acme"),
		middleware.SubjectScope("https://idp.example", "alice"),
		middleware.IdPSessionScope("https://idp.example", "sid-1"),
		middleware.SessionScope("s1"),
	}
	for _, st := range []middleware.Store{s.h.Store, s.second()} {
		got, _ := read(t, st, scopes...)
		for i, f := range got {
			wantFence(t, "never written "+scopes[i].String(), f, middleware.Fence{})
		}
	}
}

func testBumpReturnsFence(t *testing.T, s *suite) {
	sc := middleware.TenantScope("acme")
	f1 := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyFreshLogin, Reason: "incident 42"})
	if f1.Gen != 1 || f1.Policy != middleware.PolicyFreshLogin || f1.Reason != "incident 42" || f1.BumpedAt.IsZero() {
		t.Fatalf("first revoke returned %s", fmtFence(f1))
	}
	f2 := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA})
	if f2.Gen != 2 || f2.Policy != middleware.PolicyMFA || f2.Reason != "" {
		t.Fatalf("second revoke returned %s", fmtFence(f2))
	}
	if f2.BumpedAt.Before(f1.BumpedAt) {
		t.Fatalf("BumpedAt went back from %v to %v", f1.BumpedAt, f2.BumpedAt)
	}
}

func testReadYourBump(t *testing.T, s *suite) {
	sc := middleware.SubjectScope("https://idp.example", "alice")
	read1(t, s.h.Store, sc) // cache the zero fence where the store caches
	for i := 0; i < 5; i++ {
		want := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
		wantFence(t, "read right after bump", read1(t, s.h.Store, sc), want)
		want = s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpReload})
		wantFence(t, "read right after reload", read1(t, s.h.Store, sc), want)
	}
}

func testBumpTimeFromStoreClock(t *testing.T, s *suite) {
	before := s.storeNow(t)
	f := s.bump(t, s.h.Store, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke})
	after := s.storeNow(t)
	if f.BumpedAt.Before(before.Truncate(time.Millisecond)) || f.BumpedAt.After(after) {
		t.Fatalf("BumpedAt %v is outside the store clock's window [%v, %v]", f.BumpedAt, before, after)
	}
	// Plausibility against the harness clock: the store's own clock may
	// differ from the machine's, but not by much when both are real.
	if s.realTime() {
		if d := f.BumpedAt.Sub(time.Now()); d > realClockSlack || d < -realClockSlack {
			t.Fatalf("BumpedAt %v is %v away from this machine's clock", f.BumpedAt, d)
		}
	} else if d := f.BumpedAt.Sub(s.hostNow()); d > time.Millisecond || d < -time.Millisecond {
		t.Fatalf("BumpedAt %v does not come from the injected clock (%v)", f.BumpedAt, s.hostNow())
	}
	wantFence(t, "read after bump", read1(t, s.h.Store, middleware.GlobalScope()), f)
}

func testPropagation(t *testing.T, s *suite) {
	sc := middleware.SessionScope("propagation")
	// Both clients read first, so that a caching store has the old value
	// cached on both sides and must be invalidated.
	read1(t, s.h.Store, sc)
	read1(t, s.second(), sc)
	for i := 0; i < 3; i++ {
		want := s.bump(t, s.second(), sc, middleware.Bump{Kind: middleware.BumpRevoke})
		eventually(t, propagationLimit, "first client sees the bump made on the second", func() bool {
			return Equal(read1(t, s.h.Store, sc), want)
		})
		want = s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
		eventually(t, propagationLimit, "second client sees the bump made on the first", func() bool {
			return Equal(read1(t, s.second(), sc), want)
		})
	}
}

func testConcurrentBumps(t *testing.T, s *suite) {
	const workers, perWorker = 50, 20
	const total = workers * perWorker
	sc := middleware.TenantScope("contended")
	clients := []middleware.Store{s.h.Store, s.second()}
	gens := make([][]uint64, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := clients[w%2]
			for i := 0; i < perWorker; i++ {
				f, err := st.Bump(context.Background(), sc, middleware.Bump{Kind: middleware.BumpRevoke})
				if err != nil {
					errs <- err
					return
				}
				gens[w] = append(gens[w], f.Gen)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Bump: %v", err)
	}
	// Every bump must have produced a distinct generation, 1..total: a
	// duplicate means two bumps read the same old value.
	seen := make([]bool, total+1)
	for _, g := range gens {
		for _, gen := range g {
			if gen == 0 || gen > total || seen[gen] {
				t.Fatalf("generation %d returned twice or out of range 1..%d", gen, total)
			}
			seen[gen] = true
		}
	}
	for _, st := range clients {
		eventually(t, propagationLimit, fmt.Sprintf("final generation reads %d", total), func() bool {
			return read1(t, st, sc).Gen == total
		})
	}
}

func testMonotonicReads(t *testing.T, s *suite) {
	const bumps, readers = 100, 4
	sc := middleware.SubjectScope("https://idp.example", "carol")
	clients := []middleware.Store{s.h.Store, s.second()}
	stop := make(chan struct{})
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := clients[r%2]
			dst := make([]middleware.Fence, 1)
			var last uint64
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				if _, err := st.Fences(context.Background(), []middleware.Scope{sc}, dst); err != nil {
					errs <- err
					return
				}
				if dst[0].Gen < last {
					errs <- fmt.Errorf("reader %d saw generation %d after %d", r, dst[0].Gen, last)
					return
				}
				last = dst[0].Gen
				runtime.Gosched() // leave the writer and the store's goroutines room on small machines
			}
		}()
	}
	for i := 0; i < bumps; i++ {
		if _, err := clients[i%2].Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("Bump: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testReload(t *testing.T, s *suite) {
	sc := middleware.SubjectScope("https://idp.example", "bob")
	r := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpReload})
	if r.Gen != 0 || r.Reload != 1 || !r.BumpedAt.IsZero() {
		t.Fatalf("reload on a fresh fence returned %s", fmtFence(r))
	}
	v := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke, Reason: "fired"})
	if v.Gen != 1 || v.Reload != 1 {
		t.Fatalf("revoke after reload returned %s", fmtFence(v))
	}
	r = s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpReload})
	want := v
	want.Reload = 2
	wantFence(t, "reload keeps the revocation", r, want)
	wantFence(t, "read after reload", read1(t, s.h.Store, sc), want)
}

func (s *suite) announceAt(t *testing.T) time.Time {
	return s.storeNow(t).Add(time.Hour).Truncate(time.Millisecond)
}

func testAnnounce(t *testing.T, s *suite) {
	sc := middleware.TenantScope("acme")
	v := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyFreshLogin})
	at := s.announceAt(t)
	a := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpAnnounce, At: at, Policy: middleware.PolicyMFA, Reason: "maintenance"})
	want := v
	want.Reserved = v.Reserved + 1
	want.PendingAt, want.PendingPolicy, want.Reason = at, middleware.PolicyMFA, "maintenance"
	wantFence(t, "announce result", a, want)
	got := read1(t, s.h.Store, sc)
	wantFence(t, "read after announce", got, want)
	now := s.storeNow(t)
	if !got.Announced(now) || got.EffectiveGen(now) != v.Gen {
		t.Fatalf("announced fence is not pending at %v: %s", now, fmtFence(got))
	}
	if got.EffectiveGen(at) != want.Reserved || got.EffectivePolicy(at) != middleware.PolicyMFA {
		t.Fatalf("announced fence does not take effect at %v: %s", at, fmtFence(got))
	}
}

func testCancel(t *testing.T, s *suite) {
	sc := middleware.GlobalScope()
	v := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
	s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpAnnounce, At: s.announceAt(t), Reason: "maintenance"})
	c := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpCancel, Reason: "called off"})
	want := v
	want.Reserved = v.Reserved + 1 // the cancelled announcement's generation is burned
	want.Reason = "called off"
	wantFence(t, "cancel result", c, want)
	wantFence(t, "read after cancel", read1(t, s.h.Store, sc), want)
	_, err := s.h.Store.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpCancel})
	if !errors.Is(err, middleware.ErrNothingPending) {
		t.Fatalf("second cancel: error %v, want ErrNothingPending", err)
	}
	// A generation is never handed out twice: the next revocation moves
	// past the burned one, so a cookie kept through the cancelled
	// announcement can never pass again.
	r := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
	if r.Gen != want.Reserved+1 || r.Reserved != r.Gen {
		t.Fatalf("revoke after a cancel returned %s, want generation %d", fmtFence(r), want.Reserved+1)
	}
}

func testCancelNothingPending(t *testing.T, s *suite) {
	for _, sc := range []middleware.Scope{middleware.TenantScope("never"), middleware.TenantScope("revoked")} {
		if sc.ID == "revoked" {
			s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
		}
		before := read1(t, s.h.Store, sc)
		_, err := s.h.Store.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpCancel})
		if !errors.Is(err, middleware.ErrNothingPending) {
			t.Fatalf("cancel on %v: error %v, want ErrNothingPending", sc, err)
		}
		wantFence(t, "fence after refused cancel", read1(t, s.h.Store, sc), before)
	}
}

func testAnnouncePast(t *testing.T, s *suite) {
	sc := middleware.TenantScope("acme")
	v := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
	for _, at := range []time.Time{s.storeNow(t).Add(-time.Hour), s.storeNow(t).Add(-time.Second)} {
		_, err := s.h.Store.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpAnnounce, At: at})
		if !errors.Is(err, middleware.ErrInvalidBump) {
			t.Fatalf("announce at %v: error %v, want ErrInvalidBump", at, err)
		}
	}
	wantFence(t, "fence after refused announce", read1(t, s.h.Store, sc), v)
}

func testDueAnnouncement(t *testing.T, s *suite) {
	sc := middleware.TenantScope("acme")
	v := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
	in := time.Hour
	if s.realTime() {
		in = realAnnounceIn
	}
	at := s.storeNow(t).Add(in).Truncate(time.Millisecond)
	s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpAnnounce, At: at, Policy: middleware.PolicyMFA, Reason: "maintenance"})
	s.waitStoreTime(t, at)

	now := s.storeNow(t)
	got := read1(t, s.h.Store, sc)
	if got.Gen != v.Gen || got.EffectiveGen(now) != v.Reserved+1 || !got.EffectiveTime(now).Equal(at) ||
		got.EffectivePolicy(now) != middleware.PolicyMFA || got.Announced(now) {
		t.Fatalf("due announcement at %v not in force at %v: %s", at, now, fmtFence(got))
	}
	if _, err := s.h.Store.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpCancel}); !errors.Is(err, middleware.ErrNothingPending) {
		t.Fatalf("cancel of a due announcement: error %v, want ErrNothingPending", err)
	}
	r := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
	if r.Gen != v.Reserved+2 || !r.PendingAt.IsZero() {
		t.Fatalf("revoke after a due announcement returned %s, want generation %d and nothing pending", fmtFence(r), v.Gen+2)
	}
}

func testManyScopes(t *testing.T, s *suite) {
	var scopes []middleware.Scope
	for i := 0; i < 24; i++ {
		id := fmt.Sprintf("id-%02d", i)
		switch i % 4 {
		case 0:
			scopes = append(scopes, middleware.TenantScope(id))
		case 1:
			scopes = append(scopes, middleware.SubjectScope("https://idp.example", id))
		case 2:
			scopes = append(scopes, middleware.IdPSessionScope("https://idp.example", id))
		case 3:
			scopes = append(scopes, middleware.SessionScope(id))
		}
	}
	scopes = append(scopes, middleware.GlobalScope())
	want := make([]middleware.Fence, len(scopes))
	for i, sc := range scopes {
		if i%5 == 4 {
			continue // some scopes stay unwritten, between written ones
		}
		for range i%3 + 1 {
			want[i] = s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke, Reason: sc.ID})
		}
		if i%2 == 1 {
			want[i] = s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpReload})
		}
	}
	got, ep := read(t, s.h.Store, scopes...)
	for i := range scopes {
		wantFence(t, "fence of "+scopes[i].String(), got[i], want[i])
	}
	if e := epoch(t, s.h.Store); e != ep {
		t.Fatalf("Fences epoch %q differs from Epoch %q", ep, e)
	}
	// A read of no scope still returns the epoch.
	if _, e := read(t, s.h.Store); e != ep {
		t.Fatalf("Fences of no scope returned epoch %q, want %q", e, ep)
	}
	// A destination longer than the scopes is allowed.
	dst := make([]middleware.Fence, 3)
	if _, err := s.h.Store.Fences(t.Context(), scopes[:2], dst); err != nil {
		t.Fatalf("Fences with a longer dst: %v", err)
	}
	wantFence(t, "first of two", dst[0], want[0])
	wantFence(t, "second of two", dst[1], want[1])
}

func testNoKeyCollision(t *testing.T, s *suite) {
	pairs := [][2]middleware.Scope{
		{middleware.SubjectScope("a|b", "c"), middleware.SubjectScope("a", "b|c")},
		{middleware.IdPSessionScope("a|b", "c"), middleware.IdPSessionScope("a", "b|c")},
		{middleware.SubjectScope("iss", "x"), middleware.IdPSessionScope("iss", "x")},
		{middleware.TenantScope("x"), middleware.SessionScope("x")},
		{middleware.TenantScope("{x}"), middleware.TenantScope("%7Bx%7D")},
	}
	for _, p := range pairs {
		f := s.bump(t, s.h.Store, p[0], middleware.Bump{Kind: middleware.BumpRevoke})
		got, _ := read(t, s.h.Store, p[0], p[1])
		wantFence(t, "bumped "+p[0].String(), got[0], f)
		wantFence(t, "untouched "+p[1].String(), got[1], middleware.Fence{})
	}
}

func testInvalidBump(t *testing.T, s *suite) {
	sc := middleware.TenantScope("acme")
	s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke, Reason: "kept"})
	s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpAnnounce, At: s.announceAt(t), Reason: "kept"})
	before := read1(t, s.h.Store, sc)
	bad := []struct {
		name string
		b    middleware.Bump
	}{
		{"zero kind", middleware.Bump{Reason: "x"}},
		{"unknown kind", middleware.Bump{Kind: 99, Reason: "x"}},
		{"unknown policy", middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA + 1, Reason: "x"}},
		{"negative ttl", middleware.Bump{Kind: middleware.BumpRevoke, TTL: -time.Second, Reason: "x"}},
		{"announce without a time", middleware.Bump{Kind: middleware.BumpAnnounce, Reason: "x"}},
		{"announce in the past", middleware.Bump{Kind: middleware.BumpAnnounce, At: s.storeNow(t).Add(-time.Minute), Reason: "x"}},
		{"announce beyond the storable range", middleware.Bump{Kind: middleware.BumpAnnounce, At: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range bad {
		_, err := s.h.Store.Bump(t.Context(), sc, tt.b)
		if !errors.Is(err, middleware.ErrInvalidBump) {
			t.Fatalf("%s: error %v, want ErrInvalidBump", tt.name, err)
		}
		wantFence(t, "fence after "+tt.name, read1(t, s.h.Store, sc), before)
	}
}

func testInvalidScope(t *testing.T, s *suite) {
	for _, sc := range []middleware.Scope{
		{},
		{Kind: middleware.ScopeEpoch},
		middleware.TenantScope(""),
		middleware.SubjectScope("", "alice"),
		{Kind: middleware.ScopeGlobal, ID: "x"},
	} {
		_, err := s.h.Store.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke})
		if !errors.Is(err, middleware.ErrInvalidScope) {
			t.Fatalf("bump on %#v: error %v, want ErrInvalidScope", sc, err)
		}
	}
}

func testReasonTruncated(t *testing.T, s *suite) {
	sc := middleware.SessionScope("s1")
	long := strings.Repeat("0123456789", middleware.MaxReasonLen/10+10)
	f := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke, Reason: long})
	if f.Reason != long[:middleware.MaxReasonLen] {
		t.Fatalf("returned reason has %d bytes, want the first %d", len(f.Reason), middleware.MaxReasonLen)
	}
	if got := read1(t, s.h.Store, sc); got.Reason != long[:middleware.MaxReasonLen] {
		t.Fatalf("stored reason has %d bytes, want the first %d", len(got.Reason), middleware.MaxReasonLen)
	}
}

func testEpochStable(t *testing.T, s *suite) {
	e := epoch(t, s.h.Store)
	for i := 0; i < 3; i++ {
		if e2 := epoch(t, s.h.Store); e2 != e {
			t.Fatalf("Epoch changed from %q to %q without data loss", e, e2)
		}
	}
	s.bump(t, s.h.Store, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke})
	if _, e2 := read(t, s.h.Store, middleware.GlobalScope()); e2 != e {
		t.Fatalf("Fences epoch %q differs from Epoch %q", e2, e)
	}
	if e2 := epoch(t, s.second()); e2 != e {
		t.Fatalf("second client's epoch %q differs from %q", e2, e)
	}
	if s.h.Reconnect == nil {
		t.Skip("harness has no Reconnect")
	}
	r := s.h.Reconnect()
	if e2 := epoch(t, r); e2 != e {
		t.Fatalf("epoch after reconnect %q differs from %q", e2, e)
	}
	if f := read1(t, r, middleware.GlobalScope()); f.Gen != 1 {
		t.Fatalf("fence after reconnect: %s", fmtFence(f))
	}
}

func (s *suite) needWipe(t *testing.T) {
	if s.h.Wipe == nil {
		t.Skip("harness has no Wipe")
	}
}

func testWipeChangesEpoch(t *testing.T, s *suite) {
	s.needWipe(t)
	old := epoch(t, s.h.Store)
	s.h.Wipe()
	eventually(t, propagationLimit, "epoch changes after wipe", func() bool {
		return epoch(t, s.h.Store) != old
	})
	e := epoch(t, s.h.Store)
	eventually(t, propagationLimit, "second client agrees on the new epoch", func() bool {
		return epoch(t, s.second()) == e
	})
	if s.h.Reconnect != nil {
		if e2 := epoch(t, s.h.Reconnect()); e2 != e {
			t.Fatalf("reconnected client's epoch %q differs from %q", e2, e)
		}
	}
	if e2 := epoch(t, s.h.Store); e2 != e {
		t.Fatalf("new epoch is not stable: %q then %q", e, e2)
	}
}

func testEpochTime(t *testing.T, s *suite) {
	check := func(e string, notBefore, notAfter time.Time) {
		t.Helper()
		at, ok := middleware.EpochTime(e)
		if !ok {
			t.Fatalf("epoch %q is not in the form of middleware.NewEpoch", e)
		}
		if at.Before(notBefore.Truncate(time.Millisecond)) || at.After(notAfter) {
			t.Fatalf("epoch %q made at %v, outside [%v, %v]", e, at, notBefore, notAfter)
		}
	}
	check(epoch(t, s.h.Store), time.Time{}, s.storeNow(t))
	s.needWipe(t)
	old := epoch(t, s.h.Store)
	if !s.realTime() {
		s.h.Advance(time.Hour) // so the new epoch's time must differ
	}
	before := s.storeNow(t)
	s.h.Wipe()
	var e string
	eventually(t, propagationLimit, "epoch changes after wipe", func() bool {
		e = epoch(t, s.h.Store)
		return e != old
	})
	check(e, before, s.storeNow(t))
}

func testFencesAfterWipe(t *testing.T, s *suite) {
	s.needWipe(t)
	sc := middleware.SubjectScope("https://idp.example", "alice")
	s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
	_, old := read(t, s.h.Store, sc)
	_, _ = read(t, s.second(), sc)
	s.h.Wipe()
	for _, st := range []middleware.Store{s.h.Store, s.second()} {
		var got []middleware.Fence
		var ep string
		eventually(t, propagationLimit, "Fences returns a new epoch after wipe", func() bool {
			got, ep = read(t, st, sc)
			return ep != old
		})
		wantFence(t, "fence after wipe", got[0], middleware.Fence{})
		if e := epoch(t, st); e != ep {
			t.Fatalf("Fences epoch %q differs from Epoch %q after wipe", ep, e)
		}
	}
	// Bumping after the wipe starts from zero under the new epoch.
	if f := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke}); f.Gen != 1 {
		t.Fatalf("first bump after wipe returned %s", fmtFence(f))
	}
}

// ttlPair bumps one scope with a TTL and one without, and returns them.
func (s *suite) ttlPair(t *testing.T) (withTTL, without middleware.Scope, ttl time.Duration) {
	withTTL = middleware.SessionScope("short-lived")
	without = middleware.SessionScope("kept")
	ttl = time.Hour
	if s.realTime() {
		ttl = realTTL
	}
	start := time.Now()
	f := s.bump(t, s.h.Store, withTTL, middleware.Bump{Kind: middleware.BumpRevoke, TTL: ttl})
	s.bump(t, s.h.Store, without, middleware.Bump{Kind: middleware.BumpRevoke})
	got := read1(t, s.h.Store, withTTL)
	// On real time, a very slow machine may already have passed the TTL;
	// only a read made well within it must see the fence.
	if !s.realTime() || time.Since(start) < ttl/2 {
		wantFence(t, "fence before its ttl", got, f)
	}
	return withTTL, without, ttl
}

func testTTLExpires(t *testing.T, s *suite) {
	sc, _, ttl := s.ttlPair(t)
	if !s.realTime() {
		s.h.Advance(ttl - time.Millisecond)
		if f := read1(t, s.h.Store, sc); f.Gen != 1 {
			t.Fatalf("fence expired before its ttl: %s", fmtFence(f))
		}
		s.h.Advance(time.Millisecond)
		wantFence(t, "fence at its ttl", read1(t, s.h.Store, sc), middleware.Fence{})
	} else {
		eventually(t, waitLimit, "fence with a ttl reads as zero", func() bool {
			return Equal(read1(t, s.h.Store, sc), middleware.Fence{})
		})
	}
	eventually(t, propagationLimit, "expired fence reads as zero on the second client", func() bool {
		return Equal(read1(t, s.second(), sc), middleware.Fence{})
	})
	// The next bump starts from zero, as for a scope never written.
	if f := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke}); f.Gen != 1 {
		t.Fatalf("bump after expiry returned %s, want generation 1", fmtFence(f))
	}
}

func testNoTTLKeeps(t *testing.T, s *suite) {
	short, kept, _ := s.ttlPair(t)
	if !s.realTime() {
		s.h.Advance(100 * 365 * 24 * time.Hour)
	}
	// Wait for the fence with a TTL to go: the clock has then moved past
	// every TTL the test used, and the other fence must still be there.
	eventually(t, waitLimit, "fence with a ttl expires", func() bool {
		return read1(t, s.h.Store, short).Gen == 0
	})
	if f := read1(t, s.h.Store, kept); f.Gen != 1 {
		t.Fatalf("fence without ttl is gone: %s", fmtFence(f))
	}
}

func testTTLRemovedByBump(t *testing.T, s *suite) {
	short, _, ttl := s.ttlPair(t)
	f := s.bump(t, s.h.Store, short, middleware.Bump{Kind: middleware.BumpRevoke})
	if f.Gen != 2 {
		t.Fatalf("second bump returned %s", fmtFence(f))
	}
	if !s.realTime() {
		s.h.Advance(100 * 365 * 24 * time.Hour)
	} else {
		// Let the original TTL pass on the store's clock.
		s.waitStoreTime(t, s.storeNow(t).Add(ttl+50*time.Millisecond))
	}
	wantFence(t, "fence bumped again without ttl", read1(t, s.h.Store, short), f)
}

func (s *suite) watcher(t *testing.T) middleware.Watcher {
	w, ok := s.h.Store.(middleware.Watcher)
	if !ok {
		t.Skip("store does not implement middleware.Watcher")
	}
	return w
}

// signal returns a watch function that never blocks and a channel that
// receives after it has been called.
func signal() (func(), chan struct{}) {
	ch := make(chan struct{}, 1)
	return func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}, ch
}

func received(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func testWatch(t *testing.T, s *suite) {
	w := s.watcher(t)
	fn, ch := signal()
	stop, err := w.Watch(t.Context(), fn)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer stop()
	sc := middleware.SessionScope("watched")
	for i := 0; i < 3; i++ {
		received(ch) // drop any earlier signal
		s.bump(t, s.second(), sc, middleware.Bump{Kind: middleware.BumpRevoke})
		eventually(t, propagationLimit, "watch function called after a bump on the second client", func() bool {
			return received(ch)
		})
	}
}

func testWatchStop(t *testing.T, s *suite) {
	w := s.watcher(t)
	var mu sync.Mutex
	stoppedCalls := 0
	stop, err := w.Watch(t.Context(), func() {
		mu.Lock()
		stoppedCalls++
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	fn, ch := signal()
	stop2, err := w.Watch(t.Context(), fn)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer stop2()
	stop()
	stop() // stopping twice is harmless
	mu.Lock()
	before := stoppedCalls
	mu.Unlock()
	s.bump(t, s.second(), middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke})
	eventually(t, propagationLimit, "remaining watcher called", func() bool { return received(ch) })
	mu.Lock()
	after := stoppedCalls
	mu.Unlock()
	if after != before {
		t.Fatalf("stopped watcher was called %d more times", after-before)
	}
}

func version(t *testing.T, st middleware.Store) middleware.Version {
	t.Helper()
	v, err := st.Fences(t.Context(), nil, nil)
	if err != nil {
		t.Fatalf("Fences: %v", err)
	}
	return v
}

func testSeqAdvances(t *testing.T, s *suite) {
	sc := middleware.TenantScope("acme")
	prev := version(t, s.h.Store)
	for i, b := range []middleware.Bump{
		{Kind: middleware.BumpRevoke},
		{Kind: middleware.BumpAnnounce, At: s.announceAt(t)},
		{Kind: middleware.BumpCancel},
		{Kind: middleware.BumpReload},
	} {
		s.bump(t, s.h.Store, sc, b)
		v := version(t, s.h.Store)
		if v.Epoch != prev.Epoch || v.Seq <= prev.Seq {
			t.Fatalf("bump %d (%v): version %+v after %+v, want the same epoch and a larger sequence number", i, b.Kind, v, prev)
		}
		prev = v
	}
	// A refused bump changes nothing, the sequence number included.
	if _, err := s.h.Store.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpCancel}); !errors.Is(err, middleware.ErrNothingPending) {
		t.Fatalf("cancel with nothing pending: %v", err)
	}
	if v := version(t, s.h.Store); v != prev {
		t.Fatalf("version %+v after a refused bump, want %+v", v, prev)
	}
	eventually(t, propagationLimit, "the second client reads the same version", func() bool {
		v, err := s.second().Fences(t.Context(), nil, nil)
		return err == nil && v == prev
	})
}

func testRotateEpoch(t *testing.T, s *suite) {
	r, ok := s.h.Store.(middleware.EpochRotator)
	if !ok {
		t.Skip("the store does not implement middleware.EpochRotator")
	}
	sc := middleware.TenantScope("acme")
	f := s.bump(t, s.h.Store, sc, middleware.Bump{Kind: middleware.BumpRevoke})
	old := version(t, s.h.Store)
	if got, err := r.RotateEpoch(t.Context(), "not-the-epoch", old.Seq+1); err != nil || got != old.Epoch {
		t.Fatalf("rotate from another epoch = %q, %v; want the epoch in force %q unchanged", got, err, old.Epoch)
	}
	// A witness that saw no more than the store has is a reader whose
	// cache lagged, not a rollback: nothing changes.
	for _, seen := range []uint64{0, old.Seq} {
		if got, err := r.RotateEpoch(t.Context(), old.Epoch, seen); err != nil || got != old.Epoch {
			t.Fatalf("rotate with seen %d <= seq %d = %q, %v; want the epoch unchanged", seen, old.Seq, got, err)
		}
	}
	if v := version(t, s.h.Store); v != old {
		t.Fatalf("version %+v after refused rotations, want %+v", v, old)
	}
	next, err := r.RotateEpoch(t.Context(), old.Epoch, old.Seq+1)
	if err != nil || next == old.Epoch || next == "" {
		t.Fatalf("rotate = %q, %v; want a new epoch", next, err)
	}
	if _, ok := middleware.EpochTime(next); !ok {
		t.Fatalf("rotated epoch %q does not carry its creation time", next)
	}
	if v := version(t, s.h.Store); v.Epoch != next {
		t.Fatalf("read after rotating: epoch %q, want %q", v.Epoch, next)
	}
	// A second rotation from the old epoch (another instance that saw the
	// same rollback) agrees on the new one.
	if again, err := r.RotateEpoch(t.Context(), old.Epoch, old.Seq+1); err != nil || again != next {
		t.Fatalf("second rotate from the old epoch = %q, %v; want %q", again, err, next)
	}
	wantFence(t, "fence after rotating", read1(t, s.h.Store, sc), f)
	eventually(t, propagationLimit, "the second client reads the new epoch", func() bool {
		v, err := s.second().Fences(t.Context(), nil, nil)
		return err == nil && v.Epoch == next
	})
}

func testLifetimes(t *testing.T, s *suite) {
	if _, ok := s.h.Store.(middleware.LifetimeRecorder); !ok {
		t.Skip("the store does not implement middleware.LifetimeRecorder")
	}
	raise := func(st middleware.Store, l middleware.Lifetimes) middleware.Lifetimes {
		t.Helper()
		got, err := st.(middleware.LifetimeRecorder).RaiseLifetimes(t.Context(), l)
		if err != nil {
			t.Fatalf("RaiseLifetimes(%+v): %v", l, err)
		}
		return got
	}
	if got := raise(s.h.Store, middleware.Lifetimes{}); got != (middleware.Lifetimes{}) {
		t.Fatalf("new store records %+v, want nothing", got)
	}
	want := middleware.Lifetimes{Session: 48 * time.Hour, IdPSession: 30 * 24 * time.Hour}
	if got := raise(s.h.Store, want); got != want {
		t.Fatalf("after raising: %+v, want %+v", got, want)
	}
	// A guard with shorter lifetimes never lowers what another recorded;
	// a longer one raises its own field only.
	if got := raise(s.second(), middleware.Lifetimes{Session: time.Hour, IdPSession: 60 * 24 * time.Hour}); got.Session != want.Session || got.IdPSession != 60*24*time.Hour {
		t.Fatalf("after a mixed raise: %+v", got)
	}
	// Sub-millisecond parts round up, never down.
	if got := raise(s.h.Store, middleware.Lifetimes{Session: 48*time.Hour + time.Microsecond}); got.Session < 48*time.Hour+time.Microsecond {
		t.Fatalf("recorded %v for 48h+1µs", got.Session)
	}
}
