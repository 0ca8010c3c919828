// Package sim is the deterministic simulation of the handover and
// disaster-recovery protocol (DESIGN.md §2, §8): three regions, each a
// real hashicorp/raft node over in-memory stores and a partitionable
// in-memory transport, running the production state machine
// (failover.NewRegistry over leader.State, wrapped in raft/fsm), the
// production leader.Service (group commit, forwarding to the Raft leader,
// leadership keeper), the production sign pipeline (signer/pipeline) and
// the production failover agent (heartbeats, DR takeover, finality
// confirmation).
//
// It owns: the schedule of a run (Schedule, a pure function of the seed),
// the protocol clock every proposer, operator and agent reads, the
// simulated beacon chain (head and finality as functions of that clock),
// the simulated key backend (deterministic signature = SHA-256 of key and
// signing root, repeated), the fault injection (crash and restart on the
// same stores, isolate a region, cut a link, heal, clock jumps) and the
// checker.
//
// Guarantees of Run, checked after every step of every schedule:
//   - no slashable pair (double proposal, double vote, surround) among all
//     signatures any region's key backend ever produced, by a brute-force
//     pairwise scan per key;
//   - every signature is covered by a record the FSM accepted from the
//     signing region while that region held the active lease at the
//     record's log index (for returned signatures: at exactly the index
//     and epoch Service.Record reported), and the batch named that holder
//     and epoch;
//   - at most one holder per lease epoch; the lease moves only by the
//     protocol's transitions (grant to epoch 1; fence by an operator
//     command or DR takeover; activation at epoch+1 by a finality
//     confirmation proposed by the new holder); refused commands, and
//     commands built to be refused (forged, expired, replayed, foreign,
//     short finality evidence), change nothing;
//   - replicas agree: the same entry, the same apply result and the same
//     lease before and after it on every region (a restarted region's
//     replay included), equal state digests at sampled indexes, and
//     byte-identical states whenever converged replicas are compared;
//   - nothing acknowledged is lost: every accepted record is present in
//     the protection history of every converged region that applied it.
//
// What it does not control: hashicorp/raft reads its own clock, so Raft
// timers run on real time (kept short). A schedule is deterministic from
// its seed; its outcome may vary with Raft's timing, and the invariants
// must hold for every outcome. A Violation names the seed to replay.
//
// Not simulated: loss of a region's disk (Raft itself assumes durable
// stores), CometBFT keys, HSM faults other than a crashed process,
// operator registry changes beyond the bootstrap and the DR policy.
package sim
