// Package client dials a region's gRPC API over mutual TLS for regentctl,
// the demo and tests.
package client

import (
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/regent-signer/regent/raft/pki"
)

// Dial returns a connection to addr (host:port) that presents mat's
// certificate and accepts only a region node certificate valid for host.
// The connection is lazy: errors surface on the first call.
func Dial(mat *pki.Material, addr string) (*grpc.ClientConn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("client: address %q: %w", addr, err)
	}
	tc, err := mat.ClientConfig(host)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
}
