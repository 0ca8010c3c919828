// Package keymanager serves the standard Ethereum Keymanager API's local
// keystore endpoints (ethereum/keymanager-APIs) over HTTP, for operators:
//
//	GET    /eth/v1/keystores   list the validator keys this cluster holds
//	POST   /eth/v1/keystores   import EIP-2335 keystores with their EIP-3076
//	                           slashing-protection interchange
//	DELETE /eth/v1/keystores   delete keys and return their protection history
//
// # What it owns
//
// The HTTP side of key import and deletion: decoding and validating the
// request bodies, the order of the replicated writes, the per-key statuses
// and the interchange returned on delete. Key material itself is handled by
// a KeyImporter (signer/keysync) and replicated writes by a Proposer
// (leader.Service with forwarding to the Raft leader).
//
// # Guarantees
//
//   - Slashing protection first (DESIGN.md I1 applied to imports): the
//     interchange sent with an import is committed through the replicated
//     log, as one ImportInterchange command, before any of the request's
//     keys is handed to the KeyImporter. If that command is refused or its
//     fate is unknown, no key of the request is imported.
//   - Only the history of this request's keys is imported: interchange
//     records for other public keys are dropped (they would register keys
//     Regent holds no secret for), and so are the records of keystores that
//     fail to open.
//   - Bad input changes nothing: malformed JSON, unknown fields, missing or
//     mismatched keystores/passwords, a malformed interchange or one for
//     another network are refused with 400 before anything is written;
//     every keystore is opened with its password (keystore.Decrypt, or
//     Config.VerifyKeystore) before the interchange is proposed, so a wrong
//     password leaves no trace of that key.
//   - Delete follows the spec: a key is first disabled in the replicated
//     registry (after which the state machine refuses every record for it,
//     so its history is final), then its history is exported; history is
//     returned for every key answered "deleted" or "not_active" and for no
//     other; DELETE never answers 404; two identical deletes both return
//     the history.
//   - Only operators: an operator-role client certificate, or a bearer
//     token (Config.Tokens) naming an operator. No credential → 401, a
//     refused token or a non-operator identity → 403 (as the spec's
//     Unauthorized/Forbidden responses say). Errors are JSON
//     {"code","message"}.
//
// # Choices
//
//   - Keystores must be JSON strings (the spec's Keystore type) and
//     slashing_protection a JSON string holding the interchange document.
//     Unknown request fields are refused.
//   - Keys already registered answer "duplicate"; their interchange records
//     are still merged (merging only makes protection stricter). A key that
//     was deleted (disabled) cannot be re-imported: Regent never re-enables
//     a key through this API.
//   - A key the KeyImporter registered but has not yet installed in this
//     region (ErrPending) answers "imported" with a message saying so.
//   - readonly and derivation_path are what the KeyImporter reports; the
//     list shows only keys the registry holds as enabled BLS keys of the
//     configured network.
package keymanager
