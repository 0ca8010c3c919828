package failover

import (
	"bytes"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

// Machine is a replicated state machine with failover and without Raft,
// like leader.LocalMachine: each command is encoded as the next log entry
// and applied through the same FSM and handlers a region runs, with an
// explicit proposer and proposer time. Tests and drills use it; it is not
// safe for concurrent use.
type Machine struct {
	FSM   *fsm.FSM[*leader.State]
	index uint64
	now   time.Time
	// Step is how far the clock moves before each entry (default 1s).
	Step time.Duration
}

// MachineConfig configures NewMachine.
type MachineConfig struct {
	// Members are the voters (default dc1, dc2, dc3).
	Members []string
	// Holder is granted the lease at epoch 1 (default the first member);
	// "-" leaves the lease vacant.
	Holder string
	// Registry defaults to NewRegistry().
	Registry *fsm.Registry[*leader.State]
	// Start is the proposer clock of the first entry (default 2030-01-01 UTC).
	Start time.Time
}

// NewMachine returns a machine whose members are voters and whose holder
// holds the lease at epoch 1.
func NewMachine(cfg MachineConfig) (*Machine, error) {
	if len(cfg.Members) == 0 {
		cfg.Members = []string{"dc1", "dc2", "dc3"}
	}
	if cfg.Holder == "" {
		cfg.Holder = cfg.Members[0]
	}
	if cfg.Registry == nil {
		cfg.Registry = NewRegistry()
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	f, err := fsm.New(fsm.Config[*leader.State]{New: NewLeaderState, Registry: cfg.Registry, Fatal: func(error) {}})
	if err != nil {
		return nil, err
	}
	m := &Machine{FSM: f, now: cfg.Start, Step: time.Second}
	var servers []raft.Server
	for _, id := range cfg.Members {
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id), Suffrage: raft.Voter})
	}
	m.index++
	f.Apply(&raft.Log{Index: m.index, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{Servers: servers})})
	if cfg.Holder != "-" {
		if _, err := m.Apply(cfg.Holder, commandpb.CommandType_GRANT_LEASE, &commandpb.GrantLease{Holder: cfg.Holder}); err != nil {
			return nil, fmt.Errorf("failover: grant lease: %w", err)
		}
	}
	return m, nil
}

// Now is the machine's clock; the next Apply stamps Now()+Step.
func (m *Machine) Now() time.Time { return m.now }

// Advance moves the proposer clock.
func (m *Machine) Advance(d time.Duration) { m.now = m.now.Add(d) }

// Index is the index of the last entry applied.
func (m *Machine) Index() uint64 { return m.index }

// NextIndex is the index the next entry will get (a handover's id is the
// index of its request).
func (m *Machine) NextIndex() uint64 { return m.index + 1 }

// Apply encodes msg as the next entry, proposed by proposer at Now()+Step,
// and applies it. It returns the handler's value and error.
func (m *Machine) Apply(proposer string, t commandpb.CommandType, msg proto.Message) (any, error) {
	m.now = m.now.Add(m.Step)
	return m.ApplyAt(proposer, m.now.UnixNano(), t, msg)
}

// ApplyAt is Apply with an explicit proposer stamp (a proposer whose clock
// differs); the machine's clock does not move.
func (m *Machine) ApplyAt(proposer string, unixNano int64, t commandpb.CommandType, msg proto.Message) (any, error) {
	data, err := fsm.Encode(t, msg, proposer, unixNano)
	if err != nil {
		return nil, err
	}
	return m.ApplyRaw(data)
}

// ApplyPayload is Apply for an already marshalled (or deliberately
// malformed) payload.
func (m *Machine) ApplyPayload(proposer string, t commandpb.CommandType, payload []byte) (any, error) {
	m.now = m.now.Add(m.Step)
	data, err := fsm.EncodeRaw(t, payload, proposer, m.now.UnixNano())
	if err != nil {
		return nil, err
	}
	return m.ApplyRaw(data)
}

// ApplyRaw applies already encoded entry bytes as the next entry.
func (m *Machine) ApplyRaw(data []byte) (any, error) {
	m.index++
	resp, ok := m.FSM.Apply(&raft.Log{Index: m.index, Term: 1, Type: raft.LogCommand, Data: data}).(fsm.Response)
	if !ok {
		return nil, fmt.Errorf("failover: unexpected apply response")
	}
	return resp.Value, resp.Err
}

// Configure applies a membership configuration entry with these voters.
func (m *Machine) Configure(voters ...string) {
	var servers []raft.Server
	for _, id := range voters {
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id), Suffrage: raft.Voter})
	}
	m.index++
	m.FSM.Apply(&raft.Log{Index: m.index, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{Servers: servers})})
}

// View runs fn with the leader state and its failover extension.
func (m *Machine) View(fn func(ls *leader.State, s *State)) {
	m.FSM.View(func(ls *leader.State, _ uint64) { fn(ls, From(ls)) })
}

// Lease returns the current lease.
func (m *Machine) Lease() (l leader.Lease) {
	m.FSM.View(func(ls *leader.State, _ uint64) { l = ls.Lease() })
	return l
}

// StateBytes returns the state's snapshot without the FSM header (whose
// last-applied index differs between otherwise equal states).
func (m *Machine) StateBytes() ([]byte, error) {
	var b bytes.Buffer
	if err := m.FSM.WriteSnapshot(&b); err != nil {
		return nil, err
	}
	return b.Bytes()[20:], nil
}
