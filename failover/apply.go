package failover

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

// Result is the apply response of every failover command except
// LeaseHeartbeat. A command the state machine refused but audited comes
// back with a nil handler error and Accepted false: its Err says why
// (wrapping a sentinel of this package). Use ResponseError to fold both
// into one error.
type Result struct {
	Index    uint64
	Action   string
	Accepted bool
	Err      error
	// AuditSeq is the seq of the command's own audit record.
	AuditSeq uint64
	// Handover is the handover the command concerned, after the entry.
	Handover *Handover
	// Lease is the lease after the entry.
	Lease leader.Lease
}

// Refusal returns why the command was refused, or nil when it was
// accepted. Code that cannot import this package (leader.Service) can
// detect refusals through the interface{ Refusal() error }.
func (r Result) Refusal() error {
	if r.Accepted {
		return nil
	}
	if r.Err == nil {
		return fmt.Errorf("%w: refused without a reason", ErrMalformed)
	}
	return r.Err
}

// ResponseError returns the error of an applied failover command: the
// handler's error, or the refusal a Result carries, or nil when accepted.
// Commands forwarded to another region get no value back: read the
// outcome with State.AuditAt(index) on the local replica.
func ResponseError(resp fsm.Response) error {
	if resp.Err != nil {
		return resp.Err
	}
	if r, ok := resp.Value.(Result); ok {
		return r.Refusal()
	}
	return nil
}

// note is an audit record being written.
type note struct {
	actor, action string
	reason        string
	approvals     []Approval
	digest        []byte
	detail        string
	handoverID    uint64
}

func payloadDigest(e fsm.Entry) []byte {
	d := sha256.Sum256(e.Envelope.GetPayload())
	return d[:]
}

// appendAudit appends one record, stamped with the entry and the lease
// after it.
func (s *State) appendAudit(ls *leader.State, e fsm.Entry, n note, o Outcome) AuditRecord {
	l := ls.Lease()
	prev := make([]byte, sha256.Size)
	if len(s.audit) > 0 {
		prev = append([]byte(nil), s.audit[len(s.audit)-1].Hash...)
	}
	apps := n.approvals
	if len(apps) > maxAuditApproval {
		apps = apps[:maxAuditApproval]
	}
	r := AuditRecord{
		Seq: uint64(len(s.audit)), Index: e.Index, UnixNano: e.Envelope.GetProposedAtUnixNano(),
		Actor: clip(n.actor, maxAuditText), Action: clip(n.action, maxAuditText), Outcome: o,
		Reason: clip(n.reason, maxAuditText), Approvals: append([]Approval(nil), apps...),
		EvidenceDigest: append([]byte(nil), n.digest...), Detail: clip(n.detail, maxAuditText), HandoverID: n.handoverID,
		LeaseHolder: clip(l.Holder, maxAuditText), LeaseEpoch: l.Epoch, LeaseState: l.State.String(), PrevHash: prev,
	}
	for i := range r.Approvals {
		r.Approvals[i].OperatorID = clip(r.Approvals[i].OperatorID, maxAuditText)
	}
	if len(r.Approvals) == 0 {
		r.Approvals = nil
	}
	if len(r.EvidenceDigest) == 0 {
		r.EvidenceDigest = nil
	}
	r.Hash = r.ComputeHash()
	s.audit = append(s.audit, r)
	return r
}

// reject audits a refused command; nothing else changes.
func (s *State) reject(ls *leader.State, e fsm.Entry, n note, err error) (any, error) {
	n.reason = err.Error()
	rec := s.appendAudit(ls, e, n, OutcomeRejected)
	res := Result{Index: e.Index, Action: n.action, Err: err, AuditSeq: rec.Seq, Lease: ls.Lease()}
	if h := s.find(n.handoverID); h != nil {
		c := h.clone()
		res.Handover = &c
	}
	return res, nil
}

// accept audits an accepted command and the lease changes it made.
func (s *State) accept(ls *leader.State, e fsm.Entry, n note, extra []note) (any, error) {
	rec := s.appendAudit(ls, e, n, OutcomeAccepted)
	for _, x := range extra {
		s.appendAudit(ls, e, x, OutcomeAccepted)
	}
	res := Result{Index: e.Index, Action: n.action, Accepted: true, AuditSeq: rec.Seq, Lease: ls.Lease()}
	if h := s.find(n.handoverID); h != nil {
		c := h.clone()
		res.Handover = &c
	}
	return res, nil
}

func (s *State) find(id uint64) *Handover {
	if id == 0 {
		return nil
	}
	for _, h := range s.handovers {
		if h.ID == id {
			return h
		}
	}
	return nil
}

// now is an operator command's time for expiry, nonce pruning and the
// exit day: never earlier than an accepted operator command before it.
func (s *State) now(e fsm.Entry) int64 { return max(s.clock, e.Envelope.GetProposedAtUnixNano()) }

func isVoter(ls *leader.State, id string) bool {
	for _, m := range ls.Members() {
		if m.ID == id {
			return m.Voter
		}
	}
	return false
}

// validID accepts 1..64 bytes of [A-Za-z0-9._:@-].
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:@-", c) >= 0) {
			return false
		}
	}
	return true
}

func checkReason(r string) error {
	if len(r) > MaxReason {
		return fmt.Errorf("%w: reason of %d bytes (at most %d)", ErrMalformed, len(r), MaxReason)
	}
	return nil
}

// --- BootstrapOperators ----------------------------------------------------

func (s *State) applyBootstrap(ls *leader.State, e fsm.Entry) (any, error) {
	n := note{actor: e.Envelope.GetProposer(), action: "bootstrap", digest: payloadDigest(e)}
	var cmd failoverpb.BootstrapOperators
	if err := fsm.Decode(e, &cmd); err != nil {
		return s.reject(ls, e, n, fmt.Errorf("%w: %w", ErrMalformed, err))
	}
	if s.Bootstrapped() || len(s.operators) > 0 {
		return s.reject(ls, e, n, fmt.Errorf("%w: cluster %q", ErrAlreadyBootstrapped, s.clusterID))
	}
	if !validID(cmd.ClusterId) {
		return s.reject(ls, e, n, fmt.Errorf("%w: cluster id %q", ErrMalformed, cmd.ClusterId))
	}
	if len(cmd.Operators) == 0 || len(cmd.Operators) > MaxOperators {
		return s.reject(ls, e, n, fmt.Errorf("%w: %d operators (1..%d)", ErrRegistry, len(cmd.Operators), MaxOperators))
	}
	ops := make(map[string]*Operator, len(cmd.Operators))
	for i, o := range cmd.Operators {
		op, err := newOperator(o.GetId(), o.GetPublicKey(), o.GetRole(), e.Index, ops)
		if err != nil {
			return s.reject(ls, e, n, fmt.Errorf("operator %d: %w", i, err))
		}
		ops[op.ID] = op
	}
	thr := make(map[failoverpb.Action]uint32, len(cmd.Thresholds))
	for _, t := range cmd.Thresholds {
		if !validAction(t.GetAction()) {
			return s.reject(ls, e, n, fmt.Errorf("%w: threshold for action %v", ErrRegistry, t.GetAction()))
		}
		if _, dup := thr[t.GetAction()]; dup {
			return s.reject(ls, e, n, fmt.Errorf("%w: two thresholds for %v", ErrRegistry, t.GetAction()))
		}
		thr[t.GetAction()] = t.GetRequired()
	}
	for _, a := range Actions() {
		req, ok := thr[a]
		if !ok {
			return s.reject(ls, e, n, fmt.Errorf("%w: no threshold for %v", ErrRegistry, a))
		}
		if el := s.eligible(a, ops); req < 1 || req > el {
			return s.reject(ls, e, n, fmt.Errorf("%w: %v needs %d approvals, %d operators may give them", ErrRegistry, a, req, el))
		}
	}
	if cmd.ExitLimitPerDay > MaxExitLimit {
		return s.reject(ls, e, n, fmt.Errorf("%w: exit limit %d (at most %d)", ErrMalformed, cmd.ExitLimitPerDay, MaxExitLimit))
	}
	if cmd.FinalityQuorum < 1 || cmd.FinalityQuorum > MaxFinalityQuorum {
		return s.reject(ls, e, n, fmt.Errorf("%w: finality quorum %d (1..%d)", ErrMalformed, cmd.FinalityQuorum, MaxFinalityQuorum))
	}
	s.clusterID = cmd.ClusterId
	s.operators = ops
	s.thresholds = thr
	s.exitLimit = cmd.ExitLimitPerDay
	s.finalityQuorum = cmd.FinalityQuorum
	n.detail = fmt.Sprintf("cluster %s: %d operators; thresholds %s; exit limit %d/day; finality quorum %d",
		cmd.ClusterId, len(ops), s.thresholdString(), cmd.ExitLimitPerDay, cmd.FinalityQuorum)
	return s.accept(ls, e, n, nil)
}

func (s *State) thresholdString() string {
	var b strings.Builder
	for i, a := range Actions() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", strings.TrimPrefix(a.String(), "ACTION_"), s.thresholds[a])
	}
	return b.String()
}

// newOperator validates an operator against the registry ops it joins:
// id syntax and uniqueness, a parseable Ed25519/P-256 key no other
// operator holds (one person, one vote), a known role.
func newOperator(id string, der []byte, role failoverpb.Role, index uint64, ops map[string]*Operator) (*Operator, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: operator id %q", ErrRegistry, id)
	}
	if _, dup := ops[id]; dup {
		return nil, fmt.Errorf("%w: operator %q already registered", ErrRegistry, id)
	}
	if !validRole(role) {
		return nil, fmt.Errorf("%w: role %v", ErrRegistry, role)
	}
	norm, err := normalizeKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: operator %q: %w", ErrRegistry, id, err)
	}
	for _, o := range ops {
		if string(o.PublicKey) == string(norm) {
			return nil, fmt.Errorf("%w: operator %q has the key of operator %q", ErrRegistry, id, o.ID)
		}
	}
	return &Operator{ID: id, PublicKey: norm, Role: role, AddedIndex: index}, nil
}

// --- LeaseHeartbeat --------------------------------------------------------

// applyHeartbeat records a heartbeat of the current holder at the current
// epoch, proposed by that holder. Anything else is an error and changes
// nothing. The value is the new Heartbeat.
func (s *State) applyHeartbeat(ls *leader.State, e fsm.Entry) (any, error) {
	var hb failoverpb.LeaseHeartbeat
	if err := fsm.Decode(e, &hb); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	l := ls.Lease()
	if !l.Allows(hb.Holder, hb.Epoch) || e.Envelope.GetProposer() != hb.Holder {
		return nil, fmt.Errorf("%w: heartbeat of %q at epoch %d proposed by %q, lease is %s (holder %q, epoch %d)",
			ErrStaleHeartbeat, hb.Holder, hb.Epoch, e.Envelope.GetProposer(), l.State, l.Holder, l.Epoch)
	}
	stamp := e.Envelope.GetProposedAtUnixNano()
	if s.heartbeat.Holder == hb.Holder && s.heartbeat.Epoch == hb.Epoch {
		stamp = max(stamp, s.heartbeat.UnixNano)
	}
	s.heartbeat = Heartbeat{Holder: hb.Holder, Epoch: hb.Epoch, Index: e.Index, UnixNano: stamp}
	return s.heartbeat, nil
}

// --- DRTakeover ------------------------------------------------------------

func (s *State) applyDRTakeover(ls *leader.State, e fsm.Entry) (any, error) {
	n := note{actor: e.Envelope.GetProposer(), action: "dr.takeover", digest: payloadDigest(e)}
	var cmd failoverpb.DRTakeover
	if err := fsm.Decode(e, &cmd); err != nil {
		return s.reject(ls, e, n, fmt.Errorf("%w: %w", ErrMalformed, err))
	}
	if !s.Bootstrapped() {
		return s.reject(ls, e, n, ErrNotBootstrapped)
	}
	if err := checkReason(cmd.Reason); err != nil {
		return s.reject(ls, e, n, err)
	}
	n.reason = cmd.Reason
	if cmd.Region != e.Envelope.GetProposer() {
		return s.reject(ls, e, n, fmt.Errorf("%w: takeover for %q proposed by %q; a region takes over for itself", ErrWrongProposer, cmd.Region, e.Envelope.GetProposer()))
	}
	p, ok := s.dr[cmd.Region]
	if !ok || !p.Enabled {
		return s.reject(ls, e, n, fmt.Errorf("%w: no enabled DR policy for %q", ErrDRNotAllowed, cmd.Region))
	}
	n.approvals = p.Approvals
	if !isVoter(ls, cmd.Region) {
		return s.reject(ls, e, n, fmt.Errorf("%w: %q", ErrUnknownRegion, cmd.Region))
	}
	l := ls.Lease()
	if l.State != leader.LeaseActive {
		return s.reject(ls, e, n, fmt.Errorf("%w: DR takeover needs an active lease, lease is %s at epoch %d", ErrHandoverState, l.State, l.Epoch))
	}
	if l.Holder == cmd.Region {
		return s.reject(ls, e, n, fmt.Errorf("%w: %q already holds the lease", ErrHandoverState, cmd.Region))
	}
	last := l.SinceUnixNano
	if s.heartbeat.Holder == l.Holder && s.heartbeat.Epoch == l.Epoch && s.heartbeat.UnixNano > last {
		last = s.heartbeat.UnixNano
	}
	stamp := e.Envelope.GetProposedAtUnixNano()
	need := uint64(p.SilenceSeconds) * 1e9
	if stamp < last || uint64(stamp)-uint64(last) < need {
		var silent int64
		if stamp > last {
			silent = int64(uint64(stamp)-uint64(last)) / 1e9
		}
		return s.reject(ls, e, n, fmt.Errorf("%w: holder %s last seen at %d, silent %ds, policy needs %ds", ErrDRNotAllowed, l.Holder, last, silent, p.SilenceSeconds))
	}
	reason := fmt.Sprintf("DR takeover by %s under the policy of index %d after %ds of holder silence", cmd.Region, p.Index, p.SilenceSeconds)
	if err := ls.Fence(e, l.Epoch, reason); err != nil {
		return s.reject(ls, e, n, fmt.Errorf("%w: %w", ErrHandoverState, err))
	}
	var extra []note
	if open := s.open(); open != nil {
		s.close(open, e, HandoverCancelled, cmd.Region, fmt.Sprintf("superseded by DR takeover %d", e.Index))
		extra = append(extra, note{actor: cmd.Region, action: "handover.close", handoverID: open.ID, detail: open.CloseReason})
	}
	h := &Handover{
		ID: e.Index, From: l.Holder, To: cmd.Region, Reason: cmd.Reason, RequestedBy: cmd.Region,
		RequestedUnixNano: stamp, Approvals: append([]Approval(nil), p.Approvals...), DR: true,
	}
	s.markFenced(h, ls, e)
	s.addHandover(h)
	n.handoverID = h.ID
	n.detail = reason
	extra = append(extra, s.fenceNote(ls, h, "dr-policy:"+cmd.Region))
	return s.accept(ls, e, n, extra)
}

func (s *State) markFenced(h *Handover, ls *leader.State, e fsm.Entry) {
	h.State = HandoverFenced
	h.FencedEpoch = ls.Lease().Epoch
	h.FencedIndex = e.Index
	h.FencedUnixNano = e.Envelope.GetProposedAtUnixNano()
}

func (s *State) fenceNote(ls *leader.State, h *Handover, actor string) note {
	l := ls.Lease()
	return note{actor: actor, action: "lease.fence", approvals: h.Approvals, handoverID: h.ID,
		detail: fmt.Sprintf("fenced %s at epoch %d for handover %d to %s; high-water mark: %s", l.Holder, l.Epoch, h.ID, h.To, l.HighWater)}
}

func (s *State) close(h *Handover, e fsm.Entry, st HandoverState, by, reason string) {
	h.State = st
	h.ClosedIndex = e.Index
	h.ClosedUnixNano = e.Envelope.GetProposedAtUnixNano()
	h.ClosedBy = by
	h.CloseReason = clip(reason, MaxReason)
}

// addHandover appends h and trims the oldest closed handovers beyond
// MaxClosedHandovers.
func (s *State) addHandover(h *Handover) {
	s.handovers = append(s.handovers, h)
	closed := 0
	for _, x := range s.handovers {
		if !x.State.Open() {
			closed++
		}
	}
	for closed > MaxClosedHandovers && len(s.handovers) > 0 && !s.handovers[0].State.Open() {
		s.handovers = s.handovers[1:]
		closed--
	}
}

// --- ConfirmFinality -------------------------------------------------------

func (s *State) applyConfirmFinality(ls *leader.State, e fsm.Entry) (any, error) {
	n := note{actor: e.Envelope.GetProposer(), action: "finality.confirm", digest: payloadDigest(e)}
	var cf failoverpb.ConfirmFinality
	if err := fsm.Decode(e, &cf); err != nil {
		return s.reject(ls, e, n, fmt.Errorf("%w: %w", ErrMalformed, err))
	}
	if !s.Bootstrapped() {
		return s.reject(ls, e, n, ErrNotBootstrapped)
	}
	h := s.open()
	if h == nil || h.ID != cf.HandoverId {
		return s.reject(ls, e, n, fmt.Errorf("%w: %d", ErrNoHandover, cf.HandoverId))
	}
	n.handoverID = h.ID
	n.approvals = h.Approvals
	if h.State != HandoverFenced {
		return s.reject(ls, e, n, fmt.Errorf("%w: handover %d is %s, finality is confirmed after the fence", ErrHandoverState, h.ID, h.State))
	}
	if e.Envelope.GetProposer() != h.To {
		return s.reject(ls, e, n, fmt.Errorf("%w: finality for handover %d to %s proposed by %q; the incoming region proposes it", ErrWrongProposer, h.ID, h.To, e.Envelope.GetProposer()))
	}
	l := ls.Lease()
	if l.State != leader.LeaseFenced || l.Epoch != h.FencedEpoch {
		return s.reject(ls, e, n, fmt.Errorf("%w: lease is %s at epoch %d, handover %d fenced epoch %d", ErrHandoverState, l.State, l.Epoch, h.ID, h.FencedEpoch))
	}
	if err := CheckEvidence(l.HighWater, &cf, int(s.finalityQuorum)); err != nil {
		return s.reject(ls, e, n, err)
	}
	if err := ls.Activate(e, h.To, l.Epoch+1); err != nil {
		return s.reject(ls, e, n, fmt.Errorf("%w: %w", ErrHandoverState, err))
	}
	s.close(h, e, HandoverCompleted, e.Envelope.GetProposer(), "finality confirmed")
	h.Evidence = append([]byte(nil), e.Envelope.GetPayload()...)
	h.EvidenceDigest = payloadDigest(e)
	n.detail = fmt.Sprintf("evidence for handover %d past high-water mark %s: %s", h.ID, l.HighWater, evidenceString(&cf))
	nl := ls.Lease()
	act := note{actor: h.To, action: "lease.activate", approvals: h.Approvals, digest: h.EvidenceDigest, handoverID: h.ID,
		detail: fmt.Sprintf("%s active at epoch %d (was %s at epoch %d)", nl.Holder, nl.Epoch, l.Holder, l.Epoch)}
	return s.accept(ls, e, n, []note{act})
}

// --- OperatorCommand -------------------------------------------------------

// signed is an authenticated operator command.
type signed struct {
	cmd       *failoverpb.OperatorCommand
	action    failoverpb.Action
	approvals []Approval // one per signer, in signature order
}

func (c *signed) signerIDs() []string {
	ids := make([]string, len(c.approvals))
	for i, a := range c.approvals {
		ids[i] = a.OperatorID
	}
	return ids
}

// applied is what an accepted action reports for the audit.
type applied struct {
	detail   string
	reason   string
	handover uint64
	extra    []note
}

func (s *State) applyOperator(ls *leader.State, e fsm.Entry, d *delegate) (any, error) {
	now := s.now(e)
	n := note{actor: e.Envelope.GetProposer(), action: "operator_command", digest: payloadDigest(e)}
	if !s.Bootstrapped() {
		return s.reject(ls, e, n, ErrNotBootstrapped)
	}
	sc, err := opsigDecodeSigned(e.Envelope.GetPayload())
	if err != nil {
		return s.reject(ls, e, n, err)
	}
	cmd, err := opsigDecodeBody(sc.Body)
	if err != nil {
		return s.reject(ls, e, n, err)
	}
	n.actor = cmd.OperatorId
	n.action = actionName(cmd)
	c, err := s.authenticate(sc, cmd, e, now)
	if c != nil {
		n.approvals = c.approvals
	}
	if err != nil {
		return s.reject(ls, e, n, err)
	}
	a, err := s.execute(ls, e, c, now, d)
	if err != nil {
		n.handoverID = a.handover
		return s.reject(ls, e, n, err)
	}
	s.nonces[nonceKey(cmd.OperatorId, cmd.Nonce)] = cmd.ExpiresUnixNano
	s.pruneNonces(now)
	s.clock = now
	n.detail, n.reason, n.handoverID = a.detail, a.reason, a.handover
	return s.accept(ls, e, n, a.extra)
}

func nonceKey(op string, nonce []byte) string { return op + "\x00" + string(nonce) }

// pruneNonces forgets nonces whose command can no longer be accepted
// (expiry ≤ now); now never decreases (State.now), so a forgotten nonce
// can never be replayed.
func (s *State) pruneNonces(now int64) {
	for k, exp := range s.nonces {
		if exp <= now {
			delete(s.nonces, k)
		}
	}
}

// authenticate checks cluster, expiry, every signature, roles and replay.
// It returns the signers (for the audit) as soon as they are known.
func (s *State) authenticate(sc *failoverpb.SignedCommand, cmd *failoverpb.OperatorCommand, e fsm.Entry, now int64) (*signed, error) {
	c := &signed{cmd: cmd, action: actionClass(cmd)}
	for _, sig := range sc.Signatures {
		c.approvals = append(c.approvals, Approval{OperatorID: sig.OperatorId, Index: e.Index, UnixNano: e.Envelope.GetProposedAtUnixNano()})
	}
	if cmd.ClusterId != s.clusterID {
		return c, fmt.Errorf("%w: command names cluster %q, this is %q", ErrWrongCluster, cmd.ClusterId, s.clusterID)
	}
	if cmd.ExpiresUnixNano <= now {
		return c, fmt.Errorf("%w: expired at %d, now %d", ErrExpired, cmd.ExpiresUnixNano, now)
	}
	if uint64(cmd.ExpiresUnixNano)-uint64(now) > uint64(maxExpiryWindow) {
		return c, fmt.Errorf("%w: expires at %d, more than %v after %d", ErrExpiryTooFar, cmd.ExpiresUnixNano, maxExpiryWindow, now)
	}
	seen := make(map[string]bool, len(sc.Signatures))
	for _, sig := range sc.Signatures {
		if seen[sig.OperatorId] {
			return c, fmt.Errorf("%w: %q signed twice", ErrBadSignature, sig.OperatorId)
		}
		seen[sig.OperatorId] = true
		op, ok := s.operators[sig.OperatorId]
		if !ok {
			return c, fmt.Errorf("%w: %q", ErrUnknownOperator, sig.OperatorId)
		}
		if err := opsigVerify(op.PublicKey, sc.Body, sig.Signature); err != nil {
			return c, fmt.Errorf("%w: signature of %q: %w", ErrBadSignature, sig.OperatorId, err)
		}
	}
	if !seen[cmd.OperatorId] {
		if _, ok := s.operators[cmd.OperatorId]; !ok {
			return c, fmt.Errorf("%w: submitter %q", ErrUnknownOperator, cmd.OperatorId)
		}
		return c, fmt.Errorf("%w: the submitter %q did not sign", ErrBadSignature, cmd.OperatorId)
	}
	for _, sig := range sc.Signatures {
		if op := s.operators[sig.OperatorId]; !Permits(op.Role, c.action) {
			return c, fmt.Errorf("%w: %q is %v, action %v", ErrNotPermitted, op.ID, op.Role, c.action)
		}
	}
	if _, used := s.nonces[nonceKey(cmd.OperatorId, cmd.Nonce)]; used {
		return c, fmt.Errorf("%w: operator %q nonce %x", ErrReplay, cmd.OperatorId, cmd.Nonce)
	}
	return c, nil
}

// threshold checks that c's signers reach the threshold of its action.
func (s *State) threshold(c *signed) error {
	if req := s.thresholds[c.action]; uint32(len(c.approvals)) < req {
		return fmt.Errorf("%w: %v needs %d distinct operators, %d signed", ErrBelowThreshold, c.action, req, len(c.approvals))
	}
	return nil
}

// execute applies an authenticated command. On error nothing changed.
func (s *State) execute(ls *leader.State, e fsm.Entry, c *signed, now int64, d *delegate) (applied, error) {
	switch a := c.cmd.Action.(type) {
	case *failoverpb.OperatorCommand_RequestHandover:
		return s.requestHandover(ls, e, c, a.RequestHandover)
	case *failoverpb.OperatorCommand_ApproveHandover:
		return s.approveHandover(ls, e, c, a.ApproveHandover)
	case *failoverpb.OperatorCommand_CancelHandover:
		return s.cancelHandover(e, c, a.CancelHandover)
	case *failoverpb.OperatorCommand_AddOperator:
		return s.addOperator(e, c, a.AddOperator)
	case *failoverpb.OperatorCommand_RemoveOperator:
		return s.removeOperator(c, a.RemoveOperator)
	case *failoverpb.OperatorCommand_SetThreshold:
		return s.setThreshold(c, a.SetThreshold)
	case *failoverpb.OperatorCommand_SetDrPolicy:
		return s.setDRPolicy(ls, e, c, a.SetDrPolicy)
	case *failoverpb.OperatorCommand_ApproveExit:
		return s.approveExit(ls, e, c, a.ApproveExit, now, d)
	case *failoverpb.OperatorCommand_SetPolicy:
		return s.setPolicy(ls, e, c, a.SetPolicy, d)
	case *failoverpb.OperatorCommand_SetExitLimit:
		return s.setExitLimit(c, a.SetExitLimit)
	case *failoverpb.OperatorCommand_SetFinalityQuorum:
		return s.setFinalityQuorum(c, a.SetFinalityQuorum)
	case *failoverpb.OperatorCommand_AddKeys:
		return s.addKeys(ls, e, c, d)
	case *failoverpb.OperatorCommand_DisableKey:
		return s.disableKey(ls, e, c, d)
	default:
		return applied{}, fmt.Errorf("%w: unknown action %T", ErrMalformed, a)
	}
}

// actionClass maps a command to the action whose threshold and role
// permission govern it.
func actionClass(cmd *failoverpb.OperatorCommand) failoverpb.Action {
	switch cmd.Action.(type) {
	case *failoverpb.OperatorCommand_RequestHandover, *failoverpb.OperatorCommand_ApproveHandover, *failoverpb.OperatorCommand_CancelHandover:
		return failoverpb.Action_ACTION_HANDOVER
	case *failoverpb.OperatorCommand_AddOperator, *failoverpb.OperatorCommand_RemoveOperator, *failoverpb.OperatorCommand_SetThreshold,
		*failoverpb.OperatorCommand_SetDrPolicy, *failoverpb.OperatorCommand_SetFinalityQuorum:
		return failoverpb.Action_ACTION_REGISTRY
	case *failoverpb.OperatorCommand_SetPolicy, *failoverpb.OperatorCommand_SetExitLimit:
		return failoverpb.Action_ACTION_POLICY
	case *failoverpb.OperatorCommand_ApproveExit:
		return failoverpb.Action_ACTION_EXIT
	case *failoverpb.OperatorCommand_AddKeys, *failoverpb.OperatorCommand_DisableKey:
		return failoverpb.Action_ACTION_KEYS
	default:
		return failoverpb.Action_ACTION_UNSPECIFIED
	}
}

// actionName is the audit action of a command.
func actionName(cmd *failoverpb.OperatorCommand) string {
	switch cmd.Action.(type) {
	case *failoverpb.OperatorCommand_RequestHandover:
		return "handover.request"
	case *failoverpb.OperatorCommand_ApproveHandover:
		return "handover.approve"
	case *failoverpb.OperatorCommand_CancelHandover:
		return "handover.cancel"
	case *failoverpb.OperatorCommand_AddOperator:
		return "operator.add"
	case *failoverpb.OperatorCommand_RemoveOperator:
		return "operator.remove"
	case *failoverpb.OperatorCommand_SetThreshold:
		return "threshold.set"
	case *failoverpb.OperatorCommand_SetDrPolicy:
		return "dr_policy.set"
	case *failoverpb.OperatorCommand_ApproveExit:
		return "exit.approve"
	case *failoverpb.OperatorCommand_SetPolicy:
		return "policy.set"
	case *failoverpb.OperatorCommand_SetExitLimit:
		return "exit_limit.set"
	case *failoverpb.OperatorCommand_SetFinalityQuorum:
		return "finality_quorum.set"
	case *failoverpb.OperatorCommand_AddKeys:
		return "keys.add"
	case *failoverpb.OperatorCommand_DisableKey:
		return "keys.disable"
	default:
		return "operator_command"
	}
}

// validApprovals counts approvals whose operator is still registered with
// a role that permits handovers (a removed operator's approval no longer
// counts).
func (s *State) validApprovals(as []Approval) uint32 {
	n := uint32(0)
	for _, a := range as {
		if op, ok := s.operators[a.OperatorID]; ok && Permits(op.Role, failoverpb.Action_ACTION_HANDOVER) {
			n++
		}
	}
	return n
}

func (s *State) requestHandover(ls *leader.State, e fsm.Entry, c *signed, r *failoverpb.RequestHandover) (applied, error) {
	if err := checkReason(r.GetReason()); err != nil {
		return applied{}, err
	}
	to := r.GetTo()
	if !isVoter(ls, to) {
		return applied{}, fmt.Errorf("%w: handover target %q", ErrUnknownRegion, to)
	}
	l := ls.Lease()
	switch {
	case l.State == leader.LeaseVacant:
		return applied{}, fmt.Errorf("%w: the lease is vacant (not granted yet)", ErrHandoverState)
	case l.State == leader.LeaseActive && l.Holder == to:
		return applied{}, fmt.Errorf("%w: %q already holds the lease", ErrHandoverState, to)
	}
	open := s.open()
	thr := s.thresholds[failoverpb.Action_ACTION_HANDOVER]
	approvals := append([]Approval(nil), c.approvals...)
	reach := s.validApprovals(approvals) >= thr
	if open != nil {
		if open.State == HandoverRequested {
			return applied{}, fmt.Errorf("%w: handover %d to %s is open; approve or cancel it first", ErrHandoverState, open.ID, open.To)
		}
		if !reach {
			return applied{}, fmt.Errorf("%w: handover %d is fenced; redirecting it needs %d signatures on the request, it has %d",
				ErrBelowThreshold, open.ID, thr, len(approvals))
		}
	}
	h := &Handover{ID: e.Index, From: l.Holder, To: to, Reason: r.GetReason(), RequestedBy: c.cmd.OperatorId,
		RequestedUnixNano: e.Envelope.GetProposedAtUnixNano(), State: HandoverRequested, Approvals: approvals}
	out := applied{reason: r.GetReason(), handover: h.ID, detail: fmt.Sprintf("handover %d: %s → %s", h.ID, l.Holder, to)}
	fenceNow := reach && l.State == leader.LeaseActive
	if fenceNow {
		if err := ls.Fence(e, l.Epoch, fenceReason(h)); err != nil {
			return applied{}, fmt.Errorf("%w: %w", ErrHandoverState, err)
		}
	}
	if open != nil {
		s.close(open, e, HandoverRejected, c.cmd.OperatorId, fmt.Sprintf("superseded by handover %d to %s", h.ID, to))
		out.extra = append(out.extra, note{actor: c.cmd.OperatorId, action: "handover.close", handoverID: open.ID, detail: open.CloseReason})
	}
	if reach {
		s.markFenced(h, ls, e)
		if fenceNow {
			out.extra = append(out.extra, s.fenceNote(ls, h, c.cmd.OperatorId))
		}
	}
	s.addHandover(h)
	return out, nil
}

func fenceReason(h *Handover) string {
	ids := make([]string, len(h.Approvals))
	for i, a := range h.Approvals {
		ids[i] = a.OperatorID
	}
	return fmt.Sprintf("handover %d to %s approved by %s", h.ID, h.To, strings.Join(ids, ", "))
}

func (s *State) approveHandover(ls *leader.State, e fsm.Entry, c *signed, r *failoverpb.ApproveHandover) (applied, error) {
	h := s.open()
	if h == nil || h.ID != r.GetHandoverId() {
		return applied{}, fmt.Errorf("%w: %d", ErrNoHandover, r.GetHandoverId())
	}
	out := applied{handover: h.ID}
	if h.State != HandoverRequested {
		return out, fmt.Errorf("%w: handover %d is %s; approvals are taken before the fence", ErrHandoverState, h.ID, h.State)
	}
	for _, a := range c.approvals {
		if h.approvedBy(a.OperatorID) {
			return out, fmt.Errorf("%w: %q already approved handover %d", ErrDuplicateApproval, a.OperatorID, h.ID)
		}
	}
	merged := append(append([]Approval(nil), h.Approvals...), c.approvals...)
	thr := s.thresholds[failoverpb.Action_ACTION_HANDOVER]
	count := s.validApprovals(merged)
	reach := count >= thr
	l := ls.Lease()
	fenceNow := reach && l.State == leader.LeaseActive
	switch {
	case reach && l.State == leader.LeaseActive && l.Holder == h.To:
		return out, fmt.Errorf("%w: %q already holds the lease", ErrHandoverState, h.To)
	case reach && l.State == leader.LeaseVacant:
		return out, fmt.Errorf("%w: the lease is vacant", ErrHandoverState)
	}
	probe := *h
	probe.Approvals = merged
	if fenceNow {
		if err := ls.Fence(e, l.Epoch, fenceReason(&probe)); err != nil {
			return out, fmt.Errorf("%w: %w", ErrHandoverState, err)
		}
	}
	h.Approvals = merged
	out.detail = fmt.Sprintf("handover %d to %s: %d of %d approvals", h.ID, h.To, count, thr)
	if reach {
		s.markFenced(h, ls, e)
		if fenceNow {
			out.extra = append(out.extra, s.fenceNote(ls, h, c.cmd.OperatorId))
		}
	}
	return out, nil
}

func (s *State) cancelHandover(e fsm.Entry, c *signed, r *failoverpb.CancelHandover) (applied, error) {
	if err := checkReason(r.GetReason()); err != nil {
		return applied{}, err
	}
	h := s.open()
	if h == nil || h.ID != r.GetHandoverId() {
		return applied{}, fmt.Errorf("%w: %d", ErrNoHandover, r.GetHandoverId())
	}
	out := applied{handover: h.ID, reason: r.GetReason()}
	if h.State != HandoverRequested {
		return out, fmt.Errorf("%w: handover %d is %s; a handover can be cancelled only before the fence", ErrHandoverState, h.ID, h.State)
	}
	s.close(h, e, HandoverCancelled, c.cmd.OperatorId, r.GetReason())
	out.detail = fmt.Sprintf("handover %d to %s cancelled", h.ID, h.To)
	return out, nil
}

func (s *State) addOperator(e fsm.Entry, c *signed, r *failoverpb.AddOperator) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	if len(s.operators) >= MaxOperators {
		return applied{}, fmt.Errorf("%w: registry holds %d operators already", ErrRegistry, len(s.operators))
	}
	op, err := newOperator(r.GetId(), r.GetPublicKey(), r.GetRole(), e.Index, s.operators)
	if err != nil {
		return applied{}, err
	}
	s.operators[op.ID] = op
	return applied{detail: fmt.Sprintf("operator %s (%v) added, key sha256 %x", op.ID, op.Role, keyDigest(op.PublicKey))}, nil
}

func keyDigest(der []byte) []byte {
	d := sha256.Sum256(der)
	return d[:8]
}

func (s *State) removeOperator(c *signed, r *failoverpb.RemoveOperator) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	if _, ok := s.operators[r.GetId()]; !ok {
		return applied{}, fmt.Errorf("%w: %q", ErrUnknownOperator, r.GetId())
	}
	rest := make(map[string]*Operator, len(s.operators))
	for id, o := range s.operators {
		if id != r.GetId() {
			rest[id] = o
		}
	}
	for _, a := range Actions() {
		if el := s.eligible(a, rest); el < s.thresholds[a] {
			return applied{}, fmt.Errorf("%w: removing %q leaves %d operators for %v, which needs %d", ErrRegistry, r.GetId(), el, a, s.thresholds[a])
		}
	}
	delete(s.operators, r.GetId())
	return applied{detail: fmt.Sprintf("operator %s removed", r.GetId())}, nil
}

func (s *State) setThreshold(c *signed, r *failoverpb.SetThreshold) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	if !validAction(r.GetAction()) {
		return applied{}, fmt.Errorf("%w: action %v", ErrRegistry, r.GetAction())
	}
	if el := s.eligible(r.GetAction(), s.operators); r.GetRequired() < 1 || r.GetRequired() > el {
		return applied{}, fmt.Errorf("%w: %v threshold %d (1..%d operators who may sign it)", ErrRegistry, r.GetAction(), r.GetRequired(), el)
	}
	old := s.thresholds[r.GetAction()]
	s.thresholds[r.GetAction()] = r.GetRequired()
	return applied{detail: fmt.Sprintf("%v threshold %d → %d", r.GetAction(), old, r.GetRequired())}, nil
}

func (s *State) setDRPolicy(ls *leader.State, e fsm.Entry, c *signed, r *failoverpb.SetDRPolicy) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	region := r.GetRegion()
	if !validID(region) {
		return applied{}, fmt.Errorf("%w: region %q", ErrMalformed, region)
	}
	if r.GetEnabled() {
		if !isVoter(ls, region) {
			return applied{}, fmt.Errorf("%w: DR region %q", ErrUnknownRegion, region)
		}
		if sec := r.GetSilenceSeconds(); sec < MinDRSilenceSeconds || sec > MaxDRSilenceSeconds {
			return applied{}, fmt.Errorf("%w: silence %ds (%d..%d)", ErrMalformed, sec, MinDRSilenceSeconds, MaxDRSilenceSeconds)
		}
	} else if _, ok := s.dr[region]; !ok {
		return applied{}, fmt.Errorf("%w: no DR policy for %q to disable", ErrMalformed, region)
	}
	s.dr[region] = &DRPolicy{Region: region, SilenceSeconds: r.GetSilenceSeconds(), Enabled: r.GetEnabled(), Index: e.Index,
		Approvals: append([]Approval(nil), c.approvals...)}
	if !r.GetEnabled() {
		return applied{detail: fmt.Sprintf("DR policy for %s disabled", region)}, nil
	}
	return applied{detail: fmt.Sprintf("DR policy: %s may take over after %ds of holder silence", region, r.GetSilenceSeconds())}, nil
}

// unixDay is the UTC day of a Unix-nanosecond time (floor division).
func unixDay(ns int64) int64 {
	const day = int64(86400e9)
	d := ns / day
	if ns%day < 0 {
		d--
	}
	return d
}

func (s *State) approveExit(ls *leader.State, e fsm.Entry, c *signed, r *failoverpb.ApproveExit, now int64, d *delegate) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	if err := checkReason(r.GetReason()); err != nil {
		return applied{}, err
	}
	day := unixDay(now)
	count := uint32(0)
	if day == s.exitDay {
		count = s.exitCount
	}
	if count >= s.exitLimit {
		return applied{}, fmt.Errorf("%w: %d of %d exit approvals used on day %d", ErrExitLimit, count, s.exitLimit, day)
	}
	if err := d.call(ls, e, commandpb.CommandType_APPROVE_EXIT, &commandpb.ApproveExit{Pubkey: r.GetPubkey(), Operator: strings.Join(c.signerIDs(), "+"), Reason: r.GetReason()}); err != nil {
		return applied{}, err
	}
	s.exitDay, s.exitCount = day, count+1
	return applied{reason: r.GetReason(), detail: fmt.Sprintf("exit of %x approved (%d of %d today)", r.GetPubkey(), count+1, s.exitLimit)}, nil
}

func (s *State) setPolicy(ls *leader.State, e fsm.Entry, c *signed, r *failoverpb.SetPolicy, d *delegate) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	if err := d.call(ls, e, commandpb.CommandType_SET_POLICY, &commandpb.SetPolicy{Identity: r.GetIdentity(), KeyPatterns: r.GetKeyPatterns(), MessageTypes: r.GetMessageTypes(), Remove: r.GetRemove()}); err != nil {
		return applied{}, err
	}
	if r.GetRemove() {
		return applied{detail: fmt.Sprintf("policy of %q removed", r.GetIdentity())}, nil
	}
	return applied{detail: fmt.Sprintf("policy of %q: keys %v, types %v", r.GetIdentity(), r.GetKeyPatterns(), r.GetMessageTypes())}, nil
}

func (s *State) setExitLimit(c *signed, r *failoverpb.SetExitLimit) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	if r.GetPerDay() > MaxExitLimit {
		return applied{}, fmt.Errorf("%w: exit limit %d (at most %d)", ErrMalformed, r.GetPerDay(), MaxExitLimit)
	}
	old := s.exitLimit
	s.exitLimit = r.GetPerDay()
	return applied{detail: fmt.Sprintf("exit limit %d → %d per day", old, r.GetPerDay())}, nil
}

func (s *State) setFinalityQuorum(c *signed, r *failoverpb.SetFinalityQuorum) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	if q := r.GetEndpoints(); q < 1 || q > MaxFinalityQuorum {
		return applied{}, fmt.Errorf("%w: finality quorum %d (1..%d)", ErrMalformed, q, MaxFinalityQuorum)
	}
	old := s.finalityQuorum
	s.finalityQuorum = r.GetEndpoints()
	return applied{detail: fmt.Sprintf("finality quorum %d → %d endpoints", old, r.GetEndpoints())}, nil
}

func (s *State) addKeys(ls *leader.State, e fsm.Entry, c *signed, d *delegate) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	keys := c.cmd.GetAddKeys()
	if err := d.call(ls, e, commandpb.CommandType_ADD_KEY, keys); err != nil {
		return applied{}, err
	}
	return applied{detail: fmt.Sprintf("%d keys submitted", len(keys.GetKeys()))}, nil
}

func (s *State) disableKey(ls *leader.State, e fsm.Entry, c *signed, d *delegate) (applied, error) {
	if err := s.threshold(c); err != nil {
		return applied{}, err
	}
	dk := c.cmd.GetDisableKey()
	if err := checkReason(dk.GetReason()); err != nil {
		return applied{}, err
	}
	if err := d.call(ls, e, commandpb.CommandType_DISABLE_KEY, dk); err != nil {
		return applied{}, err
	}
	return applied{reason: dk.GetReason(), detail: fmt.Sprintf("key %x disabled", dk.GetPubkey())}, nil
}
