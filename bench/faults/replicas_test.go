package faults_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/bench/internal/redisproc"
	"github.com/sessionfence/sessionfence/bench/internal/testenv"
	"github.com/sessionfence/sessionfence/bench/internal/variants"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// TestWaitReplicasAcknowledgesBumpsAndReportsAStoppedReplica runs a
// primary with one replica and a store with WaitReplicas 1. A bump returns
// once the replica has it (it can be read there at once). With the replica
// frozen (SIGSTOP: the link stays up, nothing is acknowledged) a bump
// still applies on the primary, where it revokes at once, but returns
// ErrNotReplicated (with ErrStoreUnavailable) after WaitTimeout. Once the
// replica runs again, bumps are acknowledged again.
func TestWaitReplicasAcknowledgesBumpsAndReportsAStoppedReplica(t *testing.T) {
	// The frozen-replica case waits out its timeout on purpose; the others
	// must never hit theirs, so they get a generous one (a loaded CI
	// machine under -race can take far longer than the usual 6–150 ms).
	const wait, generous = 300 * time.Millisecond, 10 * time.Second
	// Without a delay before its full sync (diskless, 5 s by default) the
	// replica links at once.
	primary := testenv.Server(t, "--repl-diskless-sync-delay", "0")
	replica := testenv.Server(t, "--replicaof", "127.0.0.1 "+strconv.Itoa(primary.Port))
	until(t, 15*time.Second, "the replica's link is up", func() bool {
		return info(primary, "connected_slaves") == "1" && info(replica, "master_link_status") == "up"
	})
	prefix, key := testenv.Prefix(), middleware.GenerateKey()
	a := newApp(t, primary.Addr, prefix, key, appOptions{
		store: func(c *valkeystore.Config) { c.WaitReplicas, c.WaitTimeout = 1, generous },
	})
	// A second instance of the same app whose WAIT gives up quickly.
	quick := newApp(t, primary.Addr, prefix, key, appOptions{
		store: func(c *valkeystore.Config) { c.WaitReplicas, c.WaitTimeout = 1, wait },
	})
	ctx := t.Context()
	alice := a.issue(t, "alice")
	revoke := middleware.Bump{Kind: middleware.BumpRevoke, Reason: "terminate user"}

	bob := middleware.SubjectScope(variants.Issuer, "bob")
	start := time.Now()
	f, err := a.store.Bump(ctx, bob, revoke)
	took := time.Since(start)
	if err != nil || f.Gen != 1 {
		t.Fatalf("bump with the replica running: %+v, %v", f, err)
	}
	onReplica := rawGet(t, replica, prefix+"f:"+bob.Key())
	t.Logf("replica running: bump acknowledged in %v; the replica holds %q", took, onReplica)
	if onReplica == "" {
		t.Fatalf("the bump was acknowledged but the replica does not hold it")
	}

	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	f, err = quick.store.Bump(ctx, middleware.SubjectScope(variants.Issuer, "alice"), revoke)
	took = time.Since(start)
	t.Logf("replica stopped: bump returned after %v (WaitTimeout %v): generation %d, error: %v", took, wait, f.Gen, err)
	if !errors.Is(err, valkeystore.ErrNotReplicated) || !errors.Is(err, middleware.ErrStoreUnavailable) {
		t.Fatalf("bump with the replica stopped: %v, want ErrNotReplicated and ErrStoreUnavailable", err)
	}
	if f.Gen != 1 {
		t.Fatalf("bump with the replica stopped returned generation %d, want 1", f.Gen)
	}
	// WAIT holds the reply for its whole timeout; the bound above it is
	// generous (slow CI, -race).
	if took < wait || took > wait+5*time.Second {
		t.Fatalf("bump with the replica stopped took %v, want about WaitTimeout %v", took, wait)
	}
	d := quick.guard.Check(ctx, alice.Value)
	t.Logf("replica stopped: alice's session on the primary: %v", d)
	if d.Kind != middleware.DecisionRevoked || d.Scope.Kind != middleware.ScopeSubject {
		t.Fatalf("the unreplicated revocation is not in force on the primary: %v", d)
	}

	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}
	// The replica catches up on its own; poll with reload bumps (harmless:
	// no session is bound to this tenant) until one is acknowledged.
	scratch := middleware.TenantScope("scratch")
	until(t, 15*time.Second, "bumps are acknowledged after the replica resumed", func() bool {
		_, err := a.store.Bump(ctx, scratch, middleware.Bump{Kind: middleware.BumpReload})
		return err == nil
	})
	t.Logf("replica resumed: bumps acknowledged again")
}

// info returns one field of s's INFO replication, or "" when s does not
// answer.
func info(s *redisproc.Server, field string) string {
	m, err := s.Info("replication")
	if err != nil {
		return ""
	}
	return m[field]
}
