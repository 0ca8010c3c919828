package cometbfttest

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/regent-signer/regent/slashing/cometbft"
)

// BlockIDFlagCommit is CometBFT's BlockIDFlag for a precommit for the block.
const BlockIDFlagCommit = 2

// CheckChain reads blocks from..to and verifies, for each: it carries no
// evidence (no double-sign evidence was ever committed); its commit holds a
// precommit from validator whose signature verifies over the canonical
// precommit sign bytes rebuilt from the commit — an independent check of
// the sign bytes the signer built — and, when log is set, that signature
// was released through Regent.
func CheckChain(ctx context.Context, n *Node, chainID string, validator ed25519.PublicKey, log *SignLog, from, to int64) error {
	addr := Address(validator)
	for h := from; h <= to; h++ {
		b, err := n.Block(ctx, h)
		if err != nil {
			return err
		}
		if len(b.Evidence) > 0 {
			return fmt.Errorf("block %d carries evidence: %s", h, b.Evidence[0])
		}
		found := false
		for _, s := range b.Sigs {
			if s.ValidatorAddress != addr {
				continue
			}
			found = true
			if s.Flag != BlockIDFlagCommit {
				return fmt.Errorf("block %d: validator's commit signature has flag %d", h, s.Flag)
			}
			sb, err := cometbft.EncodeVoteSignBytes(cometbft.CanonicalVote{
				Type: cometbft.TypePrecommit, Height: h, Round: b.Round,
				BlockID:   &cometbft.BlockID{Hash: b.BlockHash, PartSetHeader: cometbft.PartSetHeader{Total: b.PartTotal, Hash: b.PartsHash}},
				Timestamp: cometbft.Timestamp{Seconds: s.Timestamp.Unix(), Nanos: int32(s.Timestamp.Nanosecond())},
				ChainID:   chainID,
			})
			if err != nil {
				return fmt.Errorf("block %d: rebuilding precommit sign bytes: %w", h, err)
			}
			if !ed25519.Verify(validator, sb, s.Signature) {
				return fmt.Errorf("block %d: commit signature does not verify", h)
			}
			if log != nil && !log.Released(s.Signature) {
				return fmt.Errorf("block %d: commit signature was not released through Regent", h)
			}
		}
		if !found {
			return fmt.Errorf("block %d: no commit signature from validator %s", h, addr)
		}
	}
	return nil
}
