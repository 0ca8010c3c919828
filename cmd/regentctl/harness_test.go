package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/regent-signer/regent/cmd/internal/node"
	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/beaconsim"
	"github.com/regent-signer/regent/failover/opsapi"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/leader/nodeapi"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/slashing/eth"
)

// The regentctl tests run the CLI in-process against three regions started
// with node.Start in this process (real TCP, mutual TLS, bolt stores, a
// dev PKI), bootstrapped from an operators file of three generated keys:
// alice (admin, Ed25519), bob (admin, P-256), carol (operator, Ed25519);
// thresholds handover 2, registry 2, policy 1, exit 1, keys 1. Every
// region watches finality on a simulated beacon chain (10ms slots, 4 slots
// per epoch). Each region also serves the operator API on a listener of
// its own built with nodeapi.NewGRPCServer + opsapi.Register — exactly what
// the node will serve once the lead wires Register into node.Start.

const testClusterID = "regentctl-test"

var testGVR = eth.Root(sha256.Sum256([]byte("regentctl test chain")))

type ctlCluster struct {
	t       *testing.T
	dir     string
	certs   string
	keys    string
	regions []string
	nodes   map[string]*node.Node
	opsAddr map[string]string
	beacon  *beaconsim.Node
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newCtlCluster(t *testing.T) *ctlCluster {
	t.Helper()
	dir := t.TempDir()
	c := &ctlCluster{t: t, dir: dir, certs: filepath.Join(dir, "certs"), keys: filepath.Join(dir, "operators"),
		regions: []string{"dc1", "dc2", "dc3"}, nodes: map[string]*node.Node{}, opsAddr: map[string]string{}}
	if err := pki.Init(c.certs, pki.Options{Clients: []string{"vc-1"}}); err != nil {
		t.Fatal(err)
	}
	// Operator keys come from `regentctl operators keygen`.
	for _, k := range []struct{ id, alg string }{{"alice", "ed25519"}, {"bob", "p256"}, {"carol", "ed25519"}, {"dave", "p256"}} {
		if out, errOut, code := c.ctl("operators", "keygen", "--id", k.id, "--dir", c.keys, "--algorithm", k.alg); code != 0 {
			t.Fatalf("keygen %s: %d %s %s", k.id, code, out, errOut)
		}
	}
	ops := fmt.Sprintf(`cluster_id: %s
operators:
  - {id: alice, role: admin, public_key_file: %s}
  - {id: bob, role: admin, public_key_file: %s}
  - {id: carol, role: operator, public_key_file: %s}
thresholds: {handover: 2, registry: 2, policy: 1, exit: 1, keys: 1}
exit_limit_per_day: 5
finality_quorum: 1
`, testClusterID, filepath.Join(c.keys, "alice.pub"), filepath.Join(c.keys, "bob.pub"), filepath.Join(c.keys, "carol.pub"))
	opsFile := filepath.Join(dir, "operators.yaml")
	if err := os.WriteFile(opsFile, []byte(ops), 0o644); err != nil {
		t.Fatal(err)
	}

	bcfg := beaconsim.DefaultConfig()
	bcfg.GenesisValidatorsRoot, bcfg.SlotDuration, bcfg.SlotsPerEpoch = testGVR, 10*time.Millisecond, 4
	bcfg.GenesisTime = time.Now().Add(-time.Second)
	bn, err := beaconsim.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	c.beacon = bn
	srv := httptest.NewServer(bn.Handler())
	t.Cleanup(srv.Close)

	type peer struct{ id, raft, api string }
	var peers []peer
	for _, r := range c.regions {
		peers = append(peers, peer{r, freePort(t), freePort(t)})
	}
	var peerYAML strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&peerYAML, "  - {id: %s, address: %q, api: %q}\n", p.id, p.raft, p.api)
	}
	cfgs := map[string]*node.Config{}
	for _, p := range peers {
		y := fmt.Sprintf(`node_id: %[1]s
region: %[1]s
data_dir: %[2]s
raft: {bind: %[3]q, advertise: %[3]q}
api: {grpc: %[4]q}
tls: {ca: %[5]s, cert: %[6]s, key: %[7]s}
peers:
%[8]s
initial_lease_holder: dc1
raft_profile: lan
failover:
  operators_file: %[9]s
  heartbeat_interval: 1s
  finality:
    poll_interval: 50ms
    eth:
      - {name: sim, genesis_validators_root: %[10]q, endpoints: [%[11]q], quorum: 1, slots_per_epoch: 4}
`, p.id, filepath.Join(dir, p.id), p.raft, p.api, filepath.Join(c.certs, "ca.crt"), pki.CertPath(c.certs, p.id), pki.KeyPath(c.certs, p.id),
			peerYAML.String(), opsFile, leader.RootHex(testGVR), srv.URL)
		path := filepath.Join(dir, p.id+".yaml")
		if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := node.LoadConfig(path, func(string) string { return "" }, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfgs[p.id] = cfg
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.Close()
		}
	})
	for _, r := range c.regions {
		n, err := node.Start(cfgs[r], node.Options{Logger: testLog(t), Fatal: func(err error) { t.Errorf("%s: fatal: %v", r, err) }})
		if err != nil {
			t.Fatalf("start %s: %v", r, err)
		}
		c.nodes[r] = n
		c.serveOps(r, n)
	}
	c.waitFor(t, 30*time.Second, "lease on dc1 and operators bootstrapped everywhere", func() error {
		for _, r := range c.regions {
			var l leader.Lease
			var boot bool
			c.nodes[r].FSM.View(func(s *leader.State, _ uint64) { l, boot = s.Lease(), failover.From(s).Bootstrapped() })
			if l.State != leader.LeaseActive || l.Holder != "dc1" || !boot {
				return fmt.Errorf("%s sees %s %s@%d, bootstrapped %v", r, l.State, l.Holder, l.Epoch, boot)
			}
		}
		return nil
	})
	return c
}

// serveOps serves the operator API of region r on a listener of its own.
func (c *ctlCluster) serveOps(r string, n *node.Node) {
	c.t.Helper()
	mat, err := pki.LoadTLS(filepath.Join(c.certs, "ca.crt"), pki.CertPath(c.certs, r), pki.KeyPath(c.certs, r))
	if err != nil {
		c.t.Fatal(err)
	}
	sc, err := mat.ServerConfig(pki.RoleOperator, pki.RoleNode, pki.RoleClient)
	if err != nil {
		c.t.Fatal(err)
	}
	log := testLog(c.t).With("region", r, "api", "ops")
	g := nodeapi.NewGRPCServer(credentials.NewTLS(sc), log, &nodeapi.Server{NodeID: r, Region: r, Raft: n.Raft, FSM: n.FSM, Service: n.Service})
	if err := opsapi.Register(g, opsapi.Deps{NodeID: r, Raft: n.Raft, FSM: n.FSM, Proposer: n.Service, Logger: log}); err != nil {
		c.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	c.opsAddr[r] = ln.Addr().String()
	go func() { _ = g.Serve(ln) }()
	c.t.Cleanup(g.Stop)
}

func (c *ctlCluster) endpoints() string {
	var eps []string
	for _, r := range c.regions {
		eps = append(eps, r+"="+c.opsAddr[r])
	}
	return strings.Join(eps, ",")
}

// conn returns the connection flags (without --timeout, which `handover
// watch` redefines).
func (c *ctlCluster) conn() []string {
	return []string{"--endpoints", c.endpoints(), "--tls-ca", filepath.Join(c.certs, "ca.crt"),
		"--tls-cert", pki.CertPath(c.certs, "regentctl"), "--tls-key", pki.KeyPath(c.certs, "regentctl")}
}

// as returns the operator flags of operator id.
func (c *ctlCluster) as(id string) []string {
	return []string{"--operator-id", id, "--operator-key", filepath.Join(c.keys, id+".key")}
}

// ctl runs regentctl with args and returns its output and exit code (as
// main computes it).
func (c *ctlCluster) ctl(args ...string) (stdout, stderr string, code int) {
	var out, errOut syncBuffer
	return c.ctlTo(&out, &errOut, args...)
}

func (c *ctlCluster) ctlTo(out, errOut *syncBuffer, args ...string) (string, string, int) {
	root := newRoot(out, errOut)
	root.SetArgs(args)
	root.SetContext(context.Background())
	err := root.Execute()
	code := 0
	var ec exitCode
	switch {
	case err == nil:
	case errors.As(err, &ec):
		code = int(ec)
	default:
		fmt.Fprintln(errOut, "regentctl:", err)
		code = 1
	}
	return out.String(), errOut.String(), code
}

// with joins flag groups and arguments.
func with(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func (c *ctlCluster) waitFor(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", limit, what, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a deadline-bounded wait
	}
}

func (c *ctlCluster) lease(r string) (l leader.Lease) {
	c.nodes[r].FSM.View(func(s *leader.State, _ uint64) { l = s.Lease() })
	return l
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads (handover watch runs in its own goroutine).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
