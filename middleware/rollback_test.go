package middleware_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// rewindStore answers reads with the bump sequence number set back by
// back, as a store restored from an older snapshot would (the fences
// themselves do not matter to detection). Without EpochRotator it hides the
// memstore's.
type rewindStore struct {
	*memstore.Store
	back atomic.Uint64
}

func (r *rewindStore) Fences(ctx context.Context, s []middleware.Scope, dst []middleware.Fence) (middleware.Version, error) {
	v, err := r.Store.Fences(ctx, s, dst)
	if b := r.back.Load(); err == nil && b > 0 {
		v.Seq -= min(b, v.Seq)
	}
	return v, err
}

// RotateEpoch judges "behind" by the rewound sequence number: this store's
// source has really lost the bumps.
func (r *rewindStore) RotateEpoch(ctx context.Context, from string, seen uint64) (string, error) {
	v, err := r.Fences(ctx, nil, nil)
	if err != nil {
		return "", err
	}
	if v.Epoch != from || v.Seq >= seen {
		return v.Epoch, nil
	}
	return r.Store.RotateEpoch(ctx, from, math.MaxUint64)
}

// lagStore answers reads with the sequence number set back, as an
// instance whose cache has not yet received another's invalidation would,
// while the store itself (the memstore's RotateEpoch) is up to date.
type lagStore struct {
	*memstore.Store
	back atomic.Uint64
}

func (l *lagStore) Fences(ctx context.Context, s []middleware.Scope, dst []middleware.Fence) (middleware.Version, error) {
	v, err := l.Store.Fences(ctx, s, dst)
	if b := l.back.Load(); err == nil && b > 0 {
		v.Seq -= min(b, v.Seq)
	}
	return v, err
}

// A cookie sealed on an instance that already read a bump, presented to
// one whose cache has not: the store is not behind, so nothing is rotated
// and the session passes (found by the Valkey Cluster failover test, where
// every logout elsewhere made this happen).
func TestALaggingInstanceIsNotARollback(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	ls := &lagStore{Store: memstore.New(memstore.Config{Now: c.Now})}
	g, err := middleware.New(middleware.Config{Store: ls, Keys: [][]byte{key(1)}, Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Bump(ctx, middleware.SessionScope("someone-else"), revoke); err != nil {
		t.Fatal(err)
	}
	_, ck, err := g.Issue(ctx, alice) // sealed at sequence 1
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ls.Epoch(ctx)
	ls.back.Store(1)
	lagging, err := middleware.New(middleware.Config{Store: ls, Keys: [][]byte{key(1)}, Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if d := lagging.Check(ctx, ck.Value); d.Kind != middleware.DecisionAllowed {
		t.Fatalf("newer cookie on a lagging instance: %v (cause %v), want allowed", d, d.Cause)
	}
	if after, _ := ls.Epoch(ctx); after != before {
		t.Fatalf("epoch rotated from %s to %s for a lagging read", before, after)
	}
}

// noRotate is a store that cannot rotate its epoch.
type noRotate struct{ middleware.Store }

func TestRollbackIsDetectedAndFailsClosed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// restart builds the guard that sees the rolled-back store: the
		// same one (it remembers), or a new one (only the cookie does).
		restart bool
		rotate  bool
		want    middleware.DecisionKind
	}{
		{"an instance that saw later bumps refuses and rotates the epoch", false, true, middleware.DecisionRevoked},
		{"a restarted instance learns it from a newer cookie and rotates the epoch", true, true, middleware.DecisionRevoked},
		{"without the ability to rotate it fails closed as unavailable", false, false, middleware.DecisionStoreUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			mem := memstore.New(memstore.Config{Now: c.Now})
			rw := &rewindStore{Store: mem}
			var st middleware.Store = rw
			if !tt.rotate {
				st = noRotate{rw}
			}
			newGuard := func() *middleware.Guard {
				g, err := middleware.New(middleware.Config{Store: st, Keys: [][]byte{key(1)}, Now: c.Now, Logger: quietLogger()})
				if err != nil {
					t.Fatal(err)
				}
				return g
			}
			g := newGuard()
			// Five revocations the store will forget, then a login that
			// happened after them.
			for range 5 {
				if _, err := mem.Bump(ctx, middleware.SubjectScope("https://idp.test", "mallory"), revoke); err != nil {
					t.Fatal(err)
				}
			}
			_, ck, err := g.Issue(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			if d := g.Check(ctx, ck.Value); d.Kind != middleware.DecisionAllowed {
				t.Fatalf("before the rollback: %v", d)
			}
			before, _ := mem.Epoch(ctx)
			rw.back.Store(5)
			if tt.restart {
				g = newGuard()
			}
			d := g.Check(ctx, ck.Value)
			if d.Kind != tt.want || !errors.Is(d.Cause, middleware.ErrStoreRolledBack) {
				t.Fatalf("after the rollback: %v (cause %v), want %v caused by ErrStoreRolledBack", d, d.Cause, tt.want)
			}
			after, _ := mem.Epoch(ctx)
			if rotated := after != before; rotated != tt.rotate {
				t.Fatalf("epoch rotated = %v, want %v", rotated, tt.rotate)
			}
			if !tt.rotate {
				return
			}
			if d.Scope.Kind != middleware.ScopeEpoch {
				t.Fatalf("refused by %v, want the epoch", d.Scope)
			}
			// Every session of the old epoch is refused from now on, and a
			// new login works under the new epoch.
			if d := newGuard().Check(ctx, ck.Value); d.Kind != middleware.DecisionRevoked || d.Scope.Kind != middleware.ScopeEpoch {
				t.Fatalf("old cookie on another instance: %v", d)
			}
			_, fresh, err := g.Issue(ctx, alice)
			if err != nil {
				t.Fatalf("login after the rotation: %v", err)
			}
			if d := g.Check(ctx, fresh.Value); d.Kind != middleware.DecisionAllowed {
				t.Fatalf("new session after the rotation: %v", d)
			}
		})
	}
}

func TestReadsThatMoveForwardAreNotARollback(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	_, value := f.issue(t, alice)
	for i := range 20 {
		f.bump(t, middleware.SubjectScope("https://idp.test", "bob"), revoke)
		if d := f.guard.Check(ctx, value); d.Kind != middleware.DecisionAllowed {
			t.Fatalf("check %d: %v", i, d)
		}
	}
	// A wipe is a new epoch, not a rollback: sessions fail on the epoch
	// without the rollback cause.
	f.mem.Wipe()
	d := f.guard.Check(ctx, value)
	if d.Kind != middleware.DecisionRevoked || d.Scope.Kind != middleware.ScopeEpoch || errors.Is(d.Cause, middleware.ErrStoreRolledBack) {
		t.Fatalf("after a wipe: %v (cause %v)", d, d.Cause)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A renewed cookie records how far the store had come at the renewal, so a
// session that has been active since the lost bumps gives the rollback
// away even to an instance restarted with the store.
func TestRenewedCookieCarriesTheLatestSequence(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	rw := &rewindStore{Store: memstore.New(memstore.Config{Now: c.Now})}
	cfg := middleware.Config{Store: rw, Keys: [][]byte{key(1)}, Now: c.Now, Logger: quietLogger(),
		Renewer: renewFunc(func(context.Context, *middleware.Session) error { return nil })}
	g, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, ck, err := g.Issue(ctx, alice) // sealed at sequence 0
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := rw.Bump(ctx, middleware.TenantScope("globex"), revoke); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(6 * time.Minute)
	d := g.Authenticate(ctx, ck.Value)
	if d.Kind != middleware.DecisionAllowed || d.Cookie == nil {
		t.Fatalf("renewal: %v", d)
	}
	rw.back.Store(3)
	restarted, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := restarted.Check(ctx, d.Cookie.Value); !errors.Is(d.Cause, middleware.ErrStoreRolledBack) {
		t.Fatalf("renewed cookie after the rollback: %v (cause %v), want the rollback found", d, d.Cause)
	}
}
