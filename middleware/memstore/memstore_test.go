package memstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/middleware/storetest"
)

// fakeClock is a settable clock, safe for concurrent use. It starts far
// from the machine's clock, so a store that used real time would fail the
// suite's clock checks.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2031, 5, 4, 3, 2, 1, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeHarness is a store on a fake clock that the suite moves.
func fakeHarness(*testing.T) storetest.Harness {
	clock := newFakeClock()
	s := memstore.New(memstore.Config{Now: clock.Now, AuditCap: 200})
	return storetest.Harness{
		Store:     s,
		Wipe:      s.Wipe,
		Snapshot:  func() func() { return memstore.Snapshot(s) },
		Reconnect: func() middleware.Store { return s },
		Advance:   clock.Advance,
		Now:       clock.Now,
		AuditCap:  200,
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, fakeHarness)
}

func TestModel(t *testing.T) {
	storetest.RunModel(t, fakeHarness, storetest.ModelOptions{Sequences: 500})
}

func TestConformanceOnRealTime(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s := memstore.New(memstore.Config{AuditCap: 150})
		return storetest.Harness{Store: s, Wipe: s.Wipe, Reconnect: func() middleware.Store { return s }, AuditCap: 150}
	})
}

func TestDefaultClockIsRealTime(t *testing.T) {
	s := memstore.New(memstore.Config{})
	now, err := s.Now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(now); d < 0 || d > time.Second {
		t.Fatalf("Now() is %v away from time.Now", d)
	}
}

func TestEpochCarriesTheStoreClockAndRandomness(t *testing.T) {
	clock := newFakeClock()
	a, _ := memstore.New(memstore.Config{Now: clock.Now}).Epoch(t.Context())
	b, _ := memstore.New(memstore.Config{Now: clock.Now}).Epoch(t.Context())
	if a == b {
		t.Fatal("two stores made the same epoch")
	}
	for _, e := range []string{a, b} {
		at, ok := middleware.EpochTime(e)
		if !ok || !at.Equal(clock.Now()) {
			t.Fatalf("epoch %q: time %v, %v; want the store clock %v", e, at, ok, clock.Now())
		}
		if i := strings.IndexByte(e, '-'); len(e)-i-1 != 32 {
			t.Fatalf("epoch %q: random part is not 32 hex digits", e)
		}
	}
	s := memstore.New(memstore.Config{Now: clock.Now})
	clock.Advance(time.Hour)
	s.Wipe()
	e, _ := s.Epoch(t.Context())
	if at, ok := middleware.EpochTime(e); !ok || !at.Equal(clock.Now()) {
		t.Fatalf("epoch after Wipe %q: time %v, want %v", e, at, clock.Now())
	}
}

func TestFencesDoesNotAllocate(t *testing.T) {
	s := memstore.New(memstore.Config{})
	ctx := context.Background()
	scopes := []middleware.Scope{
		middleware.GlobalScope(),
		middleware.TenantScope("acme"),
		middleware.SubjectScope("https://idp.example", "alice"),
		middleware.IdPSessionScope("https://idp.example", "sid"),
		middleware.SessionScope("s1"),
	}
	for _, sc := range scopes[:3] {
		if _, err := s.Bump(ctx, sc, middleware.Bump{Kind: middleware.BumpRevoke, Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	dst := make([]middleware.Fence, len(scopes))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Fences(ctx, scopes, dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Fences allocates %v times per call, want 0", allocs)
	}
}

func TestFencesRefusesShortDestination(t *testing.T) {
	s := memstore.New(memstore.Config{})
	_, err := s.Fences(t.Context(), []middleware.Scope{middleware.GlobalScope()}, nil)
	if err == nil {
		t.Fatal("Fences accepted a destination shorter than the scopes")
	}
}

func TestExpiredFencesAreRemovedLazily(t *testing.T) {
	clock := newFakeClock()
	s := memstore.New(memstore.Config{Now: clock.Now})
	ctx := t.Context()
	const n = 100
	for i := range n {
		sc := middleware.SessionScope(string(rune('a'+i%26)) + string(rune('a'+i/26)))
		if _, err := s.Bump(ctx, sc, middleware.Bump{Kind: middleware.BumpRevoke, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d", s.Len(), n)
	}
	clock.Advance(time.Hour)
	// Each bump samples a few entries; enough bumps on a live scope clear
	// every expired one.
	for range 10 * n {
		if _, err := s.Bump(ctx, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpReload}); err != nil {
			t.Fatal(err)
		}
		if s.Len() == 1 {
			return
		}
	}
	t.Fatalf("after many bumps %d entries remain, want 1", s.Len())
}

func TestWipeNotifiesWatchers(t *testing.T) {
	s := memstore.New(memstore.Config{})
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
	s.Wipe()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("watch function not called after Wipe")
	}
}

func TestWatchRefusesNilFunction(t *testing.T) {
	if _, err := memstore.New(memstore.Config{}).Watch(t.Context(), nil); err == nil {
		t.Fatal("Watch accepted a nil function")
	}
}

func TestBumpErrorsAreSentinels(t *testing.T) {
	s := memstore.New(memstore.Config{})
	tests := []struct {
		name  string
		scope middleware.Scope
		b     middleware.Bump
		want  error
	}{
		{"invalid scope", middleware.Scope{}, middleware.Bump{Kind: middleware.BumpRevoke}, middleware.ErrInvalidScope},
		{"invalid bump", middleware.GlobalScope(), middleware.Bump{}, middleware.ErrInvalidBump},
		{"nothing to cancel", middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpCancel}, middleware.ErrNothingPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Bump(t.Context(), tt.scope, tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func BenchmarkFences(b *testing.B) {
	s := memstore.New(memstore.Config{})
	ctx := context.Background()
	scopes := []middleware.Scope{
		middleware.GlobalScope(),
		middleware.TenantScope("acme"),
		middleware.SubjectScope("https://idp.example", "alice"),
		middleware.IdPSessionScope("https://idp.example", "sid"),
		middleware.SessionScope("s1"),
	}
	for _, sc := range scopes {
		if _, err := s.Bump(ctx, sc, middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]middleware.Fence, len(scopes))
		for pb.Next() {
			if _, err := s.Fences(ctx, scopes, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}
