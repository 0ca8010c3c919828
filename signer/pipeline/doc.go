// Package pipeline is Regent's sign path: check → commit → sign.
//
// For every request it (1) checks the caller's replicated policy, (2) builds
// the slashing-protection record from the validated request, (3) hands the
// record to the lease holder's group-commit batcher and waits for the entry
// to be committed and applied, and (4) signs only when the state machine
// accepted that record.
//
// Guarantees:
//   - I1: no signature is produced unless this call's record was committed
//     and accepted by the FSM under this region's active lease. A write
//     whose fate is unknown (ErrMaybeCommitted) is never signed on.
//   - I4: every refusal returns a sentinel error saying why; nothing signs
//     on an error path.
//   - I5: signing keys are unsealed only while this region holds the lease
//     (KeyGuard), after a Raft barrier, and zeroed when it is lost.
//   - An identical retry is accepted by the rules and returns the identical
//     signature (BLS and Ed25519 are deterministic).
package pipeline
