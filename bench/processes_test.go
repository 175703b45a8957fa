package bench_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/bench/internal/appserver"
	"github.com/sessionfence/sessionfence/bench/internal/loadgen"
	"github.com/sessionfence/sessionfence/bench/internal/propagation"
	"github.com/sessionfence/sessionfence/bench/internal/testenv"
	"github.com/sessionfence/sessionfence/bench/internal/variants"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// TestTerminateAllAcrossAppProcesses is cmd/propagation in small: four
// cmd/app processes sharing one server and prefix, under load, 30
// terminate-all trials. Every process must refuse within the trial limit,
// and none may accept a revoked session after it first refused one.
func TestTerminateAllAcrossAppProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds cmd/app and runs four processes")
	}
	addr := server(t)
	bin, err := appserver.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	prefix := testenv.Prefix()
	var targets []string
	for range 4 {
		p, err := appserver.Start(bin, "-variant", "valkeystore", "-valkey", addr, "-prefix", prefix, "-key", hex.EncodeToString(key))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		targets = append(targets, p.URL)
	}
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	store, err := valkeystore.New(client, valkeystore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	g, err := middleware.New(middleware.Config{Store: store, Keys: [][]byte{key}, InsecureCookies: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	res, err := propagation.Run(t.Context(), propagation.Config{
		Targets: targets, Trials: 30, Limit: 10 * time.Second,
		Issue: func(ctx context.Context, sub string) (string, error) {
			_, c, err := g.Issue(ctx, variants.Claims(sub))
			if err != nil {
				return "", err
			}
			return c.Name + "=" + c.Value, nil
		},
		Revoke: func(ctx context.Context) error {
			_, err := store.Bump(ctx, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke})
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	late, worst := 0, time.Duration(0)
	for _, r := range res {
		late += r.Late
		worst = max(worst, r.All)
	}
	t.Logf("%d trials over 4 processes: slowest trial until every process refused: %v", len(res), worst)
	if late != 0 {
		t.Errorf("%d requests accepted a revoked session after their process had refused one", late)
	}
}

// TestLoadGeneratorCountsEveryAnswer keeps cmd/load honest: every request
// it sends is counted once, by status.
func TestLoadGeneratorCountsEveryAnswer(t *testing.T) {
	v := build(t, "memstore")
	ck, err := v.Login(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(t, v.Handler)
	res := loadgen.Run(t.Context(), srv+"/private", []string{ck.Name + "=" + ck.Value, "sessionfence=forged"}, 4, 300*time.Millisecond)
	if res.Requests == 0 || res.Errors != 0 {
		t.Fatalf("requests %d errors %d", res.Requests, res.Errors)
	}
	if res.Status[http.StatusOK] == 0 || res.Status[http.StatusUnauthorized] == 0 || res.Status[http.StatusOK]+res.Status[http.StatusUnauthorized] != res.Requests {
		t.Fatalf("status counts %v for %d requests: want both the valid and the forged cookie answered", res.Status, res.Requests)
	}
	if len(res.Latencies) != res.Requests {
		t.Fatalf("%d latencies for %d requests", len(res.Latencies), res.Requests)
	}
}
