// Package opsig builds, signs, encodes and verifies operator-signed
// control-plane commands (failoverpb.OperatorCommand inside a
// failoverpb.SignedCommand).
//
// It owns the signing format: an operator signs Message(body), the body
// being the deterministic protobuf encoding of the OperatorCommand, which
// carries the cluster id, a random nonce, an expiry and the action. Keys are
// Ed25519 (pure Ed25519 over the message) or ECDSA P-256 (ASN.1 DER
// signature over SHA-256 of the message); public keys travel as PKIX DER.
// Signing goes through crypto.Signer, so a PKCS#11 or other HSM key works.
//
// Guarantees:
//   - Verify and VerifySignature are pure: no clock, no randomness, no I/O;
//     the failover state machine calls them inside Apply.
//   - DecodeBody and DecodeSigned refuse what a state machine must not
//     interpret: fields this build does not know, oversized input, bodies
//     without cluster id, nonce, submitter or action.
//   - Builder takes its clock and randomness from the caller, and never
//     produces an expiry further than MaxExpiryWindow ahead.
package opsig
