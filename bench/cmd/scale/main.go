// Command scale measures what administrative actions cost as the number of
// live sessions grows: sessions are minted with guard.Issue (so a store
// that keeps a session registry, middleware.Registry, records each one),
// and at each size it times terminate-all, terminate-user, an IdP-session
// logout as the back-channel receiver makes it, a bare fence bump, a
// registry count and the hot-path check.
//
//	go run ./cmd/scale [-sizes 10000,100000] [-big] [-trials 100] [-stores valkeystore,memstore] [-valkey host:port]
//
// -big adds 1,000,000 sessions (about a minute or two of minting on a
// 2-vCPU machine and ~1 GB in the server). Without -valkey it starts its
// own redis-server on a free loopback port. Sizes are cumulative: the
// sessions of the smaller sizes stay live.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/bench/internal/cli"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

const issuer = "https://idp.scale.example"

func main() {
	sizesFlag := flag.String("sizes", "10000,100000", "live-session counts, ascending")
	big := flag.Bool("big", false, "also run 1,000,000 sessions")
	trials := flag.Int("trials", 100, "timed runs of each action per size")
	workers := flag.Int("workers", 64, "concurrent Issue calls while minting")
	stores := flag.String("stores", "valkeystore,memstore", "stores to measure")
	addr := flag.String("valkey", "", "use this server instead of starting one")
	flag.Parse()

	var sizes []int
	for _, f := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			log.Fatalf("-sizes: bad size %q", f)
		}
		sizes = append(sizes, n)
	}
	if *big {
		sizes = append(sizes, 1_000_000)
	}

	fmt.Println(cli.Machine())
	for _, name := range strings.Split(*stores, ",") {
		if err := runStore(name, *addr, sizes, *trials, *workers); err != nil {
			log.Fatalf("%s: %v", name, err)
		}
	}
}

type env struct {
	store   middleware.Store
	guard   *middleware.Guard
	admin   *admin.Service
	memory  func() string
	hasReg  bool
	cleanup func()
}

func open(name, addr string) (*env, error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{memory: func() string { return "-" }, cleanup: func() {}}
	switch name {
	case "memstore":
		e.store = memstore.New(memstore.Config{})
	case "valkeystore":
		srv, server, stop, err := cli.Server(addr)
		if err != nil {
			return nil, err
		}
		client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{srv}})
		if err != nil {
			stop()
			return nil, err
		}
		prefix := fmt.Sprintf("{bench-scale-%d}:", os.Getpid())
		st, err := valkeystore.New(client, valkeystore.Config{Prefix: prefix})
		if err != nil {
			client.Close()
			stop()
			return nil, err
		}
		e.store = st
		e.cleanup = func() { _ = st.Close(); client.Close(); stop() }
		if server != nil {
			e.memory = func() string {
				info, err := server.Info("memory")
				if err != nil {
					return "?"
				}
				return info["used_memory_human"]
			}
		}
	default:
		return nil, fmt.Errorf("unknown store %q", name)
	}
	_, e.hasReg = e.store.(middleware.Registry)
	g, err := middleware.New(middleware.Config{Store: e.store, Keys: [][]byte{middleware.GenerateKey()}, InsecureCookies: true, Logger: logger})
	if err != nil {
		return nil, err
	}
	e.guard = g
	if e.admin, err = admin.New(admin.Config{Guard: g}); err != nil {
		return nil, err
	}
	return e, nil
}

func claims(i int) middleware.Claims {
	return middleware.Claims{
		Issuer: issuer, Subject: "user-" + strconv.Itoa(i/4), Tenant: "t-" + strconv.Itoa(i%100),
		IdPSession: "sid-" + strconv.Itoa(i), AuthTime: time.Now(), AMR: []string{"pwd"},
	}
}

// mint issues sessions [from, to) with workers concurrent calls.
func mint(ctx context.Context, g *middleware.Guard, from, to, workers int) error {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to || firstErr.Load() != nil {
					return
				}
				if _, _, err := g.Issue(ctx, claims(i)); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

func runStore(name, addr string, sizes []int, trials, workers int) error {
	e, err := open(name, addr)
	if err != nil {
		return err
	}
	defer e.cleanup()
	ctx := context.Background()
	reg := "yes (middleware.Registry): Issue tracks every session; terminate actions count the sessions they end"
	if !e.hasReg {
		reg = "no: the store does not implement middleware.Registry; nothing is tracked or counted"
	}
	fmt.Printf("\nstore %s; registry: %s; %d timed runs per action and size\n\n", name, reg, trials)

	act := admin.Action{Actor: "bench:scale", Reason: "scale benchmark"}
	type op struct {
		name string
		run  func(i int) error
	}
	trialBase := 0
	ops := []op{
		{"terminate-all (Service.TerminateAll: count, bump, audit)", func(int) error {
			_, err := e.admin.TerminateAll(ctx, act)
			return err
		}},
		{"terminate-user (Service.TerminateUser, a user with 4 sessions)", func(i int) error {
			_, err := e.admin.TerminateUser(ctx, issuer, "user-"+strconv.Itoa(i), act)
			return err
		}},
		{"IdP-session logout (Remember jti + Bump idp_session, TTL 30d)", func(i int) error {
			if r, ok := e.store.(middleware.Replay); ok {
				if _, err := r.Remember(ctx, fmt.Sprintf("%s|jti-%d", issuer, i), time.Hour); err != nil {
					return err
				}
			}
			_, err := e.store.Bump(ctx, middleware.IdPSessionScope(issuer, "sid-"+strconv.Itoa(i)),
				middleware.Bump{Kind: middleware.BumpRevoke, TTL: 30 * 24 * time.Hour})
			return err
		}},
		{"bare bump: Store.Bump(global)", func(int) error {
			_, err := e.store.Bump(ctx, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke})
			return err
		}},
	}
	if r, ok := e.store.(middleware.Registry); ok {
		ops = append(ops, op{"Registry.CountSessions(global)", func(int) error {
			_, _, err := r.CountSessions(ctx, middleware.GlobalScope())
			return err
		}})
	}

	header := []string{"action (µs)"}
	rows := make([][]string, len(ops)+1)
	for i, o := range ops {
		rows[i] = []string{o.name}
	}
	rows[len(ops)] = []string{"hot path: Guard.Check of one session (warm)"}
	var extra [][]string
	have := 0
	for _, n := range sizes {
		start := time.Now()
		if err := mint(ctx, e.guard, have, n, workers); err != nil {
			return fmt.Errorf("mint to %d: %w", n, err)
		}
		mintTime := time.Since(start)
		rate := float64(n-have) / mintTime.Seconds()
		have = n
		count := "-"
		if r, ok := e.store.(middleware.Registry); ok {
			c, _, err := r.CountSessions(ctx, middleware.GlobalScope())
			if err != nil {
				return err
			}
			count = strconv.Itoa(c)
		}
		extra = append(extra, []string{strconv.Itoa(n), count, mintTime.Round(time.Millisecond).String(), fmt.Sprintf("%.0f", rate), e.memory()})
		header = append(header, fmt.Sprintf("%d p50", n), fmt.Sprintf("%d p99", n))
		for i, o := range ops {
			d := make([]time.Duration, 0, trials)
			for k := range trials {
				t := time.Now()
				// Existing users and IdP sessions, a different one each run.
				if err := o.run(trialBase + k); err != nil {
					return fmt.Errorf("%s at %d: %w", o.name, n, err)
				}
				d = append(d, time.Since(t))
			}
			s := cli.Summarize(d)
			rows[i] = append(rows[i], cli.Us(s.P50), cli.Us(s.P99))
		}
		trialBase += trials
		// The hot path with that many sessions live: one fresh session,
		// checked over and over.
		_, ck, err := e.guard.Issue(ctx, claims(-1))
		if err != nil {
			return err
		}
		e.guard.Check(ctx, ck.Value)
		d := make([]time.Duration, 0, 10*trials)
		for range 10 * trials {
			t := time.Now()
			if dec := e.guard.Check(ctx, ck.Value); !dec.Allowed() {
				return fmt.Errorf("check: %v", dec)
			}
			d = append(d, time.Since(t))
		}
		s := cli.Summarize(d)
		rows[len(ops)] = append(rows[len(ops)], cli.Us(s.P50), cli.Us(s.P99))
	}
	cli.Table(os.Stdout, []string{"live sessions", "registry count", "mint time", "sessions/s", "server memory"}, extra)
	fmt.Println()
	cli.Table(os.Stdout, header, rows)
	// Flatness: the ratio of the largest size's p50 to the smallest's.
	fmt.Println()
	for _, r := range rows {
		first, _ := strconv.ParseFloat(r[1], 64)
		last, _ := strconv.ParseFloat(r[len(r)-2], 64)
		if first > 0 {
			fmt.Printf("p50 at %d / p50 at %d sessions: %.2fx  %s\n", sizes[len(sizes)-1], sizes[0], last/first, r[0])
		}
	}
	return nil
}
