package valkeystore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/fencetext"
)

// The store offers every optional ability the middleware looks for.
var (
	_ middleware.Store            = (*Store)(nil)
	_ middleware.Clock            = (*Store)(nil)
	_ middleware.Watcher          = (*Store)(nil)
	_ middleware.EpochRotator     = (*Store)(nil)
	_ middleware.LifetimeRecorder = (*Store)(nil)
)

// Defaults of [Config].
const (
	// DefaultPrefix is the key prefix used when Config.Prefix is empty.
	DefaultPrefix = "{sessionfence}:"
	// DefaultCacheTTL is the client-side cache lifetime used when
	// Config.CacheTTL is zero.
	DefaultCacheTTL = time.Minute
	// DefaultTimeout is the per-operation bound used when Config.Timeout
	// is zero.
	DefaultTimeout = 500 * time.Millisecond
)

// Config configures a [Store]. The zero value is valid and uses the
// defaults stated on each field.
type Config struct {
	// Prefix starts every key and the notification channel of this store.
	// Default [DefaultPrefix], "{sessionfence}:".
	//
	// It must contain a Valkey Cluster hash tag: a '{', then at least one
	// byte, then '}' (the first '{' of the prefix, and the first '}' after
	// it). Every key of the store then hashes to one slot, on purpose:
	//
	//   - the bump script and the one MGET of the hot path touch several
	//     keys, which Valkey Cluster allows only within one slot;
	//   - the epoch lives in the same slot, so on the same shard, as every
	//     fence: losing that shard's data (a failover to an empty replica)
	//     loses the epoch with the fences, and every session fails closed.
	//     Fences spread over shards could be reset on one shard while the
	//     epoch survived on another, silently reviving revoked sessions.
	//
	// The price is that one store's fences do not spread over the cluster;
	// they are a few small keys, read from client-side caches. Scope ids
	// are escaped (see [middleware.Scope.Key]) so no id can form a hash tag.
	Prefix string

	// CacheTTL bounds how long a fence read stays in valkey-go's
	// client-side cache. Default [DefaultCacheTTL], one minute. It is not a
	// staleness bound: the server pushes an invalidation the moment a key
	// changes, and the cached copy is dropped then. The TTL only lets
	// entries of scopes nobody reads any more leave memory. A fence written
	// with a TTL is never cached beyond its own expiry.
	CacheTTL time.Duration

	// Timeout bounds each operation. Default [DefaultTimeout], 500ms. It
	// applies only when the caller's context has no earlier deadline.
	// Fences served from the client-side cache never wait on it. While
	// the server is unreachable valkey-go keeps retrying within this
	// bound, so each failing call takes up to Timeout before it returns
	// [middleware.ErrStoreUnavailable]; a client built with
	// ClientOption.DisableRetry fails at the first attempt.
	Timeout time.Duration

	// InsecureAllowEviction lets [New] accept a server whose
	// maxmemory-policy is not "noeviction". Evicting a fence key reads as
	// "never revoked" and revives every session it had revoked, so New
	// refuses such a server unless this is set. When the server hides its
	// configuration (CONFIG disabled, as on some managed services) New
	// cannot check and proceeds: configure noeviction there yourself.
	InsecureAllowEviction bool

	// AuditCap is the number of newest entries the audit log keeps
	// (approximately: see [Store.AppendAudit]). Default
	// [DefaultAuditCap], 100000; negative is an error.
	AuditCap int

	// WaitReplicas, when positive, makes every fence change ([Store.Bump]
	// and [Store.RotateEpoch]) wait until that many replicas have
	// acknowledged it (Valkey's WAIT), for at most WaitTimeout. A change
	// that fewer replicas acknowledged is still applied on the primary,
	// and returns its result together with an error wrapping
	// [ErrNotReplicated] and [middleware.ErrStoreUnavailable]: a failover
	// now could lose it, so the caller should bump again or tell the
	// operator. Default 0: no waiting, and replication stays asynchronous
	// (a failover may lose the last acknowledged bumps; the guard then
	// detects the rollback where it can, see [middleware.ErrStoreRolledBack]).
	// Negative is an error.
	//
	// WAIT makes the replicas hold the change in memory, not on disk;
	// what a failover keeps also depends on how replicas are promoted.
	// Reads are not affected.
	WaitReplicas int

	// WaitTimeout bounds the wait for replicas. Default
	// [DefaultWaitTimeout], one second, when WaitReplicas is positive;
	// ignored otherwise; negative is an error. A fence change may then
	// take up to Timeout + WaitTimeout: the caller's context must leave
	// that much time, or the call ends with ErrStoreUnavailable and an
	// unknown outcome.
	WaitTimeout time.Duration
}

// Store is a [middleware.Store] on Valkey (or Redis 7+), through a
// caller-built valkey-go client with client-side caching. It is safe for
// concurrent use. See the package documentation for the key layout and the
// propagation bound.
type Store struct {
	client   valkey.Client
	prefix   string
	cacheTTL time.Duration
	timeout  time.Duration

	waitReplicas int           // 0: fence changes do not wait for replicas
	waitTimeout  time.Duration // 0 unless waitReplicas > 0

	epochKey    string // <prefix>epoch
	seqKey      string // <prefix>seq
	lifeKey     string // <prefix>lifetimes
	fencePrefix string // <prefix>f:
	channel     string // <prefix>changed

	replayPrefix string // <prefix>r:
	secretPrefix string // <prefix>x:
	lockPrefix   string // <prefix>l:
	auditKey     string // <prefix>audit
	auditCap     int
	regPrefix    string // <prefix>reg:

	watch watchState
}

// Errors reported by [New]. They are not wrapped in
// [middleware.ErrStoreUnavailable]: they describe a configuration to fix,
// not an outage to wait out.
var (
	// ErrNoClientCache reports a client on which client-side caching does
	// not work: built with ClientOption.DisableCache, forced to RESP2
	// (ClientOption.AlwaysRESP2), or talking to a server without RESP3.
	// Without it every request would be a network round trip.
	ErrNoClientCache = errors.New("valkeystore: client-side caching is not working: the valkey.Client must not set ClientOption.DisableCache or AlwaysRESP2, and the server must speak RESP3")
	// ErrNoInvalidation reports a client whose cached values are not
	// invalidated when a key changes, typically ClientTrackingOptions with
	// NOLOOP, or BCAST with prefixes that do not cover Config.Prefix.
	// Such a client would serve revoked sessions from its cache.
	ErrNoInvalidation = errors.New("valkeystore: client-side cache is not invalidated on writes: check ClientOption.ClientTrackingOptions (no NOLOOP; BCAST prefixes must cover the store prefix)")
	// ErrEvictionPolicy reports a server whose maxmemory-policy may evict
	// fence keys; see Config.InsecureAllowEviction.
	ErrEvictionPolicy = errors.New("valkeystore: server maxmemory-policy is not noeviction: evicted fences would revive revoked sessions")
	// ErrInvalidConfig reports a malformed [Config].
	ErrInvalidConfig = errors.New("valkeystore: invalid config")
)

// New checks cfg and the client and returns a store. It never closes or
// reconfigures client; the caller keeps ownership. New makes a few round
// trips to prove, on this client, that client-side caching works and that
// a write invalidates the cached copy; a client that fails returns
// [ErrNoClientCache] or [ErrNoInvalidation] naming the option to fix.
// It also refuses a server configured to evict keys ([ErrEvictionPolicy]).
// Failures to reach the server wrap [middleware.ErrStoreUnavailable].
func New(client valkey.Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil valkey.Client", ErrInvalidConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if err := checkPrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	if cfg.CacheTTL < 0 || cfg.Timeout < 0 || cfg.AuditCap < 0 || cfg.WaitReplicas < 0 || cfg.WaitTimeout < 0 {
		return nil, fmt.Errorf("%w: negative CacheTTL, Timeout, AuditCap, WaitReplicas or WaitTimeout", ErrInvalidConfig)
	}
	if cfg.WaitReplicas == 0 {
		cfg.WaitTimeout = 0
	} else if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.AuditCap == 0 {
		cfg.AuditCap = DefaultAuditCap
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	s := &Store{
		client:      client,
		prefix:      cfg.Prefix,
		cacheTTL:    cfg.CacheTTL,
		timeout:     cfg.Timeout,
		epochKey:    cfg.Prefix + "epoch",
		seqKey:      cfg.Prefix + "seq",
		lifeKey:     cfg.Prefix + "lifetimes",
		fencePrefix: cfg.Prefix + "f:",
		channel:     cfg.Prefix + "changed",

		replayPrefix: cfg.Prefix + "r:",
		secretPrefix: cfg.Prefix + "x:",
		lockPrefix:   cfg.Prefix + "l:",
		auditKey:     cfg.Prefix + "audit",
		auditCap:     cfg.AuditCap,
		regPrefix:    cfg.Prefix + "reg:",

		waitReplicas: cfg.WaitReplicas,
		waitTimeout:  cfg.WaitTimeout,
	}
	// The checks get a generous bound of their own: New runs once, at
	// start-up, possibly before the server is warm.
	ctx, cancel := context.WithTimeout(context.Background(), max(4*s.timeout, 2*time.Second))
	defer cancel()
	if !cfg.InsecureAllowEviction {
		if err := s.checkEviction(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.checkTracking(ctx); err != nil {
		return nil, err
	}
	if err := s.checkCaching(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// checkTracking reads the client's tracking mode (CLIENT TRACKINGINFO, on
// one of its pipelined connections, which all share the options) and
// refuses modes that leave cached fences stale:
//
//   - off: no tracking, so no client-side caching at all.
//   - NOLOOP: a connection is not told about its own writes. valkey-go
//     spreads commands over several connections, so a bump sent on the
//     connection that caches the fence would never invalidate it there.
//     The probe in checkCaching only catches this when its write happens
//     to use that connection, hence this explicit check.
//   - BCAST with prefixes that do not cover the store prefix: writes to
//     our keys are never announced.
//
// Servers without CLIENT TRACKINGINFO (or with it renamed) skip the check;
// checkCaching still runs.
func (s *Store) checkTracking(ctx context.Context) error {
	m, err := s.client.Do(ctx, s.client.B().ClientTrackinginfo().Build()).AsMap()
	if err != nil {
		if _, isReply := valkey.IsValkeyErr(err); isReply {
			return nil
		}
		return unavailable("check client tracking", err)
	}
	var flags, prefixes []string
	if v, ok := m["flags"]; ok {
		flags, _ = v.AsStrSlice()
	}
	if v, ok := m["prefixes"]; ok {
		prefixes, _ = v.AsStrSlice()
	}
	if slices.Contains(flags, "off") {
		return ErrNoClientCache
	}
	if slices.Contains(flags, "noloop") {
		return fmt.Errorf("%w (the client tracks with NOLOOP)", ErrNoInvalidation)
	}
	if slices.Contains(flags, "bcast") && len(prefixes) > 0 &&
		!slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s.prefix, p) }) {
		return fmt.Errorf("%w (BCAST prefixes %q do not cover %q)", ErrNoInvalidation, prefixes, s.prefix)
	}
	return nil
}

// checkPrefix enforces the hash-tag rule of Valkey Cluster on the prefix:
// the first '{', then the first '}' after it, with something in between.
func checkPrefix(p string) error {
	i := strings.IndexByte(p, '{')
	if i < 0 {
		return fmt.Errorf("%w: Prefix %q has no hash tag {...}; all keys of a store must share one slot", ErrInvalidConfig, p)
	}
	j := strings.IndexByte(p[i+1:], '}')
	if j <= 0 {
		return fmt.Errorf("%w: Prefix %q has no non-empty hash tag {...}; all keys of a store must share one slot", ErrInvalidConfig, p)
	}
	return nil
}

func (s *Store) checkEviction(ctx context.Context) error {
	m, err := s.client.Do(ctx, s.client.B().ConfigGet().Parameter("maxmemory-policy").Build()).AsStrMap()
	if err != nil {
		if _, isReply := valkey.IsValkeyErr(err); isReply {
			return nil // CONFIG is disabled or renamed: cannot check.
		}
		return unavailable("check eviction policy", err)
	}
	if p, ok := m["maxmemory-policy"]; ok && p != "noeviction" {
		return fmt.Errorf("%w (it is %q); set Config.InsecureAllowEviction to accept it", ErrEvictionPolicy, p)
	}
	return nil
}

// checkCaching proves on this client what the hot path relies on: a
// repeated cacheable MGET is answered from memory, and a write through the
// same client drops the cached copy. It uses a probe key of its own, with
// a short TTL in case the clean-up fails.
func (s *Store) checkCaching(ctx context.Context) error {
	probe := s.prefix + "probe:" + randomHex()
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		s.client.Do(dctx, s.client.B().Del().Key(probe).Build())
	}()
	set := func(v string) error {
		return s.client.Do(ctx, s.client.B().Set().Key(probe).Value(v).Px(30*time.Second).Build()).Error()
	}
	get := func() (valkey.ValkeyResult, string, error) {
		r := s.client.DoCache(ctx, s.client.B().Mget().Key(probe).Cache(), s.cacheTTL)
		vals, err := r.ToArray()
		if err != nil {
			return r, "", err
		}
		if len(vals) != 1 {
			return r, "", fmt.Errorf("MGET of one key returned %d values", len(vals))
		}
		v, _ := vals[0].ToString()
		return r, v, nil
	}
	if err := set("1"); err != nil {
		return unavailable("probe client-side caching", err)
	}
	if _, _, err := get(); err != nil {
		return unavailable("probe client-side caching", err)
	}
	r, _, err := get()
	if err != nil {
		return unavailable("probe client-side caching", err)
	}
	if !r.IsCacheHit() {
		return ErrNoClientCache
	}
	if err := set("2"); err != nil {
		return unavailable("probe client-side caching", err)
	}
	// The invalidation arrives asynchronously, normally within a
	// millisecond; poll for it within the check's deadline.
	for wait := 50 * time.Microsecond; ; wait = min(2*wait, 10*time.Millisecond) {
		_, v, err := get()
		if err != nil {
			return unavailable("probe client-side caching", err)
		}
		if v == "2" {
			return nil
		}
		if !sleepCtx(ctx, wait) {
			return ErrNoInvalidation
		}
	}
}

// sleepCtx waits d or until ctx ends, and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b[:])
}

// unavailable wraps err as a store failure, keeping the cause for errors.Is
// (for example context.DeadlineExceeded) and for logs.
func unavailable(op string, err error) error {
	return fmt.Errorf("valkeystore: %s: %w: %w", op, middleware.ErrStoreUnavailable, err)
}

// opContext bounds one operation by the store's timeout unless ctx already
// ends sooner. The returned function must be called when the operation is
// over.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return boundContext(ctx, s.timeout)
}

// boundContext bounds ctx by d unless it already ends sooner.
func boundContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

var errShortDst = errors.New("valkeystore: dst is shorter than scopes")

// keysOnStack is how many keys (epoch plus fences) Fences builds without a
// heap allocation for the key list; a session needs at most six.
const keysOnStack = 8

// Fences implements [middleware.Store]. It reads every fence, the epoch and
// the sequence number with one cacheable MGET through the client-side
// cache, then confirms the epoch with a cached GET: in steady state no
// network round trip, about 2µs and three allocations for five scopes. A scope never written, or
// expired, reads as the zero fence.
//
// Fails closed: a value that does not decode, a connection lost or a
// server that does not answer within the timeout returns an error wrapping
// [middleware.ErrStoreUnavailable], never old or zero fences. When the
// epoch key is absent (the data was wiped) it is created, with a new
// random value, and the fences are read again with it in one atomic step,
// so a fence reset by a wipe is never returned under the old epoch.
func (s *Store) Fences(ctx context.Context, scopes []middleware.Scope, dst []middleware.Fence) (middleware.Version, error) {
	if len(dst) < len(scopes) {
		return middleware.Version{}, errShortDst
	}
	// All keys go into one buffer, converted to one string, and sliced:
	// one allocation for every key, which valkey-go may keep as cache keys.
	// The epoch key and the sequence key go last.
	var bufArr [512]byte
	var endArr [keysOnStack]int
	buf := bufArr[:0]
	ends := endArr[:0]
	for _, sc := range scopes {
		if !sc.Valid() {
			return middleware.Version{}, fmt.Errorf("valkeystore: read %v: %w", sc, middleware.ErrInvalidScope)
		}
		buf = append(buf, s.fencePrefix...)
		buf = middleware.AppendKey(buf, sc)
		ends = append(ends, len(buf))
	}
	buf = append(buf, s.epochKey...)
	ends = append(ends, len(buf))
	buf = append(buf, s.seqKey...)
	ends = append(ends, len(buf))
	all := string(buf)
	var keyArr [keysOnStack]string
	keys := keyArr[:0]
	start := 0
	for _, end := range ends {
		keys = append(keys, all[start:end])
		start = end
	}

	// A context for both cached reads below; see lazyDeadline for why it
	// is not a context.WithTimeout.
	rctx := ctx
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > s.timeout {
		lctx := &lazyDeadline{parent: ctx, deadline: time.Now().Add(s.timeout)}
		defer lctx.release()
		rctx = lctx
	}
	vals, err := s.client.DoCache(rctx, s.client.B().Mget().Key(keys...).Cache(), s.cacheTTL).ToArray()
	if err != nil {
		return middleware.Version{}, unavailable("read fences", err)
	}
	if len(vals) != len(keys) {
		return middleware.Version{}, unavailable("read fences", fmt.Errorf("MGET of %d keys returned %d values", len(keys), len(vals)))
	}
	epoch := &vals[len(vals)-2]
	// res.IsCacheHit() cannot stand in for the re-check: valkey-go also
	// reports a hit when some keys were waited for on another caller's
	// in-flight fetch, which may have gone to the server after a wipe.
	if !epoch.IsNil() && s.epochStill(rctx, epoch) {
		return s.decode(keys, vals, dst)
	}
	// The epoch is absent (the store is new or was wiped) or changed while
	// we read. Off the hot path: read everything again from the server in
	// one atomic step that also creates the epoch if needed.
	if vals, err = s.snapshot(ctx, keys); err != nil {
		return middleware.Version{}, err
	}
	return s.decode(keys, vals, dst)
}

// epochStill reports whether the epoch the MGET returned is still the one
// in this client's cache after the fences were read.
//
// Why: one cacheable MGET mixes values served from the cache with values
// fetched (by this call or a concurrent one) from the server, so after a
// wipe it could pair a fence already reset on the server with the old
// epoch still cached: a revoked session would pass under its old epoch.
// A wipe deletes the epoch no later than the fences (FLUSHALL, a failover,
// one DEL), and the server sends its invalidation on this connection
// before any later reply, which valkey-go applies in order. So once a
// reset fence is in hand, the cached epoch is already gone, and looking it
// up again (a plain cacheable GET: a separate entry of the same key,
// about 0.3µs and no allocation when warm) tells.
func (s *Store) epochStill(ctx context.Context, first *valkey.ValkeyMessage) bool {
	was, err := first.ToString()
	if err != nil {
		return false
	}
	now, err := s.client.DoCache(ctx, s.client.B().Get().Key(s.epochKey).Cache(), s.cacheTTL).ToString()
	return err == nil && now == was
}

// decode fills dst from the values of keys (the epoch and the sequence
// number last) and returns the version. Anything that does not parse fails
// closed.
func (s *Store) decode(keys []string, vals []valkey.ValkeyMessage, dst []middleware.Fence) (middleware.Version, error) {
	if len(vals) != len(keys) {
		return middleware.Version{}, unavailable("read fences", fmt.Errorf("read of %d keys returned %d values", len(keys), len(vals)))
	}
	n := len(keys) - 2
	for i := range keys[:n] {
		v := &vals[i]
		if v.IsNil() {
			dst[i] = middleware.Fence{}
			continue
		}
		text, err := v.ToString()
		if err != nil {
			return middleware.Version{}, unavailable("read fences", err)
		}
		f, ok := fencetext.Decode(text)
		if !ok {
			return middleware.Version{}, fmt.Errorf("valkeystore: fence %s holds a malformed value: %w", keys[i], middleware.ErrStoreUnavailable)
		}
		dst[i] = f
	}
	epoch, err := vals[n].ToString()
	if err != nil || epoch == "" {
		return middleware.Version{}, fmt.Errorf("valkeystore: epoch %s holds a malformed value: %w", s.epochKey, middleware.ErrStoreUnavailable)
	}
	var seq int64
	if !vals[n+1].IsNil() {
		if seq, err = vals[n+1].AsInt64(); err != nil || seq < 0 {
			return middleware.Version{}, fmt.Errorf("valkeystore: sequence %s holds a malformed value: %w", s.seqKey, middleware.ErrStoreUnavailable)
		}
	}
	return middleware.Version{Epoch: epoch, Seq: uint64(seq)}, nil
}

// snapshotScript sets the epoch (the second-to-last of KEYS) if it is
// absent and returns the values of all KEYS (fences, then the epoch in
// force, then the bump sequence number) in one atomic step: two clients
// that find the store wiped agree on one new epoch, and the fences returned
// with it are those stored under it.
//
// A new epoch is "<server unix ms>-<ARGV[1]>", the form of
// [middleware.NewEpoch] on the server's clock, so that bearer checks can
// refuse tokens issued before the data began ([middleware.EpochTime]).
var snapshotScript = valkey.NewLuaScript(`
local e = KEYS[#KEYS - 1]
if redis.call('EXISTS', e) == 0 then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', e, string.format('%d-%s', ms, ARGV[1]))
end
return redis.call('MGET', unpack(KEYS))
`)

// snapshot is the slow path of a read that found no epoch, or an epoch
// that changed while it read. It returns the values of keys (fences, then
// the epoch and the sequence number), read on the server.
//
// The script may run on another of the client's connections than the one
// whose cache serves Fences, so its answer can be newer than that cache.
// Before returning, it waits until the cache has applied every bump the
// answer reflects (the sequence number, as Bump does for its own writes),
// so a reader never sees a fence go back after this read.
func (s *Store) snapshot(ctx context.Context, keys []string) ([]valkey.ValkeyMessage, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	all := keys
	vals, err := snapshotScript.Exec(ctx, s.client, all, []string{randomHex()}).ToArray()
	if err != nil {
		return nil, unavailable("read fences and create epoch", err)
	}
	if len(vals) != len(all) {
		return nil, unavailable("read fences and create epoch", fmt.Errorf("script returned %d values for %d keys", len(vals), len(all)))
	}
	if last := vals[len(vals)-1]; !last.IsNil() {
		seq, err := last.AsInt64()
		if err != nil {
			return nil, unavailable("read fences and create epoch", err)
		}
		epoch, _ := vals[len(vals)-2].ToString()
		if err := s.awaitOwnInvalidation(ctx, epoch, seq); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

// Epoch implements [middleware.Store]: it reads the epoch through the
// client-side cache and creates it when absent.
func (s *Store) Epoch(ctx context.Context) (string, error) {
	v, err := s.Fences(ctx, nil, nil)
	return v.Epoch, err
}

// Now implements [middleware.Clock] with the server's TIME, the clock that
// stamps every fence.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	parts, err := s.client.Do(ctx, s.client.B().Time().Build()).AsStrSlice()
	if err != nil {
		return time.Time{}, unavailable("read server time", err)
	}
	if len(parts) != 2 {
		return time.Time{}, unavailable("read server time", fmt.Errorf("TIME returned %d fields", len(parts)))
	}
	sec, err1 := strconv.ParseInt(parts[0], 10, 64)
	usec, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, unavailable("read server time", fmt.Errorf("TIME returned %q", parts))
	}
	return time.Unix(sec, usec*1000).UTC(), nil
}

// Close stops the subscription that [Store.Watch] started, if any, and
// waits for its goroutines to end. It does not close the valkey.Client,
// which belongs to the caller. Watch fails after Close; Fences and Bump
// keep working. Close is idempotent.
func (s *Store) Close() error {
	s.watch.close()
	return nil
}

// Prefix returns the key prefix in use (after defaults), for operators and
// tests.
func (s *Store) Prefix() string { return s.prefix }

// scopeKey returns the storage key of one fence.
func (s *Store) scopeKey(sc middleware.Scope) string {
	return string(middleware.AppendKey([]byte(s.fencePrefix), sc))
}
