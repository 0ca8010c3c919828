// Package metrics exports Prometheus metrics for Regent's sign path.
//
// What it owns: the sign-path metric families below, registered on a
// prometheus.Registerer the caller supplies (no global registry, no
// package-level state), and the hooks that feed them: (*Metrics).Observe,
// usable as pipeline.Config.Observe, and (*Metrics).Rejected, usable as
// web3signer.Config.Rejected.
//
// What it guarantees: label values are bounded. "type" is a signing type
// (upper-case letters, digits and '_', at most 64 characters; anything
// else is counted as "other"); "outcome" is a pipeline.OutcomeLabel value
// or one of the API's pre-pipeline outcomes; "rule" is a slashing.Rule (or
// "unknown"). Every known rule is exported at zero from the start, so
// alerts on increase() see the first refusal.
//
// # Metrics
//
//	regent_sign_requests_total{type,outcome}      counter
//	    Signing requests by message type and result. outcome is one of
//	    signed, slashable, forbidden, unknown_key, not_approved,
//	    bad_request, not_lease_holder, maybe_committed, no_quorum,
//	    unavailable (from the pipeline) or, with type="unknown", requests
//	    the API refused before the pipeline: bad_request, too_large,
//	    unauthenticated, forbidden.
//	regent_slashing_refusals_total{rule}          counter
//	    Requests refused by a slashing rule (outcome slashable), by rule:
//	    block_slot_below_watermark, block_double_proposal,
//	    attestation_source_after_target, attestation_double_vote,
//	    attestation_surrounding, attestation_surrounded,
//	    attestation_source_below_watermark,
//	    attestation_target_below_watermark, hrs_regression,
//	    hrs_conflicting_sign_bytes. Any increase deserves a look: a
//	    well-behaved validator client never asks for a slashable message.
//	regent_sign_duration_seconds{stage}           histogram
//	    Latency of the sign path. stage="total": the whole pipeline call,
//	    refusals included; stage="commit": waiting for the protection
//	    record to be committed and applied (group commit and Raft
//	    replication across regions); stage="sign": the BLS/HSM signature
//	    after commit. commit and sign are observed only for requests that
//	    reached that stage.
//	regent_hsm_errors_total                        counter
//	    Signatures that failed after their record committed (HSM error,
//	    key not loaded). Each one is a duty missed with its record kept;
//	    alert on any increase.
//
// Record batch sizes are exported by leader/metrics as
// regent_record_batch_size.
package metrics
