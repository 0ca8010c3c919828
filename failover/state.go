package failover

import (
	"crypto/sha256"
	"sort"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
)

// Name is the extension's name in leader.State and in snapshots.
const Name = "failover"

// Limits of the replicated state.
const (
	// MaxOperators bounds the operator registry.
	MaxOperators = 64
	// MaxClosedHandovers is how many closed handovers the state keeps
	// (the audit chain keeps all of them).
	MaxClosedHandovers = 32
	// MaxReason bounds a reason an operator or region writes.
	MaxReason = 512
	// MinDRSilenceSeconds and MaxDRSilenceSeconds bound a DR policy's
	// silence.
	MinDRSilenceSeconds = 30
	MaxDRSilenceSeconds = 30 * 24 * 3600
	// MaxExitLimit bounds the daily voluntary-exit limit.
	MaxExitLimit = 100_000
	// MaxFinalityQuorum bounds the endpoints finality evidence must name.
	MaxFinalityQuorum = 16
	// DefaultSlotsPerEpoch is used when evidence leaves slots_per_epoch 0.
	DefaultSlotsPerEpoch = 32
)

// Actions returns every action class, in the order thresholds are listed.
func Actions() []failoverpb.Action {
	return []failoverpb.Action{
		failoverpb.Action_ACTION_HANDOVER,
		failoverpb.Action_ACTION_REGISTRY,
		failoverpb.Action_ACTION_POLICY,
		failoverpb.Action_ACTION_EXIT,
		failoverpb.Action_ACTION_KEYS,
	}
}

// Permits reports whether role may sign action.
func Permits(role failoverpb.Role, action failoverpb.Action) bool {
	switch role {
	case failoverpb.Role_ROLE_ADMIN:
		return validAction(action)
	case failoverpb.Role_ROLE_OPERATOR:
		return action == failoverpb.Action_ACTION_HANDOVER || action == failoverpb.Action_ACTION_EXIT || action == failoverpb.Action_ACTION_KEYS
	default:
		return false
	}
}

func validAction(a failoverpb.Action) bool {
	for _, x := range Actions() {
		if a == x {
			return true
		}
	}
	return false
}

func validRole(r failoverpb.Role) bool {
	return r == failoverpb.Role_ROLE_ADMIN || r == failoverpb.Role_ROLE_OPERATOR || r == failoverpb.Role_ROLE_AUDITOR
}

// Operator is a registered operator.
type Operator struct {
	ID         string
	PublicKey  []byte // PKIX DER, Ed25519 or P-256
	Role       failoverpb.Role
	AddedIndex uint64
}

// HandoverState is where a handover stands.
type HandoverState uint8

const (
	HandoverUnknown HandoverState = iota
	// HandoverRequested: waiting for approvals; the lease is untouched.
	HandoverRequested
	// HandoverFenced: approvals reached the threshold (or a DR policy
	// authorised it); the lease is fenced, waiting for finality.
	HandoverFenced
	// HandoverCompleted: the target holds the lease at FencedEpoch+1.
	HandoverCompleted
	// HandoverCancelled: closed before the fence.
	HandoverCancelled
	// HandoverRejected: closed after the fence without completing, because
	// a later handover superseded it; the lease stayed fenced.
	HandoverRejected
)

func (h HandoverState) String() string {
	switch h {
	case HandoverRequested:
		return "requested"
	case HandoverFenced:
		return "fenced"
	case HandoverCompleted:
		return "completed"
	case HandoverCancelled:
		return "cancelled"
	case HandoverRejected:
		return "rejected"
	default:
		return "unknown"
	}
}

// Open reports whether the handover can still progress.
func (h HandoverState) Open() bool { return h == HandoverRequested || h == HandoverFenced }

// Handover is one handover of the lease. Its ID is the log index of the
// entry that created it (RequestHandover or DRTakeover).
type Handover struct {
	ID                uint64
	From              string // holder when requested
	To                string
	Reason            string
	RequestedBy       string // operator id, or the region for DR
	RequestedUnixNano int64
	State             HandoverState
	Approvals         []Approval
	DR                bool
	FencedEpoch       uint64
	FencedIndex       uint64
	FencedUnixNano    int64
	// Evidence is the ConfirmFinality payload that completed it.
	Evidence       []byte
	EvidenceDigest []byte
	ClosedIndex    uint64
	ClosedUnixNano int64
	ClosedBy       string
	CloseReason    string
}

func (h *Handover) clone() Handover {
	c := *h
	c.Approvals = append([]Approval(nil), h.Approvals...)
	c.Evidence = append([]byte(nil), h.Evidence...)
	c.EvidenceDigest = append([]byte(nil), h.EvidenceDigest...)
	return c
}

func (h *Handover) approvedBy(id string) bool {
	for _, a := range h.Approvals {
		if a.OperatorID == id {
			return true
		}
	}
	return false
}

// DRPolicy pre-authorises Region to take the lease over after the holder
// has been silent for SilenceSeconds.
type DRPolicy struct {
	Region         string
	SilenceSeconds uint32
	Enabled        bool
	Index          uint64     // entry that set it
	Approvals      []Approval // the operators who signed it
}

// Heartbeat is the last accepted LeaseHeartbeat.
type Heartbeat struct {
	Holder   string
	Epoch    uint64
	Index    uint64
	UnixNano int64
}

// State is the failover extension of leader.State. Only this package's
// handlers mutate it, one committed entry at a time; read it inside
// fsm.FSM.View through From.
type State struct {
	clusterID      string
	operators      map[string]*Operator
	thresholds     map[failoverpb.Action]uint32
	nonces         map[string]int64 // operator id + "\x00" + nonce → expiry
	handovers      []*Handover      // by id ascending; only the last may be open
	dr             map[string]*DRPolicy
	heartbeat      Heartbeat
	exitDay        int64
	exitCount      uint32
	exitLimit      uint32
	finalityQuorum uint32
	// clock is the latest "now" of an accepted operator command.
	clock int64
	audit []AuditRecord
}

// NewState returns an empty, not bootstrapped failover state.
func NewState() *State {
	return &State{
		operators:  make(map[string]*Operator),
		thresholds: make(map[failoverpb.Action]uint32),
		nonces:     make(map[string]int64),
		dr:         make(map[string]*DRPolicy),
	}
}

// New returns a fresh extension, for leader.NewStateWith.
func New() leader.Extension { return NewState() }

// NewLeaderState returns a fresh leader.State carrying a fresh failover
// extension: the fsm.Config.New of a region running failover.
func NewLeaderState() *leader.State { return leader.NewStateWith(New)() }

// Name implements leader.Extension.
func (s *State) Name() string { return Name }

// From returns the failover extension of ls, or nil when ls has none.
func From(ls *leader.State) *State {
	fs, _ := ls.Extension(Name).(*State)
	return fs
}

// ClusterID returns the cluster id fixed at bootstrap ("" before).
func (s *State) ClusterID() string { return s.clusterID }

// Bootstrapped reports whether the operator registry exists. From then
// on unsigned control-plane commands are refused (NewRegistry).
func (s *State) Bootstrapped() bool { return s.clusterID != "" }

// Operators returns the registry, sorted by id.
func (s *State) Operators() []Operator {
	out := make([]Operator, 0, len(s.operators))
	for _, o := range s.operators {
		c := *o
		c.PublicKey = append([]byte(nil), o.PublicKey...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Operator returns one operator.
func (s *State) Operator(id string) (Operator, bool) {
	o, ok := s.operators[id]
	if !ok {
		return Operator{}, false
	}
	c := *o
	c.PublicKey = append([]byte(nil), o.PublicKey...)
	return c, true
}

// Threshold returns the approvals action needs (0 before bootstrap).
func (s *State) Threshold(a failoverpb.Action) uint32 { return s.thresholds[a] }

// eligible counts operators whose role permits a.
func (s *State) eligible(a failoverpb.Action, operators map[string]*Operator) uint32 {
	n := uint32(0)
	for _, o := range operators {
		if Permits(o.Role, a) {
			n++
		}
	}
	return n
}

// Handovers returns the handovers kept in the state, oldest first.
func (s *State) Handovers() []Handover {
	out := make([]Handover, len(s.handovers))
	for i, h := range s.handovers {
		out[i] = h.clone()
	}
	return out
}

// Handover returns the handover with id.
func (s *State) Handover(id uint64) (Handover, bool) {
	for _, h := range s.handovers {
		if h.ID == id {
			return h.clone(), true
		}
	}
	return Handover{}, false
}

// OpenHandover returns the handover in progress, if any.
func (s *State) OpenHandover() (Handover, bool) {
	if h := s.open(); h != nil {
		return h.clone(), true
	}
	return Handover{}, false
}

func (s *State) open() *Handover {
	if n := len(s.handovers); n > 0 && s.handovers[n-1].State.Open() {
		return s.handovers[n-1]
	}
	return nil
}

// DRPolicies returns every DR policy, sorted by region.
func (s *State) DRPolicies() []DRPolicy {
	out := make([]DRPolicy, 0, len(s.dr))
	for _, p := range s.dr {
		c := *p
		c.Approvals = append([]Approval(nil), p.Approvals...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out
}

// LastHeartbeat returns the last accepted heartbeat.
func (s *State) LastHeartbeat() Heartbeat { return s.heartbeat }

// ExitLimit returns the daily voluntary-exit limit.
func (s *State) ExitLimit() uint32 { return s.exitLimit }

// ExitsApproved returns the UTC day (days since the Unix epoch, proposer
// time) of the last exit approval and how many were approved that day.
func (s *State) ExitsApproved() (day int64, count uint32) { return s.exitDay, s.exitCount }

// FinalityQuorum returns how many distinct endpoints finality evidence
// must name per chain.
func (s *State) FinalityQuorum() uint32 { return s.finalityQuorum }

// Clock returns the time of the latest accepted operator command (the
// larger of its proposer stamp and the clock before it).
func (s *State) Clock() int64 { return s.clock }

// NonceCount returns how many used nonces the state keeps.
func (s *State) NonceCount() int { return len(s.nonces) }

// Audit returns a copy of the audit chain.
func (s *State) Audit() []AuditRecord {
	out := make([]AuditRecord, len(s.audit))
	for i := range s.audit {
		out[i] = s.audit[i].clone()
	}
	return out
}

// AuditAt returns the audit records written by the entry at log index:
// how a proposer whose command was forwarded learns its outcome.
func (s *State) AuditAt(index uint64) []AuditRecord {
	i := sort.Search(len(s.audit), func(i int) bool { return s.audit[i].Index >= index })
	var out []AuditRecord
	for ; i < len(s.audit) && s.audit[i].Index == index; i++ {
		out = append(out, s.audit[i].clone())
	}
	return out
}

// AuditHead returns the number of audit records and the last one's hash
// (32 zero bytes when empty): compare an exported file with a region.
func (s *State) AuditHead() (n int, hash []byte) {
	if len(s.audit) == 0 {
		return 0, make([]byte, sha256.Size)
	}
	return len(s.audit), append([]byte(nil), s.audit[len(s.audit)-1].Hash...)
}
