package privval

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/privval/wire"
	"github.com/regent-signer/regent/slashing/cometbft"
)

// respError extracts the RemoteSignerError of any response.
func respError(m wire.Message) *wire.RemoteSignerError {
	switch {
	case m.PubKeyResponse != nil:
		return m.PubKeyResponse.Error
	case m.SignedVoteResponse != nil:
		return m.SignedVoteResponse.Error
	case m.SignedProposalResponse != nil:
		return m.SignedProposalResponse.Error
	case m.SignBytesResponse != nil:
		return m.SignBytesResponse.Error
	}
	return nil
}

// pubKeyBackend wraps a Backend and replaces PubKey.
type pubKeyBackend struct {
	Backend
	pubKey func() (ed25519.PublicKey, error)
}

func (b pubKeyBackend) PubKey(context.Context, string) (ed25519.PublicKey, error) { return b.pubKey() }

// Every row builds its own environment; the request must be refused with
// the row's code, answered in the request's own response type, and leave
// the replicated state untouched (no entry applied, no protection state).
func TestRefusalsChangeNothing(t *testing.T) {
	partial := vote(wire.TypePrevote, 5, 0, 7, ts0())
	partial.BlockID.PartSetHeader = wire.PartSetHeader{}
	short := vote(wire.TypePrevote, 5, 0, 7, ts0())
	short.BlockID.Hash = short.BlockID.Hash[:31]
	badNanos := vote(wire.TypePrevote, 5, 0, 7, wire.Timestamp{Seconds: 1, Nanos: 1e9})
	prevoteExt := vote(wire.TypePrevote, 5, 0, 7, ts0())
	prevoteExt.Extension = []byte("x")
	nilPrecommitExt := vote(wire.TypePrecommit, 5, 0, 0, ts0())
	nilPrecommitExt.Extension = []byte("x")
	wrongPropType := proposal(5, 0, -1, 7, ts0())
	wrongPropType.Type = wire.TypePrevote
	consensus, _ := cometbft.EncodeVoteSignBytes(cometbft.CanonicalVote{Type: cometbft.TypePrevote, Height: 9, ChainID: testChain})
	extBytes, _ := cometbft.EncodeVoteExtensionSignBytes(cometbft.CanonicalVoteExtension{Extension: []byte("e"), Height: 9, ChainID: testChain})

	tests := []struct {
		name       string
		notHolding bool
		types      []string
		cfg        func(*Config)
		backend    func(e *testEnv) Backend
		req        wire.Message
		code       int32
	}{
		{name: "pub key for another chain", req: wire.Message{PubKeyRequest: &wire.PubKeyRequest{ChainID: "other"}}, code: CodeWrongChain},
		{name: "vote for another chain", req: wire.Message{SignVoteRequest: &wire.SignVoteRequest{Vote: vote(1, 5, 0, 7, ts0()), ChainID: "other"}}, code: CodeWrongChain},
		{name: "proposal for another chain", req: wire.Message{SignProposalRequest: &wire.SignProposalRequest{Proposal: proposal(5, 0, -1, 7, ts0()), ChainID: ""}}, code: CodeWrongChain},
		{name: "vote request without a vote", req: wire.Message{SignVoteRequest: &wire.SignVoteRequest{ChainID: testChain}}, code: CodeBadRequest},
		{name: "vote of unknown type 3", req: voteReq(vote(3, 5, 0, 7, ts0())), code: CodeBadRequest},
		{name: "vote typed as proposal", req: voteReq(vote(wire.TypeProposal, 5, 0, 7, ts0())), code: CodeBadRequest},
		{name: "vote at height 0", req: voteReq(vote(1, 0, 0, 7, ts0())), code: CodeBadRequest},
		{name: "vote at round -1", req: voteReq(vote(1, 5, -1, 7, ts0())), code: CodeBadRequest},
		{name: "prevote with an extension", req: voteReq(prevoteExt), code: CodeBadRequest},
		{name: "nil precommit with an extension", req: voteReq(nilPrecommitExt), code: CodeBadRequest},
		{name: "block id without part set header", req: voteReq(partial), code: CodeBadRequest},
		{name: "block hash of 31 bytes", req: voteReq(short), code: CodeBadRequest},
		{name: "timestamp nanos out of range", req: voteReq(badNanos), code: CodeBadRequest},
		{name: "proposal request without a proposal", req: wire.Message{SignProposalRequest: &wire.SignProposalRequest{ChainID: testChain}}, code: CodeBadRequest},
		{name: "proposal typed as prevote", req: propReq(wrongPropType), code: CodeBadRequest},
		{name: "proposal pol_round equal to round", req: propReq(proposal(5, 2, 2, 7, ts0())), code: CodeBadRequest},
		{name: "proposal pol_round -2", req: propReq(proposal(5, 2, -2, 7, ts0())), code: CodeBadRequest},
		{name: "proposal for a nil block", req: propReq(proposal(5, 0, -1, 0, ts0())), code: CodeBadRequest},
		{name: "sign bytes while disabled", req: wire.Message{SignBytesRequest: &wire.SignBytesRequest{Value: []byte("hi")}}, code: CodeSignBytes},
		{name: "sign bytes that are consensus sign bytes", cfg: func(c *Config) { c.AllowSignBytes = true },
			req: wire.Message{SignBytesRequest: &wire.SignBytesRequest{Value: consensus}}, code: CodeSignBytes},
		{name: "sign bytes that are vote-extension sign bytes", cfg: func(c *Config) { c.AllowSignBytes = true },
			req: wire.Message{SignBytesRequest: &wire.SignBytesRequest{Value: extBytes}}, code: CodeSignBytes},
		{name: "sign bytes the policy does not allow", cfg: func(c *Config) { c.AllowSignBytes = true }, types: []string{TypeVote},
			req: wire.Message{SignBytesRequest: &wire.SignBytesRequest{Value: []byte("hi")}}, code: CodeForbidden},
		{name: "vote the policy does not allow", types: []string{TypeProposal}, req: voteReq(vote(1, 5, 0, 7, ts0())), code: CodeForbidden},
		{name: "proposal the policy does not allow", types: []string{TypeVote}, req: propReq(proposal(5, 0, -1, 7, ts0())), code: CodeForbidden},
		{name: "vote while not the lease holder", notHolding: true, req: voteReq(vote(1, 5, 0, 7, ts0())), code: CodeNotLeaseHolder},
		{name: "proposal while not the lease holder", notHolding: true, req: propReq(proposal(5, 0, -1, 7, ts0())), code: CodeNotLeaseHolder},
		{name: "validator key unknown to the backend",
			backend: func(e *testEnv) Backend {
				return pubKeyBackend{e.backend(), func() (ed25519.PublicKey, error) { return nil, pipeline.ErrUnknownKey }}
			},
			req: voteReq(vote(1, 5, 0, 7, ts0())), code: CodeUnknownKey},
		{name: "backend key of the wrong length",
			backend: func(e *testEnv) Backend {
				return pubKeyBackend{e.backend(), func() (ed25519.PublicKey, error) { return make([]byte, 31), nil }}
			},
			req: wire.Message{PubKeyRequest: &wire.PubKeyRequest{ChainID: testChain}}, code: CodeInconsistent},
		{name: "connection key equal to the validator key",
			cfg: func(c *Config) { c.ConnKey = ed25519.NewKeyFromSeed(validatorSeed()) },
			req: voteReq(vote(1, 5, 0, 7, ts0())), code: CodeInconsistent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			types := tc.types
			if types == nil {
				types = allTypes()
			}
			e := newEnv(t, !tc.notHolding, types)
			h := newHandler(t, e, tc.cfg)
			if tc.backend != nil {
				h.backend = tc.backend(e)
			}
			before := e.snapshot()
			res := h.handle(context.Background(), tc.req)
			rse := respError(res.resp)
			if !isCode(rse, tc.code) {
				t.Fatalf("response %+v (error %+v), want code %d", res.resp, rse, tc.code)
			}
			if rse.Description == "" {
				t.Fatal("refusal without a description")
			}
			if wantKind := map[string]string{"pub_key_request": "pub_key_response", "sign_vote_request": "signed_vote_response",
				"sign_proposal_request": "signed_proposal_response", "sign_bytes_request": "sign_bytes_response"}[tc.req.Kind()]; res.resp.Kind() != wantKind {
				t.Fatalf("answered %s to %s", res.resp.Kind(), tc.req.Kind())
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("a refused request changed the replicated state: %+v → %+v", before, after)
			}
		})
	}
}

func TestPubKey(t *testing.T) {
	e := newEnv(t, true, allTypes())
	h := newHandler(t, e, nil)
	res := h.handle(context.Background(), wire.Message{PubKeyRequest: &wire.PubKeyRequest{ChainID: testChain}})
	if res.resp.PubKeyResponse == nil || res.resp.PubKeyResponse.Error != nil || !bytes.Equal(res.resp.PubKeyResponse.Ed25519, e.pub) {
		t.Fatalf("pub key response %+v", res.resp)
	}
	// The lease is not needed to learn the public key.
	e.pe.Holding = false
	res = h.handle(context.Background(), wire.Message{PubKeyRequest: &wire.PubKeyRequest{ChainID: testChain}})
	if res.resp.PubKeyResponse == nil || res.resp.PubKeyResponse.Error != nil {
		t.Fatalf("pub key while not holding: %+v", res.resp)
	}
}

func TestSignVotes(t *testing.T) {
	tests := []struct {
		name    string
		vote    *wire.Vote
		skipExt bool
		wantExt bool
	}{
		{"prevote for a block", vote(wire.TypePrevote, 5, 0, 7, ts0()), false, false},
		{"prevote for nil", vote(wire.TypePrevote, 5, 1, 0, ts0()), false, false},
		{"precommit for a block signs its extension", func() *wire.Vote {
			v := vote(wire.TypePrecommit, 5, 0, 7, ts0())
			v.Extension = []byte("app data")
			return v
		}(), false, true},
		{"precommit with an empty extension still signs it", vote(wire.TypePrecommit, 5, 0, 7, ts0()), false, true},
		{"precommit for nil has no extension signature", vote(wire.TypePrecommit, 5, 0, 0, ts0()), false, false},
		{"v1 skip_extension_signing", vote(wire.TypePrecommit, 5, 0, 7, ts0()), true, false},
		{"round and pre-epoch timestamp", vote(wire.TypePrevote, 1<<40, 1<<20, 7, wire.Timestamp{Seconds: wire.GoZeroSeconds}), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true, allTypes())
			h := newHandler(t, e, nil)
			req := *tc.vote
			req.ValidatorAddress = bytes.Repeat([]byte{9}, 20)
			req.ValidatorIndex = 3
			res := h.handle(context.Background(), wire.Message{SignVoteRequest: &wire.SignVoteRequest{Vote: &req, ChainID: testChain, SkipExtensionSigning: tc.skipExt}})
			r := res.resp.SignedVoteResponse
			if r == nil || r.Error != nil || res.outcome != OutcomeOK {
				t.Fatalf("response %+v", res.resp)
			}
			got := r.Vote
			if got.Timestamp != req.Timestamp || got.Type != req.Type || got.Height != req.Height || got.Round != req.Round ||
				!bytes.Equal(got.ValidatorAddress, req.ValidatorAddress) || got.ValidatorIndex != 3 || !bytes.Equal(got.Extension, req.Extension) {
				t.Fatalf("the answer changed the vote: %+v", got)
			}
			if !ed25519.Verify(e.pub, voteSignBytes(testChain, &got), got.Signature) {
				t.Fatal("vote signature does not verify over the vote's sign bytes")
			}
			if !bytes.Equal(e.lastSignBytes(), voteSignBytes(testChain, &got)) {
				t.Fatal("the protection state does not hold the signed bytes")
			}
			switch {
			case tc.wantExt && !ed25519.Verify(e.pub, voteExtensionSignBytes(testChain, &got), got.ExtensionSignature):
				t.Fatal("extension signature missing or invalid")
			case !tc.wantExt && got.ExtensionSignature != nil:
				t.Fatal("unexpected extension signature")
			}
		})
	}
}

func TestSignProposal(t *testing.T) {
	for _, p := range []*wire.Proposal{proposal(5, 0, -1, 7, ts0()), proposal(9, 4, 2, 8, ts0())} {
		e := newEnv(t, true, allTypes())
		h := newHandler(t, e, nil)
		res := h.handle(context.Background(), propReq(p))
		r := res.resp.SignedProposalResponse
		if r == nil || r.Error != nil {
			t.Fatalf("response %+v", res.resp)
		}
		if r.Proposal.Timestamp != p.Timestamp || r.Proposal.POLRound != p.POLRound {
			t.Fatalf("proposal changed: %+v", r.Proposal)
		}
		if !ed25519.Verify(e.pub, proposalSignBytes(testChain, &r.Proposal), r.Proposal.Signature) {
			t.Fatal("proposal signature does not verify")
		}
	}
}

// The slashing rules hold through the signer: a second, different message
// at a position already signed, or a position below it, is refused as
// slashable and the recorded state keeps the first message.
func TestDoubleSignIsRefused(t *testing.T) {
	tests := []struct {
		name          string
		first, second wire.Message
	}{
		{"prevote for another block", voteReq(vote(1, 5, 0, 7, ts0())), voteReq(vote(1, 5, 0, 8, ts0()))},
		{"prevote for nil after a block", voteReq(vote(1, 5, 0, 7, ts0())), voteReq(vote(1, 5, 0, 0, ts0()))},
		{"precommit for another block", voteReq(vote(2, 5, 0, 7, ts0())), voteReq(vote(2, 5, 0, 8, ts0()))},
		{"proposal of another block", propReq(proposal(5, 0, -1, 7, ts0())), propReq(proposal(5, 0, -1, 8, ts0()))},
		{"prevote below a precommit", voteReq(vote(2, 5, 0, 7, ts0())), voteReq(vote(1, 5, 0, 7, ts0()))},
		{"vote at a lower height", voteReq(vote(1, 6, 0, 7, ts0())), voteReq(vote(1, 5, 3, 7, ts0()))},
		{"proposal after a prevote at the same round", voteReq(vote(1, 5, 0, 7, ts0())), propReq(proposal(5, 0, -1, 7, ts0()))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true, allTypes())
			h := newHandler(t, e, nil)
			if rse := respError(h.handle(context.Background(), tc.first).resp); rse != nil {
				t.Fatalf("first: %+v", rse)
			}
			recorded := e.lastSignBytes()
			res := h.handle(context.Background(), tc.second)
			if rse := respError(res.resp); !isCode(rse, CodeSlashable) || res.outcome != OutcomeSlashable {
				t.Fatalf("second: %+v, want slashable", rse)
			}
			if !bytes.Equal(e.lastSignBytes(), recorded) {
				t.Fatal("a refused message replaced the recorded one")
			}
		})
	}
}

// A re-sign that differs only in timestamp (a node that crashed after
// signing, before its WAL write) gets the earlier timestamp and the earlier
// signature, so message and signature match; an identical retry gets the
// same signature.
func TestTimestampOnlyRetry(t *testing.T) {
	later := wire.Timestamp{Seconds: ts0().Seconds + 3, Nanos: 5}
	t.Run("precommit", func(t *testing.T) {
		e := newEnv(t, true, allTypes())
		h := newHandler(t, e, nil)
		first := h.handle(context.Background(), voteReq(vote(2, 5, 0, 7, ts0()))).resp.SignedVoteResponse
		again := h.handle(context.Background(), voteReq(vote(2, 5, 0, 7, ts0())))
		retry := h.handle(context.Background(), voteReq(vote(2, 5, 0, 7, later)))
		r := retry.resp.SignedVoteResponse
		if r == nil || r.Error != nil || !retry.reused {
			t.Fatalf("retry: %+v reused=%v", retry.resp, retry.reused)
		}
		if r.Vote.Timestamp != ts0() || !bytes.Equal(r.Vote.Signature, first.Vote.Signature) {
			t.Fatalf("retry got timestamp %+v, want the earlier %+v and the earlier signature", r.Vote.Timestamp, ts0())
		}
		if !ed25519.Verify(e.pub, voteSignBytes(testChain, &r.Vote), r.Vote.Signature) {
			t.Fatal("message and signature do not match")
		}
		if !bytes.Equal(again.resp.SignedVoteResponse.Vote.Signature, first.Vote.Signature) || again.reused {
			t.Fatal("identical retry did not return the identical signature")
		}
		if !ed25519.Verify(e.pub, voteExtensionSignBytes(testChain, &r.Vote), r.Vote.ExtensionSignature) {
			t.Fatal("the retried precommit's extension is not signed")
		}
	})
	t.Run("proposal", func(t *testing.T) {
		e := newEnv(t, true, allTypes())
		h := newHandler(t, e, nil)
		first := h.handle(context.Background(), propReq(proposal(5, 1, 0, 7, ts0()))).resp.SignedProposalResponse
		retry := h.handle(context.Background(), propReq(proposal(5, 1, 0, 7, later)))
		r := retry.resp.SignedProposalResponse
		if r == nil || r.Error != nil || r.Proposal.Timestamp != ts0() || !bytes.Equal(r.Proposal.Signature, first.Proposal.Signature) {
			t.Fatalf("retry: %+v", retry.resp)
		}
	})
}

// If the precommit is accepted but its extension cannot be signed, the
// vote is withheld; once the cause is fixed, the retry at the same position
// returns the same precommit signature.
func TestExtensionRefusalWithholdsThePrecommit(t *testing.T) {
	e := newEnv(t, true, []string{TypeVote, TypeProposal})
	h := newHandler(t, e, nil)
	res := h.handle(context.Background(), voteReq(vote(2, 5, 0, 7, ts0())))
	if rse := respError(res.resp); !isCode(rse, CodeForbidden) {
		t.Fatalf("precommit without extension permission: %+v", rse)
	}
	if err := e.pe.Allow("cometbft-"+testChain, []string{"*"}, allTypes()); err != nil {
		t.Fatal(err)
	}
	res = h.handle(context.Background(), voteReq(vote(2, 5, 0, 7, ts0())))
	if r := res.resp.SignedVoteResponse; r == nil || r.Error != nil || len(r.Vote.ExtensionSignature) == 0 {
		t.Fatalf("retry: %+v", res.resp)
	}
}

// lyingBackend returns a result of its own making.
type lyingBackend struct {
	Backend
	comet func(req pipeline.CometRequest) pipeline.CometResult
	ext   func(msg []byte) []byte
}

func (b lyingBackend) SignComet(ctx context.Context, c pipeline.Caller, req pipeline.CometRequest) (pipeline.CometResult, error) {
	if b.comet == nil {
		return b.Backend.SignComet(ctx, c, req)
	}
	return b.comet(req), nil
}

func (b lyingBackend) SignUnslashable(ctx context.Context, c pipeline.Caller, pk []byte, kind string, msg []byte) ([]byte, error) {
	if b.ext == nil {
		return b.Backend.SignUnslashable(ctx, c, pk, kind, msg)
	}
	return b.ext(msg), nil
}

// A backend result that does not match the request is never released.
func TestInconsistentResultsAreNotReleased(t *testing.T) {
	key := ed25519.NewKeyFromSeed(validatorSeed())
	other := voteSignBytes(testChain, vote(1, 5, 0, 8, ts0()))
	tests := []struct {
		name  string
		comet func(req pipeline.CometRequest) pipeline.CometResult
		ext   func(msg []byte) []byte
		req   wire.Message
	}{
		{"signature over other bytes, not marked reused", func(req pipeline.CometRequest) pipeline.CometResult {
			return pipeline.CometResult{Signature: ed25519.Sign(key, other), SignBytes: other, Timestamp: toCometTS(ts0())}
		}, nil, voteReq(vote(1, 5, 0, 7, ts0()))},
		{"reused bytes for another block", func(req pipeline.CometRequest) pipeline.CometResult {
			return pipeline.CometResult{Signature: ed25519.Sign(key, other), SignBytes: other, Timestamp: toCometTS(ts0()), ReusedEarlier: true}
		}, nil, voteReq(vote(1, 5, 0, 7, ts0()))},
		{"timestamp that does not match the signed bytes", func(req pipeline.CometRequest) pipeline.CometResult {
			return pipeline.CometResult{Signature: ed25519.Sign(key, req.SignBytes), SignBytes: req.SignBytes, Timestamp: cometbft.Timestamp{Seconds: 1}}
		}, nil, voteReq(vote(1, 5, 0, 7, ts0()))},
		{"signature that does not verify", func(req pipeline.CometRequest) pipeline.CometResult {
			return pipeline.CometResult{Signature: make([]byte, 64), SignBytes: req.SignBytes, Timestamp: toCometTS(ts0())}
		}, nil, propReq(proposal(5, 0, -1, 7, ts0()))},
		{"extension signature that does not verify", nil, func([]byte) []byte { return make([]byte, 64) }, voteReq(vote(2, 5, 0, 7, ts0()))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true, allTypes())
			h := newHandler(t, e, nil)
			h.backend = lyingBackend{Backend: e.backend(), comet: tc.comet, ext: tc.ext}
			res := h.handle(context.Background(), tc.req)
			if rse := respError(res.resp); !isCode(rse, CodeInconsistent) {
				t.Fatalf("got %+v, want inconsistent", res.resp)
			}
			if (res.resp.SignedVoteResponse != nil && res.resp.SignedVoteResponse.Vote.Signature != nil) ||
				(res.resp.SignedProposalResponse != nil && res.resp.SignedProposalResponse.Proposal.Signature != nil) {
				t.Fatal("a signature leaked into a refusal")
			}
		})
	}
}

func TestSignBytesWhenAllowed(t *testing.T) {
	e := newEnv(t, true, allTypes())
	h := newHandler(t, e, func(c *Config) { c.AllowSignBytes = true })
	msg := []byte("application metadata")
	res := h.handle(context.Background(), wire.Message{SignBytesRequest: &wire.SignBytesRequest{Value: msg}})
	r := res.resp.SignBytesResponse
	if r == nil || r.Error != nil || !ed25519.Verify(e.pub, msg, r.Signature) {
		t.Fatalf("sign bytes: %+v", res.resp)
	}
}

func TestNonRequestsGetTheEmptyMessage(t *testing.T) {
	e := newEnv(t, true, allTypes())
	h := newHandler(t, e, nil)
	for _, m := range []wire.Message{
		{}, {PingResponse: &wire.PingResponse{}}, {SignedVoteResponse: &wire.SignedVoteResponse{}},
		{PubKeyResponse: &wire.PubKeyResponse{}}, {SignBytesResponse: &wire.SignBytesResponse{}},
	} {
		res := h.handle(context.Background(), m)
		if res.resp.Kind() != "empty" || res.outcome != OutcomeUnknownRequest {
			t.Fatalf("%s answered with %s", m.Kind(), res.resp.Kind())
		}
	}
	if res := h.handle(context.Background(), wire.Message{PingRequest: &wire.PingRequest{}}); res.resp.PingResponse == nil {
		t.Fatal("ping not answered with pong")
	}
}

func TestClassifyCoversPipelineErrors(t *testing.T) {
	tests := []struct {
		err     error
		outcome string
	}{
		{nil, OutcomeOK},
		{pipeline.ErrSlashable, OutcomeSlashable},
		{pipeline.ErrForbidden, OutcomeForbidden},
		{pipeline.ErrUnknownKey, OutcomeUnknownKey},
		{pipeline.ErrNotApproved, OutcomeNotApproved},
		{pipeline.ErrBadRequest, OutcomeBadRequest},
		{pipeline.ErrCannotSign, OutcomeUnavailable},
		{context.DeadlineExceeded, OutcomeUnavailable},
		{errors.New("something else"), OutcomeUnavailable},
	}
	for _, tc := range tests {
		if got, _ := classify(tc.err); got != tc.outcome {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.outcome)
		}
	}
}
