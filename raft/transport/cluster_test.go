package transport

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/regent-signer/regent/raft/pki"
)

// testNode is one hashicorp/raft node over this package's transport.
type testNode struct {
	id    string
	raft  *raft.Raft
	fsm   *testFSM
	trans *raft.NetworkTransport
	reg   *prometheus.Registry
}

func raftConfig(id string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 500 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.Logger = hclog.NewNullLogger()
	return c
}

// newTransport starts a transport for material m on 127.0.0.1:0.
func newTransport(t *testing.T, m *pki.Material) (*raft.NetworkTransport, *prometheus.Registry) {
	t.Helper()
	metrics, reg := newMetrics(t)
	tr, err := New(Config{
		BindAddr: "127.0.0.1:0",
		TLS:      m,
		Timeout:  2 * time.Second,
		Logger:   hclog.NewNullLogger(),
		Metrics:  metrics,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr, reg
}

// startRaft starts a raft node on trans, bootstrapping it with servers if
// servers is not empty.
func startRaft(t *testing.T, id string, trans *raft.NetworkTransport, reg *prometheus.Registry, servers []raft.Server) *testNode {
	t.Helper()
	n := &testNode{id: id, fsm: &testFSM{}, trans: trans, reg: reg}
	store := raft.NewInmemStore()
	if len(servers) > 0 {
		if err := raft.BootstrapCluster(raftConfig(id), store, store, raft.NewInmemSnapshotStore(), trans,
			raft.Configuration{Servers: servers}); err != nil {
			t.Fatalf("bootstrap %s: %v", id, err)
		}
	}
	r, err := raft.NewRaft(raftConfig(id), n.fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatalf("NewRaft %s: %v", id, err)
	}
	n.raft = r
	t.Cleanup(func() { _ = r.Shutdown().Error() })
	return n
}

// startCluster starts dc1..dc3 from the PKI in dir, bootstrapped together.
func startCluster(t *testing.T, dir string) []*testNode {
	t.Helper()
	names := []string{"dc1", "dc2", "dc3"}
	trans := make([]*raft.NetworkTransport, len(names))
	regs := make([]*prometheus.Registry, len(names))
	var servers []raft.Server
	for i, name := range names {
		trans[i], regs[i] = newTransport(t, load(t, dir, name))
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(name), Address: trans[i].LocalAddr()})
	}
	nodes := make([]*testNode, len(names))
	for i, name := range names {
		nodes[i] = startRaft(t, name, trans[i], regs[i], servers)
	}
	return nodes
}

// waitLeader waits until exactly one node leads and every node knows it.
func waitLeader(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, "a leader known to all nodes", func() bool {
		leader = nil
		for _, n := range nodes {
			if n.raft.State() == raft.Leader {
				if leader != nil {
					return false
				}
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range nodes {
			if _, id := n.raft.LeaderWithID(); id != raft.ServerID(leader.id) {
				return false
			}
		}
		return true
	})
	return leader
}

// onLeader runs op on the current leader, again on the new leader if
// leadership moved meanwhile (the race detector on two shared cores can
// delay a heartbeat past the lease). op must be idempotent: after
// ErrLeadershipLost its effect may or may not have happened.
func onLeader(t *testing.T, nodes []*testNode, what string, op func(*testNode) raft.Future) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := op(waitLeader(t, nodes)).Error()
		if err == nil {
			return
		}
		if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) {
			t.Fatalf("%s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: leadership kept moving: %v", what, err)
		}
	}
}

func applyEverywhere(t *testing.T, nodes []*testNode, entry string) {
	t.Helper()
	onLeader(t, nodes, fmt.Sprintf("Apply(%q)", entry), func(l *testNode) raft.Future {
		return l.raft.Apply([]byte(entry), 5*time.Second)
	})
	waitFor(t, fmt.Sprintf("%q applied on every node", entry), func() bool {
		for _, n := range nodes {
			if !n.fsm.has(entry) {
				return false
			}
		}
		return true
	})
}

func TestThreeNodeCluster(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	nodes := startCluster(t, dir)
	waitLeader(t, nodes)
	applyEverywhere(t, nodes, "first")
	applyEverywhere(t, nodes, "second")
	for _, n := range nodes {
		// A retried Apply may apply an entry twice; order is what matters.
		if got := slices.Compact(n.fsm.entries()); len(got) != 2 || got[0] != "first" || got[1] != "second" {
			t.Errorf("%s applied %v", n.id, got)
		}
		if got := failures(t, n.reg, "", ""); got != 0 {
			t.Errorf("%s counted %v handshake failures in a healthy cluster", n.id, got)
		}
	}

	// A client-role certificate cannot talk to the Raft port, and the
	// cluster carries on.
	target := nodes[0]
	if err := rawDial(t, load(t, dir, "vc-1"), string(target.trans.LocalAddr())); err == nil {
		t.Fatal("client certificate completed a Raft connection")
	}
	waitFor(t, "the client-role refusal to be counted", func() bool {
		return failures(t, target.reg, DirectionInbound, ReasonIdentity) == 1
	})
	applyEverywhere(t, nodes, "third")
}

func TestForeignNodeCannotJoin(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	nodes := startCluster(t, dir)
	waitLeader(t, nodes)
	applyEverywhere(t, nodes, "before")

	// The rogue has a node certificate, but from another CA. It believes it
	// is a member of the cluster, so it campaigns and dials every node.
	rogueDir := newPKI(t, pki.Options{Regions: []string{"dc4"}})
	rogueTrans, rogueReg := newTransport(t, load(t, rogueDir, "dc4"))
	servers := []raft.Server{{Suffrage: raft.Voter, ID: "dc4", Address: rogueTrans.LocalAddr()}}
	for _, n := range nodes {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(n.id), Address: n.trans.LocalAddr()})
	}
	rogue := startRaft(t, "dc4", rogueTrans, rogueReg, servers)

	// The cluster is told to add it, so the leader dials it too.
	onLeader(t, nodes, "AddVoter(dc4)", func(l *testNode) raft.Future {
		return l.raft.AddVoter("dc4", rogueTrans.LocalAddr(), 0, 5*time.Second)
	})
	applyEverywhere(t, nodes, "after")

	waitFor(t, "the cluster to count the rogue's inbound handshakes", func() bool {
		var sum float64
		for _, n := range nodes {
			sum += failures(t, n.reg, DirectionInbound, "")
		}
		return sum > 0
	})
	waitFor(t, "the leader to count failed dials to the rogue", func() bool {
		var sum float64
		for _, n := range nodes {
			sum += failures(t, n.reg, DirectionOutbound, ReasonCertificate)
		}
		return sum > 0
	})
	waitFor(t, "the rogue to count its failed dials", func() bool {
		return failures(t, rogueReg, DirectionOutbound, ReasonCertificate) > 0
	})

	// The rogue never received anything: only its own bootstrap entry is in
	// its log, nothing was applied, and it leads nobody.
	if got := rogue.fsm.entries(); len(got) != 0 {
		t.Errorf("rogue applied %v", got)
	}
	if got := rogue.raft.LastIndex(); got != 1 {
		t.Errorf("rogue last index %d, want 1 (its bootstrap entry)", got)
	}
	if rogue.raft.State() == raft.Leader {
		t.Error("rogue became leader")
	}
	for _, n := range nodes {
		if _, id := n.raft.LeaderWithID(); id == "dc4" {
			t.Errorf("%s follows the rogue", n.id)
		}
	}

	// A direct dial with the rogue's certificate fails at the handshake.
	s, _ := newStream(t, load(t, rogueDir, "dc4"), nil)
	if _, err := s.Dial(nodes[0].trans.LocalAddr(), 5*time.Second); !errors.Is(err, ErrHandshake) {
		t.Fatalf("rogue Dial: %v, want ErrHandshake", err)
	}
}
