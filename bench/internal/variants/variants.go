// Package variants builds the handlers the benchmarks compare: one trivial
// handler behind five kinds of session checking, each with a way to mint a
// session it accepts. The in-process benchmarks (bench_test.go,
// cmd/compare) call Private directly; the HTTP load test (cmd/load) and
// the propagation test (cmd/propagation) serve Handler from cmd/app.
//
// The variants:
//
//	none         (a) the handler alone: the floor every ratio is taken to
//	memstore     (b) sessionfence, in-process store, nethttp.Middleware
//	valkeystore  (c) sessionfence, Valkey store, warm client-side cache
//	naive        (d) the same sealed cookie, opened the same way, then one
//	                 plain (uncached) MGET of the same fence keys per request
//	scs          (e) alexedwards/scs/v2 LoadAndSave with its Redis store
//	                 (redigo pool): one GET of the session per request, then
//	                 a check that the session holds a user
package variants

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// Names lists the variants in the order tables print them.
var Names = []string{"none", "memstore", "valkeystore", "naive", "scs"}

// Labels maps a variant to its letter in the issue and BENCHMARKS.md.
var Labels = map[string]string{
	"none": "(a)", "memstore": "(b)", "valkeystore": "(c)", "naive": "(d)", "scs": "(e)",
}

// Env is what the variants share.
type Env struct {
	// ValkeyAddr is the server for valkeystore, naive and scs.
	ValkeyAddr string
	// Prefix starts every key the variants write; it must carry a hash tag
	// ("{bench-x}:").
	Prefix string
	// Keys is the cookie key ring; the same ring in every process lets a
	// cookie minted by one be opened by another.
	Keys [][]byte
	// Logger for the guards. Default: discard (refusal logs would measure
	// the log sink, not the check).
	Logger *slog.Logger
	// PoolSize bounds scs's redigo pool (idle connections kept); default 256.
	PoolSize int
}

// Variant is one way of guarding the handler.
type Variant struct {
	Name string
	// Private is the trivial handler behind this variant's check: 200 "ok"
	// for an accepted session, 401 (503 when the store fails) otherwise.
	Private http.Handler
	// Handler routes GET /private to Private and POST /login to a
	// benchmark-only endpoint that mints a session (Set-Cookie). Loopback
	// benchmarks only: /login authenticates nobody.
	Handler http.Handler
	// Login mints a session for subject in process.
	Login func(ctx context.Context, subject string) (*http.Cookie, error)
	// Guard is the sessionfence guard, nil for none and scs.
	Guard *middleware.Guard
	// Store is the guard's store, nil for none and scs.
	Store middleware.Store
	// Close releases the variant's clients.
	Close func()
}

// Issuer is the issuer of every benchmark session.
const Issuer = "https://idp.bench.example"

// Claims returns the claims of a benchmark session for subject: a tenant
// and an IdP session, so the hot path reads all five fences.
func Claims(subject string) middleware.Claims {
	return middleware.Claims{
		Issuer: Issuer, Subject: subject, Tenant: "acme", IdPSession: "sid-" + subject,
		AuthTime: time.Now(), AMR: []string{"pwd"},
	}
}

// ok is the trivial handler every variant guards.
var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok")
})

// New builds the variant name over env.
func New(name string, env Env) (*Variant, error) {
	if env.Logger == nil {
		env.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(env.Keys) == 0 {
		env.Keys = [][]byte{middleware.GenerateKey()}
	}
	if env.PoolSize == 0 {
		env.PoolSize = 256
	}
	var v *Variant
	var err error
	switch name {
	case "none":
		v = &Variant{Private: ok, Login: func(context.Context, string) (*http.Cookie, error) {
			return &http.Cookie{Name: "bench", Value: "none"}, nil
		}, Close: func() {}}
	case "memstore":
		v, err = guarded(memstore.New(memstore.Config{}), env, func() {})
	case "valkeystore":
		var c valkey.Client
		if c, err = valkey.NewClient(valkey.ClientOption{InitAddress: []string{env.ValkeyAddr}}); err != nil {
			return nil, err
		}
		var st *valkeystore.Store
		if st, err = valkeystore.New(c, valkeystore.Config{Prefix: env.Prefix}); err != nil {
			c.Close()
			return nil, err
		}
		v, err = guarded(st, env, func() { _ = st.Close(); c.Close() })
	case "naive":
		v, err = newNaive(env)
	case "scs":
		v, err = newSCS(env)
	default:
		return nil, fmt.Errorf("variants: unknown variant %q (want one of %s)", name, strings.Join(Names, ", "))
	}
	if err != nil {
		return nil, err
	}
	v.Name = name
	v.Handler = routes(v)
	return v, nil
}

// guarded is sessionfence's own middleware over store.
func guarded(store middleware.Store, env Env, closeFn func()) (*Variant, error) {
	g, err := middleware.New(middleware.Config{
		Store: store, Keys: env.Keys, InsecureCookies: true, Logger: env.Logger,
	})
	if err != nil {
		closeFn()
		return nil, err
	}
	return &Variant{
		Private: nethttp.Middleware(g)(ok),
		Login:   issuer(g),
		Guard:   g, Store: store, Close: closeFn,
	}, nil
}

func issuer(g *middleware.Guard) func(ctx context.Context, subject string) (*http.Cookie, error) {
	return func(ctx context.Context, subject string) (*http.Cookie, error) {
		_, c, err := g.Issue(ctx, Claims(subject))
		return c, err
	}
}

func routes(v *Variant) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /private", v.Private)
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		sub := r.URL.Query().Get("sub")
		if sub == "" {
			http.Error(w, "sub required", http.StatusBadRequest)
			return
		}
		c, err := v.Login(r.Context(), sub)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		http.SetCookie(w, c)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return mux
}

// newSCS is what a Go developer reaches for today: scs's session manager
// with its Redis store, and a check that the loaded session holds a user.
func newSCS(env Env) (*Variant, error) {
	addr := env.ValkeyAddr
	pool := &redis.Pool{
		MaxIdle:     env.PoolSize,
		IdleTimeout: 5 * time.Minute,
		Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", addr, redis.DialConnectTimeout(2*time.Second),
				redis.DialReadTimeout(2*time.Second), redis.DialWriteTimeout(2*time.Second))
		},
	}
	conn := pool.Get()
	_, err := conn.Do("PING")
	conn.Close()
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("variants: scs: %w", err)
	}
	sm := scs.New()
	sm.Store = redisstore.NewWithPrefix(pool, env.Prefix+"scs:")
	sm.Lifetime = 12 * time.Hour
	sm.Cookie.Name = "bench_scs"
	private := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sm.GetString(r.Context(), "sub") == "" {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		ok.ServeHTTP(w, r)
	}))
	login := func(ctx context.Context, subject string) (*http.Cookie, error) {
		ctx, err := sm.Load(ctx, "")
		if err != nil {
			return nil, err
		}
		sm.Put(ctx, "sub", subject)
		sm.Put(ctx, "iss", Issuer)
		sm.Put(ctx, "tenant", "acme")
		token, _, err := sm.Commit(ctx)
		if err != nil {
			return nil, err
		}
		return &http.Cookie{Name: sm.Cookie.Name, Value: token, Path: "/"}, nil
	}
	return &Variant{Private: private, Login: login, Close: func() { _ = pool.Close() }}, nil
}

// errNoCookie is the naive middleware's refusal for a missing cookie.
var errNoCookie = errors.New("no session cookie")
