package failover

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/failoverpb"
)

// Snapshot section format: the 4 bytes "RGFO", a big-endian uint32
// format version, then the deterministic protobuf encoding of
// failoverpb.FailoverSnapshot. Version 1 is the only one so far; a reader
// refuses versions it does not know.
const (
	snapshotMagic   = "RGFO"
	snapshotVersion = 1
	// maxSnapshot bounds the section this package reads (the leader
	// bounds a section to 1 GiB as well).
	maxSnapshot = 1 << 30
)

// WriteSnapshot implements leader.Extension. The encoding is a pure
// function of the state: every collection is written in a fixed order.
func (s *State) WriteSnapshot(w io.Writer) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s.toProto())
	if err != nil {
		return fmt.Errorf("failover: snapshot: %w", err)
	}
	var h [8]byte
	copy(h[:4], snapshotMagic)
	binary.BigEndian.PutUint32(h[4:], snapshotVersion)
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (s *State) toProto() *failoverpb.FailoverSnapshot {
	p := &failoverpb.FailoverSnapshot{
		ClusterId: s.clusterID, ExitDay: s.exitDay, ExitCount: s.exitCount, ExitLimitPerDay: s.exitLimit,
		FinalityQuorum: s.finalityQuorum, ClockUnixNano: s.clock,
		LastHeartbeat: &failoverpb.HeartbeatRecord{Holder: s.heartbeat.Holder, Epoch: s.heartbeat.Epoch, Index: s.heartbeat.Index, UnixNano: s.heartbeat.UnixNano},
	}
	for _, o := range s.Operators() {
		p.Operators = append(p.Operators, &failoverpb.OperatorRecord{Id: o.ID, PublicKey: o.PublicKey, Role: o.Role, AddedIndex: o.AddedIndex})
	}
	for _, a := range Actions() {
		if req, ok := s.thresholds[a]; ok {
			p.Thresholds = append(p.Thresholds, &failoverpb.Threshold{Action: a, Required: req})
		}
	}
	keys := make([]string, 0, len(s.nonces))
	for k := range s.nonces {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		op, nonce, _ := strings.Cut(k, "\x00")
		p.Nonces = append(p.Nonces, &failoverpb.NonceRecord{OperatorId: op, Nonce: []byte(nonce), ExpiresUnixNano: s.nonces[k]})
	}
	for _, h := range s.handovers {
		p.Handovers = append(p.Handovers, &failoverpb.HandoverRecord{
			Id: h.ID, From: h.From, To: h.To, Reason: h.Reason, RequestedBy: h.RequestedBy, RequestedUnixNano: h.RequestedUnixNano,
			State: failoverpb.HandoverState(h.State), Approvals: approvalsToProto(h.Approvals), Dr: h.DR,
			FencedEpoch: h.FencedEpoch, FencedIndex: h.FencedIndex, FencedUnixNano: h.FencedUnixNano,
			Evidence: h.Evidence, EvidenceDigest: h.EvidenceDigest,
			ClosedIndex: h.ClosedIndex, ClosedUnixNano: h.ClosedUnixNano, ClosedBy: h.ClosedBy, CloseReason: h.CloseReason,
		})
	}
	for _, d := range s.DRPolicies() {
		p.DrPolicies = append(p.DrPolicies, &failoverpb.DRPolicyRecord{Region: d.Region, SilenceSeconds: d.SilenceSeconds, Enabled: d.Enabled,
			Index: d.Index, Approvals: approvalsToProto(d.Approvals)})
	}
	for i := range s.audit {
		p.Audit = append(p.Audit, s.audit[i].toProto())
	}
	return p
}

// ReadSnapshot implements leader.Extension: it fills a fresh State from a
// section WriteSnapshot wrote, validating every record (keys parse,
// thresholds reachable, at most one open handover, the audit chain
// verifies). On error the receiver must be discarded (leader restores
// into a fresh state and swaps it in only on success).
func (s *State) ReadSnapshot(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, maxSnapshot+1))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if len(b) > maxSnapshot {
		return fmt.Errorf("%w: section larger than %d bytes", ErrBadSnapshot, maxSnapshot)
	}
	if len(b) < 8 || !bytes.Equal(b[:4], []byte(snapshotMagic)) {
		return fmt.Errorf("%w: not a failover section", ErrBadSnapshot)
	}
	if v := binary.BigEndian.Uint32(b[4:8]); v != snapshotVersion {
		return fmt.Errorf("%w: format version %d, this node reads %d", ErrBadSnapshot, v, snapshotVersion)
	}
	var p failoverpb.FailoverSnapshot
	if err := proto.Unmarshal(b[8:], &p); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	fresh, err := fromProto(&p)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	*s = *fresh
	return nil
}

func fromProto(p *failoverpb.FailoverSnapshot) (*State, error) {
	s := NewState()
	s.clusterID = p.ClusterId
	s.exitDay, s.exitCount, s.exitLimit = p.ExitDay, p.ExitCount, p.ExitLimitPerDay
	s.finalityQuorum, s.clock = p.FinalityQuorum, p.ClockUnixNano
	hb := p.GetLastHeartbeat()
	s.heartbeat = Heartbeat{Holder: hb.GetHolder(), Epoch: hb.GetEpoch(), Index: hb.GetIndex(), UnixNano: hb.GetUnixNano()}
	boot := p.ClusterId != ""
	if boot && !validID(p.ClusterId) {
		return nil, fmt.Errorf("cluster id %q", p.ClusterId)
	}
	if !boot && (len(p.Operators) > 0 || len(p.Thresholds) > 0 || len(p.Nonces) > 0 || len(p.Handovers) > 0 || len(p.DrPolicies) > 0 ||
		p.FinalityQuorum != 0 || p.ExitLimitPerDay != 0 || p.ExitCount != 0) {
		return nil, fmt.Errorf("registry records without a cluster id")
	}
	if len(p.Operators) > MaxOperators {
		return nil, fmt.Errorf("%d operators", len(p.Operators))
	}
	for _, o := range p.Operators {
		op, err := newOperator(o.Id, o.PublicKey, o.Role, o.AddedIndex, s.operators)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(op.PublicKey, o.PublicKey) {
			return nil, fmt.Errorf("operator %q key not in canonical encoding", o.Id)
		}
		s.operators[op.ID] = op
	}
	if boot && len(p.Operators) == 0 {
		return nil, fmt.Errorf("bootstrapped without operators")
	}
	for _, t := range p.Thresholds {
		if !validAction(t.Action) {
			return nil, fmt.Errorf("threshold for action %v", t.Action)
		}
		if _, dup := s.thresholds[t.Action]; dup {
			return nil, fmt.Errorf("two thresholds for %v", t.Action)
		}
		s.thresholds[t.Action] = t.Required
	}
	if boot {
		for _, a := range Actions() {
			req, ok := s.thresholds[a]
			if el := s.eligible(a, s.operators); !ok || req < 1 || req > el {
				return nil, fmt.Errorf("%v threshold %d with %d eligible operators", a, req, el)
			}
		}
		if p.FinalityQuorum < 1 || p.FinalityQuorum > MaxFinalityQuorum {
			return nil, fmt.Errorf("finality quorum %d", p.FinalityQuorum)
		}
	}
	if p.ExitLimitPerDay > MaxExitLimit {
		return nil, fmt.Errorf("exit limit %d", p.ExitLimitPerDay)
	}
	for _, n := range p.Nonces {
		if n.OperatorId == "" || len(n.OperatorId) > 64 || strings.IndexByte(n.OperatorId, 0) >= 0 || len(n.Nonce) < 16 || len(n.Nonce) > 32 {
			return nil, fmt.Errorf("nonce record of %q with %d bytes", n.OperatorId, len(n.Nonce))
		}
		k := nonceKey(n.OperatorId, n.Nonce)
		if _, dup := s.nonces[k]; dup {
			return nil, fmt.Errorf("nonce of %q twice", n.OperatorId)
		}
		s.nonces[k] = n.ExpiresUnixNano
	}
	if len(p.Handovers) > MaxClosedHandovers+1 {
		return nil, fmt.Errorf("%d handovers", len(p.Handovers))
	}
	for i, hp := range p.Handovers {
		st := HandoverState(hp.State)
		if hp.State < failoverpb.HandoverState_HANDOVER_REQUESTED || hp.State > failoverpb.HandoverState_HANDOVER_REJECTED {
			return nil, fmt.Errorf("handover %d state %v", hp.Id, hp.State)
		}
		if i > 0 && hp.Id <= p.Handovers[i-1].Id {
			return nil, fmt.Errorf("handover ids not increasing at %d", hp.Id)
		}
		if st.Open() && i != len(p.Handovers)-1 {
			return nil, fmt.Errorf("open handover %d is not the last", hp.Id)
		}
		if hp.Id == 0 || len(hp.Approvals) > MaxOperators+maxAuditApproval {
			return nil, fmt.Errorf("handover %d with %d approvals", hp.Id, len(hp.Approvals))
		}
		s.handovers = append(s.handovers, &Handover{
			ID: hp.Id, From: hp.From, To: hp.To, Reason: hp.Reason, RequestedBy: hp.RequestedBy, RequestedUnixNano: hp.RequestedUnixNano,
			State: st, Approvals: approvalsFromProto(hp.Approvals), DR: hp.Dr,
			FencedEpoch: hp.FencedEpoch, FencedIndex: hp.FencedIndex, FencedUnixNano: hp.FencedUnixNano,
			Evidence: nilIfEmpty(hp.Evidence), EvidenceDigest: nilIfEmpty(hp.EvidenceDigest),
			ClosedIndex: hp.ClosedIndex, ClosedUnixNano: hp.ClosedUnixNano, ClosedBy: hp.ClosedBy, CloseReason: hp.CloseReason,
		})
	}
	for _, d := range p.DrPolicies {
		if !validID(d.Region) {
			return nil, fmt.Errorf("DR policy region %q", d.Region)
		}
		if _, dup := s.dr[d.Region]; dup {
			return nil, fmt.Errorf("two DR policies for %q", d.Region)
		}
		if d.Enabled && (d.SilenceSeconds < MinDRSilenceSeconds || d.SilenceSeconds > MaxDRSilenceSeconds) {
			return nil, fmt.Errorf("DR policy for %q with silence %ds", d.Region, d.SilenceSeconds)
		}
		s.dr[d.Region] = &DRPolicy{Region: d.Region, SilenceSeconds: d.SilenceSeconds, Enabled: d.Enabled, Index: d.Index,
			Approvals: approvalsFromProto(d.Approvals)}
	}
	for _, a := range p.Audit {
		if a.Outcome != failoverpb.Outcome_OUTCOME_ACCEPTED && a.Outcome != failoverpb.Outcome_OUTCOME_REJECTED {
			return nil, fmt.Errorf("audit record %d outcome %v", a.Seq, a.Outcome)
		}
		s.audit = append(s.audit, auditFromProto(a))
	}
	if i, err := VerifyChain(s.audit); err != nil {
		return nil, fmt.Errorf("audit record %d: %w", i, err)
	}
	return s, nil
}
