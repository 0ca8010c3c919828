package sim

import (
	"errors"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/signer/pipeline"
)

type labelled struct {
	err   error
	label string
}

// refusalLabels maps sentinels to the stable labels of the report, most
// specific first.
func refusalLabels() []labelled {
	return []labelled{
		{failover.ErrNotBootstrapped, "not_bootstrapped"},
		{failover.ErrAlreadyBootstrapped, "already_bootstrapped"},
		{failover.ErrWrongCluster, "wrong_cluster"},
		{failover.ErrExpired, "expired"},
		{failover.ErrExpiryTooFar, "expiry_too_far"},
		{failover.ErrReplay, "replay"},
		{failover.ErrUnknownOperator, "unknown_operator"},
		{failover.ErrBadSignature, "bad_signature"},
		{failover.ErrNotPermitted, "not_permitted"},
		{failover.ErrBelowThreshold, "below_threshold"},
		{failover.ErrDuplicateApproval, "duplicate_approval"},
		{failover.ErrNoHandover, "no_such_handover"},
		{failover.ErrHandoverState, "handover_state"},
		{failover.ErrWrongProposer, "wrong_proposer"},
		{failover.ErrFinalityShort, "finality_short"},
		{failover.ErrStaleHeartbeat, "stale_heartbeat"},
		{failover.ErrDRNotAllowed, "dr_not_allowed"},
		{failover.ErrRegistry, "registry"},
		{failover.ErrUnknownRegion, "unknown_region"},
		{failover.ErrMalformed, "malformed"},
		{leader.ErrStaleLease, "stale_lease"},
		{leader.ErrNotHolder, "not_lease_holder"},
		{leader.ErrRejected, "rejected"},
		{leader.ErrMaybeCommitted, "maybe_committed"},
		{leader.ErrNotLeader, "no_quorum"},
		{leader.ErrUnavailable, "no_quorum"},
		{leader.ErrClosed, "closed"},
		{errCrashed, "region_down"},
	}
}

// refusalLabel returns the stable label of err ("error" when no sentinel
// matches).
func refusalLabel(err error) string {
	for _, l := range refusalLabels() {
		if errors.Is(err, l.err) {
			return l.label
		}
	}
	return "error"
}

// dutyLabel labels a sign-path result: "signed", or the pipeline's
// outcome label, with the slashing rule for slashable refusals.
func dutyLabel(err error) string {
	label := pipeline.OutcomeLabel(err)
	var r *pipeline.Refusal
	if errors.As(err, &r) && r.Rule != "" {
		label += "/" + string(r.Rule)
	}
	return label
}
