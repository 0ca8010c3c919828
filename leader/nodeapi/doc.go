// Package nodeapi serves a region's gRPC Node API (leader/nodepb) over
// mutual TLS: Status for operators and tooling; OperatorPropose, which
// commits an operator's command (signed operator commands, and the unsigned
// scaffolding the state machine refuses once operators are bootstrapped);
// and Propose, with which one region forwards a command to the Raft leader.
//
// Every call is authenticated by the caller's certificate identity
// (raft/pki): OperatorPropose needs an operator certificate (or a region
// forwarding on an operator's behalf), Propose a region node certificate,
// and each accepts only an allowlist of command types. Refusals carry a
// gRPC status code a script can rely on: PermissionDenied,
// InvalidArgument, FailedPrecondition (the state machine refused it),
// Unavailable (no quorum, not leader), Aborted (fate unknown).
package nodeapi
