package privval

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metric names.
const (
	RequestsMetric        = "regent_privval_requests_total"
	RequestSecondsMetric  = "regent_privval_request_seconds"
	ConnectionsMetric     = "regent_privval_connections_total"
	ConnectedMetric       = "regent_privval_connected"
	TimestampReusedMetric = "regent_privval_timestamp_reused_total"
)

// Request type labels.
const (
	ReqPubKey       = "pub_key"
	ReqSignVote     = "sign_vote"
	ReqSignProposal = "sign_proposal"
	ReqPing         = "ping"
	ReqSignBytes    = "sign_bytes"
	ReqUnknown      = "unknown"
)

// Connection result labels.
const (
	ConnConnected      = "connected"
	ConnDialFailed     = "dial_failed"
	ConnHandshake      = "handshake_failed"
	ConnNotTaken       = "not_taken"
	ConnNodeNotAllowed = "node_not_allowed"
	ConnYielded        = "yielded"
	ConnReleased       = "released"
	ConnClosed         = "closed"
)

// Metrics counts what signers do. One Metrics may serve several signers
// (series are labelled by chain id); it is safe for concurrent use.
type Metrics struct {
	requests    *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	connections *prometheus.CounterVec
	connected   *prometheus.GaugeVec
	reused      *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (required; no
// global registry is used). Registering twice on one registry fails with an
// error wrapping ErrConfig.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("%w: metrics need a registry", ErrConfig)
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RequestsMetric,
			Help: "Privval requests served, by chain, request type (pub_key, sign_vote, sign_proposal, ping, sign_bytes, unknown) and outcome (ok or the refusal reason).",
		}, []string{"chain_id", "type", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    RequestSecondsMetric,
			Help:    "Time to answer a privval request, by chain and request type.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"chain_id", "type"}),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ConnectionsMetric,
			Help: "Privval connection attempts and their ends, by chain and result (connected, dial_failed, handshake_failed, not_taken: the node kept the connection queued past HandshakeTimeout, node_not_allowed, yielded, released: closed because the region can no longer sign, closed).",
		}, []string{"chain_id", "result"}),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: ConnectedMetric,
			Help: "1 while a signer holds an authenticated connection to its node.",
		}, []string{"chain_id"}),
		reused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: TimestampReusedMetric,
			Help: "Votes and proposals answered with an earlier timestamp and signature (a re-sign at the same height/round/step that differed only in timestamp).",
		}, []string{"chain_id"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.seconds, m.connections, m.connected, m.reused} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("%w: metrics already registered: %w", ErrConfig, err)
			}
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return m, nil
}

func (m *Metrics) request(chain, typ, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(chain, typ, outcome).Inc()
	m.seconds.WithLabelValues(chain, typ).Observe(d.Seconds())
}

func (m *Metrics) connection(chain, result string) {
	if m == nil {
		return
	}
	m.connections.WithLabelValues(chain, result).Inc()
}

func (m *Metrics) setConnected(chain string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.connected.WithLabelValues(chain).Set(v)
}

func (m *Metrics) timestampReused(chain string) {
	if m == nil {
		return
	}
	m.reused.WithLabelValues(chain).Inc()
}

// Requests returns the count of requests of a type with an outcome, for
// tests and status pages.
func (m *Metrics) Requests(chain, typ, outcome string) float64 {
	return counterValue(m.requests.WithLabelValues(chain, typ, outcome))
}

// Connections returns the count of connection events with a result.
func (m *Metrics) Connections(chain, result string) float64 {
	return counterValue(m.connections.WithLabelValues(chain, result))
}

// TimestampsReused returns how many answers reused an earlier timestamp.
func (m *Metrics) TimestampsReused(chain string) float64 {
	return counterValue(m.reused.WithLabelValues(chain))
}

func counterValue(c prometheus.Counter) float64 {
	var out dto.Metric
	if err := c.Write(&out); err != nil || out.Counter == nil {
		return 0
	}
	return out.Counter.GetValue()
}
