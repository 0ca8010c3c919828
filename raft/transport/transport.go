package transport

import (
	"github.com/hashicorp/raft"
)

// New builds a raft.NetworkTransport over a mutual-TLS StreamLayer (see
// NewStreamLayer for what is checked and bound). Closing the returned
// transport (raft.Raft.Shutdown does it) closes the stream layer. Handshake
// failures are counted in cfg.Metrics: pass one made by NewMetrics with your
// registry to export them.
func New(cfg Config) (*raft.NetworkTransport, error) {
	c, err := cfg.check()
	if err != nil {
		return nil, err
	}
	// The stream layer shares the checked defaults (notably Metrics).
	stream, err := NewStreamLayer(c.Config)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: c.MaxPool,
		Timeout: c.Timeout,
		Logger:  c.Logger,
	}), nil
}
