// Command gin is the sessionfence example application on gin: OpenID
// Connect login, /me, back-channel logout, the admin API and page, a
// bearer-protected API, an event stream that closes on revocation, and
// /healthz. It is configured by environment variables; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/sessionfence/sessionfence/examples/gin/ginapp"
	"github.com/sessionfence/sessionfence/examples/internal/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gin example:", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Main(ctx, "gin", ginapp.Handler)
}
