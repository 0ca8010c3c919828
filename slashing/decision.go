package slashing

import "errors"

// Decision is the outcome of evaluating one protection record.
//
// The zero value is DecisionUnknown, never an approval: a caller that forgets
// to set a decision refuses to sign.
type Decision uint8

const (
	// DecisionUnknown means no rule produced an answer. Treat as refusal.
	DecisionUnknown Decision = iota
	// DecisionAccepted means the record is safe to sign and was (or would be)
	// added to the history.
	DecisionAccepted
	// DecisionDenied means a slashing rule refused the record (policy).
	DecisionDenied
	// DecisionFailed means the record could not be evaluated (bad input,
	// unknown key, internal error). Treat as refusal.
	DecisionFailed
)

// String returns the lower-case name used in logs, metrics and APIs.
func (d Decision) String() string {
	switch d {
	case DecisionAccepted:
		return "accepted"
	case DecisionDenied:
		return "denied"
	case DecisionFailed:
		return "failed"
	default:
		return "unknown"
	}
}

// Rule names the slashing rule that refused a record. Rules are stable
// identifiers used in API bodies, logs and the metric label "rule".
type Rule string

// The rules. Keep in sync with README's metrics section.
const (
	RuleNone                 Rule = ""
	RuleBlockBelowWatermark  Rule = "block_slot_below_watermark"
	RuleBlockDoubleProposal  Rule = "block_double_proposal"
	RuleAttSourceAfterTarget Rule = "attestation_source_after_target"
	RuleAttDoubleVote        Rule = "attestation_double_vote"
	RuleAttSurrounding       Rule = "attestation_surrounding"
	RuleAttSurrounded        Rule = "attestation_surrounded"
	RuleAttSourceBelowMin    Rule = "attestation_source_below_watermark"
	RuleAttTargetBelowMin    Rule = "attestation_target_below_watermark"
	RuleHRSRegression        Rule = "hrs_regression"
	RuleHRSConflict          Rule = "hrs_conflicting_sign_bytes"
)

// Result is the answer of a rule evaluation.
//
// For DecisionDenied, Rule names what fired and Reason says, in words an
// operator understands, which values were compared. For DecisionFailed, Err
// wraps one of this package's sentinel errors.
type Result struct {
	Decision Decision
	Rule     Rule
	Reason   string
	Err      error
}

// Accepted reports whether the record may be signed.
func (r Result) Accepted() bool { return r.Decision == DecisionAccepted }

// Sentinel errors. Match with errors.Is.
var (
	// ErrInvalidInput marks a record or interchange that is malformed.
	ErrInvalidInput = errors.New("slashing: invalid input")
	// ErrGenesisMismatch marks an interchange for another network.
	ErrGenesisMismatch = errors.New("slashing: genesis validators root mismatch")
	// ErrUnsupportedVersion marks an interchange format version we do not read.
	ErrUnsupportedVersion = errors.New("slashing: unsupported interchange version")
	// ErrSlashableImport marks an interchange whose own data is slashable.
	ErrSlashableImport = errors.New("slashing: interchange contains slashable data")
)
