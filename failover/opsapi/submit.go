package opsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

// pollInterval spaces the reads of the replica while Submit waits for a
// refused, forwarded command's audit record.
const pollInterval = 10 * time.Millisecond

// Submit implements opspb.OperationsServer.
//
// The command's outcome is read from the apply value on the leader, or,
// for a command this region forwarded, from the audit record its entry
// wrote: the record at the entry's index (accepted), or the first rejected
// record after this region's applied index at submission whose evidence
// digest is the command's payload digest (refused; the leader does not
// return the index of a refused forward). Two identical signed commands
// submitted at once are indistinguishable there; both are then answered
// with a rejected record of that payload, and at most one of them can
// have been accepted (nonce replay).
func (s *Server) Submit(ctx context.Context, req *opspb.SubmitRequest) (*opspb.SubmitResponse, error) {
	c, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	sc, err := opsig.DecodeSigned(req.GetSignedCommand())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "signed_command: %v", err)
	}
	body, err := opsig.DecodeBody(sc.GetBody())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "signed_command body: %v", err)
	}
	// Propose encodes the message with proto.Marshal: the audit record's
	// evidence digest is SHA-256 of exactly these bytes.
	payload, err := proto.Marshal(sc)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "signed_command: %v", err)
	}
	digest := sha256.Sum256(payload)
	var before uint64
	enabled := false
	s.d.FSM.View(func(ls *leader.State, applied uint64) {
		before, enabled = applied, failover.From(ls) != nil
	})
	if !enabled {
		return nil, status.Error(codes.FailedPrecondition, "this region's state machine runs without the failover extension")
	}
	resp, perr := s.d.Proposer.Propose(ctx, commandpb.CommandType_OPERATOR_COMMAND, sc)
	o := classify(resp, perr)
	log := s.log.With("operator", body.GetOperatorId(), "caller", c.Name, "signatures", len(sc.GetSignatures()))
	if o == outcomeUnknown || o == outcomeUnavailable {
		log.Warn("operator command not committed", "index", resp.Index, "err", perr)
		return nil, unavailable(o, perr)
	}
	out := s.result(ctx, resp, o, perr, digest[:], before)
	log.Info("operator command", "action", out.Action, "accepted", out.Accepted, "index", out.Index,
		"audit_seq", out.AuditSeq, "handover", out.HandoverId, "reason", out.Reason)
	return out, nil
}

// result builds the response of a committed command (accepted or refused).
func (s *Server) result(ctx context.Context, resp fsm.Response, o outcome, perr error, digest []byte, before uint64) *opspb.SubmitResponse {
	if r, ok := resp.Value.(failover.Result); ok {
		out := &opspb.SubmitResponse{Accepted: r.Accepted, Index: r.Index, AuditSeq: r.AuditSeq, Action: r.Action, Lease: leaseProto(r.Lease)}
		if r.Handover != nil {
			out.HandoverId = r.Handover.ID
		}
		if !r.Accepted {
			out.Reason = r.Refusal().Error()
		}
		return out
	}
	var rec failover.AuditRecord
	found := false
	if resp.Index != 0 {
		rec, found = s.recordAt(resp.Index, digest)
	} else if o == outcomeRefused {
		rec, found = s.waitRejected(ctx, digest, before)
	}
	out := &opspb.SubmitResponse{Accepted: o == outcomeAccepted, Index: resp.Index}
	if found {
		out.Accepted = rec.Outcome == failover.OutcomeAccepted
		out.Index, out.AuditSeq, out.Action, out.HandoverId = rec.Index, rec.Seq, rec.Action, rec.HandoverID
		if !out.Accepted {
			out.Reason = rec.Reason
		}
	}
	if !out.Accepted && out.Reason == "" {
		if perr != nil {
			out.Reason = perr.Error()
		} else {
			out.Reason = "refused (no audit record found on this region)"
		}
	}
	s.d.FSM.View(func(ls *leader.State, _ uint64) { out.Lease = leaseProto(ls.Lease()) })
	return out
}

// recordAt returns the command's own audit record at index: the first
// record of that entry whose evidence digest matches.
func (s *Server) recordAt(index uint64, digest []byte) (rec failover.AuditRecord, ok bool) {
	s.d.FSM.View(func(ls *leader.State, _ uint64) {
		fs := failover.From(ls)
		if fs == nil {
			return
		}
		for _, r := range fs.AuditAt(index) {
			if bytes.Equal(r.EvidenceDigest, digest) {
				rec, ok = r, true
				return
			}
		}
	})
	return rec, ok
}

// waitRejected waits, up to OutcomeWait, for this region to apply a
// rejected record of digest written after index before.
func (s *Server) waitRejected(ctx context.Context, digest []byte, before uint64) (failover.AuditRecord, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.d.OutcomeWait)
	defer cancel()
	next := before + 1
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		var rec failover.AuditRecord
		found := false
		s.d.FSM.View(func(ls *leader.State, applied uint64) {
			fs := failover.From(ls)
			if fs == nil {
				return
			}
			for ; next <= applied && !found; next++ {
				for _, r := range fs.AuditAt(next) {
					if r.Outcome == failover.OutcomeRejected && bytes.Equal(r.EvidenceDigest, digest) {
						rec, found = r, true
						break
					}
				}
			}
		})
		if found {
			return rec, true
		}
		select {
		case <-ctx.Done():
			return failover.AuditRecord{}, false
		case <-t.C:
		}
	}
}
