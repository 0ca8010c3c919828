package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Limits.
const (
	// DefaultMaxMessageSize bounds a frame when the caller has no better
	// limit. CometBFT's own endpoints read at most 10 KiB; a vote extension
	// larger than that cannot round-trip through a v0.38 node anyway.
	DefaultMaxMessageSize = 64 << 10
	// readChunk is how much a frame buffer grows at a time, so that a
	// declared length costs memory only as its bytes actually arrive.
	readChunk = 4 << 10
	// maxFieldNumber is the highest field number any message here uses.
	maxFieldNumber = 12
)

// ---------------------------------------------------------------------------
// Framing

// ReadFrame reads one length-delimited frame: a uvarint length, then that
// many bytes. max ≤ 0 means DefaultMaxMessageSize. A length above max is
// ErrTooLarge (nothing after the prefix is
// read); a length prefix longer than 10 bytes is ErrMalformed; a short body is
// io.ErrUnexpectedEOF. Memory grows with the bytes received, never with the
// declared length alone. Any error leaves the stream unusable.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxMessageSize
	}
	br, ok := r.(io.ByteReader)
	if !ok {
		br = byteReader{r}
	}
	l, err := readUvarint(br)
	if err != nil {
		return nil, err
	}
	if l > uint64(max) {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, l, max)
	}
	n := int(l)
	buf := make([]byte, 0, min(n, readChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.r, p[:])
	return p[0], err
}

// readUvarint reads a uvarint of at most 10 bytes. EOF before the first
// byte is io.EOF (a clean end of stream); EOF inside is ErrUnexpectedEOF.
func readUvarint(br io.ByteReader) (uint64, error) {
	var x uint64
	for i := 0; i < binary64MaxLen; i++ {
		b, err := br.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary64MaxLen-1 && b > 1 {
			return 0, malformed("frame length overflows 64 bits")
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, malformed("frame length prefix longer than %d bytes", binary64MaxLen)
}

const binary64MaxLen = 10

// NewReader returns a buffered reader suited to ReadFrame on a connection.
func NewReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 4096) }

// ReadMessage reads and decodes one frame. A caller that must tell a broken
// stream (ReadFrame's errors) from a well-framed but undecodable message
// (DecodeMessage's) calls the two itself.
func ReadMessage(r io.Reader, max int) (Message, error) {
	b, err := ReadFrame(r, max)
	if err != nil {
		return Message{}, err
	}
	return DecodeMessage(b)
}

// WriteMessage encodes m and writes it as one frame in a single Write.
func WriteMessage(w io.Writer, m Message) error {
	body, err := EncodeMessage(m)
	if err != nil {
		return err
	}
	frame := protowire.AppendBytes(make([]byte, 0, len(body)+binary64MaxLen), body)
	_, err = w.Write(frame)
	return err
}

// ---------------------------------------------------------------------------
// Decoding

// field is one decoded protobuf field.
type field struct {
	num protowire.Number
	u   uint64 // varint value
	b   []byte // length-delimited value
}

// walk parses b as a protobuf message. spec gives, per field number, the
// only wire type accepted; any other number is an unknown field. Fields may
// come in any order but none may repeat (no message here has a repeated
// field). Only varint and length-delimited fields exist in these messages.
func walk(b []byte, msg string, spec func(protowire.Number) (protowire.Type, bool), visit func(field) error) error {
	var seen uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("%s: bad tag: %v", msg, protowire.ParseError(n))
		}
		b = b[n:]
		want, ok := spec(num)
		if !ok || num > maxFieldNumber {
			return malformed("%s: unknown field %d", msg, num)
		}
		if typ != want {
			return malformed("%s: field %d has wire type %d, want %d", msg, num, typ, want)
		}
		if seen&(1<<num) != 0 {
			return malformed("%s: field %d repeated", msg, num)
		}
		seen |= 1 << num
		f := field{num: num}
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return malformed("%s: field %d: %v", msg, num, protowire.ParseError(m))
			}
			f.u, n = v, m
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return malformed("%s: field %d: %v", msg, num, protowire.ParseError(m))
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

func types(m map[protowire.Number]protowire.Type) func(protowire.Number) (protowire.Type, bool) {
	return func(n protowire.Number) (protowire.Type, bool) {
		t, ok := m[n]
		return t, ok
	}
}

const (
	vt = protowire.VarintType
	bt = protowire.BytesType
)

func asInt32(f field, msg, name string) (int32, error) {
	v := int64(f.u)
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, malformed("%s: %s %d out of int32 range", msg, name, v)
	}
	return int32(v), nil
}

func asString(f field, msg, name string) (string, error) {
	if !utf8.Valid(f.b) {
		return "", malformed("%s: %s is not valid UTF-8", msg, name)
	}
	return string(f.b), nil
}

func asBool(f field, msg, name string) (bool, error) {
	if f.u > 1 {
		return false, malformed("%s: %s is %d, not a bool", msg, name, f.u)
	}
	return f.u == 1, nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// DecodeMessage decodes a privval Message body (without its length
// prefix). It accepts the v0.38 and the v1 shapes; errors wrap ErrMalformed.
// It never panics, and the result shares no memory with b and holds no more
// bytes than b.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	count := 0
	err := walk(b, "message", func(n protowire.Number) (protowire.Type, bool) {
		return bt, n >= 1 && n <= 10
	}, func(f field) error {
		count++
		var err error
		switch f.num {
		case 1:
			var r PubKeyRequest
			r, err = decodePubKeyRequest(f.b)
			m.PubKeyRequest = &r
		case 2:
			var r PubKeyResponse
			r, err = decodePubKeyResponse(f.b)
			m.PubKeyResponse = &r
		case 3:
			var r SignVoteRequest
			r, err = decodeSignVoteRequest(f.b)
			m.SignVoteRequest = &r
		case 4:
			var r SignedVoteResponse
			r, err = decodeSignedVoteResponse(f.b)
			m.SignedVoteResponse = &r
		case 5:
			var r SignProposalRequest
			r, err = decodeSignProposalRequest(f.b)
			m.SignProposalRequest = &r
		case 6:
			var r SignedProposalResponse
			r, err = decodeSignedProposalResponse(f.b)
			m.SignedProposalResponse = &r
		case 7:
			err = decodeEmpty(f.b, "ping_request")
			m.PingRequest = &PingRequest{}
		case 8:
			err = decodeEmpty(f.b, "ping_response")
			m.PingResponse = &PingResponse{}
		case 9:
			var r SignBytesRequest
			r, err = decodeSignBytesRequest(f.b)
			m.SignBytesRequest = &r
		case 10:
			var r SignBytesResponse
			r, err = decodeSignBytesResponse(f.b)
			m.SignBytesResponse = &r
		}
		return err
	})
	if err != nil {
		return Message{}, err
	}
	if count > 1 {
		return Message{}, malformed("message sets %d oneof members", count)
	}
	return m, nil
}

func decodeEmpty(b []byte, msg string) error {
	if len(b) != 0 {
		return malformed("%s: unexpected fields", msg)
	}
	return nil
}

func decodeRemoteSignerError(b []byte) (*RemoteSignerError, error) {
	const msg = "remote_signer_error"
	var e RemoteSignerError
	err := walk(b, msg, types(map[protowire.Number]protowire.Type{1: vt, 2: bt}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			e.Code, err = asInt32(f, msg, "code")
		case 2:
			e.Description, err = asString(f, msg, "description")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

func decodePubKeyRequest(b []byte) (PubKeyRequest, error) {
	const msg = "pub_key_request"
	var r PubKeyRequest
	err := walk(b, msg, types(map[protowire.Number]protowire.Type{1: bt}), func(f field) error {
		var err error
		r.ChainID, err = asString(f, msg, "chain_id")
		return err
	})
	return r, err
}

func decodePubKeyResponse(b []byte) (PubKeyResponse, error) {
	const msg = "pub_key_response"
	var r PubKeyResponse
	var v038, v1 []byte
	var v1Type string
	var sawV1Type bool
	err := walk(b, msg, types(map[protowire.Number]protowire.Type{1: bt, 2: bt, 3: bt, 4: bt}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			v038, err = decodePublicKey(f.b)
		case 2:
			r.Error, err = decodeRemoteSignerError(f.b)
		case 3:
			v1 = clone(f.b)
		case 4:
			v1Type, err = asString(f, msg, "pub_key_type")
			sawV1Type = true
		}
		return err
	})
	if err != nil {
		return PubKeyResponse{}, err
	}
	if sawV1Type && v1Type != KeyTypeEd25519 {
		return PubKeyResponse{}, malformed("%s: key type %q is not %q", msg, v1Type, KeyTypeEd25519)
	}
	switch {
	case len(v038) > 0 && len(v1) > 0 && string(v038) != string(v1):
		return PubKeyResponse{}, malformed("%s: pub_key and pub_key_bytes disagree", msg)
	case len(v038) > 0:
		r.Ed25519 = v038
	default:
		r.Ed25519 = v1
	}
	return r, nil
}

// decodePublicKey decodes tendermint.crypto.PublicKey; only the ed25519
// member is accepted. An empty message yields nil.
func decodePublicKey(b []byte) ([]byte, error) {
	const msg = "public_key"
	var key []byte
	err := walk(b, msg, func(n protowire.Number) (protowire.Type, bool) {
		return bt, n >= 1 && n <= 4
	}, func(f field) error {
		if f.num != 1 {
			return malformed("%s: member %d is not ed25519", msg, f.num)
		}
		key = clone(f.b)
		return nil
	})
	return key, err
}

func decodeSignVoteRequest(b []byte) (SignVoteRequest, error) {
	const msg = "sign_vote_request"
	var r SignVoteRequest
	err := walk(b, msg, types(map[protowire.Number]protowire.Type{1: bt, 2: bt, 3: vt}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			var v Vote
			v, err = decodeVote(f.b)
			r.Vote = &v
		case 2:
			r.ChainID, err = asString(f, msg, "chain_id")
		case 3:
			r.SkipExtensionSigning, err = asBool(f, msg, "skip_extension_signing")
		}
		return err
	})
	return r, err
}

func decodeSignedVoteResponse(b []byte) (SignedVoteResponse, error) {
	var r SignedVoteResponse
	err := walk(b, "signed_vote_response", types(map[protowire.Number]protowire.Type{1: bt, 2: bt}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			r.Vote, err = decodeVote(f.b)
		case 2:
			r.Error, err = decodeRemoteSignerError(f.b)
		}
		return err
	})
	return r, err
}

func decodeSignProposalRequest(b []byte) (SignProposalRequest, error) {
	const msg = "sign_proposal_request"
	var r SignProposalRequest
	err := walk(b, msg, types(map[protowire.Number]protowire.Type{1: bt, 2: bt}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			var p Proposal
			p, err = decodeProposal(f.b)
			r.Proposal = &p
		case 2:
			r.ChainID, err = asString(f, msg, "chain_id")
		}
		return err
	})
	return r, err
}

func decodeSignedProposalResponse(b []byte) (SignedProposalResponse, error) {
	var r SignedProposalResponse
	err := walk(b, "signed_proposal_response", types(map[protowire.Number]protowire.Type{1: bt, 2: bt}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			r.Proposal, err = decodeProposal(f.b)
		case 2:
			r.Error, err = decodeRemoteSignerError(f.b)
		}
		return err
	})
	return r, err
}

func decodeSignBytesRequest(b []byte) (SignBytesRequest, error) {
	var r SignBytesRequest
	err := walk(b, "sign_bytes_request", types(map[protowire.Number]protowire.Type{1: bt}), func(f field) error {
		r.Value = clone(f.b)
		return nil
	})
	return r, err
}

func decodeSignBytesResponse(b []byte) (SignBytesResponse, error) {
	var r SignBytesResponse
	err := walk(b, "sign_bytes_response", types(map[protowire.Number]protowire.Type{1: bt, 2: bt}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			r.Signature = clone(f.b)
		case 2:
			r.Error, err = decodeRemoteSignerError(f.b)
		}
		return err
	})
	return r, err
}

func decodeTimestamp(b []byte) (Timestamp, error) {
	const msg = "timestamp"
	var t Timestamp
	err := walk(b, msg, types(map[protowire.Number]protowire.Type{1: vt, 2: vt}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			t.Seconds = int64(f.u)
		case 2:
			t.Nanos, err = asInt32(f, msg, "nanos")
		}
		return err
	})
	return t, err
}

func decodePartSetHeader(b []byte) (PartSetHeader, error) {
	const msg = "part_set_header"
	var p PartSetHeader
	err := walk(b, msg, types(map[protowire.Number]protowire.Type{1: vt, 2: bt}), func(f field) error {
		switch f.num {
		case 1:
			if f.u > math.MaxUint32 {
				return malformed("%s: total %d out of uint32 range", msg, f.u)
			}
			p.Total = uint32(f.u)
		case 2:
			p.Hash = clone(f.b)
		}
		return nil
	})
	return p, err
}

func decodeBlockID(b []byte) (BlockID, error) {
	var id BlockID
	err := walk(b, "block_id", types(map[protowire.Number]protowire.Type{1: bt, 2: bt}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			id.Hash = clone(f.b)
		case 2:
			id.PartSetHeader, err = decodePartSetHeader(f.b)
		}
		return err
	})
	return id, err
}

func decodeVote(b []byte) (Vote, error) {
	const msg = "vote"
	var v Vote
	sawTS := false
	err := walk(b, msg, types(map[protowire.Number]protowire.Type{
		1: vt, 2: vt, 3: vt, 4: bt, 5: bt, 6: bt, 7: vt, 8: bt, 9: bt, 10: bt,
	}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			v.Type, err = asInt32(f, msg, "type")
		case 2:
			v.Height = int64(f.u)
		case 3:
			v.Round, err = asInt32(f, msg, "round")
		case 4:
			v.BlockID, err = decodeBlockID(f.b)
		case 5:
			v.Timestamp, err = decodeTimestamp(f.b)
			sawTS = true
		case 6:
			v.ValidatorAddress = clone(f.b)
		case 7:
			v.ValidatorIndex, err = asInt32(f, msg, "validator_index")
		case 8:
			v.Signature = clone(f.b)
		case 9:
			v.Extension = clone(f.b)
		case 10:
			v.ExtensionSignature = clone(f.b)
		}
		return err
	})
	if err != nil {
		return Vote{}, err
	}
	if !sawTS {
		v.Timestamp = Timestamp{Seconds: GoZeroSeconds}
	}
	return v, nil
}

func decodeProposal(b []byte) (Proposal, error) {
	const msg = "proposal"
	var p Proposal
	sawTS := false
	err := walk(b, msg, types(map[protowire.Number]protowire.Type{
		1: vt, 2: vt, 3: vt, 4: vt, 5: bt, 6: bt, 7: bt,
	}), func(f field) error {
		var err error
		switch f.num {
		case 1:
			p.Type, err = asInt32(f, msg, "type")
		case 2:
			p.Height = int64(f.u)
		case 3:
			p.Round, err = asInt32(f, msg, "round")
		case 4:
			p.POLRound, err = asInt32(f, msg, "pol_round")
		case 5:
			p.BlockID, err = decodeBlockID(f.b)
		case 6:
			p.Timestamp, err = decodeTimestamp(f.b)
			sawTS = true
		case 7:
			p.Signature = clone(f.b)
		}
		return err
	})
	if err != nil {
		return Proposal{}, err
	}
	if !sawTS {
		p.Timestamp = Timestamp{Seconds: GoZeroSeconds}
	}
	return p, nil
}

// ---------------------------------------------------------------------------
// Encoding (gogoproto's encoding: ascending field order, proto3 zero values
// omitted, non-nullable sub-messages always written).

// EncodeMessage returns the body of m (without a length prefix). m must
// have exactly one member set, or none (the empty message); otherwise the
// error wraps ErrInvalid.
func EncodeMessage(m Message) ([]byte, error) {
	num, count := m.member()
	if count > 1 {
		return nil, fmt.Errorf("%w: %d oneof members set", ErrInvalid, count)
	}
	var body []byte
	switch num {
	case 0:
		return []byte{}, nil
	case 1:
		body = appendString(nil, 1, m.PubKeyRequest.ChainID)
	case 2:
		body = encodePubKeyResponse(m.PubKeyResponse)
	case 3:
		r := m.SignVoteRequest
		if r.Vote != nil {
			body = appendMsg(body, 1, encodeVote(r.Vote))
		}
		body = appendString(body, 2, r.ChainID)
		if r.SkipExtensionSigning {
			body = appendVarint(body, 3, 1)
		}
	case 4:
		r := m.SignedVoteResponse
		body = appendMsg(nil, 1, encodeVote(&r.Vote))
		body = appendError(body, 2, r.Error)
	case 5:
		r := m.SignProposalRequest
		if r.Proposal != nil {
			body = appendMsg(body, 1, encodeProposal(r.Proposal))
		}
		body = appendString(body, 2, r.ChainID)
	case 6:
		r := m.SignedProposalResponse
		body = appendMsg(nil, 1, encodeProposal(&r.Proposal))
		body = appendError(body, 2, r.Error)
	case 7, 8:
		body = []byte{}
	case 9:
		body = appendBytes(nil, 1, m.SignBytesRequest.Value)
	case 10:
		r := m.SignBytesResponse
		body = appendBytes(nil, 1, r.Signature)
		body = appendError(body, 2, r.Error)
	}
	return appendMsg(nil, protowire.Number(num), body), nil
}

func encodePubKeyResponse(r *PubKeyResponse) []byte {
	var pk []byte
	pk = appendBytes(pk, 1, r.Ed25519)
	b := appendMsg(nil, 1, pk) // v0.38: non-nullable, always written
	b = appendError(b, 2, r.Error)
	if len(r.Ed25519) > 0 { // v1
		b = appendBytes(b, 3, r.Ed25519)
		b = appendString(b, 4, KeyTypeEd25519)
	}
	return b
}

func encodeVote(v *Vote) []byte {
	var b []byte
	b = appendInt(b, 1, int64(v.Type))
	b = appendInt(b, 2, v.Height)
	b = appendInt(b, 3, int64(v.Round))
	b = appendMsg(b, 4, encodeBlockID(v.BlockID))
	b = appendMsg(b, 5, encodeTimestamp(v.Timestamp))
	b = appendBytes(b, 6, v.ValidatorAddress)
	b = appendInt(b, 7, int64(v.ValidatorIndex))
	b = appendBytes(b, 8, v.Signature)
	b = appendBytes(b, 9, v.Extension)
	b = appendBytes(b, 10, v.ExtensionSignature)
	return b
}

func encodeProposal(p *Proposal) []byte {
	var b []byte
	b = appendInt(b, 1, int64(p.Type))
	b = appendInt(b, 2, p.Height)
	b = appendInt(b, 3, int64(p.Round))
	b = appendInt(b, 4, int64(p.POLRound))
	b = appendMsg(b, 5, encodeBlockID(p.BlockID))
	b = appendMsg(b, 6, encodeTimestamp(p.Timestamp))
	b = appendBytes(b, 7, p.Signature)
	return b
}

func encodeBlockID(id BlockID) []byte {
	var psh []byte
	psh = appendVarint(psh, 1, uint64(id.PartSetHeader.Total))
	psh = appendBytes(psh, 2, id.PartSetHeader.Hash)
	var b []byte
	b = appendBytes(b, 1, id.Hash)
	return appendMsg(b, 2, psh)
}

func encodeTimestamp(t Timestamp) []byte {
	var b []byte
	b = appendInt(b, 1, t.Seconds)
	return appendInt(b, 2, int64(t.Nanos))
}

func appendError(b []byte, num protowire.Number, e *RemoteSignerError) []byte {
	if e == nil {
		return b
	}
	var eb []byte
	eb = appendInt(eb, 1, int64(e.Code))
	eb = appendString(eb, 2, e.Description)
	return appendMsg(b, num, eb)
}

// appendMsg always writes the field (an embedded message that is set).
func appendMsg(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, bt)
	return protowire.AppendBytes(b, body)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, bt)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, bt)
	return protowire.AppendString(b, s)
}

// appendInt writes a signed integer as a proto3 int32/int64/enum varint
// (negative values sign-extended to ten bytes), omitting zero.
func appendInt(b []byte, num protowire.Number, v int64) []byte {
	return appendVarint(b, num, uint64(v))
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, vt)
	return protowire.AppendVarint(b, v)
}
