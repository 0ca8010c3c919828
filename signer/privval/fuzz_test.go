package privval

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/regent-signer/regent/signer/privval/wire"
)

// FuzzHandleFrame feeds arbitrary frames through decoding and the handler
// against one long-lived pipeline (so sequences build real protection
// history). It must never panic, every frame must get an answer, and any
// signature in an answer must verify over the answer's own sign bytes
// under the validator key — the signer never releases a signature that does
// not match the message it returns.
func FuzzHandleFrame(f *testing.F) {
	seeds := []wire.Message{
		voteReq(vote(wire.TypePrevote, 5, 0, 7, ts0())),
		voteReq(vote(wire.TypePrecommit, 5, 0, 7, ts0())),
		voteReq(vote(wire.TypePrecommit, 6, 1, 0, ts0())),
		propReq(proposal(7, 2, 1, 9, ts0())),
		{PubKeyRequest: &wire.PubKeyRequest{ChainID: testChain}},
		{PingRequest: &wire.PingRequest{}},
		{SignBytesRequest: &wire.SignBytesRequest{Value: []byte("x")}},
	}
	for _, m := range seeds {
		b, err := wire.EncodeMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	e := newEnv(f, true, allTypes())
	h := newHandler(f, e, func(c *Config) { c.AllowSignBytes = true })
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := wire.DecodeMessage(frame)
		if err != nil {
			return
		}
		res := h.handle(context.Background(), m)
		if res.typ == "" || res.outcome == "" {
			t.Fatalf("unlabelled result %+v", res)
		}
		if _, err := wire.EncodeMessage(res.resp); err != nil {
			t.Fatalf("answer does not encode: %v", err)
		}
		switch r := res.resp; {
		case r.SignedVoteResponse != nil && r.SignedVoteResponse.Error == nil:
			v := r.SignedVoteResponse.Vote
			if !ed25519.Verify(e.pub, voteSignBytes(testChain, &v), v.Signature) {
				t.Fatal("released vote signature does not match the vote")
			}
			if len(v.ExtensionSignature) > 0 && !ed25519.Verify(e.pub, voteExtensionSignBytes(testChain, &v), v.ExtensionSignature) {
				t.Fatal("released extension signature does not match")
			}
		case r.SignedProposalResponse != nil && r.SignedProposalResponse.Error == nil:
			p := r.SignedProposalResponse.Proposal
			if !ed25519.Verify(e.pub, proposalSignBytes(testChain, &p), p.Signature) {
				t.Fatal("released proposal signature does not match the proposal")
			}
		case r.SignBytesResponse != nil && r.SignBytesResponse.Error == nil:
			if !ed25519.Verify(e.pub, m.SignBytesRequest.Value, r.SignBytesResponse.Signature) {
				t.Fatal("released sign-bytes signature does not verify")
			}
		}
	})
}
