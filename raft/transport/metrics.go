package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/regent-signer/regent/raft/pki"
)

// HandshakeFailuresMetric is the name of the handshake-failure counter.
const HandshakeFailuresMetric = "regent_raft_tls_handshake_failures_total"

// Label values of HandshakeFailuresMetric.
const (
	// DirectionInbound: a peer dialled this node.
	DirectionInbound = "inbound"
	// DirectionOutbound: this node dialled a peer.
	DirectionOutbound = "outbound"

	// ReasonIdentity: the peer's certificate verified but its identity was
	// missing, malformed or of a role other than node.
	ReasonIdentity = "identity"
	// ReasonCertificate: the peer's certificate did not verify (unknown CA,
	// expired, wrong host name...).
	ReasonCertificate = "certificate"
	// ReasonTimeout: the handshake did not finish in time.
	ReasonTimeout = "timeout"
	// ReasonOverload: too many inbound handshakes were already running.
	ReasonOverload = "overload"
	// ReasonOther: anything else, including the peer refusing this node's
	// certificate (a TLS alert from the peer) and connections closed
	// mid-handshake (port scanners, TCP health checks).
	ReasonOther = "other"
)

var (
	directions = []string{DirectionInbound, DirectionOutbound}
	reasons    = []string{ReasonIdentity, ReasonCertificate, ReasonTimeout, ReasonOverload, ReasonOther}
)

// Metrics counts handshake failures. One Metrics may be shared by several
// stream layers (for example across restarts in one process); it is safe for
// concurrent use.
type Metrics struct {
	failures *prometheus.CounterVec
	total    atomic.Uint64
}

// NewMetrics creates the handshake-failure counter and registers it on reg.
// A nil reg leaves it unregistered (counts are still kept and readable with
// HandshakeFailures). If reg already holds an identical collector, that one
// is reused. Every direction/reason series starts at zero so alerts can use
// rate() from the first scrape.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: HandshakeFailuresMetric,
		Help: "Raft mutual-TLS handshakes that failed, by direction (inbound, outbound) and reason.",
	}, []string{"direction", "reason"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("%w: registering %s: %w", ErrBadConfig, HandshakeFailuresMetric, err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("%w: %s already registered as %T", ErrBadConfig, HandshakeFailuresMetric, are.ExistingCollector)
			}
			vec = existing
		}
	}
	for _, d := range directions {
		for _, r := range reasons {
			vec.WithLabelValues(d, r)
		}
	}
	return &Metrics{failures: vec}, nil
}

// HandshakeFailures returns how many handshake failures this Metrics value
// has counted (all directions and reasons). It is for tests and status
// pages; Prometheus reads the counter itself.
func (m *Metrics) HandshakeFailures() uint64 { return m.total.Load() }

func (m *Metrics) handshakeFailed(direction, reason string) {
	m.failures.WithLabelValues(direction, reason).Inc()
	m.total.Add(1)
}

// classify maps a handshake error to a reason label.
func classify(err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		verifyErr *tls.CertificateVerificationError
		netErr    net.Error
	)
	switch {
	case errors.Is(err, errOverload):
		return ReasonOverload
	case errors.Is(err, pki.ErrWrongRole), errors.Is(err, pki.ErrNoIdentity), errors.Is(err, pki.ErrBadIdentity):
		return ReasonIdentity
	case errors.Is(err, pki.ErrUntrusted), errors.As(err, &unknownCA), errors.As(err, &invalid),
		errors.As(err, &hostname), errors.As(err, &verifyErr):
		return ReasonCertificate
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout
	default:
		return ReasonOther
	}
}

// errOverload marks connections refused because too many handshakes run.
var errOverload = errors.New("too many pending handshakes")
