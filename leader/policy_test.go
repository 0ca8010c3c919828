package leader

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/slashing"
)

func TestPolicyAllows(t *testing.T) {
	k := blsKey(1)
	tests := []struct {
		name string
		p    Policy
		key  []byte
		typ  string
		want bool
	}{
		{"wildcards", Policy{KeyPatterns: []string{"*"}, MessageTypes: []string{"*"}}, k, "ATTESTATION", true},
		{"exact key", Policy{KeyPatterns: []string{"0x" + hexOf(k)}, MessageTypes: []string{"ATTESTATION"}}, k, "ATTESTATION", true},
		{"prefix", Policy{KeyPatterns: []string{"0x" + hexOf(k)[:6] + "*"}, MessageTypes: []string{"*"}}, k, "BLOCK_V2", true},
		{"other key", Policy{KeyPatterns: []string{"0x" + hexOf(blsKey(2))}, MessageTypes: []string{"*"}}, k, "ATTESTATION", false},
		{"type not listed", Policy{KeyPatterns: []string{"*"}, MessageTypes: []string{"ATTESTATION"}}, k, "VOLUNTARY_EXIT", false},
		{"empty policy", Policy{}, k, "ATTESTATION", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Allows(tc.key, tc.typ); got != tc.want {
				t.Fatalf("Allows = %v, want %v", got, tc.want)
			}
		})
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func TestSetPolicyValidation(t *testing.T) {
	tests := []struct {
		name string
		cmd  *commandpb.SetPolicy
		want error
	}{
		{"valid", &commandpb.SetPolicy{Identity: "vc-1", KeyPatterns: []string{"*"}, MessageTypes: []string{"ATTESTATION"}}, nil},
		{"no identity", &commandpb.SetPolicy{KeyPatterns: []string{"*"}, MessageTypes: []string{"*"}}, ErrInvalidPolicy},
		{"no types", &commandpb.SetPolicy{Identity: "vc-1", KeyPatterns: []string{"*"}}, ErrInvalidPolicy},
		{"upper-case hex", &commandpb.SetPolicy{Identity: "vc-1", KeyPatterns: []string{"0xAB*"}, MessageTypes: []string{"*"}}, ErrInvalidPolicy},
		{"no 0x", &commandpb.SetPolicy{Identity: "vc-1", KeyPatterns: []string{"abc"}, MessageTypes: []string{"*"}}, ErrInvalidPolicy},
		{"bad type", &commandpb.SetPolicy{Identity: "vc-1", KeyPatterns: []string{"*"}, MessageTypes: []string{"attestation"}}, ErrInvalidPolicy},
		{"remove absent", &commandpb.SetPolicy{Identity: "nobody", Remove: true}, ErrInvalidPolicy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, 1)
			before := stateBytes(t, m)
			_, err := m.Apply(commandpb.CommandType_SET_POLICY, tc.cmd)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil && !bytes.Equal(before, stateBytes(t, m)) {
				t.Fatal("refused policy changed the state")
			}
		})
	}
}

func wrapKeyDER(t *testing.T, bits int) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// applyAs applies cmd with proposer as the envelope's proposer.
func applyAs(t *testing.T, m *LocalMachine, proposer string, ct commandpb.CommandType, msg proto.Message) error {
	t.Helper()
	m.index++
	data, err := fsm.Encode(ct, msg, proposer, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m.FSM.Apply(&raft.Log{Index: m.index, Type: raft.LogCommand, Data: data}).(fsm.Response).Err
}

func TestRegisterRegion(t *testing.T) {
	good := wrapKeyDER(t, 2048)
	tests := []struct {
		name     string
		proposer string
		cmd      *commandpb.RegisterRegion
		want     error
	}{
		{"self registration", "dc2", &commandpb.RegisterRegion{Region: "dc2", WrapPublicKey: good}, nil},
		{"on behalf of another region", "dc1", &commandpb.RegisterRegion{Region: "dc2", WrapPublicKey: good}, ErrInvalidRegion},
		{"not a member", "dc9", &commandpb.RegisterRegion{Region: "dc9", WrapPublicKey: good}, ErrInvalidRegion},
		{"garbage key", "dc2", &commandpb.RegisterRegion{Region: "dc2", WrapPublicKey: []byte{1, 2, 3}}, ErrInvalidRegion},
		{"weak key", "dc2", &commandpb.RegisterRegion{Region: "dc2", WrapPublicKey: wrapKeyDER(t, 1024)}, ErrInvalidRegion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, 0)
			before := stateBytes(t, m)
			err := applyAs(t, m, tc.proposer, commandpb.CommandType_REGISTER_REGION, tc.cmd)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil && !bytes.Equal(before, stateBytes(t, m)) {
				t.Fatal("refused registration changed the state")
			}
			if err == nil {
				var r Region
				m.FSM.View(func(s *State, _ uint64) { r, _ = s.Region("dc2") })
				if !bytes.Equal(r.WrapPublicKey, good) || len(r.WrapKeyID) != 32 {
					t.Fatalf("region = %+v", r)
				}
			}
		})
	}
}

func exitRec(key int, root []byte) *commandpb.ProtectionRecord {
	return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_Unslashable{Unslashable: &commandpb.Unslashable{
		Pubkey: blsKey(key), Kind: KindVoluntaryExit, SigningRoot: root}}}
}

func TestExitApproval(t *testing.T) {
	m := machine(t, 2)
	outs, err := m.Record(exitRec(0, sroot("exit")))
	if err != nil || !errors.Is(outs[0].Err, ErrExitNotApproved) {
		t.Fatalf("unapproved exit: %v %+v", err, outs)
	}
	if _, err := m.Apply(commandpb.CommandType_APPROVE_EXIT, &commandpb.ApproveExit{Pubkey: blsKey(0), Operator: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(commandpb.CommandType_APPROVE_EXIT, &commandpb.ApproveExit{Pubkey: blsKey(0), Operator: "bob"}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("second approval: %v", err)
	}
	if _, err := m.Apply(commandpb.CommandType_APPROVE_EXIT, &commandpb.ApproveExit{Pubkey: blsKey(7), Operator: "bob"}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("approval for unknown key: %v", err)
	}
	want := []slashing.Decision{slashing.DecisionAccepted, slashing.DecisionAccepted, slashing.DecisionFailed, slashing.DecisionFailed}
	outs, err = m.Record(exitRec(0, sroot("exit")), exitRec(0, sroot("exit")), exitRec(0, sroot("other exit")), exitRec(1, sroot("exit")))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if o.Decision != want[i] {
			t.Fatalf("exit %d: %s (%s), want %s", i, o.Decision, o.Reason, want[i])
		}
	}
	// The binding to the signed root survives a snapshot.
	r := machine(t, 0)
	if err := r.FSM.Restore(ioNopCloser(snap(t, m))); err != nil {
		t.Fatal(err)
	}
	if outs, _ := r.Record(exitRec(0, sroot("other exit"))); outs[0].Decision != slashing.DecisionFailed {
		t.Fatal("restored state forgot which exit was signed")
	}
}
