package redisproc

import (
	"os"
	"testing"
	"time"
)

// needBinary is testenv.NeedBinary (which imports this package).
func needBinary(t *testing.T) {
	t.Helper()
	if _, err := Binary(); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("SESSIONFENCE_REQUIRE_STORE") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func TestAServerStartsDiesAndRestarts(t *testing.T) {
	needBinary(t)
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if Ping(s.Addr, 100*time.Millisecond) == nil {
		t.Fatal("killed server still answers")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
}

func TestAClusterStartsAndFailsOver(t *testing.T) {
	needBinary(t)
	start := time.Now()
	c, err := StartCluster(3, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Logf("cluster up in %v: %v", time.Since(start), c.Addrs())
	slot, err := c.KeySlot("{x}:a")
	if err != nil {
		t.Fatal(err)
	}
	m, r, err := c.SlotOwner(slot)
	if err != nil || m == nil || r == nil {
		t.Fatalf("owner of slot %d: master %v, replica %v, err %v", slot, m != nil, r != nil, err)
	}
	start = time.Now()
	if err := c.Failover(r, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	m2, r2, err := c.SlotOwner(slot)
	if err != nil || m2 != r || r2 != m {
		t.Fatalf("after failover: master is the former replica: %v, replica is the former master: %v, err %v", m2 == r, r2 == m, err)
	}
	t.Logf("failover in %v", time.Since(start))
}
