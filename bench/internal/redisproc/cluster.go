package redisproc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cluster is a Redis/Valkey Cluster of loopback servers: Masters[i]
// serves the i-th third of the hash slots, Replicas[i] replicates it.
type Cluster struct {
	Masters  []*Server
	Replicas []*Server
}

// Nodes returns every server, masters first.
func (c *Cluster) Nodes() []*Server {
	return append(append([]*Server(nil), c.Masters...), c.Replicas...)
}

// Addrs returns every node's address, masters first.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, s := range c.Nodes() {
		out = append(out, s.Addr)
	}
	return out
}

// Close kills every node and removes their directories.
func (c *Cluster) Close() {
	for _, s := range c.Nodes() {
		s.Close()
	}
}

const totalSlots = 16384

// StartCluster starts masters servers (with one replica each when
// replicas is set) and joins them into one cluster with CLUSTER
// ADDSLOTSRANGE, MEET and REPLICATE, as redis-cli --cluster create does,
// so that only the server binary is needed. It returns once every node
// reports cluster_state:ok and every replica's link is up, or fails after
// about 30 s.
func StartCluster(masters int, replicas bool, extraArgs ...string) (*Cluster, error) {
	if masters < 1 {
		return nil, errors.New("redisproc: a cluster needs at least one master")
	}
	args := append([]string{
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		// Short timeouts keep failover tests quick on loopback.
		"--cluster-node-timeout", "2000",
		// A replica may take over however long it was disconnected: a test
		// cluster has no stale replicas to fear.
		"--cluster-replica-validity-factor", "0",
		// Replicas sync at once instead of waiting for more replicas.
		"--repl-diskless-sync-delay", "0",
	}, extraArgs...)
	c := &Cluster{}
	fail := func(err error) (*Cluster, error) {
		c.Close()
		return nil, err
	}
	n := masters
	if replicas {
		n *= 2
	}
	for i := range n {
		s, err := Start(Options{Args: args, Cluster: true})
		if err != nil {
			return fail(err)
		}
		if i < masters {
			c.Masters = append(c.Masters, s)
		} else {
			c.Replicas = append(c.Replicas, s)
		}
	}
	all := c.Nodes()
	ids := make([]string, len(all))
	for i, s := range all {
		conn, err := Dial(s.Addr, 5*time.Second)
		if err != nil {
			return fail(err)
		}
		id, err := conn.String("CLUSTER", "MYID")
		if err == nil {
			// Distinct config epochs, as redis-cli gives them, so the
			// masters need no epoch-collision round before agreeing.
			_, err = conn.Do("CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1))
		}
		if err == nil && i < masters {
			lo, hi := i*totalSlots/masters, (i+1)*totalSlots/masters-1
			_, err = conn.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi))
		}
		conn.Close()
		if err != nil {
			return fail(fmt.Errorf("redisproc: configure %s: %w", s.Addr, err))
		}
		ids[i] = id
	}
	first, err := Dial(all[0].Addr, 5*time.Second)
	if err != nil {
		return fail(err)
	}
	for _, s := range all[1:] {
		if _, err := first.Do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(s.Port)); err != nil {
			first.Close()
			return fail(fmt.Errorf("redisproc: CLUSTER MEET %s: %w", s.Addr, err))
		}
	}
	first.Close()
	// Every node must know every other before a replica can name its
	// master.
	if err := waitAll(all, 30*time.Second, func(conn *Conn) (bool, error) {
		nodes, err := conn.String("CLUSTER", "NODES")
		if err != nil {
			return false, err
		}
		for _, id := range ids {
			if !strings.Contains(nodes, id) {
				return false, nil
			}
		}
		return !strings.Contains(nodes, "handshake") && !strings.Contains(nodes, "noaddr"), nil
	}); err != nil {
		return fail(fmt.Errorf("redisproc: nodes did not meet: %w", err))
	}
	for i, s := range c.Replicas {
		conn, err := Dial(s.Addr, 5*time.Second)
		if err != nil {
			return fail(err)
		}
		_, err = conn.Do("CLUSTER", "REPLICATE", ids[i])
		conn.Close()
		if err != nil {
			return fail(fmt.Errorf("redisproc: CLUSTER REPLICATE on %s: %w", s.Addr, err))
		}
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		return fail(err)
	}
	return c, nil
}

// WaitHealthy waits until every running node reports cluster_state:ok,
// agrees on the number of masters, and every node that is a replica has
// its link to its master up.
func (c *Cluster) WaitHealthy(limit time.Duration) error {
	var running []*Server
	for _, s := range c.Nodes() {
		if s.Running() {
			running = append(running, s)
		}
	}
	return waitAll(running, limit, func(conn *Conn) (bool, error) {
		info, err := conn.String("CLUSTER", "INFO")
		if err != nil {
			return false, err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return false, nil
		}
		if !strings.Contains(info, "cluster_size:"+strconv.Itoa(len(c.Masters))+"\r") {
			return false, nil
		}
		rep, err := conn.Info("replication")
		if err != nil {
			return false, err
		}
		if rep["role"] == "slave" && rep["master_link_status"] != "up" {
			return false, nil
		}
		// Every node must see the whole topology (gossip lags the
		// replica's own view): the masters with slots and every other
		// running node as a replica, none failing.
		nodes, err := conn.String("CLUSTER", "NODES")
		if err != nil {
			return false, err
		}
		withSlots, replicas := 0, 0
		for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 || strings.Contains(f[2], "fail") {
				continue
			}
			switch {
			case strings.Contains(f[2], "master") && len(f) > 8:
				withSlots++
			case strings.Contains(f[2], "slave"):
				replicas++
			}
		}
		return withSlots == len(c.Masters) && replicas == len(running)-len(c.Masters), nil
	})
}

// SlotOwner returns the master serving slot and its replica, asking the
// first running node (CLUSTER NODES).
func (c *Cluster) SlotOwner(slot int) (master, replica *Server, err error) {
	byPort := make(map[string]*Server)
	for _, s := range c.Nodes() {
		byPort[s.Addr] = s
	}
	var nodes string
	for _, s := range c.Nodes() {
		if !s.Running() {
			continue
		}
		conn, err := Dial(s.Addr, 5*time.Second)
		if err != nil {
			continue
		}
		nodes, err = conn.String("CLUSTER", "NODES")
		conn.Close()
		if err == nil {
			break
		}
	}
	if nodes == "" {
		return nil, nil, errors.New("redisproc: no node answered CLUSTER NODES")
	}
	type node struct {
		id, addr, master, flags string
		isMaster                bool
		slots                   []string
	}
	var list []node
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		list = append(list, node{id: f[0], addr: addr, master: f[3], flags: f[2], isMaster: strings.Contains(f[2], "master"), slots: f[8:]})
	}
	var mid string
	for _, n := range list {
		if !n.isMaster {
			continue
		}
		for _, r := range n.slots {
			lo, hi, _ := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if hi != "" {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 == nil && err2 == nil && slot >= a && slot <= b {
				mid, master = n.id, byPort[n.addr]
			}
		}
	}
	if master == nil {
		return nil, nil, fmt.Errorf("redisproc: no master serves slot %d", slot)
	}
	for _, n := range list {
		if n.master == mid && !strings.Contains(n.flags, "fail") {
			replica = byPort[n.addr]
		}
	}
	return master, replica, nil
}

// Failover asks replica to take over from its master with CLUSTER
// FAILOVER (the coordinated manual failover: the master stops accepting
// writes, the replica catches up with its replication offset, then
// switches), and waits until replica is a master and the cluster is
// healthy again.
func (c *Cluster) Failover(replica *Server, limit time.Duration) error {
	conn, err := Dial(replica.Addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Do("CLUSTER", "FAILOVER"); err != nil {
		return fmt.Errorf("redisproc: CLUSTER FAILOVER on %s: %w", replica.Addr, err)
	}
	deadline := time.Now().Add(limit)
	for {
		rep, err := conn.Info("replication")
		if err == nil && rep["role"] == "master" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redisproc: %s did not become master within %v", replica.Addr, limit)
		}
		t := time.NewTimer(10 * time.Millisecond)
		<-t.C
	}
	// Every node must have learned the new owner, so that a client
	// refreshing its slot map from any node is sent to it.
	var running []*Server
	for _, s := range c.Nodes() {
		if s.Running() {
			running = append(running, s)
		}
	}
	if err := waitAll(running, time.Until(deadline)+time.Second, func(conn *Conn) (bool, error) {
		nodes, err := conn.String("CLUSTER", "NODES")
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(nodes, "\n") {
			f := strings.Fields(line)
			if len(f) > 2 && strings.HasPrefix(f[1], replica.Addr+"@") {
				return strings.Contains(f[2], "master"), nil
			}
		}
		return false, nil
	}); err != nil {
		return fmt.Errorf("redisproc: the cluster did not learn of the failover: %w", err)
	}
	return c.WaitHealthy(time.Until(deadline) + time.Second)
}

// KeySlot returns the hash slot of key, asking a node (CLUSTER KEYSLOT).
func (c *Cluster) KeySlot(key string) (int, error) {
	for _, s := range c.Nodes() {
		conn, err := Dial(s.Addr, 5*time.Second)
		if err != nil {
			continue
		}
		v, err := conn.Do("CLUSTER", "KEYSLOT", key)
		conn.Close()
		if err != nil {
			return 0, err
		}
		n, ok := v.(int64)
		if !ok {
			return 0, fmt.Errorf("CLUSTER KEYSLOT returned %T", v)
		}
		return int(n), nil
	}
	return 0, errors.New("redisproc: no node reachable")
}

// waitAll polls cond on every server until all hold, or fails after limit.
func waitAll(servers []*Server, limit time.Duration, cond func(*Conn) (bool, error)) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		ok := true
		for _, s := range servers {
			conn, err := Dial(s.Addr, time.Second)
			if err != nil {
				ok, last = false, err
				break
			}
			good, err := cond(conn)
			conn.Close()
			if err != nil {
				last = err
			}
			if !good {
				ok = false
				if err == nil {
					last = fmt.Errorf("%s not ready", s.Addr)
				}
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", limit, last)
		}
		t := time.NewTimer(20 * time.Millisecond)
		<-t.C
	}
}
