package admin_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/admin"
)

var root = admin.Action{Actor: "https://idp.test|root", Reason: "incident 42"}

func TestAdminTerminations(t *testing.T) {
	bob := middleware.Claims{Issuer: "https://idp.test", Subject: "bob", Tenant: "globex", IdPSession: "sid-b"}
	tests := []struct {
		name      string
		act       func(ctx context.Context, a *admin.Service, aliceID string) (admin.Result, error)
		aliceKind middleware.DecisionKind
		bobKind   middleware.DecisionKind
		verb      string
	}{
		{"terminate all ends everyone", func(ctx context.Context, a *admin.Service, _ string) (admin.Result, error) {
			return a.TerminateAll(ctx, root)
		}, middleware.DecisionRevoked, middleware.DecisionRevoked, "terminate_all"},
		{"terminate tenant ends only that workspace", func(ctx context.Context, a *admin.Service, _ string) (admin.Result, error) {
			return a.TerminateTenant(ctx, "acme", root)
		}, middleware.DecisionRevoked, middleware.DecisionAllowed, "terminate_tenant"},
		{"terminate user ends only that user", func(ctx context.Context, a *admin.Service, _ string) (admin.Result, error) {
			return a.TerminateUser(ctx, "https://idp.test", "bob", root)
		}, middleware.DecisionAllowed, middleware.DecisionRevoked, "terminate_user"},
		{"terminate session ends only that session", func(ctx context.Context, a *admin.Service, id string) (admin.Result, error) {
			return a.TerminateSession(ctx, id, root)
		}, middleware.DecisionRevoked, middleware.DecisionAllowed, "terminate_session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			a := f.service(t)
			as, av := f.issue(t, alice)
			_, bv := f.issue(t, bob)
			res, err := tt.act(context.Background(), a, as.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d := f.guard.Check(context.Background(), av); d.Kind != tt.aliceKind {
				t.Errorf("alice: %v, want %v", d, tt.aliceKind)
			}
			if d := f.guard.Check(context.Background(), bv); d.Kind != tt.bobKind {
				t.Errorf("bob: %v, want %v", d, tt.bobKind)
			}
			if res.Entry.Action != tt.verb || res.Entry.Actor != root.Actor || res.Entry.Reason != "incident 42" || res.Fence.Gen != 1 {
				t.Errorf("result = %+v", res)
			}
		})
	}
}

func TestTerminateAllKeepsTheCaller(t *testing.T) {
	f := newFixture(t, nil)
	a := f.service(t)
	caller, callerValue := f.issue(t, alice)
	_, bobValue := f.issue(t, middleware.Claims{Issuer: "https://idp.test", Subject: "bob"})
	act := root
	act.Keep, act.Policy = caller, middleware.PolicyMFA
	res, err := a.TerminateAll(context.Background(), act)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cookie == nil {
		t.Fatal("no re-issued cookie for the caller")
	}
	if d := f.guard.Check(context.Background(), res.Cookie.Value); d.Kind != middleware.DecisionAllowed || d.Session.ID != caller.ID {
		t.Fatalf("caller's re-issued cookie: %v", d)
	}
	if d := f.guard.Check(context.Background(), callerValue); d.Kind != middleware.DecisionReauthRequired {
		t.Fatalf("caller's old cookie: %v, want reauth_required", d)
	}
	if d := f.guard.Check(context.Background(), bobValue); d.Kind != middleware.DecisionReauthRequired || d.Policy != middleware.PolicyMFA {
		t.Fatalf("bob: %v, want reauth_required with mfa", d)
	}
	if res.Entry.KeptSession != caller.ID || res.Entry.Policy != "mfa" {
		t.Fatalf("audit entry = %+v", res.Entry)
	}
}

func longAccess(c *middleware.Config) { c.AccessLifetime = 2 * time.Hour }

func TestAnnouncedTerminateAllKeepsTheCallerBeforeAndAfter(t *testing.T) {
	f := newFixture(t, longAccess)
	a := f.service(t)
	caller, _ := f.issue(t, alice)
	_, bobValue := f.issue(t, middleware.Claims{Issuer: "https://idp.test", Subject: "bob"})
	act := root
	act.Keep, act.At = caller, f.clock.Now().Add(10*time.Minute)
	res, err := a.TerminateAll(context.Background(), act)
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry.Action != "announce" || res.Entry.EffectiveAt == nil {
		t.Fatalf("entry = %+v", res.Entry)
	}
	kept := res.Cookie.Value
	if d := f.guard.Check(context.Background(), bobValue); d.Kind != middleware.DecisionAllowed || d.Notice == nil {
		t.Fatalf("bob before the time: %v (notice %v)", d, d.Notice)
	}
	if d := f.guard.Check(context.Background(), kept); d.Kind != middleware.DecisionAllowed || d.Notice != nil {
		t.Fatalf("caller before the time: %v (a kept caller gets no notice)", d)
	}
	f.clock.Advance(10 * time.Minute)
	if d := f.guard.Check(context.Background(), bobValue); d.Kind != middleware.DecisionRevoked {
		t.Fatalf("bob after the time: %v", d)
	}
	if d := f.guard.Check(context.Background(), kept); d.Kind != middleware.DecisionAllowed {
		t.Fatalf("caller after the time: %v", d)
	}
}

func TestCancelledAnnouncementRestoresTheKeptCaller(t *testing.T) {
	f := newFixture(t, longAccess)
	a := f.service(t)
	caller, _ := f.issue(t, alice)
	act := root
	act.Keep, act.At = caller, f.clock.Now().Add(10*time.Minute)
	res, err := a.TerminateAll(context.Background(), act)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := f.guard.SessionFromCookie(res.Cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	cancel := root
	cancel.Keep = kept
	cres, err := a.Cancel(context.Background(), middleware.GlobalScope(), cancel)
	if err != nil {
		t.Fatal(err)
	}
	if cres.Cookie == nil {
		t.Fatal("cancel did not re-issue the kept caller's cookie")
	}
	f.clock.Advance(time.Hour)
	if d := f.guard.Check(context.Background(), cres.Cookie.Value); d.Kind != middleware.DecisionAllowed {
		t.Fatalf("caller after cancel: %v", d)
	}
	if _, err := a.Cancel(context.Background(), middleware.GlobalScope(), root); !errors.Is(err, middleware.ErrNothingPending) {
		t.Fatalf("second cancel: %v, want ErrNothingPending", err)
	}
}

func TestAdminRefusesBadActions(t *testing.T) {
	f := newFixture(t, nil)
	a := f.service(t)
	bob, _ := f.issue(t, middleware.Claims{Issuer: "https://idp.test", Subject: "bob", Tenant: "globex"})
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"an anonymous action is refused", func() error {
			_, err := a.TerminateAll(context.Background(), admin.Action{})
			return err
		}, middleware.ErrNoActor},
		{"an empty tenant is refused", func() error {
			_, err := a.TerminateTenant(context.Background(), "", root)
			return err
		}, middleware.ErrInvalidScope},
		{"keeping a session the scope does not cover is refused", func() error {
			act := root
			act.Keep = bob
			_, err := a.TerminateTenant(context.Background(), "acme", act)
			return err
		}, middleware.ErrKeepNotCovered},
		{"an announcement in the past is refused", func() error {
			act := root
			act.At = f.clock.Now().Add(-time.Minute)
			_, err := a.TerminateAll(context.Background(), act)
			return err
		}, middleware.ErrInvalidBump},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			fs, _, err := a.Fences(context.Background(), middleware.GlobalScope(), middleware.TenantScope("acme"))
			if err != nil || fs[0].Gen != 0 || fs[1].Gen != 0 || !fs[0].PendingAt.IsZero() {
				t.Fatalf("a refused action changed a fence: %+v %v", fs, err)
			}
		})
	}
}

func TestWatchClosesOnRevocation(t *testing.T) {
	f := newFixture(t, nil)
	a := f.service(t)
	s, _ := f.issue(t, alice)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.guard.Watch(ctx, s)
	if _, err := a.TerminateUser(context.Background(), "https://idp.test", "alice", root); err != nil {
		t.Fatal(err)
	}
	select {
	case d, ok := <-ch:
		if !ok || d.Kind != middleware.DecisionRevoked || d.Scope.Kind != middleware.ScopeSubject {
			t.Fatalf("watch gave %v (ok=%v)", d, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not report the revocation")
	}
}

func TestReloadMovesOnlyTheReloadGeneration(t *testing.T) {
	f := newFixture(t, nil)
	a := f.service(t)
	_, v := f.issue(t, alice)
	res, err := a.Reload(context.Background(), middleware.TenantScope("acme"), root)
	if err != nil || res.Fence.Reload != 1 || res.Fence.Gen != 0 || res.Entry.Action != "reload" {
		t.Fatalf("reload = %+v, %v", res, err)
	}
	if d := f.guard.Check(context.Background(), v); d.Kind != middleware.DecisionAllowed || !d.Reload {
		t.Fatalf("after reload: %v reload=%v", d, d.Reload)
	}
}

// TestKeptCookieNeverOutlivesALaterChange guards issue 10, break 1: a
// cookie kept through an announced termination records the generation
// that announcement reserved, and must never pass once a later change of
// the same scope has moved past it, whoever makes it.
func TestKeptCookieNeverOutlivesALaterChange(t *testing.T) {
	other := admin.Action{Actor: "https://idp.test|other-admin", Reason: "second admin"}
	tests := []struct {
		name  string
		scope middleware.Scope
		// then is what happens after alice announced the termination of
		// scope at +1h keeping her session.
		then func(t *testing.T, ctx context.Context, a *admin.Service, f *fixture, sc middleware.Scope)
	}{
		{"a later immediate revoke of the same scope ends it", middleware.GlobalScope(), func(t *testing.T, ctx context.Context, a *admin.Service, _ *fixture, sc middleware.Scope) {
			must(t)(a.Terminate(ctx, sc, other))
		}},
		{"another admin's immediate terminate-user ends it", middleware.SubjectScope("https://idp.test", "alice"), func(t *testing.T, ctx context.Context, a *admin.Service, _ *fixture, sc middleware.Scope) {
			must(t)(a.Terminate(ctx, sc, other))
		}},
		{"a cancel by another admin ends it", middleware.TenantScope("acme"), func(t *testing.T, ctx context.Context, a *admin.Service, _ *fixture, sc middleware.Scope) {
			must(t)(a.Cancel(ctx, sc, other))
		}},
		{"a cancel then a revoke still ends it", middleware.GlobalScope(), func(t *testing.T, ctx context.Context, a *admin.Service, _ *fixture, sc middleware.Scope) {
			must(t)(a.Cancel(ctx, sc, other))
			must(t)(a.Terminate(ctx, sc, other))
		}},
		{"a re-announcement for an earlier time ends it when that time comes", middleware.GlobalScope(), func(t *testing.T, ctx context.Context, a *admin.Service, f *fixture, sc middleware.Scope) {
			act := other
			act.At = f.clock.Now().Add(30 * time.Minute)
			must(t)(a.Terminate(ctx, sc, act))
			f.clock.Advance(31 * time.Minute)
		}},
		{"a revoke after the announcement took effect ends it", middleware.GlobalScope(), func(t *testing.T, ctx context.Context, a *admin.Service, f *fixture, sc middleware.Scope) {
			f.clock.Advance(61 * time.Minute)
			must(t)(a.Terminate(ctx, sc, other))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, nil)
			a := f.service(t)
			as, _ := f.issue(t, alice)
			act := root
			act.Keep, act.At = as, f.clock.Now().Add(time.Hour)
			res, err := a.Terminate(ctx, tt.scope, act)
			if err != nil || res.Cookie == nil {
				t.Fatalf("announce keeping alice: %+v, %v", res, err)
			}
			kept := res.Cookie.Value
			if d := f.guard.Check(ctx, kept); d.Kind != middleware.DecisionAllowed {
				t.Fatalf("kept cookie right after the announcement: %v", d)
			}
			tt.then(t, ctx, a, f, tt.scope)
			// The clock may have passed the access lifetime: a renewable
			// cookie passes as much as an allowed one.
			if d := f.guard.Check(ctx, kept); d.Kind != middleware.DecisionRevoked && d.Kind != middleware.DecisionReauthRequired {
				t.Fatalf("kept cookie is not refused after the later change: %v", d)
			}
		})
	}
}

// must turns an action's (result, error) into a fatal error.
func must(t *testing.T) func(admin.Result, error) {
	return func(_ admin.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewNeedsExactlyOneWriter(t *testing.T) {
	f := newFixture(t, nil)
	w, err := middleware.NewWriter(middleware.WriterConfig{Store: f.mem})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  admin.Config
	}{
		{"a config with neither a guard nor a writer is refused", admin.Config{}},
		{"a config with both a guard and a writer is refused", admin.Config{Guard: f.guard, Writer: w}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := admin.New(tt.cfg); !errors.Is(err, admin.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// A tool's Service (the CLI's) writes through a bare Writer: it has no
// cookie keys, so it keeps no one, and no lifetimes of its own, so the
// fences it writes last as long as the application's guards recorded.
func TestAServiceWithoutAGuard(t *testing.T) {
	ctx := context.Background()
	long := func(c *middleware.Config) { c.AbsoluteLifetime = 48 * time.Hour; c.AccessLifetime = 48 * time.Hour }
	newTool := func(t *testing.T, f *fixture) *admin.Service {
		t.Helper()
		w, err := middleware.NewWriter(middleware.WriterConfig{Store: f.mem, Now: f.clock.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := admin.New(admin.Config{Writer: w})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	t.Run("keeping a session is refused and changes nothing", func(t *testing.T) {
		f := newFixture(t, nil)
		tool := newTool(t, f)
		s, _ := f.issue(t, alice)
		act := root
		act.Keep = s
		if _, err := tool.TerminateAll(ctx, act); !errors.Is(err, middleware.ErrKeepUnsupported) {
			t.Fatalf("err = %v, want ErrKeepUnsupported", err)
		}
		if _, err := admin.NewAPI(tool, admin.APIConfig{}); !errors.Is(err, admin.ErrInvalidConfig) {
			t.Fatalf("NewAPI over a guardless Service: %v", err)
		}
		fs, _, err := tool.Fences(ctx, middleware.GlobalScope())
		if err != nil || fs[0].Gen != 0 {
			t.Fatalf("global fence after the refusal: %+v, %v", fs, err)
		}
	})
	for _, after := range []time.Duration{14 * time.Hour, 47 * time.Hour} {
		t.Run("a session it ended is still refused "+after.String()+" later, within the application's 48h lifetime", func(t *testing.T) {
			f := newFixture(t, long)
			s, v := f.issue(t, alice) // records the 48h lifetime in the store
			if _, err := newTool(t, f).TerminateSession(ctx, s.ID, root); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(after)
			if d := f.guard.Check(ctx, v); d.Kind != middleware.DecisionRevoked {
				t.Fatalf("after %v: %v, want revoked", after, d)
			}
		})
	}
}
