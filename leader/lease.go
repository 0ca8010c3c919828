package leader

import (
	"fmt"
	"sort"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/slashing/eth"
)

// LeaseState is the state of the signing lease.
type LeaseState uint8

const (
	// LeaseVacant: no holder; nobody may sign. The state before bootstrap.
	LeaseVacant LeaseState = iota
	// LeaseActive: Holder may sign under Epoch.
	LeaseActive
	// LeaseFenced: nobody may sign; records of Epoch are refused; the
	// high-water mark of Epoch is fixed, waiting for a new holder.
	LeaseFenced
)

func (s LeaseState) String() string {
	switch s {
	case LeaseActive:
		return "active"
	case LeaseFenced:
		return "fenced"
	default:
		return "vacant"
	}
}

// Lease is the single signing lease (DESIGN.md I2).
type Lease struct {
	Holder        string
	Epoch         uint64
	State         LeaseState
	SinceIndex    uint64 // log index of the entry that set this state
	SinceUnixNano int64  // proposer's stamp on that entry
	FenceReason   string
	// HighWater is the fixed high-water mark of Epoch once fenced.
	HighWater HighWater
}

// Allows reports whether a record proposed by holder under epoch may be
// evaluated now.
func (l Lease) Allows(holder string, epoch uint64) bool {
	return l.State == LeaseActive && l.Holder == holder && l.Epoch == epoch
}

// EthMark is the highest Ethereum position recorded for one network.
type EthMark struct {
	MaxBlockSlot   uint64
	HasBlock       bool
	MaxTargetEpoch uint64
	HasAttestation bool
}

// HighWater is the highest position recorded under one lease epoch, per
// chain: Ethereum by genesis validators root, CometBFT by chain id.
type HighWater struct {
	Eth   map[eth.Root]EthMark
	Comet map[string]int64
}

func (h *HighWater) noteBlock(gvr eth.Root, slot uint64) {
	if h.Eth == nil {
		h.Eth = make(map[eth.Root]EthMark)
	}
	m := h.Eth[gvr]
	if !m.HasBlock || slot > m.MaxBlockSlot {
		m.MaxBlockSlot, m.HasBlock = slot, true
	}
	h.Eth[gvr] = m
}

func (h *HighWater) noteAttestation(gvr eth.Root, target uint64) {
	if h.Eth == nil {
		h.Eth = make(map[eth.Root]EthMark)
	}
	m := h.Eth[gvr]
	if !m.HasAttestation || target > m.MaxTargetEpoch {
		m.MaxTargetEpoch, m.HasAttestation = target, true
	}
	h.Eth[gvr] = m
}

func (h *HighWater) noteHeight(chainID string, height int64) {
	if h.Comet == nil {
		h.Comet = make(map[string]int64)
	}
	if cur, ok := h.Comet[chainID]; !ok || height > cur {
		h.Comet[chainID] = height
	}
}

// String renders the mark for logs and status, in a stable order.
func (h HighWater) String() string {
	if len(h.Eth) == 0 && len(h.Comet) == 0 {
		return "none"
	}
	out := ""
	for _, gvr := range sortedRoots(h.Eth) {
		m := h.Eth[gvr]
		out += fmt.Sprintf("eth %x…:", gvr[:4])
		if m.HasBlock {
			out += fmt.Sprintf(" block slot %d", m.MaxBlockSlot)
		}
		if m.HasAttestation {
			out += fmt.Sprintf(" target epoch %d", m.MaxTargetEpoch)
		}
		out += "; "
	}
	chains := make([]string, 0, len(h.Comet))
	for c := range h.Comet {
		chains = append(chains, c)
	}
	sort.Strings(chains)
	for _, c := range chains {
		out += fmt.Sprintf("%s: height %d; ", c, h.Comet[c])
	}
	return out[:len(out)-2]
}

func sortedRoots[V any](m map[eth.Root]V) []eth.Root {
	keys := make([]eth.Root, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return string(keys[i][:]) < string(keys[j][:]) })
	return keys
}

func (h HighWater) toProto() *commandpb.HighWater {
	p := &commandpb.HighWater{}
	for _, gvr := range sortedRoots(h.Eth) {
		m := h.Eth[gvr]
		p.Eth = append(p.Eth, &commandpb.EthHighWater{
			GenesisValidatorsRoot: append([]byte(nil), gvr[:]...),
			MaxBlockSlot:          m.MaxBlockSlot, HasBlock: m.HasBlock,
			MaxTargetEpoch: m.MaxTargetEpoch, HasAttestation: m.HasAttestation,
		})
	}
	chains := make([]string, 0, len(h.Comet))
	for c := range h.Comet {
		chains = append(chains, c)
	}
	sort.Strings(chains)
	for _, c := range chains {
		p.Comet = append(p.Comet, &commandpb.CometHighWater{ChainId: c, MaxHeight: h.Comet[c]})
	}
	return p
}

func highWaterFromProto(p *commandpb.HighWater) (HighWater, error) {
	var h HighWater
	for _, e := range p.GetEth() {
		gvr, err := root32(e.GenesisValidatorsRoot)
		if err != nil {
			return h, err
		}
		if h.Eth == nil {
			h.Eth = make(map[eth.Root]EthMark)
		}
		h.Eth[gvr] = EthMark{MaxBlockSlot: e.MaxBlockSlot, HasBlock: e.HasBlock, MaxTargetEpoch: e.MaxTargetEpoch, HasAttestation: e.HasAttestation}
	}
	for _, c := range p.GetComet() {
		if h.Comet == nil {
			h.Comet = make(map[string]int64)
		}
		h.Comet[c.ChainId] = c.MaxHeight
	}
	return h, nil
}
