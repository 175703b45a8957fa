// Package storetest is the conformance suite for [middleware.Store]
// implementations: the store contract written as tests. Every store the
// project ships runs it, and so should any third-party store.
//
// Happy path, in the store's own _test.go file:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness {
//			s := mystore.New(...)
//			return storetest.Harness{Store: s, Wipe: s.Wipe, Reconnect: ...}
//		})
//	}
//
// The suite calls the harness constructor once per subtest, so each subtest
// starts from empty data; register clean-up with t.Cleanup inside it.
//
// Time: when the store's clock can be injected, give [Harness].Advance and
// [Harness].Now and the suite moves time itself. Otherwise TTL and
// announcement tests use short real durations (a few hundred milliseconds)
// and poll with a deadline; the suite never sleeps to wait for propagation.
//
// Optional abilities: the subtests of [middleware.Replay],
// [middleware.Secrets], [middleware.Locker], [middleware.AuditLog] and
// [middleware.Registry] run when the store implements them (found by type
// assertion) and skip otherwise. To test the bound of the audit log, state
// the capacity the store was built with in [Harness].AuditCap (and
// [Harness].AuditSlack for approximate trimming).
//
// [RunModel] is a model-based test of the fence algebra on top of the
// store: random, seeded sequences of logins, revocations, announcements,
// cancels, kept sessions, renewals, logouts, clock moves, wipes and
// restores from an older snapshot ([Harness].Snapshot), each step checked
// against a small reference model of which sessions must pass. The rules
// are a table at the top of model.go. SESSIONFENCE_MODEL_SEQUENCES sets
// the number of sequences for long runs, SESSIONFENCE_MODEL_SEED replays
// one.
//
// What the suite proves matters for security: that a wiped store changes
// its epoch (so revoked sessions can never come back), that concurrent
// bumps never lose a generation, that invalid bumps change nothing, and
// that a bump made through one client reaches another.
package storetest
