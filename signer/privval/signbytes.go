package privval

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/regent-signer/regent/signer/privval/wire"
	"github.com/regent-signer/regent/slashing/cometbft"
)

// This file builds sign bytes the way CometBFT does —
// protoio.MarshalDelimited(CanonicalizeVote(chainID, vote)) and its proposal
// and vote-extension siblings — from the request's own fields, and then
// cross-checks every result against slashing/cometbft's independent strict
// codec: the bytes must decode there, name the same position, chain and
// timestamp, and re-encode to the same bytes. Two encoders written apart
// have to agree before anything is recorded or signed.

// Canonical field numbers (tendermint.types canonical.proto).
const (
	cType, cHeight, cRound                 = 1, 2, 3
	cVoteBlockID, cVoteTS, cVoteChain      = 4, 5, 6
	cPropPOL, cPropBlockID, cPropTS, cPCID = 4, 5, 6, 7
	cExtExtension, cExtChain               = 1, 4
)

func appendSfixed64(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, uint64(v))
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendMsgField(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

// canonicalBlockID is CanonicalizeBlockID: nil (left out) for the zero
// block id, else hash plus the always-written part set header.
func canonicalBlockID(id wire.BlockID) []byte {
	var psh []byte
	psh = appendVarintField(psh, 1, uint64(id.PartSetHeader.Total))
	psh = appendBytesField(psh, 2, id.PartSetHeader.Hash)
	var b []byte
	b = appendBytesField(b, 1, id.Hash)
	return appendMsgField(b, 2, psh)
}

func canonicalTimestamp(t wire.Timestamp) []byte {
	var b []byte
	b = appendVarintField(b, 1, uint64(t.Seconds))
	return appendVarintField(b, 2, uint64(int64(t.Nanos)))
}

// voteSignBytes is types.VoteSignBytes(chainID, v).
func voteSignBytes(chainID string, v *wire.Vote) []byte {
	var b []byte
	b = appendVarintField(b, cType, uint64(int64(v.Type)))
	b = appendSfixed64(b, cHeight, v.Height)
	b = appendSfixed64(b, cRound, int64(v.Round))
	if !v.BlockID.IsZero() {
		b = appendMsgField(b, cVoteBlockID, canonicalBlockID(v.BlockID))
	}
	b = appendMsgField(b, cVoteTS, canonicalTimestamp(v.Timestamp))
	b = appendBytesField(b, cVoteChain, []byte(chainID))
	return protowire.AppendBytes(nil, b)
}

// proposalSignBytes is types.ProposalSignBytes(chainID, p). The canonical
// type is always ProposalType, whatever p.Type says (callers check it).
func proposalSignBytes(chainID string, p *wire.Proposal) []byte {
	var b []byte
	b = appendVarintField(b, cType, uint64(wire.TypeProposal))
	b = appendSfixed64(b, cHeight, p.Height)
	b = appendSfixed64(b, cRound, int64(p.Round))
	b = appendVarintField(b, cPropPOL, uint64(int64(p.POLRound)))
	if !p.BlockID.IsZero() {
		b = appendMsgField(b, cPropBlockID, canonicalBlockID(p.BlockID))
	}
	b = appendMsgField(b, cPropTS, canonicalTimestamp(p.Timestamp))
	b = appendBytesField(b, cPCID, []byte(chainID))
	return protowire.AppendBytes(nil, b)
}

// voteExtensionSignBytes is types.VoteExtensionSignBytes(chainID, v).
func voteExtensionSignBytes(chainID string, v *wire.Vote) []byte {
	var b []byte
	b = appendBytesField(b, cExtExtension, v.Extension)
	b = appendSfixed64(b, cHeight, v.Height)
	b = appendSfixed64(b, cRound, int64(v.Round))
	b = appendBytesField(b, cExtChain, []byte(chainID))
	return protowire.AppendBytes(nil, b)
}

func toCometTS(t wire.Timestamp) cometbft.Timestamp {
	return cometbft.Timestamp{Seconds: t.Seconds, Nanos: t.Nanos}
}

func fromCometTS(t cometbft.Timestamp) wire.Timestamp {
	return wire.Timestamp{Seconds: t.Seconds, Nanos: t.Nanos}
}

// checkedVoteSignBytes builds the vote's sign bytes and cross-checks them.
// Errors wrap ErrBadRequest: the vote is not one CometBFT's rules accept.
func checkedVoteSignBytes(chainID string, v *wire.Vote) ([]byte, cometbft.HRS, error) {
	sb := voteSignBytes(chainID, v)
	m, err := cometbft.ParseSignBytes(sb)
	if err != nil {
		return nil, cometbft.HRS{}, fmt.Errorf("%w: vote sign bytes: %w", ErrBadRequest, err)
	}
	step, _ := cometbft.StepOf(cometbft.SignedMsgType(v.Type))
	want := cometbft.HRS{Height: v.Height, Round: v.Round, Step: step}
	if m.Type != cometbft.SignedMsgType(v.Type) || m.HRS() != want || m.ChainID() != chainID || m.Timestamp() != toCometTS(v.Timestamp) {
		return nil, cometbft.HRS{}, fmt.Errorf("%w: vote sign bytes decode to %s on %q, want %s on %q", ErrInconsistent, m.HRS(), m.ChainID(), want, chainID)
	}
	again, err := cometbft.EncodeVoteSignBytes(m.Vote)
	if err != nil || !bytes.Equal(again, sb) {
		return nil, cometbft.HRS{}, fmt.Errorf("%w: the two vote sign-bytes encoders disagree (%v)", ErrInconsistent, err)
	}
	return sb, want, nil
}

// checkedProposalSignBytes builds and cross-checks a proposal's sign bytes.
func checkedProposalSignBytes(chainID string, p *wire.Proposal) ([]byte, cometbft.HRS, error) {
	sb := proposalSignBytes(chainID, p)
	m, err := cometbft.ParseSignBytes(sb)
	if err != nil {
		return nil, cometbft.HRS{}, fmt.Errorf("%w: proposal sign bytes: %w", ErrBadRequest, err)
	}
	want := cometbft.HRS{Height: p.Height, Round: p.Round, Step: cometbft.StepPropose}
	if m.Type != cometbft.TypeProposal || m.HRS() != want || m.ChainID() != chainID || m.Timestamp() != toCometTS(p.Timestamp) ||
		m.Proposal.POLRound != p.POLRound {
		return nil, cometbft.HRS{}, fmt.Errorf("%w: proposal sign bytes decode to %s on %q, want %s on %q", ErrInconsistent, m.HRS(), m.ChainID(), want, chainID)
	}
	again, err := cometbft.EncodeProposalSignBytes(m.Proposal)
	if err != nil || !bytes.Equal(again, sb) {
		return nil, cometbft.HRS{}, fmt.Errorf("%w: the two proposal sign-bytes encoders disagree (%v)", ErrInconsistent, err)
	}
	return sb, want, nil
}

// checkedExtensionSignBytes builds and cross-checks a vote extension's sign
// bytes.
func checkedExtensionSignBytes(chainID string, v *wire.Vote) ([]byte, error) {
	sb := voteExtensionSignBytes(chainID, v)
	e, err := cometbft.DecodeVoteExtensionSignBytes(sb)
	if err != nil {
		return nil, fmt.Errorf("%w: vote extension sign bytes: %w", ErrBadRequest, err)
	}
	if e.Height != v.Height || e.Round != v.Round || e.ChainID != chainID || !bytes.Equal(e.Extension, v.Extension) {
		return nil, fmt.Errorf("%w: vote extension sign bytes decode to other values", ErrInconsistent)
	}
	again, err := cometbft.EncodeVoteExtensionSignBytes(e)
	if err != nil || !bytes.Equal(again, sb) {
		return nil, fmt.Errorf("%w: the two vote-extension encoders disagree (%v)", ErrInconsistent, err)
	}
	return sb, nil
}
