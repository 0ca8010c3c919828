package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/slashing"
)

// ErrNoRegisterer: New was given a nil Registerer.
var ErrNoRegisterer = errors.New("metrics: a prometheus.Registerer is required")

// Metric names.
const (
	NameSignRequests      = "regent_sign_requests_total"
	NameSlashingRefusals  = "regent_slashing_refusals_total"
	NameSignDuration      = "regent_sign_duration_seconds"
	NameHSMErrors         = "regent_hsm_errors_total"
	typeUnknown           = "unknown"
	typeOther             = "other"
	ruleUnknown           = "unknown"
	maxTypeLabelLength    = 64
	outcomeSlashableLabel = "slashable"
)

// Stages of regent_sign_duration_seconds.
const (
	StageTotal  = "total"
	StageCommit = "commit"
	StageSign   = "sign"
)

// DurationBuckets returns the histogram buckets of
// regent_sign_duration_seconds, from half a millisecond (a local check) to
// ten seconds (the default sign timeout).
func DurationBuckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// KnownRules returns the slashing rules exported at zero from the start.
func KnownRules() []slashing.Rule {
	return []slashing.Rule{
		slashing.RuleBlockBelowWatermark, slashing.RuleBlockDoubleProposal, slashing.RuleAttSourceAfterTarget,
		slashing.RuleAttDoubleVote, slashing.RuleAttSurrounding, slashing.RuleAttSurrounded,
		slashing.RuleAttSourceBelowMin, slashing.RuleAttTargetBelowMin, slashing.RuleHRSRegression, slashing.RuleHRSConflict,
	}
}

// Metrics holds the sign-path metric families. Its methods are safe for
// concurrent use.
type Metrics struct {
	requests  *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	hsmErrors prometheus.Counter
}

// New creates the metric families and registers them on reg. It fails,
// registering nothing, if reg is nil or already holds any of them.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, ErrNoRegisterer
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameSignRequests,
			Help: "Signing requests by message type and outcome (signed, slashable, forbidden, not_lease_holder, ...).",
		}, []string{"type", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameSlashingRefusals,
			Help: "Signing requests refused by slashing protection, by rule.",
		}, []string{"rule"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameSignDuration,
			Help:    "Sign path latency by stage: total, commit (protection record replicated), sign (BLS/HSM).",
			Buckets: DurationBuckets(),
		}, []string{"stage"}),
		hsmErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameHSMErrors,
			Help: "Signatures that failed after their protection record committed (HSM error, key not loaded).",
		}),
	}
	cs := []prometheus.Collector{m.requests, m.refusals, m.duration, m.hsmErrors}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	for _, r := range KnownRules() {
		m.refusals.WithLabelValues(string(r))
	}
	return m, nil
}

// Observe records one pipeline result. Use it as pipeline.Config.Observe.
func (m *Metrics) Observe(o pipeline.Observation) {
	outcome := o.Outcome
	if outcome == "" {
		outcome = typeUnknown
	}
	m.requests.WithLabelValues(typeLabel(o.Type), outcome).Inc()
	if outcome == outcomeSlashableLabel {
		rule := string(o.Rule)
		if rule == "" {
			rule = ruleUnknown
		}
		m.refusals.WithLabelValues(rule).Inc()
	}
	m.duration.WithLabelValues(StageTotal).Observe(o.Total.Seconds())
	if o.Commit > 0 {
		m.duration.WithLabelValues(StageCommit).Observe(o.Commit.Seconds())
	}
	if o.Sign > 0 {
		m.duration.WithLabelValues(StageSign).Observe(o.Sign.Seconds())
	}
	if o.HSMFailed {
		m.hsmErrors.Inc()
	}
}

// Rejected counts a signing request the API refused before it reached the
// pipeline (its type is not known then). Use it as
// web3signer.Config.Rejected.
func (m *Metrics) Rejected(outcome string) {
	if outcome == "" {
		outcome = typeUnknown
	}
	m.requests.WithLabelValues(typeUnknown, outcome).Inc()
}

// typeLabel bounds the "type" label: signing types are upper-case
// identifiers; anything else is "other".
func typeLabel(t string) string {
	if t == "" {
		return typeUnknown
	}
	if len(t) > maxTypeLabelLength {
		return typeOther
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return typeOther
		}
	}
	return t
}
