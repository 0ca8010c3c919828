// Package secretconn implements CometBFT's SecretConnection (the
// station-to-station protocol of CometBFT's p2p/conn, as spoken by v0.38 and
// v1.x nodes on a tcp:// priv_validator_laddr), written from the protocol
// rather than imported.
//
// It owns: the handshake — X25519 ephemeral keys exchanged as delimited
// BytesValue messages, a Merlin transcript (STROBE-128 over Keccak-f[1600])
// binding both ephemeral keys and the shared secret, HKDF-SHA256 send and
// receive keys, and an exchange of Ed25519 identity keys with signatures over
// the transcript challenge — and the framed ChaCha20-Poly1305 stream that
// follows (1028-byte frames with a little-endian length prefix, 64-bit
// little-endian nonce counters).
//
// Guarantees:
//   - Handshake returns only after the peer proved possession of the
//     Ed25519 key RemotePubKey reports, over a challenge bound to this
//     session's ephemeral keys; otherwise the error wraps ErrHandshake or
//     ErrAuth. Whether that key is *acceptable* is for the caller to decide
//     (CometBFT's listener does not authenticate itself stably: see
//     signer/privval's doc).
//   - Low-order ephemeral keys (an all-zero shared secret) are refused.
//   - A frame that fails authentication, or a stream broken mid-frame,
//     poisons the connection: every later Read fails with ErrFrame. Nonces
//     are never reused; exhausting them is an error, not a panic.
//   - Handshake messages are read exactly (no read-ahead) and bounded; no
//     input makes it panic or allocate more than a few kilobytes.
//
// Verified by known-answer and cross-implementation tests of the transcript,
// a property test of Keccak-f[1600] against crypto/sha3, handshakes between
// two instances over real sockets, tamper tests, and — the real check — the
// CometBFT node harness in signer/privval/cometbfttest.
package secretconn
