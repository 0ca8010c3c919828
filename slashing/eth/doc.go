// Package eth owns Ethereum (consensus-layer) slashing protection: the rule
// engine for block proposals and attestations, the per-validator protection
// history it is evaluated against, its binary snapshot encoding, and EIP-3076
// interchange (format version 5) import and export.
//
// # Guarantees
//
// Everything here is pure: no I/O except through the io.Writer/io.Reader a
// caller hands to WriteTo/ReadState, no clock, no randomness, no goroutines,
// no package-level mutable state. The replicated state machine calls State
// from inside Raft's Apply, so the same sequence of calls produces the same
// decisions and the same snapshot bytes on every replica (DESIGN.md I3).
// Maps are only ever iterated in sorted order where order is observable.
//
// A State is not safe for concurrent use: the FSM applies commands from one
// goroutine; a reader on another goroutine must hold the FSM's lock.
//
// # Rules (complete-history semantics, EIP-3076)
//
// History is kept per (genesis_validators_root, validator public key). Each key
// keeps every signed record it has not folded away (see Pruning), plus
// watermarks ("floors") that stand for everything folded and for the minimum
// of each imported interchange.
//
// Blocks, for a request (slot, root):
//   - a retained record at the same slot with the same, present root is an
//     identical re-sign: Accepted, nothing changes;
//   - any other record at that slot (different root, or a root that is
//     absent in our history) refuses it: block_double_proposal;
//   - slot <= the block floor refuses it: block_slot_below_watermark. The
//     floor is set to the slot of the first block ever recorded (EIP-3076
//     condition 2: nothing at or below the minimum signed slot, except a
//     repeat), raised by imports and by pruning.
//
// Attestations, for a request (source, target, root):
//   - source > target: attestation_source_after_target;
//   - a retained record with the same target: identical re-sign (same source,
//     same present root) is Accepted; anything else is
//     attestation_double_vote;
//   - target <= the target floor: attestation_target_below_watermark;
//     source < the source floor: attestation_source_below_watermark (EIP-3076
//     conditions 4 and 5; the floors are set by the first attestation ever
//     recorded and raised by imports and pruning);
//   - the request surrounds a retained vote (source < s and target > t):
//     attestation_surrounding; it is surrounded by one (s < source and
//     t > target): attestation_surrounded.
//
// An absent signing root (allowed by the interchange format) is never equal
// to any root, so a re-sign at such a slot or target is always refused.
//
// # Why the surround check is O(log n)
//
// A history that contains no slashable pair has unique targets, and when
// sorted by target its sources never decrease (two votes t1 < t2 with
// s2 < s1 would be a surround). Every mutation here keeps the retained
// history slashing-free, so the largest source among votes with a smaller
// target is the source of the immediate predecessor, and the smallest source
// among votes with a larger target is that of the immediate successor. The
// check is a binary search plus two comparisons. A property test compares it
// with a brute-force scan of the whole history.
//
// # Pruning
//
// Records are folded into the floors when they fall below a finalized
// checkpoint (Prune) or when a key holds more records than Options allow
// (oldest first). Folding a block raises the block floor to its slot;
// folding a vote raises the source floor to its source and the target floor
// to its target. Any request refused before a fold is refused after it: a
// folded vote (s, t) can only be surrounded by a request with source < s,
// only surround one with target < t, and only double-vote at target t, all
// of which the floors refuse. What a fold loses is the ability to accept an
// identical re-sign of the folded record, which is refused instead.
//
// # Interchange
//
// Import is atomic: on any error the State is unchanged. A key's floors after
// an import are the maximum of its floors before and the minimum of what the
// interchange holds for it ("taking the max watermarks"), and records below
// the new floors are folded. This is EIP-3076 conditions 2, 4 and 5 applied
// to every interchange ever imported, and it refuses to sign in a gap between
// two interchanges (EIP-3076, Security Considerations). Note: the public test
// case multiple_interchanges_single_validator_single_message_gap expects a
// complete database to accept a vote inside such a gap
// (should_succeed_complete=true); Regent refuses it on purpose.
//
// An interchange whose data is slashable, with itself or with the retained
// history (two different or root-less records at one slot or target, a
// surround, source > target), is refused as a whole with
// slashing.ErrSlashableImport. An exact duplicate of a retained record (same
// slot/epochs and the same root, or both roots absent) merges silently, so
// re-importing the same file is idempotent.
package eth
