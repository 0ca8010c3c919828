package opsapi

import (
	"bytes"
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/leader"
)

// Audit implements opspb.OperationsServer: records since_seq, at most
// limit (default opspb.DefaultAuditLimit).
func (s *Server) Audit(ctx context.Context, req *opspb.AuditRequest) (*opspb.AuditResponse, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	limit := uint64(req.GetLimit())
	if limit == 0 {
		limit = opspb.DefaultAuditLimit
	}
	out := &opspb.AuditResponse{}
	var chain []failover.AuditRecord
	err := s.view(func(_ *leader.State, fs *failover.State, _ uint64) {
		chain = fs.Audit()
		n, head := fs.AuditHead()
		out.Total, out.HeadHash = uint64(n), head
	})
	if err != nil {
		return nil, err
	}
	for i := req.GetSinceSeq(); i < uint64(len(chain)) && uint64(len(out.Records)) < limit; i++ {
		out.Records = append(out.Records, AuditToProto(chain[i]))
	}
	return out, nil
}

// AuditFile implements opspb.OperationsServer.
func (s *Server) AuditFile(ctx context.Context, _ *opspb.AuditFileRequest) (*opspb.AuditFileResponse, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	out := &opspb.AuditFileResponse{}
	var chain []failover.AuditRecord
	err := s.view(func(_ *leader.State, fs *failover.State, applied uint64) {
		chain = fs.Audit()
		n, head := fs.AuditHead()
		out.Records, out.HeadHash, out.AppliedIndex = uint64(n), head, applied
	})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := failover.WriteAuditFile(&b, chain); err != nil {
		return nil, status.Errorf(codes.Internal, "encode the audit chain: %v", err)
	}
	out.File = b.Bytes()
	return out, nil
}

// view runs fn on the replica with its failover state, or fails with
// FailedPrecondition when the state has none.
func (s *Server) view(fn func(ls *leader.State, fs *failover.State, applied uint64)) error {
	enabled := false
	s.d.FSM.View(func(ls *leader.State, applied uint64) {
		if fs := failover.From(ls); fs != nil {
			enabled = true
			fn(ls, fs, applied)
		}
	})
	if !enabled {
		return status.Error(codes.FailedPrecondition, "this region's state machine runs without the failover extension")
	}
	return nil
}

// AuditToProto converts an audit record to its wire form.
func AuditToProto(r failover.AuditRecord) *failoverpb.AuditRecord {
	p := &failoverpb.AuditRecord{
		Seq: r.Seq, Index: r.Index, UnixNano: r.UnixNano, Actor: r.Actor, Action: r.Action,
		Outcome: failoverpb.Outcome(r.Outcome), Reason: r.Reason, EvidenceDigest: r.EvidenceDigest, Detail: r.Detail,
		HandoverId: r.HandoverID, LeaseHolder: r.LeaseHolder, LeaseEpoch: r.LeaseEpoch, LeaseState: r.LeaseState,
		PrevHash: r.PrevHash, Hash: r.Hash,
	}
	for _, a := range r.Approvals {
		p.Approvals = append(p.Approvals, &failoverpb.Approval{OperatorId: a.OperatorID, Index: a.Index, UnixNano: a.UnixNano})
	}
	return p
}

// AuditFromProto converts a wire audit record back; AuditFromProto of
// AuditToProto(r) hashes like r (empty byte strings and lists become nil,
// which the hash does not distinguish). An outcome other than accepted or
// rejected becomes OutcomeUnknown, which VerifyChain refuses.
func AuditFromProto(p *failoverpb.AuditRecord) failover.AuditRecord {
	r := failover.AuditRecord{
		Seq: p.GetSeq(), Index: p.GetIndex(), UnixNano: p.GetUnixNano(), Actor: p.GetActor(), Action: p.GetAction(),
		Reason: p.GetReason(), Detail: p.GetDetail(), HandoverID: p.GetHandoverId(),
		LeaseHolder: p.GetLeaseHolder(), LeaseEpoch: p.GetLeaseEpoch(), LeaseState: p.GetLeaseState(),
		PrevHash: p.GetPrevHash(), Hash: p.GetHash(),
	}
	switch p.GetOutcome() {
	case failoverpb.Outcome_OUTCOME_ACCEPTED:
		r.Outcome = failover.OutcomeAccepted
	case failoverpb.Outcome_OUTCOME_REJECTED:
		r.Outcome = failover.OutcomeRejected
	}
	if len(p.GetEvidenceDigest()) > 0 {
		r.EvidenceDigest = p.GetEvidenceDigest()
	}
	for _, a := range p.GetApprovals() {
		r.Approvals = append(r.Approvals, failover.Approval{OperatorID: a.GetOperatorId(), Index: a.GetIndex(), UnixNano: a.GetUnixNano()})
	}
	return r
}
