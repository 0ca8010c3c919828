// Package leader owns the signing lease and the replicated state every
// signature is checked against: the lease {holder, epoch, state}, the key
// registry, membership and the slashing-protection histories (through
// package slashing).
//
// State is driven only by committed log entries through package raft/fsm.
// Its handlers are deterministic: they read no clock (the proposer's stamp is
// in the envelope), no randomness, no network and no keys.
//
// Guarantees:
//   - I2, one lease: there is exactly one lease. Its epoch grows by one at
//     every change of holder. A RecordSignatures entry whose (holder, epoch)
//     is not the current active lease is rejected as a whole.
//   - I3, rules in the FSM: every record is evaluated by the slashing rules
//     inside Apply against the replicated history; accepted records are added
//     to it, so two conflicting records can never both be accepted.
//   - A handler that returns an error has changed nothing.
//
// The Service type (service.go) is the node-local side: it proposes commands,
// group-commits records, and keeps Raft leadership next to the lease holder.
package leader
