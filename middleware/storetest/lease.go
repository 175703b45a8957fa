package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// The subtests of the optional abilities Replay, Secrets and Locker. Each
// one skips when the store under test does not implement the ability.
var leaseCases = []testCase{
	{"a remembered id is first only once, on every client", testRememberOnce},
	{"exactly one of many concurrent remembers of an id is first", testRememberConcurrent},
	{"ids that differ only in escaping are remembered apart", testRememberDistinct},
	{"a remembered id is forgotten once its ttl has passed", testRememberExpires},
	{"remember with a ttl that is not positive fails and records nothing", testRememberBadTTL},
	{"a secret reads back on every client until deleted", testSecretRoundTrip},
	{"a secret written again replaces the value", testSecretReplace},
	{"a secret of 16 KiB with every byte value round trips", testSecretLarge},
	{"a secret reads as missing once its ttl has passed", testSecretExpires},
	{"put secret with a ttl that is not positive fails and stores nothing", testSecretBadTTL},
	{"a held lease cannot be taken again until it is unlocked", testLockHeld},
	{"exactly one of many concurrent lockers gets the lease", testLockConcurrent},
	{"a lease can be taken again once its ttl has passed", testLockExpires},
	{"unlocking an expired lease that was taken again leaves the new holder's lease", testLockStaleUnlock},
	{"lock with a ttl that is not positive fails", testLockBadTTL},
}

// ability returns the store under test and the second client as T, or
// skips the subtest. A second client that lacks the ability is replaced
// by the first.
func ability[T any](t *testing.T, s *suite, name string) (first, second T) {
	t.Helper()
	first, ok := s.h.Store.(T)
	if !ok {
		t.Skipf("store does not implement middleware.%s", name)
	}
	second, ok = s.second().(T)
	if !ok {
		second = first
	}
	return first, second
}

// shortTTL is the ttl the time-based ability tests use: an hour when the
// harness moves the clock, else a short real duration.
func (s *suite) shortTTL() time.Duration {
	if s.realTime() {
		return realTTL
	}
	return time.Hour
}

// expire makes ttl pass for entries written just now. On an injected clock
// it first checks, through stillThere, that the entry lives until the last
// millisecond of its ttl, then moves to the ttl and checks gone. On real
// time it polls gone under a deadline.
func (s *suite) expire(t *testing.T, ttl time.Duration, what string, stillThere, gone func() bool) {
	t.Helper()
	if s.realTime() {
		eventually(t, waitLimit, what+" once its ttl has passed", gone)
		return
	}
	s.h.Advance(ttl - time.Millisecond)
	if !stillThere() {
		t.Fatalf("%s before its ttl had passed", what)
	}
	s.h.Advance(time.Millisecond)
	if !gone() {
		t.Fatalf("not %s when its ttl had passed", what)
	}
}

func remember(t *testing.T, r middleware.Replay, id string, ttl time.Duration) bool {
	t.Helper()
	first, err := r.Remember(t.Context(), id, ttl)
	if err != nil {
		t.Fatalf("Remember(%q, %v): %v", id, ttl, err)
	}
	return first
}

func testRememberOnce(t *testing.T, s *suite) {
	a, b := ability[middleware.Replay](t, s, "Replay")
	const id = "https://idp.example|jti-1"
	if !remember(t, a, id, time.Hour) {
		t.Fatal("first Remember of a new id returned false")
	}
	for i, r := range []middleware.Replay{a, b, a} {
		if remember(t, r, id, time.Hour) {
			t.Fatalf("Remember number %d of the same id returned true", i+2)
		}
	}
}

func testRememberConcurrent(t *testing.T, s *suite) {
	a, b := ability[middleware.Replay](t, s, "Replay")
	const workers = 50
	clients := []middleware.Replay{a, b}
	for round := range 3 {
		id := fmt.Sprintf("https://idp.example|jti-race-%d", round)
		var firsts sync.WaitGroup
		results := make([]bool, workers)
		errs := make([]error, workers)
		start := make(chan struct{})
		for w := range workers {
			firsts.Add(1)
			go func() {
				defer firsts.Done()
				<-start
				results[w], errs[w] = clients[w%2].Remember(context.Background(), id, time.Hour)
			}()
		}
		close(start)
		firsts.Wait()
		n := 0
		for w := range workers {
			if errs[w] != nil {
				t.Fatalf("concurrent Remember: %v", errs[w])
			}
			if results[w] {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d of %d concurrent Remember calls were first, want exactly 1", round, n, workers)
		}
	}
}

func testRememberDistinct(t *testing.T, s *suite) {
	a, _ := ability[middleware.Replay](t, s, "Replay")
	ids := []string{"a|b", "a%7Cb", "{x}", "%7Bx%7D", "x", "X", "", " ", "é"}
	for _, id := range ids {
		if !remember(t, a, id, time.Hour) {
			t.Fatalf("Remember(%q) returned false, yet only ids distinct from it were remembered", id)
		}
	}
	for _, id := range ids {
		if remember(t, a, id, time.Hour) {
			t.Fatalf("Remember(%q) returned true the second time", id)
		}
	}
}

func testRememberExpires(t *testing.T, s *suite) {
	a, b := ability[middleware.Replay](t, s, "Replay")
	ttl := s.shortTTL()
	const id = "https://idp.example|jti-ttl"
	if !remember(t, a, id, ttl) {
		t.Fatal("first Remember returned false")
	}
	s.expire(t, ttl, "the id is forgotten",
		func() bool { return !remember(t, b, id, ttl) },
		func() bool { return remember(t, b, id, ttl) })
	// It is remembered again from the call that found it forgotten.
	if remember(t, a, id, time.Hour) {
		t.Fatal("an id remembered again after expiry was first twice")
	}
}

func testRememberBadTTL(t *testing.T, s *suite) {
	a, _ := ability[middleware.Replay](t, s, "Replay")
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := a.Remember(t.Context(), "bad-ttl", ttl); err == nil {
			t.Fatalf("Remember with ttl %v did not fail", ttl)
		}
	}
	if !remember(t, a, "bad-ttl", time.Hour) {
		t.Fatal("a refused Remember recorded the id")
	}
}

func putSecret(t *testing.T, st middleware.Secrets, key, value string, ttl time.Duration) {
	t.Helper()
	if err := st.PutSecret(t.Context(), key, value, ttl); err != nil {
		t.Fatalf("PutSecret(%q): %v", key, err)
	}
}

func secretOf(t *testing.T, st middleware.Secrets, key string) (string, bool) {
	t.Helper()
	v, ok, err := st.Secret(t.Context(), key)
	if err != nil {
		t.Fatalf("Secret(%q): %v", key, err)
	}
	if !ok && v != "" {
		t.Fatalf("Secret(%q) returned %q with ok false", key, v)
	}
	return v, ok
}

func testSecretRoundTrip(t *testing.T, s *suite) {
	a, b := ability[middleware.Secrets](t, s, "Secrets")
	if _, ok := secretOf(t, a, "never"); ok {
		t.Fatal("a key never written reads as present")
	}
	putSecret(t, a, "rt:s1", "sealed-1", time.Hour)
	putSecret(t, a, "rt:s2", "sealed-2", time.Hour)
	for _, st := range []middleware.Secrets{a, b} {
		if v, ok := secretOf(t, st, "rt:s1"); !ok || v != "sealed-1" {
			t.Fatalf("Secret = %q, %v; want sealed-1", v, ok)
		}
	}
	if err := b.DeleteSecret(t.Context(), "rt:s1"); err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	for _, st := range []middleware.Secrets{a, b} {
		if v, ok := secretOf(t, st, "rt:s1"); ok {
			t.Fatalf("deleted secret reads as %q", v)
		}
	}
	if v, ok := secretOf(t, a, "rt:s2"); !ok || v != "sealed-2" {
		t.Fatalf("deleting one secret changed another: %q, %v", v, ok)
	}
	if err := a.DeleteSecret(t.Context(), "rt:s1"); err != nil {
		t.Fatalf("deleting a missing key failed: %v", err)
	}
	// Keys that differ only in escaping stay apart.
	putSecret(t, a, "{x}|y", "braces", time.Hour)
	if _, ok := secretOf(t, a, "%7Bx%7D%7Cy"); ok {
		t.Fatal("a key collides with its escaped spelling")
	}
	// An empty value is a value.
	putSecret(t, a, "empty", "", time.Hour)
	if v, ok := secretOf(t, b, "empty"); !ok || v != "" {
		t.Fatalf("empty secret reads as %q, %v", v, ok)
	}
}

func testSecretReplace(t *testing.T, s *suite) {
	a, b := ability[middleware.Secrets](t, s, "Secrets")
	putSecret(t, a, "k", "old", time.Hour)
	putSecret(t, b, "k", "new", time.Hour)
	if v, ok := secretOf(t, a, "k"); !ok || v != "new" {
		t.Fatalf("Secret after replace = %q, %v; want new", v, ok)
	}
}

func testSecretLarge(t *testing.T, s *suite) {
	a, b := ability[middleware.Secrets](t, s, "Secrets")
	var sb strings.Builder
	for sb.Len() < 16<<10 {
		sb.WriteByte(byte(sb.Len()))
	}
	v := sb.String()
	putSecret(t, a, "large", v, time.Hour)
	if got, ok := secretOf(t, b, "large"); !ok || got != v {
		t.Fatalf("16 KiB secret read back as %d bytes (ok %v), not the value written", len(got), ok)
	}
}

func testSecretExpires(t *testing.T, s *suite) {
	a, b := ability[middleware.Secrets](t, s, "Secrets")
	ttl := s.shortTTL()
	putSecret(t, a, "short", "v", ttl)
	putSecret(t, a, "long", "v", 100*365*24*time.Hour)
	s.expire(t, ttl, "the secret reads as missing",
		func() bool { _, ok := secretOf(t, b, "short"); return ok },
		func() bool { _, ok := secretOf(t, b, "short"); return !ok })
	if _, ok := secretOf(t, a, "long"); !ok {
		t.Fatal("a secret with a long ttl expired with the short one")
	}
}

func testSecretBadTTL(t *testing.T, s *suite) {
	a, _ := ability[middleware.Secrets](t, s, "Secrets")
	putSecret(t, a, "k", "kept", time.Hour)
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := a.PutSecret(t.Context(), "k", "replaced", ttl); err == nil {
			t.Fatalf("PutSecret with ttl %v did not fail", ttl)
		}
		if err := a.PutSecret(t.Context(), "new", "v", ttl); err == nil {
			t.Fatalf("PutSecret with ttl %v did not fail", ttl)
		}
	}
	if v, ok := secretOf(t, a, "k"); !ok || v != "kept" {
		t.Fatalf("refused PutSecret changed the value to %q, %v", v, ok)
	}
	if _, ok := secretOf(t, a, "new"); ok {
		t.Fatal("refused PutSecret stored a value")
	}
}

func tryLock(t *testing.T, l middleware.Locker, name string, ttl time.Duration) (func(context.Context) error, bool) {
	t.Helper()
	unlock, ok, err := l.TryLock(t.Context(), name, ttl)
	if err != nil {
		t.Fatalf("TryLock(%q): %v", name, err)
	}
	if ok != (unlock != nil) {
		t.Fatalf("TryLock(%q) returned ok %v with unlock set %v", name, ok, unlock != nil)
	}
	return unlock, ok
}

func unlock(t *testing.T, fn func(context.Context) error) {
	t.Helper()
	if err := fn(t.Context()); err != nil {
		t.Fatalf("unlock: %v", err)
	}
}

func testLockHeld(t *testing.T, s *suite) {
	a, b := ability[middleware.Locker](t, s, "Locker")
	u1, ok := tryLock(t, a, "refresh:s1", time.Hour)
	if !ok {
		t.Fatal("TryLock of a free lease failed")
	}
	for _, l := range []middleware.Locker{a, b} {
		if _, ok := tryLock(t, l, "refresh:s1", time.Hour); ok {
			t.Fatal("TryLock took a lease that is held")
		}
	}
	u2, ok := tryLock(t, b, "refresh:s2", time.Hour)
	if !ok {
		t.Fatal("a held lease blocked a lease of another name")
	}
	unlock(t, u1)
	u3, ok := tryLock(t, b, "refresh:s1", time.Hour)
	if !ok {
		t.Fatal("TryLock failed after the holder unlocked")
	}
	unlock(t, u1) // a second unlock is harmless ...
	if _, ok := tryLock(t, a, "refresh:s1", time.Hour); ok {
		t.Fatal("a second unlock by the old holder released the new holder's lease")
	}
	unlock(t, u3)
	unlock(t, u2)
}

func testLockConcurrent(t *testing.T, s *suite) {
	a, b := ability[middleware.Locker](t, s, "Locker")
	const workers = 50
	clients := []middleware.Locker{a, b}
	oks := make([]bool, workers)
	errs := make([]error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, oks[w], errs[w] = clients[w%2].TryLock(context.Background(), "contended", time.Hour)
		}()
	}
	close(start)
	wg.Wait()
	n := 0
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("concurrent TryLock: %v", errs[w])
		}
		if oks[w] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d of %d concurrent TryLock calls got the lease, want exactly 1", n, workers)
	}
}

func testLockExpires(t *testing.T, s *suite) {
	a, b := ability[middleware.Locker](t, s, "Locker")
	ttl := s.shortTTL()
	if _, ok := tryLock(t, a, "expiring", ttl); !ok {
		t.Fatal("TryLock of a free lease failed")
	}
	var u func(context.Context) error
	s.expire(t, ttl, "the lease is free",
		func() bool { _, ok := tryLock(t, b, "expiring", ttl); return !ok },
		func() bool {
			var ok bool
			u, ok = tryLock(t, b, "expiring", time.Hour)
			return ok
		})
	unlock(t, u)
}

func testLockStaleUnlock(t *testing.T, s *suite) {
	a, b := ability[middleware.Locker](t, s, "Locker")
	ttl := s.shortTTL()
	stale, ok := tryLock(t, a, "lease", ttl)
	if !ok {
		t.Fatal("TryLock of a free lease failed")
	}
	var fresh func(context.Context) error
	s.expire(t, ttl, "the lease is free",
		func() bool { _, ok := tryLock(t, b, "lease", time.Hour); return !ok },
		func() bool {
			var ok bool
			fresh, ok = tryLock(t, b, "lease", time.Hour)
			return ok
		})
	unlock(t, stale)
	for _, l := range []middleware.Locker{a, b} {
		if _, ok := tryLock(t, l, "lease", time.Hour); ok {
			t.Fatal("the expired holder's unlock released the new holder's lease")
		}
	}
	unlock(t, fresh)
	if u, ok := tryLock(t, a, "lease", time.Hour); !ok {
		t.Fatal("TryLock failed after the new holder unlocked")
	} else {
		unlock(t, u)
	}
}

func testLockBadTTL(t *testing.T, s *suite) {
	a, _ := ability[middleware.Locker](t, s, "Locker")
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, ok, err := a.TryLock(t.Context(), "bad-ttl", ttl); err == nil || ok {
			t.Fatalf("TryLock with ttl %v: ok %v, error %v; want a failure", ttl, ok, err)
		}
	}
	if u, ok := tryLock(t, a, "bad-ttl", time.Hour); !ok {
		t.Fatal("a refused TryLock took the lease")
	} else {
		unlock(t, u)
	}
}
