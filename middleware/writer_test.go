package middleware_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// bumpObserver counts the bumps reported to it and ignores the rest.
type bumpObserver struct {
	mu    sync.Mutex
	bumps []string
}

func (*bumpObserver) Decision(middleware.DecisionKind, middleware.ScopeKind, bool) {}
func (*bumpObserver) StoreError(string)                                            {}
func (*bumpObserver) StoreLatency(string, time.Duration)                           {}

func (o *bumpObserver) Bump(kind string, s middleware.ScopeKind) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bumps = append(o.bumps, kind+" "+s.String())
}

// writerEnv is a guard over a memstore with every ability visible (the
// fixture's flaky wrapper hides them).
type writerEnv struct {
	clock *clock
	mem   *memstore.Store
	guard *middleware.Guard
	obs   *bumpObserver
}

func newWriterEnv(t *testing.T, mod func(*middleware.Config)) *writerEnv {
	t.Helper()
	c := newClock()
	mem := memstore.New(memstore.Config{Now: c.Now})
	obs := &bumpObserver{}
	cfg := middleware.Config{Store: mem, Keys: [][]byte{key(1)}, Now: c.Now, Logger: quietLogger(), Observer: obs}
	if mod != nil {
		mod(&cfg)
	}
	g, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &writerEnv{clock: c, mem: mem, guard: g, obs: obs}
}

func (e *writerEnv) issue(t *testing.T, c middleware.Claims) (*middleware.Session, string) {
	t.Helper()
	s, ck, err := e.guard.Issue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s, ck.Value
}

func (e *writerEnv) audit(t *testing.T) []middleware.AuditEntry {
	t.Helper()
	entries, _, err := e.mem.Audit(context.Background(), middleware.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestFenceWriterNeverGuessesLifetimes guards issue 10, break 2: a fence
// written by a tool that does not know the application's lifetimes (the
// CLI) must outlive every session it can revoke.
func TestFenceWriterNeverGuessesLifetimes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// recorded: the application's guard issued a session before the
		// write, so its lifetimes are recorded in the store.
		scope func(s *middleware.Session) middleware.Scope
		after time.Duration
		want  middleware.DecisionKind
	}{
		{"a session ended by the CLI stays ended 14 h later in an app with 48 h sessions",
			func(s *middleware.Session) middleware.Scope { return middleware.SessionScope(s.ID) }, 14 * time.Hour, middleware.DecisionRevoked},
		{"and until the session's own end",
			func(s *middleware.Session) middleware.Scope { return middleware.SessionScope(s.ID) }, 47*time.Hour + 59*time.Minute, middleware.DecisionRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWriterEnv(t, func(c *middleware.Config) {
				c.AbsoluteLifetime, c.IdPSessionTTL = 48*time.Hour, 60*24*time.Hour
			})
			s, v := e.issue(t, alice)
			cli, err := middleware.NewWriter(middleware.WriterConfig{Store: e.mem, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Write(ctx, middleware.Change{Scope: tt.scope(s), Kind: middleware.BumpRevoke, Actor: "cli:root"}); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(tt.after)
			if d := e.guard.Check(ctx, v); d.Kind != tt.want {
				t.Fatalf("after %v: %v, want %v", tt.after, d, tt.want)
			}
		})
	}
	t.Run("an IdP-session tombstone written by the CLI lasts the app's 60 days", func(t *testing.T) {
		e := newWriterEnv(t, func(c *middleware.Config) {
			c.AbsoluteLifetime, c.IdPSessionTTL = 48*time.Hour, 60*24*time.Hour
		})
		e.issue(t, alice)
		cli, _ := middleware.NewWriter(middleware.WriterConfig{Store: e.mem, Logger: quietLogger()})
		if _, err := cli.Write(ctx, middleware.Change{Scope: middleware.IdPSessionScope(alice.Issuer, alice.IdPSession), Kind: middleware.BumpRevoke, Actor: "cli:root"}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(59 * 24 * time.Hour)
		var revoked *middleware.RevokedError
		if _, _, err := e.guard.Issue(ctx, alice); !errors.As(err, &revoked) {
			t.Fatalf("login with the logged-out sid 59 days later: %v, want *RevokedError", err)
		}
	})
	t.Run("with nothing recorded a session fence is kept for ever", func(t *testing.T) {
		c := newClock()
		mem := memstore.New(memstore.Config{Now: c.Now})
		cli, _ := middleware.NewWriter(middleware.WriterConfig{Store: mem, Logger: quietLogger()})
		sc := middleware.SessionScope("x")
		if _, err := cli.Write(ctx, middleware.Change{Scope: sc, Kind: middleware.BumpRevoke, Actor: "cli:root"}); err != nil {
			t.Fatal(err)
		}
		c.Advance(10 * 365 * 24 * time.Hour)
		f := make([]middleware.Fence, 1)
		if _, err := mem.Fences(ctx, []middleware.Scope{sc}, f); err != nil || f[0].Gen != 1 {
			t.Fatalf("fence ten years later: %+v, %v; want generation 1", f[0], err)
		}
	})
}

// TestEveryWriterPathIsAuditedAndObserved guards issue 10, break 3: an
// administrator's action, a user's own logout and a back-channel style
// change through the writer all leave one audit entry and one observed
// bump.
func TestEveryWriterPathIsAuditedAndObserved(t *testing.T) {
	ctx := context.Background()
	e := newWriterEnv(t, nil)
	s, v := e.issue(t, alice)
	if err := e.guard.EndSession(ctx, s, "user logout"); err != nil {
		t.Fatal(err)
	}
	if d := e.guard.Check(ctx, v); d.Kind != middleware.DecisionRevoked || d.Scope.Kind != middleware.ScopeSession {
		t.Fatalf("after logout: %v", d)
	}
	if _, err := e.guard.Writer().Write(ctx, middleware.Change{
		Scope: middleware.IdPSessionScope("https://idp.test", "sid-b"), Kind: middleware.BumpRevoke,
		Actor: "backchannel:https://idp.test", Action: "backchannel_logout",
	}); err != nil {
		t.Fatal(err)
	}
	entries := e.audit(t)
	if len(entries) != 2 {
		t.Fatalf("%d audit entries, want 2: %+v", len(entries), entries)
	}
	if got := entries[1]; got.Action != "logout" || got.Actor != "https://idp.test|alice" || got.Scope != "session:"+s.ID || got.Reason != "user logout" {
		t.Errorf("logout entry = %+v", got)
	}
	if got := entries[0]; got.Action != "backchannel_logout" || got.Actor != "backchannel:https://idp.test" || got.Scope != "idp_session:https://idp.test|sid-b" {
		t.Errorf("back-channel entry = %+v", got)
	}
	if want := []string{"revoke session", "revoke idp_session"}; strings.Join(e.obs.bumps, ",") != strings.Join(want, ",") {
		t.Errorf("observed bumps %v, want %v", e.obs.bumps, want)
	}
}

func TestWriterRefusesBadChangesAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	e := newWriterEnv(t, nil)
	s, _ := e.issue(t, alice)
	cli, _ := middleware.NewWriter(middleware.WriterConfig{Store: e.mem, Logger: quietLogger()})
	bob := &middleware.Session{ID: "bob-session", Issuer: "https://idp.test", Subject: "bob"}
	tests := []struct {
		name string
		w    *middleware.Writer
		c    middleware.Change
		want error
	}{
		{"a change without an actor", e.guard.Writer(), middleware.Change{Scope: middleware.GlobalScope(), Kind: middleware.BumpRevoke}, middleware.ErrNoActor},
		{"a change of an invalid scope", e.guard.Writer(), middleware.Change{Scope: middleware.Scope{Kind: middleware.ScopeTenant}, Kind: middleware.BumpRevoke, Actor: "a"}, middleware.ErrInvalidScope},
		{"an unknown kind", e.guard.Writer(), middleware.Change{Scope: middleware.GlobalScope(), Kind: 9, Actor: "a"}, middleware.ErrInvalidBump},
		{"an announcement without a time", e.guard.Writer(), middleware.Change{Scope: middleware.GlobalScope(), Kind: middleware.BumpAnnounce, Actor: "a"}, middleware.ErrInvalidBump},
		{"a cancel with nothing pending", e.guard.Writer(), middleware.Change{Scope: middleware.GlobalScope(), Kind: middleware.BumpCancel, Actor: "a"}, middleware.ErrNothingPending},
		{"keeping a session the scope does not cover", e.guard.Writer(), middleware.Change{Scope: middleware.TenantScope("globex"), Kind: middleware.BumpRevoke, Actor: "a", Keep: s}, middleware.ErrKeepNotCovered},
		{"keeping through a reload", e.guard.Writer(), middleware.Change{Scope: middleware.GlobalScope(), Kind: middleware.BumpReload, Actor: "a", Keep: s}, middleware.ErrKeepNotCovered},
		{"keeping on a writer without cookie keys", cli, middleware.Change{Scope: middleware.GlobalScope(), Kind: middleware.BumpRevoke, Actor: "a", Keep: s}, middleware.ErrKeepUnsupported},
		{"keeping a session that is not valid now", e.guard.Writer(), middleware.Change{Scope: middleware.GlobalScope(), Kind: middleware.BumpRevoke, Actor: "a", Keep: bob}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := e.mem.Fences(ctx, []middleware.Scope{middleware.GlobalScope()}, make([]middleware.Fence, 1))
			_, err := tt.w.Write(ctx, tt.c)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			after, _ := e.mem.Fences(ctx, []middleware.Scope{middleware.GlobalScope()}, make([]middleware.Fence, 1))
			if after != before {
				t.Fatalf("version moved from %+v to %+v on a refused change", before, after)
			}
			if n := len(e.audit(t)); n != 0 {
				t.Fatalf("%d audit entries after refused changes", n)
			}
		})
	}
}

// racingStore lets another change of the same scope land just before the
// writer's own, as a second administrator's would.
type racingStore struct {
	*memstore.Store
	race bool
}

func (r *racingStore) Bump(ctx context.Context, sc middleware.Scope, b middleware.Bump) (middleware.Fence, error) {
	if r.race {
		r.race = false
		if _, err := r.Store.Bump(ctx, sc, middleware.Bump{Kind: middleware.BumpRevoke}); err != nil {
			return middleware.Fence{}, err
		}
	}
	return r.Store.Bump(ctx, sc, b)
}

func TestKeepIsRefusedWhenAnotherChangeLandsFirst(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []middleware.BumpKind{middleware.BumpRevoke, middleware.BumpAnnounce} {
		t.Run(kind.String(), func(t *testing.T) {
			c := newClock()
			rs := &racingStore{Store: memstore.New(memstore.Config{Now: c.Now})}
			g, err := middleware.New(middleware.Config{Store: rs, Keys: [][]byte{key(1)}, Now: c.Now, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			s, _, err := g.Issue(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			rs.race = true
			w, err := g.Writer().Write(ctx, middleware.Change{
				Scope: middleware.GlobalScope(), Kind: kind, At: c.Now().Add(time.Hour), Actor: "admin", Keep: s,
			})
			if err != nil {
				t.Fatal(err)
			}
			if w.Cookie != nil || w.Entry.KeptSession != "" || len(w.Entry.Notes) != 1 {
				t.Fatalf("kept through a concurrent change: cookie %v, entry %+v", w.Cookie != nil, w.Entry)
			}
		})
	}
}
