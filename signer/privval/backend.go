package privval

import (
	"context"
	"crypto/ed25519"

	"github.com/regent-signer/regent/signer/pipeline"
)

// Policy message types and unslashable kinds this signer asks the pipeline
// for. A caller identity's replicated policy must list them.
const (
	// TypeVote is CometRequest.Type for prevotes and precommits.
	TypeVote = "VOTE"
	// TypeProposal is CometRequest.Type for proposals.
	TypeProposal = "PROPOSAL"
	// KindVoteExtension is the SignUnslashable kind of a precommit's vote
	// extension.
	KindVoteExtension = "VOTE_EXTENSION"
	// KindSignBytes is the SignUnslashable kind of a v1 SignBytes request.
	KindSignBytes = "SIGN_BYTES"
)

// Backend is what the signer needs from Regent: the validator's public key
// and the sign pipeline. The lead adapts *pipeline.Pipeline and the key
// registry to it (see PipelineBackend).
//
// The signer calls it from one goroutine per connection, one request at a
// time, with a context bounded by Config.RequestTimeout. Implementations
// must be safe for concurrent use (several signers may share one) and must
// keep the pipeline's guarantees: SignComet returns a signature only for a
// committed, accepted record (I1), and its CometResult names the exact bytes
// signed.
type Backend interface {
	// PubKey returns the validator's Ed25519 public key for chainID.
	PubKey(ctx context.Context, chainID string) (ed25519.PublicKey, error)
	// SignComet records and signs a vote or proposal (pipeline.SignComet).
	SignComet(ctx context.Context, caller pipeline.Caller, req pipeline.CometRequest) (pipeline.CometResult, error)
	// SignUnslashable records and signs bytes no HRS rule covers
	// (pipeline.SignUnslashable).
	SignUnslashable(ctx context.Context, caller pipeline.Caller, pubkey []byte, kind string, msg []byte) ([]byte, error)
}

// PipelineBackend adapts a *pipeline.Pipeline and a key lookup to Backend.
type PipelineBackend struct {
	Pipeline *pipeline.Pipeline
	// Key returns the validator key registered for a chain id.
	Key func(ctx context.Context, chainID string) (ed25519.PublicKey, error)
}

var _ Backend = PipelineBackend{}

// PubKey implements Backend.
func (b PipelineBackend) PubKey(ctx context.Context, chainID string) (ed25519.PublicKey, error) {
	return b.Key(ctx, chainID)
}

// SignComet implements Backend.
func (b PipelineBackend) SignComet(ctx context.Context, caller pipeline.Caller, req pipeline.CometRequest) (pipeline.CometResult, error) {
	return b.Pipeline.SignComet(ctx, caller, req)
}

// SignUnslashable implements Backend.
func (b PipelineBackend) SignUnslashable(ctx context.Context, caller pipeline.Caller, pubkey []byte, kind string, msg []byte) ([]byte, error) {
	return b.Pipeline.SignUnslashable(ctx, caller, pubkey, kind, msg)
}
