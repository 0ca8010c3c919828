// Package opsapi serves the operator API, gRPC service
// regent.ops.v1.Operations (opspb), on a region's existing gRPC listener
// (leader/nodeapi.NewGRPCServer: mutual TLS, recovery, slog logging,
// authentication from the client certificate, per-identity rate limiting,
// request validation — all go-grpc-middleware v2 interceptors).
//
// What it owns: turning operator requests into proposals through the
// region's Proposer (which forwards to the Raft leader) and answering
// reads from the region's applied replica: Submit (operator-signed
// commands), Status, Audit, AuditFile, ListKeys, ExportInterchange,
// ImportInterchange, ImportKeystore, Members, AddMember, RemoveMember.
//
// What it guarantees:
//   - Writes (Submit, ImportInterchange, ImportKeystore, AddMember,
//     RemoveMember) need a caller certificate of role operator
//     (PermissionDenied otherwise); reads accept any authenticated
//     identity. Reads reflect this region's applied state, which may lag
//     the leader by the entries in flight.
//   - Submit never decides anything itself: the state machine verifies the
//     signatures, roles, thresholds, expiry and nonce of the command. A
//     refusal comes back as a normal response (accepted false, with the
//     state machine's reason and the seq of the audit record that holds
//     it); only transport and quorum problems are gRPC errors, all
//     Unavailable. "Outcome unknown" (the write may or may not have
//     committed) is Unavailable with a message saying so; submitting the
//     same signed command again is safe — if the first one committed, the
//     second is refused as a replay of its nonce.
//   - A request that fails Validate, or any handler's own checks, changes
//     nothing.
//   - Membership changes (AddMember, RemoveMember) are the Raft
//     AddVoter/AddNonvoter/RemoveServer calls made on the Raft leader for
//     a caller with an operator certificate. They are NOT multi-signed by
//     operators in this version and are not in the failover audit chain
//     (they are logged). RemoveMember refuses the lease holder and the
//     target of an open handover.
//
// Request validation: the listener uses go-grpc-middleware v2's validator
// interceptor (fail-fast), which calls Validate() error on requests that
// have it; opspb gives its requests hand-written Validate methods instead
// of protovalidate, whose runtime (CEL) is heavy for a handful of bounds.
// Handlers repeat the checks they depend on, so they are safe without the
// interceptor too.
//
// Logs use log/slog with stable keys: region, action, operator, caller,
// signatures, index, audit_seq, handover, accepted, reason, keys, network,
// pubkey, member, address, nonvoter.
package opsapi
