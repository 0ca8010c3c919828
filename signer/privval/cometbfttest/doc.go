// Package cometbfttest runs a real CometBFT node whose only validator signs
// through Regent's privval signer, and checks what the chain recorded.
//
// It owns:
//   - Binary: builds github.com/cometbft/cometbft/cmd/cometbft at a pinned
//     release (Version) from the Go module proxy with `go install` into
//     $(go env GOCACHE)/regent-cometbft/<version> and reuses it afterwards.
//     The binary is a test tool; this module does not depend on cometbft.
//   - Init/Node: `cometbft init` in a temporary home, then a single-validator
//     chain whose genesis validator is the key Regent holds (the node's own
//     priv_validator_key.json is deleted), the built-in kvstore application,
//     every listener on 127.0.0.1, fast consensus timeouts, and
//     priv_validator_laddr pointing at a tcp:// (or unix://) address the
//     signer dials. Start runs the node as a process (its own process group);
//     Stop sends SIGTERM then SIGKILL, Kill sends SIGKILL; WaitHeight polls
//     /status; Block reads /block and /commit.
//   - SignLog: a Backend wrapper recording every signature released, with
//     CheckNoDoubleSign (no two different sign bytes at one height/round/step).
//   - CheckChain: no evidence in any block, and every commit signature of the
//     validator verifies over precommit sign bytes rebuilt independently from
//     the commit and was released through Regent.
//
// The tests here are slow and need the network once (to build cometbft), so
// they run only when REGENT_COMETBFT_TEST=1 and not in -short mode; `make
// cometbft-test` (signer/privval/cometbft.mk) runs them. Timing on two cores:
// the first build of cometbft takes about a minute (dependency download and
// compile; ~50 s measured), later runs reuse the cached binary; the tests
// themselves take about a minute (node start-ups, deliberate signer outages
// and a node crash).
package cometbfttest
