// Package limiter is the per-identity token bucket behind the gRPC
// listener's rate limiting (go-grpc-middleware v2 interceptors/ratelimit,
// wired in leader/nodeapi.NewGRPCServer).
//
// What it owns: one token bucket per caller identity — the role and name
// of the caller's verified mutual-TLS certificate (raft/pki), so two
// operators do not share a budget and one noisy client cannot starve the
// others — refilled at Rate tokens per second up to Burst.
//
// What it guarantees:
//   - For every identity and every interval [t0, t1] of the injected
//     clock, the calls it allows number at most Burst + Rate·(t1−t0).
//   - Region nodes (role node) are never limited: forwarded writes and
//     signing batches between regions must not queue behind operators.
//   - Memory is bounded by MaxKeys buckets. A bucket is dropped only once
//     it has refilled to Burst (a fresh bucket is identical, so no decision
//     changes); when every bucket is still in use, calls of further
//     identities are refused until one refills (fail closed).
//   - A refusal wraps ErrLimited; nothing else is returned.
//
// It lives under failover/opsapi because the operator API is what asked
// for it; it imports nothing of Regent but raft/pki, so leader/nodeapi can
// use it without a dependency cycle.
package limiter
