// Package valkeystore is the [middleware.Store] for applications that run as
// several instances: fences and the store epoch live in Valkey (or Redis 7+)
// and are read through valkey-go's server-assisted client-side cache, so the
// hot path makes no network round trip in steady state.
//
// Happy path:
//
//	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{"valkey:6379"}})
//	store, err := valkeystore.New(client, valkeystore.Config{}) // checks caching works
//	defer store.Close()                                        // the client stays yours
//	guard, err := middleware.New(middleware.Config{Store: store, Keys: keys})
//
// # Key layout
//
// With the default prefix "{sessionfence}:":
//
//	<prefix>epoch            the store epoch: "<server unix ms>-<32 random hex digits>"
//	<prefix>f:<Scope.Key()>  one fence, e.g. "{sessionfence}:f:u:https://idp|alice"
//	<prefix>seq              the bump sequence number: every bump and epoch rotation increments it
//	<prefix>lifetimes        LifetimeRecorder: a hash, "session" and "idp_session" in ms, only ever raised
//	<prefix>probe:<random>   short-lived keys New uses to test the cache
//	<prefix>changed          the pub/sub channel every bump publishes on
//
// The optional abilities add, under the same prefix and so the same slot
// (<id> below is escaped as in [middleware.Scope.Key]):
//
//	<prefix>r:<id>             Replay: "1", SET NX PX ttl; its existence is the memory of id
//	<prefix>x:<key>            Secrets: the (sealed) value, SET PX ttl
//	<prefix>l:<name>           Locker: the holder's random token, SET NX PX ttl
//	<prefix>audit              AuditLog: a stream, XADD MAXLEN ~ AuditCap; one field "e", the entry as JSON
//	<prefix>reg:all            Registry: sorted set of session ids scored by expiry (Unix ms)
//	<prefix>reg:t:<tenant>     the same for one tenant
//	<prefix>reg:u:<iss>|<sub>  the same for one user
//	<prefix>reg:s:<id>         one session's SessionInfo as JSON, PXAT its Expires
//
// Every one of these keys expires by itself except the audit stream, which
// is bounded by length instead. The registry's sets carry an expiry no
// earlier than their latest member's, and each TrackSession removes the
// members of its three sets whose score has passed (ZREMRANGEBYSCORE), so
// no sweeper is needed; counts are ZCOUNT from now to +inf, O(log N) and
// flat in the number of sessions. None of these keys is read through the
// client-side cache: they are not on the hot path. Wiping the data (see
// the security notes) forgets them with the fences: replayed logout tokens
// are then accepted once more, which only bumps a fence again.
//
// The epoch has the form of [middleware.NewEpoch], stamped with the
// server's TIME when a read or a bump finds it absent; [middleware.EpochTime]
// reads the time back.
//
// A fence value is the text form of package [fencetext]:
//
//	v2:gen:reserved:reload:bumpedAtMs:policy:pendingAtMs:pendingPolicy:reason
//
// for example "v2:3:3:1:1700000000123:1:0:0:security incident". Times are
// Unix milliseconds on the server's clock (0 for none); the reason, last,
// may contain ':'. Values in the first form, without "v2:" and Reserved,
// are still read. A fence bumped with a TTL carries the key's expiry; every
// other key has none.
//
// Every key carries the prefix's hash tag, so one store lives in one hash
// slot of a cluster: the bump script and the read are single-slot commands,
// and a shard that loses its data loses the epoch together with the fences,
// so sessions fail closed instead of coming back (see [Config].Prefix).
//
// # Reads and writes
//
// [Store.Fences] sends one cacheable MGET of the fence keys, the epoch and
// the sequence number through valkey.Client.DoCache, and returns the last
// two as the read's [middleware.Version]: the guard compares the sequence
// number with the highest it and the session's cookie have seen, to detect
// a store that went back in time (see [middleware.ErrStoreRolledBack]).
// valkey-go keeps one cache entry per key, so a bump invalidates only the
// fence it changed. A cached GET of the epoch then confirms that no wipe
// happened while the fences were read (a reset fence must never be paired
// with the old epoch); when the epoch is absent or moved, one script
// creates it if needed and returns every key in one atomic read. A warm read costs about two microseconds and three
// small allocations for five fences.
//
// [Store.Bump] runs one Lua script (EVALSHA, falling back to EVAL; EVAL
// with [Config].WaitReplicas) that
// reads the server's TIME, parses the current value, applies exactly the
// steps of [middleware.ApplyBump], writes the result (with PX when the bump
// has a TTL), creates the epoch if absent, increments <prefix>seq and
// publishes on <prefix>changed. The script checks an announcement's time
// against the server clock; Go validates everything else first. Bump then
// reads <prefix>seq through its own cache until it sees the value its
// script set (or goes to the server): from then on its own cache cannot
// hold the fence as it was before the bump, whose invalidation may travel
// on another connection than the script's reply.
//
// [Store.RotateEpoch] implements [middleware.EpochRotator], which the guard
// calls when it finds the store behind what it had seen: one script
// replaces the epoch only while it still holds the one the guard read
// (instances that notice at once agree on one new epoch), increments
// <prefix>seq and publishes on <prefix>changed. The fences are kept. The
// script is idempotent, so valkey-go may retry it after a connection error.
//
// # Replicas and persistence
//
// Replication is asynchronous: a bump's reply does not say that a replica
// has it. With [Config].WaitReplicas = n, Bump and RotateEpoch send the
// script and WAIT n WaitTimeout together in one DoMulti, which valkey-go
// runs in order on one connection taken for that batch (WAIT counts the
// acknowledgements of the last write of its own connection). When fewer
// than n replicas acknowledge within [Config].WaitTimeout (default one
// second) the change is still in force on the primary, and the call
// returns its result together with an error wrapping [ErrNotReplicated]
// and [middleware.ErrStoreUnavailable]. With WaitReplicas the script is
// sent in full (EVAL) and never retried.
//
// For a single server, the change must be on disk before its reply:
// appendonly yes with appendfsync always. RDB snapshots alone lose every
// bump acknowledged since the last snapshot when the server crashes.
//
// # Propagation bound
//
// The server pushes an invalidation to every client that cached a key the
// moment the key changes (RESP3 client tracking). Measured on a small
// loopback machine, another instance reads a bump about 0.1 ms (p50) after
// the writer's reply, a few milliseconds at p99 under load; run
// TestPropagation with SESSIONFENCE_PROPAGATION=1 to measure yours.
// The instance that made the bump sees it on its very next read: Bump
// returns only once its own cache has dropped the old value.
//
// When the connection is lost, valkey-go drops that connection's cache and
// the next read goes to the network and fails: Fences returns an error
// wrapping [middleware.ErrStoreUnavailable], never cached values. A link
// that dies silently (no FIN, no RST) is noticed by valkey-go's keep-alive
// PING: after about ClientOption.Dialer.KeepAlive + ConnWriteTimeout, 11 s
// with valkey-go's defaults. Until then invalidations cannot arrive and
// reads may be that stale; lower ConnWriteTimeout to tighten the bound.
//
// # Security notes
//
//   - Fail closed: unreachable server, timeout, lost connection, a value
//     that does not parse, an epoch that is empty: all are errors wrapping
//     [middleware.ErrStoreUnavailable]. Bump refuses to overwrite a value it
//     cannot parse; an operator must inspect and delete it.
//   - The server must not evict keys (maxmemory-policy noeviction): an
//     evicted fence reads as never bumped. [New] checks this where CONFIG
//     is allowed ([Config].InsecureAllowEviction to override).
//   - A failover to a replica that had not received the last bumps, or a
//     restart from an older snapshot, keeps the epoch and loses those
//     bumps. The guard detects it where an instance or a returning cookie
//     had seen a later bump, and rotates the epoch (everyone logs in
//     again); where nobody had, the lost revocations are silently undone.
//     Keep acknowledged writes: appendfsync always, or
//     [Config].WaitReplicas. After restoring a backup on purpose, delete
//     <prefix>epoch.
//   - Never delete fence keys by hand while keeping the epoch key: that
//     resets those fences and revives the sessions they revoked. To reset
//     a store, delete <prefix>epoch first (every session then fails
//     closed), then the rest, or FLUSHALL.
//   - Generations are counted in Lua numbers inside the script; a stored
//     generation of 2^52 or more is treated as corrupt rather than rounded.
//   - Scope ids come from tokens: they are escaped by [middleware.Scope.Key],
//     so they can neither collide nor introduce a hash tag.
package valkeystore
