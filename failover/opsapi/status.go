package opsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/slashing/eth"
)

// Status implements opspb.OperationsServer.
func (s *Server) Status(ctx context.Context, _ *opspb.StatusRequest) (*opspb.StatusResponse, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	out := &opspb.StatusResponse{NodeId: s.d.NodeID}
	var err error
	s.d.FSM.View(func(ls *leader.State, applied uint64) {
		out.AppliedIndex = applied
		out.Lease = leaseProto(ls.Lease())
		fs := failover.From(ls)
		if fs == nil {
			err = status.Error(codes.FailedPrecondition, "this region's state machine runs without the failover extension")
			return
		}
		fillStatus(out, ls, fs)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fillStatus copies the failover state into out. It runs inside View.
func fillStatus(out *opspb.StatusResponse, ls *leader.State, fs *failover.State) {
	out.ClusterId = fs.ClusterID()
	out.Bootstrapped = fs.Bootstrapped()
	ops := fs.Operators()
	for _, o := range ops {
		d := sha256.Sum256(o.PublicKey)
		out.Operators = append(out.Operators, &opspb.OperatorInfo{Id: o.ID, Role: RoleName(o.Role), PublicKey: o.PublicKey,
			Fingerprint: hex.EncodeToString(d[:8]), AddedIndex: o.AddedIndex})
	}
	if fs.Bootstrapped() {
		for _, a := range failover.Actions() {
			eligible := uint32(0)
			for _, o := range ops {
				if failover.Permits(o.Role, a) {
					eligible++
				}
			}
			out.Thresholds = append(out.Thresholds, &opspb.ThresholdInfo{Action: ActionName(a), Required: fs.Threshold(a), Eligible: eligible})
		}
	}
	for _, p := range fs.DRPolicies() {
		out.DrPolicies = append(out.DrPolicies, &opspb.DRPolicyInfo{Region: p.Region, SilenceSeconds: p.SilenceSeconds, Enabled: p.Enabled,
			Index: p.Index, Approvals: approvals(fs, p.Approvals, failoverpb.Action_ACTION_REGISTRY)})
	}
	hb := fs.LastHeartbeat()
	out.LastHeartbeat = &opspb.Heartbeat{Holder: hb.Holder, Epoch: hb.Epoch, Index: hb.Index, UnixNano: hb.UnixNano}
	lease := ls.Lease()
	for _, h := range fs.Handovers() {
		out.Handovers = append(out.Handovers, handoverInfo(fs, lease, h))
	}
	out.ExitLimitPerDay = fs.ExitLimit()
	out.ExitDay, out.ExitCount = fs.ExitsApproved()
	out.FinalityQuorum = fs.FinalityQuorum()
	n, head := fs.AuditHead()
	out.AuditRecords, out.AuditHead = uint64(n), head
}

// RoleName is the lower-case name of a role ("admin", "operator",
// "auditor"), as operators files and regentctl spell it.
func RoleName(r failoverpb.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// ActionName is the lower-case name of an action class ("handover",
// "registry", "policy", "exit", "keys").
func ActionName(a failoverpb.Action) string {
	return strings.ToLower(strings.TrimPrefix(a.String(), "ACTION_"))
}

// approvals converts approvals, marking those that still count for action.
func approvals(fs *failover.State, as []failover.Approval, action failoverpb.Action) []*opspb.ApprovalInfo {
	out := make([]*opspb.ApprovalInfo, 0, len(as))
	for _, a := range as {
		op, ok := fs.Operator(a.OperatorID)
		out = append(out, &opspb.ApprovalInfo{OperatorId: a.OperatorID, Index: a.Index, UnixNano: a.UnixNano,
			Counts: ok && failover.Permits(op.Role, action)})
	}
	return out
}

// handoverInfo describes h as the replica sees it now.
func handoverInfo(fs *failover.State, lease leader.Lease, h failover.Handover) *opspb.HandoverInfo {
	hi := &opspb.HandoverInfo{
		Id: h.ID, From: h.From, To: h.To, Reason: h.Reason, RequestedBy: h.RequestedBy, RequestedUnixNano: h.RequestedUnixNano,
		State: h.State.String(), Dr: h.DR, Approvals: approvals(fs, h.Approvals, failoverpb.Action_ACTION_HANDOVER),
		ApprovalsRequired: fs.Threshold(failoverpb.Action_ACTION_HANDOVER),
		FencedEpoch:       h.FencedEpoch, FencedIndex: h.FencedIndex, FencedUnixNano: h.FencedUnixNano,
		EvidenceDigest: h.EvidenceDigest, ClosedIndex: h.ClosedIndex, ClosedUnixNano: h.ClosedUnixNano,
		ClosedBy: h.ClosedBy, CloseReason: h.CloseReason,
	}
	var approvers []string
	for _, a := range hi.Approvals {
		if a.Counts {
			hi.ApprovalsCounted++
			approvers = append(approvers, a.OperatorId)
		}
	}
	if h.FencedIndex != 0 {
		if h.State == failover.HandoverFenced && lease.State == leader.LeaseFenced && lease.Epoch == h.FencedEpoch {
			hi.HighWater = lease.HighWater.String()
		} else {
			hi.HighWater = fencedMark(fs, h)
		}
	}
	if h.State == failover.HandoverCompleted {
		hi.ActiveEpoch = h.FencedEpoch + 1
		hi.EvidenceSummary = evidenceSummary(h.Evidence)
	}
	switch h.State {
	case failover.HandoverRequested:
		who := strings.Join(approvers, ", ")
		if who == "" {
			who = "none yet"
		}
		hi.WaitingFor = fmt.Sprintf("approvals: %d of %d (%s)", hi.ApprovalsCounted, hi.ApprovalsRequired, who)
	case failover.HandoverFenced:
		if lease.State == leader.LeaseFenced && lease.Epoch == h.FencedEpoch {
			hi.WaitingFor = waitingForFinality(lease.HighWater, h.To)
		} else {
			hi.WaitingFor = fmt.Sprintf("finality confirmation from %s (lease is %s at epoch %d)", h.To, lease.State, lease.Epoch)
		}
	case failover.HandoverCompleted:
		hi.WaitingFor = fmt.Sprintf("done: %s active at epoch %d", h.To, hi.ActiveEpoch)
	case failover.HandoverCancelled:
		hi.WaitingFor = fmt.Sprintf("nothing: cancelled by %s (%s)", h.ClosedBy, h.CloseReason)
	case failover.HandoverRejected:
		hi.WaitingFor = fmt.Sprintf("nothing: closed without completing (%s)", h.CloseReason)
	}
	return hi
}

// waitingForFinality says what finality the fenced lease waits for:
// "finality past slot 1234 / epoch 38 on chain 0x01020304…".
func waitingForFinality(hw leader.HighWater, to string) string {
	if len(hw.Eth) == 0 && len(hw.Comet) == 0 {
		return fmt.Sprintf("finality confirmation from %s (nothing was signed under the fenced epoch, so any evidence will do)", to)
	}
	roots := make([]eth.Root, 0, len(hw.Eth))
	for r := range hw.Eth {
		roots = append(roots, r)
	}
	sort.Slice(roots, func(i, j int) bool { return bytes.Compare(roots[i][:], roots[j][:]) < 0 })
	var parts []string
	for _, r := range roots {
		m := hw.Eth[r]
		var what []string
		if m.HasBlock {
			what = append(what, fmt.Sprintf("slot %d", m.MaxBlockSlot))
		}
		if m.HasAttestation {
			what = append(what, fmt.Sprintf("epoch %d", m.MaxTargetEpoch))
		}
		parts = append(parts, fmt.Sprintf("%s on chain 0x%x…", strings.Join(what, " / "), r[:4]))
	}
	chains := make([]string, 0, len(hw.Comet))
	for c := range hw.Comet {
		chains = append(chains, c)
	}
	sort.Strings(chains)
	for _, c := range chains {
		parts = append(parts, fmt.Sprintf("height %d on chain %s", hw.Comet[c], c))
	}
	return fmt.Sprintf("finality past %s, confirmed by %s", strings.Join(parts, "; "), to)
}

// fencedMark returns the high-water mark of a handover no longer fenced,
// from the lease.fence audit record its fence wrote.
func fencedMark(fs *failover.State, h failover.Handover) string {
	for _, r := range fs.AuditAt(h.FencedIndex) {
		if r.Action == "lease.fence" && r.HandoverID == h.ID {
			if _, mark, ok := strings.Cut(r.Detail, "high-water mark: "); ok {
				return mark
			}
			return r.Detail
		}
	}
	return ""
}

// evidenceSummary describes a ConfirmFinality payload.
func evidenceSummary(payload []byte) string {
	if len(payload) == 0 {
		return ""
	}
	var cf failoverpb.ConfirmFinality
	if err := proto.Unmarshal(payload, &cf); err != nil {
		return fmt.Sprintf("undecodable evidence (%v)", err)
	}
	var parts []string
	for _, e := range cf.GetEth() {
		parts = append(parts, fmt.Sprintf("chain 0x%x…: finalized epoch %d root 0x%x… (%d endpoints)",
			prefix(e.GetGenesisValidatorsRoot()), e.GetFinalizedEpoch(), prefix(e.GetFinalizedRoot()), len(e.GetEndpoints())))
	}
	for _, c := range cf.GetComet() {
		parts = append(parts, fmt.Sprintf("chain %s: height %d hash 0x%x… (%d endpoints)", c.GetChainId(), c.GetHeight(), prefix(c.GetBlockHash()), len(c.GetEndpoints())))
	}
	if len(parts) == 0 {
		return "no chains (nothing was signed under the fenced epoch)"
	}
	return strings.Join(parts, "; ")
}

func prefix(b []byte) []byte {
	if len(b) > 4 {
		return b[:4]
	}
	return b
}
