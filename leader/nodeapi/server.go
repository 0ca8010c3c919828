package nodeapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/validator"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/failover/opsapi/limiter"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/raft/pki"
)

// Version is reported in Status.
const Version = "0.1.0"

// Server implements nodepb.NodeServer.
type Server struct {
	nodepb.UnimplementedNodeServer
	NodeID  string
	Region  string
	Raft    *raft.Raft
	FSM     *fsm.FSM[*leader.State]
	Service *leader.Service
	// Forward, when set, sends control-plane writes to the Raft leader.
	Forward *Forwarder
	// Failover, when set, reports the cluster id and operator count from
	// the failover extension of the state (nodeapi does not import it).
	Failover func(*leader.State) (clusterID string, operators uint32)
}

// NewGRPCServer returns a gRPC server with Regent's interceptors (recovery,
// logging, authentication) and srv registered.
func NewGRPCServer(creds credentials.TransportCredentials, log *slog.Logger, srv *Server) *grpc.Server {
	logger := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		log.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	g := grpc.NewServer(
		grpc.Creds(creds),
		grpc.ChainUnaryInterceptor(
			recovery.UnaryServerInterceptor(),
			logging.UnaryServerInterceptor(logger, logging.WithLogOnEvents(logging.FinishCall)),
			authenticate,
			// Per-identity token bucket (region nodes exempt), after
			// authentication so the bucket is the certificate identity.
			ratelimit.UnaryServerInterceptor(limiter.Default()),
			// Requests that implement Validate() error (the operator API's)
			// are checked before any handler: InvalidArgument otherwise.
			validator.UnaryServerInterceptor(validator.WithFailFast()),
		),
	)
	nodepb.RegisterNodeServer(g, srv)
	return g
}

type identityKey struct{}

// Caller is the authenticated identity of a request.
type Caller struct {
	Role pki.Role
	Name string
}

// CallerFrom returns the caller placed in ctx by the auth interceptor.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(identityKey{}).(Caller)
	return c, ok
}

func authenticate(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil, status.Error(codes.Unauthenticated, "a client certificate is required")
	}
	role, name, err := pki.Identity(ti.State.PeerCertificates[0])
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "client certificate carries no Regent identity: %v", err)
	}
	return next(context.WithValue(ctx, identityKey{}, Caller{Role: role, Name: name}), req)
}

// Status implements nodepb.NodeServer.
func (s *Server) Status(ctx context.Context, _ *nodepb.StatusRequest) (*nodepb.StatusResponse, error) {
	stats := s.Raft.Stats()
	addr, id := s.Raft.LeaderWithID()
	resp := &nodepb.StatusResponse{
		NodeId:        s.NodeID,
		Region:        s.Region,
		RaftState:     s.Raft.State().String(),
		Term:          parseUint(stats["term"]),
		CommitIndex:   s.Raft.CommitIndex(),
		LastLogIndex:  s.Raft.LastIndex(),
		LeaderId:      string(id),
		LeaderAddress: string(addr),
		LastContactMs: -1,
		Version:       Version,
	}
	if lc := s.Raft.LastContact(); !lc.IsZero() && s.Raft.State() != raft.Leader {
		resp.LastContactMs = time.Since(lc).Milliseconds()
	}
	if h := s.FSM.Halted(); h != nil {
		resp.FsmHalted = h.Error()
	}
	// Raft's applied index counts every entry, including the no-ops a new
	// leader writes, which never reach the state machine.
	resp.AppliedIndex = s.Raft.AppliedIndex()
	s.FSM.View(func(st *leader.State, _ uint64) {
		l := st.Lease()
		resp.Lease = &nodepb.Lease{
			Holder: l.Holder, Epoch: l.Epoch, State: l.State.String(), SinceIndex: l.SinceIndex,
			SinceUnixNano: l.SinceUnixNano, HeldHere: l.State == leader.LeaseActive && l.Holder == s.NodeID,
		}
		if l.State == leader.LeaseFenced {
			resp.Lease.HighWater = l.HighWater.String()
		}
		resp.KeyCount = uint64(st.KeyCount())
		for _, m := range st.Members() {
			resp.Members = append(resp.Members, &nodepb.Member{Id: m.ID, Address: m.Address, Voter: m.Voter})
		}
		resp.RecordsAccepted, resp.RecordsRefused = st.Counts()
		if s.Failover != nil {
			resp.ClusterId, resp.Operators = s.Failover(st)
		}
	})
	return resp, nil
}

// Code maps the leader package's errors to gRPC status codes.
func Code(err error) codes.Code {
	switch {
	case errors.Is(err, leader.ErrNotHolder), errors.Is(err, leader.ErrStaleLease):
		return codes.FailedPrecondition
	case errors.Is(err, leader.ErrInvalidInput), errors.Is(err, leader.ErrInvalidKey),
		errors.Is(err, leader.ErrKeyConflict), errors.Is(err, fsm.ErrMalformedEntry):
		return codes.InvalidArgument
	case errors.Is(err, leader.ErrNotLeader), errors.Is(err, leader.ErrUnavailable),
		errors.Is(err, leader.ErrMaybeCommitted), errors.Is(err, leader.ErrClosed):
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

func parseUint(s string) uint64 {
	var v uint64
	_, _ = fmt.Sscan(s, &v)
	return v
}
