// Package faults holds the reliability tests of sessionfence over Valkey:
// the server stopped, restarted empty or with persistence, restored from
// an older snapshot (rollback_test.go), slowed down, and bounded
// staleness, each against a redis-server the test starts and kills
// itself. Run them with
//
//	cd bench && go test -race ./faults
package faults
