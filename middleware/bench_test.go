package middleware_test

import (
	"context"
	"testing"
)

// BenchmarkGuardCheck measures the hot path with the in-process store:
// open the sealed cookie, one batched read of five fences and the epoch,
// decide. The Valkey variant lives in middleware/valkeystore.
func BenchmarkGuardCheck(b *testing.B) {
	f := newFixture(b, nil)
	_, value := f.issue(b, alice)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d := f.guard.Check(ctx, value); !d.Allowed() {
				b.Fatal(d)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if d := f.guard.Check(ctx, value); !d.Allowed() {
					b.Error(d)
					return
				}
			}
		})
	})
}

// BenchmarkGuardHostileInput measures refusals of hostile cookies: they
// must be cheap and allocation-free before any store access.
func BenchmarkGuardHostileInput(b *testing.B) {
	f := newFixture(b, nil)
	_, value := f.issue(b, alice)
	ctx := context.Background()
	i := len(value) / 2
	flip := byte('A')
	if value[i] == 'A' {
		flip = 'B'
	}
	tampered := value[:i] + string(flip) + value[i+1:]
	huge := string(make([]byte, 1<<20))
	for _, c := range []struct{ name, v string }{{"tampered", tampered}, {"oversized-1MiB", huge}, {"garbage", "%%%%"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := f.guard.Check(ctx, c.v); d.Allowed() {
					b.Fatal("hostile cookie allowed")
				}
			}
		})
	}
}
