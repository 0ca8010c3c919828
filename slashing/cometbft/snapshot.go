package cometbft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// Snapshot format, version 1. Every integer in the body is a minimal uvarint;
// strings and byte strings are a uvarint length then the bytes.
//
//	magic    4 bytes  "RGCB"
//	version  1 byte   1
//	length   8 bytes  big-endian length of body
//	body:
//	  count  uvarint  number of entries
//	  entry  × count, strictly ascending by (key id, chain id):
//	    key id, chain id, height, round, step (1 byte), sign bytes
//	crc      4 bytes  big-endian CRC-32C of everything before it
//
// The encoding of a State is unique: WriteTo of equal States writes equal
// bytes, and ReadState accepts only bytes WriteTo could have written.
const (
	snapshotMagic   = "RGCB"
	snapshotVersion = 1
	headerLen       = len(snapshotMagic) + 1 + 8

	// MaxSnapshotBodyLen bounds the body ReadState will read. Memory grows
	// with the bytes actually read, not with the length the header claims.
	MaxSnapshotBodyLen = 256 << 20
)

// WriteTo writes s in the snapshot format and returns the number of bytes
// written. Entries are written in sorted order, so the output is a
// deterministic function of the State's content.
func (s *State) WriteTo(w io.Writer) (int64, error) {
	var body []byte
	body = protowire.AppendVarint(body, uint64(len(s.m)))
	for _, e := range s.Entries() {
		body = appendSnapString(body, e.KeyID)
		body = appendSnapString(body, e.ChainID)
		body = protowire.AppendVarint(body, uint64(e.HRS.Height))
		body = protowire.AppendVarint(body, uint64(e.HRS.Round))
		body = append(body, byte(e.HRS.Step))
		body = protowire.AppendBytes(body, e.SignBytes)
	}
	out := make([]byte, 0, headerLen+len(body)+4)
	out = append(out, snapshotMagic...)
	out = append(out, snapshotVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	out = append(out, body...)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli()))
	n, err := w.Write(out)
	return int64(n), err
}

func appendSnapString(b []byte, s string) []byte {
	b = protowire.AppendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// ReadState reads a State written by WriteTo. It consumes exactly the bytes
// WriteTo wrote, so a snapshot may be embedded in a larger stream. Any
// truncation, checksum mismatch, non-canonical encoding or invalid entry is
// an error wrapping ErrSnapshotFormat; an unknown format version wraps
// ErrSnapshotVersion. Every entry is validated as Record would have: valid
// ids and position, and sign bytes (if any) that decode and match them.
func ReadState(r io.Reader) (*State, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrSnapshotFormat, err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrSnapshotFormat, hdr[:len(snapshotMagic)])
	}
	if v := hdr[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrSnapshotVersion, v, snapshotVersion)
	}
	bodyLen := binary.BigEndian.Uint64(hdr[len(snapshotMagic)+1:])
	if bodyLen > MaxSnapshotBodyLen {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds limit %d", ErrSnapshotFormat, bodyLen, MaxSnapshotBodyLen)
	}
	var buf bytes.Buffer
	buf.Write(hdr[:])
	if _, err := io.CopyN(&buf, r, int64(bodyLen)+4); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: body: %v", ErrSnapshotFormat, err)
	}
	all := buf.Bytes()
	signed, sum := all[:len(all)-4], binary.BigEndian.Uint32(all[len(all)-4:])
	if got := crc32.Checksum(signed, castagnoli()); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrSnapshotFormat, got, sum)
	}
	return decodeSnapshotBody(signed[headerLen:])
}

// snapReader reads the canonical body encoding.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrSnapshotFormat, fmt.Sprintf(format, args...))
	}
}

func (r *snapReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := protowire.ConsumeVarint(r.b)
	if n < 0 {
		r.fail("%s: %v", what, protowire.ParseError(n))
		return 0
	}
	if n != protowire.SizeVarint(v) {
		r.fail("%s: non-minimal varint", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) bytes(what string, limit int) []byte {
	l := r.uvarint(what + " length")
	if r.err != nil {
		return nil
	}
	if l > uint64(limit) {
		r.fail("%s: %d bytes exceeds limit %d", what, l, limit)
		return nil
	}
	if l > uint64(len(r.b)) {
		r.fail("%s: truncated", what)
		return nil
	}
	v := r.b[:l:l]
	r.b = r.b[l:]
	return v
}

func (r *snapReader) byte1(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("%s: truncated", what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func decodeSnapshotBody(body []byte) (*State, error) {
	r := &snapReader{b: body}
	count := r.uvarint("entry count")
	s := NewState()
	var prev pairKey
	for i := uint64(0); r.err == nil && i < count; i++ {
		key := string(r.bytes("key id", MaxKeyIDLen))
		chain := string(r.bytes("chain id", MaxChainIDLen))
		height := r.uvarint("height")
		round := r.uvarint("round")
		step := r.byte1("step")
		sb := r.bytes("sign bytes", MaxSignBytesLen)
		if r.err != nil {
			break
		}
		k := pairKey{key, chain}
		if i > 0 && !(prev.key < key || (prev.key == key && prev.chain < chain)) {
			r.fail("entry %d (%q, %q) is not after (%q, %q)", i, key, chain, prev.key, prev.chain)
			break
		}
		prev = k
		if height > 1<<63-1 || round > 1<<31-1 {
			r.fail("entry %d: height %d or round %d out of range", i, height, round)
			break
		}
		hrs := HRS{Height: int64(height), Round: int32(round), Step: Step(step)}
		if err := validateIDs(key, chain); err != nil {
			r.fail("entry %d: %v", i, err)
			break
		}
		if err := hrs.Validate(); err != nil {
			r.fail("entry %d: %v", i, err)
			break
		}
		if len(sb) > 0 {
			if _, err := validateRequest(key, chain, hrs, sb); err != nil {
				r.fail("entry %d: %v", i, err)
				break
			}
		}
		s.m[k] = entry{hrs: hrs, signBytes: cloneBytes(sb)}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last entry", ErrSnapshotFormat, len(r.b))
	}
	return s, nil
}
