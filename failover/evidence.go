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
