package middleware

import (
	"context"
	"sync"
	"time"
)

// watchPoll is how often a watched session is re-checked when nothing
// signals a change: the safety net for changes a store cannot announce (a
// wiped store publishes nothing) and for stores without [Watcher].
const watchPoll = 15 * time.Second

// Watch follows session s for a long-lived response (SSE, WebSocket): the
// returned channel receives the refusing decision and is closed as soon as
// the session stops being allowed (revoked anywhere, expired, or the store
// unreachable under the failure policy), or is closed without a value when
// ctx ends. With a store that implements [Watcher] the re-check happens
// when the store announces a change, so an open stream ends within the same
// bound as ordinary requests; otherwise every few seconds.
//
// The access part expiring does not end a stream: only revocation and the
// absolute lifetime do. Watch shares one store subscription among all the
// guard's watchers.
func (g *Guard) Watch(ctx context.Context, s *Session) <-chan Decision {
	out := make(chan Decision, 1)
	hub := g.watchHub()
	go func() {
		defer close(out)
		for {
			// Take the signal before checking, so a change that lands
			// during the check is not missed.
			changed := hub.signal()
			d := g.CheckSession(ctx, s)
			if ctx.Err() != nil {
				return
			}
			switch d.Kind {
			case DecisionAllowed, DecisionAccessExpired:
			default:
				out <- d
				return
			}
			wait := watchPoll
			now := g.now()
			if until := s.AbsoluteExpiry.Sub(now); until < wait {
				wait = until
			}
			if d.Notice != nil {
				if until := d.Notice.At.Sub(now); until < wait {
					wait = until
				}
			}
			t := time.NewTimer(max(wait, time.Millisecond))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-changed:
			case <-t.C:
			}
			t.Stop()
		}
	}()
	return out
}

// hub fans one store subscription out to every watcher: a change closes
// the current channel and installs a fresh one.
type hub struct {
	mu sync.Mutex
	ch chan struct{}
}

func (h *hub) signal() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ch
}

func (h *hub) notify() {
	h.mu.Lock()
	close(h.ch)
	h.ch = make(chan struct{})
	h.mu.Unlock()
}

// watchSubscribeTimeout bounds the wait for the store to confirm the
// shared subscription.
const watchSubscribeTimeout = 5 * time.Second

func (g *Guard) watchHub() *hub {
	g.hubMu.Lock()
	defer g.hubMu.Unlock()
	if g.hub == nil {
		g.hub = &hub{ch: make(chan struct{})}
	}
	w, ok := g.cfg.Store.(Watcher)
	if !ok || g.hubSubscribed {
		return g.hub
	}
	// The subscription lives as long as the guard: it is shared by every
	// watcher and costs one connection at most. A failure is retried by
	// the next Watch; meanwhile watchers fall back to polling.
	ctx, cancel := context.WithTimeout(context.Background(), watchSubscribeTimeout)
	defer cancel()
	if _, err := w.Watch(ctx, g.hub.notify); err != nil {
		g.log.Warn("sessionfence: store watch unavailable; live connections poll until it is", "cause", err.Error())
		return g.hub
	}
	g.hubSubscribed = true
	return g.hub
}
