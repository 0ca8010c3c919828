package finality

import (
	"math"

	"github.com/regent-signer/regent/slashing/eth"
)

// Decoders for the three Ethereum beacon-node API answers the watcher reads
// (ethereum/beacon-APIs). Each takes the whole HTTP body, is strict in the
// sense of jsonstrict.go, and returns an error wrapping ErrMalformed for
// anything else. They never panic and never retain b.

// Genesis is the answer of GET /eth/v1/beacon/genesis.
type Genesis struct {
	// Time is genesis_time, seconds since the Unix epoch.
	Time           uint64
	ValidatorsRoot eth.Root
	ForkVersion    [4]byte
	HasForkVersion bool // genesis_fork_version was present
}

// DecodeGenesis decodes {"data": {"genesis_time": "<uint64>",
// "genesis_validators_root": "0x<32 bytes>", "genesis_fork_version":
// "0x<4 bytes>"}}; genesis_fork_version may be absent.
func DecodeGenesis(b []byte) (Genesis, error) {
	var g Genesis
	doc, err := parseDocument(b)
	if err != nil {
		return g, err
	}
	data, err := doc.object("data")
	if err != nil {
		return g, err
	}
	if g.Time, err = data.uintString("genesis_time", math.MaxUint64); err != nil {
		return Genesis{}, err
	}
	root, err := data.hexBytes("genesis_validators_root", 32, true)
	if err != nil {
		return Genesis{}, err
	}
	copy(g.ValidatorsRoot[:], root)
	if data.has("genesis_fork_version") {
		v, err := data.hexBytes("genesis_fork_version", 4, true)
		if err != nil {
			return Genesis{}, err
		}
		copy(g.ForkVersion[:], v)
		g.HasForkVersion = true
	}
	return g, nil
}

// Checkpoint is an Ethereum checkpoint: an epoch and the root of the block
// at (or last before) its first slot. Before any finality, beacon nodes
// report epoch 0 with the zero root.
type Checkpoint struct {
	Epoch uint64
	Root  eth.Root
}

// FinalityCheckpoints is the answer of
// GET /eth/v1/beacon/states/{state_id}/finality_checkpoints.
type FinalityCheckpoints struct {
	ExecutionOptimistic bool // absent counts as false (nodes before Bellatrix)
	// Finalized is the top-level "finalized" flag some nodes add (whether
	// the state itself is finalized); HasFinalizedFlag says it was present.
	FinalizedFlag     bool
	HasFinalizedFlag  bool
	PreviousJustified Checkpoint
	CurrentJustified  Checkpoint
	Finalized         Checkpoint
}

// DecodeFinalityCheckpoints decodes {"execution_optimistic": bool,
// "finalized": bool, "data": {"previous_justified": {"epoch": "<uint64>",
// "root": "0x.."}, "current_justified": {...}, "finalized": {...}}}. The two
// top-level flags may be absent. It refuses an answer that breaks the
// beacon-chain ordering previous_justified ≤ current_justified and
// finalized ≤ current_justified (by epoch): no honest state has it.
func DecodeFinalityCheckpoints(b []byte) (FinalityCheckpoints, error) {
	var f FinalityCheckpoints
	doc, err := parseDocument(b)
	if err != nil {
		return f, err
	}
	if f.ExecutionOptimistic, _, err = doc.optBool("execution_optimistic"); err != nil {
		return FinalityCheckpoints{}, err
	}
	if f.FinalizedFlag, f.HasFinalizedFlag, err = doc.optBool("finalized"); err != nil {
		return FinalityCheckpoints{}, err
	}
	data, err := doc.object("data")
	if err != nil {
		return FinalityCheckpoints{}, err
	}
	for _, c := range []struct {
		name string
		dst  *Checkpoint
	}{
		{"previous_justified", &f.PreviousJustified},
		{"current_justified", &f.CurrentJustified},
		{"finalized", &f.Finalized},
	} {
		cp, err := data.object(c.name)
		if err != nil {
			return FinalityCheckpoints{}, err
		}
		if *c.dst, err = decodeCheckpoint(cp); err != nil {
			return FinalityCheckpoints{}, err
		}
	}
	if f.PreviousJustified.Epoch > f.CurrentJustified.Epoch || f.Finalized.Epoch > f.CurrentJustified.Epoch {
		return FinalityCheckpoints{}, malformed("data", "checkpoints out of order: previous_justified %d, current_justified %d, finalized %d",
			f.PreviousJustified.Epoch, f.CurrentJustified.Epoch, f.Finalized.Epoch)
	}
	return f, nil
}

func decodeCheckpoint(o *jsonObject) (Checkpoint, error) {
	var c Checkpoint
	var err error
	if c.Epoch, err = o.uintString("epoch", math.MaxUint64); err != nil {
		return Checkpoint{}, err
	}
	root, err := o.hexBytes("root", 32, true)
	if err != nil {
		return Checkpoint{}, err
	}
	copy(c.Root[:], root)
	return c, nil
}

// BlockHeader is the answer of GET /eth/v1/beacon/headers/{block_id}.
type BlockHeader struct {
	ExecutionOptimistic bool // absent counts as false
	Finalized           bool // meaningful when HasFinalized
	HasFinalized        bool
	Root                eth.Root
	Canonical           bool
	Slot                uint64
	ProposerIndex       uint64
	ParentRoot          eth.Root
	StateRoot           eth.Root
	BodyRoot            eth.Root
	Signature           [96]byte
}

// DecodeBlockHeader decodes {"execution_optimistic": bool, "finalized":
// bool, "data": {"root": "0x..", "canonical": bool, "header": {"message":
// {"slot", "proposer_index", "parent_root", "state_root", "body_root"},
// "signature": "0x<96 bytes>"}}}. The two top-level flags may be absent.
func DecodeBlockHeader(b []byte) (BlockHeader, error) {
	var h BlockHeader
	doc, err := parseDocument(b)
	if err != nil {
		return h, err
	}
	if h.ExecutionOptimistic, _, err = doc.optBool("execution_optimistic"); err != nil {
		return BlockHeader{}, err
	}
	if h.Finalized, h.HasFinalized, err = doc.optBool("finalized"); err != nil {
		return BlockHeader{}, err
	}
	data, err := doc.object("data")
	if err != nil {
		return BlockHeader{}, err
	}
	if err := hexInto(data, "root", h.Root[:]); err != nil {
		return BlockHeader{}, err
	}
	if h.Canonical, err = data.boolean("canonical"); err != nil {
		return BlockHeader{}, err
	}
	hdr, err := data.object("header")
	if err != nil {
		return BlockHeader{}, err
	}
	msg, err := hdr.object("message")
	if err != nil {
		return BlockHeader{}, err
	}
	if h.Slot, err = msg.uintString("slot", math.MaxUint64); err != nil {
		return BlockHeader{}, err
	}
	if h.ProposerIndex, err = msg.uintString("proposer_index", math.MaxUint64); err != nil {
		return BlockHeader{}, err
	}
	for _, r := range []struct {
		name string
		dst  []byte
	}{{"parent_root", h.ParentRoot[:]}, {"state_root", h.StateRoot[:]}, {"body_root", h.BodyRoot[:]}} {
		if err := hexInto(msg, r.name, r.dst); err != nil {
			return BlockHeader{}, err
		}
	}
	if err := hexInto(hdr, "signature", h.Signature[:]); err != nil {
		return BlockHeader{}, err
	}
	return h, nil
}

// hexInto decodes the 0x-prefixed member name of o into dst, which fixes
// the length.
func hexInto(o *jsonObject, name string, dst []byte) error {
	b, err := o.hexBytes(name, len(dst), true)
	if err != nil {
		return err
	}
	copy(dst, b)
	return nil
}
