package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// shutdownGrace bounds a graceful shutdown.
const shutdownGrace = 10 * time.Second

// Serve serves h on ln until ctx ends, then shuts down gracefully: the
// contexts of running requests are cancelled first, so event streams end
// at once instead of holding the shutdown for its whole grace period.
// It returns nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	base, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: it would cut the event streams.
		BaseContext: func(net.Listener) context.Context { return base },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	cancelRequests()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Main runs one example instance configured from the environment: it
// builds the App, routes it with route (the framework-specific part),
// listens on ADDR and serves until ctx ends (SIGINT, SIGTERM).
func Main(ctx context.Context, name string, route func(*App) http.Handler) error {
	cfg, err := FromEnv(name, os.Getenv)
	if err != nil {
		return err
	}
	cfg, err = cfg.withDefaults()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	a, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	a.log.Info("listening", "url", cfg.PublicURL, "issuer", cfg.Issuer, "admins", a.admins())
	fmt.Fprintf(os.Stderr, "sessionfence example (%s): open %s/\n", name, cfg.PublicURL)
	return Serve(ctx, ln, route(a))
}
