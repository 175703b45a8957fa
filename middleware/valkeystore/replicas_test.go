package valkeystore_test

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// connectedReplicas returns how many replicas the server has now (INFO
// replication).
func connectedReplicas(t *testing.T, c valkey.Client) int {
	t.Helper()
	info, err := c.Do(t.Context(), c.B().Info().Section("replication").Build()).ToString()
	if err != nil {
		t.Fatalf("INFO replication: %v", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO replication: connected_slaves:%s", v)
			}
			return n
		}
	}
	t.Fatalf("INFO replication has no connected_slaves line")
	return 0
}

// With more replicas asked for than the server has, every fence change
// waits WaitTimeout, is applied on the primary, and reports
// ErrNotReplicated wrapped with ErrStoreUnavailable. (Replicas that
// acknowledge, then one that stops, are tested with real processes in
// bench/faults.)
func TestFenceChangesNotAcknowledgedByEnoughReplicasAreAppliedAndReported(t *testing.T) {
	const wait = 50 * time.Millisecond
	e := newEnv(t)
	s := newStoreConfig(t, newClient(t, e.addr), valkeystore.Config{
		Prefix: e.prefix, WaitReplicas: connectedReplicas(t, e.admin) + 1, WaitTimeout: wait,
	})
	sc := middleware.SubjectScope("https://idp.test", "alice")
	for gen := uint64(1); gen <= 2; gen++ {
		start := time.Now()
		f, err := s.Bump(t.Context(), sc, middleware.Bump{Kind: middleware.BumpRevoke})
		took := time.Since(start)
		if !errors.Is(err, valkeystore.ErrNotReplicated) || !errors.Is(err, middleware.ErrStoreUnavailable) {
			t.Fatalf("bump %d: %v, want ErrNotReplicated and ErrStoreUnavailable", gen, err)
		}
		if f.Gen != gen {
			t.Fatalf("bump %d returned generation %d", gen, f.Gen)
		}
		if took < wait {
			t.Fatalf("bump %d returned after %v, before WAIT's timeout %v", gen, took, wait)
		}
		if got, err := read1(t, e.b, sc); err != nil || got.Gen != gen {
			t.Fatalf("after bump %d another store reads %+v, %v: the bump is not applied", gen, got, err)
		}
	}

	old, err := e.b.Epoch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	next, err := s.RotateEpoch(t.Context(), old, math.MaxUint64)
	if !errors.Is(err, valkeystore.ErrNotReplicated) || !errors.Is(err, middleware.ErrStoreUnavailable) {
		t.Fatalf("RotateEpoch: %v, want ErrNotReplicated and ErrStoreUnavailable", err)
	}
	if next == "" || next == old {
		t.Fatalf("RotateEpoch returned %q (old %q)", next, old)
	}
	if got, err := e.b.Epoch(t.Context()); err != nil || got != next {
		t.Fatalf("epoch after the rotation: %q, %v; want %q", got, err, next)
	}
}
