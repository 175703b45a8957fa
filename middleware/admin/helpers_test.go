package admin_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/sessionfence/sessionfence/internal/testclock"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixture is an application: a guard on an in-memory store, both on a
// fake clock.
type fixture struct {
	clock *testclock.Clock
	mem   *memstore.Store
	guard *middleware.Guard
}

func key(b byte) []byte {
	k := make([]byte, middleware.KeySize)
	for i := range k {
		k[i] = b
	}
	return k
}

func newFixture(t testing.TB, mod func(*middleware.Config)) *fixture {
	t.Helper()
	c := testclock.New()
	mem := memstore.New(memstore.Config{Now: c.Now})
	cfg := middleware.Config{Store: mem, Keys: [][]byte{key(1)}, Now: c.Now, Logger: quiet}
	if mod != nil {
		mod(&cfg)
	}
	g, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{clock: c, mem: mem, guard: g}
}

var alice = middleware.Claims{Issuer: "https://idp.test", Subject: "alice", Tenant: "acme", IdPSession: "sid-a"}

func (f *fixture) issue(t testing.TB, c middleware.Claims) (*middleware.Session, string) {
	t.Helper()
	if c.AuthTime.IsZero() {
		c.AuthTime = f.clock.Now()
	}
	s, ck, err := f.guard.Issue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s, ck.Value
}

// service is the application's admin Service, over the guard.
func (f *fixture) service(t testing.TB) *admin.Service {
	t.Helper()
	s, err := admin.New(admin.Config{Guard: f.guard})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
