package finality

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/regent-signer/regent/slashing/eth"
)

// This file holds the agreement rules: pure functions of the answers of one
// round, no I/O, no clock.

// EthAnswer is one beacon node's usable answer in one round: its finalized
// checkpoint, and the finalized block header it served alongside.
type EthAnswer struct {
	Endpoint  string
	Finalized Checkpoint
	// FinalizedBlockSlot and FinalizedBlockRoot are from
	// /eth/v1/beacon/headers/finalized. Unless Finalized is the pre-finality
	// checkpoint (epoch 0, zero root), FinalizedBlockRoot equals
	// Finalized.Root and FinalizedBlockSlot is at most the epoch's first
	// slot.
	FinalizedBlockSlot  uint64
	FinalizedBlockRoot  eth.Root
	ExecutionOptimistic bool
	// GenesisTime is the node's genesis_time (seconds).
	GenesisTime uint64
}

// CometAnswer is one CometBFT node's usable answer in one round.
type CometAnswer struct {
	Endpoint     string
	LatestHeight int64    // from /status
	LatestHash   [32]byte // from /status
	// CommitHash is the block hash at the agreed height from
	// /commit?height=H; CommitCanonical its "canonical" flag. Set only for
	// endpoints that were asked (those at or above H).
	CommitHash      [32]byte
	CommitCanonical bool
}

// agreeEth applies the Ethereum agreement rule to the usable answers of one
// round (one per endpoint):
//
//  1. Two answers naming the same finalized epoch with different roots are
//     a conflict (ErrConflict), whatever the epochs of the others: at least
//     one of those endpoints is on another fork or lying. Nothing is
//     confirmed.
//  2. Fewer than quorum answers: ErrNoQuorum.
//  3. Otherwise the agreed epoch E is the largest epoch such that at least
//     quorum answers report a finalized epoch ≥ E, i.e. the quorum-th
//     largest reported epoch. An endpoint far ahead of the others cannot
//     raise E on its own. The agreed root is the root the answers at
//     exactly E report (there is at least one; by rule 1 they agree).
//
// It returns E, its root, and the answers at or above E (the endpoints that
// vouch for E), sorted by endpoint.
func agreeEth(answers []EthAnswer, quorum int) (uint64, eth.Root, []EthAnswer, error) {
	byEpoch := map[uint64]EthAnswer{}
	for _, a := range answers {
		if prev, ok := byEpoch[a.Finalized.Epoch]; ok && prev.Finalized.Root != a.Finalized.Root {
			return 0, eth.Root{}, nil, fmt.Errorf("%w: finalized epoch %d: %s reports root %x, %s reports %x",
				ErrConflict, a.Finalized.Epoch, prev.Endpoint, prev.Finalized.Root, a.Endpoint, a.Finalized.Root)
		}
		byEpoch[a.Finalized.Epoch] = a
	}
	if len(answers) < quorum {
		return 0, eth.Root{}, nil, fmt.Errorf("%w: %d usable answers, quorum %d", ErrNoQuorum, len(answers), quorum)
	}
	epochs := make([]uint64, len(answers))
	for i, a := range answers {
		epochs[i] = a.Finalized.Epoch
	}
	slices.Sort(epochs)
	e := epochs[len(epochs)-quorum]
	var agreeing []EthAnswer
	for _, a := range answers {
		if a.Finalized.Epoch >= e {
			agreeing = append(agreeing, a)
		}
	}
	slices.SortFunc(agreeing, func(a, b EthAnswer) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return e, byEpoch[e].Finalized.Root, agreeing, nil
}

// cometHeight applies the first CometBFT rule to the status answers of one
// round: two answers at the same latest height with different block hashes
// are a conflict; fewer than quorum answers is ErrNoQuorum; otherwise the
// candidate height H is the quorum-th largest latest height, the largest H
// that at least quorum endpoints have reached.
func cometHeight(answers []CometAnswer, quorum int) (int64, error) {
	byHeight := map[int64]CometAnswer{}
	for _, a := range answers {
		if prev, ok := byHeight[a.LatestHeight]; ok && prev.LatestHash != a.LatestHash {
			return 0, fmt.Errorf("%w: height %d: %s reports block %X, %s reports %X",
				ErrConflict, a.LatestHeight, prev.Endpoint, prev.LatestHash, a.Endpoint, a.LatestHash)
		}
		byHeight[a.LatestHeight] = a
	}
	if len(answers) < quorum {
		return 0, fmt.Errorf("%w: %d usable answers, quorum %d", ErrNoQuorum, len(answers), quorum)
	}
	heights := make([]int64, len(answers))
	for i, a := range answers {
		heights[i] = a.LatestHeight
	}
	slices.Sort(heights)
	return heights[len(heights)-quorum], nil
}

// cometAgree applies the second CometBFT rule to the answers whose
// /commit?height=H succeeded: any two different block hashes are a
// conflict; fewer than quorum is ErrNoQuorum; otherwise the hash they all
// report is the agreed hash. It returns the answers sorted by endpoint.
func cometAgree(answers []CometAnswer, height int64, quorum int) ([32]byte, []CometAnswer, error) {
	for _, a := range answers[min(1, len(answers)):] {
		if a.CommitHash != answers[0].CommitHash {
			return [32]byte{}, nil, fmt.Errorf("%w: height %d: %s commits block %X, %s commits %X",
				ErrConflict, height, answers[0].Endpoint, answers[0].CommitHash, a.Endpoint, a.CommitHash)
		}
	}
	if len(answers) < quorum {
		return [32]byte{}, nil, fmt.Errorf("%w: %d commits at height %d, quorum %d", ErrNoQuorum, len(answers), height, quorum)
	}
	out := slices.Clone(answers)
	slices.SortFunc(out, func(a, b CometAnswer) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return out[0].CommitHash, out, nil
}

// compareRoots orders roots bytewise.
func compareRoots(a, b eth.Root) int { return bytes.Compare(a[:], b[:]) }
