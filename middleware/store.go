package middleware

import (
	"context"
	"errors"
	"time"
)

// Store holds the fences and the store epoch shared by every instance of an
// application. Implementations must be safe for concurrent use. The package
// ships two: memstore (one process) and valkeystore (many instances). The
// conformance suite in middleware/storetest states the contract as tests;
// run it against any new implementation.
//
// The contract:
//
//   - Fences reads the fences of scopes into dst (len(dst) >= len(scopes))
//     together with the current [Version] (epoch and bump sequence
//     number), as one consistent read where the implementation can. A scope never written (or expired) reads as the
//     zero Fence, not an error. Scopes that are not [Scope.Valid] are
//     never passed. The epoch is created on first use if absent, so after
//     the data is wiped the next read returns a different epoch.
//     Fences is the hot path: it must not make a network round trip in
//     steady state, and must not allocate per scope. When the
//     implementation cannot confirm the values are current (connection
//     lost, cache untrusted) it returns an error wrapping
//     [ErrStoreUnavailable] rather than old values. Reads through one
//     Store value never go back: a read that starts after another
//     returned sees the same Version or a later one while the data
//     survives.
//   - Bump applies one change to one fence atomically, following
//     [ApplyBump] with the store's own clock (never the caller's), and
//     returns the resulting fence. Concurrent bumps from any number of
//     clients never lose an increment. A positive Bump.TTL makes the fence
//     expire that long after the write; otherwise it is kept for ever.
//     A successful Bump is visible to every later Fences call on the same
//     Store value; other clients see it within the store's propagation
//     bound (documented by each implementation). Every successful Bump
//     advances the Version's Seq, atomically with the fence.
//   - Epoch returns the current epoch, creating it if absent. An epoch is
//     random, never reused, stable across reconnects and process restarts
//     while the data survives, and different after the data is lost.
//
// Errors: every error caused by the backing service wraps
// [ErrStoreUnavailable]; invalid arguments return [ErrInvalidBump] or
// [ErrNothingPending].
type Store interface {
	Fences(ctx context.Context, scopes []Scope, dst []Fence) (Version, error)
	Bump(ctx context.Context, scope Scope, b Bump) (Fence, error)
	Epoch(ctx context.Context) (string, error)
}

// Version is what one read saw of a store's data as a whole.
type Version struct {
	// Epoch is the store epoch: random, made when the data is created, and
	// different after the data is lost.
	Epoch string
	// Seq counts the fence changes applied under Epoch. It never goes back
	// while the data survives, so a store that answers with a smaller Seq
	// than it did before under the same Epoch has lost acknowledged writes
	// (restored from an older snapshot, or failed over to a replica that
	// had not received them): see [ErrStoreRolledBack].
	Seq uint64
}

// EpochRotator is an optional ability of a store: replacing the epoch on
// purpose. The guard does it when it finds the store answering older than
// before (see [Version]): every session issued under the old epoch then
// fails closed on every instance, as after a wipe, because the fences that
// would have refused some of them may be lost.
type EpochRotator interface {
	// RotateEpoch replaces the epoch with a new one if it is still from
	// and the store's own sequence number under it (read at the source,
	// never from a cache) is below seen, atomically: the store really has
	// lost writes that a witness saw. Otherwise nothing changes: a reader
	// whose cache lags another instance's bump is not a rollback. It
	// returns the epoch in force afterwards: from when nothing changed,
	// else the new one (or the one another caller already replaced from
	// with). Errors wrap [ErrStoreUnavailable].
	RotateEpoch(ctx context.Context, from string, seen uint64) (string, error)
}

// Clock is an optional ability of a store: the store's current time, used
// to stamp tokens and judge announcements against the same clock that
// stamps fences. Stores that lack it are assumed to share the application's
// clock.
type Clock interface {
	Now(ctx context.Context) (time.Time, error)
}

// Watcher is an optional ability of a store: it calls fn (from another
// goroutine) whenever any fence may have changed, as soon as the store
// learns of it. Long-lived connections use it to notice a revocation
// without polling. The returned stop function releases the watch; fn is not
// called after stop returns. fn must not block.
type Watcher interface {
	Watch(ctx context.Context, fn func()) (stop func(), err error)
}

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrStoreUnavailable wraps every failure to reach or trust the store.
	// The guard fails closed on it unless bounded staleness is configured.
	ErrStoreUnavailable = errors.New("sessionfence: store unavailable")
	// ErrInvalidBump reports a malformed bump: unknown kind or policy, an
	// announcement whose time is not in the future, a negative TTL.
	ErrInvalidBump = errors.New("sessionfence: invalid bump")
	// ErrNothingPending reports a cancel when no announced termination is
	// pending (none was announced, or its time has come).
	ErrNothingPending = errors.New("sessionfence: no pending termination to cancel")
	// ErrInvalidScope reports a scope that is not [Scope.Valid].
	ErrInvalidScope = errors.New("sessionfence: invalid scope")
	// ErrStoreRolledBack is the cause of decisions and errors when the
	// store answered with an older [Version] than this guard, or a
	// session's cookie, had already seen: acknowledged revocations may be
	// lost. The guard fails closed and rotates the epoch (see
	// [EpochRotator]), so every session must log in again.
	ErrStoreRolledBack = errors.New("sessionfence: the store went back in time (acknowledged writes lost)")
)

// Replay is an optional ability of a store: it remembers one-time
// identifiers (a logout token's iss and jti) across every instance.
type Replay interface {
	// Remember records id until ttl has passed. first is true for the
	// first call with id, false for every later one while it is
	// remembered; two concurrent calls with the same id never both get
	// true. Errors wrap ErrStoreUnavailable.
	Remember(ctx context.Context, id string, ttl time.Duration) (first bool, err error)
}

// Secrets is an optional ability of a store: small values kept server side
// per key, for what must never reach the browser, such as refresh tokens.
// Callers seal values before storing them, so a leaked store reveals
// nothing usable.
type Secrets interface {
	// PutSecret stores value under key for ttl (positive), replacing any
	// previous value.
	PutSecret(ctx context.Context, key, value string, ttl time.Duration) error
	// Secret returns the value under key; ok is false when there is none
	// (never written, deleted or expired).
	Secret(ctx context.Context, key string) (value string, ok bool, err error)
	// DeleteSecret removes key; deleting a missing key is not an error.
	DeleteSecret(ctx context.Context, key string) error
}

// Locker is an optional ability of a store: short leases that serialise
// work across instances, such as redeeming a rotating refresh token once.
type Locker interface {
	// TryLock takes the lease name for at most ttl. ok is false when
	// another holder has it. unlock releases it only if it is still ours
	// (a lease that expired and was taken by someone else is left alone).
	TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error)
}
