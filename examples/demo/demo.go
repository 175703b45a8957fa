package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
	"github.com/sessionfence/sessionfence/examples/gin/ginapp"
	"github.com/sessionfence/sessionfence/examples/internal/app"
	"github.com/sessionfence/sessionfence/examples/nethttp/nethttpapp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// The demo's client registration at the development provider. Both
// instances are one application, so they share it: a session started on
// one instance is renewed on the other with the same refresh token, which
// the provider issued to this client only.
const (
	clientID     = "sessionfence-demo"
	clientSecret = "demo-secret"
	// adminSubject is the demo's administrator (ADMIN_SUBJECTS).
	adminSubject = "alice"
)

// options configure one demo run.
type options struct {
	// IdPAddr, NetHTTPAddr and GinAddr are listen addresses on loopback
	// ("127.0.0.1:0" picks a free port).
	IdPAddr, NetHTTPAddr, GinAddr string
	// ValkeyAddr, when set, makes each instance use its own Valkey client
	// on this server instead of the shared in-process store.
	ValkeyAddr string
	// Logger receives the instances' and the provider's logs.
	Logger *slog.Logger
}

// demo is a running provider and two application instances.
type demo struct {
	IdP                        *devidp.Server
	IdPURL, NetHTTPURL, GinURL string
	Store                      middleware.Store // the shared memstore; nil with Valkey

	apps   []*app.App
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// start listens on the three addresses, starts the development provider,
// registers the demo's client, builds both instances (which discover the
// provider) and serves them until ctx ends or Close is called.
func start(ctx context.Context, o options) (_ *demo, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var lns []net.Listener
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	for _, addr := range []string{o.IdPAddr, o.NetHTTPAddr, o.GinAddr} {
		ln, err := listenLoopback(addr)
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
	}
	url := func(ln net.Listener) string { return "http://" + ln.Addr().String() }
	d := &demo{IdPURL: url(lns[0]), NetHTTPURL: url(lns[1]), GinURL: url(lns[2])}

	d.IdP, err = devidp.New(devidp.Config{
		Issuer: d.IdPURL,
		MFAACR: app.DefaultMFAACR,
		Clients: []devidp.Client{{
			ID:                     clientID,
			Secret:                 clientSecret,
			RedirectURIs:           []string{d.NetHTTPURL + app.CallbackPath, d.GinURL + app.CallbackPath},
			PostLogoutRedirectURIs: []string{d.NetHTTPURL + "/", d.GinURL + "/"},
			// One back-channel URI per client: the provider notifies the
			// net/http instance, whose fence write every instance reads.
			BackchannelLogoutURI: d.NetHTTPURL + app.BackchannelPath,
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("development provider: %w", err)
	}

	ctx, d.cancel = context.WithCancel(ctx)
	d.serve(ctx, lns[0], d.IdP)

	// One key ring for both instances, so each opens the other's cookies;
	// one store, so each sees the other's fences.
	keys := [][]byte{middleware.GenerateKey()}
	if o.ValkeyAddr == "" {
		d.Store = memstore.New(memstore.Config{})
	}
	routes := []struct {
		name  string
		url   string
		ln    net.Listener
		route func(*app.App) http.Handler
	}{
		{"nethttp", d.NetHTTPURL, lns[1], nethttpapp.Handler},
		{"gin", d.GinURL, lns[2], ginapp.Handler},
	}
	for _, r := range routes {
		a, err := app.New(ctx, app.Config{
			Name: r.name, Addr: r.ln.Addr().String(), PublicURL: r.url,
			Issuer: d.IdPURL, ClientID: clientID, ClientSecret: clientSecret, TenantClaim: "tenant",
			ValkeyAddr: o.ValkeyAddr, Store: d.Store,
			AdminSubjects: []string{adminSubject}, SessionKeys: keys, InsecureCookies: true,
			Logger: o.Logger,
		})
		if err != nil {
			_ = d.Close() // stops the provider; the deferred close releases the other listeners
			return nil, fmt.Errorf("instance %s: %w", r.name, err)
		}
		d.apps = append(d.apps, a)
	}
	for i, r := range routes {
		d.serve(ctx, r.ln, r.route(d.apps[i]))
	}
	return d, nil
}

// serve runs app.Serve in the background; its error is kept for Wait.
func (d *demo) serve(ctx context.Context, ln net.Listener, h http.Handler) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := app.Serve(ctx, ln, h); err != nil {
			d.mu.Lock()
			d.errs = append(d.errs, err)
			d.mu.Unlock()
		}
	}()
}

// Wait blocks until every server has stopped (after ctx ended or Close),
// then releases the instances.
func (d *demo) Wait() error {
	d.wg.Wait()
	for _, a := range d.apps {
		a.Close()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return errors.Join(d.errs...)
}

// Close shuts every server down gracefully and waits for them.
func (d *demo) Close() error {
	d.cancel()
	return d.Wait()
}

// listenLoopback listens on addr, which must be a loopback address: the
// demo serves plain HTTP, cookies without Secure and a provider whose
// passwords are published.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("address %q is not a loopback address: the demo is for this machine only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (choose other ports with the flags)", addr, err)
	}
	return ln, nil
}
