package valkeystore_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// sessionScopes are the five fences one session request reads.
var sessionScopes = []middleware.Scope{
	middleware.GlobalScope(),
	middleware.TenantScope("acme"),
	middleware.SubjectScope("https://idp.example", "alice"),
	middleware.IdPSessionScope("https://idp.example", "sid-123"),
	middleware.SessionScope("Zx8q2w0Lk3v9"),
}

func benchStore(b *testing.B) *valkeystore.Store {
	b.Helper()
	addr := serverAddr(b)
	prefix := testPrefix()
	admin := newClient(b, addr)
	b.Cleanup(func() { deleteKeys(b, admin, prefix) })
	s := newStore(b, newClient(b, addr), prefix)
	ctx := context.Background()
	for _, sc := range sessionScopes[:3] {
		if _, err := s.Bump(ctx, sc, middleware.Bump{Kind: middleware.BumpRevoke, Reason: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	dst := make([]middleware.Fence, len(sessionScopes))
	for range 3 { // warm the cache, absent keys included
		if _, err := s.Fences(ctx, sessionScopes, dst); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkFences is the hot path: five fences and the epoch from a warm
// client-side cache.
func BenchmarkFences(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	dst := make([]middleware.Fence, len(sessionScopes))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Fences(ctx, sessionScopes, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFencesWithDeadline is the hot path when the request context
// already carries a deadline shorter than the store's timeout.
func BenchmarkFencesWithDeadline(b *testing.B) {
	s := benchStore(b)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	dst := make([]middleware.Fence, len(sessionScopes))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Fences(ctx, sessionScopes, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFencesParallel is the hot path under concurrent requests.
func BenchmarkFencesParallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]middleware.Fence, len(sessionScopes))
		for pb.Next() {
			if _, err := s.Fences(ctx, sessionScopes, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBump is one revoke: the script round trip plus the wait for the
// store's own cache to drop the old value.
func BenchmarkBump(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Bump(ctx, sessionScopes[1], middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
			b.Fatal(err)
		}
	}
}

// propagation measures, over trials bumps made through store a, how long
// after a's Bump returned store b (another client, cache warm) first reads
// the new generation. It busy-polls b: a cached read costs about a
// microsecond, so the poll adds no noticeable delay.
func propagation(tb testing.TB, trials int) (after []time.Duration, bumpRTT []time.Duration) {
	tb.Helper()
	addr := serverAddr(tb)
	prefix := testPrefix()
	admin := newClient(tb, addr)
	tb.Cleanup(func() { deleteKeys(tb, admin, prefix) })
	a := newStore(tb, newClient(tb, addr), prefix)
	bs := newStore(tb, newClient(tb, addr), prefix)
	ctx := context.Background()
	sc := []middleware.Scope{middleware.TenantScope("propagation")}
	dst := make([]middleware.Fence, 1)
	if _, err := bs.Fences(ctx, sc, dst); err != nil {
		tb.Fatal(err)
	}
	for range trials {
		t0 := time.Now()
		f, err := a.Bump(ctx, sc[0], middleware.Bump{Kind: middleware.BumpRevoke})
		if err != nil {
			tb.Fatal(err)
		}
		t1 := time.Now()
		deadline := t1.Add(2 * time.Second)
		for {
			if _, err := bs.Fences(ctx, sc, dst); err != nil {
				tb.Fatal(err)
			}
			if dst[0].Gen >= f.Gen {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("generation %d not seen on the other client within 2s", f.Gen)
			}
			// Yield, so that on a small machine the poll does not starve
			// the client goroutine that applies the invalidation.
			runtime.Gosched()
		}
		after = append(after, time.Since(t1))
		bumpRTT = append(bumpRTT, t1.Sub(t0))
	}
	return after, bumpRTT
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// BenchmarkPropagation reports, per bump, the delay until another client
// reads it: p50 and p99 after the writer's reply, and the bump's own
// round trip.
func BenchmarkPropagation(b *testing.B) {
	trials := max(b.N, 50)
	after, rtt := propagation(b, trials)
	b.ReportMetric(float64(quantile(after, 0.50).Microseconds()), "p50-visible-µs")
	b.ReportMetric(float64(quantile(after, 0.99).Microseconds()), "p99-visible-µs")
	b.ReportMetric(float64(quantile(rtt, 0.50).Microseconds()), "p50-bump-µs")
}

// TestPropagation is the measuring tool behind the documented propagation
// bound. It runs only with SESSIONFENCE_PROPAGATION=1 (it takes a few
// seconds): go test -run TestPropagation -v ./middleware/valkeystore
func TestPropagation(t *testing.T) {
	if os.Getenv("SESSIONFENCE_PROPAGATION") != "1" {
		t.Skip("set SESSIONFENCE_PROPAGATION=1 to measure propagation")
	}
	const trials = 1000
	after, rtt := propagation(t, trials)
	t.Log(fmt.Sprintf("%d trials: visible on another client after the writer's reply: p50 %v p90 %v p99 %v max %v; bump round trip p50 %v p99 %v",
		trials, quantile(after, 0.5), quantile(after, 0.9), quantile(after, 0.99), quantile(after, 1),
		quantile(rtt, 0.5), quantile(rtt, 0.99)))
}
