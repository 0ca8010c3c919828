package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzDecodeMessage: garbage never panics; every error wraps ErrMalformed;
// an accepted message holds no more bytes than its input, re-encodes, and
// decodes again to the same value (the encoder is canonical, so the second
// encoding is a fixed point).
func FuzzDecodeMessage(f *testing.F) {
	for _, h := range golden {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	f.Add([]byte{0x1a, 0x02, 0x0a, 0x00})
	f.Add([]byte{0x5a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if n := payloadBytes(m); n > len(b) {
			t.Fatalf("decoded %d payload bytes from %d input bytes", n, len(b))
		}
		enc, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		if m.PubKeyResponse == nil && !reflect.DeepEqual(m, m2) {
			// PubKeyResponse normalises v0.38/v1 shapes; everything else
			// must survive unchanged.
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
		enc2, _ := EncodeMessage(m2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point: %x vs %x", enc, enc2)
		}
	})
}

// FuzzReadFrame: arbitrary streams never panic; a frame is never longer
// than the limit; errors are the documented ones.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x03, 1, 2, 3}, uint16(10))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, uint16(100))
	f.Add([]byte{0x80}, uint16(1))
	f.Fuzz(func(t *testing.T, in []byte, max uint16) {
		limit := int(max) + 1
		r := bytes.NewReader(in)
		for {
			b, err := ReadFrame(r, limit)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(b) > limit {
				t.Fatalf("frame of %d bytes over limit %d", len(b), limit)
			}
		}
	})
}

// payloadBytes counts the variable-length bytes a message holds.
func payloadBytes(m Message) int {
	n := 0
	vote := func(v *Vote) {
		if v == nil {
			return
		}
		n += len(v.BlockID.Hash) + len(v.BlockID.PartSetHeader.Hash) + len(v.ValidatorAddress) +
			len(v.Signature) + len(v.Extension) + len(v.ExtensionSignature)
	}
	prop := func(p *Proposal) {
		if p == nil {
			return
		}
		n += len(p.BlockID.Hash) + len(p.BlockID.PartSetHeader.Hash) + len(p.Signature)
	}
	errLen := func(e *RemoteSignerError) {
		if e != nil {
			n += len(e.Description)
		}
	}
	switch {
	case m.PubKeyRequest != nil:
		n += len(m.PubKeyRequest.ChainID)
	case m.PubKeyResponse != nil:
		n += len(m.PubKeyResponse.Ed25519)
		errLen(m.PubKeyResponse.Error)
	case m.SignVoteRequest != nil:
		vote(m.SignVoteRequest.Vote)
		n += len(m.SignVoteRequest.ChainID)
	case m.SignedVoteResponse != nil:
		vote(&m.SignedVoteResponse.Vote)
		errLen(m.SignedVoteResponse.Error)
	case m.SignProposalRequest != nil:
		prop(m.SignProposalRequest.Proposal)
		n += len(m.SignProposalRequest.ChainID)
	case m.SignedProposalResponse != nil:
		prop(&m.SignedProposalResponse.Proposal)
		errLen(m.SignedProposalResponse.Error)
	case m.SignBytesRequest != nil:
		n += len(m.SignBytesRequest.Value)
	case m.SignBytesResponse != nil:
		n += len(m.SignBytesResponse.Signature)
		errLen(m.SignBytesResponse.Error)
	}
	return n
}
