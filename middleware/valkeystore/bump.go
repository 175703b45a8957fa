package valkeystore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/fencetext"
)

// Error codes of the bump script. Each is the first word of an error reply
// and is mapped to a sentinel; they are the script's own protocol, not
// server messages.
const (
	codeNothingPending = "SESSIONFENCE_NOTHING_PENDING"
	codeInvalid        = "SESSIONFENCE_INVALID"
	codeCorrupt        = "SESSIONFENCE_CORRUPT"
)

// bumpScript is middleware.ApplyBump run inside the server, so that the
// read, the change and the write are one atomic step on the server's clock.
// It must stay step for step equal to ApplyBump; the package tests compare
// the two on the same inputs.
//
//	KEYS[1] fence key   KEYS[2] epoch key   KEYS[3] sequence key
//	ARGV[1] kind (1 revoke, 2 announce, 3 cancel, 4 reload)
//	ARGV[2] policy      ARGV[3] At in Unix ms (announce)
//	ARGV[4] reason      ARGV[5] TTL in ms, 0 for none
//	ARGV[6] random part of the epoch to create if absent
//	ARGV[7] notification channel   ARGV[8] scope key, published after the
//	sequence number: "<seq> <scope key>"
//
// Returns {new value, epoch, sequence number}. Times are Unix milliseconds;
// now is the server's TIME truncated to the millisecond, which is how every
// stored time is kept. Generations are Lua numbers (doubles), exact far
// beyond any real count; a stored value outside 2^52 is treated as corrupt
// rather than rounded.
var bumpScript = newWriteScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind = tonumber(ARGV[1])
local bpol = tonumber(ARGV[2])
local at = tonumber(ARGV[3])
local reason = string.sub(ARGV[4], 1, 200)
local ttl = tonumber(ARGV[5])
local maxms = 8796093022208
local maxgen = 4503599627370496

local gen, res, rel, bumped, pol, pend, ppol, rsn = 0, 0, 0, 0, 0, 0, 0, ''
local cur = redis.call('GET', KEYS[1])
if cur then
  local a, r, b, c, d, e, f, g
  if string.sub(cur, 1, 3) == 'v2:' then
    a, r, b, c, d, e, f, g = string.match(cur, '^v2:(%d+):(%d+):(%d+):(%d+):(%d+):(%d+):(%d+):(.*)$')
  else
    a, b, c, d, e, f, g = string.match(cur, '^(%d+):(%d+):(%d+):(%d+):(%d+):(%d+):(.*)$')
    r = a
  end
  if not a or #a > 20 or #r > 20 or #b > 20 or #c > 20 or #d > 20 or #e > 20 or #f > 20 then
    return redis.error_reply('SESSIONFENCE_CORRUPT fence value is malformed')
  end
  gen, res, rel, bumped, pol, pend, ppol, rsn = tonumber(a), tonumber(r), tonumber(b), tonumber(c), tonumber(d), tonumber(e), tonumber(f), g
  if string.sub(cur, 1, 3) ~= 'v2:' and pend ~= 0 then
    res = gen + 1
  end
  if gen >= maxgen or res >= maxgen or rel >= maxgen or bumped > maxms or pend > maxms or pol > 2 or ppol > 2 or res < gen then
    return redis.error_reply('SESSIONFENCE_CORRUPT fence value is out of range')
  end
end
if kind == nil or bpol == nil or bpol > 2 or at == nil or ttl == nil then
  return redis.error_reply('SESSIONFENCE_INVALID bad arguments')
end

if pend ~= 0 and now >= pend then
  gen = res
  bumped = pend
  pol = ppol
  pend, ppol = 0, 0
end
if kind == 1 then
  res = res + 1
  gen = res
  bumped = now
  pol = bpol
  pend, ppol = 0, 0
  rsn = reason
elseif kind == 2 then
  if at <= now or at > maxms then
    return redis.error_reply('SESSIONFENCE_INVALID announcement time is not after the server clock')
  end
  res = res + 1
  pend, ppol = at, bpol
  rsn = reason
elseif kind == 3 then
  if pend == 0 then
    return redis.error_reply('SESSIONFENCE_NOTHING_PENDING no pending termination to cancel')
  end
  pend, ppol = 0, 0
  rsn = reason
elseif kind == 4 then
  rel = rel + 1
else
  return redis.error_reply('SESSIONFENCE_INVALID unknown bump kind')
end

local val = string.format('v2:%d:%d:%d:%d:%d:%d:%d:', gen, res, rel, bumped, pol, pend, ppol) .. rsn
if ttl > 0 then
  redis.call('SET', KEYS[1], val, 'PX', ttl)
else
  redis.call('SET', KEYS[1], val)
end
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = string.format('%d-%s', now, ARGV[6])
  redis.call('SET', KEYS[2], epoch)
end
local seq = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[7], seq .. ' ' .. ARGV[8])
return {val, epoch, seq}
`, false)

// Bump implements [middleware.Store]. One server-side script reads the
// fence, applies [middleware.ApplyBump] at the server's TIME (never this
// machine's clock), writes the result (with PEXPIRE semantics when
// b.TTL > 0, rounded up to the millisecond), makes sure the epoch exists,
// and publishes a notification for [Store.Watch], atomically. Concurrent
// bumps from any number of clients never lose an increment.
//
// Before returning, Bump waits until this store's client-side cache can no
// longer serve the fence as it was before the bump, so a Fences call on
// the same Store that starts after Bump returns sees the bump (normally a
// fraction of a millisecond). If that cannot be confirmed within the
// timeout, Bump returns the new fence together with an error wrapping
// [middleware.ErrStoreUnavailable]: the bump is applied, but this
// instance's reads may lag until its connection recovers.
//
// With Config.WaitReplicas, Bump also waits (at most Config.WaitTimeout)
// until that many replicas acknowledge the change. If fewer do, it returns
// the new fence together with an error wrapping [ErrNotReplicated] and
// [middleware.ErrStoreUnavailable]: applied on the primary, not yet safe
// from a failover.
//
// Errors: [middleware.ErrInvalidScope], [middleware.ErrInvalidBump] (also
// for an announcement whose time is not after the server's clock),
// [middleware.ErrNothingPending], and [middleware.ErrStoreUnavailable] for
// everything the server or the network causes, including a stored value
// that does not parse (the script refuses to overwrite what it cannot
// read; an operator must delete the key). Bump is not retried by the
// client: a retry after an unknown outcome could apply it twice.
func (s *Store) Bump(ctx context.Context, scope middleware.Scope, b middleware.Bump) (middleware.Fence, error) {
	if !scope.Valid() {
		return middleware.Fence{}, fmt.Errorf("valkeystore: bump %v: %w", scope, middleware.ErrInvalidScope)
	}
	// The reference validation, on a zero fence at the zero time: it checks
	// kind, policy, TTL and the range of At. Whether At is after the
	// server's clock only the script can tell. ErrNothingPending here only
	// says the zero fence has nothing pending, which the script decides on
	// the real one.
	if _, err := middleware.ApplyBump(middleware.Fence{}, b, time.Time{}); errors.Is(err, middleware.ErrInvalidBump) {
		return middleware.Fence{}, fmt.Errorf("valkeystore: bump %v: %w", scope, err)
	}
	if len(b.Reason) > middleware.MaxReasonLen {
		b.Reason = b.Reason[:middleware.MaxReasonLen]
	}
	var atMs int64
	if b.Kind == middleware.BumpAnnounce {
		atMs = b.At.UnixMilli()
	}
	var ttlMs int64
	if b.TTL > 0 {
		ttlMs = int64((b.TTL + time.Millisecond - 1) / time.Millisecond)
	}
	scopeKey := scope.Key()

	ctx, cancel := s.writeContext(ctx)
	defer cancel()
	res, repl := s.write(ctx, bumpScript,
		[]string{s.fencePrefix + scopeKey, s.epochKey, s.seqKey},
		[]string{
			strconv.Itoa(int(b.Kind)),
			strconv.Itoa(int(b.Policy)),
			strconv.FormatInt(atMs, 10),
			b.Reason,
			strconv.FormatInt(ttlMs, 10),
			randomHex(),
			s.channel,
			scopeKey,
		})
	vals, err := res.ToArray()
	if err != nil {
		return middleware.Fence{}, s.bumpError(scope, err)
	}
	if len(vals) != 3 {
		return middleware.Fence{}, unavailable("bump", fmt.Errorf("script returned %d values", len(vals)))
	}
	text, err1 := vals[0].ToString()
	epoch, err2 := vals[1].ToString()
	seq, err3 := vals[2].AsInt64()
	if err := errors.Join(err1, err2, err3); err != nil {
		return middleware.Fence{}, unavailable("bump", err)
	}
	f, ok := fencetext.Decode(text)
	if !ok {
		return middleware.Fence{}, unavailable("bump", fmt.Errorf("script wrote a malformed value %q", text))
	}
	if repl != nil {
		repl = fmt.Errorf("valkeystore: bump %v: %w", scope, repl)
	}
	return f, errors.Join(repl, s.awaitOwnInvalidation(ctx, epoch, seq))
}

// bumpError maps the script's error replies to the sentinels, and every
// other failure to ErrStoreUnavailable.
func (s *Store) bumpError(scope middleware.Scope, err error) error {
	if verr, ok := valkey.IsValkeyErr(err); ok {
		msg := verr.Error()
		switch {
		case strings.HasPrefix(msg, codeNothingPending):
			return fmt.Errorf("valkeystore: bump %v: %w", scope, middleware.ErrNothingPending)
		case strings.HasPrefix(msg, codeInvalid):
			return fmt.Errorf("valkeystore: bump %v: %w (%s)", scope, middleware.ErrInvalidBump, msg)
		case strings.HasPrefix(msg, codeCorrupt):
			return fmt.Errorf("valkeystore: bump %v: key %s: %w: %s", scope, s.scopeKey(scope), middleware.ErrStoreUnavailable, msg)
		}
	}
	return unavailable(fmt.Sprintf("bump %v", scope), err)
}

// awaitOwnInvalidation returns once this store's client-side cache can no
// longer answer with a value from before the bump that produced (epoch,
// seq).
//
// Why it is needed: the script's reply and the server's invalidation of
// the cached fence travel on different connections of the client (valkey-go
// sends the script on any pipeline connection, but reads our keys through
// the one their hash slot picks), so the reply can arrive first. The
// server queues the invalidation on the reading connection before it
// replies to the script; any reply on that connection to a request sent
// later therefore comes after the invalidation, which valkey-go applies in
// order.
//
// How: read the epoch and sequence keys through the cache, on that same
// connection. Either the read went to the server (a miss: a round trip
// after the bump, so the invalidation is applied), or it was served from
// a cache entry filled after the bump (the sequence number there is ours
// or later, under the same epoch). A stale entry shows an older sequence
// number; it is dropped as soon as its invalidation arrives, so we poll.
func (s *Store) awaitOwnInvalidation(ctx context.Context, epoch string, seq int64) error {
	for wait := 20 * time.Microsecond; ; wait = min(2*wait, 5*time.Millisecond) {
		res := s.client.DoCache(ctx, s.client.B().Mget().Key(s.epochKey, s.seqKey).Cache(), s.cacheTTL)
		vals, err := res.ToArray()
		if err != nil {
			return unavailable("bump applied; confirm local visibility", err)
		}
		if !res.IsCacheHit() {
			return nil
		}
		if len(vals) == 2 {
			e, _ := vals[0].ToString()
			n, err := vals[1].AsInt64()
			if err == nil && (epoch == "" || e == epoch) && n >= seq {
				return nil
			}
		}
		if !sleepCtx(ctx, wait) {
			return unavailable("bump applied; confirm local visibility", ctx.Err())
		}
	}
}

// rotateScript replaces the epoch (KEYS[1]) when it still holds ARGV[1]
// and the sequence number (KEYS[2]) is below ARGV[4] (the server really is
// behind what a witness saw; a reader whose cache lagged is not), with
// "<server unix ms>-<ARGV[2]>" (the form of [middleware.NewEpoch]; the
// time is moved past the old epoch's if the clock has not, so the old one
// is recognisably older should it ever come back),
// advances the sequence number and tells watchers (channel ARGV[3]),
// atomically. Returns {epoch in force, sequence number}.
//
// Unlike the bump script it is idempotent (a second run finds the epoch
// already replaced and changes nothing), so valkey-go may retry it. That
// matters: a rotation follows a server restart, and the first write after
// one may go out on a connection the restart broke, failing with EOF where
// a retry on a new connection succeeds. With Config.WaitReplicas it is not
// retried (see [Store.write]); a rotation that fails then leaves the
// request refused as store_unavailable, and the next request detects the
// rollback again.
var rotateScript = newWriteScript(`
local cur = redis.call('GET', KEYS[1])
local seq = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if cur == ARGV[1] and seq < tonumber(ARGV[4]) then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local old = tonumber(string.match(cur, '^(%d+)-') or '0') or 0
  if ms <= old then
    ms = old + 1
  end
  cur = string.format('%d-%s', ms, ARGV[2])
  redis.call('SET', KEYS[1], cur)
  seq = redis.call('INCR', KEYS[2])
  redis.call('PUBLISH', ARGV[3], seq .. ' epoch')
  return {cur, seq}
end
return {cur or '', seq}
`, true)

// RotateEpoch implements [middleware.EpochRotator] with one server-side
// script: when the epoch still holds from and the server's sequence number
// is below seen, the epoch is replaced by a new one made on the server's
// clock, so every session issued under from fails closed on every
// instance. The fences are kept. Like [Store.Bump], it returns once
// this store's own cache can no longer serve the old epoch, and with
// Config.WaitReplicas waits for replicas: when too few acknowledge it
// returns the new epoch together with an error wrapping
// [ErrNotReplicated] and [middleware.ErrStoreUnavailable].
func (s *Store) RotateEpoch(ctx context.Context, from string, seen uint64) (string, error) {
	ctx, cancel := s.writeContext(ctx)
	defer cancel()
	res, repl := s.write(ctx, rotateScript, []string{s.epochKey, s.seqKey},
		[]string{from, randomHex(), s.channel, strconv.FormatUint(seen, 10)})
	vals, err := res.ToArray()
	if err != nil {
		return "", unavailable("rotate the epoch", err)
	}
	if len(vals) != 2 {
		return "", unavailable("rotate the epoch", fmt.Errorf("script returned %d values", len(vals)))
	}
	epoch, err1 := vals[0].ToString()
	seq, err2 := vals[1].AsInt64()
	if err := errors.Join(err1, err2); err != nil {
		return "", unavailable("rotate the epoch", err)
	}
	if epoch == "" {
		// The data is gone altogether: the next read makes a new epoch.
		return s.Epoch(ctx)
	}
	if err := s.awaitOwnInvalidation(ctx, epoch, seq); err != nil {
		return "", err
	}
	if repl != nil {
		return epoch, fmt.Errorf("valkeystore: rotate the epoch: %w", repl)
	}
	return epoch, nil
}

// lifetimesScript raises the recorded lifetimes (a hash at KEYS[1] with
// fields "session" and "idp_session", milliseconds) to at least ARGV[1]
// and ARGV[2], and returns both as recorded afterwards. It is idempotent
// (raising to a maximum twice is raising once), so valkey-go may retry it:
// it is the first write of a guard after a server restart, which may go
// out on a connection the restart broke.
var lifetimesScript = valkey.NewLuaScriptRetryable(`
local out = {}
for i, f in ipairs({'session', 'idp_session'}) do
  local want = tonumber(ARGV[i])
  local cur = tonumber(redis.call('HGET', KEYS[1], f) or '0') or 0
  if want > cur then
    redis.call('HSET', KEYS[1], f, want)
    cur = want
  end
  out[i] = cur
end
return out
`)

// RaiseLifetimes implements [middleware.LifetimeRecorder] with one
// server-side script over the key "<prefix>lifetimes": each lifetime only
// ever grows, whichever instance records it. The key has no expiry; a wipe
// removes it with everything else, and fence writers then keep session
// fences for ever until a guard records its lifetimes again.
func (s *Store) RaiseLifetimes(ctx context.Context, l middleware.Lifetimes) (middleware.Lifetimes, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	vals, err := lifetimesScript.Exec(ctx, s.client, []string{s.lifeKey},
		[]string{ceilMs(l.Session), ceilMs(l.IdPSession)}).AsIntSlice()
	if err != nil {
		return middleware.Lifetimes{}, unavailable("record lifetimes", err)
	}
	if len(vals) != 2 || vals[0] < 0 || vals[1] < 0 {
		return middleware.Lifetimes{}, unavailable("record lifetimes", fmt.Errorf("script returned %v", vals))
	}
	return middleware.Lifetimes{
		Session:    time.Duration(vals[0]) * time.Millisecond,
		IdPSession: time.Duration(vals[1]) * time.Millisecond,
	}, nil
}

// ceilMs formats d in whole milliseconds, rounded up: a recorded lifetime
// must never be shorter than the real one.
func ceilMs(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10)
}
