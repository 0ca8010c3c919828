package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
)

// netCut is a partition table shared by the regions of one test cluster.
// A cut pair cannot dial each other, and connections already open between
// them fail on their next read or write.
type netCut struct {
	mu      sync.Mutex
	blocked map[[2]string]bool
}

func (n *netCut) isCut(a, b string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.blocked[[2]string{a, b}]
}

// isolate cuts region from every other.
func (n *netCut) isolate(region string, others ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.blocked == nil {
		n.blocked = map[[2]string]bool{}
	}
	for _, o := range others {
		n.blocked[[2]string{region, o}] = true
		n.blocked[[2]string{o, region}] = true
	}
}

func (n *netCut) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.blocked = nil
}

var errCut = errors.New("test: network cut")

// cutLayer wraps the real mutual-TLS stream layer; peers are identified by
// the node identity in their certificate.
type cutLayer struct {
	raft.StreamLayer
	self   string
	net    *netCut
	byAddr map[string]string
}

func (c *cutLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	peer := c.byAddr[string(addr)]
	if c.net.isCut(c.self, peer) {
		return nil, errCut
	}
	conn, err := c.StreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: conn, cut: func() bool { return c.net.isCut(c.self, peer) }}, nil
}

func (c *cutLayer) Accept() (net.Conn, error) {
	for {
		conn, err := c.StreamLayer.Accept()
		if err != nil {
			return nil, err
		}
		tc, ok := conn.(*tls.Conn)
		if !ok {
			conn.Close()
			return nil, fmt.Errorf("stream layer accepted a %T, want *tls.Conn", conn)
		}
		_, peer, err := pki.Identity(tc.ConnectionState().PeerCertificates[0])
		if err != nil || c.net.isCut(c.self, peer) {
			conn.Close()
			continue
		}
		return &cutConn{Conn: conn, cut: func() bool { return c.net.isCut(c.self, peer) }}, nil
	}
}

type cutConn struct {
	net.Conn
	cut func() bool
}

func (c *cutConn) Read(p []byte) (int, error) {
	if c.cut() {
		c.Conn.Close()
		return 0, errCut
	}
	n, err := c.Conn.Read(p)
	if err == nil && c.cut() {
		c.Conn.Close()
		return 0, errCut
	}
	return n, err
}

func (c *cutConn) Write(p []byte) (int, error) {
	if c.cut() {
		c.Conn.Close()
		return 0, errCut
	}
	return c.Conn.Write(p)
}

type testCluster struct {
	t       *testing.T
	dir     string
	certs   string
	cfgs    map[string]*Config
	nodes   map[string]*Node
	net     *netCut
	regions []string
	// noTransfer keeps Raft leadership away from the lease holder.
	noTransfer bool
	// opts adjusts each region's Options before it starts (signing tests).
	opts func(region string, o *Options)
	// configure adjusts each region's Config before validation.
	configure func(region string, c *Config)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newTestCluster writes dev certificates and configs for dc1..dc3 and
// starts the three regions in this process over real TCP with mutual TLS
// and bolt stores in a temp dir. dc1 is granted the lease.
func newTestCluster(t *testing.T) *testCluster { return newTestClusterWith(t, false) }

// newTestClusterWith: noTransfer disables the keeper that moves Raft
// leadership to the lease holder.
func newTestClusterWith(t *testing.T, noTransfer bool) *testCluster {
	t.Helper()
	return newTestClusterFull(t, &testCluster{noTransfer: noTransfer})
}

// newTestClusterFull starts a cluster shaped by c's noTransfer, opts and
// configure fields.
func newTestClusterFull(t *testing.T, c *testCluster) *testCluster {
	t.Helper()
	dir := t.TempDir()
	c.t, c.dir, c.certs, c.cfgs, c.nodes = t, dir, filepath.Join(dir, "certs"), map[string]*Config{}, map[string]*Node{}
	c.net, c.regions = &netCut{}, []string{"dc1", "dc2", "dc3"}
	if err := pki.Init(c.certs, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	type peer = struct {
		ID      string `yaml:"id"`
		Address string `yaml:"address"`
		API     string `yaml:"api"`
	}
	var peers []peer
	for _, r := range c.regions {
		peers = append(peers, peer{ID: r, Address: freeAddr(t), API: freeAddr(t)})
	}
	for i, r := range c.regions {
		cfg := &Config{NodeID: r, Region: r, DataDir: filepath.Join(dir, r), InitialLeaseHolder: "dc1", LogLevel: "info", RaftProfile: "lan", Peers: peers}
		cfg.Raft.Bind, cfg.Raft.Advertise = peers[i].Address, peers[i].Address
		cfg.API.GRPC = peers[i].API
		cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(c.certs, "ca.crt"), filepath.Join(c.certs, r+".crt"), filepath.Join(c.certs, r+".key")
		if c.configure != nil {
			c.configure(r, cfg)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		c.cfgs[r] = cfg
	}
	for _, r := range c.regions {
		c.start(r)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.Close()
		}
	})
	c.waitFor(20*time.Second, "lease active on dc1 everywhere", func() error {
		for _, r := range c.regions {
			if l := c.lease(r); l.State != leader.LeaseActive || l.Holder != "dc1" || l.Epoch != 1 {
				return fmt.Errorf("%s sees %s %s@%d", r, l.State, l.Holder, l.Epoch)
			}
		}
		return nil
	})
	return c
}

func (c *testCluster) start(r string) {
	c.t.Helper()
	byAddr := map[string]string{}
	for _, p := range c.cfgs[r].Peers {
		byAddr[p.Address] = p.ID
	}
	o := Options{
		Logger:               testLogger(c.t),
		NoLeadershipTransfer: c.noTransfer,
		Fatal:                func(err error) { c.t.Errorf("%s: fatal: %v", r, err) },
		WrapStream: func(s raft.StreamLayer) raft.StreamLayer {
			return &cutLayer{StreamLayer: s, self: r, net: c.net, byAddr: byAddr}
		},
	}
	if c.opts != nil {
		c.opts(r, &o)
	}
	n, err := Start(c.cfgs[r], o)
	if err != nil {
		c.t.Fatalf("start %s: %v", r, err)
	}
	c.nodes[r] = n
}

func (c *testCluster) stop(r string) {
	c.nodes[r].Close()
	delete(c.nodes, r)
}

func (c *testCluster) waitFor(limit time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waited %v for %s: %v", limit, what, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a deadline-bounded wait
	}
}

func (c *testCluster) lease(r string) (l leader.Lease) {
	c.nodes[r].FSM.View(func(s *leader.State, _ uint64) { l = s.Lease() })
	return l
}

func (c *testCluster) leaderOf(among ...string) string {
	for _, r := range among {
		if n, ok := c.nodes[r]; ok && n.Raft.State() == raft.Leader {
			return r
		}
	}
	return ""
}

func (c *testCluster) waitLeader(among ...string) string {
	c.t.Helper()
	var l string
	c.waitFor(15*time.Second, fmt.Sprint("a leader among ", among), func() error {
		if l = c.leaderOf(among...); l == "" {
			return errors.New("none")
		}
		return nil
	})
	return l
}

// check reports, on region r, the decision for rec without recording it.
func (c *testCluster) check(r string, rec *commandpb.ProtectionRecord) (o leader.Outcome) {
	c.nodes[r].FSM.View(func(s *leader.State, _ uint64) { o = s.CheckRecord(rec) })
	return o
}

func (c *testCluster) addKeys(on string, keys ...*commandpb.AddKey) {
	c.t.Helper()
	// AddKeys is idempotent, so a write whose fate is unknown (leadership
	// flapping on a loaded machine) is simply tried again.
	c.waitFor(20*time.Second, "keys to be added on "+on, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.nodes[on].Service.Propose(ctx, commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: keys})
		return err
	})
}

// testLogger sends a region's logs to the test log (shown on failure or -v).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
