package leader

import (
	"fmt"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/eth"
)

// LocalMachine is a replicated state machine without Raft: commands are
// encoded as log entries and applied in order through the same FSM and
// handlers a region runs. The conformance runner and tests use it to
// exercise the exact apply path; it is not safe for concurrent use.
type LocalMachine struct {
	FSM    *fsm.FSM[*State]
	holder string
	index  uint64
	now    int64
}

// NewLocalMachine returns a machine whose single member holder holds the
// lease at epoch 1.
func NewLocalMachine(holder string) (*LocalMachine, error) {
	f, err := fsm.New(fsm.Config[*State]{New: NewState, Registry: NewRegistry(), Fatal: func(error) {}})
	if err != nil {
		return nil, err
	}
	m := &LocalMachine{FSM: f, holder: holder}
	m.index++
	f.ApplyBatch([]*raft.Log{{Index: m.index, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{
		Servers: []raft.Server{{ID: raft.ServerID(holder), Address: raft.ServerAddress(holder), Suffrage: raft.Voter}},
	})}})
	if _, err := m.Apply(commandpb.CommandType_GRANT_LEASE, &commandpb.GrantLease{Holder: holder}); err != nil {
		return nil, err
	}
	return m, nil
}

// Apply encodes one command as the next log entry and applies it.
func (m *LocalMachine) Apply(t commandpb.CommandType, msg proto.Message) (any, error) {
	m.index++
	m.now += 1e9
	data, err := fsm.Encode(t, msg, m.holder, m.now)
	if err != nil {
		return nil, err
	}
	resp := m.FSM.Apply(&raft.Log{Index: m.index, Term: 1, Type: raft.LogCommand, Data: data}).(fsm.Response)
	return resp.Value, resp.Err
}

// Record applies one RecordSignatures entry under the current lease.
func (m *LocalMachine) Record(records ...*commandpb.ProtectionRecord) ([]Outcome, error) {
	var epoch uint64
	m.FSM.View(func(s *State, _ uint64) { epoch = s.Lease().Epoch })
	v, err := m.Apply(commandpb.CommandType_RECORD_SIGNATURES, &commandpb.RecordSignatures{Holder: m.holder, LeaseEpoch: epoch, Records: records})
	if err != nil {
		return nil, err
	}
	return v.(BatchResult).Outcomes, nil
}

// EthTarget adapts a LocalMachine to the EIP-3076 conformance runner's
// Target: keys are registered on first use, interchanges go through the
// ImportInterchange command, and every block and attestation is a
// RecordSignatures entry.
type EthTarget struct {
	M     *LocalMachine
	known map[eth.Pubkey]bool
}

// NewEthTarget returns a fresh target.
func NewEthTarget() (*EthTarget, error) {
	m, err := NewLocalMachine("conformance")
	if err != nil {
		return nil, err
	}
	return &EthTarget{M: m, known: map[eth.Pubkey]bool{}}, nil
}

func (t *EthTarget) ensureKey(gvr eth.Root, pk eth.Pubkey) error {
	if t.known[pk] {
		return nil
	}
	_, err := t.M.Apply(commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: []*commandpb.AddKey{{
		Pubkey: pk[:], Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(gvr),
	}}})
	if err != nil {
		return fmt.Errorf("register %s: %w", pk, err)
	}
	t.known[pk] = true
	return nil
}

// Import applies an ImportInterchange command, registering unknown keys.
func (t *EthTarget) Import(interchangeJSON []byte, gvr eth.Root) error {
	_, err := t.M.Apply(commandpb.CommandType_IMPORT_INTERCHANGE, &commandpb.ImportInterchange{
		GenesisValidatorsRoot: gvr[:], InterchangeJson: interchangeJSON, RegisterKeys: true,
	})
	if err != nil {
		return err
	}
	t.M.FSM.View(func(s *State, _ uint64) {
		for _, k := range s.Keys() {
			if pk, err := pubkey48(k.Pubkey); err == nil {
				t.known[pk] = true
			}
		}
	})
	return nil
}

// SignBlock records a block proposal through the FSM.
func (t *EthTarget) SignBlock(gvr eth.Root, pk eth.Pubkey, slot uint64, root eth.Root) (slashing.Result, error) {
	if err := t.ensureKey(gvr, pk); err != nil {
		return slashing.Result{}, err
	}
	outs, err := t.M.Record(&commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthBlock{EthBlock: &commandpb.EthBlock{
		GenesisValidatorsRoot: gvr[:], Pubkey: pk[:], Slot: slot, SigningRoot: root[:],
	}}})
	if err != nil {
		return slashing.Result{}, err
	}
	return outs[0].Result, nil
}

// SignAttestation records an attestation through the FSM.
func (t *EthTarget) SignAttestation(gvr eth.Root, pk eth.Pubkey, source, target uint64, root eth.Root) (slashing.Result, error) {
	if err := t.ensureKey(gvr, pk); err != nil {
		return slashing.Result{}, err
	}
	outs, err := t.M.Record(&commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
		GenesisValidatorsRoot: gvr[:], Pubkey: pk[:], SourceEpoch: source, TargetEpoch: target, SigningRoot: root[:],
	}}})
	if err != nil {
		return slashing.Result{}, err
	}
	return outs[0].Result, nil
}
