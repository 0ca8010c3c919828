// Package ssz computes SSZ hash_tree_root values (the merkleization half of
// the consensus-specs "Simple Serialize" document) for the handful of shapes
// the eth2 signing types are built from: uint64, fixed byte vectors,
// bitlists, bitvectors, lists of uint64, and lists/vectors/containers of
// already-hashed elements.
//
// It owns nothing but arithmetic: no I/O, no state, no allocation that
// outlives a call. Every function is deterministic and safe for concurrent
// use. Inputs are never modified.
//
// Guarantees:
//   - Merkleize pads to next_pow_of_two(limit) exactly as the spec does, using
//     zero-subtree hashes, and refuses more chunks than the limit allows.
//   - BitlistRoot refuses a bitlist without its delimiter bit or longer than
//     its limit; BitvectorRoot refuses a wrong byte length or set padding
//     bits. Such input is an error wrapping ErrInvalid, never a root.
//
// Why a small local implementation rather than fastssz or ztyp: the signer
// only needs hash_tree_root of about twenty fixed container shapes, never
// SSZ encoding or decoding. A 200-line merkleizer that is tested against a
// brute-force reference (ssz_test.go) and, through the eth2 package, against
// an independent implementation keeps the dependency tree of a key-holding
// process small and auditable.
package ssz
