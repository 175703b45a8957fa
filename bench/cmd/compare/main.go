// Command compare runs the same trivial handler behind the five variants
// of internal/variants in one process, with testing.Benchmark, and prints
// ns/op, B/op and allocs/op with ratios to (a) the bare handler and to (b)
// sessionfence over the in-process store.
//
//	go run ./cmd/compare [-count 5] [-benchtime 1s] [-valkey host:port]
//
// Without -valkey it starts its own redis-server on a free loopback port.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/sessionfence/sessionfence/bench/internal/cli"
	"github.com/sessionfence/sessionfence/bench/internal/variants"
)

func main() {
	testing.Init()
	count := flag.Int("count", 5, "runs per variant and mode; the median is printed")
	benchtime := flag.String("benchtime", "1s", "time per run (testing's -benchtime)")
	addr := flag.String("valkey", "", "use this server instead of starting one")
	flag.Parse()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		log.Fatal(err)
	}
	srv, _, stop, err := cli.Server(*addr)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	prefix := fmt.Sprintf("{bench-compare-%d}:", os.Getpid())

	type result struct{ ns, bytes, allocs float64 }
	type built struct {
		v  *variants.Variant
		ck *http.Cookie
	}
	ctx := context.Background()
	all := make(map[string]built)
	for _, name := range variants.Names {
		v, err := variants.New(name, variants.Env{ValkeyAddr: srv, Prefix: prefix})
		if err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		defer v.Close()
		ck, err := v.Login(ctx, "alice")
		if err != nil {
			log.Fatalf("%s: login: %v", name, err)
		}
		for range 3 {
			variants.ServeOnce(v.Private, ck)
		}
		all[name] = built{v, ck}
	}
	// Rounds interleave the variants, so that load from elsewhere on the
	// machine falls on all of them alike; the median of each is printed.
	runs := make(map[string][]result)
	for range *count {
		for _, name := range variants.Names {
			b := all[name]
			for _, parallel := range []bool{false, true} {
				r := testing.Benchmark(func(tb *testing.B) { variants.Bench(tb, b.v.Private, b.ck, parallel) })
				if r.N == 0 {
					log.Fatalf("%s: benchmark failed", name)
				}
				k := key(name, parallel)
				runs[k] = append(runs[k], result{float64(r.T.Nanoseconds()) / float64(r.N), float64(r.MemBytes) / float64(r.N), float64(r.MemAllocs) / float64(r.N)})
			}
		}
	}
	res := make(map[string]result)
	for k, rs := range runs {
		slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.ns, b.ns) })
		res[k] = rs[len(rs)/2]
	}

	fmt.Println(cli.Machine())
	fmt.Printf("in-process, same handler, median of %d interleaved rounds of %s each; serial = one goroutine, parallel = RunParallel on GOMAXPROCS\n\n", *count, *benchtime)
	for _, parallel := range []bool{false, true} {
		mode := "serial"
		if parallel {
			mode = "parallel"
		}
		base := res[key("none", parallel)].ns
		b := res[key("memstore", parallel)].ns
		var rows [][]string
		for _, name := range variants.Names {
			r := res[key(name, parallel)]
			rows = append(rows, []string{
				variants.Labels[name] + " " + name, mode, fmt.Sprintf("%.0f", r.ns), fmt.Sprintf("%.0f", r.bytes),
				fmt.Sprintf("%.0f", r.allocs), fmt.Sprintf("%.1fx", r.ns/base), fmt.Sprintf("%.2fx", r.ns/b),
			})
		}
		cli.Table(os.Stdout, []string{"variant", "mode", "ns/op", "B/op", "allocs/op", "vs (a)", "vs (b)"}, rows)
		c := res[key("valkeystore", parallel)].ns
		fmt.Printf("\n%s: (c)/(b) = %.2fx (target <= 2x); (d)/(c) = %.1fx; (e)/(c) = %.1fx\n\n", mode,
			c/b, res[key("naive", parallel)].ns/c, res[key("scs", parallel)].ns/c)
	}
}

func key(name string, parallel bool) string { return fmt.Sprint(name, parallel) }
