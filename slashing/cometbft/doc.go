// Package cometbft owns Regent's double-sign protection for CometBFT
// (Tendermint) validators: the height/round/step rules, the decoding of
// CometBFT's canonical sign bytes, and the replicated last-sign state those
// rules are evaluated against.
//
// # What it guarantees
//
// For every (key id, chain id) pair the State holds the highest
// height/round/step (HRS) signed and the sign bytes signed there. A request
// is accepted only if its HRS is above that position, or equal to it with
// sign bytes that are identical or differ only in the timestamp — the rules
// of CometBFT's privval FilePV (v0.38 and v1.x). Within one pair, therefore,
// no two different messages are ever released for one HRS and the released
// positions never go backwards. Step numbering is FilePV's: proposal →
// propose (1), prevote → prevote (2), precommit → precommit (3), so at one
// height and round a proposal precedes a prevote, which precedes a
// precommit.
//
// A request must say the same thing twice: its stated chain id and HRS must
// equal the chain id, height, round and step inside its sign bytes. A
// request that disagrees with its own sign bytes is Failed, never evaluated,
// so a proposer cannot get bytes for one position checked against another.
//
// On a timestamp-only retry (same HRS, sign bytes that differ only in the
// timestamp — a node that crashed after signing but before writing its WAL)
// the Outcome names the sign bytes recorded earlier and their timestamp; the
// caller must sign those (Ed25519 is deterministic, so the signature equals
// the one released before) and return that timestamp in the vote or
// proposal. That is what FilePV does when it returns the earlier signature
// and timestamp. "Earlier" means "recorded earlier", whatever the two
// timestamps' order.
//
// Sign bytes are decoded strictly: only the exact encoding CometBFT produces
// for a valid vote or proposal is accepted (see signbytes.go), so equal
// messages have equal bytes and "differ only in the timestamp" is decided on
// decoded fields without any encoding ambiguity. Decoders are bounded and
// never panic on any input.
//
// # What it does not cover
//
// Vote extensions (CometBFT ≥ v0.38, non-nil precommits only) are signed
// over CanonicalVoteExtension bytes, separately from the precommit. They are
// not slashable: FilePV signs a fresh extension signature whenever the
// precommit it rides on passes the HRS check (including a re-sign at the same
// HRS) and records nothing about it. The signer does the same — it signs the
// extension only together with an accepted precommit Outcome, and nothing
// about the extension is recorded here.
// DecodeVoteExtensionSignBytes and EncodeVoteExtensionSignBytes are provided
// so the signer can build and check those bytes. A signer must never sign
// caller-chosen raw bytes (CometBFT v1's SignBytes request, or the raw
// non-replay-protected extension of newer releases) for which
// IsConsensusSignBytes is true: that would bypass these rules.
//
// # Determinism
//
// Everything here is pure — no clock, randomness, I/O or keys — and runs
// inside Raft's Apply. Map iteration never reaches an output: Entries and
// WriteTo sort, MaxHeight takes a maximum. Decisions are data (Outcome with a
// slashing.Result) and their zero value is DecisionUnknown, which refuses.
package cometbft
