// Command load drives each variant of internal/variants over real HTTP on
// loopback, at the same concurrency and for the same time, and prints
// throughput and latency percentiles side by side. Each variant runs in
// its own cmd/app process; the load generator is this process.
//
//	go run ./cmd/load [-c 32] [-d 5s] [-warmup 1s] [-rounds 1] [-valkey host:port] [-app path]
//
// Without -valkey it starts its own redis-server on a free loopback port.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sessionfence/sessionfence/bench/internal/appserver"
	"github.com/sessionfence/sessionfence/bench/internal/cli"
	"github.com/sessionfence/sessionfence/bench/internal/loadgen"
	"github.com/sessionfence/sessionfence/bench/internal/redisproc"
	"github.com/sessionfence/sessionfence/bench/internal/variants"
)

type run struct {
	rps     float64
	lat     cli.Summary
	non200  int
	errs    int
	cpuPerR time.Duration
	// serverPerR is the Valkey server's CPU per request (only when this
	// command started the server).
	serverPerR time.Duration
}

func main() {
	conc := flag.Int("c", 32, "concurrent connections (closed loop), the same for every variant")
	dur := flag.Duration("d", 5*time.Second, "measured duration per variant and round")
	warm := flag.Duration("warmup", time.Second, "unmeasured load before each measurement")
	rounds := flag.Int("rounds", 1, "rounds over all variants (order rotates); the median round is printed")
	addr := flag.String("valkey", "", "use this server instead of starting one")
	appBin := flag.String("app", "", "prebuilt cmd/app binary (default: go build it)")
	only := flag.String("variants", strings.Join(variants.Names, ","), "comma-separated variants")
	flag.Parse()

	srv, server, stop, err := cli.Server(*addr)
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
	names := strings.Split(*only, ",")

	results := make(map[string][]run)
	for r := range *rounds {
		order := append(names[r%len(names):], names[:r%len(names)]...)
		for _, name := range order {
			res, err := measure(bin, name, srv, server, hex.EncodeToString(key), *conc, *warm, *dur)
			if err != nil {
				log.Fatalf("%s: %v", name, err)
			}
			results[name] = append(results[name], res)
			fmt.Fprintf(os.Stderr, "round %d %-12s %8.0f req/s p99 %s ms\n", r+1, name, res.rps, cli.Ms(res.lat.P99))
		}
	}
	med := make(map[string]run)
	for name, rs := range results {
		slices.SortFunc(rs, func(a, b run) int {
			switch {
			case a.rps < b.rps:
				return -1
			case a.rps > b.rps:
				return 1
			}
			return 0
		})
		med[name] = rs[len(rs)/2]
	}

	fmt.Println(cli.Machine())
	fmt.Printf("HTTP/1.1 keep-alive on loopback, %d connections (closed loop), %v measured after %v warm-up, app and load generator in separate processes on the same machine\n\n", *conc, *dur, *warm)
	base := med["none"].rps
	var rows [][]string
	for _, name := range names {
		m := med[name]
		vsA := "-"
		if base > 0 {
			vsA = fmt.Sprintf("%.2fx", m.rps/base)
		}
		rows = append(rows, []string{
			variants.Labels[name] + " " + name, fmt.Sprintf("%.0f", m.rps), vsA,
			cli.Ms(m.lat.P50), cli.Ms(m.lat.P90), cli.Ms(m.lat.P99), cli.Ms(m.lat.Max),
			cli.Us(m.cpuPerR), cli.Us(m.serverPerR), fmt.Sprint(m.non200), fmt.Sprint(m.errs),
		})
	}
	cli.Table(os.Stdout, []string{"variant", "req/s", "vs (a)", "p50 ms", "p90 ms", "p99 ms", "max ms", "app CPU µs/req", "Valkey CPU µs/req", "non-200", "errors"}, rows)
	if c, e := med["valkeystore"], med["scs"]; c.rps > 0 && e.rps > 0 {
		fmt.Printf("\n(c)/(e) throughput = %.2fx (target >= 3x); (c)/(d) = %.2fx; p99 (e)/(c) = %.2fx\n",
			c.rps/e.rps, c.rps/med["naive"].rps, float64(e.lat.P99)/float64(c.lat.P99))
	}
}

func measure(bin, name, srv string, server *redisproc.Server, key string, conc int, warm, dur time.Duration) (run, error) {
	prefix := fmt.Sprintf("{bench-load-%d-%s}:", os.Getpid(), name)
	p, err := appserver.Start(bin, "-variant", name, "-valkey", srv, "-prefix", prefix, "-key", key)
	if err != nil {
		return run{}, err
	}
	defer p.Close()
	ctx := context.Background()
	client := &http.Client{Timeout: 5 * time.Second}
	cookies := make([]string, conc)
	for i := range cookies {
		if cookies[i], err = appserver.Login(ctx, client, p.URL, fmt.Sprintf("user-%d", i)); err != nil {
			return run{}, err
		}
	}
	url := p.URL + "/private"
	loadgen.Run(ctx, url, cookies, conc, warm)
	serverCPU := func() time.Duration {
		if server == nil {
			return 0
		}
		return redisproc.CPUTime(server.Pid())
	}
	cpu0, scpu0 := p.CPUTime(), serverCPU()
	res := loadgen.Run(ctx, url, cookies, conc, dur)
	cpu, scpu := p.CPUTime()-cpu0, serverCPU()-scpu0
	out := run{rps: res.Throughput(), lat: cli.Summarize(res.Latencies), errs: res.Errors}
	for code, n := range res.Status {
		if code != http.StatusOK {
			out.non200 += n
		}
	}
	if res.Requests > 0 {
		out.cpuPerR = cpu / time.Duration(res.Requests)
		out.serverPerR = scpu / time.Duration(res.Requests)
	}
	return out, nil
}
