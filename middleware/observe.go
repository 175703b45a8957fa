package middleware

import (
	"errors"
	"time"
)

// Observer receives counts and timings for metrics: one call per decision,
// per fence change made through a [Writer], and per store operation. The
// core stays dependency-free; metrics/prom implements
// it on Prometheus' client library, and any other system can be plugged in
// the same way.
//
// Implementations must be safe for concurrent use and fast: Decision and
// StoreLatency run on every request, on the hot path. They must not block
// and must not panic. Values passed are bounded sets (the kinds below and
// op names chosen by this module), so they are safe as metric labels.
//
// The interface does not grow: further reports come as separate optional
// interfaces, found by type assertion ([BackchannelObserver],
// [CacheObserver]), so an implementation written today stays one.
type Observer interface {
	// Decision reports one decision of Guard.Authenticate or
	// Guard.CheckToken: its kind, the refusing scope for revoked and
	// reauth_required (0 otherwise), and whether the fences came from
	// the bounded-staleness cache.
	Decision(kind DecisionKind, scope ScopeKind, stale bool)
	// Bump reports one successful fence change: kind is
	// [BumpKind.String] ("revoke", "announce", "cancel", "reload").
	Bump(kind string, scope ScopeKind)
	// StoreError reports a store operation that failed because the store
	// could not be reached or trusted (an error wrapping
	// [ErrStoreUnavailable]); refusals such as [ErrNothingPending] are
	// not store errors. op is one of the StoreOp constants.
	StoreError(op string)
	// StoreLatency reports how long a store operation took, failed or
	// not; op is one of the StoreOp constants.
	StoreLatency(op string, d time.Duration)
}

// BackchannelObserver is an optional ability of an [Observer]: the
// back-channel logout receiver reports each request's outcome through it
// ("applied", "replay", "rejected:<code>" and so on, a bounded set the
// receiver documents).
type BackchannelObserver interface {
	Backchannel(result string)
}

// CacheObserver is an optional ability of an [Observer]: a store that can
// tell whether a fence read was answered from its client-side cache (the
// Valkey store can, per read) reports each read, so the hit ratio can be
// graphed.
type CacheObserver interface {
	CacheLookup(hit bool)
}

// Store operation names passed to [Observer.StoreError] and
// [Observer.StoreLatency].
const (
	// StoreOpFences is the batched fence read of every request (and of
	// logins).
	StoreOpFences = "fences"
	// StoreOpBump is one fence change.
	StoreOpBump = "bump"
	// StoreOpAudit is an audit log append or read.
	StoreOpAudit = "audit"
	// StoreOpRegistry is a session registry update, count or listing.
	StoreOpRegistry = "registry"
)

var bumpKindNames = [...]string{"", "revoke", "announce", "cancel", "reload"}

// String returns "revoke", "announce", "cancel" or "reload", the names
// used in metrics; "unknown" for any other value.
func (k BumpKind) String() string {
	if int(k) < len(bumpKindNames) && k != 0 {
		return bumpKindNames[k]
	}
	return "unknown"
}

// The helpers below are how the guard and the fence writer call an
// optional Observer; each is a no-op for a nil one, so the hot path pays
// one comparison when metrics are off.

// observeStart returns the start time of a timed store operation, or the
// zero time when o is nil (saving the clock read).
func observeStart(o Observer) time.Time {
	if o == nil {
		return time.Time{}
	}
	return time.Now()
}

// observeStore reports the latency, and the failure if the store could
// not be reached, of a store operation started at start (from
// observeStart).
func observeStore(o Observer, op string, start time.Time, err error) {
	if o == nil {
		return
	}
	o.StoreLatency(op, time.Since(start))
	if err != nil && errors.Is(err, ErrStoreUnavailable) {
		o.StoreError(op)
	}
}

// observeDecision reports d. The scope is reported only for the kinds a
// scope refused; other kinds report 0 so the label set stays small.
func observeDecision(o Observer, d Decision) {
	if o == nil {
		return
	}
	var scope ScopeKind
	if d.Kind == DecisionRevoked || d.Kind == DecisionReauthRequired {
		scope = d.Scope.Kind
	}
	o.Decision(d.Kind, scope, d.Stale)
}

// observeBump reports a successful fence change.
func observeBump(o Observer, kind BumpKind, scope ScopeKind) {
	if o == nil {
		return
	}
	o.Bump(kind.String(), scope)
}
