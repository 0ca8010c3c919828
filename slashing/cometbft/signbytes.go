package cometbft

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Wire format. CometBFT signs protoio.MarshalDelimited(canonical message):
// a uvarint length, then the proto3 encoding produced by gogoproto, which
// writes fields in ascending number order, omits proto3 zero values, always
// writes non-nullable sub-messages (timestamp; part_set_header inside
// block_id) and leaves a nil block_id out.
//
// The decoders below accept exactly that encoding and nothing else: every
// varint minimal, fields strictly ascending (no duplicates, no unknown
// fields), zero scalars absent, required fields present, no bytes after the
// message. So decoding is injective and Encode(Decode(b)) == b for every
// accepted b; two accepted sign bytes are equal exactly when their decoded
// messages are. Anything else is ErrMalformedSignBytes: at worst we refuse to
// sign something CometBFT would have produced, never the reverse.

// Field numbers (canonical.proto, package tendermint.types in v0.38 and
// cometbft.types.v1 in v1.x; identical in both).
const (
	fType = 1 // SignedMsgType, varint; all canonical messages

	fVoteHeight    = 2 // sfixed64
	fVoteRound     = 3 // sfixed64
	fVoteBlockID   = 4 // CanonicalBlockID
	fVoteTimestamp = 5 // google.protobuf.Timestamp
	fVoteChainID   = 6 // string

	fPropHeight    = 2 // sfixed64
	fPropRound     = 3 // sfixed64
	fPropPOLRound  = 4 // int64, varint
	fPropBlockID   = 5 // CanonicalBlockID
	fPropTimestamp = 6 // google.protobuf.Timestamp
	fPropChainID   = 7 // string

	fExtExtension = 1 // bytes
	fExtHeight    = 2 // sfixed64
	fExtRound     = 3 // sfixed64
	fExtChainID   = 4 // string

	fBlockHash = 1 // bytes
	fBlockPSH  = 2 // CanonicalPartSetHeader

	fPSHTotal = 1 // uint32, varint
	fPSHHash  = 2 // bytes

	fTSSeconds = 1 // int64, varint
	fTSNanos   = 2 // int32, varint
)

// wireField is one decoded field: its number and its value (u for varint and
// fixed64, b for length-delimited).
type wireField struct {
	num protowire.Number
	u   uint64
	b   []byte
}

// walkFields parses b as a canonical proto3 message. wireType tells, for each
// field number, the only wire type accepted; a number it does not know is an
// unknown field. visit sees each field in order.
func walkFields(b []byte, msg string, wireType func(protowire.Number) (protowire.Type, bool), visit func(wireField) error) error {
	var last protowire.Number
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("%s: bad field tag: %v", msg, protowire.ParseError(n))
		}
		if n != protowire.SizeTag(num) {
			return malformed("%s: field %d: non-minimal tag", msg, num)
		}
		b = b[n:]
		want, known := wireType(num)
		if !known {
			return malformed("%s: unknown field %d", msg, num)
		}
		if num <= last {
			return malformed("%s: field %d after field %d (duplicate or out of order)", msg, num, last)
		}
		last = num
		if typ != want {
			return malformed("%s: field %d has wire type %d, want %d", msg, num, typ, want)
		}
		f := wireField{num: num}
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return malformed("%s: field %d: %v", msg, num, protowire.ParseError(m))
			}
			if m != protowire.SizeVarint(v) {
				return malformed("%s: field %d: non-minimal varint", msg, num)
			}
			f.u, n = v, m
		case protowire.Fixed64Type:
			v, m := protowire.ConsumeFixed64(b)
			if m < 0 {
				return malformed("%s: field %d: %v", msg, num, protowire.ParseError(m))
			}
			f.u, n = v, m
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return malformed("%s: field %d: %v", msg, num, protowire.ParseError(m))
			}
			if m != protowire.SizeBytes(len(v)) {
				return malformed("%s: field %d: non-minimal length", msg, num)
			}
			f.b, n = v, m
		default:
			return malformed("%s: field %d: unsupported wire type %d", msg, num, typ)
		}
		b = b[n:]
		if err := visit(f); err != nil {
			return err
		}
	}
	return nil
}

// undelimit strips the uvarint length prefix of sign bytes, which must be
// minimal and equal to the length of the rest. The body must not be empty.
func undelimit(b []byte, limit int, msg string) ([]byte, error) {
	if len(b) > limit {
		return nil, malformed("%s: %d bytes, limit %d", msg, len(b), limit)
	}
	l, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return nil, malformed("%s: bad length prefix: %v", msg, protowire.ParseError(n))
	}
	if n != protowire.SizeVarint(l) {
		return nil, malformed("%s: non-minimal length prefix", msg)
	}
	if l != uint64(len(b)-n) {
		return nil, malformed("%s: length prefix %d, but %d bytes follow", msg, l, len(b)-n)
	}
	if l == 0 {
		return nil, malformed("%s: empty message", msg)
	}
	return b[n:], nil
}

// sfixed64Round converts a present sfixed64 round field: it must be a
// positive int32 (zero is encoded by leaving the field out).
func sfixed64Round(u uint64, msg string) (int32, error) {
	v := int64(u)
	if v <= 0 || v > math.MaxInt32 {
		return 0, malformed("%s: round %d is not a positive int32 (0 is encoded by omission)", msg, v)
	}
	return int32(v), nil
}

func nonEmpty(f wireField, msg, name string) error {
	if len(f.b) == 0 {
		return malformed("%s: %s present but empty (proto3 omits it)", msg, name)
	}
	return nil
}

func decodeTimestamp(b []byte) (Timestamp, error) {
	const msg = "timestamp"
	var t Timestamp
	err := walkFields(b, msg, func(n protowire.Number) (protowire.Type, bool) {
		switch n {
		case fTSSeconds, fTSNanos:
			return protowire.VarintType, true
		}
		return 0, false
	}, func(f wireField) error {
		if f.u == 0 {
			return malformed("%s: field %d is an explicit zero (proto3 omits it)", msg, f.num)
		}
		switch f.num {
		case fTSSeconds:
			t.Seconds = int64(f.u)
		case fTSNanos:
			// int32 on the wire is sign-extended to 64 bits; valid nanos are
			// small positive numbers, so anything above 1e9 is invalid.
			if f.u >= 1e9 {
				return malformed("%s: nanos %d out of [0, 1e9)", msg, int64(f.u))
			}
			t.Nanos = int32(f.u)
		}
		return nil
	})
	if err != nil {
		return Timestamp{}, err
	}
	return t, t.validate()
}

func decodePartSetHeader(b []byte) (PartSetHeader, error) {
	const msg = "part_set_header"
	var p PartSetHeader
	err := walkFields(b, msg, func(n protowire.Number) (protowire.Type, bool) {
		switch n {
		case fPSHTotal:
			return protowire.VarintType, true
		case fPSHHash:
			return protowire.BytesType, true
		}
		return 0, false
	}, func(f wireField) error {
		switch f.num {
		case fPSHTotal:
			if f.u == 0 || f.u > math.MaxUint32 {
				return malformed("%s: total %d is not a positive uint32", msg, f.u)
			}
			p.Total = uint32(f.u)
		case fPSHHash:
			if err := nonEmpty(f, msg, "hash"); err != nil {
				return err
			}
			p.Hash = append([]byte(nil), f.b...)
		}
		return nil
	})
	return p, err
}

// decodeBlockID decodes a present block_id. gogoproto always writes the
// non-nullable part_set_header, so it must be present.
func decodeBlockID(b []byte) (BlockID, error) {
	const msg = "block_id"
	var id BlockID
	var sawPSH bool
	err := walkFields(b, msg, func(n protowire.Number) (protowire.Type, bool) {
		switch n {
		case fBlockHash, fBlockPSH:
			return protowire.BytesType, true
		}
		return 0, false
	}, func(f wireField) error {
		switch f.num {
		case fBlockHash:
			if err := nonEmpty(f, msg, "hash"); err != nil {
				return err
			}
			id.Hash = append([]byte(nil), f.b...)
		case fBlockPSH:
			psh, err := decodePartSetHeader(f.b)
			if err != nil {
				return err
			}
			id.PartSetHeader, sawPSH = psh, true
		}
		return nil
	})
	if err != nil {
		return BlockID{}, err
	}
	if !sawPSH {
		return BlockID{}, malformed("%s: part_set_header missing", msg)
	}
	return id, id.validate()
}

// DecodeVoteSignBytes decodes the sign bytes of a prevote or precommit.
//
// It accepts exactly the bytes CometBFT (v0.38 and v1.x) produces for a
// valid vote — see the wire-format notes in this file — and returns an error
// wrapping ErrMalformedSignBytes for anything else. It never reads more than
// MaxSignBytesLen bytes and never panics. The returned value shares no memory
// with b.
func DecodeVoteSignBytes(b []byte) (CanonicalVote, error) {
	const msg = "vote"
	body, err := undelimit(b, MaxSignBytesLen, msg)
	if err != nil {
		return CanonicalVote{}, err
	}
	var v CanonicalVote
	var sawType, sawHeight, sawTS, sawChain bool
	err = walkFields(body, msg, func(n protowire.Number) (protowire.Type, bool) {
		switch n {
		case fType:
			return protowire.VarintType, true
		case fVoteHeight, fVoteRound:
			return protowire.Fixed64Type, true
		case fVoteBlockID, fVoteTimestamp, fVoteChainID:
			return protowire.BytesType, true
		}
		return 0, false
	}, func(f wireField) error {
		switch f.num {
		case fType:
			if f.u != uint64(TypePrevote) && f.u != uint64(TypePrecommit) {
				return malformed("%s: type %d is not prevote(1) or precommit(2)", msg, int64(f.u))
			}
			v.Type, sawType = SignedMsgType(f.u), true
		case fVoteHeight:
			v.Height, sawHeight = int64(f.u), true
			if v.Height <= 0 {
				return malformed("%s: height %d is not positive", msg, v.Height)
			}
		case fVoteRound:
			r, err := sfixed64Round(f.u, msg)
			if err != nil {
				return err
			}
			v.Round = r
		case fVoteBlockID:
			if err := nonEmpty(f, msg, "block_id"); err != nil {
				return err
			}
			id, err := decodeBlockID(f.b)
			if err != nil {
				return err
			}
			v.BlockID = &id
		case fVoteTimestamp:
			ts, err := decodeTimestamp(f.b)
			if err != nil {
				return err
			}
			v.Timestamp, sawTS = ts, true
		case fVoteChainID:
			if err := nonEmpty(f, msg, "chain_id"); err != nil {
				return err
			}
			v.ChainID, sawChain = string(f.b), true
		}
		return nil
	})
	if err != nil {
		return CanonicalVote{}, err
	}
	if err := requireFields(msg, sawType, sawHeight, sawTS, sawChain); err != nil {
		return CanonicalVote{}, err
	}
	if err := v.Validate(); err != nil {
		return CanonicalVote{}, err
	}
	return v, nil
}

// DecodeProposalSignBytes decodes the sign bytes of a proposal, with the
// same strictness and bounds as DecodeVoteSignBytes.
func DecodeProposalSignBytes(b []byte) (CanonicalProposal, error) {
	const msg = "proposal"
	body, err := undelimit(b, MaxSignBytesLen, msg)
	if err != nil {
		return CanonicalProposal{}, err
	}
	var p CanonicalProposal
	var sawType, sawHeight, sawBlock, sawTS, sawChain bool
	err = walkFields(body, msg, func(n protowire.Number) (protowire.Type, bool) {
		switch n {
		case fType, fPropPOLRound:
			return protowire.VarintType, true
		case fPropHeight, fPropRound:
			return protowire.Fixed64Type, true
		case fPropBlockID, fPropTimestamp, fPropChainID:
			return protowire.BytesType, true
		}
		return 0, false
	}, func(f wireField) error {
		switch f.num {
		case fType:
			if f.u != uint64(TypeProposal) {
				return malformed("%s: type %d is not proposal(32)", msg, int64(f.u))
			}
			sawType = true
		case fPropHeight:
			p.Height, sawHeight = int64(f.u), true
			if p.Height <= 0 {
				return malformed("%s: height %d is not positive", msg, p.Height)
			}
		case fPropRound:
			r, err := sfixed64Round(f.u, msg)
			if err != nil {
				return err
			}
			p.Round = r
		case fPropPOLRound:
			pol := int64(f.u)
			if pol == 0 || !int64FitsInt32(pol) {
				return malformed("%s: pol_round %d is not a non-zero int32 (0 is encoded by omission)", msg, pol)
			}
			p.POLRound = int32(pol)
		case fPropBlockID:
			if err := nonEmpty(f, msg, "block_id"); err != nil {
				return err
			}
			id, err := decodeBlockID(f.b)
			if err != nil {
				return err
			}
			p.BlockID, sawBlock = id, true
		case fPropTimestamp:
			ts, err := decodeTimestamp(f.b)
			if err != nil {
				return err
			}
			p.Timestamp, sawTS = ts, true
		case fPropChainID:
			if err := nonEmpty(f, msg, "chain_id"); err != nil {
				return err
			}
			p.ChainID, sawChain = string(f.b), true
		}
		return nil
	})
	if err != nil {
		return CanonicalProposal{}, err
	}
	if err := requireFields(msg, sawType, sawHeight, sawBlock, sawTS, sawChain); err != nil {
		return CanonicalProposal{}, err
	}
	if err := p.Validate(); err != nil {
		return CanonicalProposal{}, err
	}
	return p, nil
}

// DecodeVoteExtensionSignBytes decodes the sign bytes of a vote extension
// (CanonicalVoteExtension), with the same strictness as the other decoders
// and a bound of MaxVoteExtensionSignBytesLen.
func DecodeVoteExtensionSignBytes(b []byte) (CanonicalVoteExtension, error) {
	const msg = "vote extension"
	body, err := undelimit(b, MaxVoteExtensionSignBytesLen, msg)
	if err != nil {
		return CanonicalVoteExtension{}, err
	}
	var e CanonicalVoteExtension
	var sawHeight, sawChain bool
	err = walkFields(body, msg, func(n protowire.Number) (protowire.Type, bool) {
		switch n {
		case fExtExtension, fExtChainID:
			return protowire.BytesType, true
		case fExtHeight, fExtRound:
			return protowire.Fixed64Type, true
		}
		return 0, false
	}, func(f wireField) error {
		switch f.num {
		case fExtExtension:
			if err := nonEmpty(f, msg, "extension"); err != nil {
				return err
			}
			e.Extension = append([]byte(nil), f.b...)
		case fExtHeight:
			e.Height, sawHeight = int64(f.u), true
			if e.Height <= 0 {
				return malformed("%s: height %d is not positive", msg, e.Height)
			}
		case fExtRound:
			r, err := sfixed64Round(f.u, msg)
			if err != nil {
				return err
			}
			e.Round = r
		case fExtChainID:
			if err := nonEmpty(f, msg, "chain_id"); err != nil {
				return err
			}
			e.ChainID, sawChain = string(f.b), true
		}
		return nil
	})
	if err != nil {
		return CanonicalVoteExtension{}, err
	}
	if err := requireFields(msg, sawHeight, sawChain); err != nil {
		return CanonicalVoteExtension{}, err
	}
	if err := e.Validate(); err != nil {
		return CanonicalVoteExtension{}, err
	}
	return e, nil
}

func requireFields(msg string, present ...bool) error {
	for _, ok := range present {
		if !ok {
			return malformed("%s: a required field is missing", msg)
		}
	}
	return nil
}

// ParseSignBytes decodes consensus sign bytes of either kind, choosing the
// decoder by the message type in field 1 (the first field of every valid
// canonical vote or proposal).
func ParseSignBytes(b []byte) (Message, error) {
	t, err := peekType(b)
	if err != nil {
		return Message{}, err
	}
	if t == TypeProposal {
		p, err := DecodeProposalSignBytes(b)
		if err != nil {
			return Message{}, err
		}
		return Message{Type: TypeProposal, Proposal: p}, nil
	}
	v, err := DecodeVoteSignBytes(b)
	if err != nil {
		return Message{}, err
	}
	return Message{Type: v.Type, Vote: v}, nil
}

// peekType reads the type field that opens canonical vote and proposal sign
// bytes. Full validation is left to the decoders.
func peekType(b []byte) (SignedMsgType, error) {
	body, err := undelimit(b, MaxSignBytesLen, "sign bytes")
	if err != nil {
		return 0, err
	}
	num, typ, n := protowire.ConsumeTag(body)
	if n < 0 || num != fType || typ != protowire.VarintType {
		return 0, malformed("sign bytes do not open with the type field")
	}
	v, m := protowire.ConsumeVarint(body[n:])
	if m < 0 {
		return 0, malformed("sign bytes: bad type: %v", protowire.ParseError(m))
	}
	switch SignedMsgType(v) {
	case TypePrevote, TypePrecommit, TypeProposal:
		return SignedMsgType(v), nil
	}
	return 0, malformed("sign bytes: type %d is not prevote(1), precommit(2) or proposal(32)", int64(v))
}

// IsConsensusSignBytes reports whether b could be the sign bytes of a
// CometBFT vote or proposal: a uvarint length equal to the rest, then the
// type field (0x08) holding prevote, precommit or proposal. Every valid
// canonical vote and proposal — the only messages double-sign evidence can
// be built from — has this prefix.
//
// It is deliberately permissive: a signer that signs caller-chosen raw bytes
// (CometBFT v1's SignBytes request, non-replay-protected vote extensions)
// must refuse whenever this returns true, so that the slashing rules cannot
// be bypassed by sending consensus sign bytes down a raw-bytes path.
func IsConsensusSignBytes(b []byte) bool {
	l, n := protowire.ConsumeVarint(b)
	if n < 0 || l != uint64(len(b)-n) || len(b)-n < 2 {
		return false
	}
	rest := b[n:]
	if rest[0] != 0x08 {
		return false
	}
	switch SignedMsgType(rest[1]) {
	case TypePrevote, TypePrecommit, TypeProposal:
		return true
	}
	return false
}

// SignBytesTimestamp returns the timestamp inside vote or proposal sign
// bytes.
func SignBytesTimestamp(b []byte) (Timestamp, error) {
	m, err := ParseSignBytes(b)
	if err != nil {
		return Timestamp{}, err
	}
	return m.Timestamp(), nil
}

// OnlyTimestampDiffers reports whether prev and next are sign bytes of the
// same kind of message that are equal in every field except the timestamp,
// and returns the timestamp inside prev. Identical bytes count as differing
// only in timestamp (trivially). Both must decode; otherwise the error wraps
// ErrMalformedSignBytes.
//
// This is CometBFT FilePV's test for a re-sign after a crash: in that case
// the signer returns the signature over prev and prev's timestamp.
func OnlyTimestampDiffers(prev, next []byte) (prevTimestamp Timestamp, ok bool, err error) {
	a, err := ParseSignBytes(prev)
	if err != nil {
		return Timestamp{}, false, err
	}
	b, err := ParseSignBytes(next)
	if err != nil {
		return Timestamp{}, false, err
	}
	return a.Timestamp(), diffExceptTimestamp(a, b) == nil, nil
}

// EncodeVoteSignBytes returns the sign bytes CometBFT produces for v: the
// length-delimited canonical encoding. v must be valid (see
// CanonicalVote.Validate); otherwise the error wraps ErrMalformedSignBytes.
// DecodeVoteSignBytes(EncodeVoteSignBytes(v)) returns v.
func EncodeVoteSignBytes(v CanonicalVote) ([]byte, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	var b []byte
	b = protowire.AppendTag(b, fType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(v.Type))
	b = appendSfixed64(b, fVoteHeight, v.Height)
	b = appendSfixed64(b, fVoteRound, int64(v.Round))
	if v.BlockID != nil {
		b = protowire.AppendTag(b, fVoteBlockID, protowire.BytesType)
		b = protowire.AppendBytes(b, encodeBlockID(*v.BlockID))
	}
	b = protowire.AppendTag(b, fVoteTimestamp, protowire.BytesType)
	b = protowire.AppendBytes(b, encodeTimestamp(v.Timestamp))
	b = appendString(b, fVoteChainID, v.ChainID)
	return delimit(b), nil
}

// EncodeProposalSignBytes returns the sign bytes CometBFT produces for p.
// p must be valid (see CanonicalProposal.Validate); otherwise the error
// wraps ErrMalformedSignBytes.
func EncodeProposalSignBytes(p CanonicalProposal) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var b []byte
	b = protowire.AppendTag(b, fType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(TypeProposal))
	b = appendSfixed64(b, fPropHeight, p.Height)
	b = appendSfixed64(b, fPropRound, int64(p.Round))
	if p.POLRound != 0 {
		b = protowire.AppendTag(b, fPropPOLRound, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(p.POLRound)))
	}
	b = protowire.AppendTag(b, fPropBlockID, protowire.BytesType)
	b = protowire.AppendBytes(b, encodeBlockID(p.BlockID))
	b = protowire.AppendTag(b, fPropTimestamp, protowire.BytesType)
	b = protowire.AppendBytes(b, encodeTimestamp(p.Timestamp))
	b = appendString(b, fPropChainID, p.ChainID)
	return delimit(b), nil
}

// EncodeVoteExtensionSignBytes returns the sign bytes CometBFT produces for
// a vote extension. e must be valid; otherwise the error wraps
// ErrMalformedSignBytes.
func EncodeVoteExtensionSignBytes(e CanonicalVoteExtension) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	var b []byte
	if len(e.Extension) > 0 {
		b = protowire.AppendTag(b, fExtExtension, protowire.BytesType)
		b = protowire.AppendBytes(b, e.Extension)
	}
	b = appendSfixed64(b, fExtHeight, e.Height)
	b = appendSfixed64(b, fExtRound, int64(e.Round))
	b = appendString(b, fExtChainID, e.ChainID)
	return delimit(b), nil
}

func appendSfixed64(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, uint64(v))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func encodeBlockID(id BlockID) []byte {
	var psh []byte
	if id.PartSetHeader.Total != 0 {
		psh = protowire.AppendTag(psh, fPSHTotal, protowire.VarintType)
		psh = protowire.AppendVarint(psh, uint64(id.PartSetHeader.Total))
	}
	if len(id.PartSetHeader.Hash) > 0 {
		psh = protowire.AppendTag(psh, fPSHHash, protowire.BytesType)
		psh = protowire.AppendBytes(psh, id.PartSetHeader.Hash)
	}
	var b []byte
	if len(id.Hash) > 0 {
		b = protowire.AppendTag(b, fBlockHash, protowire.BytesType)
		b = protowire.AppendBytes(b, id.Hash)
	}
	b = protowire.AppendTag(b, fBlockPSH, protowire.BytesType)
	return protowire.AppendBytes(b, psh)
}

func encodeTimestamp(t Timestamp) []byte {
	var b []byte
	if t.Seconds != 0 {
		b = protowire.AppendTag(b, fTSSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t.Seconds))
	}
	if t.Nanos != 0 {
		b = protowire.AppendTag(b, fTSNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(t.Nanos)))
	}
	return b
}

func delimit(body []byte) []byte {
	out := make([]byte, 0, protowire.SizeBytes(len(body)))
	return protowire.AppendBytes(out, body)
}
