// Package token issues and verifies short-lived bearer tokens for
// validator clients (DESIGN.md §6: "a short-lived token signed by an
// operator key"), as an alternative to a client certificate.
//
// # Format (version 1)
//
//	regent1.<base64url(payload)>.<base64url(signature)>
//
// base64url is RFC 4648 §5 without padding (canonical: stray bits are
// refused). The payload is canonical JSON — exactly the bytes Go's
// encoding/json produces for this object, fields in this order, nothing
// else:
//
//	{"cluster_id":"…","identity":"vc-1","operator_id":"alice",
//	 "issued_at":1767225600,"expires_at":1767312000,"nonce":"<22 chars>"}
//
// cluster_id is the cluster id fixed at operator bootstrap; identity is the
// client identity the token stands for (a raft/pki name: the policy
// identity whose SetPolicy decides what it may sign); operator_id is the
// registered operator whose key signed it; issued_at and expires_at are
// Unix seconds (0 < expires_at − issued_at ≤ MaxTTL); nonce is 16 random
// bytes (base64url), so two tokens never coincide.
//
// The signature is by the operator's key over the domain-separated message
// "regent/client-token/v1\x00" ‖ payload bytes: Ed25519 (64 bytes), or
// ECDSA P-256 over SHA-256 of the message (ASN.1 DER), the two key types
// of the operator registry. The domain keeps a token signature from ever
// being valid as an operator-command signature and vice versa.
//
// # What Verifier guarantees
//
// A token is accepted only if all hold, checked in this order, each
// failure wrapping its own sentinel: it parses canonically (ErrMalformed);
// the replica is bootstrapped and the cluster id matches (ErrWrongCluster);
// it has not expired and was not issued in the future, each up to Skew
// (ErrExpired, ErrNotYetValid); the operator is registered now
// (ErrUnknownOperator) with role admin or operator (ErrNotPermitted); the
// signature verifies against the key the registry holds for it now
// (ErrBadSignature). The identity it yields has role client and the
// token's identity name. Removing the operator (or replacing its key)
// revokes every token it issued at once. Tokens are bearer credentials:
// anyone holding one may use it until it expires, so keep TTLs short.
//
// The package holds no mutable package-level state; Verifier reads the
// replica through View and reads no clock but its Now.
package token
