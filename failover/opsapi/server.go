package opsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/leader/nodeapi"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/bls"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrConfig: Deps lacks a required field.
	ErrConfig = errors.New("opsapi: invalid deps")
	// ErrKeyDuplicate, ErrKeystore and ErrKeyPending may be wrapped by a
	// KeyImporter so ImportKeystore answers AlreadyExists, InvalidArgument
	// and Unavailable (registered, not yet held here) instead of
	// FailedPrecondition.
	ErrKeyDuplicate = errors.New("opsapi: key already imported")
	ErrKeystore     = errors.New("opsapi: bad keystore or password")
	ErrKeyPending   = errors.New("opsapi: key registered but not yet held by this region")
	// ErrSigningNotConfigured may be returned by a KeyImporter that stands
	// in for a signing side not (yet) running: ImportKeystore then answers
	// FailedPrecondition "signing is not configured on this region", as
	// with a nil Deps.Keys.
	ErrSigningNotConfigured = errors.New("opsapi: signing is not configured on this region")
)

// Proposer writes one command through Raft and waits until this region
// applied it: leader.Service.Propose. Its contract is leader.Service's: a
// nil error means committed and accepted; errors wrap leader.ErrRejected
// (committed, refused), leader.ErrMaybeCommitted (fate unknown),
// leader.ErrNotLeader / leader.ErrUnavailable / leader.ErrClosed (nothing
// written). On the leader the response carries the apply value; a command
// forwarded to the leader comes back with its index but no value.
type Proposer interface {
	Propose(ctx context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error)
}

// KeyImporter imports an EIP-2335 keystore: keysync.Manager implements it.
// It is called from gRPC handler goroutines, concurrently, with the
// request's context. See ErrKeyDuplicate for how its errors map.
type KeyImporter interface {
	ImportKeystore(ctx context.Context, keystoreJSON []byte, password string) (bls.PublicKey, error)
}

// Deps are what the operator API needs from its region.
type Deps struct {
	// NodeID is this region's node id. Required.
	NodeID string
	// Raft is this region's Raft node, for Members/AddMember/RemoveMember.
	// Nil answers those Unavailable.
	Raft *raft.Raft
	// FSM is this region's replica (the failover state is its extension).
	// Required.
	FSM *fsm.FSM[*leader.State]
	// Proposer proposes and forwards to the Raft leader. Required.
	Proposer Proposer
	// Keys imports keystores; nil when this region does not sign.
	Keys KeyImporter
	// Logger nil discards.
	Logger *slog.Logger
	// OutcomeWait bounds how long Submit waits for this region to apply a
	// command the leader refused, to read its audit record; zero means 5s.
	OutcomeWait time.Duration
	// MembershipTimeout bounds one Raft membership change; zero means 10s.
	MembershipTimeout time.Duration
}

// Server implements opspb.OperationsServer.
type Server struct {
	opspb.UnimplementedOperationsServer
	d   Deps
	log *slog.Logger
}

// NewServer checks d and returns the server.
func NewServer(d Deps) (*Server, error) {
	if d.NodeID == "" || d.FSM == nil || d.Proposer == nil {
		return nil, fmt.Errorf("%w: NodeID, FSM and Proposer are required", ErrConfig)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.OutcomeWait <= 0 {
		d.OutcomeWait = 5 * time.Second
	}
	if d.MembershipTimeout <= 0 {
		d.MembershipTimeout = 10 * time.Second
	}
	return &Server{d: d, log: d.Logger.With("region", d.NodeID)}, nil
}

// Register serves the operator API on g, which must be a server built by
// leader/nodeapi.NewGRPCServer (its interceptors authenticate callers;
// without them every call is refused as unauthenticated).
func Register(g *grpc.Server, d Deps) error {
	s, err := NewServer(d)
	if err != nil {
		return err
	}
	opspb.RegisterOperationsServer(g, s)
	return nil
}

// caller returns the authenticated caller, or Unauthenticated.
func caller(ctx context.Context) (nodeapi.Caller, error) {
	c, ok := nodeapi.CallerFrom(ctx)
	if !ok || c.Role == pki.RoleUnknown {
		return nodeapi.Caller{}, status.Error(codes.Unauthenticated, "no authenticated caller (serve the operator API on nodeapi.NewGRPCServer)")
	}
	return c, nil
}

// operator returns the caller if it holds an operator certificate.
func operator(ctx context.Context) (nodeapi.Caller, error) {
	c, err := caller(ctx)
	if err != nil {
		return c, err
	}
	if c.Role != pki.RoleOperator {
		return c, status.Errorf(codes.PermissionDenied, "needs an operator certificate, caller is %s %q", c.Role, c.Name)
	}
	return c, nil
}

// outcome classifies a Proposer result.
type outcome int

const (
	outcomeUnknown outcome = iota
	outcomeAccepted
	outcomeRefused
	outcomeUnavailable
)

func classify(resp fsm.Response, err error) outcome {
	switch {
	case err == nil:
		return outcomeAccepted
	case errors.Is(err, leader.ErrMaybeCommitted):
		return outcomeUnknown
	case errors.Is(err, leader.ErrRejected), resp.Err != nil && resp.Index != 0:
		return outcomeRefused
	default:
		return outcomeUnavailable
	}
}

// unavailable is the gRPC error of a write that did not go through.
func unavailable(o outcome, err error) error {
	if o == outcomeUnknown {
		return status.Errorf(codes.Unavailable, "the command may or may not have committed (%v); read the audit chain before retrying — a signed command submitted again is refused as a replay if the first one committed", err)
	}
	return status.Errorf(codes.Unavailable, "the replicated log cannot take the command now (no quorum or no leader reachable): %v", err)
}

func leaseProto(l leader.Lease) *opspb.Lease {
	p := &opspb.Lease{Holder: l.Holder, Epoch: l.Epoch, State: l.State.String(), SinceIndex: l.SinceIndex,
		SinceUnixNano: l.SinceUnixNano, FenceReason: l.FenceReason}
	if l.State == leader.LeaseFenced {
		p.HighWater = l.HighWater.String()
	}
	return p
}
