package nodeapi

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/commandpb"
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

// forwardable are the commands a region may forward to the leader.
var forwardable = map[commandpb.CommandType]bool{
	commandpb.CommandType_RECORD_SIGNATURES:  true,
	commandpb.CommandType_ADD_KEY:            true,
	commandpb.CommandType_DISABLE_KEY:        true,
	commandpb.CommandType_REGISTER_REGION:    true,
	commandpb.CommandType_IMPORT_INTERCHANGE: true,
	commandpb.CommandType_NOOP:               true, // read barrier of a follower
	// Failover protocol: operator-signed commands (verified in Apply),
	// finality evidence, heartbeats, DR takeovers, one-time bootstrap.
	commandpb.CommandType_OPERATOR_COMMAND:    true,
	commandpb.CommandType_CONFIRM_FINALITY:    true,
	commandpb.CommandType_LEASE_HEARTBEAT:     true,
	commandpb.CommandType_DR_TAKEOVER:         true,
	commandpb.CommandType_BOOTSTRAP_OPERATORS: true,
}

// Propose implements nodepb.NodeServer: a region forwards one command. The
// calling region's certificate name becomes the envelope's proposer.
func (s *Server) Propose(ctx context.Context, req *nodepb.ProposeRequest) (*nodepb.ProposeResponse, error) {
	c, _ := CallerFrom(ctx)
	if c.Role != pki.RoleNode {
		return nil, status.Errorf(codes.PermissionDenied, "Propose is for region nodes, caller is %s %q", c.Role, c.Name)
	}
	if !forwardable[req.Type] {
		return nil, status.Errorf(codes.InvalidArgument, "%v cannot be forwarded", req.Type)
	}
	resp, err := s.Service.ProposeRaw(ctx, req.Type, req.Payload, c.Name)
	switch {
	case err == nil:
		return &nodepb.ProposeResponse{Index: resp.Index}, nil
	case resp.Index != 0:
		// Committed and applied, but the state machine refused it.
		return nil, status.Errorf(codes.FailedPrecondition, "rejected at index %d: %v", resp.Index, err)
	case errors.Is(err, leader.ErrMaybeCommitted):
		return nil, status.Error(codes.Aborted, err.Error())
	default:
		return nil, status.Error(codes.Unavailable, err.Error())
	}
}

// Forward implements leader.Forwarder over the leader's Propose RPC.
func (f *Forwarder) Forward(ctx context.Context, leaderID func() string, t commandpb.CommandType, payload []byte) (uint64, error) {
	id := leaderID()
	if id == "" {
		return 0, fmt.Errorf("%w: no raft leader known", leader.ErrUnavailable)
	}
	c, err := f.client(id)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", leader.ErrUnavailable, err)
	}
	resp, err := c.Propose(ctx, &nodepb.ProposeRequest{Type: t, Payload: payload})
	if err == nil {
		return resp.Index, nil
	}
	switch status.Code(err) {
	case codes.FailedPrecondition:
		return 0, fmt.Errorf("%w: %s", leader.ErrRejected, status.Convert(err).Message())
	case codes.PermissionDenied, codes.InvalidArgument:
		return 0, fmt.Errorf("%w: leader %s refused the forward: %s", leader.ErrUnavailable, id, status.Convert(err).Message())
	default:
		// Sent, fate unknown (or the leader itself could not tell).
		return 0, fmt.Errorf("%w: forwarded to %s: %v", leader.ErrMaybeCommitted, id, err)
	}
}

// LeaderForwarder adapts a Forwarder to leader.Forwarder for one node.
type LeaderForwarder struct {
	F    *Forwarder
	Raft interface {
		LeaderWithID() (raft.ServerAddress, raft.ServerID)
	}
}

// Forward implements leader.Forwarder.
func (l LeaderForwarder) Forward(ctx context.Context, t commandpb.CommandType, payload []byte) (uint64, error) {
	return l.F.Forward(ctx, func() string { _, id := l.Raft.LeaderWithID(); return string(id) }, t, payload)
}

// operatorCommands are what OperatorPropose accepts.
var operatorCommands = map[commandpb.CommandType]bool{
	// A command signed by operators; the state machine verifies the
	// signatures against the replicated operator registry.
	commandpb.CommandType_OPERATOR_COMMAND: true,
	// Unsigned scaffolding, refused by the state machine once the operator
	// registry is bootstrapped.
	commandpb.CommandType_SET_POLICY:   true,
	commandpb.CommandType_APPROVE_EXIT: true,
	commandpb.CommandType_DISABLE_KEY:  true,
}

// OperatorPropose implements nodepb.NodeServer.
func (s *Server) OperatorPropose(ctx context.Context, req *nodepb.ProposeRequest) (*nodepb.ProposeResponse, error) {
	op, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	if !operatorCommands[req.Type] {
		return nil, status.Errorf(codes.InvalidArgument, "%v is not an operator command here", req.Type)
	}
	if s.Raft.State() != raft.Leader {
		var out *nodepb.ProposeResponse
		err := s.toLeader(ctx, op, func(ctx context.Context, nc nodepb.NodeClient) error {
			var e error
			out, e = nc.OperatorPropose(ctx, req)
			return e
		})
		return out, err
	}
	resp, err := s.Service.ProposeRaw(ctx, req.Type, req.Payload, s.NodeID)
	switch {
	case err == nil:
		return &nodepb.ProposeResponse{Index: resp.Index}, nil
	case resp.Index != 0:
		return nil, status.Errorf(codes.FailedPrecondition, "rejected at index %d: %v", resp.Index, err)
	default:
		return nil, status.Error(Code(err), err.Error())
	}
}
