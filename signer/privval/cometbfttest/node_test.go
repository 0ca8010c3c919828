package cometbfttest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/pipeline/pipelinetest"
	"github.com/regent-signer/regent/signer/privval"
	"github.com/regent-signer/regent/slashing/cometbft"
)

// EnvGuard must be "1" for the real-node tests to run.
const EnvGuard = "REGENT_COMETBFT_TEST"

const chainID = "regent-cometbft-test"

func requireEnabled(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real CometBFT node: skipped in -short mode")
	}
	if os.Getenv(EnvGuard) != "1" {
		t.Skipf("real CometBFT node: set %s=1 (or run make cometbft-test)", EnvGuard)
	}
}

func binary(t *testing.T, version string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	bin, err := Binary(ctx, version)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("built cometbft %s in %v (cached at %s)", version, d.Round(time.Second), bin)
	}
	return bin
}

// validatorSeed is the validator key Regent holds in these tests.
func validatorSeed() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(0xa0 + i)
	}
	return b
}

// region is one Regent region's pipeline: the in-memory state machine of
// pipelinetest with the validator key registered and the signer's policy.
func region(t *testing.T, holding bool) (*pipelinetest.Env, privval.Backend, ed25519.PublicKey) {
	t.Helper()
	env, err := pipelinetest.New(eth2.Mainnet())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := env.AddEd25519Key(validatorSeed(), chainID)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Allow("cometbft-"+chainID, []string{"*"}, []string{privval.TypeVote, privval.TypeProposal, privval.KindVoteExtension}); err != nil {
		t.Fatal(err)
	}
	env.Holding = holding
	backend := privval.PipelineBackend{Pipeline: env.Pipeline, Key: func(context.Context, string) (ed25519.PublicKey, error) { return pub, nil }}
	return env, backend, pub
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// running is a signer instance running in the background.
type running struct {
	s       *privval.Signer
	metrics *privval.Metrics
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func (r *running) stop() {
	r.cancel()
	r.wg.Wait()
}

func startSigner(t *testing.T, name string, n *Node, b privval.Backend, mutate func(*privval.Config)) *running {
	t.Helper()
	key := func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(nil); return k }()
	cfg := privval.DefaultConfig()
	cfg.Address = n.PrivvalAddr()
	cfg.ChainID = chainID
	if strings.HasPrefix(cfg.Address, "tcp://") {
		cfg.ConnKey = key
		cfg.AcceptAnyNodeKey = true // stock CometBFT has no stable key to allowlist
	}
	cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("signer", name)
	m, err := privval.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := privval.New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, metrics: m, cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := s.Run(ctx); err != nil {
			t.Errorf("signer %s: %v", name, err)
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func newNode(t *testing.T, bin string, pub ed25519.PublicKey, unix bool, extHeight int64) *Node {
	t.Helper()
	n, err := Init(t.Context(), Options{Binary: bin, Home: t.TempDir(), ChainID: chainID, Validator: pub, VoteExtensionsHeight: extHeight, Unix: unix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(5 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("node log tail:\n%s", n.LogTail(60))
		}
	})
	return n
}

func waitHeight(t *testing.T, n *Node, h int64, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	if err := n.WaitHeight(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func height(t *testing.T, n *Node) int64 {
	t.Helper()
	h, err := n.Height(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// proposalGate passes requests through until armed; then it holds the
// next proposal until the request's context ends (its signer stopped).
type proposalGate struct {
	privval.Backend
	mu      sync.Mutex
	armed   bool
	holding bool
}

func (g *proposalGate) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *proposalGate) blocked() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holding
}

func (g *proposalGate) SignComet(ctx context.Context, c pipeline.Caller, req pipeline.CometRequest) (pipeline.CometResult, error) {
	g.mu.Lock()
	hold := g.armed && req.HRS.Step == cometbft.StepPropose
	if hold {
		g.armed, g.holding = false, true
	}
	g.mu.Unlock()
	if hold {
		<-ctx.Done()
		return pipeline.CometResult{}, fmt.Errorf("%w: test gate: %w", pipeline.ErrCannotSign, ctx.Err())
	}
	return g.Backend.SignComet(ctx, c, req)
}

// crashGate passes requests through until armed; then, on the next
// prevote, it lets the pipeline record and sign it and kills the node
// before the answer can be written.
type crashGate struct {
	privval.Backend
	node  *Node
	mu    sync.Mutex
	armed bool
	fired chan struct{}
}

func (g *crashGate) arm() {
	g.mu.Lock()
	g.armed, g.fired = true, make(chan struct{})
	g.mu.Unlock()
}

func (g *crashGate) SignComet(ctx context.Context, c pipeline.Caller, req pipeline.CometRequest) (pipeline.CometResult, error) {
	g.mu.Lock()
	fire := g.armed && req.HRS.Step == cometbft.StepPrevote
	if fire {
		g.armed = false
	}
	g.mu.Unlock()
	res, err := g.Backend.SignComet(ctx, c, req)
	if fire {
		_ = g.node.Kill()
		close(g.fired)
	}
	return res, err
}

// waitFor waits for cond with a deadline.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}

// The main scenario. A single-validator chain whose validator key exists
// only in Regent's pipeline:
//  1. produces blocks signed through Regent (with vote extensions on);
//  2. a second Regent signer whose region does not hold the lease gets the
//     node, answers with "not lease holder", yields, and the chain goes on
//     with the holder's signer;
//  3. the holder's signer is restarted mid-run and blocks continue;
//  4. the node itself is SIGKILLed and restarted and blocks continue;
//  5. the node is SIGKILLed after Regent signed a prevote but before the
//     node saw it; the restarted node's re-sign at the same position gets
//     the earlier timestamp and signature, and blocks continue;
//
// and afterwards no block carries evidence, every commit signature verifies
// and was released through Regent, and no two different messages were ever
// signed at one height/round/step.
//
// It runs against v0.38 with vote extensions from height 1 and against v1
// with vote extensions from height 3: a v1 node sets
// skip_extension_signing while extensions are off, and the signer must
// honour it, while a v0.38 node always gets extension signatures for
// non-nil precommits (as FilePV gives them).
func TestChainSignsOnlyThroughRegent(t *testing.T) {
	requireEnabled(t)
	for _, tc := range []struct {
		version   string
		extHeight int64
	}{{Version, 1}, {VersionV1, 3}} {
		t.Run(tc.version, func(t *testing.T) { chainScenario(t, tc.version, tc.extHeight) })
	}
}

func chainScenario(t *testing.T, version string, extHeight int64) {
	bin := binary(t, version)
	holderEnv, holder, pub := region(t, true)
	standbyEnv, standby, _ := region(t, false)
	log := NewSignLog()
	n := newNode(t, bin, pub, false, extHeight)

	// 1. Blocks signed through Regent.
	gate := &proposalGate{Backend: holder}
	a := startSigner(t, "holder-1", n, log.Wrap(gate), nil)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, n, 5, 60*time.Second)
	st, err := n.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Validator.Equal(pub) {
		t.Fatalf("node reports validator key %x, want Regent's %x", st.Validator, pub)
	}
	t.Logf("step 1: height %d with the holder's signer", st.Height)

	// 2. A standby region's signer (its region does not hold the lease) is
	// queued at the node. The holder's signer dies while the node waits
	// for a proposal signature; the node retries on the next connection,
	// the standby's, which refuses ("not lease holder") and yields; the
	// node's next request fails over to the holder's new signer instance
	// and the chain goes on. The holder is stopped at a proposal on
	// purpose: CometBFT never re-asks for a refused vote in the same round,
	// so with a single validator a refused prevote or precommit would stall
	// the chain, while a refused proposal only costs timeout_propose.
	b := startSigner(t, "standby", n, log.Wrap(standby), func(c *privval.Config) {
		c.YieldAfter, c.YieldFor = 1, time.Minute
	})
	gate.arm()
	waitFor(t, "the holder's signer to block on a proposal", 30*time.Second, gate.blocked)
	a.stop()
	waitFor(t, "the standby signer to refuse", 60*time.Second, func() bool {
		return b.metrics.Requests(chainID, privval.ReqSignVote, privval.OutcomeNotLeaseHolder)+
			b.metrics.Requests(chainID, privval.ReqSignProposal, privval.OutcomeNotLeaseHolder) >= 1
	})
	stalled := height(t, n)
	a2 := startSigner(t, "holder-2", n, log.Wrap(holder), nil)
	waitHeight(t, n, stalled+3, 90*time.Second)
	if y := b.metrics.Connections(chainID, privval.ConnYielded); y < 1 {
		t.Fatalf("standby yielded %v times", y)
	}
	if v := b.metrics.Requests(chainID, privval.ReqSignVote, privval.OutcomeNotLeaseHolder); v != 0 {
		t.Fatalf("the standby was asked for %v votes; the scenario meant it to get a proposal", v)
	}
	standbyEnv.View(func(s *leader.State, _ uint64) {
		if s.Comet().Len() != 0 {
			t.Fatal("the standby region recorded CometBFT signatures")
		}
	})
	t.Logf("step 2: the standby refused %v proposal(s) and yielded; the chain went from %d to %d with the holder",
		b.metrics.Requests(chainID, privval.ReqSignProposal, privval.OutcomeNotLeaseHolder), stalled, height(t, n))
	b.stop()

	// 3. Restart the holder's signer mid-run.
	a2.stop()
	h := height(t, n)
	crash := &crashGate{Backend: holder, node: n}
	a3 := startSigner(t, "holder-3", n, log.Wrap(crash), nil)
	waitHeight(t, n, h+3, 90*time.Second)
	t.Logf("step 3: signer restarted at height %d, chain at %d", h, height(t, n))

	// 4. Crash the node and restart it.
	h = height(t, n)
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, n, h+3, 90*time.Second)
	t.Logf("step 4: node killed at height %d, chain at %d", h, height(t, n))

	// 5. Crash the node after Regent signed a prevote but before the node
	// could write it to its WAL. The restarted node replays to the same
	// position and asks again with a new timestamp; Regent answers with the
	// earlier timestamp and the earlier signature (FilePV's rule), so the
	// vote the node gets matches what was signed.
	h = height(t, n)
	crash.arm()
	select {
	case <-crash.fired:
	case <-time.After(60 * time.Second):
		t.Fatal("the crash gate never fired")
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, n, h+3, 90*time.Second)
	if a3.metrics.TimestampsReused(chainID) < 1 {
		t.Fatal("the restarted node's re-sign did not reuse the earlier timestamp")
	}
	t.Logf("step 5: node killed between signature and WAL at height %d; re-sign answered with the earlier timestamp; chain at %d", h, height(t, n))

	// Verdict.
	last := height(t, n)
	if err := CheckChain(t.Context(), n, chainID, pub, log, 1, last-1); err != nil {
		t.Fatal(err)
	}
	if err := log.CheckNoDoubleSign(); err != nil {
		t.Fatal(err)
	}
	ext := log.ExtensionHeights()
	if len(ext) == 0 || ext[0] != extHeight {
		t.Fatalf("vote extensions signed from height %v, want from %d", ext, extHeight)
	}
	if found, err := n.LogContains("conflicting vote"); err != nil || found {
		t.Fatalf("node log mentions a conflicting vote (err %v)", err)
	}
	reused := 0
	for _, e := range log.Events() {
		if e.ReusedEarlier {
			reused++
		}
	}
	var recorded int
	holderEnv.View(func(s *leader.State, applied uint64) { recorded = int(applied) })
	t.Logf("verdict: %d blocks checked, %d consensus signatures released (%d reusing an earlier timestamp), %d log entries applied",
		last-1, len(log.Events()), reused, recorded)
}

// The same chain over a unix socket (no SecretConnection, as CometBFT
// itself does for unix://).
func TestChainOverUnixSocket(t *testing.T) {
	requireEnabled(t)
	bin := binary(t, Version)
	_, holder, pub := region(t, true)
	log := NewSignLog()
	n := newNode(t, bin, pub, true, 1)
	startSigner(t, "holder", n, log.Wrap(holder), nil)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	waitHeight(t, n, 5, 60*time.Second)
	if err := CheckChain(t.Context(), n, chainID, pub, log, 1, 4); err != nil {
		t.Fatal(err)
	}
	if err := log.CheckNoDoubleSign(); err != nil {
		t.Fatal(err)
	}
}

// A signer whose allowlist does not hold the node's SecretConnection key
// never serves it: the node cannot get its public key and gives up
// starting, and the signer counts the refusal.
func TestUnlistedNodeIsNeverServed(t *testing.T) {
	requireEnabled(t)
	bin := binary(t, Version)
	_, holder, pub := region(t, true)
	n := newNode(t, bin, pub, false, 1)
	other, _, _ := ed25519.GenerateKey(nil)
	s := startSigner(t, "strict", n, holder, func(c *privval.Config) {
		c.AcceptAnyNodeKey, c.AllowedNodeKeys = false, []ed25519.PublicKey{other}
	})
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Exited():
	case <-time.After(60 * time.Second):
		t.Fatal("the node kept running without a signer it could use")
	}
	if s.metrics.Connections(chainID, privval.ConnNodeNotAllowed) < 1 {
		t.Fatal("the signer did not refuse the node")
	}
	if found, _ := n.LogContains("can't get pubkey"); !found {
		t.Fatalf("node exited for another reason: %v", n.ExitErr())
	}
}
