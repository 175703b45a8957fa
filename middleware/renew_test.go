package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// heldRenewer is a Renewer that tells the test it has started, then waits
// until the test lets it return err: the test acts (bumps a fence, stops
// the store) while a renewal is in flight, as a slow provider allows.
type heldRenewer struct {
	started chan struct{}
	release chan struct{}
	err     error
}

func newHeldRenewer(err error) *heldRenewer {
	return &heldRenewer{started: make(chan struct{}), release: make(chan struct{}), err: err}
}

func (r *heldRenewer) Renew(ctx context.Context, s *middleware.Session) error {
	close(r.started)
	<-r.release
	return r.err
}

// A renewal that started before a termination was acknowledged must not
// answer with a fresh cookie after it: the guard judges the session again
// once the renewer returns.
func TestRenewalInFlightDoesNotOutliveATermination(t *testing.T) {
	refused := fmt.Errorf("provider said invalid_grant: %w", middleware.ErrRenewalRefused)
	tests := []struct {
		name   string
		renew  error // what the renewer returns after the action
		action func(t *testing.T, f *fixture)
		kind   middleware.DecisionKind
		scope  middleware.ScopeKind
		policy middleware.Policy
	}{
		{
			name: "a subject revoked during the renewal is refused as revoked",
			action: func(t *testing.T, f *fixture) {
				f.bump(t, middleware.SubjectScope("https://idp.test", "alice"), revoke)
			},
			kind: middleware.DecisionRevoked, scope: middleware.ScopeSubject,
		},
		{
			name: "a terminate-all demanding a fresh login during the renewal asks for it",
			action: func(t *testing.T, f *fixture) {
				f.bump(t, middleware.GlobalScope(), middleware.Bump{Kind: middleware.BumpRevoke, Policy: middleware.PolicyFreshLogin})
			},
			kind: middleware.DecisionReauthRequired, scope: middleware.ScopeGlobal, policy: middleware.PolicyFreshLogin,
		},
		{
			name:   "a workspace terminated during the renewal is refused as revoked",
			action: func(t *testing.T, f *fixture) { f.bump(t, middleware.TenantScope("acme"), revoke) },
			kind:   middleware.DecisionRevoked, scope: middleware.ScopeTenant,
		},
		{
			name:   "a store lost during the renewal fails closed",
			action: func(t *testing.T, f *fixture) { f.store.down.Store(true) },
			kind:   middleware.DecisionStoreUnavailable,
		},
		{
			name:  "a renewal the provider refused after a revocation reports the revocation",
			renew: refused,
			action: func(t *testing.T, f *fixture) {
				f.bump(t, middleware.SubjectScope("https://idp.test", "alice"), revoke)
			},
			kind: middleware.DecisionRevoked, scope: middleware.ScopeSubject,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rn := newHeldRenewer(tt.renew)
			var onRevoked []middleware.Decision
			f := newFixture(t, func(c *middleware.Config) {
				c.Renewer = rn
				c.OnRevoked = func(_ context.Context, d middleware.Decision) { onRevoked = append(onRevoked, d) }
			})
			_, value := f.issue(t, alice)
			f.clock.Advance(6 * time.Minute)

			done := make(chan middleware.Decision, 1)
			go func() { done <- f.guard.Authenticate(context.Background(), value) }()
			<-rn.started
			tt.action(t, f)
			close(rn.release)
			d := <-done

			if d.Kind != tt.kind || d.Scope.Kind != tt.scope || d.Policy != tt.policy {
				t.Fatalf("decision = %v (scope %v, policy %v), want %v (scope %v, policy %v)",
					d, d.Scope.Kind, d.Policy, tt.kind, tt.scope, tt.policy)
			}
			if tt.kind == middleware.DecisionStoreUnavailable {
				if d.Cookie != nil || !errors.Is(d.Cause, middleware.ErrStoreUnavailable) {
					t.Fatalf("store outage: cookie %+v, cause %v; want no cookie and ErrStoreUnavailable", d.Cookie, d.Cause)
				}
				return
			}
			if d.Cookie == nil || d.Cookie.MaxAge != -1 {
				t.Fatalf("the refusal must clear the cookie, got %+v", d.Cookie)
			}
			if len(onRevoked) != 1 || onRevoked[0].Session == nil {
				t.Fatalf("OnRevoked calls = %v, want one with the session", onRevoked)
			}
			// Nothing renewed is remembered for late requests either.
			f.store.down.Store(false)
			if d := f.guard.Authenticate(context.Background(), value); d.Kind != tt.kind {
				t.Fatalf("the next request with the old cookie: %v, want %v", d, tt.kind)
			}
		})
	}
}

// CheckSession judges a session already opened, reading the store each
// time: the steps run in order on one session.
func TestCheckSessionReadsTheStoreEachTime(t *testing.T) {
	f := newFixture(t, nil)
	s, _ := f.issue(t, alice)
	steps := []struct {
		name    string
		before  func()
		session *middleware.Session
		kind    middleware.DecisionKind
	}{
		{"a fresh session is allowed", func() {}, s, middleware.DecisionAllowed},
		{"a bump of its own fence revokes it", func() { f.bump(t, middleware.SessionScope(s.ID), revoke) }, s, middleware.DecisionRevoked},
		{"past the absolute lifetime it has expired", func() { f.clock.Advance(13 * time.Hour) }, s, middleware.DecisionSessionExpired},
		{"no session is no session", func() {}, nil, middleware.DecisionNoSession},
	}
	for _, st := range steps {
		st.before()
		d := f.guard.CheckSession(context.Background(), st.session)
		if d.Kind != st.kind {
			t.Fatalf("%s: decision %v, want %v", st.name, d, st.kind)
		}
		if st.session != nil && d.Session == st.session {
			t.Fatalf("%s: the decision shares the caller's session; want a copy", st.name)
		}
	}
}
