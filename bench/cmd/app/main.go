// Command app is the benchmark application: the trivial handler of
// internal/variants behind one variant, served over HTTP on loopback.
// cmd/load and cmd/propagation build and start it; it can be run by hand:
//
//	go run ./cmd/app -variant valkeystore -valkey 127.0.0.1:6379 -prefix '{bench}:' -key <64 hex>
//
// It prints "listening http://127.0.0.1:PORT" once it accepts requests,
// and exits when its standard input closes or on SIGTERM/SIGINT.
//
// Routes: GET /private (guarded), POST /login?sub=NAME (mints a session:
// loopback benchmarks only, it authenticates nobody), GET /healthz.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sessionfence/sessionfence/bench/internal/variants"
)

func main() {
	variant := flag.String("variant", "valkeystore", "none, memstore, valkeystore, naive or scs")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	addr := flag.String("valkey", "127.0.0.1:6379", "Valkey/Redis server")
	prefix := flag.String("prefix", "{sessionfence-bench}:", "key prefix (with a hash tag)")
	keyHex := flag.String("key", "", "cookie key, 64 hex digits (default: random, so only this process opens its cookies)")
	verbose := flag.Bool("log", false, "log refusals to stderr")
	flag.Parse()

	env := variants.Env{ValkeyAddr: *addr, Prefix: *prefix}
	if *keyHex != "" {
		k, err := hex.DecodeString(*keyHex)
		if err != nil {
			log.Fatalf("-key: %v", err)
		}
		env.Keys = [][]byte{k}
	}
	if *verbose {
		env.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	v, err := variants.New(*variant, env)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: v.Handler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	fmt.Printf("listening http://%s\n", ln.Addr())

	// Stop on a signal or when the parent closes our standard input.
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
