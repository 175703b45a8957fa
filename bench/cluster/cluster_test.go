package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/bench/internal/propagation"
	"github.com/sessionfence/sessionfence/bench/internal/redisproc"
	"github.com/sessionfence/sessionfence/bench/internal/testenv"
	"github.com/sessionfence/sessionfence/bench/internal/variants"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/storetest"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// One cluster for the package: starting one takes a few seconds. Each
// test uses its own key prefix; the failover test runs last and leaves
// the cluster healthy, with masters and replicas swapped on one shard.
var shared struct {
	once sync.Once
	c    *redisproc.Cluster
	err  error
}

func cluster(t *testing.T) *redisproc.Cluster {
	t.Helper()
	testenv.NeedBinary(t)
	shared.once.Do(func() { shared.c, shared.err = redisproc.StartCluster(3, true) })
	if shared.err != nil {
		t.Fatalf("start cluster: %v", shared.err)
	}
	return shared.c
}

func TestMain(m *testing.M) {
	m.Run()
	if shared.c != nil {
		shared.c.Close()
	}
}

func newClient(t *testing.T, c *redisproc.Cluster) valkey.Client {
	t.Helper()
	// InitAddress lists every node; valkey-go finds the cluster itself.
	cl, err := valkey.NewClient(valkey.ClientOption{InitAddress: c.Addrs()})
	if err != nil {
		t.Fatalf("valkey.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newStore(t *testing.T, cl valkey.Client, cfg valkeystore.Config) *valkeystore.Store {
	t.Helper()
	s, err := valkeystore.New(cl, cfg)
	if err != nil {
		t.Fatalf("valkeystore.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// wipe deletes every key of prefix with one DEL on the master that owns
// its slot: for the store, the same as FLUSHALL on that shard.
func wipe(t *testing.T, c *redisproc.Cluster, prefix string) {
	t.Helper()
	slot, err := c.KeySlot(prefix + "epoch")
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := c.SlotOwner(slot)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := redisproc.Dial(m.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var keys []string
	cursor := "0"
	for range 10000 {
		v, err := conn.Do("SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000")
		if err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		arr := v.([]any)
		cursor = arr[0].(string)
		for _, k := range arr[1].([]any) {
			keys = append(keys, k.(string))
		}
		if cursor == "0" {
			break
		}
	}
	if len(keys) == 0 {
		return
	}
	if _, err := conn.Do(append([]string{"DEL"}, keys...)...); err != nil {
		t.Fatalf("DEL: %v", err)
	}
}

// TestConformanceOnCluster runs the store contract, every case, with both
// clients and the reconnecting one talking to the cluster.
func TestConformanceOnCluster(t *testing.T) {
	c := cluster(t)
	const auditCap, auditSlack = 150, 100
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		prefix := testenv.Prefix()
		t.Cleanup(func() { wipe(t, c, prefix) })
		cfg := valkeystore.Config{Prefix: prefix, AuditCap: auditCap}
		return storetest.Harness{
			Store:      newStore(t, newClient(t, c), cfg),
			Second:     newStore(t, newClient(t, c), cfg),
			AuditCap:   auditCap,
			AuditSlack: auditSlack,
			Wipe:       func() { wipe(t, c, prefix) },
			Reconnect: func() middleware.Store {
				return newStore(t, newClient(t, c), cfg)
			},
		}
	})
}

// instance is one application instance on the cluster.
type instance struct {
	store *valkeystore.Store
	guard *middleware.Guard
	srv   *httptest.Server
}

func newInstance(t *testing.T, c *redisproc.Cluster, prefix string, key []byte) *instance {
	t.Helper()
	st := newStore(t, newClient(t, c), valkeystore.Config{Prefix: prefix})
	g, err := middleware.New(middleware.Config{
		Store: st, Keys: [][]byte{key}, InsecureCookies: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(nethttp.Middleware(g)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})))
	t.Cleanup(srv.Close)
	return &instance{store: st, guard: g, srv: srv}
}

// fleet is three instances plus a writer, on one prefix.
type fleet struct {
	writer  *instance
	targets []string
	insts   []*instance
	acked   atomic.Int64 // terminate-all bumps acknowledged
	failed  atomic.Int64 // attempts that returned an error (outcome unknown)
}

func newFleet(t *testing.T, c *redisproc.Cluster, n int) *fleet {
	prefix, key := testenv.Prefix(), middleware.GenerateKey()
	f := &fleet{writer: newInstance(t, c, prefix, key)}
	for range n {
		in := newInstance(t, c, prefix, key)
		f.insts = append(f.insts, in)
		f.targets = append(f.targets, in.srv.URL)
	}
	return f
}

func (f *fleet) config(trials int) propagation.Config {
	return propagation.Config{
		Targets: f.targets, Trials: trials, LoadWorkers: 2, LoadSessions: 4, Limit: 10 * time.Second,
		Issue: func(ctx context.Context, sub string) (string, error) {
			_, ck, err := f.writer.guard.Issue(ctx, variants.Claims(sub))
			if err != nil {
				return "", err
			}
			return ck.Name + "=" + ck.Value, nil
		},
		// An operator retries a terminate-all that failed; a failure has
		// an unknown outcome, so it is counted apart. Retries are bounded.
		Revoke: func(ctx context.Context) error {
			var err error
			for range 100 {
				_, err = f.writer.store.Bump(ctx, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke})
				if err == nil {
					f.acked.Add(1)
					return nil
				}
				f.failed.Add(1)
				t := time.NewTimer(50 * time.Millisecond)
				<-t.C
			}
			return err
		},
	}
}

func summarize(t *testing.T, res []propagation.Trial) (late int) {
	t.Helper()
	var all []time.Duration
	within := 0
	for _, r := range res {
		all = append(all, r.All)
		late += r.Late
		within += r.Within
	}
	slices.Sort(all)
	if len(all) > 0 {
		t.Logf("%d trials: every instance refuses p50 %v, p99 %v, max %v after the writer's reply; accepted within the bound %d, after it %d",
			len(all), all[len(all)/2], all[len(all)*99/100], all[len(all)-1], within, late)
	}
	return late
}

// TestPropagationOnCluster: terminate-all reaches three instances under
// load, and none accepts a revoked session after it first refused one.
func TestPropagationOnCluster(t *testing.T) {
	c := cluster(t)
	f := newFleet(t, c, 3)
	res, err := propagation.Run(t.Context(), f.config(30))
	if err != nil {
		t.Fatal(err)
	}
	if late := summarize(t, res); late != 0 {
		t.Errorf("%d requests accepted a revoked session after the instance had refused one", late)
	}
}

// TestFailoverUnderLoadLosesNoRevocation: while instances serve load and
// terminate-all trials run, the replica of the master that owns the
// store's slot takes over (CLUSTER FAILOVER, the coordinated manual kind).
// Every acknowledged revocation must hold afterwards, on the instances
// that lived through it and on a new one, every later trial must
// propagate as before, and no late acceptance may happen at any point.
func TestFailoverUnderLoadLosesNoRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: a failover and 40 trials")
	}
	c := cluster(t)
	f := newFleet(t, c, 3)
	prefix := f.writer.store.Prefix()
	slot, err := c.KeySlot(prefix + "epoch")
	if err != nil {
		t.Fatal(err)
	}
	master, replica, err := c.SlotOwner(slot)
	if err != nil || replica == nil {
		t.Fatalf("owner of slot %d: %v %v %v", slot, master, replica, err)
	}

	// Per-session revocations before the failover, checked after it.
	ctx := t.Context()
	var revoked []*http.Cookie
	for i := range 20 {
		s, ck, err := f.writer.guard.Issue(ctx, variants.Claims(fmt.Sprintf("pre-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.writer.store.Bump(ctx, middleware.SessionScope(s.ID), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
			t.Fatal(err)
		}
		revoked = append(revoked, ck)
	}

	// A live session issued before the failover must stay live: the
	// replica that takes over has the epoch.
	_, keep, err := f.writer.guard.Issue(ctx, variants.Claims("kept"))
	if err != nil {
		t.Fatal(err)
	}

	// Phase 1: trials run while the failover happens: it starts before
	// trial 5's revoke, and trials go on until it has completed.
	cfg := f.config(1000)
	var failoverErr error
	var inFailover, overlapped atomic.Int64
	failoverDone := make(chan struct{})
	errStop := errors.New("failover complete")
	cfg.BeforeRevoke = func(ctx context.Context, trial int) error {
		switch {
		case trial == 5:
			inFailover.Store(1)
			go func() {
				defer close(failoverDone)
				start := time.Now()
				failoverErr = c.Failover(replica, 30*time.Second)
				inFailover.Store(0)
				t.Logf("CLUSTER FAILOVER to %s complete (every node agrees) in %v", replica.Addr, time.Since(start))
			}()
		case trial > 5:
			select {
			case <-failoverDone:
				return errStop
			default:
			}
		}
		return nil
	}
	revoke := cfg.Revoke
	cfg.Revoke = func(ctx context.Context) error {
		if inFailover.Load() == 1 {
			overlapped.Add(1)
		}
		return revoke(ctx)
	}
	during, err := propagation.Run(ctx, cfg)
	<-failoverDone
	if failoverErr != nil {
		t.Fatalf("failover: %v", failoverErr)
	}
	if err != nil && !errors.Is(err, errStop) {
		t.Fatalf("propagation during the failover: %v", err)
	}
	t.Logf("%d terminate-all trials started while the failover was in progress", overlapped.Load())
	if overlapped.Load() == 0 {
		t.Fatal("no revocation overlapped the failover; the test proved nothing")
	}
	t.Log("during the failover:")
	late := summarize(t, during)
	if now, _, err := c.SlotOwner(slot); err != nil || now != replica {
		t.Fatalf("after the failover the slot is served by %v (err %v), want the former replica %s", now, err, replica.Addr)
	}
	// Phase 2: the same instances, whose caches were filled from the old
	// master, must hear every later revocation from the new one.
	after, err := propagation.Run(ctx, f.config(20))
	if err != nil {
		t.Fatalf("propagation after the failover: %v", err)
	}
	t.Log("after the failover:")
	late += summarize(t, after)
	if late != 0 {
		t.Errorf("%d requests accepted a revoked session after the instance had refused one", late)
	}

	// No acknowledged revocation lost: the global generation counts every
	// acknowledged bump (and at most the failed attempts on top), and the
	// per-session revocations hold everywhere.
	fresh := newInstance(t, c, prefix, f.writer.guard.Config().Keys[0])
	var gen [1]middleware.Fence
	if _, err := fresh.store.Fences(ctx, []middleware.Scope{middleware.GlobalScope()}, gen[:]); err != nil {
		t.Fatal(err)
	}
	acked, failed := uint64(f.acked.Load()), uint64(f.failed.Load())
	t.Logf("terminate-all: %d acknowledged, %d failed attempts during the failover; global generation now %d", acked, failed, gen[0].Gen)
	if gen[0].Gen < acked || gen[0].Gen > acked+failed {
		t.Errorf("global generation %d, want between %d (acknowledged) and %d (plus failed attempts)", gen[0].Gen, acked, acked+failed)
	}
	for _, in := range append([]*instance{fresh}, f.insts...) {
		for i, ck := range revoked {
			if d := in.guard.Check(ctx, ck.Value); d.Allowed() {
				t.Errorf("instance %s: session revoked before the failover (%d) is accepted after it", in.srv.URL, i)
			}
		}
		// keep was issued before every terminate-all of the trials, so it
		// is revoked by the global fence, not by a lost epoch.
		if d := in.guard.Check(ctx, keep.Value); d.Allowed() || d.Scope.Kind != middleware.ScopeGlobal {
			t.Errorf("instance %s: session issued before the failover: %v scope %v, want revoked by the global fence (an epoch refusal would mean the data was lost)", in.srv.URL, d.Kind, d.Scope.Kind)
		}
	}
}
