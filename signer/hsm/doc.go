// Package hsm is Regent's PKCS#11 key backend: one region's hardware security
// module (SoftHSM2 in tests and demos, any vendor module in production).
//
// What it owns:
//
//   - Loading a PKCS#11 module and opening one token with a bounded pool of
//     logged-in sessions ([Module], [Open], [HSM]).
//   - Signing keys that live only inside the token: Ed25519 (CometBFT),
//     secp256k1 and P-256, generated in the token ([HSM.GenerateKey]) or
//     imported into it ([HSM.ImportKey], [HSM.ImportCometBFTKey]).
//   - A non-extractable AES-256 sealing key per region and AES-GCM sealing of
//     small secrets under it ([HSM.EnsureSealingKey], [HSM.Seal],
//     [HSM.Unseal]); [SealingKey] adapts one label to the signer/bls Sealer
//     interface.
//   - A non-extractable RSA wrapping key pair per region ([HSM.EnsureWrapKey],
//     3072 bits, decrypt only) and the opening of secrets other regions
//     wrapped to its public key ([WrapSecret], [HSM.Unwrap]: RSA-OAEP with
//     SHA-256, MGF1-SHA-256 and the empty label). This is how a key imported
//     in one region reaches the others without its plaintext entering the
//     replicated log.
//
// What it guarantees:
//
//   - Every private or secret key it creates is a token object with
//     CKA_SENSITIVE=true and CKA_EXTRACTABLE=false, marked for one purpose
//     only (signing keys cannot decrypt, unwrap or derive; the sealing key can
//     only encrypt and decrypt). Keys found in the token that do not satisfy
//     this policy are refused ([ErrKeyPolicy]) rather than used.
//   - The wrapping key's private half never leaves the token. Where the token
//     does RSA-OAEP with SHA-256, Unwrap decrypts with it; SoftHSM 2.6 only
//     does OAEP with SHA-1, so there Unwrap decrypts with raw RSA in the
//     token and removes the OAEP padding in this process, in constant time
//     (the key is limited to these two mechanisms through
//     CKA_ALLOWED_MECHANISMS where the token supports it, so it can never
//     serve PKCS#1 v1.5 decryption or signing). A ciphertext for another key
//     or a modified one fails with [ErrUnwrap] whichever check failed.
//   - Every signature is verified against the token's public key before it is
//     returned, so a faulty HSM, a mislabelled object or a glitched
//     computation yields an error, never a wrong signature. Ed25519 is
//     deterministic: the same key and message always give the same signature.
//   - ECDSA signatures are returned as 64-byte r||s with S normalised to the
//     lower half of the group order for secp256k1 always, and for P-256 when
//     [Config.LowSP256] is set. [ECDSASignatureToDER] converts to DER.
//   - No HSM failure panics. Every failed operation is returned as an error
//     wrapping a sentinel of this package (and, for failures reported by the
//     token, the underlying pkcs11.Error) and is reported to
//     [Config.OnError], except for [ErrInvalidInput] rejections of the
//     caller's arguments.
//   - Sessions are bounded by [Config.MaxSessions]; callers wait for a free
//     session until their context ends ([ErrSessionPoolExhausted]). A session
//     the token reports as broken is closed and reopened (and logged in) on
//     next use. Contexts bound only the wait for a session: a PKCS#11 call
//     already in progress cannot be interrupted.
//
// A PKCS#11 library has process-wide state: load each module once per process
// ([LoadModule]) and open every token from that [*Module]; [Open] is the
// shortcut for a process that uses a single token.
package hsm
