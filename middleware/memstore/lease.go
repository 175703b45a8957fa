package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// The one-time ids, secrets and leases of a store. They live apart from the
// fences, under their own lock, so that a burst of logins (secrets) or of
// back-channel logouts (replay) never delays the guard's fence reads.
type kv struct {
	mu      sync.Mutex
	seen    map[string]time.Time // Replay: id → expiry
	secrets map[string]secret    // Secrets: key → value and expiry
	leases  map[string]lease     // Locker: name → holder and expiry
	token   uint64               // last lease token handed out
}

type secret struct {
	value   string
	expires time.Time
}

type lease struct {
	token   uint64
	expires time.Time
}

func newKV() kv {
	return kv{
		seen:    make(map[string]time.Time),
		secrets: make(map[string]secret),
		leases:  make(map[string]lease),
	}
}

// wipe forgets every id, secret and lease. Lease tokens keep counting, so
// an unlock function from before the wipe can never release a lease taken
// after it.
func (k *kv) wipe() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.seen)
	clear(k.secrets)
	clear(k.leases)
}

// errTTL reports a ttl that is zero or negative. Every entry of these maps
// must expire: an entry kept for ever would be a leak an attacker can feed
// (one replay id per forged logout token).
var errTTL = errors.New("memstore: ttl must be positive")

// sweepMap deletes expired entries among a few visited in map order (which
// Go randomises), like [Store.sweepLocked] for fences: each write removes
// more dead entries than it can add, so the share of dead entries stays
// bounded with no background goroutine.
func sweepMap[V any](m map[string]V, expires func(V) time.Time, now time.Time) {
	n := 0
	for k, v := range m {
		if n == sweepSample {
			return
		}
		n++
		if !now.Before(expires(v)) {
			delete(m, k)
		}
	}
}

// Remember implements [middleware.Replay]. The first call with id in the
// last ttl (on the store's clock, [Config].Now) returns true; every later
// call returns false until ttl has passed, after which id is forgotten and
// the next call is first again. Check and record happen under one lock, so
// of any number of concurrent calls exactly one is first. A ttl that is not
// positive is refused with an error and records nothing. A later call does
// not extend the first call's ttl. It never fails otherwise.
func (s *Store) Remember(_ context.Context, id string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("memstore: remember %q: %w", id, errTTL)
	}
	now := s.now()
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	if exp, ok := s.kv.seen[id]; ok && now.Before(exp) {
		return false, nil
	}
	s.kv.seen[id] = now.Add(ttl)
	sweepMap(s.kv.seen, func(t time.Time) time.Time { return t }, now)
	return true, nil
}

// PutSecret implements [middleware.Secrets]: it stores value under key
// until ttl has passed on the store's clock, replacing any earlier value
// and its ttl. A ttl that is not positive is refused with an error and
// changes nothing. Values of any size are kept; callers seal them first.
func (s *Store) PutSecret(_ context.Context, key, value string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memstore: put secret: %w", errTTL)
	}
	now := s.now()
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	s.kv.secrets[key] = secret{value: value, expires: now.Add(ttl)}
	sweepMap(s.kv.secrets, func(v secret) time.Time { return v.expires }, now)
	return nil
}

// Secret implements [middleware.Secrets]: ok is false when key was never
// written, was deleted, or its ttl has passed on the store's clock. It
// never fails.
func (s *Store) Secret(_ context.Context, key string) (string, bool, error) {
	now := s.now()
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	v, ok := s.kv.secrets[key]
	if !ok {
		return "", false, nil
	}
	if !now.Before(v.expires) {
		delete(s.kv.secrets, key)
		return "", false, nil
	}
	return v.value, true, nil
}

// DeleteSecret implements [middleware.Secrets]. Deleting a missing key is
// not an error; it never fails.
func (s *Store) DeleteSecret(_ context.Context, key string) error {
	s.kv.mu.Lock()
	delete(s.kv.secrets, key)
	s.kv.mu.Unlock()
	return nil
}

// TryLock implements [middleware.Locker]. It takes the lease name for ttl
// on the store's clock when nobody holds it (or the last holder's ttl has
// passed) and returns ok = true with its unlock function; while another
// holder has it, ok is false and unlock is nil. A ttl that is not positive
// is refused with an error.
//
// Every lease carries a token unique within the store. unlock releases the
// lease only while the token is still the holder's, so a caller whose lease
// expired and was taken by someone else cannot release the new holder's
// lease. unlock is safe to call more than once and never fails; its ctx is
// not consulted.
func (s *Store) TryLock(_ context.Context, name string, ttl time.Duration) (func(context.Context) error, bool, error) {
	if ttl <= 0 {
		return nil, false, fmt.Errorf("memstore: lock %q: %w", name, errTTL)
	}
	now := s.now()
	s.kv.mu.Lock()
	defer s.kv.mu.Unlock()
	if l, ok := s.kv.leases[name]; ok && now.Before(l.expires) {
		return nil, false, nil
	}
	s.kv.token++
	token := s.kv.token
	s.kv.leases[name] = lease{token: token, expires: now.Add(ttl)}
	sweepMap(s.kv.leases, func(l lease) time.Time { return l.expires }, now)
	unlock := func(context.Context) error {
		s.kv.mu.Lock()
		defer s.kv.mu.Unlock()
		if l, ok := s.kv.leases[name]; ok && l.token == token {
			delete(s.kv.leases, name)
		}
		return nil
	}
	return unlock, true, nil
}

// The store's optional abilities beyond fences.
var (
	_ middleware.Replay  = (*Store)(nil)
	_ middleware.Secrets = (*Store)(nil)
	_ middleware.Locker  = (*Store)(nil)
)
