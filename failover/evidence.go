package failover

import (
	"bytes"
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/slashing/eth"
)

// Limits of finality evidence.
const (
	// MaxEvidenceChains bounds the chains of one ConfirmFinality.
	MaxEvidenceChains = 256
	// MaxEndpoints bounds the endpoints named per chain.
	MaxEndpoints = 64
	// MaxEndpointName bounds one endpoint's name.
	MaxEndpointName = 256
	// MaxSlotsPerEpoch bounds an Ethereum network's slots per epoch.
	MaxSlotsPerEpoch = 1024
	// maxChainID is CometBFT's chain-id limit.
	maxChainID = 50
)

// CheckEvidence decides whether cf proves finality past the fixed
// high-water mark hw, with at least quorum distinct endpoints per chain.
// It is what the state machine runs on ConfirmFinality, and what a
// watcher runs before proposing. For every chain of hw, cf must hold that
// chain, and:
//   - Ethereum: the finalized epoch is above the highest attested target
//     epoch, and the finalized epoch's first slot (epoch × slots per epoch)
//     is above the highest block slot;
//   - CometBFT: the committed height is above the highest signed height.
//
// Chains cf holds beyond hw need no mark but must be well formed. Shape
// errors wrap ErrMalformed; evidence that falls short wraps
// ErrFinalityShort.
func CheckEvidence(hw leader.HighWater, cf *failoverpb.ConfirmFinality, quorum int) error {
	if len(cf.GetEth())+len(cf.GetComet()) > MaxEvidenceChains {
		return fmt.Errorf("%w: %d chains in one evidence (at most %d)", ErrMalformed, len(cf.GetEth())+len(cf.GetComet()), MaxEvidenceChains)
	}
	ethEv := make(map[eth.Root]*failoverpb.EthFinality, len(cf.GetEth()))
	for i, ev := range cf.GetEth() {
		if len(ev.GenesisValidatorsRoot) != 32 || len(ev.FinalizedRoot) != 32 {
			return fmt.Errorf("%w: eth evidence %d: genesis validators root of %d bytes, finalized root of %d bytes (want 32)",
				ErrMalformed, i, len(ev.GenesisValidatorsRoot), len(ev.FinalizedRoot))
		}
		if ev.SlotsPerEpoch > MaxSlotsPerEpoch {
			return fmt.Errorf("%w: eth evidence %d: %d slots per epoch", ErrMalformed, i, ev.SlotsPerEpoch)
		}
		gvr := eth.Root(ev.GenesisValidatorsRoot)
		if _, dup := ethEv[gvr]; dup {
			return fmt.Errorf("%w: eth evidence for %x twice", ErrMalformed, gvr[:4])
		}
		if err := checkEndpoints(ev.Endpoints, quorum); err != nil {
			return fmt.Errorf("eth evidence %x…: %w", gvr[:4], err)
		}
		ethEv[gvr] = ev
	}
	cometEv := make(map[string]*failoverpb.CometFinality, len(cf.GetComet()))
	for i, ev := range cf.GetComet() {
		if ev.ChainId == "" || len(ev.ChainId) > maxChainID || ev.Height < 1 || len(ev.BlockHash) != 32 {
			return fmt.Errorf("%w: comet evidence %d: chain %q height %d block hash of %d bytes", ErrMalformed, i, ev.ChainId, ev.Height, len(ev.BlockHash))
		}
		if _, dup := cometEv[ev.ChainId]; dup {
			return fmt.Errorf("%w: comet evidence for %q twice", ErrMalformed, ev.ChainId)
		}
		if err := checkEndpoints(ev.Endpoints, quorum); err != nil {
			return fmt.Errorf("comet evidence %q: %w", ev.ChainId, err)
		}
		cometEv[ev.ChainId] = ev
	}
	for _, gvr := range sortedRoots(hw.Eth) {
		mark := hw.Eth[gvr]
		ev, ok := ethEv[gvr]
		if !ok {
			return fmt.Errorf("%w: no evidence for eth chain %x… (high-water: slot %d, target %d)", ErrFinalityShort, gvr[:4], mark.MaxBlockSlot, mark.MaxTargetEpoch)
		}
		if mark.HasAttestation && ev.FinalizedEpoch <= mark.MaxTargetEpoch {
			return fmt.Errorf("%w: eth chain %x…: finalized epoch %d is not above target epoch %d", ErrFinalityShort, gvr[:4], ev.FinalizedEpoch, mark.MaxTargetEpoch)
		}
		if mark.HasBlock {
			spe := uint64(ev.SlotsPerEpoch)
			if spe == 0 {
				spe = DefaultSlotsPerEpoch
			}
			hi, first := bits.Mul64(ev.FinalizedEpoch, spe)
			if hi == 0 && first <= mark.MaxBlockSlot {
				return fmt.Errorf("%w: eth chain %x…: finalized epoch %d starts at slot %d, not above block slot %d",
					ErrFinalityShort, gvr[:4], ev.FinalizedEpoch, first, mark.MaxBlockSlot)
			}
		}
	}
	chains := make([]string, 0, len(hw.Comet))
	for c := range hw.Comet {
		chains = append(chains, c)
	}
	sort.Strings(chains)
	for _, c := range chains {
		ev, ok := cometEv[c]
		if !ok {
			return fmt.Errorf("%w: no evidence for comet chain %q (high-water height %d)", ErrFinalityShort, c, hw.Comet[c])
		}
		if ev.Height <= hw.Comet[c] {
			return fmt.Errorf("%w: comet chain %q: committed height %d is not above height %d", ErrFinalityShort, c, ev.Height, hw.Comet[c])
		}
	}
	return nil
}

func checkEndpoints(eps []string, quorum int) error {
	if len(eps) > MaxEndpoints {
		return fmt.Errorf("%w: %d endpoints (at most %d)", ErrMalformed, len(eps), MaxEndpoints)
	}
	seen := make(map[string]bool, len(eps))
	for _, ep := range eps {
		if ep == "" || len(ep) > MaxEndpointName {
			return fmt.Errorf("%w: endpoint name of %d bytes", ErrMalformed, len(ep))
		}
		if seen[ep] {
			return fmt.Errorf("%w: endpoint %q listed twice", ErrMalformed, ep)
		}
		seen[ep] = true
	}
	if len(seen) < quorum {
		return fmt.Errorf("%w: %d endpoints agree, quorum is %d", ErrFinalityShort, len(seen), quorum)
	}
	return nil
}

func sortedRoots[V any](m map[eth.Root]V) []eth.Root {
	out := make([]eth.Root, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i][:], out[j][:]) < 0 })
	return out
}

func evidenceString(cf *failoverpb.ConfirmFinality) string {
	var parts []string
	for _, ev := range cf.GetEth() {
		parts = append(parts, fmt.Sprintf("eth %x…: finalized epoch %d root %x… (%d endpoints)", ev.GenesisValidatorsRoot[:4], ev.FinalizedEpoch, ev.FinalizedRoot[:4], len(ev.Endpoints)))
	}
	for _, ev := range cf.GetComet() {
		parts = append(parts, fmt.Sprintf("%s: height %d hash %x… (%d endpoints)", ev.ChainId, ev.Height, ev.BlockHash[:4], len(ev.Endpoints)))
	}
	if len(parts) == 0 {
		return "no chains"
	}
	return strings.Join(parts, "; ")
}

// EthReport is what one beacon endpoint reports for one network.
type EthReport struct {
	Endpoint              string
	GenesisValidatorsRoot eth.Root
	FinalizedEpoch        uint64
	FinalizedRoot         eth.Root
	SlotsPerEpoch         uint32 // 0 means 32
}

// CometReport is what one CometBFT RPC endpoint reports for one chain: a
// committed height and its block hash.
type CometReport struct {
	Endpoint  string
	ChainID   string
	Height    int64
	BlockHash []byte
}

// BuildEvidence turns endpoint reports into the ConfirmFinality the
// incoming region's watcher proposes. For every chain of hw it takes the
// highest finalized checkpoint (Ethereum) or committed block (CometBFT)
// that at least quorum distinct endpoints report identically; an endpoint
// that reports two different values for one chain is ignored for that
// chain, and two different values each backed by a quorum at that highest
// epoch or height is an error. The result passes CheckEvidence, or
// BuildEvidence returns an error wrapping ErrFinalityShort (not yet) or
// ErrMalformed (bad or conflicting reports).
func BuildEvidence(handoverID uint64, hw leader.HighWater, ethReports []EthReport, cometReports []CometReport, quorum int) (*failoverpb.ConfirmFinality, error) {
	if quorum < 1 {
		return nil, fmt.Errorf("%w: quorum %d", ErrMalformed, quorum)
	}
	cf := &failoverpb.ConfirmFinality{HandoverId: handoverID}
	type ethVal struct {
		root eth.Root
		spe  uint32
	}
	for _, gvr := range sortedRoots(hw.Eth) {
		var obs []observation[ethVal]
		for _, r := range ethReports {
			if r.GenesisValidatorsRoot == gvr {
				obs = append(obs, observation[ethVal]{r.Endpoint, r.FinalizedEpoch, ethVal{r.FinalizedRoot, r.SlotsPerEpoch}})
			}
		}
		pos, v, eps, err := agree(obs, quorum)
		if err != nil {
			return nil, fmt.Errorf("eth chain %x…: %w", gvr[:4], err)
		}
		g := gvr
		cf.Eth = append(cf.Eth, &failoverpb.EthFinality{GenesisValidatorsRoot: g[:], FinalizedEpoch: pos, FinalizedRoot: v.root[:],
			Endpoints: eps, SlotsPerEpoch: v.spe})
	}
	chains := make([]string, 0, len(hw.Comet))
	for c := range hw.Comet {
		chains = append(chains, c)
	}
	sort.Strings(chains)
	for _, chain := range chains {
		var obs []observation[string]
		for _, r := range cometReports {
			if r.ChainID == chain && r.Height >= 0 {
				obs = append(obs, observation[string]{r.Endpoint, uint64(r.Height), string(r.BlockHash)})
			}
		}
		pos, hash, eps, err := agree(obs, quorum)
		if err != nil {
			return nil, fmt.Errorf("comet chain %q: %w", chain, err)
		}
		cf.Comet = append(cf.Comet, &failoverpb.CometFinality{ChainId: chain, Height: int64(pos), BlockHash: []byte(hash), Endpoints: eps})
	}
	if err := CheckEvidence(hw, cf, quorum); err != nil {
		return nil, err
	}
	return cf, nil
}

// observation is one endpoint's report of a position (epoch or height)
// and the value there (checkpoint root or block hash).
type observation[V comparable] struct {
	endpoint string
	pos      uint64
	val      V
}

// agree returns the highest (position, value) that at least quorum
// distinct endpoints report, with those endpoints sorted. Endpoints that
// report two different things are dropped; two values at the winning
// position, each with a quorum, are a conflict.
func agree[V comparable](obs []observation[V], quorum int) (uint64, V, []string, error) {
	type pv struct {
		pos uint64
		val V
	}
	byEP := map[string]pv{}
	bad := map[string]bool{}
	for _, o := range obs {
		if o.endpoint == "" {
			continue
		}
		v := pv{o.pos, o.val}
		if prev, ok := byEP[o.endpoint]; ok && prev != v {
			bad[o.endpoint] = true
		}
		byEP[o.endpoint] = v
	}
	groups := map[pv][]string{}
	for ep, v := range byEP {
		if !bad[ep] {
			groups[v] = append(groups[v], ep)
		}
	}
	var zero V
	found, top := false, uint64(0)
	for v, eps := range groups {
		if len(eps) >= quorum && (!found || v.pos > top) {
			found, top = true, v.pos
		}
	}
	if !found {
		return 0, zero, nil, fmt.Errorf("%w: no position reported by %d endpoints", ErrFinalityShort, quorum)
	}
	var winners []pv
	for v, eps := range groups {
		if len(eps) >= quorum && v.pos == top {
			winners = append(winners, v)
		}
	}
	if len(winners) > 1 {
		return 0, zero, nil, fmt.Errorf("%w: conflicting values at %d, each reported by a quorum", ErrMalformed, top)
	}
	eps := groups[winners[0]]
	sort.Strings(eps)
	return top, winners[0].val, eps, nil
}
