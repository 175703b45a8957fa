package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/bench/internal/delayproxy"
	"github.com/sessionfence/sessionfence/bench/internal/testenv"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// TestStoreStoppedDuringLoadFailsClosedAndRecovers crashes the server in
// the middle of load. From the first refusal on, until the server is back,
// not one request may be accepted (nothing can be verified), and every
// refusal must say store_unavailable (503), not revoked: the sessions are
// fine, the store is not. When the server returns with its data, the same
// sessions are accepted again without anyone logging in.
func TestStoreStoppedDuringLoadFailsClosedAndRecovers(t *testing.T) {
	srv := testenv.Server(t, "--appendonly", "yes", "--appendfsync", "always")
	prefix, key := testenv.Prefix(), middleware.GenerateKey()
	a := newApp(t, srv.Addr, prefix, key, appOptions{
		// A short operation bound so the outage is answered quickly.
		store: func(c *valkeystore.Config) { c.Timeout = 100 * time.Millisecond },
	})
	var cookies []*http.Cookie
	for i := range 8 {
		cookies = append(cookies, a.issue(t, fmt.Sprintf("user-%d", i)))
	}
	l := startLoad(a, cookies, 4)
	defer func() {
		select {
		case <-l.stop:
		default:
			l.end()
		}
	}()
	until(t, 10*time.Second, "load accepted before the crash", func() bool {
		return l.count(func(e event) bool { return e.ans.status == http.StatusOK }) >= 200
	})

	killed := time.Now()
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	refusedAt := func() time.Time {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, e := range l.events {
			if e.ans.status != http.StatusOK && e.sent.After(killed) {
				return e.recv
			}
		}
		return time.Time{}
	}
	until(t, 10*time.Second, "a refusal after the crash", func() bool { return !refusedAt().IsZero() })
	first := refusedAt()
	// Let the outage last a few hundred requests (counted, not timed).
	until(t, 20*time.Second, "load refused during the outage", func() bool {
		return l.count(func(e event) bool { return e.sent.After(first) }) >= 300
	})

	restarted := time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	until(t, 15*time.Second, "sessions accepted again after the server returned", func() bool {
		return l.count(func(e event) bool { return e.ans.status == http.StatusOK && e.sent.After(restarted) }) >= 100
	})
	events := l.end()

	var window, outage, accepted, wrong int
	var lastWindow time.Duration
	for _, e := range events {
		switch {
		case e.sent.Before(killed):
		case e.recv.Before(first) || e.recv.Equal(first):
			// Between the crash and the first refusal: valkey-go had not
			// yet noticed the closed connection.
			if e.ans.status == http.StatusOK {
				window++
				lastWindow = max(lastWindow, e.sent.Sub(killed))
			}
		case e.sent.After(first) && e.recv.Before(restarted):
			outage++
			if e.ans.status == http.StatusOK {
				accepted++
			} else if e.ans.status != http.StatusServiceUnavailable || e.ans.code != "store_unavailable" {
				wrong++
			}
		}
	}
	t.Logf("accepted between the crash and the first refusal: %d, the last sent %v after the server was dead; first refusal received %v after; requests during the outage: %d",
		window, lastWindow, first.Sub(killed), outage)
	if accepted != 0 {
		t.Errorf("%d requests were accepted while the store was down (fail open)", accepted)
	}
	// Before valkey-go notices the closed connection it still answers from
	// its cache. Those answers are not unverified: a dead server takes no
	// writes, so the cached fences were current. The window must stay a
	// matter of milliseconds; one second is a generous bound.
	if lastWindow > time.Second {
		t.Errorf("the cache answered %v after the server died", lastWindow)
	}
	if wrong != 0 {
		t.Errorf("%d refusals during the outage were not 503 store_unavailable", wrong)
	}
	// After recovery, settled: every request of the last 100 accepted.
	tail := events[len(events)-100:]
	for _, e := range tail {
		if e.ans.status != http.StatusOK {
			t.Fatalf("after recovery a request was refused: %+v", e.ans)
		}
	}
}

// TestStoreRestartedEmptyRefusesEverySessionThroughTheEpoch restarts the
// server without its data, as a crash without persistence or a failover to
// an empty replica would. A wiped fence reads as "never revoked", so only
// the epoch stands between a revoked session and its resurrection: every
// session issued before must be refused, with scope epoch, on every
// instance, and a fresh login must work.
func TestStoreRestartedEmptyRefusesEverySessionThroughTheEpoch(t *testing.T) {
	srv := testenv.Server(t)
	prefix, key := testenv.Prefix(), middleware.GenerateKey()
	a := newApp(t, srv.Addr, prefix, key, appOptions{})
	b := newApp(t, srv.Addr, prefix, key, appOptions{})
	live := a.issue(t, "alice")
	revoked := a.issue(t, "bob")
	s, err := a.guard.SessionFromCookie(revoked.Value)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.Bump(t.Context(), middleware.SessionScope(s.ID), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []*app{a, b} {
		until(t, 5*time.Second, "the bump reached every instance", func() bool {
			return inst.get(revoked).status == http.StatusUnauthorized && inst.get(live).status == http.StatusOK
		})
	}

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wipe(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for name, inst := range map[string]*app{"a": a, "b": b} {
		var seen []answer
		until(t, 15*time.Second, "instance "+name+" reads the restarted store", func() bool {
			x, y := inst.get(live), inst.get(revoked)
			seen = append(seen, x, y)
			return x.status != http.StatusServiceUnavailable && y.status != http.StatusServiceUnavailable
		})
		for _, ans := range seen {
			switch {
			case ans.status == http.StatusOK:
				t.Fatalf("instance %s accepted a session issued before the wipe", name)
			case ans.status == http.StatusUnauthorized && ans.scope != "epoch":
				t.Errorf("instance %s refused with scope %q, want epoch", name, ans.scope)
			}
		}
	}
	fresh := b.issue(t, "alice")
	for _, inst := range []*app{a, b} {
		until(t, 5*time.Second, "a fresh login is accepted after the wipe", func() bool {
			return inst.get(fresh).status == http.StatusOK
		})
		if ans := inst.get(revoked); ans.status != http.StatusUnauthorized {
			t.Fatalf("revoked session after the wipe: %+v", ans)
		}
	}
}

// TestStoreRestartedWithPersistenceKeepsRevocations restarts the server
// from its own persistence files: revocations must survive (and the epoch,
// so live sessions stay live). The AOF with fsync always survives a crash;
// RDB snapshots survive a graceful shutdown (a crash would lose the writes
// since the last snapshot: see BENCHMARKS.md).
func TestStoreRestartedWithPersistenceKeepsRevocations(t *testing.T) {
	cases := []struct {
		name string
		args []string
		stop string
	}{
		{"append-only file, fsync always, crash (SIGKILL)", []string{"--appendonly", "yes", "--appendfsync", "always"}, "kill"},
		{"RDB snapshot, graceful shutdown (SIGTERM)", []string{"--save", "3600 1"}, "stop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.Server(t, tc.args...)
			prefix, key := testenv.Prefix(), middleware.GenerateKey()
			a := newApp(t, srv.Addr, prefix, key, appOptions{})
			ctx := t.Context()
			live := a.issue(t, "alice")
			bySession := a.issue(t, "bob")
			byUser := a.issue(t, "carol")
			s, err := a.guard.SessionFromCookie(bySession.Value)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.store.Bump(ctx, middleware.SessionScope(s.ID), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
				t.Fatal(err)
			}
			c, err := a.guard.SessionFromCookie(byUser.Value)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.store.Bump(ctx, middleware.SubjectScope(c.Issuer, c.Subject), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
				t.Fatal(err)
			}
			stop := srv.Kill
			if tc.stop == "stop" {
				stop = srv.Stop
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			fresh := newApp(t, srv.Addr, prefix, key, appOptions{})
			for name, inst := range map[string]*app{"the instance that lived through it": a, "a new instance": fresh} {
				until(t, 15*time.Second, name+" reads the restarted store", func() bool {
					return inst.get(live).status != http.StatusServiceUnavailable
				})
				if ans := inst.get(live); ans.status != http.StatusOK {
					t.Errorf("%s: live session refused after restart: %+v (the epoch was lost)", name, ans)
				}
				if ans := inst.get(bySession); ans.status != http.StatusUnauthorized || ans.scope != "session" {
					t.Errorf("%s: session revoked before the restart: %+v, want 401 scope session", name, ans)
				}
				if ans := inst.get(byUser); ans.status != http.StatusUnauthorized || ans.scope != "subject" {
					t.Errorf("%s: user revoked before the restart: %+v, want 401 scope subject", name, ans)
				}
			}
		})
	}
}

// TestInjectedLatencyKeepsTheWarmHotPathLocal puts 20 ms each way between
// the application and the server. While the client-side cache is warm the
// hot path must not pay it: the median request completes in well under
// a quarter of the injected one-way latency. A cold read and a revocation
// do pay it, which shows the proxy really delays.
func TestInjectedLatencyKeepsTheWarmHotPathLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: about 2 s of delayed traffic")
	}
	const delay = 20 * time.Millisecond
	srv := testenv.Server(t)
	p, err := delayproxy.Start(srv.Addr, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	prefix, key := testenv.Prefix(), middleware.GenerateKey()
	slow := newApp(t, p.Addr(), prefix, key, appOptions{})
	direct := newApp(t, srv.Addr, prefix, key, appOptions{})

	ck := direct.issue(t, "alice")
	cold := time.Now()
	if ans := slow.get(ck); ans.status != http.StatusOK {
		t.Fatalf("first request: %+v", ans)
	}
	coldTook := time.Since(cold)
	if coldTook < 2*delay {
		t.Fatalf("a cold read took %v, less than the injected round trip %v: the proxy does not delay", coldTook, 2*delay)
	}

	const n = 400
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if ans := slow.get(ck); ans.status != http.StatusOK {
			t.Fatalf("warm request: %+v", ans)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	median, p99 := lat[n/2], lat[n*99/100]
	t.Logf("injected %v each way; cold read %v; warm requests over HTTP: median %v, p99 %v, max %v", delay, coldTook, median, p99, lat[n-1])
	if median >= delay/4 {
		t.Errorf("warm median %v is not under a quarter of the injected latency (%v): the hot path is not local", median, delay/4)
	}

	s, err := direct.guard.SessionFromCookie(ck.Value)
	if err != nil {
		t.Fatal(err)
	}
	bumped := time.Now()
	if _, err := direct.store.Bump(t.Context(), middleware.SessionScope(s.ID), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
		t.Fatal(err)
	}
	replied := time.Now()
	until(t, 5*time.Second, "the slow instance refuses the revoked session", func() bool {
		return slow.get(ck).status == http.StatusUnauthorized
	})
	t.Logf("revocation reached the slow instance %v after the writer's reply (%v after the bump was sent)", time.Since(replied), time.Since(bumped))
}

// TestBoundedStalenessAnswersStaleWithinTheBoundAndFailsClosedAfter checks
// Config.StaleFor exactly as documented: when the store cannot be read,
// fences confirmed within StaleFor answer (the decision is marked Stale),
// older or never-confirmed ones fail closed with store_unavailable; a
// revoked session stays revoked; and once the store is back, answers are
// no longer stale. The application clock is injected so the bound is
// tested to the millisecond.
func TestBoundedStalenessAnswersStaleWithinTheBoundAndFailsClosedAfter(t *testing.T) {
	const staleFor = 30 * time.Second
	srv := testenv.Server(t, "--appendonly", "yes", "--appendfsync", "always")
	prefix, key := testenv.Prefix(), middleware.GenerateKey()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	a := newApp(t, srv.Addr, prefix, key, appOptions{
		client: func(o *valkey.ClientOption) { o.DisableRetry = true },
		store:  func(c *valkeystore.Config) { c.Timeout = 100 * time.Millisecond },
		guard:  func(c *middleware.Config) { c.StaleFor = staleFor; c.Now = now },
	})
	ctx := context.Background()
	_, good, err := a.guard.Issue(ctx, claimsFor("alice"))
	if err != nil {
		t.Fatal(err)
	}
	_, gone, err := a.guard.Issue(ctx, claimsFor("bob"))
	if err != nil {
		t.Fatal(err)
	}
	_, never, err := a.guard.Issue(ctx, claimsFor("carol"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := a.guard.SessionFromCookie(gone.Value)
	if _, err := a.store.Bump(ctx, middleware.SessionScope(s.ID), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
		t.Fatal(err)
	}
	// Confirm the fences of good and gone (not never) at the current time.
	if d := a.guard.Check(ctx, good.Value); !d.Allowed() || d.Stale {
		t.Fatalf("before the outage: %v stale=%v", d.Kind, d.Stale)
	}
	if d := a.guard.Check(ctx, gone.Value); d.Kind != middleware.DecisionRevoked {
		t.Fatalf("revoked before the outage: %v", d.Kind)
	}
	confirmed := now()

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	until(t, 10*time.Second, "reads fail and bounded staleness answers", func() bool {
		d := a.guard.Check(ctx, good.Value)
		return d.Allowed() && d.Stale
	})
	steps := []struct {
		at   time.Duration // after the confirmation
		good middleware.DecisionKind
	}{
		{0, middleware.DecisionAllowed},
		{staleFor / 2, middleware.DecisionAllowed},
		{staleFor, middleware.DecisionAllowed}, // the bound itself is inside
		{staleFor + time.Millisecond, middleware.DecisionStoreUnavailable},
		{2 * staleFor, middleware.DecisionStoreUnavailable},
	}
	for _, st := range steps {
		clock.Store(confirmed.Add(st.at).UnixNano())
		d := a.guard.Check(ctx, good.Value)
		if d.Kind != st.good {
			t.Errorf("%v after confirmation: good session %v, want %v", st.at, d.Kind, st.good)
		}
		if d.Allowed() && !d.Stale {
			t.Errorf("%v after confirmation: allowed but not marked stale while the store is down", st.at)
		}
		if d.Kind == middleware.DecisionStoreUnavailable && !errors.Is(d.Cause, middleware.ErrStoreUnavailable) {
			t.Errorf("%v: cause %v does not wrap ErrStoreUnavailable", st.at, d.Cause)
		}
		if g := a.guard.Check(ctx, gone.Value); g.Allowed() {
			t.Errorf("%v after confirmation: a revoked session was allowed from the stale cache", st.at)
		}
		if nv := a.guard.Check(ctx, never.Value); nv.Kind != middleware.DecisionStoreUnavailable {
			t.Errorf("%v after confirmation: a session never confirmed got %v, want store_unavailable", st.at, nv.Kind)
		}
	}
	// Over HTTP the stale window answers 200 and, after it, 503.
	clock.Store(confirmed.Add(staleFor / 2).UnixNano())
	if ans := a.get(good); ans.status != http.StatusOK {
		t.Errorf("HTTP within the bound: %+v", ans)
	}
	clock.Store(confirmed.Add(staleFor + time.Second).UnixNano())
	if ans := a.get(good); ans.status != http.StatusServiceUnavailable || ans.code != "store_unavailable" {
		t.Errorf("HTTP after the bound: %+v, want 503 store_unavailable", ans)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	until(t, 15*time.Second, "fresh answers after the store returned", func() bool {
		d := a.guard.Check(ctx, good.Value)
		return d.Allowed() && !d.Stale
	})
}

func claimsFor(sub string) middleware.Claims {
	return middleware.Claims{Issuer: "https://idp.faults.example", Subject: sub, Tenant: "acme", IdPSession: "sid-" + sub, AuthTime: time.Now()}
}
