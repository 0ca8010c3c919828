// Package conformance runs slashing-protection test cases written in the
// format of the public EIP-3076 interchange tests
// (eth-clients/slashing-protection-interchange-tests) against a Target: a
// fresh slashing-protection database per test case.
//
// It owns the test-case reader, the runner and its report format, and the
// Regent-authored cases in testdata/. It does not own any rule: the Target
// under test decides, so the same runner checks the bare rule engine
// (slashing/eth, in this package's tests) and the replicated state machine
// (an adapter over the Raft FSM, used by `regent slashing conformance DIR`).
//
// # Semantics
//
// Regent keeps complete history, so each block/attestation is checked
// against should_succeed_complete (falling back to should_succeed in older
// files that lack it). For each case a new Target is made; for each step:
//
//   - the step's interchange is imported. If should_succeed is false the
//     import must fail; the step's checks still run (against the unchanged
//     database), so a case can prove that a refused import changed nothing.
//   - If should_succeed is true and contains_slashable_data is false, the
//     import must succeed.
//   - If contains_slashable_data is true, the Target may refuse the import,
//     but only as slashable (an error wrapping slashing.ErrSlashableImport);
//     the rest of the case is then skipped and the case passes. Any other
//     error fails the case. If it imports, the checks must pass.
//   - Then every block, then every attestation is signed in order through
//     the Target, which records the accepted ones; an expected success must
//     be DecisionAccepted and an expected failure DecisionDenied.
//
// A test item without signing_root is an absent root. The Target interface
// carries a concrete root, so the runner stands in a fresh sentinel root
// for each absent one: a root that appears nowhere in the case file and is
// never reused. Within a case this is indistinguishable from "absent": it
// matches no imported record and no other request.
//
// The report has one line per case, "PASS name" or "FAIL name: <where>:
// <what>", and a last line "N passed, M failed". Step and item numbers are
// zero-based positions in the JSON arrays.
package conformance
