// Package cometbfttest runs a real CometBFT node whose only validator signs
// through Regent's privval signer, and checks what the chain recorded.
//
// It owns:
//   - Binary: builds github.com/cometbft/cometbft/cmd/cometbft at a pinned
//     release (Version for the v0.38 line, VersionV1 for v1) from the Go
//     module proxy with `go install` into
//     $(go env GOCACHE)/regent-cometbft/<version> and reuses it afterwards.
//     The binary is a test tool; this module does not depend on cometbft.
//   - Init/Node: `cometbft init` in a temporary home, then a single-validator
//     chain whose genesis validator is the key Regent holds (the node's own
//     priv_validator_key.json is deleted), the built-in kvstore application,
//     every listener on 127.0.0.1, fast consensus timeouts, optional vote
//     extensions, and priv_validator_laddr pointing at a tcp:// (or unix://)
//     address the signer dials. Start runs the node as a process (its own
//     process group); Stop sends SIGTERM then SIGKILL, Kill sends SIGKILL;
//     WaitHeight polls /status; Block reads /block and /commit.
//   - SignLog: a Backend wrapper recording every signature released, with
//     CheckNoDoubleSign (no two different sign bytes at one height/round/step).
//   - CheckChain: no evidence in any block, and every commit signature of the
//     validator verifies over precommit sign bytes rebuilt independently from
//     the commit and was released through Regent.
//
// The tests (node_test.go) run the chain on v0.38 and v1 through: blocks
// signed only through Regent; a standby region's signer that gets the node,
// answers "not lease holder" and yields while the holder's signer takes
// over; a signer restart; a node SIGKILL; and a node SIGKILL between the
// signature and the node's WAL write, whose re-sign must get the earlier
// timestamp. Also: the chain over a unix socket, and a node whose
// SecretConnection key is not allowlisted never being served.
//
// They run real processes and need the network once (to build cometbft),
// so they run only when REGENT_COMETBFT_TEST=1 and not in -short mode;
// `make cometbft-test` (signer/privval/cometbft.mk) runs them. Timing on two
// shared cores: building cometbft v0.38.26 took 48 s and v1.0.1 4 min
// (cold module cache: downloads plus compile, v1 has more and cgo
// dependencies); later runs reuse the cached binaries, and the whole suite
// then takes 15–20 s with -race.
package cometbfttest
