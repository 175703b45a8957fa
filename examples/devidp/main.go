// Command devidp runs a development-only OpenID Provider for the demo and
// for browser tests. DEVELOPMENT ONLY — never expose it: its passwords are
// public and its one-time code is fixed. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "devidp:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	env := func(name, def string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("devidp", flag.ContinueOnError)
	addr := fs.String("addr", env("DEVIDP_ADDR", "127.0.0.1:9000"), "listen address (env DEVIDP_ADDR)")
	issuer := fs.String("issuer", env("DEVIDP_ISSUER", ""), "issuer URL (env DEVIDP_ISSUER; default http://<listen address>)")
	clients := fs.String("clients", env("DEVIDP_CLIENTS", ""), "clients, id:secret:redirects:post_logout_redirects:backchannel_uri separated by spaces (env DEVIDP_CLIENTS; default the demo client)")
	mfaACR := fs.String("mfa-acr", env("DEVIDP_MFA_ACR", devidp.DefaultMFAACR), "acr value of a login with a second factor (env DEVIDP_MFA_ACR)")
	audience := fs.String("api-audience", env("DEVIDP_API_AUDIENCE", "api"), "aud of the JWT access tokens (env DEVIDP_API_AUDIENCE)")
	alg := fs.String("alg", env("DEVIDP_SIGNING_ALG", devidp.DefaultSigningAlg), "signing algorithm: ES256, RS256 or EdDSA (env DEVIDP_SIGNING_ALG)")
	listenAny := fs.Bool("insecure-listen-any", env("DEVIDP_INSECURE_LISTEN_ANY", "") == "1", "allow a non-loopback listen address, e.g. in a container (env DEVIDP_INSECURE_LISTEN_ANY=1)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	tcp := ln.Addr().(*net.TCPAddr)
	if !tcp.IP.IsLoopback() && !*listenAny {
		return fmt.Errorf("refusing to listen on %s, which is not a loopback address: this provider must never be exposed (set -insecure-listen-any for a container network)", tcp)
	}
	if *issuer == "" {
		host := tcp.IP.String()
		if tcp.IP.IsUnspecified() {
			host = "127.0.0.1"
		}
		*issuer = "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
	}
	cfg := devidp.Config{
		Issuer: *issuer, MFAACR: *mfaACR, SigningAlg: *alg, APIAudience: *audience,
		Clients: []devidp.Client{devidp.DefaultClient()},
	}
	if *clients != "" {
		if cfg.Clients, err = devidp.ParseClients(*clients); err != nil {
			return err
		}
	}
	s, err := devidp.New(cfg)
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	log.Warn(devidp.Banner, "listen", tcp.String(), "issuer", s.Issuer(),
		"discovery", s.Issuer()+"/.well-known/openid-configuration", "sessions", s.Issuer()+"/dev/")
	for _, u := range s.Users() {
		log.Info("account", "user", u.Subject, "password", u.Password, "mfa", u.MFA, "tenant", u.Tenant)
	}
	log.Info("second factor", "fixed_one_time_code", devidp.OTP, "mfa_acr", *mfaACR)
	for _, c := range s.Clients() {
		log.Info("client", "id", c.ID, "redirect_uris", c.RedirectURIs, "backchannel_logout_uri", c.BackchannelLogoutURI)
	}

	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
