package memstore

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

var _ middleware.Registry = (*Store)(nil)

// MaxListedSessions bounds the sessions [Store.Sessions] returns for one
// user: the ones expiring last (normally the newest) are kept. A person
// has a handful of devices; a user with more live sessions than this is
// an automated client or an attack, and listing them all would only make
// the request that asks expensive.
const MaxListedSessions = 1000

// registry indexes live sessions three ways (by id, by user, by tenant)
// and keeps them in a min-heap by expiry. Every call first pops the
// sessions whose expiry has passed on the store's clock, so the indexes
// hold only live sessions, counts are map lengths, and no sweeper runs.
// Each session is pushed and popped once, so the cost is O(log n) per
// tracked session, amortised, whatever the number of sessions.
type registry struct {
	mu       sync.Mutex
	byID     map[string]*tracked
	byUser   map[user]map[string]*tracked
	byTenant map[string]int
	expiry   expiryHeap
}

type user struct{ issuer, subject string }

// tracked is one live session and its position in the expiry heap.
type tracked struct {
	info  middleware.SessionInfo
	index int
}

func newRegistry() registry {
	return registry{
		byID:     make(map[string]*tracked),
		byUser:   make(map[user]map[string]*tracked),
		byTenant: make(map[string]int),
	}
}

// wipe forgets every session.
func (r *registry) wipe() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.byID)
	clear(r.byUser)
	clear(r.byTenant)
	r.expiry = nil
}

// expiryHeap orders sessions by Expires, soonest first.
type expiryHeap []*tracked

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].info.Expires.Before(h[j].info.Expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	t := x.(*tracked)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *expiryHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// purgeLocked removes every session whose expiry is not after now.
func (r *registry) purgeLocked(now time.Time) {
	for len(r.expiry) > 0 && !now.Before(r.expiry[0].info.Expires) {
		r.removeLocked(r.expiry[0])
	}
}

// removeLocked drops t from every index.
func (r *registry) removeLocked(t *tracked) {
	heap.Remove(&r.expiry, t.index)
	delete(r.byID, t.info.ID)
	u := user{t.info.Issuer, t.info.Subject}
	if m := r.byUser[u]; m != nil {
		delete(m, t.info.ID)
		if len(m) == 0 {
			delete(r.byUser, u)
		}
	}
	if t.info.Tenant != "" {
		if r.byTenant[t.info.Tenant]--; r.byTenant[t.info.Tenant] <= 0 {
			delete(r.byTenant, t.info.Tenant)
		}
	}
}

// checkInfo refuses a session that cannot be indexed: without an id, or
// without the issuer and subject that name its user.
func checkInfo(op string, s middleware.SessionInfo) error {
	if s.ID == "" || s.Issuer == "" || s.Subject == "" {
		return fmt.Errorf("memstore: %s: session needs ID, Issuer and Subject: %w", op, middleware.ErrInvalidScope)
	}
	return nil
}

// TrackSession implements [middleware.Registry]: it records s, or replaces
// the record with the same ID (its user and tenant may change), until
// s.Expires on the store's clock. A session whose Expires is not after the
// store's now is forgotten instead. Errors: [middleware.ErrInvalidScope]
// when s lacks ID, Issuer or Subject; it never fails otherwise.
// Cost: O(log n) amortised in the number of live sessions.
func (s *Store) TrackSession(_ context.Context, info middleware.SessionInfo) error {
	if err := checkInfo("track session", info); err != nil {
		return err
	}
	now := s.now()
	r := &s.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	r.purgeLocked(now)
	if t, ok := r.byID[info.ID]; ok {
		r.removeLocked(t)
	}
	if !now.Before(info.Expires) {
		return nil
	}
	t := &tracked{info: info}
	heap.Push(&r.expiry, t)
	r.byID[info.ID] = t
	u := user{info.Issuer, info.Subject}
	m := r.byUser[u]
	if m == nil {
		m = make(map[string]*tracked)
		r.byUser[u] = m
	}
	m[info.ID] = t
	if info.Tenant != "" {
		r.byTenant[info.Tenant]++
	}
	return nil
}

// ForgetSession implements [middleware.Registry]: it drops the session
// with info.ID, whatever user or tenant it was tracked under. Forgetting
// a session that is not tracked is not an error. Errors:
// [middleware.ErrInvalidScope] when info lacks ID, Issuer or Subject.
func (s *Store) ForgetSession(_ context.Context, info middleware.SessionInfo) error {
	if info.ID == "" {
		return fmt.Errorf("memstore: forget session: session needs an ID: %w", middleware.ErrInvalidScope)
	}
	now := s.now()
	r := &s.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	r.purgeLocked(now)
	if t, ok := r.byID[info.ID]; ok {
		r.removeLocked(t)
	}
	return nil
}

// Sessions implements [middleware.Registry]: the live sessions of the user
// (issuer, subject), most recently seen first (ties: newest created
// first, then by ID), at most [MaxListedSessions]. An unknown user has
// none. It never fails. Cost: O(k log k) in that user's k sessions.
func (s *Store) Sessions(_ context.Context, issuer, subject string) ([]middleware.SessionInfo, error) {
	now := s.now()
	r := &s.reg
	r.mu.Lock()
	r.purgeLocked(now)
	m := r.byUser[user{issuer, subject}]
	out := make([]middleware.SessionInfo, 0, len(m))
	for _, t := range m {
		out = append(out, t.info)
	}
	r.mu.Unlock()
	if len(out) > MaxListedSessions {
		// Keep the ones expiring last, as valkeystore does.
		slices.SortFunc(out, func(a, b middleware.SessionInfo) int { return b.Expires.Compare(a.Expires) })
		out = out[:MaxListedSessions]
	}
	sortSessions(out)
	return out, nil
}

// sortSessions orders sessions most recently seen first, then newest
// created, then by ID, so that the order is total and stable.
func sortSessions(ss []middleware.SessionInfo) {
	slices.SortFunc(ss, func(a, b middleware.SessionInfo) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// CountSessions implements [middleware.Registry]: the live sessions under
// a global, tenant or subject scope, on the store's clock. ok is false for
// the other kinds (an IdP session or one of our sessions is not counted).
// Errors: [middleware.ErrInvalidScope] for a scope that is not
// [middleware.Scope.Valid]. Cost: O(1) plus the amortised removal of the
// sessions that expired since the last call, whatever the number of live
// sessions.
func (s *Store) CountSessions(_ context.Context, scope middleware.Scope) (int, bool, error) {
	if !scope.Valid() {
		return 0, false, fmt.Errorf("memstore: count sessions %v: %w", scope, middleware.ErrInvalidScope)
	}
	now := s.now()
	r := &s.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	r.purgeLocked(now)
	switch scope.Kind {
	case middleware.ScopeGlobal:
		return len(r.byID), true, nil
	case middleware.ScopeTenant:
		return r.byTenant[scope.ID], true, nil
	case middleware.ScopeSubject:
		return len(r.byUser[user{scope.Issuer, scope.ID}]), true, nil
	}
	return 0, false, nil
}
