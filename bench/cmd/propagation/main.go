// Command propagation measures terminate-all across several application
// processes under load: it starts -procs copies of cmd/app (sessionfence
// over Valkey, one shared key prefix), loads each with the load generator,
// revokes every session with one fence bump on its own client, and
// measures how long until every process refuses the old sessions, over
// -trials trials. See internal/propagation for the exact definitions.
//
//	go run ./cmd/propagation [-procs 4] [-trials 200] [-load-workers 2] [-valkey host:port] [-app path]
//
// Without -valkey it starts its own redis-server on a free loopback port.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/bench/internal/appserver"
	"github.com/sessionfence/sessionfence/bench/internal/cli"
	"github.com/sessionfence/sessionfence/bench/internal/propagation"
	"github.com/sessionfence/sessionfence/bench/internal/variants"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

func main() {
	procs := flag.Int("procs", 4, "application processes")
	trials := flag.Int("trials", 200, "terminate-all trials")
	workers := flag.Int("load-workers", 2, "closed-loop load connections per process")
	sessions := flag.Int("load-sessions", 4, "sessions the load uses per trial")
	limit := flag.Duration("limit", 5*time.Second, "per-trial limit for every process to refuse")
	addr := flag.String("valkey", "", "use this server instead of starting one")
	appBin := flag.String("app", "", "prebuilt cmd/app binary (default: go build it)")
	flag.Parse()

	srv, _, stop, err := cli.Server(*addr)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	bin, cleanup, err := appserver.Binary(*appBin)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	prefix := fmt.Sprintf("{bench-propagation-%d}:", os.Getpid())

	var targets []string
	for range *procs {
		p, err := appserver.Start(bin, "-variant", "valkeystore", "-valkey", srv, "-prefix", prefix, "-key", hex.EncodeToString(key))
		if err != nil {
			log.Fatal(err)
		}
		defer p.Close()
		targets = append(targets, p.URL)
	}

	// The writer: its own client, store and guard. Sessions are minted
	// through it too, so minting reads the writer's own bumps.
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{srv}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	store, err := valkeystore.New(client, valkeystore.Config{Prefix: prefix})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	guard, err := middleware.New(middleware.Config{
		Store: store, Keys: [][]byte{key}, InsecureCookies: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	start := time.Now()
	res, err := propagation.Run(ctx, propagation.Config{
		Targets: targets, Trials: *trials, LoadWorkers: *workers, LoadSessions: *sessions, Limit: *limit,
		Issue: func(ctx context.Context, sub string) (string, error) {
			_, c, err := guard.Issue(ctx, variants.Claims(sub))
			if err != nil {
				return "", err
			}
			return c.Name + "=" + c.Value, nil
		},
		Revoke: func(ctx context.Context) error {
			_, err := store.Bump(ctx, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke, Reason: "bench"})
			return err
		},
	})
	if err != nil {
		log.Fatalf("after %d trials: %v", len(res), err)
	}
	fmt.Println(cli.Machine())
	fmt.Printf("%d app processes (cmd/app, valkeystore), %d load connections each, %d trials in %v; writer: one global fence bump (terminate-all) on its own client\n\n",
		*procs, *workers, len(res), time.Since(start).Round(time.Millisecond))
	Print(os.Stdout, res)
}

// Print writes the report table.
func Print(w io.Writer, res []propagation.Trial) {
	var write, perProc, all, stale, rtt []time.Duration
	within, late, reqs, other := 0, 0, 0, 0
	for _, t := range res {
		write = append(write, t.Write)
		perProc = append(perProc, t.Propagation...)
		all = append(all, t.All)
		if t.LastStale > 0 {
			stale = append(stale, t.LastStale)
		}
		rtt = append(rtt, t.RoundTrips...)
		within += t.Within
		late += t.Late
		reqs += t.Requests
		other += t.Other
	}
	row := func(name string, d []time.Duration) []string {
		s := cli.Summarize(d)
		return []string{name, fmt.Sprint(s.N), cli.Ms(s.P50), cli.Ms(s.P90), cli.Ms(s.P99), cli.Ms(s.Max)}
	}
	cli.Table(w, []string{"measure (ms)", "n", "p50", "p90", "p99", "max"}, [][]string{
		row("writer: bump reply (t_reply - t_send)", write),
		row("one process refuses: P_i = first 401 received - t_reply", perProc),
		row("every process refuses: max_i P_i", all),
		row("last accepted request sent after t_reply (trials with one)", stale),
		row("HTTP round trip of any request during the trials", rtt),
	})
	fmt.Fprintf(w, "\nrequests during trials: %d; accepted within the bound (sent after t_reply, before that process's first refusal): %d; accepted AFTER the bound (sent after that process's first refusal): %d; other responses (not 200/401) or errors: %d\n",
		reqs, within, late, other)
}
