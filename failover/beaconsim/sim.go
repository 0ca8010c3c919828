package beaconsim

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/regent-signer/regent/slashing/eth"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrInvalidConfig marks a Config that Validate refuses.
	ErrInvalidConfig = errors.New("beaconsim: invalid config")
	// ErrInvalidKnob marks a knob value a Node refuses; the node is
	// unchanged.
	ErrInvalidKnob = errors.New("beaconsim: invalid knob value")
)

// Limits.
const (
	// MaxSlotsPerEpoch bounds Config.SlotsPerEpoch (as the finality
	// watcher does).
	MaxSlotsPerEpoch = 1024
	// MaxLieEpochs bounds SetLie, so that no reported epoch's first slot
	// overflows.
	MaxLieEpochs = 1 << 32
	// MinSlotDuration bounds Config.SlotDuration from below.
	MinSlotDuration = time.Millisecond
)

// Clock is the simulated chain's source of time. Implementations must be
// safe for concurrent use.
type Clock interface{ Now() time.Time }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Config configures a simulated beacon node. Several nodes with the same
// GenesisValidatorsRoot, GenesisTime, SlotDuration and SlotsPerEpoch (and
// clocks that agree) serve the same chain: the same roots at the same
// slots. Start from DefaultConfig.
type Config struct {
	// GenesisValidatorsRoot identifies the simulated network. Must be
	// non-zero.
	GenesisValidatorsRoot eth.Root
	// GenesisTime is slot 0's start. Zero means the Clock's Now when New
	// runs (give nodes meant to agree the same explicit time).
	GenesisTime time.Time
	// GenesisForkVersion is served as genesis_fork_version.
	GenesisForkVersion [4]byte
	// SlotDuration is the length of a slot (mainnet: 12s; the demo uses
	// something like 100ms).
	SlotDuration time.Duration
	// SlotsPerEpoch (mainnet: 32; the demo may use fewer).
	SlotsPerEpoch uint64
	// ControlAPI enables the knob endpoints under /beaconsim/v1/ (see
	// Handler). Off by default; never expose it beyond a test network.
	ControlAPI bool
	// Clock nil means the wall clock.
	Clock Clock
	// Logger nil means no logs.
	Logger *slog.Logger
}

// DefaultConfig returns mainnet timing (12s slots, 32 slots per epoch) and
// no genesis validators root (which the caller must set).
func DefaultConfig() Config {
	return Config{SlotDuration: 12 * time.Second, SlotsPerEpoch: 32}
}

// Validate checks cfg: a non-zero root, SlotDuration ≥ MinSlotDuration,
// SlotsPerEpoch in [1, MaxSlotsPerEpoch]. Errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	if c.GenesisValidatorsRoot == (eth.Root{}) {
		return fmt.Errorf("%w: zero GenesisValidatorsRoot", ErrInvalidConfig)
	}
	if c.SlotDuration < MinSlotDuration {
		return fmt.Errorf("%w: SlotDuration %v below %v", ErrInvalidConfig, c.SlotDuration, MinSlotDuration)
	}
	if c.SlotsPerEpoch < 1 || c.SlotsPerEpoch > MaxSlotsPerEpoch {
		return fmt.Errorf("%w: SlotsPerEpoch %d not in [1, %d]", ErrInvalidConfig, c.SlotsPerEpoch, MaxSlotsPerEpoch)
	}
	if !c.GenesisTime.IsZero() && c.GenesisTime.Unix() < 0 {
		return fmt.Errorf("%w: GenesisTime %v before 1970", ErrInvalidConfig, c.GenesisTime)
	}
	return nil
}

// Checkpoint is an epoch and the root of the block at its first slot. The
// epoch-0 checkpoint has the zero root, as beacon nodes report before any
// finality.
type Checkpoint struct {
	Epoch uint64
	Root  eth.Root
}

// View is what the node reports at one instant.
type View struct {
	Slot     uint64 // head slot (every slot has a block)
	Epoch    uint64 // head epoch
	HeadRoot eth.Root

	PreviousJustified Checkpoint
	CurrentJustified  Checkpoint
	Finalized         Checkpoint
	// FinalizedBlockSlot and FinalizedBlockRoot are the finalized block:
	// the checkpoint's block, or the genesis block before any finality.
	FinalizedBlockSlot uint64
	FinalizedBlockRoot eth.Root

	Finalizing  bool
	LieEpochs   uint64
	Fork        uint64
	Syncing     bool
	Unavailable bool
}

// knobs are the node's run-time switches.
type knobs struct {
	stalled     bool
	frozen      [3]uint64 // previous justified, current justified, finalized epochs at the stall
	lie         uint64
	fork        uint64
	syncing     bool
	unavailable bool
}

// Node is one simulated beacon node: an honest chain whose slots advance
// with the clock and whose finality follows the healthy pattern (finalized
// epoch = current epoch − 2), with knobs to stall finality, lie, fork,
// report syncing, or refuse service. Safe for concurrent use.
type Node struct {
	cfg     Config
	clock   Clock
	genesis time.Time
	log     *slog.Logger

	mu sync.Mutex
	k  knobs
}

// New validates cfg and returns a node. It does no I/O.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, clock: cfg.Clock, log: cfg.Logger}
	if n.clock == nil {
		n.clock = wallClock{}
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.genesis = cfg.GenesisTime
	if n.genesis.IsZero() {
		n.genesis = n.clock.Now()
	}
	return n, nil
}

// Config returns the node's configuration (with GenesisTime resolved).
func (n *Node) Config() Config {
	c := n.cfg
	c.GenesisTime = n.genesis
	return c
}

// SetFinalizing stalls (false) or resumes (true) finality. While stalled
// the justified and finalized checkpoints stay where they were; the head
// keeps advancing. On resume they jump back to the healthy pattern.
func (n *Node) SetFinalizing(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !on && !n.k.stalled {
		h := n.honestCheckpoints(n.slotAt(n.clock.Now()) / n.cfg.SlotsPerEpoch)
		n.k.frozen = [3]uint64{h[0].Epoch, h[1].Epoch, h[2].Epoch}
	}
	n.k.stalled = !on
	n.log.Info("beaconsim finality", "finalizing", on)
}

// SetLie makes the node report a finalized (and justified) checkpoint
// epochsAhead epochs past the truth, self-consistently (roots and the
// finalized header match the claimed epoch). 0 stops lying. Values above
// MaxLieEpochs are refused with ErrInvalidKnob.
func (n *Node) SetLie(epochsAhead uint64) error {
	if epochsAhead > MaxLieEpochs {
		return fmt.Errorf("%w: lie of %d epochs above %d", ErrInvalidKnob, epochsAhead, uint64(MaxLieEpochs))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.k.lie = epochsAhead
	n.log.Info("beaconsim lie", "epochs_ahead", epochsAhead)
	return nil
}

// SetFork moves the node onto fork id: every block root (hence every
// checkpoint root) differs from fork 0's, as on a node that follows
// another chain. 0 is the canonical chain.
func (n *Node) SetFork(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.k.fork = id
	n.log.Info("beaconsim fork", "fork", id)
}

// SetSyncing makes /eth/v1/node/syncing report is_syncing and
// /eth/v1/node/health answer 206. Other answers are unchanged.
func (n *Node) SetSyncing(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.k.syncing = on
}

// SetAvailable(false) makes every beacon API endpoint answer 503 (the
// control API, if enabled, keeps working).
func (n *Node) SetAvailable(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.k.unavailable = !on
}

// View returns what the node reports now.
func (n *Node) View() View {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.viewLocked(n.clock.Now())
}

// slotAt is the head slot at t: 0 before genesis.
func (n *Node) slotAt(t time.Time) uint64 {
	if t.Before(n.genesis) {
		return 0
	}
	return uint64(t.Sub(n.genesis) / n.cfg.SlotDuration)
}

// checkpoint returns the checkpoint of epoch e on the node's fork.
func (n *Node) checkpoint(e uint64) Checkpoint {
	if e == 0 {
		return Checkpoint{}
	}
	return Checkpoint{Epoch: e, Root: n.blockRoot(e * n.cfg.SlotsPerEpoch)}
}

// honestCheckpoints returns previous justified, current justified and
// finalized at head epoch c when finality is healthy: finalized =
// previous justified = c−2, current justified = c−1 (never below 0).
func (n *Node) honestCheckpoints(c uint64) [3]Checkpoint {
	f := max(c, 2) - 2
	j := max(c, 1) - 1
	return [3]Checkpoint{n.checkpoint(f), n.checkpoint(j), n.checkpoint(f)}
}

func (n *Node) viewLocked(now time.Time) View {
	slot := n.slotAt(now)
	epoch := slot / n.cfg.SlotsPerEpoch
	cps := n.honestCheckpoints(epoch)
	if n.k.stalled {
		// Recompute the frozen epochs' roots on the current fork.
		cps = [3]Checkpoint{n.checkpoint(n.k.frozen[0]), n.checkpoint(n.k.frozen[1]), n.checkpoint(n.k.frozen[2])}
	}
	if n.k.lie > 0 {
		f := cps[2].Epoch + n.k.lie
		cps = [3]Checkpoint{n.checkpoint(f), n.checkpoint(f + 1), n.checkpoint(f)}
	}
	v := View{
		Slot: slot, Epoch: epoch, HeadRoot: n.blockRoot(slot),
		PreviousJustified: cps[0], CurrentJustified: cps[1], Finalized: cps[2],
		Finalizing: !n.k.stalled, LieEpochs: n.k.lie, Fork: n.k.fork,
		Syncing: n.k.syncing, Unavailable: n.k.unavailable,
	}
	if v.Finalized.Epoch == 0 {
		v.FinalizedBlockSlot, v.FinalizedBlockRoot = 0, n.blockRoot(0)
	} else {
		v.FinalizedBlockSlot, v.FinalizedBlockRoot = v.Finalized.Epoch*n.cfg.SlotsPerEpoch, v.Finalized.Root
	}
	return v
}

// blockRoot is the deterministic root of the block at slot on the node's
// fork: sha256("beaconsim/block" ‖ gvr ‖ fork ‖ slot).
func (n *Node) blockRoot(slot uint64) eth.Root {
	return n.derive("beaconsim/block", slot)
}

func (n *Node) derive(label string, slot uint64) eth.Root {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(n.cfg.GenesisValidatorsRoot[:])
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], n.k.fork)
	binary.BigEndian.PutUint64(b[8:], slot)
	h.Write(b[:])
	var r eth.Root
	copy(r[:], h.Sum(nil))
	return r
}
