package backchannel

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

const (
	clientID     = "rp"
	clientSecret = "0123456789abcdef0123456789abcdef-rp-secret" // ≥ 32 bytes for HS256
	sub          = "alice"
	sid          = "sid-1"
)

// clock is a test clock shared by the providers, the store, the guard and
// the receiver, moved by hand: no test sleeps.
type clock struct {
	base time.Time
	off  atomic.Int64
}

func newClock() *clock                   { return &clock{base: time.Now().Truncate(time.Second)} }
func (c *clock) Now() time.Time          { return c.base.Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// spyStore is a memstore that counts Remember and Bump calls and can be
// told to fail the next n of them with an error wrapping
// middleware.ErrStoreUnavailable, as a store that lost its server would.
type spyStore struct {
	*memstore.Store
	remembers    atomic.Int64
	bumps        atomic.Int64
	failBump     atomic.Int32
	failRemember atomic.Int32
}

var errDown = fmt.Errorf("spy: connection refused: %w", middleware.ErrStoreUnavailable)

func (s *spyStore) Bump(ctx context.Context, sc middleware.Scope, b middleware.Bump) (middleware.Fence, error) {
	if s.failBump.Load() > 0 {
		s.failBump.Add(-1)
		return middleware.Fence{}, errDown
	}
	s.bumps.Add(1)
	return s.Store.Bump(ctx, sc, b)
}

func (s *spyStore) Remember(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if s.failRemember.Load() > 0 {
		s.failRemember.Add(-1)
		return false, errDown
	}
	s.remembers.Add(1)
	return s.Store.Remember(ctx, id, ttl)
}

// recorder is a slog.Handler keeping every record, to assert reason codes.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

// outcomes returns the attributes of every per-request record, oldest
// first.
func (h *recorder) outcomes() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.recs {
		if r.Message != logMsg {
			continue
		}
		m := map[string]string{"level": r.Level.String()}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		out = append(out, m)
	}
	return out
}

// last returns the attributes of the latest per-request record.
func (h *recorder) last(t *testing.T) map[string]string {
	t.Helper()
	o := h.outcomes()
	if len(o) == 0 {
		t.Fatal("no back-channel log record")
	}
	return o[len(o)-1]
}

// env is one receiver over its own store and guard, with providers that
// share its clock.
type env struct {
	clk   *clock
	store *spyStore
	guard *middleware.Guard
	rcv   *Receiver
	logs  *recorder
	idps  []*fakeidp.Provider
}

// providers starts the three test providers (RS256, ES256, EdDSA) on clk.
func providers(t *testing.T, clk *clock) (rs, es, ed *fakeidp.Provider) {
	t.Helper()
	mk := func(alg string) *fakeidp.Provider {
		return fakeidp.New(t, fakeidp.WithSigningAlg(alg), fakeidp.WithClock(clk.Now))
	}
	return mk("RS256"), mk("ES256"), mk("EdDSA")
}

// newEnv builds a receiver accepting idps (client id "rp" at each); mod
// may change the configuration before New.
func newEnv(t testing.TB, clk *clock, idps []*fakeidp.Provider, mod func(*Config)) *env {
	t.Helper()
	store := &spyStore{Store: memstore.New(memstore.Config{Now: clk.Now})}
	guard, err := middleware.New(middleware.Config{
		Store: store, Keys: [][]byte{middleware.GenerateKey()}, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &recorder{}
	cfg := Config{Guard: guard, Logger: slog.New(logs)}
	for _, p := range idps {
		cfg.Issuers = append(cfg.Issuers, Issuer{Issuer: p.Issuer(), ClientID: clientID})
	}
	if mod != nil {
		mod(&cfg)
	}
	rcv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{clk: clk, store: store, guard: guard, rcv: rcv, logs: logs, idps: idps}
}

// form builds the POST a provider sends.
func form(tok string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/backchannel", strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func (e *env) serve(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.rcv.ServeHTTP(w, req)
	return w
}

func (e *env) post(tok string) *httptest.ResponseRecorder { return e.serve(form(tok)) }

// watched are the scopes whose fences the tests read before and after: the
// user and the session of every provider.
func (e *env) watched() []middleware.Scope {
	var out []middleware.Scope
	for _, p := range e.idps {
		out = append(out, middleware.SubjectScope(p.Issuer(), sub), middleware.IdPSessionScope(p.Issuer(), sid))
	}
	return out
}

func (e *env) fences(t testing.TB, scopes []middleware.Scope) []middleware.Fence {
	t.Helper()
	dst := make([]middleware.Fence, len(scopes))
	if _, err := e.store.Fences(context.Background(), scopes, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// gen returns the generation of one fence.
func (e *env) gen(t testing.TB, sc middleware.Scope) uint64 {
	t.Helper()
	return e.fences(t, []middleware.Scope{sc})[0].Gen
}

var (
	rogueOnce sync.Once
	rogueKey  *rsa.PrivateKey
)

// rogue returns an RSA key no provider publishes.
func rogue(t testing.TB) *rsa.PrivateKey {
	rogueOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rogueKey = k
	})
	return rogueKey
}
