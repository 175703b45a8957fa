package valkeystore_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// BenchmarkGuardHotPath runs the guard's full hot path (open the sealed
// cookie, one batched read of five fences and the epoch, decide) over the
// in-process store and over Valkey with a warm client-side cache, side by
// side in one run so their ratio is meaningful on a noisy machine.
func BenchmarkGuardHotPath(b *testing.B) {
	stores := []struct {
		name  string
		store func(b *testing.B) middleware.Store
	}{
		{"memstore", func(b *testing.B) middleware.Store { return memstore.New(memstore.Config{}) }},
		{"valkeystore", func(b *testing.B) middleware.Store { return benchStore(b) }},
	}
	for _, st := range stores {
		store := st.store(b)
		g, err := middleware.New(middleware.Config{
			Store: store, Keys: [][]byte{middleware.GenerateKey()},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		_, ck, err := g.Issue(ctx, middleware.Claims{
			Issuer: "https://idp.example", Subject: "alice", Tenant: "acme", IdPSession: "sid-123",
			AMR: []string{"pwd", "otp"}, ACR: "urn:mfa",
		})
		if err != nil {
			b.Fatal(err)
		}
		for range 3 { // warm every key, absent ones included
			g.Check(ctx, ck.Value)
		}
		b.Run(st.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := g.Check(ctx, ck.Value); !d.Allowed() {
					b.Fatal(d)
				}
			}
		})
		b.Run(st.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if d := g.Check(ctx, ck.Value); !d.Allowed() {
						b.Error(d)
						return
					}
				}
			})
		})
	}
}
