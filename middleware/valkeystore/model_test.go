package valkeystore_test

import (
	"testing"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware/storetest"
)

// TestModel runs fewer sequences than the in-memory store does, in
// parallel: each step waits for the server, and every short announcement
// for the server's clock. One client per sequence: the model drives one
// guard.
func TestModel(t *testing.T) {
	storetest.RunModel(t, func(t *testing.T) storetest.Harness {
		addr, prefix := serverAddr(t), testPrefix()
		admin := newClient(t, addr)
		wipe := func() { deleteKeys(t, admin, prefix) }
		t.Cleanup(wipe)
		return storetest.Harness{
			Store:    newStore(t, newClient(t, addr), prefix),
			Wipe:     wipe,
			Snapshot: func() func() { return snapshotKeys(t, admin, prefix) },
		}
	}, storetest.ModelOptions{Sequences: 50, Parallel: true})
}

// snapshotKeys copies every key under prefix, with its remaining time to
// live, as a backup of the server would, and returns a function that
// restarts the data from that copy: every key under prefix deleted, then
// the copies put back (RESTORE ... REPLACE). The epoch and the sequence
// number come back with the rest, so the store reads as it did at the
// snapshot; the client-side caches hear of every key that changed.
func snapshotKeys(t *testing.T, c valkey.Client, prefix string) (restore func()) {
	t.Helper()
	type saved struct {
		key, dump string
		pttl      int64
	}
	var copies []saved
	for _, k := range scanKeys(t, c, prefix) {
		res := c.DoMulti(t.Context(), c.B().Dump().Key(k).Build(), c.B().Pttl().Key(k).Build())
		dump, err := res[0].ToString()
		if valkey.IsValkeyNil(err) {
			continue // expired since the scan
		}
		pttl, err2 := res[1].AsInt64()
		if err != nil || err2 != nil {
			t.Fatalf("DUMP %s: %v, %v", k, err, err2)
		}
		if pttl == -2 {
			continue
		}
		copies = append(copies, saved{k, dump, max(pttl, 0)})
	}
	return func() {
		deleteKeys(t, c, prefix)
		for _, s := range copies {
			cmd := c.B().Restore().Key(s.key).Ttl(s.pttl).SerializedValue(s.dump).Replace().Build()
			if err := c.Do(t.Context(), cmd).Error(); err != nil {
				t.Fatalf("RESTORE %s: %v", s.key, err)
			}
		}
	}
}
