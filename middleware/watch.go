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
// returned channel receives the decision that ends the stream and is then
// closed, or is closed without a value when ctx ends. A stream ends:
//
//   - when the session stops being allowed (revoked anywhere, past its
//     absolute lifetime, or the store unreachable under the failure
//     policy): the refusing decision. With a store that implements
//     [Watcher] the re-check happens when the store announces a change, so
//     an open stream ends within the same bound as ordinary requests;
//     otherwise every few seconds.
//   - when the access part of s expires (s.AccessExpiry): a Decision of
//     kind [DecisionAccessExpired]. A stream lives no longer than a
//     request could, so that the client reconnects through the middleware,
//     which renews the session (asking the provider, whose own revocations
//     and account locks then apply) or refuses it. Close the response
//     without telling the client to sign in: its reconnection carries the
//     cookie and is renewed as any request is. Pass the session of the
//     request serving the stream ([FromContext]), whose access part the
//     middleware has just renewed when needed.
//
// Watch shares one store subscription among all the guard's watchers. Its
// goroutine ends with the stream.
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
			if d.Kind != DecisionAllowed {
				out <- d
				return
			}
			// Wake at the next moment the answer can change by itself:
			// the access or absolute expiry, an announced termination,
			// or the safety-net poll.
			now := g.now()
			wait := min(watchPoll, s.AccessExpiry.Sub(now), s.AbsoluteExpiry.Sub(now))
			if d.Notice != nil {
				wait = min(wait, d.Notice.At.Sub(now))
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
