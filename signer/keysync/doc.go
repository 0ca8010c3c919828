// Package keysync distributes imported signing keys to every region and
// keeps them sealed everywhere except where the signing lease is (I5).
//
// What it owns:
//
//   - [Manager]: registering this region's RSA wrapping public key in the
//     replicated state (RegisterRegion, proposed by the region itself);
//     importing EIP-2335 keystores and CometBFT priv_validator_key.json files
//     ([Manager.ImportKeystore], [Manager.ImportCometBFTKey]) by wrapping the
//     secret, in this process, to every registered region's key (RSA-OAEP
//     SHA-256, see hsm.WrapSecret) and proposing AddKeys with the
//     ciphertexts; the sync loop ([Manager.Run]) that, in every region,
//     unwraps the secrets wrapped for it inside its own HSM and seals them
//     into its store (BLS, under the region's AES key) or imports them into
//     its HSM (Ed25519, non-extractable, labelled [EdLabel]); deleting the
//     local copies of disabled keys; the Keymanager API's delete
//     ([Manager.DeleteKey]: DisableKey, then the key's EIP-3076 export) and
//     list ([Manager.List]).
//   - [Guard]: the key guard every signature passes. It implements
//     pipeline.BLSKeys and pipeline.EdSigner.
//
// What it guarantees:
//
//   - Plaintext key material never enters the replicated log: the log holds
//     one RSA-OAEP ciphertext per region, openable only by that region's HSM.
//     Every plaintext copy this package makes (keystore secret, unwrapped
//     secret) is zeroed before the call returns.
//   - A region installs only what it can verify: a wrapped secret whose
//     wrap_key_id is not this region's current wrapping key is skipped and
//     reported (log, [ManagerStats].WrongWrapKey); a secret that opens to a
//     key other than the public key it is registered under is refused
//     ([ErrWrappedMismatch]); a ciphertext that does not open is counted and
//     retried with back-off. Nothing in the sync loop panics or stops the
//     node.
//   - I5: the Guard unseals BLS keys and allows Ed25519 signing only while
//     the locally applied state says this region holds the active lease, and
//     only after a Raft barrier of that lease epoch. When the lease is not
//     active with this region at that epoch, the keys are zeroed within one
//     poll interval ([GuardConfig].Interval, default 100 ms; at once with
//     [Guard.Kick]); the zeroing loop never waits for the HSM. While not live,
//     SignBLS and SignEd25519 fail with [ErrNotHolder] (which wraps
//     leader.ErrNotHolder) or [ErrKeysNotLoaded].
//   - Imports are refused, with nothing proposed, for a bad key file or
//     password ([ErrKeystore]), a key already registered ([ErrDuplicate]), or
//     while this region's own wrapping key is not registered
//     ([ErrNotRegistered]).
//
// Choices and known gaps (an operator should know these):
//
//   - A key is wrapped for the regions registered when it is imported. A
//     region that registers later does not get it: its sync loop reports the
//     key ([ManagerStats].NotWrapped, a log line per key) and it cannot sign
//     with the key if it becomes the holder. Importing the same keystore (or
//     key file) again closes the gap: the secret is wrapped for the regions
//     that lack one and AddKeys attaches it to the registered key. Two cases
//     stay open and need a RewrapKeys command (not built: a region holding
//     the key unwraps it and proposes a WrappedSecret for the newcomer,
//     which the FSM checks against the newcomer's registered wrap_key_id):
//     the keystore is no longer available, or a region re-registered with a
//     new HSM, whose old wrapped secret (reported as WrongWrapKey) AddKeys
//     does not replace. Watch regent_keysync_not_wrapped_keys and
//     regent_keysync_wrong_wrap_key_keys.
//   - Keys that the registry does not list are never deleted, only reported
//     as orphans: a state still catching up after a restart looks exactly
//     like a registry without the key. Only disabled keys (disabling is
//     permanent) are deleted.
//   - The HSM's OAEP: SoftHSM 2.6 cannot do RSA-OAEP with SHA-256, so
//     hsm.Unwrap falls back to raw RSA in the token and OAEP decoding in this
//     process (see signer/hsm). Vendor HSMs use the token's OAEP.
//   - Proposer must preserve this region as the envelope's proposer when it
//     forwards to the Raft leader; the FSM refuses a RegisterRegion proposed
//     by another node.
//   - The Guard's barrier is leader.Service.Barrier, which only succeeds on
//     the Raft leader; a holder that is not (yet) the leader keeps its keys
//     sealed and retries until the leadership keeper moves leadership to it.
package keysync
