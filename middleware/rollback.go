package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
)

// Rollback detection.
//
// A store restored from an older snapshot (or failed over to a replica that
// had not received the last writes) keeps its epoch but has forgotten the
// latest bumps: revoked sessions would pass again and nothing would say so.
// Every bump advances the store's sequence number (Version.Seq), so such a
// store answers with a smaller Seq than before. Two witnesses remember what
// was seen:
//
//   - each guard keeps the highest Seq it has read under the current epoch
//     (watermark below): every instance that served a request after a bump
//     knows it happened;
//   - each session cookie records the Seq of the read it was issued or last
//     renewed under: even when every instance restarted with the store, the
//     first returning user whose session is newer than the snapshot gives
//     the loss away.
//
// Either way the guard fails closed and rotates the epoch, so every session
// must log in again: that is the one answer that cannot let a revoked
// session through, since which revocations were lost is unknowable.

// watermark is the highest version a guard has read.
type watermark struct {
	epoch string
	seq   uint64
}

// marks holds the guard's watermark. The hot path does one atomic load and
// two comparisons; it writes only when Seq moved (a bump happened).
type marks struct{ p atomic.Pointer[watermark] }

// observe records v and reports whether it is older than what was already
// seen: a smaller Seq under the same epoch, or an epoch created before the
// newest one seen (data from before that epoch's replacement came back, as
// when a backup is restored after a wipe). It returns what was seen: the
// Seq, and the epoch when the epoch went back.
func (m *marks) observe(v Version) (regressed bool, seen uint64, newer string) {
	for {
		w := m.p.Load()
		if w != nil {
			if w.epoch == v.Epoch {
				if v.Seq < w.seq {
					return true, w.seq, ""
				}
				if v.Seq == w.seq {
					return false, 0, ""
				}
			} else if epochBefore(v.Epoch, w.epoch) {
				return true, math.MaxUint64, w.epoch
			}
		}
		// A later Seq, or a newer epoch (a wipe or a rotation: sessions of
		// the old one fail on the epoch check).
		if m.p.CompareAndSwap(w, &watermark{epoch: v.Epoch, seq: v.Seq}) {
			return false, 0, ""
		}
	}
}

// epochBefore reports whether epoch a was created before epoch b, both
// made by [NewEpoch] (on the store's clock); false when either has no
// creation time.
func epochBefore(a, b string) bool {
	ta, ok1 := EpochTime(a)
	tb, ok2 := EpochTime(b)
	return ok1 && ok2 && ta.Before(tb)
}

// errRotated marks a rollback the guard answered by rotating the epoch:
// decisions become Revoked with ScopeEpoch rather than StoreUnavailable.
var errRotated = errors.New("sessionfence: epoch rotated")

// rollback handles a read that answered v although the witness had seen
// more: seen bumps under v.Epoch, or (newer != "") the later epoch newer
// and seen = MaxUint64. It asks the store to rotate the epoch if the store
// itself (not this instance's cache) is behind. It returns nil when the
// store is not behind: this instance only lags another's write (a cookie
// sealed on an instance that already read it), within the propagation
// bound, and the read stands. Otherwise an error wrapping
// ErrStoreRolledBack: with errRotated when every session of the old epoch
// is now refused, else also wrapping ErrStoreUnavailable (fail closed
// until an operator acts).
func (g *Guard) rollback(ctx context.Context, v Version, seen uint64, newer string) error {
	what := fmt.Sprintf("seq %d < %d", v.Seq, seen)
	if newer != "" {
		what = "epoch " + v.Epoch + " is older than " + newer
	}
	r, ok := g.cfg.Store.(EpochRotator)
	if !ok {
		g.log.ErrorContext(ctx, "sessionfence: the store answered older than already seen and cannot rotate its epoch; failing closed",
			"epoch", v.Epoch, "seq", v.Seq, "seen", what)
		return fmt.Errorf("%w: %w: the store cannot rotate its epoch (%s)", ErrStoreUnavailable, ErrStoreRolledBack, what)
	}
	e, err := r.RotateEpoch(ctx, v.Epoch, seen)
	if err != nil {
		if !errors.Is(err, ErrStoreUnavailable) {
			err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		}
		g.log.ErrorContext(ctx, "sessionfence: the store may have gone back in time and the epoch could not be rotated; failing closed",
			"epoch", v.Epoch, "seq", v.Seq, "seen", what, "cause", err.Error())
		return fmt.Errorf("%w: rotating the epoch: %w", ErrStoreRolledBack, err)
	}
	if e == v.Epoch || (newer != "" && e == newer) {
		// The store is at or past what was seen: our read came from a
		// cache that has not yet received another instance's write.
		return nil
	}
	g.log.ErrorContext(ctx, "sessionfence: the store answered older than already seen; acknowledged revocations may be lost, so every session must log in again",
		"epoch", v.Epoch, "seq", v.Seq, "seen", what)
	g.log.ErrorContext(ctx, "sessionfence: store epoch rotated after a rollback", "old", v.Epoch, "new", e)
	// The new epoch is where this instance stands now, whatever its
	// creation time says.
	g.marks.p.Store(&watermark{epoch: e})
	return fmt.Errorf("%w (%s): %w", ErrStoreRolledBack, what, errRotated)
}

// failed sets d to the decision for a read error: Revoked by the epoch when
// a rollback rotated it, StoreUnavailable otherwise.
func failed(d *Decision, err error) {
	d.Cause = err
	if errors.Is(err, errRotated) {
		d.Kind, d.Scope = DecisionRevoked, Scope{Kind: ScopeEpoch}
		return
	}
	d.Kind = DecisionStoreUnavailable
}
