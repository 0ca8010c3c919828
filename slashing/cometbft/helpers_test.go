package cometbft

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file builds sign bytes for tests directly with protowire, from the
// field numbers in CometBFT's canonical.proto, without using the package's
// encoder, so that the encoder and decoders are checked against an
// independent construction. fld/msg/delim can also build any malformed
// encoding a test needs.

// fld is one raw field: tag (num, typ) and its payload, already encoded.
type fld struct {
	num protowire.Number
	typ protowire.Type
	raw []byte // the encoded value following the tag
}

func vi(num protowire.Number, v uint64) fld {
	return fld{num, protowire.VarintType, protowire.AppendVarint(nil, v)}
}

func fx(num protowire.Number, v int64) fld {
	return fld{num, protowire.Fixed64Type, protowire.AppendFixed64(nil, uint64(v))}
}

func by(num protowire.Number, b []byte) fld {
	return fld{num, protowire.BytesType, protowire.AppendBytes(nil, b)}
}

func str(num protowire.Number, s string) fld { return by(num, []byte(s)) }

// rawf is a field with an arbitrary tag varint and payload (for non-minimal
// or otherwise odd encodings).
func rawf(tag []byte, payload []byte) fld {
	return fld{num: -1, raw: append(append([]byte(nil), tag...), payload...)}
}

// msg concatenates fields in the given order.
func msg(fs ...fld) []byte {
	var b []byte
	for _, f := range fs {
		if f.num == -1 {
			b = append(b, f.raw...)
			continue
		}
		b = protowire.AppendTag(b, f.num, f.typ)
		b = append(b, f.raw...)
	}
	return b
}

// delim prefixes b with its uvarint length, as protoio.MarshalDelimited.
func delim(b []byte) []byte { return protowire.AppendBytes(nil, b) }

// blk is a test block id derived from a small seed: 0 means nil.
func blk(seed int) []byte {
	if seed == 0 {
		return nil
	}
	psh := msg(vi(1, uint64(seed)), by(2, bytes.Repeat([]byte{byte(seed + 100)}, 32)))
	return msg(by(1, bytes.Repeat([]byte{byte(seed)}, 32)), by(2, psh))
}

func blockIDOf(seed int) *BlockID {
	if seed == 0 {
		return nil
	}
	return &BlockID{
		Hash:          bytes.Repeat([]byte{byte(seed)}, 32),
		PartSetHeader: PartSetHeader{Total: uint32(seed), Hash: bytes.Repeat([]byte{byte(seed + 100)}, 32)},
	}
}

func tsMsg(sec int64, nanos int32) []byte {
	var fs []fld
	if sec != 0 {
		fs = append(fs, vi(1, uint64(sec)))
	}
	if nanos != 0 {
		fs = append(fs, vi(2, uint64(int64(nanos))))
	}
	return msg(fs...)
}

// tm describes a vote or proposal for tests. Proposals use pol; block 0 is
// nil (votes only).
type tm struct {
	typ    SignedMsgType
	height int64
	round  int32
	pol    int32
	block  int
	sec    int64
	nanos  int32
	chain  string
}

func (m tm) step() Step {
	s, _ := StepOf(m.typ)
	return s
}

func (m tm) hrs() HRS { return HRS{Height: m.height, Round: m.round, Step: m.step()} }

// withTS returns m with another timestamp.
func (m tm) withTS(sec int64, nanos int32) tm { m.sec, m.nanos = sec, nanos; return m }

// sameButTimestamp reports whether m and o describe messages that differ at
// most in the timestamp.
func (m tm) sameButTimestamp(o tm) bool {
	m.sec, m.nanos, o.sec, o.nanos = 0, 0, 0, 0
	return m == o
}

// bytes encodes m the way CometBFT's gogoproto does: ascending fields,
// proto3 zero scalars omitted, timestamp always present, nil block id
// omitted.
func (m tm) bytes() []byte {
	fs := []fld{vi(1, uint64(m.typ))}
	if m.height != 0 {
		fs = append(fs, fx(2, m.height))
	}
	if m.round != 0 {
		fs = append(fs, fx(3, int64(m.round)))
	}
	if m.typ == TypeProposal {
		if m.pol != 0 {
			fs = append(fs, vi(4, uint64(int64(m.pol))))
		}
		if b := blk(m.block); b != nil {
			fs = append(fs, by(5, b))
		}
		fs = append(fs, by(6, tsMsg(m.sec, m.nanos)))
		if m.chain != "" {
			fs = append(fs, str(7, m.chain))
		}
		return delim(msg(fs...))
	}
	if b := blk(m.block); b != nil {
		fs = append(fs, by(4, b))
	}
	fs = append(fs, by(5, tsMsg(m.sec, m.nanos)))
	if m.chain != "" {
		fs = append(fs, str(6, m.chain))
	}
	return delim(msg(fs...))
}

// Convenience constructors with sensible defaults.
func prevote(h int64, r int32, block int) tm {
	return tm{typ: TypePrevote, height: h, round: r, block: block, sec: 1_700_000_000, chain: "chain-a"}
}

func precommit(h int64, r int32, block int) tm {
	return tm{typ: TypePrecommit, height: h, round: r, block: block, sec: 1_700_000_000, chain: "chain-a"}
}

func proposal(h int64, r int32, block int) tm {
	return tm{typ: TypeProposal, height: h, round: r, pol: -1, block: block, sec: 1_700_000_000, chain: "chain-a"}
}

// snapshotBytes returns s's snapshot encoding, failing the test on error.
func snapshotBytes(t testing.TB, s *State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	return buf.Bytes()
}
