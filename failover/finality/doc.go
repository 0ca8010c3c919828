// Package finality owns the finality watcher of the handover protocol
// (DESIGN.md §8, step 3): it asks a configured set of chain endpoints how
// far their chains have finalized and reports a chain's finality only when
// a quorum of them agrees. Its output, Evidence, is what the incoming
// region proposes in ConfirmFinality once the chain has finalized past the
// fenced lease's high-water mark.
//
// # Endpoints and requests
//
// Per Ethereum network (identified by its genesis validators root) the
// watcher asks each beacon node, in order:
//
//	GET /eth/v1/beacon/genesis                          network check
//	GET /eth/v1/beacon/states/head/finality_checkpoints finalized checkpoint
//	GET /eth/v1/beacon/headers/finalized                cross-check
//
// Per CometBFT chain (identified by chain id) it asks each RPC node
// GET /status, then GET /commit?height=H of those at or above the
// candidate height H.
//
// Endpoints are http or https base URLs. Every request carries its own
// timeout (RequestTimeout, body included), bodies are cut at
// MaxResponseBytes, and every answer goes through a strict decoder
// (DecodeGenesis, DecodeFinalityCheckpoints, DecodeBlockHeader,
// DecodeCometStatus, DecodeCometCommit): one JSON document, exact member
// names, no duplicate members, the specified types, decimal strings for
// numbers, exact-length hex for roots and hashes. Members the decoders do
// not read are ignored (nodes add members between releases). An endpoint
// whose answer fails any check is excluded from that round and counted by
// reason; it is never half-trusted.
//
// # What makes an answer usable
//
// Ethereum: the node's genesis_validators_root is the configured one
// (else ErrWrongNetwork); neither answer is execution_optimistic unless
// AllowOptimistic (else ErrOptimistic); the finalized epoch's first slot
// fits in 64 bits (else ErrImplausible); and, unless the checkpoint is the
// pre-finality one (epoch 0, zero root), the finalized header has the
// checkpoint's root, a slot at or before the epoch's first slot, and is not
// marked finalized=false (else ErrInconsistent).
//
// CometBFT: node_info.network is the configured chain id (else
// ErrWrongNetwork); the node is not catching_up and has a block (else
// ErrCatchingUp). In the second phase its commit at H is for the configured
// chain and for H, and, if the node's latest height is H, names the block
// its status named (else ErrInconsistent).
//
// # Agreement (one round, per chain; Quorum q, default a majority)
//
// Ethereum. Let each usable answer be (epoch, root) of the finalized
// checkpoint.
//  1. If two answers report the same epoch with different roots, the round
//     is refused with ErrConflict, whatever the other answers say.
//  2. If fewer than q answers are usable: ErrNoQuorum.
//  3. The agreed epoch E is the largest epoch such that at least q answers
//     report a finalized epoch ≥ E (the q-th largest reported epoch). The
//     agreed root is the root reported by the answers at exactly E (there is
//     at least one, and by 1 they agree). A node far ahead of the others
//     cannot raise E alone: it only counts as one of the q. The evidence
//     lists every answer at or above E.
//
// CometBFT. Let each usable status answer be (latest height, latest hash).
//  1. Two answers at the same latest height with different hashes:
//     ErrConflict.
//  2. Fewer than q usable answers: ErrNoQuorum.
//  3. The candidate height H is the q-th largest latest height. Every
//     endpoint at or above H is asked for /commit?height=H. If any two of
//     the commits obtained name different block hashes: ErrConflict. If
//     fewer than q commits were obtained, the endpoints whose commit failed
//     are dropped and step 2-3 run again without them (so one endpoint
//     cannot stall agreement by claiming a height it does not back with a
//     commit); when nothing more can be dropped: ErrNoQuorum. Otherwise
//     height H with that hash is agreed (CometBFT finality is immediate).
//
// Quorum must be a majority of the configured endpoints (Validate refuses
// less), so two disjoint sets of endpoints can never both decide. Nothing
// here verifies signatures: the trust is in a majority of independently
// operated endpoints, not in a light client.
//
// # Waiting past a high-water mark
//
// WaitPast polls, once per PollInterval on the injected Clock, the chains
// its HighWater names, until every one is past its mark: Ethereum, agreed
// epoch > MaxTargetEpoch (if HasAttestation) and first slot of the agreed
// epoch > MaxBlockSlot (if HasBlock); CometBFT, agreed height > the mark.
// It then returns Evidence (agreed finality plus the agreeing endpoints'
// answers). It never returns evidence from a round that lacked a quorum,
// saw a conflict, or was not past the mark. Evidence.Covers re-checks
// evidence against a mark without I/O.
//
// # Observability
//
// Logs (log/slog) use the stable keys chain, endpoint, epoch, height,
// reason; an endpoint's change of state is logged at Warn/Info and repeats at
// Debug; a conflict is logged at Error every round. Metrics are described
// at Metrics and registered on the Registerer passed in Config. The package
// holds no package-level mutable state.
package finality
