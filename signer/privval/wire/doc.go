// Package wire is the privval protocol's message codec: the
// length-delimited protobuf Message oneof that CometBFT nodes exchange with
// remote signers, in both the v0.38 shape (tendermint.privval) and the v1.x
// shape (cometbft.privval.v1), hand-written on protowire.
//
// It owns: the frame (uvarint length + body), the Message oneof
// (PubKeyRequest/Response, SignVoteRequest/SignedVoteResponse,
// SignProposalRequest/SignedProposalResponse, PingRequest/Response, and v1's
// SignBytesRequest/Response), Vote, Proposal, BlockID, Timestamp and
// RemoteSignerError. The two versions differ in three places, all handled
// here: v1's SignVoteRequest has skip_extension_signing (field 3); v1's
// PubKeyResponse carries pub_key_bytes/pub_key_type (fields 3, 4) where
// v0.38 has a tendermint.crypto.PublicKey (field 1) — the encoder writes
// both, and each version skips the other's as unknown fields; v1 adds
// SignBytesRequest/Response (oneof members 9, 10).
//
// Guarantees:
//   - Decoding never panics, returns errors wrapping ErrMalformed, and holds
//     no more bytes than its input. It is stricter than protobuf: a field may
//     not repeat and unknown fields are refused — a signer must not echo back
//     a vote it only partly understood.
//   - Encoding is gogoproto's (ascending fields, zero values omitted,
//     non-nullable sub-messages always written), so requests and votes
//     encode byte-for-byte as CometBFT encodes them (golden tests hold
//     bytes produced by CometBFT's generated types).
//   - ReadFrame refuses frames over its limit before reading them and grows
//     its buffer only as bytes arrive, so a peer cannot make it allocate by
//     declaring a length.
//
// It does not decide what to sign: signer/privval does.
package wire
