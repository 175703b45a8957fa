// Command nethttp is the sessionfence example application on net/http:
// OpenID Connect login, /me, back-channel logout, the admin API and page,
// a bearer-protected API, an event stream that closes on revocation, and
// /healthz. It is configured by environment variables; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sessionfence/sessionfence/examples/internal/app"
	"github.com/sessionfence/sessionfence/examples/nethttp/nethttpapp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nethttp example:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Main(ctx, "nethttp", nethttpapp.Handler)
}
