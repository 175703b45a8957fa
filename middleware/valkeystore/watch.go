package valkeystore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
)

// watchState is the one subscription a Store shares between all its
// watchers, started by the first Watch and ended by Close.
//
// Two goroutines: the receiver runs client.Receive (SUBSCRIBE to the
// store's channel) and resubscribes after failures; the dispatcher calls
// the watch functions. They talk through kick, a one-slot channel, so a
// burst of notifications collapses into one round of calls and the
// receiver, which runs on valkey-go's connection, never waits for a
// watcher.
type watchState struct {
	mu       sync.Mutex
	started  bool
	closed   bool
	ready    chan struct{} // closed at the first subscription confirmation
	life     context.Context
	cancel   context.CancelFunc
	done     sync.WaitGroup
	watchers []*watcher

	kick chan struct{}
	seq  atomic.Int64 // highest bump sequence number announced
}

// watcher is one registration made by Store.Watch.
type watcher struct {
	// mu serialises calls of fn with stop, so that fn is never running or
	// started once stop has returned.
	mu      sync.Mutex
	fn      func()
	stopped bool
}

func (w *watcher) call() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.fn()
	}
}

var (
	errNilWatch = errors.New("valkeystore: Watch needs a non-nil function")
	errClosed   = errors.New("valkeystore: store closed")
)

// Watch implements [middleware.Watcher]. The first call subscribes to the
// store's channel ("<prefix>changed"), on which every bump publishes; fn
// is then called, from a goroutine of the store, after each bump made by
// any client of the same prefix, and also whenever the subscription was
// interrupted (messages may have been missed, so any fence may have
// changed). Bursts may be merged into one call. Calls for one registration
// never overlap.
//
// Watch returns once the subscription is confirmed by the server, so a
// bump made after Watch returns is always heard. ctx bounds only that
// wait (the store's timeout when ctx has no deadline); the
// watch lasts until stop is called. fn must not block, and must not call
// stop (stop waits for a running fn). fn is not called once stop has
// returned.
//
// Errors wrap [middleware.ErrStoreUnavailable] when the subscription
// cannot be confirmed in time, or after [Store.Close].
func (s *Store) Watch(ctx context.Context, fn func()) (stop func(), err error) {
	if fn == nil {
		return nil, errNilWatch
	}
	w := &watcher{fn: fn}
	ws := &s.watch
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		return nil, fmt.Errorf("valkeystore: watch: %w: %w", middleware.ErrStoreUnavailable, errClosed)
	}
	if !ws.started {
		ws.start(s)
	}
	ws.watchers = append(ws.watchers, w)
	ready, life := ws.ready, ws.life
	ws.mu.Unlock()

	stop = func() {
		w.mu.Lock()
		w.stopped = true
		w.mu.Unlock()
		ws.mu.Lock()
		ws.watchers = slices.DeleteFunc(ws.watchers, func(x *watcher) bool { return x == w })
		ws.mu.Unlock()
	}
	// A deadline the caller chose is kept even when it is longer than the
	// store's per-operation timeout: a subscription is set up once, and a
	// loaded server may take longer to confirm it than to answer a read.
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = s.opContext(ctx)
	}
	defer cancel()
	select {
	case <-ready:
		return stop, nil
	case <-life.Done():
		stop()
		return nil, fmt.Errorf("valkeystore: watch: %w: %w", middleware.ErrStoreUnavailable, errClosed)
	case <-ctx.Done():
		stop()
		return nil, unavailable("watch: subscribe to "+s.channel, ctx.Err())
	}
}

// start launches the receiver and the dispatcher. ws.mu must be held.
func (ws *watchState) start(s *Store) {
	ws.started = true
	ws.ready = make(chan struct{})
	ws.kick = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	ws.life, ws.cancel = ctx, cancel
	ws.done.Add(2)
	go ws.receive(ctx, s)
	go ws.dispatch(ctx, s)
}

// notify asks the dispatcher for a round of calls without ever blocking.
func (ws *watchState) notify() {
	select {
	case ws.kick <- struct{}{}:
	default: // a round is already due and will see this change too
	}
}

// receive keeps the subscription alive until ctx ends.
func (ws *watchState) receive(ctx context.Context, s *Store) {
	defer ws.done.Done()
	var readyOnce sync.Once
	// The hook runs on valkey-go's connection goroutine at every
	// subscription confirmation, including resubscriptions after a
	// reconnect, when messages may have been lost.
	hookCtx := valkey.WithOnSubscriptionHook(ctx, func(sub valkey.PubSubSubscription) {
		if sub.Kind != "subscribe" {
			return
		}
		first := false
		readyOnce.Do(func() { first = true; close(ws.ready) })
		if !first {
			ws.notify()
		}
	})
	// This hook runs each time the subscription on one connection ends,
	// before valkey-go retries on another (which Receive does not report).
	// A subscription that ended while the store is open may have missed
	// messages: tell the watchers. When the store is closed, unsubscribe
	// on that connection, which other users of the caller's client keep
	// using.
	hookCtx = valkey.WithOnReceiveReturnHook(hookCtx, func(err error, c valkey.CommandClient) error {
		if ctx.Err() == nil {
			ws.notify()
			return err
		}
		uctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		_ = c.Do(uctx, c.B().Unsubscribe().Channel(s.channel).Build()).Error()
		return err
	})
	backoff := 50 * time.Millisecond
	for {
		err := s.client.Receive(hookCtx, s.client.B().Subscribe().Channel(s.channel).Build(), func(m valkey.PubSubMessage) {
			// The payload starts with the bump's sequence number: the
			// dispatcher waits until this client's cache has dropped
			// what that bump changed before telling the watchers.
			if sp := strings.IndexByte(m.Message, ' '); sp > 0 {
				if n, err := strconv.ParseInt(m.Message[:sp], 10, 64); err == nil {
					ws.raiseSeq(n)
				}
			}
			ws.notify()
		})
		if ctx.Err() != nil {
			return
		}
		// The subscription ended: whatever was published meanwhile is
		// lost, so tell the watchers to look. When the client was closed
		// by its owner there is nothing to resubscribe to.
		ws.notify()
		if errors.Is(err, valkey.ErrClosing) {
			return
		}
		if err == nil {
			backoff = 50 * time.Millisecond // unsubscribed by someone: resubscribe now-ish
		}
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// raiseSeq records the highest bump sequence number announced so far.
func (ws *watchState) raiseSeq(n int64) {
	for {
		cur := ws.seq.Load()
		if n <= cur || ws.seq.CompareAndSwap(cur, n) {
			return
		}
	}
}

// dispatch calls every current watcher once per round.
//
// The notification arrives on the subscription's connection, while the
// cache invalidations of the same bump arrive on the connection that reads
// fences; nothing orders the two. A watcher that re-read its fences at once
// could still see the old values, conclude nothing changed and wait for
// the next notification. So each round first waits (bounded by the store's
// timeout) until this client's cache shows the announced sequence number,
// which proves the bump's invalidations have been applied: the same check
// Bump makes for its own writes.
func (ws *watchState) dispatch(ctx context.Context, s *Store) {
	defer ws.done.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ws.kick:
		}
		if seq := ws.seq.Load(); seq > 0 {
			wctx, cancel := context.WithTimeout(ctx, s.timeout)
			_ = s.awaitOwnInvalidation(wctx, "", seq) // on timeout, tell the watchers anyway
			cancel()
		}
		ws.mu.Lock()
		list := slices.Clone(ws.watchers)
		ws.mu.Unlock()
		for _, w := range list {
			w.call()
		}
	}
}

// close ends the subscription and waits for both goroutines.
func (ws *watchState) close() {
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		return
	}
	ws.closed = true
	cancel := ws.cancel
	ws.mu.Unlock()
	if cancel != nil {
		cancel()
		ws.done.Wait()
	}
}
