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
//   - The requester's signature on RequestHandover counts as its approval;
//     co-signatures on the request count too. A removed operator's
//     approval stops counting.
//   - One operator with the handover role may cancel a handover, and only
//     before the fence. After the fence the lease stays fenced until a
//     handover completes; a fenced handover whose target is lost can only
//     be redirected by a new RequestHandover that itself carries the
//     handover threshold of signatures (the old one closes as rejected).
//   - A DR takeover cancels a handover still waiting for approvals.
//   - The audit chain is kept whole in the state (and in snapshots); the
//     state keeps the open handover and the last MaxClosedHandovers closed
//     ones, used nonces until their expiry.
//   - Time: an operator command's "now" is the larger of its proposer stamp
//     and the "now" of the last accepted operator command, so expiry and
//     nonce pruning never run backwards when proposers' clocks differ. Only
//     accepted operator commands move it, and a command stamped beyond its
//     own expiry is refused, so one fast clock can push it at most
//     opsig.MaxExpiryWindow ahead (commands then look expired until real
//     time catches up: fail closed). The DR silence uses the DR proposer's
//     own stamp, so a fast clock elsewhere cannot make a holder look silent.
//   - A refused operator command, finality confirmation, DR takeover or
//     bootstrap returns a Result with Accepted false and a nil handler
//     error (the audit record is a change of state, which a handler error
//     must not carry); ResponseError or Result.Refusal turn it into an
//     error. Refused heartbeats and refused unsigned commands return a
//     handler error and are not audited.
//   - Heartbeats are not audited (they are periodic, not control-plane
//     decisions); they change only the last-heartbeat record.
//
// Related packages: opsig (operators build and sign commands; Apply
// verifies with it), agent (the node side: heartbeats, DR takeover,
// finality confirmation), failoverpb (the wire and snapshot types).
package failover
