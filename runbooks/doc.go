// Package runbooks holds Regent's operator runbooks (the Markdown files in
// this directory) and the small machinery that executes them, so that every
// command a runbook tells an operator to type has been run against a real
// three-region cluster before anyone needs it at 3 a.m.
//
// What it owns:
//
//   - The runbook format (README.md, "How the runbooks are tested"):
//     only ```sh fenced blocks are executed; in them a line starting with
//     "$ " is a command on the operator's workstation and a line starting
//     with "<region># " (e.g. "dc2# ") a command on that region's host; a
//     trailing "\" continues a command on the next line; a line starting
//     with "#" is a comment; any other non-blank line is an excerpt of the
//     preceding command's real output; a trailing shell comment whose text
//     starts with "word:" is a directive (exit:, expect:, save:, retry:)
//     saying what the test must check; <NAME> placeholders are filled from
//     values an earlier command saved; an HTML comment
//     "<!-- runbook: fresh cluster[, slow] -->" starts a scene on a new
//     cluster.
//   - [Parse]: Markdown → [Runbook] (scenes of [Step]s with their [Check]).
//   - [Check] evaluation ([Evaluate]), JSON paths ([Lookup]), excerpt
//     matching ([MatchExcerpt]) and placeholder substitution ([Fill]).
//   - [Runner]: runs one step in bash (with pipefail) in an environment the
//     caller provides, retrying within the step's retry budget, saves
//     values for later placeholders, and reports the output lines an
//     excerpt would be refreshed with ([Result].Refreshed).
//
// Guarantees:
//
//   - Parse refuses, naming the line, anything it cannot interpret exactly:
//     an unknown directive keyword or runbook option, a malformed
//     expectation or JSON path, an output excerpt with no command before
//     it, an unterminated fence, a placeholder used before any step saves
//     it. A runbook that parses has no step the test would skip silently.
//   - Evaluate, Lookup, MatchExcerpt and Fill are pure: no I/O, no clock.
//   - A Runner step passes only when the exit status, every expectation and
//     the excerpt all hold on one and the same attempt; a failing step
//     returns an error carrying the command, its exit status and output.
//   - Nothing here holds package-level mutable state.
//
// The cluster the runbooks run against (built binaries, three region
// processes with SoftHSM2 tokens, simulated beacon nodes, an operators
// file, a simulated validator client and a systemctl stand-in) lives in
// this package's tests: go test -tags hashicorpmetrics ./runbooks/.
package runbooks
