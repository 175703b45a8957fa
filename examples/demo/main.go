// Command demo runs the whole sessionfence story on one machine with no
// external service: a development OpenID Provider and two instances of the
// example application (one on net/http, one on gin) sharing one store,
// then prints a walkthrough. DEVELOPMENT ONLY: plain HTTP on loopback.
//
//	go run ./examples/demo
//
// Flags (and environment variables): -idp (DEMO_IDP_ADDR, default
// 127.0.0.1:9000), -nethttp (DEMO_NETHTTP_ADDR, 127.0.0.1:8080), -gin
// (DEMO_GIN_ADDR, 127.0.0.1:8081). VALKEY_ADDR switches from the shared
// in-process store to Valkey (one client per instance). -v logs every
// request refusal and fence change.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/template"

	"github.com/gin-gonic/gin"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	env := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.IdPAddr, "idp", env("DEMO_IDP_ADDR", "127.0.0.1:9000"), "development provider's `address` (env DEMO_IDP_ADDR)")
	fs.StringVar(&o.NetHTTPAddr, "nethttp", env("DEMO_NETHTTP_ADDR", "127.0.0.1:8080"), "net/http instance's `address` (env DEMO_NETHTTP_ADDR)")
	fs.StringVar(&o.GinAddr, "gin", env("DEMO_GIN_ADDR", "127.0.0.1:8081"), "gin instance's `address` (env DEMO_GIN_ADDR)")
	fs.StringVar(&o.ValkeyAddr, "valkey", os.Getenv("VALKEY_ADDR"), "Valkey `address`; empty shares an in-process store (env VALKEY_ADDR)")
	verbose := fs.Bool("v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := start(ctx, o)
	if err != nil {
		return err
	}
	if err := walkthrough.Execute(stdout, d.view(o)); err != nil {
		_ = d.Close()
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "demo: shutting down")
	return d.Wait()
}

type view struct {
	IdP, NetHTTP, Gin, Store, Admin, OTP, Password string
}

func (d *demo) view(o options) view {
	store := "one in-process store (memstore) shared by both instances"
	if o.ValkeyAddr != "" {
		store = "Valkey at " + o.ValkeyAddr + " (one client per instance, client-side caching)"
	}
	return view{IdP: d.IdPURL, NetHTTP: d.NetHTTPURL, Gin: d.GinURL, Store: store, Admin: adminSubject,
		OTP: devidp.OTP, Password: devidp.DefaultPassword}
}

var walkthrough = template.Must(template.New("").Parse(`
sessionfence demo — DEVELOPMENT ONLY (plain HTTP on loopback, a provider whose passwords are published)

  Identity provider   {{.IdP}}/        users alice, bob, carol · password "{{.Password}}" · one-time code {{.OTP}}
  Provider sessions   {{.IdP}}/dev/
  App on net/http     {{.NetHTTP}}/
  App on gin          {{.Gin}}/
  Store               {{.Store}}
  Administrator       {{.Admin}}

The two instances share the store and the cookie keys: what one revokes, the
other refuses on its next request. Cookies do not depend on the port, so use
two browser profiles (or a normal and a private window) for two people.

  1. Window A: open {{.NetHTTP}}/ and sign in as alice / {{.Password}}.
  2. Window B (other profile or private window): open {{.Gin}}/events and
     sign in as bob / {{.Password}}. Leave it open: it holds a live event stream.
  3. Window A: open {{.NetHTTP}}/admin/. Under "Announce a sign-out" choose a
     time, a reason and "second factor (MFA)", press Announce…, type
     terminate-all and confirm. Within seconds window B shows
     "You will be signed out at HH:MM: <reason>. Save your work."
  4. Window A: under "Log all users out" give a reason, keep "second factor
     (MFA)", press Log all users out…, read the dialog, type terminate-all,
     confirm.
  5. Window B: the stream closes at once and the page goes to sign in. The
     password is not enough this time: the provider asks for the one-time
     code {{.OTP}}.
  6. Window A: alice is still signed in (her session was kept). The audit
     log at the bottom of /admin/ lists the announcement and terminate_all.
  7. Back-channel logout: open {{.IdP}}/dev/ and end bob's provider session.
     The provider posts a logout token to {{.NetHTTP}}/backchannel-logout;
     window B is signed out and must enter the password again.

Press Ctrl+C to stop.
`))
