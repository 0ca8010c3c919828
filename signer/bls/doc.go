// Package bls holds Ethereum validators' BLS12-381 secret keys for one
// region: sealed at rest under the region's HSM, open in locked memory only
// while the region holds the signing lease.
//
// Scheme: min-pk (48-byte G1 public keys, 96-byte G2 signatures), proof of
// possession ciphersuite, DST "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_",
// via supranational/blst. Signing is deterministic: the same key and signing
// root always give the same signature.
//
// What it owns:
//
//   - [Store]: a directory with one file per validator key, named by the
//     public key in lowercase hex ("<96 hex>.sealed"). Each file is the
//     secret key sealed by a [Sealer] (the region HSM's AES-256-GCM key, see
//     signer/hsm.SealingKey) with the 48-byte public key as additional
//     authenticated data, so a file renamed to another public key does not
//     open. Files are written atomically (temporary file, fsync, rename,
//     fsync of the directory). Public keys are listed from the file names
//     without unsealing anything.
//   - [KeySet]: the unsealed keys, in memory locked against swapping
//     (mlock, where the process is allowed to) and excluded from core dumps
//     (Linux), zeroed by [KeySet.Zero].
//
// What it guarantees:
//
//   - A sealed file alone reveals nothing: opening it needs the HSM that
//     sealed it (I5, DESIGN.md §7).
//   - [Store.UnsealAll] is all-or-nothing: one unreadable, mislabelled or
//     unopenable file fails the whole call, naming the key, and nothing stays
//     in memory (I4: fail closed).
//   - After [KeySet.Zero] every secret byte the key set held is overwritten
//     and [KeySet.Sign] fails with [ErrKeyNotLoaded]; Zero waits for
//     signatures in progress.
//
// Calling UnsealAll when the lease is gained and Zero when it is lost is the
// caller's job (leader/ and the sign pipeline); this package does not know
// about leases. Keys added to the Store after UnsealAll are not in an
// existing KeySet: unseal again and swap.
package bls
