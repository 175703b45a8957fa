package middleware_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// readSignal wraps a store and signals each fence read, so a test knows a
// watcher has taken its first look before it moves the clock. Embedding
// the Store interface hides any Watcher ability: a watcher over it can
// only wake on its own timer.
type readSignal struct {
	middleware.Store
	reads chan struct{}
}

func (s *readSignal) Fences(ctx context.Context, scopes []middleware.Scope, dst []middleware.Fence) (middleware.Version, error) {
	select {
	case s.reads <- struct{}{}:
	default:
	}
	return s.Store.Fences(ctx, scopes, dst)
}

// A watched stream must not outlive the access part of its session: the
// client reconnects through the middleware, which renews (asking the
// provider) or refuses.
func TestWatchEndsTheStreamWhenTheAccessPartExpires(t *testing.T) {
	tests := []struct {
		name string
		// poll hides the store's Watcher: only the watcher's timer wakes it.
		poll bool
		// lead is how long before the access expiry the watch starts.
		lead time.Duration
		// wake runs after the clock passed the access expiry.
		wake func(t *testing.T, f *fixture)
	}{
		{
			name: "the watcher's timer wakes it at the access expiry", poll: true, lead: 50 * time.Millisecond,
			wake: func(*testing.T, *fixture) {},
		},
		{
			name: "a store change after the access expiry ends it", lead: time.Minute,
			wake: func(t *testing.T, f *fixture) { f.bump(t, middleware.TenantScope("elsewhere"), revoke) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reads := make(chan struct{}, 1)
			f := newFixture(t, func(c *middleware.Config) {
				if tt.poll {
					c.Store = &readSignal{Store: c.Store, reads: reads}
				}
			})
			s, _ := f.issue(t, alice)
			f.clock.Advance(s.AccessExpiry.Sub(f.clock.Now()) - tt.lead)
			select { // the issue's own read
			case <-reads:
			default:
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch := f.guard.Watch(ctx, s)
			if tt.poll {
				<-reads // the watcher has read the clock and the fences once
			}
			f.clock.Advance(tt.lead)
			tt.wake(t, f)

			select {
			case d, ok := <-ch:
				if !ok || d.Kind != middleware.DecisionAccessExpired || d.Session == nil || d.Session.ID != s.ID {
					t.Fatalf("watch gave %v (ok=%v), want access_expired for the session", d, ok)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the stream outlived the access part of its session")
			}
			if _, ok := <-ch; ok {
				t.Fatal("the channel stayed open after the access expiry")
			}
		})
	}
}
