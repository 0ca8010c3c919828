package opsapi

import (
	"context"
	"errors"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/leader"
)

// Members implements opspb.OperationsServer.
func (s *Server) Members(ctx context.Context, _ *opspb.MembersRequest) (*opspb.MembersResponse, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	return s.members()
}

func (s *Server) members() (*opspb.MembersResponse, error) {
	if s.d.Raft == nil {
		return nil, status.Error(codes.Unavailable, "this region serves no Raft membership")
	}
	f := s.d.Raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, status.Errorf(codes.Unavailable, "read the raft configuration: %v", err)
	}
	_, leaderID := s.d.Raft.LeaderWithID()
	out := &opspb.MembersResponse{LeaderId: string(leaderID), ConfigurationIndex: f.Index()}
	for _, srv := range f.Configuration().Servers {
		out.Members = append(out.Members, &opspb.Member{Id: string(srv.ID), Address: string(srv.Address),
			Suffrage: suffrage(srv.Suffrage), Leader: srv.ID == leaderID})
	}
	return out, nil
}

func suffrage(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	case raft.Staging:
		return "staging"
	default:
		return "unknown"
	}
}

// onLeader refuses a membership change on a region that is not the Raft
// leader, naming the leader.
func (s *Server) onLeader() error {
	if s.d.Raft == nil {
		return status.Error(codes.Unavailable, "this region serves no Raft membership")
	}
	if s.d.Raft.State() != raft.Leader {
		_, id := s.d.Raft.LeaderWithID()
		if id == "" {
			return status.Error(codes.Unavailable, "no raft leader known (no quorum?)")
		}
		return status.Errorf(codes.FailedPrecondition, "%s is not the raft leader; send membership changes to %s", s.d.NodeID, id)
	}
	return nil
}

func membershipError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return status.Errorf(codes.FailedPrecondition, "lost raft leadership: %v", err)
	case errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown):
		return status.Errorf(codes.Unavailable, "membership change not taken (nothing changed): %v", err)
	default:
		// ErrLeadershipLost and friends: the change may have been written.
		return status.Errorf(codes.Unavailable, "membership change may or may not have committed: %v; check `members list`", err)
	}
}

// AddMember implements opspb.OperationsServer (operator, on the leader).
// Membership changes are not multi-signed in this version.
func (s *Server) AddMember(ctx context.Context, req *opspb.AddMemberRequest) (*opspb.MembersResponse, error) {
	c, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.onLeader(); err != nil {
		return nil, err
	}
	id, addr := raft.ServerID(req.GetId()), raft.ServerAddress(req.GetAddress())
	var f raft.IndexFuture
	if req.GetNonvoter() {
		f = s.d.Raft.AddNonvoter(id, addr, 0, s.d.MembershipTimeout)
	} else {
		f = s.d.Raft.AddVoter(id, addr, 0, s.d.MembershipTimeout)
	}
	if err := f.Error(); err != nil {
		s.log.Warn("member add failed", "caller", c.Name, "member", id, "address", addr, "err", err)
		return nil, membershipError(err)
	}
	s.log.Warn("raft member added (not multi-signed)", "caller", c.Name, "member", id, "address", addr, "nonvoter", req.GetNonvoter(), "index", f.Index())
	return s.members()
}

// RemoveMember implements opspb.OperationsServer (operator, on the
// leader). It refuses the lease holder and an open handover's target:
// hand the lease over, or cancel the handover, first.
func (s *Server) RemoveMember(ctx context.Context, req *opspb.RemoveMemberRequest) (*opspb.MembersResponse, error) {
	c, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.onLeader(); err != nil {
		return nil, err
	}
	id := req.GetId()
	var refuse error
	s.d.FSM.View(func(ls *leader.State, _ uint64) {
		if l := ls.Lease(); l.Holder == id && l.State != leader.LeaseVacant {
			refuse = status.Errorf(codes.FailedPrecondition, "%s holds the signing lease (%s at epoch %d): hand it over before removing the region", id, l.State, l.Epoch)
			return
		}
		if fs := failover.From(ls); fs != nil {
			if h, ok := fs.OpenHandover(); ok && h.To == id {
				refuse = status.Errorf(codes.FailedPrecondition, "%s is the target of open handover %d: cancel or complete it first", id, h.ID)
			}
		}
	})
	if refuse != nil {
		return nil, refuse
	}
	cur, err := s.members()
	if err != nil {
		return nil, err
	}
	known := false
	for _, m := range cur.Members {
		known = known || m.Id == id
	}
	if !known {
		return nil, status.Errorf(codes.NotFound, "%s is not a raft member", id)
	}
	f := s.d.Raft.RemoveServer(raft.ServerID(id), 0, s.d.MembershipTimeout)
	if err := f.Error(); err != nil {
		s.log.Warn("member remove failed", "caller", c.Name, "member", id, "err", err)
		return nil, membershipError(err)
	}
	s.log.Warn("raft member removed (not multi-signed)", "caller", c.Name, "member", id, "index", f.Index())
	return s.members()
}
