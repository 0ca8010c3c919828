package beaconsim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regent-signer/regent/failover/beaconsim"
	"github.com/regent-signer/regent/failover/finality"
	"github.com/regent-signer/regent/slashing/eth"
)

// The finality watcher against three simulated nodes sharing one clock.
// Each poll of the watcher advances simulated time by one epoch (its
// PollInterval), so finality moves under it without real waiting.

const epochDur = 32 * slot

type cluster struct {
	clk   *simClock
	nodes []*beaconsim.Node
	w     *finality.Watcher
}

func newCluster(t *testing.T, start time.Time) *cluster {
	t.Helper()
	c := &cluster{clk: &simClock{now: start}}
	var urls []string
	for range 3 {
		n, u := newNode(t, c.clk, nil)
		c.nodes = append(c.nodes, n)
		urls = append(urls, u)
	}
	cfg := finality.DefaultConfig()
	cfg.Clock = c.clk
	cfg.PollInterval = epochDur
	cfg.Eth = []finality.EthChain{{Name: "sim", GenesisValidatorsRoot: gvr, Endpoints: urls}}
	w, err := finality.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.w = w
	return c
}

// waitPast runs WaitPast, cancelling it after maxPolls polls.
func (c *cluster) waitPast(t *testing.T, mark finality.EthMark, maxPolls int) (finality.Evidence, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.clk.mu.Lock()
	c.clk.afters = 0
	c.clk.onAfter = func(n int) {
		if n >= maxPolls {
			cancel()
		}
	}
	c.clk.mu.Unlock()
	return c.w.WaitPast(ctx, finality.HighWater{Eth: map[eth.Root]finality.EthMark{gvr: mark}})
}

func TestWatcherWaitsForSimulatedFinality(t *testing.T) {
	c := newCluster(t, at(10*32+7)) // head epoch 10, finalized 8
	// Signed up to slot 330 (epoch 10) and target 10: finality must reach
	// epoch 11 (first slot 352 > 330, 11 > 10), i.e. head epoch 13.
	ev, err := c.waitPast(t, finality.EthMark{MaxBlockSlot: 330, HasBlock: true, MaxTargetEpoch: 10, HasAttestation: true}, 20)
	if err != nil {
		t.Fatal(err)
	}
	f := ev.Eth[0]
	if f.Epoch != 11 || f.FirstSlot != 352 || len(f.Agreeing) != 3 || f.Root != c.nodes[0].View().Finalized.Root {
		t.Fatalf("evidence %+v", f)
	}
	if got := c.nodes[0].View().Epoch; got != 13 {
		t.Fatalf("head epoch at evidence %d, want 13", got)
	}
}

func TestWatcherStalledFinalityNeverPasses(t *testing.T) {
	c := newCluster(t, at(10*32))
	c.nodes[0].SetFinalizing(false)
	c.nodes[1].SetFinalizing(false)
	ev, err := c.waitPast(t, finality.EthMark{MaxTargetEpoch: 10, HasAttestation: true}, 10)
	if !errors.Is(err, finality.ErrNotPast) || !errors.Is(err, context.Canceled) || len(ev.Eth) != 0 {
		t.Fatalf("got %+v, %v", ev, err)
	}
	// The one healthy node was far ahead, the quorum was not.
	last := c.w.Last().Eth[0]
	if last.Finality.Epoch != 8 || len(last.Finality.Agreeing) != 3 {
		t.Fatalf("last round %+v", last.Finality)
	}
	// Finality resumes: the same wait now succeeds.
	c.nodes[0].SetFinalizing(true)
	if ev, err := c.waitPast(t, finality.EthMark{MaxTargetEpoch: 10, HasAttestation: true}, 10); err != nil || ev.Eth[0].Epoch <= 10 {
		t.Fatalf("after resume: %+v, %v", ev, err)
	}
}

func TestWatcherDistrustsALiar(t *testing.T) {
	c := newCluster(t, at(10*32))
	if err := c.nodes[2].SetLie(100); err != nil {
		t.Fatal(err)
	}
	c.nodes[1].SetAvailable(false)
	// Liar + one honest node: the quorum (2) is only as far as the honest one.
	rep := c.w.Check(context.Background()).Eth[0]
	if rep.Err != nil || rep.Finality.Epoch != 8 {
		t.Fatalf("round %+v", rep)
	}
	ev, err := c.waitPast(t, finality.EthMark{MaxTargetEpoch: 50, HasAttestation: true}, 5)
	if !errors.Is(err, finality.ErrNotPast) || len(ev.Eth) != 0 {
		t.Fatalf("got %+v, %v", ev, err)
	}
}

func TestWatcherRefusesAFork(t *testing.T) {
	c := newCluster(t, at(10*32))
	c.nodes[1].SetFork(7)
	ev, err := c.waitPast(t, finality.EthMark{}, 3)
	if !errors.Is(err, finality.ErrConflict) || len(ev.Eth) != 0 {
		t.Fatalf("got %+v, %v", ev, err)
	}
	// Once the forked node is gone, the two others agree.
	c.nodes[1].SetAvailable(false)
	if ev, err := c.waitPast(t, finality.EthMark{}, 3); err != nil || len(ev.Eth[0].Agreeing) != 2 {
		t.Fatalf("without the forked node: %+v, %v", ev, err)
	}
}

func TestWatcherExcludesOtherNetwork(t *testing.T) {
	c := newCluster(t, at(10*32))
	// A node of another network: excluded and reported, never counted.
	_, u := newNode(t, c.clk, func(cfg *beaconsim.Config) { cfg.GenesisValidatorsRoot = eth.Root{0xee} })
	cfg := finality.DefaultConfig()
	cfg.Clock = c.clk
	cfg.Eth = []finality.EthChain{{GenesisValidatorsRoot: gvr, Endpoints: []string{u}}}
	w, err := finality.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := w.Check(context.Background()).Eth[0]
	if !errors.Is(rep.Err, finality.ErrNoQuorum) || len(rep.Failures) != 1 || !errors.Is(rep.Failures[0].Err, finality.ErrWrongNetwork) {
		t.Fatalf("round %+v", rep)
	}
}
