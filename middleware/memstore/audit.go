package memstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/sessionfence/sessionfence/middleware"
)

var _ middleware.AuditLog = (*Store)(nil)

// DefaultAuditCap is the number of audit entries a store keeps when
// [Config].AuditCap is zero.
const DefaultAuditCap = 10000

// Page sizes of [Store.Audit], as the [middleware.AuditQuery] contract
// states them.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 500
)

// auditLog is a ring of the newest entries. Entry k (k = base+1, base+2,
// ...) is stored at ring[pos(k)]; its ID is k in decimal, so IDs order the
// entries and stay valid as cursors after the entry itself is gone.
type auditLog struct {
	mu   sync.Mutex
	ring []middleware.AuditEntry // grows up to cap, then is reused
	cap  int
	last uint64 // ID of the newest entry, 0 when none was ever appended
	base uint64 // IDs handed out before the ring last started empty
}

// pos returns the ring index of entry k.
func (a *auditLog) pos(k uint64) uint64 { return (k - a.base - 1) % uint64(a.cap) }

// errCursor reports an [middleware.AuditQuery].Before that is not an ID
// this store hands out.
var errCursor = fmt.Errorf("memstore: %w", middleware.ErrInvalidCursor)

// cloneEntry copies the parts of e that share memory, so that neither the
// caller nor the store can change the other's copy.
func cloneEntry(e middleware.AuditEntry) middleware.AuditEntry {
	if e.EffectiveAt != nil {
		t := *e.EffectiveAt
		e.EffectiveAt = &t
	}
	e.Notes = slices.Clone(e.Notes)
	return e
}

// AppendAudit implements [middleware.AuditLog]. It assigns the next ID and,
// when e.Time is zero, the store's clock ([Config].Now) to the millisecond.
// Once [Config].AuditCap entries are kept, each append drops the oldest,
// so the log never holds more than AuditCap entries. It never fails.
func (s *Store) AppendAudit(_ context.Context, e middleware.AuditEntry) (middleware.AuditEntry, error) {
	if e.Time.IsZero() {
		e.Time = storeTime(s.now())
	}
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last++
	e.ID = strconv.FormatUint(a.last, 10)
	e = cloneEntry(e)
	if len(a.ring) < a.cap {
		a.ring = append(a.ring, e)
	} else {
		a.ring[a.pos(a.last)] = e
	}
	return cloneEntry(e), nil
}

// Audit implements [middleware.AuditLog]: up to q.Limit entries (100 when
// zero, negative or over 500) older than the entry q.Before names, newest
// first, and the ID of the last one returned as the next cursor when older
// entries remain. A cursor whose entry has since been dropped still works.
// A q.Before that is not an ID of this store returns an error; it never
// fails otherwise. Cost: O(page size), whatever the size of the log.
func (s *Store) Audit(_ context.Context, q middleware.AuditQuery) ([]middleware.AuditEntry, string, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxAuditLimit {
		limit = defaultAuditLimit
	}
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	from := a.last // newest ID to return
	if q.Before != "" {
		b, err := strconv.ParseUint(q.Before, 10, 64)
		if err != nil || b == 0 || strconv.FormatUint(b, 10) != q.Before {
			return nil, "", fmt.Errorf("%w %q", errCursor, q.Before)
		}
		from = min(b-1, a.last)
	}
	oldest := a.last - uint64(len(a.ring)) + 1 // oldest ID still kept
	if from < oldest {
		return nil, "", nil
	}
	n := min(uint64(limit), from-oldest+1)
	out := make([]middleware.AuditEntry, 0, n)
	for k := from; k > from-n; k-- {
		out = append(out, cloneEntry(a.ring[a.pos(k)]))
	}
	next := ""
	if from-n >= oldest {
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// wipe forgets every entry. IDs keep counting, so a cursor from before the
// wipe never names an entry appended after it.
func (a *auditLog) wipe() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ring = nil
	a.base = a.last
}
