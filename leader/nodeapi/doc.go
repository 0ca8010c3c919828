// Package nodeapi serves a region's gRPC Node API (leader/nodepb) over
// mutual TLS: Status for operators and tooling, and Record, which
// group-commits protection records on the lease holder (operators only).
//
// Every call is authenticated by the caller's certificate identity
// (raft/pki); Record refuses any role but operator. Refusals carry a gRPC
// status code a script can rely on: PermissionDenied, FailedPrecondition
// (not lease holder), Unavailable (no quorum, maybe committed),
// InvalidArgument.
package nodeapi
