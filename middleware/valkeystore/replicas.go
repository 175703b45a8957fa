package valkeystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
)

// DefaultWaitTimeout is how long a fence change waits for replicas when
// Config.WaitReplicas is positive and Config.WaitTimeout is zero.
const DefaultWaitTimeout = time.Second

// ErrNotReplicated reports a fence change (a bump or an epoch rotation)
// that the primary applied but that fewer than Config.WaitReplicas
// replicas acknowledged within Config.WaitTimeout. It always comes
// wrapped together with [middleware.ErrStoreUnavailable], and with the
// result of the change: the change is in force on the primary, and a
// failover now could lose it.
var ErrNotReplicated = errors.New("valkeystore: applied on the primary but not acknowledged by the configured number of replicas")

// writeScript is a Lua script that changes what sessions are judged by
// (the bump and the epoch rotation). Fence changes are the writes a
// failover must not lose, so they, and only they, may wait for replicas
// (see [Store.write]).
type writeScript struct {
	lua *valkey.Lua
	src string
}

// newWriteScript prepares src. retryable says that running it twice is
// the same as running it once, so valkey-go may resend it after a
// connection error (when the store does not wait for replicas).
func newWriteScript(src string, retryable bool) *writeScript {
	w := &writeScript{src: src}
	if retryable {
		w.lua = valkey.NewLuaScriptRetryable(src)
	} else {
		w.lua = valkey.NewLuaScript(src)
	}
	return w
}

// write runs w. Without Config.WaitReplicas it is w's Exec (EVALSHA,
// falling back to EVAL). With it, the script (EVAL) is followed by
// WAIT numreplicas timeout, and repl is nil only when enough replicas
// acknowledged; otherwise it wraps [ErrNotReplicated] and
// [middleware.ErrStoreUnavailable]. repl is nil whenever the script
// itself failed (res then carries the error).
//
// Why DoMulti: WAIT counts the replicas that acknowledged the last write
// made on the connection it is sent on. valkey-go spreads commands over
// several pipelined connections, so a separate Do(WAIT) could land on a
// connection that wrote nothing and return at once, acknowledging nothing.
// DoMulti sends its commands in order on one connection; since WAIT is a
// blocking command, valkey-go runs the whole batch on a connection it
// takes from a pool for that batch alone, so the wait blocks no other
// caller (in a cluster the keyless WAIT goes with the script to the node
// of the store's slot).
// client.Dedicated would give the same guarantee, but Lua.Exec does not
// accept a DedicatedClient, so the script command is built here either way.
//
// The batch sends the script in full (EVAL, not EVALSHA): after a NOSCRIPT
// answer the fallback would need a second batch, hence a second WAIT, and
// the call could wait twice WaitTimeout. Fence changes are rare; a few
// kilobytes more per change do not matter.
//
// The batch is never retried by valkey-go (its commands are not marked
// retryable): a WAIT resent on a new connection after an error would
// count acknowledgements of nothing.
func (s *Store) write(ctx context.Context, w *writeScript, keys, args []string) (res valkey.ValkeyResult, repl error) {
	if s.waitReplicas == 0 {
		return w.lua.Exec(ctx, s.client, keys, args), nil
	}
	// WAIT's timeout is in milliseconds, and 0 would block for ever: round
	// up.
	ms := max(1, int64((s.waitTimeout+time.Millisecond-1)/time.Millisecond))
	b := s.client.B()
	rs := s.client.DoMulti(ctx,
		b.Eval().Script(w.src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build(),
		b.Wait().Numreplicas(int64(s.waitReplicas)).Timeout(ms).Build())
	if rs[0].Error() != nil {
		return rs[0], nil
	}
	return rs[0], s.replicated(rs[1])
}

// replicated reads WAIT's reply: nil when at least Config.WaitReplicas
// replicas acknowledged the write.
func (s *Store) replicated(r valkey.ValkeyResult) error {
	n, err := r.AsInt64()
	if err != nil {
		return fmt.Errorf("%w: %w: WAIT failed: %w", ErrNotReplicated, middleware.ErrStoreUnavailable, err)
	}
	if n < int64(s.waitReplicas) {
		return fmt.Errorf("%w: %w: %d of %d replicas acknowledged within %v", ErrNotReplicated, middleware.ErrStoreUnavailable, n, s.waitReplicas, s.waitTimeout)
	}
	return nil
}

// writeContext is opContext for a fence change: the store's timeout, plus
// WaitTimeout when it waits for replicas, so that a wait that runs its
// course is answered rather than cut off by the deadline (which would
// leave the outcome unknown).
func (s *Store) writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return boundContext(ctx, s.timeout+s.waitTimeout)
}
