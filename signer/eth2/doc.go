// Package eth2 decodes and validates Ethereum remote-signing requests in the
// Web3Signer eth2 API shape (the JSON body of POST
// /api/v1/eth2/sign/{pubkey}) and computes what a BLS signature for them
// must sign. It is a pure library: no HTTP, no keys, no clock, no I/O, no
// package-level mutable state; every function is deterministic and safe for
// concurrent use. The HTTP handler and the commit-then-sign pipeline live
// elsewhere and call in here.
//
// # What it owns
//
//   - Decode / DecodeForNetwork: strict decoding of every signing type —
//     AGGREGATION_SLOT, AGGREGATE_AND_PROOF, AGGREGATE_AND_PROOF_V2,
//     ATTESTATION, BLOCK, BLOCK_V2, DEPOSIT, RANDAO_REVEAL, VOLUNTARY_EXIT,
//     SYNC_COMMITTEE_MESSAGE, SYNC_COMMITTEE_SELECTION_PROOF,
//     SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF, VALIDATOR_REGISTRATION.
//   - (*Request).SigningRoot: compute_domain and compute_signing_root of the
//     consensus specs (builder specs for validator registrations), plus the
//     comparison with a signing root the client sent.
//   - (*Request).Protection: what slashing protection must record (nothing,
//     a block slot, or an attestation's source and target epochs).
//   - Explain: the derivation in human form for regentctl.
//
// # Guarantees
//
//   - Bad input is refused with an error wrapping exactly one sentinel
//     (ErrMalformed, ErrTooLarge, ErrUnknownType, ErrUnknownFork,
//     ErrMissingForkInfo, ErrUnsupported, ErrWrongNetwork; later
//     ErrSigningRootMismatch, ErrNetworkRequired) and a *FieldError naming
//     the field. A refused body yields no Request; the body is never
//     modified or retained.
//   - Strictness: one JSON object, nothing after it, at most MaxBodyBytes;
//     exact-case member names; no duplicate and no unknown members (at any
//     depth); uint64 as decimal strings without sign or leading zeros; bytes
//     as 0x-prefixed hex of the exact size; bitlists with their delimiter and
//     within their limit; list lengths within the mainnet preset's limits.
//     null is not accepted for any member.
//   - The signing root is the spec's: the fork version comes from fork_info
//     by the message's epoch (previous_version before fork.epoch,
//     current_version from it on). DEPOSIT uses the request's
//     genesis_fork_version and a zero genesis validators root;
//     VALIDATOR_REGISTRATION uses the network's genesis fork version and a
//     zero root (builder specs); VOLUNTARY_EXIT applies EIP-7044 (Capella
//     fork version once the chain is at Deneb or later).
//   - If the client sent signingRoot (or signing_root), SigningRoot never
//     returns a root that differs from it: it returns
//     ErrSigningRootMismatch naming both.
//   - Only BLOCK, BLOCK_V2 and ATTESTATION are slashable. The zero
//     ProtectionKind is ProtectionUnknown, which callers treat as refusal.
//
// # Choices (where Web3Signer or the specs leave room)
//
//   - BLOCK_V2 accepts the full block form for PHASE0 and ALTAIR (as
//     Web3Signer does) and the block_header form for every fork PHASE0
//     through FULU (Web3Signer requires it from BELLATRIX on; accepting it
//     earlier is harmless because hash_tree_root(block) equals
//     hash_tree_root(header)). A full BELLATRIX-or-later block is refused
//     with ErrUnsupported: no client sends one and hashing execution
//     payloads is not worth its attack surface. BLOCK carries phase0 blocks
//     only.
//   - FULU is accepted as a version name: its header and attestation shapes
//     are Electra's and it is live on mainnet. GLOAS and later are
//     ErrUnknownFork until they are final and added here.
//   - AGGREGATE_AND_PROOF_V2 accepts {version, data} (the shape must match
//     the version: committee_bits from ELECTRA on, absent before) and, like
//     Web3Signer, a bare AggregateAndProof. In the bare form and in
//     AGGREGATE_AND_PROOF, the presence of committee_bits selects the
//     Electra attestation (Lighthouse sends Electra aggregates as
//     AGGREGATE_AND_PROOF).
//   - fork_info is required for every type except DEPOSIT and
//     VALIDATOR_REGISTRATION; for those two it is optional, validated, and
//     does not affect the domain.
//   - Fork version names match case-insensitively; type names exactly.
//   - EIP-7044: Teku/Web3Signer pick the Capella version when the exit's
//     epoch is at or after DENEB_FORK_EPOCH. This package also does so when
//     fork_info shows the chain at Deneb or later (fork.epoch >=
//     DENEB_FORK_EPOCH), because a post-Deneb chain accepts no other exit
//     domain. Without a Network, exits and registrations cannot be signed
//     (ErrNetworkRequired) rather than be signed under a guessed domain.
//   - With a Network, a fork_info for another genesis validators root and a
//     DEPOSIT for another genesis fork version are ErrWrongNetwork.
//   - Mainnet preset only (SLOTS_PER_EPOCH 32, list limits): mainnet,
//     Sepolia, Holesky and Hoodi. Gnosis and the minimal preset are not
//     supported.
//
// # SSZ
//
// hash_tree_root is computed by the small sub-package ssz rather than by
// go-eth2-client+fastssz or zrnt: the signer needs merkleization of about
// twenty fixed containers and never SSZ encoding, so a short, separately
// tested implementation keeps the key-holding process's dependency tree
// small. Correctness is established against an independent,
// schema-driven Python implementation of the spec (testdata/gen_vectors.py,
// whose outputs are testdata/vectors.json) and against published domain
// constants.
package eth2
