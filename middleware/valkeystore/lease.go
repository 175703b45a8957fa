package valkeystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
)

// The store's optional abilities beyond fences.
var (
	_ middleware.Replay  = (*Store)(nil)
	_ middleware.Secrets = (*Store)(nil)
	_ middleware.Locker  = (*Store)(nil)
)

// errTTL reports a ttl that is zero or negative. Every key these abilities
// write must expire: a key kept for ever would be a leak an attacker can
// feed (one replay key per forged logout token).
var errTTL = errors.New("valkeystore: ttl must be positive")

// escapedKey returns prefix + kind + the escaped form of id. The escaping
// is the one of [middleware.Scope.Key] for a session id ("s:<escaped>"):
// '%', '|', braces, spaces and non-ASCII bytes percent-encoded, so two ids
// never share a key and no id can form a hash tag of its own.
func escapedKey(prefix, id string) string {
	b := make([]byte, 0, len(prefix)+len(id)+8)
	b = append(b, prefix...)
	n := len(b)
	b = middleware.AppendKey(b, middleware.SessionScope(id)) // "s:<escaped id>"
	return string(append(b[:n], b[n+2:]...))
}

// pxMillis converts a positive ttl to whole milliseconds for PX, rounding
// up so that a sub-millisecond ttl never becomes the invalid PX 0.
func pxMillis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// Remember implements [middleware.Replay] with one SET <prefix>r:<id> NX
// PX ttl: the server decides, atomically, which of any number of
// concurrent callers on any instance is first. The ttl is kept by the
// server's clock, rounded up to the millisecond; a later call does not
// extend it. A ttl that is not positive is refused before anything is
// sent.
//
// Errors wrap [middleware.ErrStoreUnavailable]. After an error the id may
// or may not have been recorded (the reply may be lost after the write),
// so callers must treat an error as "not proven first" and refuse the
// token; the command is never retried by the client, since a retry after a
// lost reply would report a first call as a replay.
func (s *Store) Remember(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("valkeystore: remember: %w", errTTL)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	err := s.client.Do(ctx, s.client.B().Set().Key(escapedKey(s.replayPrefix, id)).Value("1").
		Nx().PxMilliseconds(pxMillis(ttl)).Build()).Error()
	switch {
	case err == nil:
		return true, nil
	case valkey.IsValkeyNil(err):
		return false, nil // NX refused: the key exists, the id is a replay
	}
	return false, unavailable("remember", err)
}

// PutSecret implements [middleware.Secrets] with SET <prefix>x:<key> value
// PX ttl, replacing any earlier value and its ttl. The ttl is kept by the
// server's clock, rounded up to the millisecond; a ttl that is not positive
// is refused before anything is sent. Values of any size the server
// accepts are stored; the project stores sealed values of a few KiB.
// Errors wrap [middleware.ErrStoreUnavailable].
func (s *Store) PutSecret(ctx context.Context, key, value string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("valkeystore: put secret: %w", errTTL)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	err := s.client.Do(ctx, s.client.B().Set().Key(escapedKey(s.secretPrefix, key)).Value(value).
		PxMilliseconds(pxMillis(ttl)).Build()).Error()
	if err != nil {
		return unavailable("put secret", err)
	}
	return nil
}

// Secret implements [middleware.Secrets] with a plain GET: secrets are read
// once per renewal, not per request, so they are not worth a place in the
// client-side cache (and a sealed refresh token should not linger in
// process memory longer than needed). ok is false when the key was never
// written, was deleted or has expired. Errors wrap
// [middleware.ErrStoreUnavailable].
func (s *Store) Secret(ctx context.Context, key string) (string, bool, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	v, err := s.client.Do(ctx, s.client.B().Get().Key(escapedKey(s.secretPrefix, key)).Build()).ToString()
	switch {
	case err == nil:
		return v, true, nil
	case valkey.IsValkeyNil(err):
		return "", false, nil
	}
	return "", false, unavailable("read secret", err)
}

// DeleteSecret implements [middleware.Secrets] with DEL. Deleting a
// missing key is not an error. Errors wrap [middleware.ErrStoreUnavailable].
func (s *Store) DeleteSecret(ctx context.Context, key string) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if err := s.client.Do(ctx, s.client.B().Del().Key(escapedKey(s.secretPrefix, key)).Build()).Error(); err != nil {
		return unavailable("delete secret", err)
	}
	return nil
}

// unlockScript deletes KEYS[1] only while it still holds ARGV[1], the
// holder's token: compare and delete in one atomic step, so a holder whose
// lease expired and was taken by another cannot release the new lease.
var unlockScript = valkey.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// TryLock implements [middleware.Locker] with SET <prefix>l:<name> <token>
// NX PX ttl, where token is 128 random bits unique to this call. ok is
// false, with a nil unlock, while another holder has the lease. The lease
// ends after ttl on the server's clock (rounded up to the millisecond) even
// if its holder vanishes, so choose a ttl longer than the guarded work,
// including its timeouts. A ttl that is not positive is refused.
//
// unlock runs a script that deletes the key only if it still holds this
// call's token: a lease that expired and was taken by someone else is left
// alone. unlock may be called more than once; it is bounded by the store's
// timeout like every operation, and its errors wrap
// [middleware.ErrStoreUnavailable] (the lease then ends at its ttl).
//
// Errors of TryLock wrap [middleware.ErrStoreUnavailable]. After an error
// the lease may have been taken with a lost reply; it then ends at its
// ttl. TryLock is never retried by the client.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (func(context.Context) error, bool, error) {
	if ttl <= 0 {
		return nil, false, fmt.Errorf("valkeystore: lock: %w", errTTL)
	}
	key := escapedKey(s.lockPrefix, name)
	token := randomHex()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	err := s.client.Do(ctx, s.client.B().Set().Key(key).Value(token).
		Nx().PxMilliseconds(pxMillis(ttl)).Build()).Error()
	switch {
	case valkey.IsValkeyNil(err):
		return nil, false, nil
	case err != nil:
		return nil, false, unavailable("lock", err)
	}
	unlock := func(ctx context.Context) error {
		ctx, cancel := s.opContext(ctx)
		defer cancel()
		if err := unlockScript.Exec(ctx, s.client, []string{key}, []string{token}).Error(); err != nil {
			return unavailable("unlock", err)
		}
		return nil
	}
	return unlock, true, nil
}
