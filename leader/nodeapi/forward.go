package nodeapi

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/pki"
)

// onBehalfOf carries the original caller through one forwarding hop.
const onBehalfOf = "x-regent-on-behalf-of"

// Forwarder sends control-plane writes that reach a follower to the Raft
// leader's API. Only region nodes may forward, and only one hop.
type Forwarder struct {
	// APIAddr maps a region id to its gRPC API address.
	APIAddr map[string]string
	// Dial opens a connection presenting this node's certificate.
	Dial func(addr string) (*grpc.ClientConn, error)

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// client returns a Node client for region id.
func (f *Forwarder) client(id string) (nodepb.NodeClient, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.conns[id]; ok {
		return nodepb.NewNodeClient(c), nil
	}
	addr, ok := f.APIAddr[id]
	if !ok || addr == "" {
		return nil, fmt.Errorf("no API address configured for region %q", id)
	}
	c, err := f.Dial(addr)
	if err != nil {
		return nil, err
	}
	if f.conns == nil {
		f.conns = map[string]*grpc.ClientConn{}
	}
	f.conns[id] = c
	return nodepb.NewNodeClient(c), nil
}

// Close closes the cached connections.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// operator returns the operator a write is made for: the caller itself, or
// the identity a forwarding region vouches for.
func operator(ctx context.Context) (string, error) {
	c, _ := CallerFrom(ctx)
	switch c.Role {
	case pki.RoleOperator:
		return c.Name, nil
	case pki.RoleNode:
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get(onBehalfOf); len(v) == 1 && pki.ValidName(v[0]) {
			return v[0], nil
		}
	}
	return "", status.Errorf(codes.PermissionDenied, "needs an operator certificate, caller is %s %q", c.Role, c.Name)
}

// forwarded reports whether this call already took its one hop.
func forwarded(ctx context.Context) bool {
	c, _ := CallerFrom(ctx)
	return c.Role == pki.RoleNode
}

// toLeader runs call against the current Raft leader on behalf of op.
func (s *Server) toLeader(ctx context.Context, op string, call func(ctx context.Context, c nodepb.NodeClient) error) error {
	if s.Forward == nil || forwarded(ctx) {
		return status.Error(codes.Unavailable, "this region is not the raft leader and cannot forward")
	}
	_, id := s.Raft.LeaderWithID()
	if id == "" {
		return status.Error(codes.Unavailable, "no raft leader known (no quorum?)")
	}
	c, err := s.Forward.client(string(id))
	if err != nil {
		return status.Errorf(codes.Unavailable, "forward to leader %s: %v", id, err)
	}
	return call(metadata.AppendToOutgoingContext(ctx, onBehalfOf, op), c)
}

// isNotLeader reports whether err means "propose on the leader instead".
func isNotLeader(err error) bool { return errors.Is(err, leader.ErrNotLeader) }
