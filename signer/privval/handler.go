package privval

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"

	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/privval/wire"
	"github.com/regent-signer/regent/slashing/cometbft"
)

// handler answers privval requests for one chain. It holds no connection
// state; the signer calls it once per request, sequentially per connection.
type handler struct {
	cfg     *Config
	backend Backend
	caller  pipeline.Caller
	log     *slog.Logger
}

// result is one answered request.
type result struct {
	resp    wire.Message
	typ     string // request type label
	outcome string // outcome label
	reused  bool   // the answer reused an earlier timestamp
}

// handle answers m. It never returns without a response: refusals are
// RemoteSignerErrors inside the response type the request calls for, and a
// message that is not a request gets the empty Message (as CometBFT's own
// signer answers one).
func (h *handler) handle(ctx context.Context, m wire.Message) result {
	switch {
	case m.PubKeyRequest != nil:
		return h.pubKey(ctx, m.PubKeyRequest)
	case m.SignVoteRequest != nil:
		return h.signVote(ctx, m.SignVoteRequest)
	case m.SignProposalRequest != nil:
		return h.signProposal(ctx, m.SignProposalRequest)
	case m.PingRequest != nil:
		return result{resp: wire.Message{PingResponse: &wire.PingResponse{}}, typ: ReqPing, outcome: OutcomeOK}
	case m.SignBytesRequest != nil:
		return h.signBytes(ctx, m.SignBytesRequest)
	default:
		h.log.Warn("privval: not a request; answering with an empty message", "chain_id", h.cfg.ChainID, "kind", m.Kind())
		return result{resp: wire.Message{}, typ: ReqUnknown, outcome: OutcomeUnknownRequest}
	}
}

// validatorKey fetches the validator key and checks it is usable.
func (h *handler) validatorKey(ctx context.Context) (ed25519.PublicKey, error) {
	pub, err := h.backend.PubKey(ctx, h.cfg.ChainID)
	if err != nil {
		return nil, err
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: validator key is %d bytes", ErrInconsistent, len(pub))
	}
	if h.cfg.ConnKey != nil && pub.Equal(h.cfg.ConnKey.Public()) {
		return nil, fmt.Errorf("%w: the connection key is the validator key; they must differ", ErrInconsistent)
	}
	return pub, nil
}

func (h *handler) refuse(typ, what string, err error, attrs ...any) result {
	r := refusal(what, err)
	level := slog.LevelWarn
	if r.outcome == OutcomeInconsistent {
		level = slog.LevelError
	}
	h.log.Log(context.Background(), level, "privval: refused", append([]any{
		"chain_id", h.cfg.ChainID, "request", typ, "outcome", r.outcome, "err", err}, attrs...)...)
	e := &wire.RemoteSignerError{Code: r.code, Description: r.description}
	var resp wire.Message
	switch typ {
	case ReqPubKey:
		resp.PubKeyResponse = &wire.PubKeyResponse{Error: e}
	case ReqSignVote:
		resp.SignedVoteResponse = &wire.SignedVoteResponse{Error: e}
	case ReqSignProposal:
		resp.SignedProposalResponse = &wire.SignedProposalResponse{Error: e}
	case ReqSignBytes:
		resp.SignBytesResponse = &wire.SignBytesResponse{Error: e}
	}
	return result{resp: resp, typ: typ, outcome: r.outcome}
}

func (h *handler) checkChain(chainID string) error {
	if chainID != h.cfg.ChainID {
		return fmt.Errorf("%w: request names chain %q, this signer serves %q", ErrWrongChain, chainID, h.cfg.ChainID)
	}
	return nil
}

func (h *handler) pubKey(ctx context.Context, r *wire.PubKeyRequest) result {
	if err := h.checkChain(r.ChainID); err != nil {
		return h.refuse(ReqPubKey, "public key", err)
	}
	pub, err := h.validatorKey(ctx)
	if err != nil {
		return h.refuse(ReqPubKey, "public key", err)
	}
	return result{resp: wire.Message{PubKeyResponse: &wire.PubKeyResponse{Ed25519: pub}}, typ: ReqPubKey, outcome: OutcomeOK}
}

// validateVote applies the checks CometBFT's FilePV and Vote.ValidateBasic
// make before signing, so that a bad request is refused before anything is
// recorded.
func validateVote(v *wire.Vote) error {
	if v.Type != wire.TypePrevote && v.Type != wire.TypePrecommit {
		return fmt.Errorf("%w: vote type %d is not prevote (1) or precommit (2)", ErrBadRequest, v.Type)
	}
	if v.Height < 1 || v.Round < 0 {
		return fmt.Errorf("%w: vote height %d round %d", ErrBadRequest, v.Height, v.Round)
	}
	if len(v.Extension) > 0 && (v.Type != wire.TypePrecommit || v.BlockID.IsZero()) {
		return fmt.Errorf("%w: unexpected vote extension: extensions are only allowed in non-nil precommits", ErrBadRequest)
	}
	if len(v.Extension) > cometbft.MaxVoteExtensionLen {
		return fmt.Errorf("%w: vote extension of %d bytes, limit %d", ErrBadRequest, len(v.Extension), cometbft.MaxVoteExtensionLen)
	}
	return nil
}

func (h *handler) signVote(ctx context.Context, r *wire.SignVoteRequest) result {
	if err := h.checkChain(r.ChainID); err != nil {
		return h.refuse(ReqSignVote, "vote", err)
	}
	if r.Vote == nil {
		return h.refuse(ReqSignVote, "vote", fmt.Errorf("%w: request carries no vote", ErrBadRequest))
	}
	v := *r.Vote
	if err := validateVote(&v); err != nil {
		return h.refuse(ReqSignVote, "vote", err)
	}
	what := fmt.Sprintf("%s at height %d round %d", cometbft.SignedMsgType(v.Type), v.Height, v.Round)
	sb, hrs, err := checkedVoteSignBytes(h.cfg.ChainID, &v)
	if err != nil {
		return h.refuse(ReqSignVote, what, err)
	}
	withExt := v.Type == wire.TypePrecommit && !v.BlockID.IsZero() && !r.SkipExtensionSigning
	var extBytes []byte
	if withExt {
		if extBytes, err = checkedExtensionSignBytes(h.cfg.ChainID, &v); err != nil {
			return h.refuse(ReqSignVote, what, err)
		}
	}
	pub, err := h.validatorKey(ctx)
	if err != nil {
		return h.refuse(ReqSignVote, what, err)
	}
	res, err := h.backend.SignComet(ctx, h.caller, pipeline.CometRequest{
		Pubkey: pub, ChainID: h.cfg.ChainID, HRS: hrs, SignBytes: sb, Type: TypeVote})
	if err != nil {
		return h.refuse(ReqSignVote, what, err, "height", v.Height, "round", v.Round, "step", hrs.Step.String())
	}
	ts, err := h.checkResult(pub, res, sb, func(ts wire.Timestamp) []byte {
		w := v
		w.Timestamp = ts
		return voteSignBytes(h.cfg.ChainID, &w)
	})
	if err != nil {
		return h.refuse(ReqSignVote, what, err)
	}
	v.Timestamp = ts
	v.Signature = res.Signature
	v.ExtensionSignature = nil
	if withExt {
		// Only together with an accepted precommit, as FilePV does. The
		// extension is not slashable, but it is still recorded under the
		// lease before it is signed (pipeline.SignUnslashable).
		sig, err := h.backend.SignUnslashable(ctx, h.caller, pub, KindVoteExtension, extBytes)
		if err != nil {
			return h.refuse(ReqSignVote, what+" (vote extension)", err)
		}
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, extBytes, sig) {
			return h.refuse(ReqSignVote, what+" (vote extension)", fmt.Errorf("%w: extension signature does not verify", ErrInconsistent))
		}
		v.ExtensionSignature = sig
	}
	if res.ReusedEarlier {
		h.log.Info("privval: re-sign at the same height/round/step; returning the earlier timestamp and signature",
			"chain_id", h.cfg.ChainID, "height", v.Height, "round", v.Round, "step", hrs.Step.String(), "timestamp", toCometTS(ts).String())
	}
	return result{resp: wire.Message{SignedVoteResponse: &wire.SignedVoteResponse{Vote: v}}, typ: ReqSignVote, outcome: OutcomeOK, reused: res.ReusedEarlier}
}

func (h *handler) signProposal(ctx context.Context, r *wire.SignProposalRequest) result {
	if err := h.checkChain(r.ChainID); err != nil {
		return h.refuse(ReqSignProposal, "proposal", err)
	}
	if r.Proposal == nil {
		return h.refuse(ReqSignProposal, "proposal", fmt.Errorf("%w: request carries no proposal", ErrBadRequest))
	}
	p := *r.Proposal
	if p.Type != wire.TypeProposal {
		return h.refuse(ReqSignProposal, "proposal", fmt.Errorf("%w: proposal type %d, want %d", ErrBadRequest, p.Type, wire.TypeProposal))
	}
	what := fmt.Sprintf("proposal at height %d round %d", p.Height, p.Round)
	if p.Height < 1 || p.Round < 0 {
		return h.refuse(ReqSignProposal, what, fmt.Errorf("%w: height %d round %d", ErrBadRequest, p.Height, p.Round))
	}
	sb, hrs, err := checkedProposalSignBytes(h.cfg.ChainID, &p)
	if err != nil {
		return h.refuse(ReqSignProposal, what, err)
	}
	pub, err := h.validatorKey(ctx)
	if err != nil {
		return h.refuse(ReqSignProposal, what, err)
	}
	res, err := h.backend.SignComet(ctx, h.caller, pipeline.CometRequest{
		Pubkey: pub, ChainID: h.cfg.ChainID, HRS: hrs, SignBytes: sb, Type: TypeProposal})
	if err != nil {
		return h.refuse(ReqSignProposal, what, err, "height", p.Height, "round", p.Round, "step", hrs.Step.String())
	}
	ts, err := h.checkResult(pub, res, sb, func(ts wire.Timestamp) []byte {
		q := p
		q.Timestamp = ts
		return proposalSignBytes(h.cfg.ChainID, &q)
	})
	if err != nil {
		return h.refuse(ReqSignProposal, what, err)
	}
	p.Timestamp = ts
	p.Signature = res.Signature
	if res.ReusedEarlier {
		h.log.Info("privval: re-sign at the same height/round/step; returning the earlier timestamp and signature",
			"chain_id", h.cfg.ChainID, "height", p.Height, "round", p.Round, "step", hrs.Step.String(), "timestamp", toCometTS(ts).String())
	}
	return result{resp: wire.Message{SignedProposalResponse: &wire.SignedProposalResponse{Proposal: p}}, typ: ReqSignProposal, outcome: OutcomeOK, reused: res.ReusedEarlier}
}

// checkResult verifies a CometResult before anything is released: the
// message re-encoded with the result's timestamp must be exactly the bytes
// signed (so message and signature match), a result that did not reuse an
// earlier message must be for the request's own bytes, and the signature
// must verify under the validator key. It returns the timestamp to put in
// the message.
func (h *handler) checkResult(pub ed25519.PublicKey, res pipeline.CometResult, requested []byte, rebuild func(wire.Timestamp) []byte) (wire.Timestamp, error) {
	ts := fromCometTS(res.Timestamp)
	if !res.ReusedEarlier && !bytes.Equal(res.SignBytes, requested) {
		return ts, fmt.Errorf("%w: the pipeline signed other bytes than requested without reusing an earlier message", ErrInconsistent)
	}
	if !bytes.Equal(rebuild(ts), res.SignBytes) {
		return ts, fmt.Errorf("%w: the message with timestamp %s does not encode to the signed bytes", ErrInconsistent, res.Timestamp)
	}
	if len(res.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, res.SignBytes, res.Signature) {
		return ts, fmt.Errorf("%w: signature does not verify under the validator key", ErrInconsistent)
	}
	return ts, nil
}

func (h *handler) signBytes(ctx context.Context, r *wire.SignBytesRequest) result {
	const what = "sign-bytes request"
	if !h.cfg.AllowSignBytes {
		return h.refuse(ReqSignBytes, what, fmt.Errorf("%w: SignBytes is disabled on this signer", ErrSignBytesRefused))
	}
	if cometbft.IsConsensusSignBytes(r.Value) {
		return h.refuse(ReqSignBytes, what, fmt.Errorf("%w: the bytes could be consensus sign bytes; those are signed only as votes and proposals", ErrSignBytesRefused))
	}
	if _, err := cometbft.DecodeVoteExtensionSignBytes(r.Value); err == nil {
		return h.refuse(ReqSignBytes, what, fmt.Errorf("%w: the bytes are vote-extension sign bytes; those are signed only with an accepted precommit", ErrSignBytesRefused))
	}
	pub, err := h.validatorKey(ctx)
	if err != nil {
		return h.refuse(ReqSignBytes, what, err)
	}
	sig, err := h.backend.SignUnslashable(ctx, h.caller, pub, KindSignBytes, r.Value)
	if err != nil {
		return h.refuse(ReqSignBytes, what, err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, r.Value, sig) {
		return h.refuse(ReqSignBytes, what, fmt.Errorf("%w: signature does not verify", ErrInconsistent))
	}
	return result{resp: wire.Message{SignBytesResponse: &wire.SignBytesResponse{Signature: sig}}, typ: ReqSignBytes, outcome: OutcomeOK}
}
