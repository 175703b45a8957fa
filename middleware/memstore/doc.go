// Package memstore is the in-process [middleware.Store]: fences and the
// store epoch live in one map guarded by a lock, in the memory of a single
// process. It is the embedded default for an application that runs as one
// instance, and the test double for everything built on the store.
//
// Happy path:
//
//	store := memstore.New(memstore.Config{})
//	guard, err := middleware.New(middleware.Config{Store: store, Keys: keys})
//	// Fence changes go through the guard's writer (expiry, audit, metrics):
//	_, err = guard.Writer().Write(ctx, middleware.Change{
//		Scope: middleware.GlobalScope(), Kind: middleware.BumpRevoke, Actor: "ops",
//	})
//
// Tests inject a clock with [Config].Now and move it themselves; fence TTLs
// and announced terminations are judged against that clock.
//
// The store also has every optional ability of [middleware]: Replay
// (one-time ids), Secrets (server-side values), Locker (leases), AuditLog
// (a ring of the newest [Config].AuditCap entries, 10000 by default) and
// Registry (live sessions per user, tenant and in total). Their entries
// expire on the same clock, lazily, with no background goroutine: replay
// ids, secrets and leases by a few entries sampled on every write, sessions
// through a heap ordered by expiry that every registry call drains of what
// has expired, so counts are O(1) and tracking is O(log n).
//
// Security notes:
//
//   - Nothing is shared between processes. Several instances, each with
//     its own memstore, each have their own fences: a revocation on one is
//     not seen by the others. Use valkeystore for more than one instance.
//   - Nothing survives a restart. A new process makes a new epoch
//     ([middleware.NewEpoch], stamped with the store's clock), so every
//     session issued before the restart fails closed, and so does every
//     bearer token issued before it: the intended behaviour of a wiped
//     store, never a silent resurrection of what was revoked.
//   - Expired fences (those bumped with a TTL) read as never written. Choose
//     a TTL no shorter than the lifetime of any session the fence covers.
package memstore
