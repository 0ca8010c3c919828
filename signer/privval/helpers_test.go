package privval

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/pipeline/pipelinetest"
	"github.com/regent-signer/regent/signer/privval/secretconn"
	"github.com/regent-signer/regent/signer/privval/wire"
)

const testChain = "regent-test"

// validatorSeed is the test validator's Ed25519 seed.
func validatorSeed() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

// testEnv is an in-process pipeline holding (or not holding) the lease,
// with the validator key registered on testChain and a policy for the
// signer's caller identity.
type testEnv struct {
	pe  *pipelinetest.Env
	pub ed25519.PublicKey
}

// allTypes is the policy a fully enabled signer needs.
func allTypes() []string { return []string{TypeVote, TypeProposal, KindVoteExtension, KindSignBytes} }

func newEnv(t testing.TB, holding bool, types []string) *testEnv {
	t.Helper()
	pe, err := pipelinetest.New(eth2.Mainnet())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pe.AddEd25519Key(validatorSeed(), testChain)
	if err != nil {
		t.Fatal(err)
	}
	if err := pe.Allow("cometbft-"+testChain, []string{"*"}, types); err != nil {
		t.Fatal(err)
	}
	pe.Holding = holding
	return &testEnv{pe: pe, pub: pub}
}

func (e *testEnv) backend() Backend {
	return PipelineBackend{Pipeline: e.pe.Pipeline, Key: func(_ context.Context, chainID string) (ed25519.PublicKey, error) {
		if chainID != testChain {
			return nil, pipeline.ErrUnknownKey
		}
		return e.pub, nil
	}}
}

// snapshot is what a refused request must leave unchanged: the applied
// index and the CometBFT protection state of the validator key.
type snapshot struct {
	applied uint64
	comet   string
}

func (e *testEnv) snapshot() snapshot {
	var s snapshot
	e.pe.View(func(st *leader.State, applied uint64) {
		s.applied = applied
		for _, en := range st.Comet().Entries() {
			s.comet += hex.EncodeToString(en.SignBytes) + ";"
		}
	})
	return s
}

// lastSignBytes returns the sign bytes last recorded for the validator key.
func (e *testEnv) lastSignBytes() []byte {
	var sb []byte
	e.pe.View(func(st *leader.State, _ uint64) {
		for _, en := range st.Comet().Entries() {
			sb = en.SignBytes
		}
	})
	return sb
}

func newConnKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testConfig(addr string, connKey ed25519.PrivateKey) Config {
	c := DefaultConfig()
	c.Address = addr
	c.ChainID = testChain
	c.ConnKey = connKey
	c.AcceptAnyNodeKey = true
	c.BackoffMin = 10 * time.Millisecond
	c.BackoffMax = 50 * time.Millisecond
	return c
}

func newHandler(t testing.TB, e *testEnv, mutate func(*Config)) *handler {
	t.Helper()
	cfg := testConfig("tcp://127.0.0.1:1", newConnKey(t))
	cfg.Caller = "cometbft-" + testChain
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &handler{cfg: &cfg, backend: e.backend(), caller: pipeline.Caller{Name: cfg.Caller}, log: testLogger(t)}
}

func testLogger(testing.TB) *slog.Logger { return slog.New(slog.DiscardHandler) }

// ts0 is a fixed vote timestamp.
func ts0() wire.Timestamp { return wire.Timestamp{Seconds: 1714979289, Nanos: 123456789} }

func blockID(b byte) wire.BlockID {
	if b == 0 {
		return wire.BlockID{}
	}
	h := make([]byte, 32)
	p := make([]byte, 32)
	for i := range h {
		h[i], p[i] = b, b^0xff
	}
	return wire.BlockID{Hash: h, PartSetHeader: wire.PartSetHeader{Total: 1, Hash: p}}
}

func vote(typ int32, height int64, round int32, block byte, ts wire.Timestamp) *wire.Vote {
	return &wire.Vote{Type: typ, Height: height, Round: round, BlockID: blockID(block), Timestamp: ts,
		ValidatorAddress: make([]byte, 20), ValidatorIndex: 0}
}

func proposal(height int64, round, pol int32, block byte, ts wire.Timestamp) *wire.Proposal {
	return &wire.Proposal{Type: wire.TypeProposal, Height: height, Round: round, POLRound: pol, BlockID: blockID(block), Timestamp: ts}
}

func voteReq(v *wire.Vote) wire.Message {
	return wire.Message{SignVoteRequest: &wire.SignVoteRequest{Vote: v, ChainID: testChain}}
}

func propReq(p *wire.Proposal) wire.Message {
	return wire.Message{SignProposalRequest: &wire.SignProposalRequest{Proposal: p, ChainID: testChain}}
}

// ---------------------------------------------------------------------------
// A fake node: listens like CometBFT's SignerListenerEndpoint, with a
// SecretConnection identity of its own over tcp.

type fakeNode struct {
	t       *testing.T
	ln      net.Listener
	key     ed25519.PrivateKey
	network string
}

func newFakeNode(t *testing.T, network string) *fakeNode {
	t.Helper()
	var ln net.Listener
	var err error
	if network == "unix" {
		ln, err = net.Listen("unix", filepath.Join(t.TempDir(), "pv.sock"))
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeNode{t: t, ln: ln, key: newConnKey(t), network: network}
}

func (n *fakeNode) addr() string {
	if n.network == "unix" {
		return "unix://" + n.ln.Addr().String()
	}
	return "tcp://" + n.ln.Addr().String()
}

func (n *fakeNode) pub() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }

type deadliner interface{ SetDeadline(time.Time) error }

// accept waits for the signer to connect and runs the node's side of the
// handshake.
func (n *fakeNode) accept() *nodeConn {
	n.t.Helper()
	_ = n.ln.(deadliner).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := n.ln.Accept()
	if err != nil {
		n.t.Fatalf("accept: %v", err)
	}
	n.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	conn := c
	if n.network == "tcp" {
		sc, err := secretconn.Handshake(c, n.key)
		if err != nil {
			n.t.Fatalf("node handshake: %v", err)
		}
		conn = sc
	}
	return &nodeConn{t: n.t, c: conn, r: bufio.NewReader(conn)}
}

type nodeConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// call sends a request and returns the signer's answer.
func (c *nodeConn) call(m wire.Message) wire.Message {
	c.t.Helper()
	resp, err := c.tryCall(m)
	if err != nil {
		c.t.Fatalf("call %s: %v", m.Kind(), err)
	}
	return resp
}

func (c *nodeConn) tryCall(m wire.Message) (wire.Message, error) {
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.WriteMessage(c.c, m); err != nil {
		return wire.Message{}, err
	}
	return wire.ReadMessage(c.r, 1<<20)
}

// runSigner runs s until the test ends.
func runSigner(t *testing.T, s *Signer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// eventually waits for cond with a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func isCode(e *wire.RemoteSignerError, code int32) bool { return e != nil && e.Code == code }

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	return ctx, cancel
}
