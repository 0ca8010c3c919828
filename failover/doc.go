// Package failover owns the handover and disaster-recovery protocol of the
// signing lease: the operator registry and approval thresholds,
// operator-signed control-plane commands, handovers (request, approvals,
// fence, finality confirmation, activation, cancel), the standing DR
// policy, lease heartbeats, voluntary-exit limits, and the audit chain.
//
// Its state (State, extension name "failover") lives inside leader.State
// as a leader.Extension, so it is driven by the same committed log entries
// and snapshotted with the lease. Its handlers (Register, NewRegistry) are
// deterministic: they read no clock (time is the proposer's stamp in the
// envelope), no randomness, no network and no private key; verifying an
// operator signature against a public key held in the state is the only
// cryptography they do.
//
// Guarantees:
//   - Lease changes: the lease moves active(h, e) → fenced(h, e) only in
//     the entry where distinct, currently registered operators whose role
//     permits handovers reach the handover threshold (or in a DR takeover
//     a committed DR policy authorises), and fenced(h, e) → active(t, e+1)
//     only in a ConfirmFinality entry proposed by t whose evidence is past
//     the fixed high-water mark for every chain of that mark. With the
//     registry of NewRegistry, once operators are bootstrapped the unsigned
//     FENCE_LEASE / ACTIVATE_LEASE (and APPROVE_EXIT, SET_POLICY, ADD_KEY,
//     DISABLE_KEY) commands are refused.
//   - Operator commands: every signature must verify against the key of a
//     registered operator whose role permits the action; the body must name
//     this cluster, be unexpired (and expire at most opsig.MaxExpiryWindow
//     after the proposer time), and carry a nonce its operator has not used
//     while that nonce could still be valid. Thresholds count distinct
//     operators.
//   - Audit: every operator command, finality confirmation, DR takeover and
//     bootstrap — accepted or rejected — and every lease change appends one
//     record whose hash covers the previous record's hash (VerifyChain).
//   - A rejected command changes nothing but the audit chain; a handler
//     that returns an error changes nothing at all.
//
// Decisions recorded here:
//   - The requester's signature on RequestHandover counts as its approval.
//   - Time: each entry's "now" is the larger of its proposer stamp and the
//     latest stamp of an accepted failover entry, so expiry and nonce
//     pruning never run backwards when proposers' clocks differ. The DR
//     silence uses the DR proposer's own stamp, so a fast clock elsewhere
//     cannot make a holder look silent.
//   - Heartbeats are not audited (they are periodic, not control-plane
//     decisions); they change only the last-heartbeat record.
package failover
