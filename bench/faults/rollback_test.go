package faults_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/bench/internal/redisproc"
	"github.com/sessionfence/sessionfence/bench/internal/testenv"
	"github.com/sessionfence/sessionfence/bench/internal/variants"
	"github.com/sessionfence/sessionfence/middleware"
)

// TestStoreRestoredFromAnOlderSnapshotRefusesEveryOldSession crashes a
// server that persists by RDB snapshots only, after revocations that came
// later than its last snapshot. It comes back with the snapshot: the same
// epoch, the first revocations, not the last ones. Nothing in the data says
// so; the bump sequence number does, to whoever has seen a later one. The
// guard must then fail closed and rotate the epoch, so no session whose
// revocation was lost is accepted: every session of the old epoch is
// refused (scope epoch) and a new login works.
//
// Two witnesses, one subtest each (each with its own server, since the
// first detection rotates the epoch for everyone):
//
//   - the instance that read the later sequence number before the crash
//     (its watermark);
//   - a new instance with a new client, started with the restored store,
//     that learns it from a cookie issued after the lost revocations.
func TestStoreRestoredFromAnOlderSnapshotRefusesEveryOldSession(t *testing.T) {
	t.Run("the instance that read the lost bumps", func(t *testing.T) {
		testRollback(t, false)
	})
	t.Run("a new instance, through a cookie issued after the lost bumps", func(t *testing.T) {
		testRollback(t, true)
	})
}

func testRollback(t *testing.T, fresh bool) {
	sc := startScenario(t, "RDB snapshots only (--save 3600 1, appendonly no)", "--save", "3600 1", "--appendonly", "no")
	sc.crashAndRestart()
	if sc.seq() != 5 {
		t.Fatalf("the restored store holds seq %d, want 5 (the snapshot's)", sc.seq())
	}
	if sc.epoch() != sc.epoch0 {
		t.Fatalf("the restored store changed its epoch: the test needs a snapshot restore, not a wipe")
	}

	det, first, name := sc.a, sc.users[5], "the same instance A"
	if fresh {
		det, first, name = sc.newInstance(), sc.late, "new instance B (new client)"
	}
	d := sc.firstAnswer(det, first)
	sc.logf("step 9  %s, first request (%s): %s; cause: %v", name, sc.names[first], d, d.Cause)
	sc.drainLog()
	if d.Kind != middleware.DecisionRevoked || d.Scope.Kind != middleware.ScopeEpoch || !errors.Is(d.Cause, middleware.ErrStoreRolledBack) {
		t.Fatalf("first request after the restore: %v (cause %v), want revoked by epoch caused by ErrStoreRolledBack", d, d.Cause)
	}
	rotated := sc.epoch()
	sc.logf("        store epoch now %s (rotated: %v), seq %d", short(rotated), rotated != sc.epoch0, sc.seq())
	if rotated == sc.epoch0 {
		t.Fatalf("the epoch was not rotated")
	}

	// Every session of the old epoch, revoked or not, lost revocation or
	// kept one: refused by the epoch, on this instance and on any other.
	others := sc.newInstance()
	for _, inst := range []*app{det, others} {
		refused := 0
		for _, ck := range sc.all() {
			d := inst.guard.Check(t.Context(), ck.Value)
			if d.Allowed() {
				t.Errorf("%s was accepted after the restore", sc.names[ck])
				continue
			}
			if d.Kind != middleware.DecisionRevoked || d.Scope.Kind != middleware.ScopeEpoch {
				t.Errorf("%s: %v, want revoked by epoch", sc.names[ck], d)
				continue
			}
			refused++
		}
		who := name
		if inst == others {
			who = "another new instance"
		}
		sc.logf("step 10 %s: %d of %d old sessions (10 users, 2 bystanders, late) revoked by epoch", who, refused, len(sc.all()))
	}

	login := det.issue(t, "user-05")
	d = det.guard.Check(t.Context(), login.Value)
	sc.logf("step 11 new login user-05 on %s: %s (epoch %s)", name, d, short(sc.epoch()))
	if !d.Allowed() {
		t.Fatalf("a new login after the detection: %v", d)
	}
	if d := others.guard.Check(t.Context(), login.Value); !d.Allowed() {
		t.Fatalf("the new login on another instance: %v", d)
	}
	sc.drainLog()
}

// TestStoreRestartedFromAnAlwaysFsyncedAOFLosesNoRevocation is the control
// of the rollback test: the same steps on a server that fsyncs its
// append-only file on every write. The crash loses nothing: same epoch,
// same sequence number, no rotation, the ten revocations hold and the
// other sessions pass, on the instance that lived through it and on a new
// one.
func TestStoreRestartedFromAnAlwaysFsyncedAOFLosesNoRevocation(t *testing.T) {
	sc := startScenario(t, "append-only file, fsync always", "--appendonly", "yes", "--appendfsync", "always")
	sc.crashAndRestart()
	if sc.epoch() != sc.epoch0 || sc.seq() != 10 {
		t.Fatalf("after the restart: epoch %s seq %d, want %s seq 10", short(sc.epoch()), sc.seq(), short(sc.epoch0))
	}
	for i, inst := range []*app{sc.a, sc.newInstance()} {
		name := [...]string{"the same instance A", "new instance B"}[i]
		d := sc.firstAnswer(inst, sc.users[5])
		if d.Kind != middleware.DecisionRevoked || d.Scope.Kind != middleware.ScopeSubject {
			t.Fatalf("%s: user-05 after the restart: %v (cause %v), want revoked by subject", name, d, d.Cause)
		}
		revoked, passed := 0, 0
		for _, ck := range sc.users {
			if d := inst.guard.Check(t.Context(), ck.Value); d.Kind == middleware.DecisionRevoked && d.Scope.Kind == middleware.ScopeSubject {
				revoked++
			} else {
				t.Errorf("%s: %s: %v, want revoked by subject", name, sc.names[ck], d)
			}
		}
		for _, ck := range append(sc.bystanders[:], sc.late) {
			if d := inst.guard.Check(t.Context(), ck.Value); d.Allowed() {
				passed++
			} else {
				t.Errorf("%s: %s: %v, want allowed", name, sc.names[ck], d)
			}
		}
		sc.logf("step 9  %s: %d of 10 users revoked by subject, %d of 3 unrevoked sessions allowed", name, revoked, passed)
	}
	sc.logf("        store epoch %s (unchanged: %v), seq %d", short(sc.epoch()), sc.epoch() == sc.epoch0, sc.seq())
	if sc.epoch() != sc.epoch0 {
		t.Fatalf("the epoch was rotated although nothing was lost")
	}
	sc.drainLog()
}

// scenario is the common part of the rollback test and its control: one
// server, instance A, ten users revoked in two halves around a SAVE, two
// bystanders never revoked, and a session issued after the last
// revocation.
type scenario struct {
	t          *testing.T
	srv        *redisproc.Server
	prefix     string
	key        []byte
	log        *logTap
	a          *app
	users      [10]*http.Cookie // user-00 .. user-09
	bystanders [2]*http.Cookie  // alice, bob
	late       *http.Cookie
	names      map[*http.Cookie]string
	epoch0     string
}

func startScenario(t *testing.T, persistence string, args ...string) *scenario {
	sc := &scenario{t: t, srv: testenv.Server(t, args...), prefix: testenv.Prefix(), key: middleware.GenerateKey(),
		log: new(logTap), names: map[*http.Cookie]string{}}
	sc.a = sc.newInstance()
	sc.logf("step 1  server: %s; instance A (guard + valkeystore)", persistence)
	for i := range sc.users {
		sc.users[i] = sc.issue(sc.a, fmt.Sprintf("user-%02d", i))
	}
	sc.bystanders[0], sc.bystanders[1] = sc.issue(sc.a, "alice"), sc.issue(sc.a, "bob")
	sc.epoch0 = sc.epoch()
	sc.logf("step 2  issued sessions for user-00..user-09 and bystanders alice, bob; store epoch %s, seq %d", short(sc.epoch0), sc.seq())

	sc.revoke(0, 5)
	sc.expect(5)
	sc.logf("step 3  revoked user-00..user-04; seq %d; instance A: those 5 refused, user-05..user-09 and bystanders allowed", sc.seq())
	rawDo(t, sc.srv, "SAVE")
	sc.logf("step 4  SAVE: the RDB snapshot holds seq %d", sc.seq())
	sc.revoke(5, 10)
	sc.expect(10)
	sc.logf("step 5  revoked user-05..user-09; seq %d; instance A read seq %d: all 10 users refused, bystanders allowed", sc.seq(), sc.seq())
	sc.late = sc.issue(sc.a, "late")
	if d := sc.a.guard.Check(t.Context(), sc.late.Value); !d.Allowed() {
		t.Fatalf("late session: %v", d)
	}
	sc.logf("step 6  issued session %q after the last revocation: its cookie records seq %d", "late", sc.seq())
	return sc
}

// crashAndRestart kills the server (SIGKILL), waits until instance A has
// noticed (its reads fail, so its client-side cache is dropped: nothing
// from before the crash can answer afterwards), and restarts the server
// from its directory.
func (sc *scenario) crashAndRestart() {
	if err := sc.srv.Kill(); err != nil {
		sc.t.Fatal(err)
	}
	until(sc.t, 10*time.Second, "instance A notices the crash", func() bool {
		return sc.a.guard.Check(sc.t.Context(), sc.late.Value).Kind == middleware.DecisionStoreUnavailable
	})
	sc.logf("step 7  kill -9 the server; instance A answers store_unavailable")
	if err := sc.srv.Restart(); err != nil {
		sc.t.Fatal(err)
	}
	same := "unchanged"
	if sc.epoch() != sc.epoch0 {
		same = "CHANGED"
	}
	sc.logf("step 8  restarted from the same directory: epoch %s (%s), seq %d (instance A and the late cookie have seen 10)", short(sc.epoch()), same, sc.seq())
}

// firstAnswer polls inst with ck until the store answers (valkey-go
// reconnects on its own) and returns that first decision. A refusal that
// found the rollback but could not rotate the epoch (store_unavailable
// caused by ErrStoreRolledBack) also ends the wait, so the test sees it:
// the rotation must succeed at the first detection.
func (sc *scenario) firstAnswer(inst *app, ck *http.Cookie) middleware.Decision {
	var d middleware.Decision
	until(sc.t, 15*time.Second, "the instance reads the restarted store", func() bool {
		d = inst.guard.Check(sc.t.Context(), ck.Value)
		return d.Kind != middleware.DecisionStoreUnavailable || errors.Is(d.Cause, middleware.ErrStoreRolledBack)
	})
	return d
}

// newInstance starts an instance (new client, store and guard) whose guard
// logs into the scenario's tap.
func (sc *scenario) newInstance() *app {
	return newApp(sc.t, sc.srv.Addr, sc.prefix, sc.key, appOptions{
		guard: func(c *middleware.Config) { c.Logger = slog.New(slog.NewTextHandler(sc.log, nil)) },
	})
}

func (sc *scenario) issue(a *app, subject string) *http.Cookie {
	ck := a.issue(sc.t, subject)
	sc.names[ck] = subject
	return ck
}

// revoke terminates users [from, to) on every device: a revoke of their
// subject fence, as the admin's terminate-user does.
func (sc *scenario) revoke(from, to int) {
	for i := from; i < to; i++ {
		sub := fmt.Sprintf("user-%02d", i)
		if _, err := sc.a.store.Bump(sc.t.Context(), middleware.SubjectScope(variants.Issuer, sub), middleware.Bump{Kind: middleware.BumpRevoke, Reason: "terminate user"}); err != nil {
			sc.t.Fatalf("revoke %s: %v", sub, err)
		}
	}
}

// expect checks on instance A that the first n users are refused by their
// subject fence and everyone else passes.
func (sc *scenario) expect(n int) {
	for i, ck := range sc.users {
		d := sc.a.guard.Check(sc.t.Context(), ck.Value)
		if i < n && (d.Kind != middleware.DecisionRevoked || d.Scope.Kind != middleware.ScopeSubject) {
			sc.t.Fatalf("user-%02d: %v, want revoked by subject", i, d)
		}
		if i >= n && !d.Allowed() {
			sc.t.Fatalf("user-%02d: %v, want allowed", i, d)
		}
	}
	for _, ck := range sc.bystanders {
		if d := sc.a.guard.Check(sc.t.Context(), ck.Value); !d.Allowed() {
			sc.t.Fatalf("%s: %v, want allowed", sc.names[ck], d)
		}
	}
}

// all returns every session issued before the crash.
func (sc *scenario) all() []*http.Cookie {
	return append(append(sc.users[:len(sc.users):len(sc.users)], sc.bystanders[:]...), sc.late)
}

func (sc *scenario) get(key string) string { return rawGet(sc.t, sc.srv, sc.prefix+key) }

func (sc *scenario) epoch() string { return sc.get("epoch") }

func (sc *scenario) seq() int {
	var n int
	_, _ = fmt.Sscan(sc.get("seq"), &n)
	return n
}

func (sc *scenario) logf(format string, args ...any) {
	sc.t.Helper()
	sc.t.Logf(format, args...)
}

// drainLog shows what the guards logged since the last call.
func (sc *scenario) drainLog() {
	sc.t.Helper()
	for _, line := range sc.log.drain() {
		sc.t.Logf("        guard log: %s", line)
	}
}

// short abbreviates an epoch "<ms>-<32 hex>" for the log.
func short(epoch string) string {
	if i := strings.IndexByte(epoch, '-'); i >= 0 && len(epoch) > i+9 {
		return epoch[:i+9] + "…"
	}
	return epoch
}

// logTap collects log lines written from any goroutine.
type logTap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logTap) drain() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.buf.String())
	l.buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
