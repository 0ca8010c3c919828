// Package keystore reads and writes EIP-2335 (version 4) BLS12-381
// keystores: the JSON files in which Ethereum validator keys are exchanged
// (staking-deposit-cli, ethdo, every consensus client, the Keymanager API).
//
// What it owns: decoding and validating the keystore format, password
// normalisation (NFKD, then C0, C1 and Delete control codes removed, then
// UTF-8), key derivation (scrypt, PBKDF2-HMAC-SHA256), the SHA-256 password
// checksum and AES-128-CTR decryption; and producing keystores ([Encrypt]).
//
// What it guarantees:
//
//   - Every field is validated before the expensive key derivation runs, and
//     the derivation's cost is bounded, so a hostile keystore cannot make
//     Decrypt use more than about 256 MiB and a few seconds of CPU:
//     scrypt n a power of two in [2, 2^18], r in [1, 32], p in [1, 16],
//     n·r ≤ 2^21 (memory 128·n·r ≤ 256 MiB) and n·r·p ≤ 2^22; PBKDF2 c in
//     [1, 2^22]; dklen 32; salt at most 1 KiB; file at most 64 KiB. The
//     standard parameters (scrypt n=2^18 r=8 p=1, PBKDF2 c=2^18) are inside
//     these bounds.
//   - A wrong password is reported as [ErrWrongPassword] (checksum mismatch,
//     compared in constant time), distinct from a malformed file
//     ([ErrMalformed]), a valid but unsupported one ([ErrUnsupported]) and a
//     file whose secret does not belong to its "pubkey" field
//     ([ErrPubkeyMismatch]).
//   - A returned secret is a valid BLS12-381 secret key (in [1, r-1]) and the
//     returned public key is derived from it, never copied from the file.
//
// Decrypt is pure: it reads no files and changes nothing. The caller owns the
// returned secret and zeroes it after use (for Regent: after sealing it into
// signer/bls.Store).
package keystore
