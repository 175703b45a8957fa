package memstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// The store offers every optional ability the middleware looks for.
var (
	_ middleware.Store            = (*Store)(nil)
	_ middleware.Clock            = (*Store)(nil)
	_ middleware.Watcher          = (*Store)(nil)
	_ middleware.EpochRotator     = (*Store)(nil)
	_ middleware.LifetimeRecorder = (*Store)(nil)
)

// Config configures a [Store]. The zero value is ready to use.
type Config struct {
	// Now is the store's clock: it stamps BumpedAt, judges announced
	// terminations and expires fences written with a TTL. Default
	// time.Now. Tests inject a fake clock here and move it themselves.
	// It is called with no lock held on the store and must be safe for
	// concurrent use.
	Now func() time.Time

	// AuditCap is the number of newest entries the audit log keeps
	// ([Store.AppendAudit] drops the oldest beyond it). Zero or negative
	// means [DefaultAuditCap], 10000.
	AuditCap int
}

// Store is an in-process [middleware.Store]. It is safe for concurrent
// use. Fences are kept in a map keyed by [middleware.Scope]; reads take a
// shared lock and neither allocate nor block on I/O.
//
// Fences written with a positive TTL are judged against the store's clock
// on every read: once expired they read as the zero fence. Expired entries
// are removed lazily, by the bump that overwrites them and by a small
// sample checked on every bump; there is no background goroutine.
//
// The zero Store is not usable; call [New].
type Store struct {
	now func() time.Time

	mu     sync.RWMutex
	fences map[middleware.Scope]entry
	epoch  string
	seq    uint64 // bumps applied under epoch
	// lastEpoch is the creation time of the newest epoch this store has
	// made: like the process's clock, a restored snapshot does not bring
	// it back.
	lastEpoch time.Time
	life      middleware.Lifetimes

	wmu      sync.Mutex
	watchers []*watch

	// kv holds the Replay, Secrets and Locker data (lease.go).
	kv kv
	// audit is the AuditLog (audit.go).
	audit auditLog
	// reg is the Registry (registry.go).
	reg registry
}

// entry is one stored fence and the store time at which it stops existing
// (zero: never).
type entry struct {
	fence   middleware.Fence
	expires time.Time
}

// live reports whether e still exists at now.
func (e entry) live(now time.Time) bool {
	return e.expires.IsZero() || now.Before(e.expires)
}

// sweepSample is the number of entries each bump inspects for expiry.
// Sampling more than one entry per write keeps the share of dead entries
// bounded however many TTL fences are written.
const sweepSample = 4

// New returns an empty store with a fresh epoch made by
// [middleware.NewEpoch] on the store's clock.
func New(cfg Config) *Store {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	auditCap := cfg.AuditCap
	if auditCap <= 0 {
		auditCap = DefaultAuditCap
	}
	return &Store{
		now:    now,
		fences: make(map[middleware.Scope]entry),
		epoch:  middleware.NewEpoch(now()),
		kv:     newKV(),
		audit:  auditLog{cap: auditCap},
		reg:    newRegistry(),
	}
}

// storeTime reduces t to what the shared text form of a fence keeps:
// milliseconds, UTC, no monotonic reading. Doing it here keeps this store's
// answers identical to a store that persists fences in the text form of
// [github.com/sessionfence/sessionfence/middleware/fencetext], and
// compares announcement times the same way.
func storeTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

var errShortDst = errors.New("memstore: dst is shorter than scopes")

// Fences implements [middleware.Store]. It never blocks on I/O and never
// allocates; ctx is not consulted. A scope never written, or whose TTL has
// passed on the store's clock, reads as the zero fence. All fences and the
// version come from one consistent snapshot.
func (s *Store) Fences(_ context.Context, scopes []middleware.Scope, dst []middleware.Fence) (middleware.Version, error) {
	if len(dst) < len(scopes) {
		return middleware.Version{}, errShortDst
	}
	now := s.now()
	s.mu.RLock()
	for i, sc := range scopes {
		if e, ok := s.fences[sc]; ok && e.live(now) {
			dst[i] = e.fence
		} else {
			dst[i] = middleware.Fence{}
		}
	}
	v := middleware.Version{Epoch: s.epoch, Seq: s.seq}
	s.mu.RUnlock()
	return v, nil
}

// Bump implements [middleware.Store]: it applies b to the fence of scope
// with [middleware.ApplyBump] at the store's clock, atomically with respect
// to every other call, and returns the new fence. Times are kept to the
// millisecond, like the text form other stores persist. A positive b.TTL
// makes the fence expire that long after this write; otherwise it is kept
// until [Store.Wipe] or the end of the process.
//
// Errors: [middleware.ErrInvalidScope], [middleware.ErrInvalidBump],
// [middleware.ErrNothingPending]; on error nothing is changed.
func (s *Store) Bump(_ context.Context, scope middleware.Scope, b middleware.Bump) (middleware.Fence, error) {
	if !scope.Valid() {
		return middleware.Fence{}, fmt.Errorf("memstore: bump %v: %w", scope, middleware.ErrInvalidScope)
	}
	now := storeTime(s.now())
	b.At = storeTime(b.At)

	s.mu.Lock()
	var cur middleware.Fence
	if e, ok := s.fences[scope]; ok && e.live(now) {
		cur = e.fence
	}
	next, err := middleware.ApplyBump(cur, b, now)
	if err != nil {
		s.mu.Unlock()
		return middleware.Fence{}, fmt.Errorf("memstore: bump %v: %w", scope, err)
	}
	e := entry{fence: next}
	if b.TTL > 0 {
		e.expires = now.Add(b.TTL)
	}
	s.fences[scope] = e
	s.seq++
	s.sweepLocked(now)
	s.mu.Unlock()

	s.notify()
	return next, nil
}

// sweepLocked removes expired entries among a few visited in map order,
// which Go randomises. s.mu must be held for writing.
func (s *Store) sweepLocked(now time.Time) {
	n := 0
	for sc, e := range s.fences {
		if n == sweepSample {
			return
		}
		n++
		if !e.live(now) {
			delete(s.fences, sc)
		}
	}
}

// Epoch implements [middleware.Store]. The epoch, "<unix ms>-<32 random
// hex digits>" ([middleware.NewEpoch] on the store's clock), is made at
// [New] and changes only on [Store.Wipe].
func (s *Store) Epoch(context.Context) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.epoch, nil
}

// Now implements [middleware.Clock]: it returns the store's clock
// ([Config].Now).
func (s *Store) Now(context.Context) (time.Time, error) {
	return s.now(), nil
}

// Wipe simulates the loss of all data, as a restart without persistence or
// a failover to an empty replica would cause: every fence is forgotten and
// a new epoch is made at the store's current time, so every session issued
// before fails closed, and so does every bearer token issued before.
// Watchers are notified. It exists for tests of that failure mode.
func (s *Store) Wipe() {
	s.mu.Lock()
	s.fences = make(map[middleware.Scope]entry)
	s.epoch = s.nextEpochLocked()
	s.seq = 0
	s.life = middleware.Lifetimes{}
	s.mu.Unlock()
	s.kv.wipe()
	s.audit.wipe()
	s.reg.wipe()
	s.notify()
}

// nextEpochLocked makes the epoch that replaces the current one: created
// at the store's clock, but never at or before the current epoch's time
// or any epoch this store made before (a test clock may stand still, and
// a restored snapshot brings an old epoch back), so that an epoch that
// comes back after being replaced is recognisably older. s.mu must be
// held.
func (s *Store) nextEpochLocked() string {
	now := s.now()
	if t, ok := middleware.EpochTime(s.epoch); ok && t.After(s.lastEpoch) {
		s.lastEpoch = t
	}
	if !now.After(s.lastEpoch) {
		now = s.lastEpoch.Add(time.Millisecond)
	}
	s.lastEpoch = now
	return middleware.NewEpoch(now)
}

// RotateEpoch implements [middleware.EpochRotator]: when the epoch is still
// from and fewer than seen bumps were applied under it, a new epoch is made
// on the store's clock (fences are kept, and every session issued under
// from fails closed); either way the epoch in force is returned. Watchers
// are notified of a rotation.
func (s *Store) RotateEpoch(_ context.Context, from string, seen uint64) (string, error) {
	s.mu.Lock()
	rotated := s.epoch == from && s.seq < seen
	if rotated {
		s.epoch = s.nextEpochLocked()
		s.seq++
	}
	e := s.epoch
	s.mu.Unlock()
	if rotated {
		s.notify()
	}
	return e, nil
}

// RaiseLifetimes implements [middleware.LifetimeRecorder]: it keeps, for
// each field, the longest lifetime ever recorded (until [Store.Wipe]).
func (s *Store) RaiseLifetimes(_ context.Context, l middleware.Lifetimes) (middleware.Lifetimes, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.life.Session = max(s.life.Session, l.Session)
	s.life.IdPSession = max(s.life.IdPSession, l.IdPSession)
	return s.life, nil
}

// snapshot copies the fences and the version, and returns a function that
// puts them back, as a restart from an older snapshot of a persisted store
// would: the epoch survives, later bumps are lost. For tests of rollback
// detection (see export_test.go).
func (s *Store) snapshot() (restore func()) {
	s.mu.RLock()
	fences := make(map[middleware.Scope]entry, len(s.fences))
	for k, v := range s.fences {
		fences[k] = v
	}
	epoch, seq := s.epoch, s.seq
	s.mu.RUnlock()
	return func() {
		s.mu.Lock()
		s.fences = make(map[middleware.Scope]entry, len(fences))
		for k, v := range fences {
			s.fences[k] = v
		}
		s.epoch, s.seq = epoch, seq
		s.mu.Unlock()
		s.notify()
	}
}

// Len returns the number of stored fences, expired ones not yet removed
// included. It exists for tests and metrics.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.fences)
}

// watch is one registration made by [Store.Watch].
type watch struct {
	// mu serialises calls of fn with stop, so that fn is never running or
	// started once stop has returned.
	mu      sync.Mutex
	fn      func()
	stopped bool
}

func (w *watch) call() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.fn()
	}
}

var errNilWatch = errors.New("memstore: Watch needs a non-nil function")

// Watch implements [middleware.Watcher]: fn is called from a new goroutine
// after every successful bump and after [Store.Wipe], with no lock of the
// store held. Calls for one registration never overlap. fn must not block,
// and must not call the stop function it was given (stop waits for a
// running fn). ctx is not consulted: the watch lasts until stop is called,
// and fn is not called once stop has returned.
func (s *Store) Watch(_ context.Context, fn func()) (stop func(), err error) {
	if fn == nil {
		return nil, errNilWatch
	}
	w := &watch{fn: fn}
	s.wmu.Lock()
	s.watchers = append(s.watchers, w)
	s.wmu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			w.stopped = true
			w.mu.Unlock()
			s.wmu.Lock()
			s.watchers = slices.DeleteFunc(s.watchers, func(x *watch) bool { return x == w })
			s.wmu.Unlock()
		})
	}, nil
}

// notify calls every registered fn from a new goroutine. Bumps are rare
// administrative events, so one goroutine per bump is cheap, and it keeps
// a slow watcher from ever delaying a bump.
func (s *Store) notify() {
	s.wmu.Lock()
	if len(s.watchers) == 0 {
		s.wmu.Unlock()
		return
	}
	ws := slices.Clone(s.watchers)
	s.wmu.Unlock()
	go func() {
		for _, w := range ws {
			w.call()
		}
	}()
}
