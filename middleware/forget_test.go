package middleware_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// countingRegistry is the in-process store with its Registry ability
// (found by the guard through a type assertion), counting the writes that
// record and drop a session.
type countingRegistry struct {
	*memstore.Store
	tracks, forgets atomic.Int32
}

func (c *countingRegistry) TrackSession(ctx context.Context, s middleware.SessionInfo) error {
	c.tracks.Add(1)
	return c.Store.TrackSession(ctx, s)
}

func (c *countingRegistry) ForgetSession(ctx context.Context, s middleware.SessionInfo) error {
	c.forgets.Add(1)
	return c.Store.ForgetSession(ctx, s)
}

// newCountingGuard returns a guard over a countingRegistry, on the test
// clock.
func newCountingGuard(t *testing.T) (*middleware.Guard, *countingRegistry) {
	t.Helper()
	c := newClock()
	reg := &countingRegistry{Store: memstore.New(memstore.Config{Now: c.Now})}
	g, err := middleware.New(middleware.Config{Store: reg, Keys: [][]byte{key(1)}, Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return g, reg
}

// A refused authentic cookie replayed at an attacker's rate must not drive
// store writes at that rate: the guard drops the session from the registry
// once.
func TestReplayedRefusedCookieForgetsItsSessionOnce(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, g *middleware.Guard, reg *countingRegistry, s *middleware.Session)
	}{
		{"a revoked cookie replayed 100 times writes once", func(t *testing.T, _ *middleware.Guard, reg *countingRegistry, s *middleware.Session) {
			if _, err := reg.Bump(context.Background(), middleware.SubjectScope(s.Issuer, s.Subject), revoke); err != nil {
				t.Fatal(err)
			}
		}},
		{"a logged-out cookie replayed 100 times writes only at the logout", func(t *testing.T, g *middleware.Guard, _ *countingRegistry, s *middleware.Session) {
			if err := g.EndSession(context.Background(), s, "logout"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, reg := newCountingGuard(t)
			s, ck, err := g.Issue(context.Background(), alice)
			if err != nil {
				t.Fatal(err)
			}
			tt.end(t, g, reg, s)

			var wg sync.WaitGroup
			for range 100 {
				wg.Go(func() {
					if d := g.Authenticate(context.Background(), ck.Value); d.Allowed() {
						t.Error("an ended session was allowed")
					}
				})
			}
			wg.Wait()
			if n := reg.forgets.Load(); n != 1 {
				t.Fatalf("ForgetSession calls = %d, want 1", n)
			}
			if list, err := reg.Sessions(context.Background(), s.Issuer, s.Subject); err != nil || len(list) != 0 {
				t.Fatalf("registry still lists %v (%v)", list, err)
			}
		})
	}
}
