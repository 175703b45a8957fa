package bench_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/bench/internal/redisproc"
	"github.com/sessionfence/sessionfence/bench/internal/testenv"
	"github.com/sessionfence/sessionfence/bench/internal/variants"
	"github.com/sessionfence/sessionfence/middleware"
)

// One server for the whole package: the benchmarks compare variants side
// by side against the same server.
var shared struct {
	once sync.Once
	srv  *redisproc.Server
	err  error
}

func server(tb testing.TB) string {
	tb.Helper()
	testenv.NeedBinary(tb)
	shared.once.Do(func() { shared.srv, shared.err = redisproc.Start(redisproc.Options{}) })
	if shared.err != nil {
		tb.Fatalf("start server: %v", shared.err)
	}
	return shared.srv.Addr
}

func TestMain(m *testing.M) {
	// Since Go 1.15 the status of m.Run is the process's when TestMain
	// returns, so the server is removed on every outcome.
	m.Run()
	if shared.srv != nil {
		shared.srv.Close()
	}
}

func build(tb testing.TB, name string) *variants.Variant {
	tb.Helper()
	v, err := variants.New(name, variants.Env{ValkeyAddr: server(tb), Prefix: testenv.Prefix()})
	if err != nil {
		tb.Fatalf("variant %s: %v", name, err)
	}
	tb.Cleanup(v.Close)
	return v
}

// TestEveryVariantReallyChecks keeps the comparison honest: each guarded
// variant accepts a minted session, refuses a forged one, and refuses a
// revoked one, so none of them wins by skipping work.
func TestEveryVariantReallyChecks(t *testing.T) {
	ctx := context.Background()
	for _, name := range variants.Names[1:] {
		t.Run(name, func(t *testing.T) {
			v := build(t, name)
			ck, err := v.Login(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if code := variants.ServeOnce(v.Private, ck); code != http.StatusOK {
				t.Fatalf("minted session: status %d, want 200", code)
			}
			forged := *ck
			first := "x"
			if ck.Value[0] == 'x' { // the forgery must differ from the original
				first = "y"
			}
			forged.Value = first + ck.Value[1:]
			if code := variants.ServeOnce(v.Private, &forged); code != http.StatusUnauthorized {
				t.Fatalf("forged session: status %d, want 401", code)
			}
			// Revoke: a session fence bump for the fence variants, the
			// session's deletion for scs.
			if v.Store != nil {
				s, err := v.Guard.SessionFromCookie(ck.Value)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := v.Store.Bump(ctx, middleware.SessionScope(s.ID), middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
					t.Fatal(err)
				}
			} else {
				c, err := redisproc.Dial(server(t), 2e9)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				// scs stores the session under its prefix and the token.
				keys, err := c.Do("KEYS", "*scs:"+ck.Value)
				if err != nil || len(keys.([]any)) != 1 {
					t.Fatalf("scs session key: %v %v", keys, err)
				}
				if _, err := c.Do("DEL", keys.([]any)[0].(string)); err != nil {
					t.Fatal(err)
				}
			}
			if code := variants.ServeOnce(v.Private, ck); code != http.StatusUnauthorized {
				t.Fatalf("revoked session: status %d, want 401", code)
			}
		})
	}
}

// BenchmarkVariants runs the same trivial handler behind each variant, in
// one process against one server: (a) nothing, (b) memstore, (c)
// valkeystore with a warm cache, (d) one uncached MGET per request, (e)
// scs with its Redis store. cmd/compare prints the same with ratios.
func BenchmarkVariants(b *testing.B) {
	ctx := context.Background()
	for _, name := range variants.Names {
		v := build(b, name)
		ck, err := v.Login(ctx, "alice")
		if err != nil {
			b.Fatal(err)
		}
		for range 3 { // warm caches and pools
			variants.ServeOnce(v.Private, ck)
		}
		b.Run(name+"/serial", func(b *testing.B) { variants.Bench(b, v.Private, ck, false) })
		b.Run(name+"/parallel", func(b *testing.B) { variants.Bench(b, v.Private, ck, true) })
	}
}

func newHTTPServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkGuardCheck isolates the library's share of (b) and (c):
// Guard.Check alone, without net/http or the adapter, with fail-closed
// (the default) and with bounded staleness (Config.StaleFor), which
// records every confirmed fence for later use.
func BenchmarkGuardCheck(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"memstore", "valkeystore"} {
		for _, stale := range []bool{false, true} {
			v := build(b, name)
			cfg := v.Guard.Config()
			mode := "fail-closed"
			if stale {
				cfg.StaleFor = 30 * time.Second
				mode = "stale-30s"
			}
			g, err := middleware.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			_, ck, err := g.Issue(ctx, variants.Claims("alice"))
			if err != nil {
				b.Fatal(err)
			}
			for range 3 {
				g.Check(ctx, ck.Value)
			}
			b.Run(name+"/"+mode+"/serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if d := g.Check(ctx, ck.Value); !d.Allowed() {
						b.Fatal(d)
					}
				}
			})
			b.Run(name+"/"+mode+"/parallel", func(b *testing.B) {
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
}
