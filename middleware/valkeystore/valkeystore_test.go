package valkeystore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/fencetext"
	"github.com/sessionfence/sessionfence/middleware/storetest"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// The audit capacity of the conformance stores, and the slack of MAXLEN ~
// on a server with the default stream-node-max-entries (100).
const auditCap, auditSlack = 150, 100

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		addr := serverAddr(t)
		prefix := testPrefix()
		admin := newClient(t, addr)
		wipe := func() { deleteKeys(t, admin, prefix) }
		t.Cleanup(wipe)
		cfg := valkeystore.Config{Prefix: prefix, AuditCap: auditCap}
		return storetest.Harness{
			Store:      newStoreConfig(t, newClient(t, addr), cfg),
			Second:     newStoreConfig(t, newClient(t, addr), cfg),
			AuditCap:   auditCap,
			AuditSlack: auditSlack,
			Wipe:       wipe,
			Reconnect: func() middleware.Store {
				return newStore(t, newClient(t, addr), prefix)
			},
		}
	})
}

// env is one test's server, prefix, two stores on independent clients and
// an admin client for raw commands.
type env struct {
	addr   string
	prefix string
	admin  valkey.Client
	a, b   *valkeystore.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{addr: serverAddr(t), prefix: testPrefix()}
	e.admin = newClient(t, e.addr)
	t.Cleanup(func() { deleteKeys(t, e.admin, e.prefix) })
	e.a = newStore(t, newClient(t, e.addr), e.prefix)
	e.b = newStore(t, newClient(t, e.addr), e.prefix)
	return e
}

func (e *env) fenceKey(sc middleware.Scope) string { return e.prefix + "f:" + sc.Key() }

func (e *env) rawSet(t *testing.T, key, value string) {
	t.Helper()
	if err := e.admin.Do(t.Context(), e.admin.B().Set().Key(key).Value(value).Build()).Error(); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
}

func read1(t *testing.T, s middleware.Store, sc middleware.Scope) (middleware.Fence, error) {
	t.Helper()
	dst := make([]middleware.Fence, 1)
	_, err := s.Fences(t.Context(), []middleware.Scope{sc}, dst)
	return dst[0], err
}

// eventually polls cond until it holds or the limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	wait := 100 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		timer := time.NewTimer(wait)
		<-timer.C
		wait = min(2*wait, 10*time.Millisecond)
	}
}

func TestBumpOnOneClientIsSeenByAnotherWithinTwoSeconds(t *testing.T) {
	e := newEnv(t)
	sc := middleware.SubjectScope("https://idp.example", "alice")
	if _, err := read1(t, e.b, sc); err != nil { // cache the zero fence on B
		t.Fatal(err)
	}
	f, err := e.a.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "client B reads the bump made on A", func() bool {
		got, err := read1(t, e.b, sc)
		return err == nil && storetest.Equal(got, f)
	})
}

// TestReadAfterOwnBumpNeverSeesTheOldValue repeats what the conformance
// suite checks a few times, often enough to hit the race between the
// script's reply and the invalidation of the cached fence, which arrive on
// different connections.
func TestReadAfterOwnBumpNeverSeesTheOldValue(t *testing.T) {
	e := newEnv(t)
	sc := middleware.TenantScope("acme")
	for i := 0; i < 300; i++ {
		if _, err := read1(t, e.a, sc); err != nil { // cache the current value
			t.Fatal(err)
		}
		want, err := e.a.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke})
		if err != nil {
			t.Fatal(err)
		}
		got, err := read1(t, e.a, sc)
		if err != nil {
			t.Fatal(err)
		}
		if !storetest.Equal(got, want) {
			t.Fatalf("bump %d: read %+v right after bump returned %+v", i, got, want)
		}
	}
}

func TestRawWriteByAnotherClientInvalidatesTheCachedRead(t *testing.T) {
	e := newEnv(t)
	sc := middleware.TenantScope("acme")
	for i := 0; i < 2; i++ { // the second read is served from the cache
		if f, err := read1(t, e.a, sc); err != nil || f.Gen != 0 {
			t.Fatalf("read %d: %+v, %v", i, f, err)
		}
	}
	want := middleware.Fence{Gen: 7, Reserved: 7, Reload: 2, BumpedAt: time.UnixMilli(1_700_000_000_000).UTC(), Reason: "raw"}
	e.rawSet(t, e.fenceKey(sc), fencetext.Encode(want))
	eventually(t, 2*time.Second, "cached read sees the raw write", func() bool {
		got, err := read1(t, e.a, sc)
		return err == nil && storetest.Equal(got, want)
	})
}

func TestMalformedStoredValuesFailClosed(t *testing.T) {
	tests := []struct {
		name  string
		key   func(e *env, sc middleware.Scope) string
		value string
	}{
		{"garbage fence value", func(e *env, sc middleware.Scope) string { return e.fenceKey(sc) }, "garbage"},
		{"fence value with an unknown policy", func(e *env, sc middleware.Scope) string { return e.fenceKey(sc) }, "1:0:0:7:0:0:"},
		{"empty fence value", func(e *env, sc middleware.Scope) string { return e.fenceKey(sc) }, ""},
		{"empty epoch", func(e *env, _ middleware.Scope) string { return e.prefix + "epoch" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			sc := middleware.SessionScope("s1")
			if _, err := read1(t, e.a, sc); err != nil { // cached before the damage
				t.Fatal(err)
			}
			e.rawSet(t, tt.key(e, sc), tt.value)
			var err error
			eventually(t, 2*time.Second, "read fails after the damage", func() bool {
				_, err = read1(t, e.a, sc)
				return err != nil
			})
			if !errors.Is(err, middleware.ErrStoreUnavailable) {
				t.Fatalf("error %v, want ErrStoreUnavailable", err)
			}
			// A client that never cached the key fails the same way.
			if _, err := read1(t, e.b, sc); !errors.Is(err, middleware.ErrStoreUnavailable) {
				t.Fatalf("fresh client: error %v, want ErrStoreUnavailable", err)
			}
		})
	}
}

func TestBumpRefusesToOverwriteAValueItCannotRead(t *testing.T) {
	e := newEnv(t)
	sc := middleware.SessionScope("s1")
	e.rawSet(t, e.fenceKey(sc), "garbage")
	_, err := e.a.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke})
	if !errors.Is(err, middleware.ErrStoreUnavailable) {
		t.Fatalf("error %v, want ErrStoreUnavailable", err)
	}
	v, err := e.admin.Do(t.Context(), e.admin.B().Get().Key(e.fenceKey(sc)).Build()).ToString()
	if err != nil || v != "garbage" {
		t.Fatalf("stored value is now %q (%v); the script must not overwrite it", v, err)
	}
}

func TestLostConnectionFailsReadsInsteadOfServingTheCache(t *testing.T) {
	addr := serverAddr(t)
	prefix := testPrefix()
	admin := newClient(t, addr)
	t.Cleanup(func() { deleteKeys(t, admin, prefix) })
	p := startProxy(t, addr)
	s := newStore(t, newClient(t, p.Addr()), prefix)
	sc := middleware.GlobalScope()
	if _, err := s.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // warm the cache
		if f, err := read1(t, s, sc); err != nil || f.Gen != 1 {
			t.Fatalf("warm read: %+v, %v", f, err)
		}
	}
	p.Close()
	var err error
	eventually(t, 2*time.Second, "reads fail once the connection is gone", func() bool {
		_, err = read1(t, s, sc)
		return err != nil
	})
	if !errors.Is(err, middleware.ErrStoreUnavailable) {
		t.Fatalf("error %v, want ErrStoreUnavailable", err)
	}
	for i := 0; i < 3; i++ {
		if f, err := read1(t, s, sc); !errors.Is(err, middleware.ErrStoreUnavailable) {
			t.Fatalf("read %d after the loss returned %+v, %v; want ErrStoreUnavailable", i, f, err)
		}
	}
	if _, err := s.Epoch(t.Context()); !errors.Is(err, middleware.ErrStoreUnavailable) {
		t.Fatalf("Epoch after the loss: %v, want ErrStoreUnavailable", err)
	}
}

func TestSilentPartitionFailsReadsWithinTheClientsWriteTimeout(t *testing.T) {
	addr := serverAddr(t)
	prefix := testPrefix()
	admin := newClient(t, addr)
	t.Cleanup(func() { deleteKeys(t, admin, prefix) })
	p := startProxy(t, addr)
	const keepAlive, writeTimeout = 100 * time.Millisecond, 300 * time.Millisecond
	c := newClient(t, p.Addr(), func(o *valkey.ClientOption) {
		o.Dialer.KeepAlive = keepAlive
		o.ConnWriteTimeout = writeTimeout
	})
	s := newStore(t, c, prefix)
	sc := middleware.GlobalScope()
	if _, err := read1(t, s, sc); err != nil {
		t.Fatal(err)
	}
	p.BlackHole()
	start := time.Now()
	var err error
	// Documented bound: about Dialer.KeepAlive + ConnWriteTimeout until
	// valkey-go declares the connection dead and drops its cache, plus the
	// store's own timeout for the read that then goes to the network.
	limit := keepAlive + writeTimeout + valkeystore.DefaultTimeout + 2*time.Second
	eventually(t, limit, "reads fail during a silent partition", func() bool {
		_, err = read1(t, s, sc)
		return err != nil
	})
	if !errors.Is(err, middleware.ErrStoreUnavailable) {
		t.Fatalf("error %v, want ErrStoreUnavailable", err)
	}
	t.Logf("reads failed %v after the partition began", time.Since(start).Round(time.Millisecond))
}

func TestTimeoutBoundsAReadThatMissesTheCache(t *testing.T) {
	addr := serverAddr(t)
	prefix := testPrefix()
	admin := newClient(t, addr)
	t.Cleanup(func() { deleteKeys(t, admin, prefix) })
	p := startProxy(t, addr)
	c := newClient(t, p.Addr())
	s, err := valkeystore.New(c, valkeystore.Config{Prefix: prefix, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p.BlackHole()
	start := time.Now()
	_, err = read1(t, s, middleware.SessionScope("never-read"))
	if !errors.Is(err, middleware.ErrStoreUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want ErrStoreUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("read took %v with a 100ms timeout", d)
	}
	p.Close() // so closing the client does not wait on the black hole
}

func TestCallerDeadlineShorterThanTimeoutIsKept(t *testing.T) {
	addr := serverAddr(t)
	prefix := testPrefix()
	admin := newClient(t, addr)
	t.Cleanup(func() { deleteKeys(t, admin, prefix) })
	p := startProxy(t, addr)
	s := newStore(t, newClient(t, p.Addr()), prefix) // default 500ms timeout
	p.BlackHole()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Fences(ctx, []middleware.Scope{middleware.TenantScope("x")}, make([]middleware.Fence, 1))
	if !errors.Is(err, middleware.ErrStoreUnavailable) {
		t.Fatalf("error %v, want ErrStoreUnavailable", err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Fatalf("read took %v with a 50ms caller deadline", d)
	}
	p.Close() // so closing the client does not wait on the black hole
}

func TestWipedStoreGetsANewEpochOnRead(t *testing.T) {
	e := newEnv(t)
	old, err := e.a.Epoch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Do(t.Context(), e.admin.B().Del().Key(e.prefix+"epoch").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	var now string
	eventually(t, 2*time.Second, "a new epoch is read", func() bool {
		now, err = e.a.Epoch(t.Context())
		return err == nil && now != old
	})
	stored, err := e.admin.Do(t.Context(), e.admin.B().Get().Key(e.prefix+"epoch").Build()).ToString()
	if err != nil || stored != now {
		t.Fatalf("stored epoch %q (%v), read %q", stored, err, now)
	}
	eventually(t, 2*time.Second, "the other client agrees", func() bool {
		other, err := e.b.Epoch(t.Context())
		return err == nil && other == now
	})
}

// TestScriptMatchesApplyBump runs the server-side script and the reference
// ApplyBump on the same stored fences and compares the results. The
// pending times are an hour away from the server clock, so both sides see
// the same due / not due whatever the few milliseconds between them.
func TestScriptMatchesApplyBump(t *testing.T) {
	e := newEnv(t)
	now, err := e.a.Now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ms := func(d time.Duration) time.Time { return time.UnixMilli(now.Add(d).UnixMilli()).UTC() }
	past, future := ms(-time.Hour), ms(time.Hour)
	announcedLater := middleware.Fence{Gen: 4, Reserved: 5, Reload: 2, BumpedAt: ms(-2 * time.Hour), PendingAt: future, PendingPolicy: middleware.PolicyMFA, Reason: "m"}
	announcedDue := middleware.Fence{Gen: 4, Reserved: 5, Reload: 2, BumpedAt: ms(-2 * time.Hour), PendingAt: past, PendingPolicy: middleware.PolicyFreshLogin, Reason: "m"}
	tests := []struct {
		name string
		in   *middleware.Fence // nil: key absent
		b    middleware.Bump
	}{
		{"revoke on an absent key", nil, middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyMFA, Reason: "r"}},
		{"revoke clears an announcement not due", &announcedLater, middleware.Bump{Kind: middleware.BumpRevoke}},
		{"revoke folds in a due announcement", &announcedDue, middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyFreshLogin}},
		{"announce on an absent key", nil, middleware.Bump{Kind: middleware.BumpAnnounce, At: ms(2 * time.Hour), Policy: middleware.PolicyMFA, Reason: "a"}},
		{"announce replaces one not due", &announcedLater, middleware.Bump{Kind: middleware.BumpAnnounce, At: ms(3 * time.Hour), Reason: "later"}},
		{"announce folds in a due one", &announcedDue, middleware.Bump{Kind: middleware.BumpAnnounce, At: ms(3 * time.Hour), Policy: middleware.PolicyMFA}},
		{"announce in the past", &announcedLater, middleware.Bump{Kind: middleware.BumpAnnounce, At: past}},
		{"cancel before due", &announcedLater, middleware.Bump{Kind: middleware.BumpCancel, Reason: "off"}},
		{"cancel after due", &announcedDue, middleware.Bump{Kind: middleware.BumpCancel}},
		{"cancel on an absent key", nil, middleware.Bump{Kind: middleware.BumpCancel}},
		{"revoke after a cancel moves past the burned generation", &middleware.Fence{Gen: 4, Reserved: 6, Reload: 1, Reason: "off"}, middleware.Bump{Kind: middleware.BumpRevoke}},
		{"announce after a cancel reserves past the burned generation", &middleware.Fence{Gen: 4, Reserved: 6}, middleware.Bump{Kind: middleware.BumpAnnounce, At: ms(2 * time.Hour)}},
		{"reload", &announcedLater, middleware.Bump{Kind: middleware.BumpReload, Reason: "ignored"}},
		{"reason with separators and a multibyte tail is truncated by bytes", nil,
			middleware.Bump{Kind: middleware.BumpRevoke, Reason: strings.Repeat("a:b\n", 49) + "ééé"}},
		{"large generations", &middleware.Fence{Gen: 1 << 50, Reserved: 1 << 50, Reload: 1<<50 - 1}, middleware.Bump{Kind: middleware.BumpRevoke}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := middleware.SessionScope("case-" + string(rune('a'+i)))
			in := middleware.Fence{}
			if tt.in != nil {
				in = *tt.in
				e.rawSet(t, e.fenceKey(sc), fencetext.Encode(in))
			}
			before, _ := e.a.Now(t.Context())
			got, gotErr := e.a.Bump(t.Context(), sc, tt.b)
			after, _ := e.a.Now(t.Context())
			want, wantErr := middleware.ApplyBump(in, tt.b, time.UnixMilli(before.UnixMilli()).UTC())
			if !errors.Is(gotErr, wantErr) || (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("script error %v, ApplyBump error %v", gotErr, wantErr)
			}
			if wantErr != nil {
				return
			}
			if tt.b.Kind == middleware.BumpRevoke {
				// The script stamps its own TIME, between before and after.
				if got.BumpedAt.Before(time.UnixMilli(before.UnixMilli())) || got.BumpedAt.After(after) {
					t.Fatalf("BumpedAt %v outside [%v, %v]", got.BumpedAt, before, after)
				}
				want.BumpedAt = got.BumpedAt
			}
			if !storetest.Equal(got, want) {
				t.Fatalf("script:\n %+v\nApplyBump:\n %+v", got, want)
			}
		})
	}
}

func TestBumpTTLIsSetOnTheKey(t *testing.T) {
	e := newEnv(t)
	sc := middleware.SessionScope("ttl")
	if _, err := e.a.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke, TTL: 90*time.Second + time.Microsecond}); err != nil {
		t.Fatal(err)
	}
	pttl, err := e.admin.Do(t.Context(), e.admin.B().Pttl().Key(e.fenceKey(sc)).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 89_000 || pttl > 90_001 {
		t.Fatalf("PTTL = %dms, want about 90001ms (the TTL rounded up to the millisecond)", pttl)
	}
	if _, err := e.a.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpReload}); err != nil {
		t.Fatal(err)
	}
	pttl, _ = e.admin.Do(t.Context(), e.admin.B().Pttl().Key(e.fenceKey(sc)).Build()).AsInt64()
	if pttl != -1 {
		t.Fatalf("PTTL after a bump without TTL = %d, want -1 (kept for ever)", pttl)
	}
}

func TestKeyLayout(t *testing.T) {
	e := newEnv(t)
	sc := middleware.SubjectScope("https://idp.example", "a|b{c}")
	f, err := e.a.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke, Reason: "layout"})
	if err != nil {
		t.Fatal(err)
	}
	key := e.prefix + "f:u:https://idp.example|a%7Cb%7Bc%7D"
	v, err := e.admin.Do(t.Context(), e.admin.B().Get().Key(key).Build()).ToString()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	if v != fencetext.Encode(f) {
		t.Fatalf("stored %q, want %q", v, fencetext.Encode(f))
	}
	ep, err := e.admin.Do(t.Context(), e.admin.B().Get().Key(e.prefix+"epoch").Build()).ToString()
	if err != nil {
		t.Fatalf("GET epoch: %v", err)
	}
	at, ok := middleware.EpochTime(ep)
	now, _ := e.a.Now(t.Context())
	if !ok || now.Sub(at) < 0 || now.Sub(at) > time.Minute || len(ep)-strings.IndexByte(ep, '-')-1 != 32 {
		t.Fatalf("epoch key holds %q, want <server ms>-<32 hex digits> from the last minute (server now %v)", ep, now)
	}
	if e.a.Prefix() != e.prefix {
		t.Fatalf("Prefix() = %q", e.a.Prefix())
	}
}

func TestNewChecksConfigAndClient(t *testing.T) {
	addr := serverAddr(t)
	tests := []struct {
		name   string
		cfg    valkeystore.Config
		client func(t *testing.T) valkey.Client
		want   error
	}{
		{"nil client", valkeystore.Config{}, func(*testing.T) valkey.Client { return nil }, valkeystore.ErrInvalidConfig},
		{"prefix without a hash tag", valkeystore.Config{Prefix: "sessionfence:"}, nil, valkeystore.ErrInvalidConfig},
		{"prefix with an empty hash tag", valkeystore.Config{Prefix: "{}sessionfence:"}, nil, valkeystore.ErrInvalidConfig},
		{"prefix whose first tag is empty", valkeystore.Config{Prefix: "a{}b{c}:"}, nil, valkeystore.ErrInvalidConfig},
		{"prefix with an unclosed brace", valkeystore.Config{Prefix: "{sessionfence:"}, nil, valkeystore.ErrInvalidConfig},
		{"negative timeout", valkeystore.Config{Prefix: testPrefix(), Timeout: -1}, nil, valkeystore.ErrInvalidConfig},
		{"negative cache ttl", valkeystore.Config{Prefix: testPrefix(), CacheTTL: -1}, nil, valkeystore.ErrInvalidConfig},
		{"negative wait replicas", valkeystore.Config{Prefix: testPrefix(), WaitReplicas: -1}, nil, valkeystore.ErrInvalidConfig},
		{"negative wait timeout", valkeystore.Config{Prefix: testPrefix(), WaitReplicas: 1, WaitTimeout: -1}, nil, valkeystore.ErrInvalidConfig},
		{"client with caching disabled", valkeystore.Config{Prefix: testPrefix()}, func(t *testing.T) valkey.Client {
			return newClient(t, addr, func(o *valkey.ClientOption) { o.DisableCache = true })
		}, valkeystore.ErrNoClientCache},
		{"client forced to resp2", valkeystore.Config{Prefix: testPrefix()}, func(t *testing.T) valkey.Client {
			return newClient(t, addr, func(o *valkey.ClientOption) { o.AlwaysRESP2, o.DisableCache = true, true })
		}, valkeystore.ErrNoClientCache},
		{"client tracking with noloop", valkeystore.Config{Prefix: testPrefix()}, func(t *testing.T) valkey.Client {
			return newClient(t, addr, func(o *valkey.ClientOption) { o.ClientTrackingOptions = []string{"OPTIN", "NOLOOP"} })
		}, valkeystore.ErrNoInvalidation},
		{"client tracking broadcasting another prefix", valkeystore.Config{Prefix: testPrefix()}, func(t *testing.T) valkey.Client {
			return newClient(t, addr, func(o *valkey.ClientOption) {
				o.ClientTrackingOptions = []string{"PREFIX", "unrelated:", "BCAST"}
			})
		}, valkeystore.ErrNoInvalidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c valkey.Client
			if tt.client != nil {
				c = tt.client(t)
			} else {
				c = newClient(t, addr)
			}
			s, err := valkeystore.New(c, tt.cfg)
			if !errors.Is(err, tt.want) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("New error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewAcceptsBroadcastTrackingThatCoversThePrefix(t *testing.T) {
	addr := serverAddr(t)
	prefix := testPrefix()
	c := newClient(t, addr, func(o *valkey.ClientOption) {
		o.ClientTrackingOptions = []string{"PREFIX", prefix, "BCAST"}
	})
	s, err := valkeystore.New(c, valkeystore.Config{Prefix: prefix})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.Close()
}

func TestNewFailsClosedWhenTheServerIsDown(t *testing.T) {
	addr := serverAddr(t)
	p := startProxy(t, addr)
	c := newClient(t, p.Addr())
	p.Close()
	_, err := valkeystore.New(c, valkeystore.Config{Prefix: testPrefix(), Timeout: 100 * time.Millisecond})
	if !errors.Is(err, middleware.ErrStoreUnavailable) {
		t.Fatalf("New error %v, want ErrStoreUnavailable", err)
	}
}

func TestWatchAfterCloseFails(t *testing.T) {
	e := newEnv(t)
	stop, err := e.a.Watch(t.Context(), func() {})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if err := e.a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.a.Watch(t.Context(), func() {}); !errors.Is(err, middleware.ErrStoreUnavailable) {
		t.Fatalf("Watch after Close: %v, want ErrStoreUnavailable", err)
	}
	// Reads and bumps do not depend on the subscription.
	if _, err := e.a.Bump(t.Context(), middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
		t.Fatal(err)
	}
}

func TestWatchHearsResubscriptionAfterConnectionLoss(t *testing.T) {
	addr := serverAddr(t)
	prefix := testPrefix()
	admin := newClient(t, addr)
	t.Cleanup(func() { deleteKeys(t, admin, prefix) })
	p := startProxy(t, addr)
	s := newStore(t, newClient(t, p.Addr()), prefix)
	ch := make(chan struct{}, 1)
	stop, err := s.Watch(t.Context(), func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	p.Close()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("watch function not called after the subscription was lost")
	}
}

func TestWatchRefusesNilFunction(t *testing.T) {
	e := newEnv(t)
	if _, err := e.a.Watch(t.Context(), nil); err == nil {
		t.Fatal("Watch accepted a nil function")
	}
}

func TestFencesRefusesInvalidScopesAndShortDestination(t *testing.T) {
	e := newEnv(t)
	_, err := e.a.Fences(t.Context(), []middleware.Scope{{Kind: middleware.ScopeEpoch}}, make([]middleware.Fence, 1))
	if !errors.Is(err, middleware.ErrInvalidScope) {
		t.Fatalf("invalid scope: %v, want ErrInvalidScope", err)
	}
	if _, err := e.a.Fences(t.Context(), []middleware.Scope{middleware.GlobalScope()}, nil); err == nil {
		t.Fatal("Fences accepted a destination shorter than the scopes")
	}
}

// TestWipeNeverPairsTheOldEpochWithResetFences wipes the store (one DEL,
// atomic like FLUSHALL) while other goroutines read through another
// client's cache, and checks that no read ever returns a fence reset by the
// wipe together with the epoch from before it: that pair would let a
// revoked session pass.
func TestWipeNeverPairsTheOldEpochWithResetFences(t *testing.T) {
	e := newEnv(t)
	sc := middleware.SubjectScope("https://idp.example", "mallory")
	scopes := []middleware.Scope{middleware.GlobalScope(), sc}
	for round := 0; round < 50; round++ {
		if _, err := e.a.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
			t.Fatal(err)
		}
		var old string
		eventually(t, 2*time.Second, "reader sees the bump", func() bool {
			dst := make([]middleware.Fence, 2)
			v, err := e.b.Fences(t.Context(), scopes, dst)
			old = v.Epoch
			return err == nil && dst[1].Gen >= 1
		})
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				dst := make([]middleware.Fence, 2)
				deadline := time.Now().Add(2 * time.Second)
				for time.Now().Before(deadline) {
					ep, err := e.b.Fences(context.Background(), scopes, dst)
					if err != nil {
						errs <- err
						return
					}
					if ep.Epoch != old {
						errs <- nil
						return
					}
					if dst[1].Gen == 0 {
						errs <- errors.New("a reset fence was read under the old epoch")
						return
					}
				}
				errs <- errors.New("the new epoch was not read within 2s")
			}()
		}
		err := e.admin.Do(t.Context(), e.admin.B().Del().Key(e.fenceKey(sc), e.prefix+"epoch").Build()).Error()
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
