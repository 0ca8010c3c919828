package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	mrand "math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// Golden encodings produced by CometBFT's own generated types (gogoproto):
// v0.38.26's tendermint.privval and v1.0's cometbft.privval.v1, for the
// messages built in goldenMessages. They pin the codec to what real nodes
// put on the wire.
var golden = map[string]string{
	"v038_sign_vote_request":          "1a89010a7a08021087ad4b180222480a200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20122408031220404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f2a0b08d983e2b10610959aef3a3214909192939495969798999a9b9c9d9e9fa0a1a2a34a03657874120b726567656e742d74657374",
	"v038_sign_vote_request_nil":      "1a3c0a2d08011005220212002a0b08d983e2b10610959aef3a3214909192939495969798999a9b9c9d9e9fa0a1a2a33807120b726567656e742d74657374",
	"v038_signed_vote_response":       "2281020afe0108021087ad4b180222480a200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20122408031220404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f2a0b08d983e2b10610959aef3a3214909192939495969798999a9b9c9d9e9fa0a1a2a34240101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f4a036578745240606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
	"v038_signed_vote_response_error": "222a0a11220212002a0b088092b8c398feffffff0112151213756e61626c6520746f207369676e20766f7465",
	"v038_sign_proposal_request":      "2a770a680820100a180120ffffffffffffffffff012a480a200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20122408011220404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f320b08d983e2b10610959aef3a120b726567656e742d74657374",
	"v038_pub_key_request":            "0a0d0a0b726567656e742d74657374",
	"v038_pub_key_response":           "12240a220a20a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
	"v038_ping_request":               "3a00",
	"v038_ping_response":              "4200",
	"empty":                           "",
	"v1_sign_vote_request_skip":       "1a8b010a7a08021087ad4b180222480a200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20122408031220404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f2a0b08d983e2b10610959aef3a3214909192939495969798999a9b9c9d9e9fa0a1a2a34a03657874120b726567656e742d746573741801",
	"v1_pub_key_response":             "122b1a20a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf220765643235353139",
	"v1_sign_bytes_request":           "4a070a0568656c6c6f",
	"v1_sign_bytes_response":          "52420a40101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
}

func seq(n int, base byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = base + byte(i)
	}
	return b
}

// ts is 2024-05-06T07:08:09.123456789Z.
var ts = Timestamp{Seconds: 1714979289, Nanos: 123456789}

func precommit() *Vote {
	return &Vote{Type: TypePrecommit, Height: 1234567, Round: 2,
		BlockID:   BlockID{Hash: seq(32, 1), PartSetHeader: PartSetHeader{Total: 3, Hash: seq(32, 0x40)}},
		Timestamp: ts, ValidatorAddress: seq(20, 0x90), Extension: []byte("ext")}
}

// goldenMessages are the values the golden encodings hold, built
// independently of the decoder.
func goldenMessages() map[string]Message {
	signed := precommit()
	signed.Signature = seq(64, 0x10)
	signed.ExtensionSignature = seq(64, 0x60)
	return map[string]Message{
		"v038_sign_vote_request": {SignVoteRequest: &SignVoteRequest{Vote: precommit(), ChainID: "regent-test"}},
		"v038_sign_vote_request_nil": {SignVoteRequest: &SignVoteRequest{ChainID: "regent-test", Vote: &Vote{
			Type: TypePrevote, Height: 5, Timestamp: ts, ValidatorAddress: seq(20, 0x90), ValidatorIndex: 7}}},
		"v038_signed_vote_response": {SignedVoteResponse: &SignedVoteResponse{Vote: *signed}},
		"v038_signed_vote_response_error": {SignedVoteResponse: &SignedVoteResponse{
			Vote: Vote{Timestamp: Timestamp{Seconds: GoZeroSeconds}}, Error: &RemoteSignerError{Description: "unable to sign vote"}}},
		"v038_sign_proposal_request": {SignProposalRequest: &SignProposalRequest{ChainID: "regent-test", Proposal: &Proposal{
			Type: TypeProposal, Height: 10, Round: 1, POLRound: -1,
			BlockID:   BlockID{Hash: seq(32, 1), PartSetHeader: PartSetHeader{Total: 1, Hash: seq(32, 0x40)}},
			Timestamp: ts}}},
		"v038_pub_key_request":      {PubKeyRequest: &PubKeyRequest{ChainID: "regent-test"}},
		"v038_pub_key_response":     {PubKeyResponse: &PubKeyResponse{Ed25519: seq(32, 0xa0)}},
		"v038_ping_request":         {PingRequest: &PingRequest{}},
		"v038_ping_response":        {PingResponse: &PingResponse{}},
		"empty":                     {},
		"v1_sign_vote_request_skip": {SignVoteRequest: &SignVoteRequest{Vote: precommit(), ChainID: "regent-test", SkipExtensionSigning: true}},
		"v1_pub_key_response":       {PubKeyResponse: &PubKeyResponse{Ed25519: seq(32, 0xa0)}},
		"v1_sign_bytes_request":     {SignBytesRequest: &SignBytesRequest{Value: []byte("hello")}},
		"v1_sign_bytes_response":    {SignBytesResponse: &SignBytesResponse{Signature: seq(64, 0x10)}},
	}
}

func TestDecodeGolden(t *testing.T) {
	want := goldenMessages()
	for name, h := range golden {
		t.Run(name, func(t *testing.T) {
			b, _ := hex.DecodeString(h)
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want[name]) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, want[name])
			}
		})
	}
}

// Requests and votes encode byte-for-byte as gogoproto does. Responses
// differ on purpose in two places: PubKeyResponse carries both the v0.38 and
// the v1 key fields, and an error response's placeholder vote/proposal has
// a zero timestamp.
func TestEncodeMatchesGogoproto(t *testing.T) {
	msgs := goldenMessages()
	for _, name := range []string{
		"v038_sign_vote_request", "v038_sign_vote_request_nil", "v038_signed_vote_response",
		"v038_sign_proposal_request", "v038_pub_key_request", "v038_ping_request",
		"v038_ping_response", "empty", "v1_sign_vote_request_skip", "v1_sign_bytes_request",
		"v1_sign_bytes_response",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := EncodeMessage(msgs[name])
			if err != nil {
				t.Fatal(err)
			}
			if h := hex.EncodeToString(got); h != golden[name] {
				t.Fatalf("encoded\n%s\nwant\n%s", h, golden[name])
			}
		})
	}
	t.Run("pub key response carries both shapes", func(t *testing.T) {
		got, err := EncodeMessage(msgs["v038_pub_key_response"])
		if err != nil {
			t.Fatal(err)
		}
		// v0.38's field 1, then v1's fields 3 and 4.
		v038, _ := hex.DecodeString(golden["v038_pub_key_response"][4:])
		v1, _ := hex.DecodeString(golden["v1_pub_key_response"][4:])
		if !bytes.Contains(got, v038) || !bytes.Contains(got, v1) {
			t.Fatalf("%x lacks one of the key shapes", got)
		}
	})
}

// randomMessage builds a random valid message of a random kind.
func randomMessage(r *mrand.Rand) Message {
	bs := func(max int) []byte {
		n := r.IntN(max + 1)
		if n == 0 {
			return nil
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	str := func() string { return strings.Repeat("c", r.IntN(5)) }
	i32 := func() int32 { return int32(r.Uint32()) }
	errp := func() *RemoteSignerError {
		if r.IntN(2) == 0 {
			return nil
		}
		return &RemoteSignerError{Code: i32(), Description: str()}
	}
	bid := func() BlockID {
		return BlockID{Hash: bs(32), PartSetHeader: PartSetHeader{Total: r.Uint32(), Hash: bs(32)}}
	}
	tsr := func() Timestamp { return Timestamp{Seconds: int64(r.Uint64()), Nanos: i32()} }
	vote := func() Vote {
		return Vote{Type: i32(), Height: int64(r.Uint64()), Round: i32(), BlockID: bid(), Timestamp: tsr(),
			ValidatorAddress: bs(20), ValidatorIndex: i32(), Signature: bs(64), Extension: bs(100), ExtensionSignature: bs(64)}
	}
	prop := func() Proposal {
		return Proposal{Type: i32(), Height: int64(r.Uint64()), Round: i32(), POLRound: i32(), BlockID: bid(), Timestamp: tsr(), Signature: bs(64)}
	}
	switch r.IntN(11) {
	case 0:
		return Message{PubKeyRequest: &PubKeyRequest{ChainID: str()}}
	case 1:
		return Message{PubKeyResponse: &PubKeyResponse{Ed25519: bs(32), Error: errp()}}
	case 2:
		v := vote()
		return Message{SignVoteRequest: &SignVoteRequest{Vote: &v, ChainID: str(), SkipExtensionSigning: r.IntN(2) == 0}}
	case 3:
		return Message{SignedVoteResponse: &SignedVoteResponse{Vote: vote(), Error: errp()}}
	case 4:
		p := prop()
		return Message{SignProposalRequest: &SignProposalRequest{Proposal: &p, ChainID: str()}}
	case 5:
		return Message{SignedProposalResponse: &SignedProposalResponse{Proposal: prop(), Error: errp()}}
	case 6:
		return Message{PingRequest: &PingRequest{}}
	case 7:
		return Message{PingResponse: &PingResponse{}}
	case 8:
		return Message{SignBytesRequest: &SignBytesRequest{Value: bs(200)}}
	case 9:
		return Message{SignBytesResponse: &SignBytesResponse{Signature: bs(64), Error: errp()}}
	default:
		return Message{}
	}
}

// Property: Decode(Encode(m)) == m for random messages, and framing round
// trips a stream of them.
func TestRoundTrip(t *testing.T) {
	r := mrand.New(mrand.NewPCG(7, 8))
	var stream bytes.Buffer
	var sent []Message
	for i := 0; i < 3000; i++ {
		m := randomMessage(r)
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("decode of %+v: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip\n%+v\n%+v", got, m)
		}
		if err := WriteMessage(&stream, m); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	rd := NewReader(&stream)
	for i, m := range sent {
		got, err := ReadMessage(rd, DefaultMaxMessageSize)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("message %d from stream: %v", i, err)
		}
	}
	if _, err := ReadFrame(rd, DefaultMaxMessageSize); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	vote := func(fields string) string {
		// SignVoteRequest{vote: <fields>} inside Message field 3.
		b, _ := hex.DecodeString(fields)
		inner := append([]byte{0x0a, byte(len(b))}, b...)
		return hex.EncodeToString(append([]byte{0x1a, byte(len(inner))}, inner...))
	}
	tests := []struct {
		name string
		hex  string
	}{
		{"truncated tag", "1a"},
		{"truncated length", "1a05"},
		{"unknown message kind 11", "5a00"},
		{"message kind 0", "0200"},
		{"member with varint wire type", "1800"},
		{"two members", "3a004200"},
		{"same member twice", "3a003a00"},
		{"ping with a body", "3a020800"},
		{"pub key request chain id not UTF-8", "0a030a01ff"},
		{"vote: unknown field 11", vote("5a00")},
		{"vote: repeated height", vote("10011002")},
		{"vote: round out of int32 range", vote("1880808080808080808001")},
		{"vote: height with bytes wire type", vote("1200")},
		{"vote: timestamp nanos overflow int32", vote("2a0610808080800a")},
		{"vote: part set total over uint32", vote("220812060880808080" + "10")},
		{"vote: height as fixed64", vote("11" + "0000000000000000")},
		{"skip_extension_signing = 2", "1a021802"},
		{"pub key response with secp256k1 key", "12040a021200"},
		{"pub key response type not ed25519", "12091a0100220473656370"},
		{"pub key response shapes disagree", "12080a030a01011a0102"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			m, err := DecodeMessage(b)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeMessage(%s) = %+v, %v; want ErrMalformed", tc.hex, m, err)
			}
			if !reflect.DeepEqual(m, Message{}) {
				t.Fatalf("a refused message still returned content: %+v", m)
			}
		})
	}
}

func TestEncodeRefusesSeveralMembers(t *testing.T) {
	_, err := EncodeMessage(Message{PingRequest: &PingRequest{}, PingResponse: &PingResponse{}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if k := (Message{PingRequest: &PingRequest{}, PingResponse: &PingResponse{}}).Kind(); k != "invalid" {
		t.Fatalf("Kind = %q", k)
	}
}

func TestAbsentTimestampIsGoZeroTime(t *testing.T) {
	// SignVoteRequest{vote: {type: 1, height: 1}} without a timestamp.
	b, _ := hex.DecodeString("1a060a0408011001")
	m, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.SignVoteRequest.Vote.Timestamp; got != (Timestamp{Seconds: GoZeroSeconds}) {
		t.Fatalf("absent timestamp decoded as %+v", got)
	}
	// Present but empty is the Unix epoch, as gogoproto decodes it.
	b, _ = hex.DecodeString("1a080a06080110012a00")
	m, err = DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.SignVoteRequest.Vote.Timestamp; got != (Timestamp{}) {
		t.Fatalf("empty timestamp decoded as %+v", got)
	}
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    []byte
		wantErr error
	}{
		{"empty frame", []byte{0}, 10, []byte{}, nil},
		{"exact limit", append([]byte{3}, 1, 2, 3), 3, []byte{1, 2, 3}, nil},
		{"over the limit", append([]byte{4}, 1, 2, 3, 4), 3, nil, ErrTooLarge},
		{"huge declared length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 1 << 20, nil, ErrTooLarge},
		{"length prefix over ten bytes", bytes.Repeat([]byte{0x80}, 11), 10, nil, ErrMalformed},
		{"length overflowing 64 bits", append(bytes.Repeat([]byte{0xff}, 9), 0x02), 10, nil, ErrMalformed},
		{"truncated body", []byte{5, 1, 2}, 10, nil, io.ErrUnexpectedEOF},
		{"truncated length prefix", []byte{0x80}, 10, nil, io.ErrUnexpectedEOF},
		{"clean end of stream", nil, 10, nil, io.EOF},
		{"body larger than one read chunk", append([]byte{0x80, 0x40}, make([]byte, 8192)...), 1 << 20, make([]byte, 8192), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tc.in), tc.max)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || got != nil {
					t.Fatalf("got %x, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x, %v; want %x", got, err, tc.want)
			}
		})
	}
}

// A declared length within the limit costs memory only as bytes arrive: a
// 1 MiB declaration followed by 10 bytes allocates far less than 1 MiB.
func TestReadFrameAllocatesWithReceivedBytes(t *testing.T) {
	in := append([]byte{0x80, 0x80, 0x40}, make([]byte, 10)...) // declares 1 MiB
	allocs := testing.AllocsPerRun(20, func() {
		_, _ = ReadFrame(bytes.NewReader(in), 2<<20)
	})
	if allocs > 4 {
		t.Fatalf("%v allocations", allocs)
	}
	var got int
	r := &countingReader{r: bytes.NewReader(in)}
	if _, err := ReadFrame(r, 2<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
	got = r.maxBuf
	if got > readChunk {
		t.Fatalf("largest read buffer %d bytes for 10 bytes received", got)
	}
}

type countingReader struct {
	r      io.Reader
	maxBuf int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.maxBuf = max(c.maxBuf, cap(p))
	return c.r.Read(p)
}

func TestInt32Boundaries(t *testing.T) {
	for _, v := range []int32{math.MinInt32, -1, 0, 1, math.MaxInt32} {
		m := Message{SignProposalRequest: &SignProposalRequest{Proposal: &Proposal{POLRound: v, Round: v}}}
		b, _ := EncodeMessage(m)
		got, err := DecodeMessage(b)
		if err != nil || got.SignProposalRequest.Proposal.POLRound != v {
			t.Fatalf("%d: %v", v, err)
		}
	}
}
