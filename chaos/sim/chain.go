package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	blst "github.com/supranational/blst/bindings/go"

	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/slashing/eth"
)

// The simulated beacon chain runs fast so that finality past a fenced
// high-water mark arrives within tens of steps: 2-second slots, 8 slots
// per epoch, finality two epochs behind the head.
const (
	slotDuration  = 2 * time.Second
	slotsPerEpoch = 8
	finalityLag   = 2
	// genesisEpochs: the chain is this many epochs old when a run starts,
	// so sources and targets are never near zero.
	genesisEpochs = 16
	// heartbeatInterval is the holder's agent heartbeat period (protocol
	// time).
	heartbeatInterval = 10 * time.Second
	// drMargin is what the DR region's agent adds to the policy's silence.
	drMargin = 5 * time.Second
	// agentRetry spaces an agent's repeated DR and finality attempts.
	agentRetry = 4 * time.Second
)

// chain is the simulated beacon chain: head and finality are functions of
// the protocol clock.
type chain struct {
	genesis time.Time
	gvr     eth.Root
	fork    eth2.ForkInfo
}

func newChain(start time.Time, seed int64) chain {
	gvr := eth.Root(sha256.Sum256(fmt.Appendf(nil, "regent sim chain %d", seed)))
	return chain{
		genesis: start.Add(-genesisEpochs * slotsPerEpoch * slotDuration),
		gvr:     gvr,
		fork: eth2.ForkInfo{
			Fork:                  eth2.Fork{PreviousVersion: eth2.Version{0x05, 0, 0, 0x42}, CurrentVersion: eth2.Version{0x05, 0, 0, 0x42}},
			GenesisValidatorsRoot: eth2.Root(gvr),
		},
	}
}

func (c chain) slot(t time.Time) uint64 {
	if t.Before(c.genesis) {
		return 0
	}
	return uint64(t.Sub(c.genesis) / slotDuration)
}

func (c chain) epoch(t time.Time) uint64 { return c.slot(t) / slotsPerEpoch }

// finalized is the chain's finalized epoch at t.
func (c chain) finalized(t time.Time) uint64 {
	e := c.epoch(t)
	if e <= finalityLag {
		return 0
	}
	return e - finalityLag
}

// message is one signed (or to-be-signed) Ethereum message, as the
// checker needs it.
type message struct {
	Key    int
	Pubkey [48]byte
	Block  bool
	Slot   uint64 // block slot; attestation data slot
	Source uint64
	Target uint64
	Root   [32]byte // signing root
	Shape  DutyShape
}

func (m message) String() string {
	if m.Block {
		return fmt.Sprintf("key%d block slot %d root %x", m.Key, m.Slot, m.Root[:4])
	}
	return fmt.Sprintf("key%d attestation %d→%d root %x", m.Key, m.Source, m.Target, m.Root[:4])
}

// validatorKeys derives n BLS key pairs from the seed and returns the
// compressed public keys. The simulated key backend never needs the
// secrets: its signatures are a digest of key and signing root.
func validatorKeys(seed int64, n int) ([][48]byte, error) {
	out := make([][48]byte, n)
	for i := range n {
		ikm := sha256.Sum256(fmt.Appendf(nil, "regent sim validator %d/%d", seed, i))
		sk := blst.KeyGen(ikm[:])
		if sk == nil {
			return nil, fmt.Errorf("%w: BLS key generation failed", ErrSetup)
		}
		copy(out[i][:], new(blst.P1Affine).From(sk).Compress())
		sk.Zeroize()
	}
	return out, nil
}

func tagRoot(parts ...any) eth2.Root {
	h := sha256.New()
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			h.Write([]byte(v))
		case uint64:
			h.Write(binary.BigEndian.AppendUint64(nil, v))
		case int:
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(v)))
		}
		h.Write([]byte{0})
	}
	var r eth2.Root
	copy(r[:], h.Sum(nil))
	return r
}

// dutyRequest builds the eth2 signing request of d at protocol time t.
func (c chain) dutyRequest(d Duty, t time.Time) (*eth2.Request, message) {
	slot, epoch := c.slot(t), c.epoch(t)
	fork := c.fork
	m := message{Key: d.Key, Shape: d.Shape}
	att := func(source, target, slot uint64, beacon eth2.Root) *eth2.Request {
		m.Source, m.Target, m.Slot = source, target, slot
		return &eth2.Request{Type: eth2.TypeAttestation, ForkInfo: &fork, Attestation: &eth2.AttestationData{
			Slot: slot, Index: 0, BeaconBlockRoot: beacon,
			Source: eth2.Checkpoint{Epoch: source, Root: tagRoot("checkpoint", source)},
			Target: eth2.Checkpoint{Epoch: target, Root: tagRoot("checkpoint", target)},
		}}
	}
	block := func(slot uint64, body eth2.Root) *eth2.Request {
		m.Block, m.Slot = true, slot
		return &eth2.Request{Type: eth2.TypeBlockV2, Version: eth2.ForkDeneb, ForkInfo: &fork, BlockHeader: &eth2.BeaconBlockHeader{
			Slot: slot, ProposerIndex: uint64(d.Key), ParentRoot: tagRoot("block", slot-1), StateRoot: tagRoot("state", slot), BodyRoot: body,
		}}
	}
	// The honest attestation of key k for epoch e sits at a fixed slot of e.
	attSlot := func(e uint64) uint64 { return e*slotsPerEpoch + uint64(d.Key%slotsPerEpoch) }
	v := uint64(d.Variant)
	switch d.Shape {
	case ShapeAttest:
		return att(epoch-1, epoch, attSlot(epoch), tagRoot("canonical", attSlot(epoch))), m
	case ShapeDoubleVote:
		return att(epoch-1, epoch, attSlot(epoch), tagRoot("rogue", attSlot(epoch), v)), m
	case ShapeSurround:
		src := epoch - 2 - v%3
		return att(src, epoch+v%2, attSlot(epoch), tagRoot("rogue-surround", src, v)), m
	case ShapeStaleAttest:
		tgt := epoch - 1 - v%4
		return att(tgt-1, tgt, attSlot(tgt), tagRoot("rogue-stale", tgt, v)), m
	case ShapeBlock:
		return block(slot, tagRoot("body", slot, d.Key)), m
	case ShapeDoubleBlock:
		return block(slot, tagRoot("rogue-body", slot, v)), m
	case ShapeStaleBlock:
		return block(slot-1-v%16, tagRoot("rogue-stale-body", slot, v)), m
	default:
		return nil, m
	}
}

// fakeSignature is the simulated key backend's deterministic signature:
// SHA-256(pubkey || signing root), repeated to 96 bytes.
func fakeSignature(pk [48]byte, root [32]byte) [96]byte {
	h := sha256.New()
	h.Write(pk[:])
	h.Write(root[:])
	d := h.Sum(nil)
	var sig [96]byte
	copy(sig[0:], d)
	copy(sig[32:], d)
	copy(sig[64:], d)
	return sig
}
