package finality

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the watcher's Prometheus metrics. Label "chain" is the chain's
// name (EthChain.Name or its default, CometChain.ChainID); "endpoint" is a
// configured base URL, so label cardinality is bounded by the config.
//
//	regent_finality_polls_total{chain}                           rounds run
//	regent_finality_endpoint_failures_total{chain,endpoint,reason} unusable answers
//	regent_finality_no_quorum_total{chain}                       rounds without a quorum
//	regent_finality_conflicts_total{chain}                       rounds refused for a disagreement
//	regent_finality_agreed_epoch{chain}                          last agreed finalized epoch (Ethereum)
//	regent_finality_agreed_height{chain}                         last agreed height (CometBFT)
//	regent_finality_agreeing_endpoints{chain}                    endpoints behind the last agreement
//
// reason is one of: unreachable, http_status, too_large, malformed,
// rpc_error, wrong_network, optimistic, catching_up, inconsistent,
// implausible, other.
type Metrics struct {
	Polls            *prometheus.CounterVec
	EndpointFailures *prometheus.CounterVec
	NoQuorum         *prometheus.CounterVec
	Conflicts        *prometheus.CounterVec
	AgreedEpoch      *prometheus.GaugeVec
	AgreedHeight     *prometheus.GaugeVec
	AgreeingCount    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regent_finality_polls_total", Help: "Finality rounds run, per chain.",
		}, []string{"chain"}),
		EndpointFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regent_finality_endpoint_failures_total", Help: "Endpoint answers not counted towards a quorum, by reason.",
		}, []string{"chain", "endpoint", "reason"}),
		NoQuorum: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regent_finality_no_quorum_total", Help: "Finality rounds in which fewer than a quorum of endpoints answered usably.",
		}, []string{"chain"}),
		Conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regent_finality_conflicts_total", Help: "Finality rounds refused because endpoints disagreed on the block at one epoch or height.",
		}, []string{"chain"}),
		AgreedEpoch: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regent_finality_agreed_epoch", Help: "Last finalized epoch a quorum of beacon nodes agreed on.",
		}, []string{"chain"}),
		AgreedHeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regent_finality_agreed_height", Help: "Last CometBFT height a quorum of nodes agreed on.",
		}, []string{"chain"}),
		AgreeingCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regent_finality_agreeing_endpoints", Help: "Endpoints behind the last agreed finality.",
		}, []string{"chain"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.Polls, m.EndpointFailures, m.NoQuorum, m.Conflicts, m.AgreedEpoch, m.AgreedHeight, m.AgreeingCount} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("%w: registering metrics: %v", ErrInvalidConfig, err)
		}
	}
	return m, nil
}

// reasonOf maps an endpoint error to its metric label.
func reasonOf(err error) string {
	for _, r := range []struct {
		err   error
		label string
	}{
		{ErrWrongNetwork, "wrong_network"},
		{ErrOptimistic, "optimistic"},
		{ErrCatchingUp, "catching_up"},
		{ErrInconsistent, "inconsistent"},
		{ErrImplausible, "implausible"},
		{ErrResponseTooLarge, "too_large"},
		{ErrRPCError, "rpc_error"},
		{ErrMalformed, "malformed"},
		{ErrHTTPStatus, "http_status"},
		{ErrUnreachable, "unreachable"},
	} {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "other"
}
