// Package testenv gives the bench module's tests their servers: each test
// starts its own redis-server (or valkey-server) processes on free
// loopback ports in temporary directories, and never touches a server it
// did not start.
//
// A missing server binary skips the tests on a developer's machine, and
// fails them when CI=true or SESSIONFENCE_REQUIRE_STORE=1 (as
// scripts/bench-tests and scripts/test set): CI must never pass by
// skipping.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/sessionfence/sessionfence/bench/internal/redisproc"
)

// Required reports whether a missing server must fail the tests.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SESSIONFENCE_REQUIRE_STORE") == "1"
}

// NeedBinary skips (or, when Required, fails) tb unless a server binary is
// available.
func NeedBinary(tb testing.TB) {
	tb.Helper()
	if _, err := redisproc.Binary(); err != nil {
		if Required() {
			tb.Fatalf("%v (install redis-server; scripts/test does it with apt)", err)
		}
		tb.Skipf("%v: set SESSIONFENCE_REQUIRE_STORE=1 to make this a failure", err)
	}
}

// Server starts a server for tb with extra arguments and kills it (and
// removes its directory) when tb ends.
func Server(tb testing.TB, args ...string) *redisproc.Server {
	tb.Helper()
	NeedBinary(tb)
	s, err := redisproc.Start(redisproc.Options{Args: args})
	if err != nil {
		tb.Fatalf("start server: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Cluster starts a cluster of masters (with one replica each when
// replicas is set) for tb and tears it down when tb ends.
func Cluster(tb testing.TB, masters int, replicas bool) *redisproc.Cluster {
	tb.Helper()
	NeedBinary(tb)
	c, err := redisproc.StartCluster(masters, replicas)
	if err != nil {
		tb.Fatalf("start cluster: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Prefix returns a key prefix with a hash tag no other test uses.
func Prefix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "{sfbench-" + hex.EncodeToString(b) + "}:"
}
