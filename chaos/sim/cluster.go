package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/regent-signer/regent/leader"
)

// clock is the simulation's protocol clock: what proposers stamp, what
// operator commands expire against, what DR silence is measured with.
// Only the run's goroutine moves it; everyone reads it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// simStart is the protocol time a run starts at.
func simStart() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

// cluster is one run's three regions and everything around them.
type cluster struct {
	opts   Options
	seed   int64
	log    *slog.Logger
	hist   *history
	clock  *clock
	skew   [numRegions]time.Duration
	chain  chain
	keys   [][48]byte
	stores [numRegions]stores
	stepNo atomic.Int64

	mu    sync.Mutex
	inst  [numRegions]*instance
	links [numRegions][numRegions]bool // links[a][b]: a reaches b
	gens  [numRegions]int
}

func newCluster(opts Options, seed int64) (*cluster, error) {
	keys, err := validatorKeys(seed, opts.Validators)
	if err != nil {
		return nil, err
	}
	c := &cluster{
		opts: opts, seed: seed, log: logger(opts.Logger).With("seed", seed), hist: newHistory(),
		clock: &clock{now: simStart()}, chain: newChain(simStart(), seed), keys: keys,
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0xc10c))
	for i := range numRegions {
		if opts.MaxClockSkew > 0 {
			c.skew[i] = time.Duration(rng.Int64N(int64(2*opts.MaxClockSkew)+1)) - opts.MaxClockSkew
		}
		snaps := raft.NewInmemSnapshotStore()
		c.stores[i] = stores{logs: raft.NewInmemStore(), snaps: snaps}
		for j := range numRegions {
			c.links[i][j] = true
		}
	}
	return c, nil
}

// regionNow is region r's clock: the protocol clock plus its skew.
func (c *cluster) regionNow(r int) func() time.Time {
	skew := c.skew[r]
	return func() time.Time { return c.clock.Now().Add(skew) }
}

// fatal is the FSM's Fatal hook: a replica that stops on an entry it
// cannot apply has diverged from the log's meaning.
func (c *cluster) fatal(r int, err error) {
	c.hist.mu.Lock()
	defer c.hist.mu.Unlock()
	c.hist.problems = append(c.hist.problems, problem{InvReplicasAgree, fmt.Sprintf("%s halted its state machine: %v", regionName(r), err)})
}

// applyLinksLocked makes every live transport route exactly to the live
// peers it is linked to. c.mu must be held.
func (c *cluster) applyLinksLocked() {
	for a := range numRegions {
		ia := c.inst[a]
		if ia == nil {
			continue
		}
		for b := range numRegions {
			if a == b {
				continue
			}
			addr := raft.ServerAddress(regionName(b))
			if ib := c.inst[b]; ib != nil && c.links[a][b] {
				ia.trans.Connect(addr, ib.trans)
			} else {
				ia.trans.Disconnect(addr)
			}
		}
	}
}

// reachable returns b's live instance if a and b are both up and linked
// both ways.
func (c *cluster) reachable(a, b int) *instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inst[a] == nil || c.inst[b] == nil || !c.links[a][b] || !c.links[b][a] {
		return nil
	}
	return c.inst[b]
}

// live returns region r's running instance, or nil.
func (c *cluster) live(r int) *instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inst[r]
}

func (c *cluster) liveCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, i := range c.inst {
		if i != nil {
			n++
		}
	}
	return n
}

// crash kills region r's instance; its stores survive. It reports
// whether a live instance was killed.
func (c *cluster) crash(r int) bool {
	c.mu.Lock()
	inst := c.inst[r]
	if inst == nil {
		c.mu.Unlock()
		return false
	}
	inst.dead.Store(true)
	c.inst[r] = nil
	c.applyLinksLocked()
	c.mu.Unlock()
	inst.shutdown()
	return true
}

// restart starts a new instance of a crashed region r.
func (c *cluster) restart(r int) (bool, error) {
	if c.live(r) != nil {
		return false, nil
	}
	_, err := c.startInstance(r, false)
	return err == nil, err
}

// isolate cuts region r off from both others.
func (c *cluster) isolate(r int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for o := range numRegions {
		if o != r {
			c.links[r][o], c.links[o][r] = false, false
		}
	}
	c.applyLinksLocked()
}

// cut cuts the link between a and b both ways.
func (c *cluster) cut(a, b int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.links[a][b], c.links[b][a] = false, false
	c.applyLinksLocked()
}

// heal restores every link; it reports whether any was down.
func (c *cluster) heal() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := false
	for a := range numRegions {
		for b := range numRegions {
			was = was || !c.links[a][b]
			c.links[a][b] = true
		}
	}
	c.applyLinksLocked()
	return was
}

// shutdown stops every live instance.
func (c *cluster) shutdown() {
	for r := range numRegions {
		c.crash(r)
	}
}

// waitFor polls cond until it holds, ctx ends or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
}

// leaderInstance returns the live instance that is Raft leader and that
// a majority of live, linked instances follows, or nil.
func (c *cluster) leaderInstance() *instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	for r, inst := range c.inst {
		if inst == nil || inst.raft.State() != raft.Leader {
			continue
		}
		n := 1
		for o, x := range c.inst {
			if o == r || x == nil || !c.links[r][o] || !c.links[o][r] {
				continue
			}
			if _, id := x.raft.LeaderWithID(); string(id) == inst.name {
				n++
			}
		}
		if 2*n > numRegions {
			return inst
		}
	}
	return nil
}

// group returns the leader and the live instances linked to it both ways.
func (c *cluster) group(l *instance) []*instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []*instance{l}
	for o, x := range c.inst {
		if x == nil || o == l.idx || !c.links[l.idx][o] || !c.links[o][l.idx] {
			continue
		}
		out = append(out, x)
	}
	return out
}

// errNoLeader: no region leads a majority.
var errNoLeader = errors.New("sim: no raft leader with a majority")

// converge waits until a leader leads a majority and every live region
// linked to it applied everything the leader committed; it returns that
// group. With all set, the group must hold every region.
func (c *cluster) converge(ctx context.Context, all bool) ([]*instance, error) {
	deadline := time.Now().Add(c.opts.SettleTimeout)
	for {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, fmt.Errorf("%w within %v", errNoLeader, c.opts.SettleTimeout)
		}
		var l *instance
		found := waitFor(ctx, remaining, func() bool {
			l = c.leaderInstance()
			return l != nil && (!all || len(c.group(l)) == numRegions)
		})
		if !found {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if all {
				return nil, fmt.Errorf("%w over all regions within %v", errNoLeader, c.opts.SettleTimeout)
			}
			return nil, fmt.Errorf("%w within %v", errNoLeader, c.opts.SettleTimeout)
		}
		if err := l.raft.Barrier(time.Until(deadline)).Error(); err != nil {
			continue // leadership moved: look again
		}
		target := l.raft.AppliedIndex()
		g := c.group(l)
		if waitFor(ctx, time.Until(deadline), func() bool {
			for _, x := range g {
				if x.raft.AppliedIndex() < target {
					return false
				}
			}
			return true
		}) {
			return g, nil
		}
	}
}

// holderIndex is the region index of the lease holder on inst's replica,
// or -1 when the lease is vacant.
func holderIndex(l leader.Lease) int {
	if l.State == leader.LeaseVacant {
		return -1
	}
	return regionIndex(l.Holder)
}
