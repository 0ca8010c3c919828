// Package fsm is Regent's hashicorp/raft FSM: it decodes the versioned
// command envelope of every committed log entry and dispatches it to the
// handler registered for its type, against a replicated state it does not
// otherwise understand.
//
// Guarantees:
//   - Apply is deterministic: handlers receive the log index and the time the
//     proposer stamped into the envelope, never a clock.
//   - Entries are applied one at a time under one lock; readers use View.
//   - An entry whose type or version no handler knows stops the node through
//     the Fatal hook (diverging silently from peers is worse than stopping),
//     unless the envelope is marked ignorable, in which case it is skipped.
//   - An entry that cannot be decoded, or that its handler rejects, changes
//     nothing; the proposer receives the error as the apply response.
//   - Snapshots start with a header (magic and format version); Restore
//     builds a fresh state from the stream and swaps it in only when the whole
//     stream decoded.
package fsm
