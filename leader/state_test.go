package leader

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/cometbft"
)

var (
	testGVR  = sha256.Sum256([]byte("test chain"))
	otherGVR = sha256.Sum256([]byte("other chain"))
)

func blsKey(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint("bls", i)))
	return append(h[:], h[:16]...)
}

func edKey(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint("ed", i)))
	return h[:]
}

func sroot(parts ...any) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return h[:]
}

func att(key int, src, tgt uint64, r []byte) *commandpb.ProtectionRecord {
	return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
		GenesisValidatorsRoot: testGVR[:], Pubkey: blsKey(key), SourceEpoch: src, TargetEpoch: tgt, SigningRoot: r}}}
}

func block(key int, slot uint64, r []byte) *commandpb.ProtectionRecord {
	return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthBlock{EthBlock: &commandpb.EthBlock{
		GenesisValidatorsRoot: testGVR[:], Pubkey: blsKey(key), Slot: slot, SigningRoot: r}}}
}

func voteBytes(t testing.TB, height int64, round int32, typ cometbft.SignedMsgType, sec int64, blockSeed string) []byte {
	t.Helper()
	v := cometbft.CanonicalVote{Type: typ, Height: height, Round: round, ChainID: "test-chain", Timestamp: cometbft.Timestamp{Seconds: sec}}
	if blockSeed != "" {
		v.BlockID = &cometbft.BlockID{Hash: sroot(blockSeed), PartSetHeader: cometbft.PartSetHeader{Total: 1, Hash: sroot("parts", blockSeed)}}
	}
	b, err := cometbft.EncodeVoteSignBytes(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func comet(key int, height int64, round int32, step int32, sb []byte) *commandpb.ProtectionRecord {
	return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_Comet{Comet: &commandpb.CometSign{
		Pubkey: edKey(key), ChainId: "test-chain", Height: height, Round: round, Step: step, SignBytes: sb}}}
}

// machine returns a local machine with members dc1..dc3, the lease on
// dc1 at epoch 1 and keys 0..n-1 (BLS on testGVR, Ed25519 on test-chain).
func machine(t testing.TB, n int) *LocalMachine {
	t.Helper()
	m, err := NewLocalMachine("dc1")
	if err != nil {
		t.Fatal(err)
	}
	m.index++
	m.FSM.ApplyBatch([]*raft.Log{{Index: m.index, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{
		{ID: "dc1", Address: "a1", Suffrage: raft.Voter}, {ID: "dc2", Address: "a2", Suffrage: raft.Voter}, {ID: "dc3", Address: "a3", Suffrage: raft.Voter},
	}})}})
	if n > 0 {
		add := &commandpb.AddKeys{}
		for i := 0; i < n; i++ {
			add.Keys = append(add.Keys,
				&commandpb.AddKey{Pubkey: blsKey(i), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(testGVR)},
				&commandpb.AddKey{Pubkey: edKey(i), Scheme: commandpb.Scheme_SCHEME_ED25519, Network: "test-chain"})
		}
		if _, err := m.Apply(commandpb.CommandType_ADD_KEY, add); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func snap(t testing.TB, m *LocalMachine) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.FSM.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// stateBytes is the snapshot without the header (whose last-applied index
// differs after a rejected entry, by design).
func stateBytes(t testing.TB, m *LocalMachine) []byte { return snap(t, m)[20:] }

func lease(m *LocalMachine) (l Lease) {
	m.FSM.View(func(s *State, _ uint64) { l = s.Lease() })
	return l
}

func TestLeaseTransitions(t *testing.T) {
	type step struct {
		t       commandpb.CommandType
		msg     proto.Message
		wantErr error
	}
	tests := []struct {
		name  string
		steps []step
		want  Lease
	}{
		{"second grant refused", []step{
			{commandpb.CommandType_GRANT_LEASE, &commandpb.GrantLease{Holder: "dc2"}, ErrLeaseTransition},
		}, Lease{Holder: "dc1", Epoch: 1, State: LeaseActive}},
		{"fence then activate dc2 at epoch 2", []step{
			{commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1}, nil},
			{commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 2}, nil},
		}, Lease{Holder: "dc2", Epoch: 2, State: LeaseActive}},
		{"fence of a stale epoch refused", []step{
			{commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 0}, ErrLeaseTransition},
		}, Lease{Holder: "dc1", Epoch: 1, State: LeaseActive}},
		{"activate without fence refused", []step{
			{commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 2}, ErrLeaseTransition},
		}, Lease{Holder: "dc1", Epoch: 1, State: LeaseActive}},
		{"activate skipping an epoch refused", []step{
			{commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1}, nil},
			{commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 3}, ErrLeaseTransition},
		}, Lease{Holder: "dc1", Epoch: 1, State: LeaseFenced}},
		{"activate a non-member refused", []step{
			{commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1}, nil},
			{commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc9", Epoch: 2}, ErrUnknownMember},
		}, Lease{Holder: "dc1", Epoch: 1, State: LeaseFenced}},
		{"double fence refused", []step{
			{commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1}, nil},
			{commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1}, ErrLeaseTransition},
		}, Lease{Holder: "dc1", Epoch: 1, State: LeaseFenced}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, 0)
			for i, s := range tc.steps {
				before := stateBytes(t, m)
				_, err := m.Apply(s.t, s.msg)
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: err = %v, want %v", i, err, s.wantErr)
				}
				if err != nil && !bytes.Equal(before, stateBytes(t, m)) {
					t.Fatalf("step %d: a refused command changed the state", i)
				}
			}
			got := lease(m)
			if got.Holder != tc.want.Holder || got.Epoch != tc.want.Epoch || got.State != tc.want.State {
				t.Fatalf("lease = %s %s@%d, want %s %s@%d", got.State, got.Holder, got.Epoch, tc.want.State, tc.want.Holder, tc.want.Epoch)
			}
		})
	}
}

func TestGrantNeedsAMember(t *testing.T) {
	f, err := fsm.New(fsm.Config[*State]{New: NewState, Registry: NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	m := &LocalMachine{FSM: f, holder: "dc1"}
	if _, err := m.Apply(commandpb.CommandType_GRANT_LEASE, &commandpb.GrantLease{Holder: "dc1"}); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("err = %v, want ErrUnknownMember", err)
	}
}

// TestStaleLeaseRejected: I2. A record whose (holder, epoch) is not the
// current active lease is rejected as a whole and changes nothing.
func TestStaleLeaseRejected(t *testing.T) {
	tests := []struct {
		name   string
		prep   func(m *LocalMachine)
		holder string
		epoch  uint64
	}{
		{"old epoch after handover", func(m *LocalMachine) {
			m.Apply(commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1})
			m.Apply(commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 2})
		}, "dc1", 1},
		{"new holder with the old epoch", func(m *LocalMachine) {
			m.Apply(commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1})
			m.Apply(commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 2})
		}, "dc2", 1},
		{"holder while fenced", func(m *LocalMachine) {
			m.Apply(commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1})
		}, "dc1", 1},
		{"non-holder at the current epoch", func(*LocalMachine) {}, "dc2", 1},
		{"holder claiming a future epoch", func(*LocalMachine) {}, "dc1", 2},
		{"another region naming the holder", func(m *LocalMachine) { m.holder = "dc2" }, "dc1", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, 2)
			tc.prep(m)
			before := stateBytes(t, m)
			_, err := m.Apply(commandpb.CommandType_RECORD_SIGNATURES, &commandpb.RecordSignatures{
				Holder: tc.holder, LeaseEpoch: tc.epoch, Records: []*commandpb.ProtectionRecord{att(0, 0, 1, sroot("a"))}})
			if !errors.Is(err, ErrStaleLease) {
				t.Fatalf("err = %v, want ErrStaleLease", err)
			}
			if !bytes.Equal(before, stateBytes(t, m)) {
				t.Fatal("a rejected batch changed the state")
			}
		})
	}
}

func TestRecordOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		history []*commandpb.ProtectionRecord
		rec     *commandpb.ProtectionRecord
		want    slashing.Decision
		rule    slashing.Rule
		wantErr error
	}{
		{"first attestation", nil, att(0, 1, 2, sroot(1)), slashing.DecisionAccepted, "", nil},
		{"identical re-sign", []*commandpb.ProtectionRecord{att(0, 1, 2, sroot(1))}, att(0, 1, 2, sroot(1)), slashing.DecisionAccepted, "", nil},
		{"double vote", []*commandpb.ProtectionRecord{att(0, 1, 2, sroot(1))}, att(0, 1, 2, sroot(2)), slashing.DecisionDenied, slashing.RuleAttDoubleVote, nil},
		{"surrounding vote", []*commandpb.ProtectionRecord{att(0, 1, 2, sroot(0)), att(0, 3, 4, sroot(1))}, att(0, 2, 5, sroot(2)), slashing.DecisionDenied, slashing.RuleAttSurrounding, nil},
		{"surrounded vote", []*commandpb.ProtectionRecord{att(0, 1, 2, sroot(0)), att(0, 2, 6, sroot(1))}, att(0, 3, 5, sroot(2)), slashing.DecisionDenied, slashing.RuleAttSurrounded, nil},
		{"source below watermark", []*commandpb.ProtectionRecord{att(0, 3, 4, sroot(1))}, att(0, 2, 5, sroot(2)), slashing.DecisionDenied, slashing.RuleAttSourceBelowMin, nil},
		{"double block", []*commandpb.ProtectionRecord{block(0, 10, sroot(1))}, block(0, 10, sroot(2)), slashing.DecisionDenied, slashing.RuleBlockDoubleProposal, nil},
		{"other key unaffected", []*commandpb.ProtectionRecord{att(0, 1, 2, sroot(1))}, att(1, 1, 2, sroot(2)), slashing.DecisionAccepted, "", nil},
		{"unknown key", nil, att(7, 1, 2, sroot(1)), slashing.DecisionFailed, "", ErrUnknownKey},
		{"wrong network", nil, &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
			GenesisValidatorsRoot: otherGVR[:], Pubkey: blsKey(0), SourceEpoch: 1, TargetEpoch: 2, SigningRoot: sroot(1)}}}, slashing.DecisionFailed, "", ErrInvalidInput},
		{"short signing root", nil, att(0, 1, 2, []byte{1, 2}), slashing.DecisionFailed, "", ErrInvalidInput},
		{"ed25519 key used for ethereum", nil, &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthBlock{EthBlock: &commandpb.EthBlock{
			GenesisValidatorsRoot: testGVR[:], Pubkey: append(edKey(0), make([]byte, 16)...), Slot: 1, SigningRoot: sroot(1)}}}, slashing.DecisionFailed, "", ErrUnknownKey},
		{"empty record", nil, &commandpb.ProtectionRecord{}, slashing.DecisionFailed, "", ErrInvalidInput},
		{"unslashable on a known key", nil, &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_Unslashable{Unslashable: &commandpb.Unslashable{
			Pubkey: blsKey(0), Kind: "RANDAO_REVEAL", SigningRoot: sroot(1)}}}, slashing.DecisionAccepted, "", nil},
		{"unslashable on an unknown key", nil, &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_Unslashable{Unslashable: &commandpb.Unslashable{
			Pubkey: blsKey(9), Kind: "RANDAO_REVEAL"}}}, slashing.DecisionFailed, "", ErrUnknownKey},
		{"comet prevote", nil, comet(0, 5, 0, 2, voteBytes(t, 5, 0, cometbft.TypePrevote, 100, "b")), slashing.DecisionAccepted, "", nil},
		{"comet regression", []*commandpb.ProtectionRecord{comet(0, 5, 0, 2, voteBytes(t, 5, 0, cometbft.TypePrevote, 100, "b"))},
			comet(0, 4, 0, 2, voteBytes(t, 4, 0, cometbft.TypePrevote, 100, "b")), slashing.DecisionDenied, slashing.RuleHRSRegression, nil},
		{"comet conflicting block", []*commandpb.ProtectionRecord{comet(0, 5, 0, 2, voteBytes(t, 5, 0, cometbft.TypePrevote, 100, "b"))},
			comet(0, 5, 0, 2, voteBytes(t, 5, 0, cometbft.TypePrevote, 100, "c")), slashing.DecisionDenied, slashing.RuleHRSConflict, nil},
		{"comet bad step", nil, comet(0, 5, 0, 7, voteBytes(t, 5, 0, cometbft.TypePrevote, 100, "b")), slashing.DecisionFailed, "", ErrInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, 2)
			if len(tc.history) > 0 {
				outs, err := m.Record(tc.history...)
				if err != nil {
					t.Fatal(err)
				}
				for i, o := range outs {
					if !o.Accepted() {
						t.Fatalf("history %d refused: %s", i, o.Reason)
					}
				}
			}
			outs, err := m.Record(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			o := outs[0]
			if o.Decision != tc.want || o.Rule != tc.rule {
				t.Fatalf("got %s/%s (%s), want %s/%s", o.Decision, o.Rule, o.Reason, tc.want, tc.rule)
			}
			if tc.wantErr != nil && !errors.Is(o.Err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", o.Err, tc.wantErr)
			}
			if o.Decision == slashing.DecisionDenied && o.Reason == "" {
				t.Fatal("a denial must say what it compared")
			}
		})
	}
}

func TestCometTimestampOnlyRetryReturnsEarlierBytes(t *testing.T) {
	m := machine(t, 1)
	first := voteBytes(t, 5, 0, cometbft.TypePrecommit, 100, "b")
	if outs, err := m.Record(comet(0, 5, 0, 3, first)); err != nil || !outs[0].Accepted() {
		t.Fatalf("first: %v %+v", err, outs)
	}
	outs, err := m.Record(comet(0, 5, 0, 3, voteBytes(t, 5, 0, cometbft.TypePrecommit, 200, "b")))
	if err != nil {
		t.Fatal(err)
	}
	o := outs[0]
	if !o.Accepted() || !o.ReusedEarlier || !bytes.Equal(o.SignBytes, first) || o.Timestamp.Seconds != 100 {
		t.Fatalf("got %+v, want accepted re-use of the first bytes at t=100", o)
	}
}

// TestBatchOrderWithinEntry: two conflicting records in one entry; only the
// first is accepted, whatever the key interleaving.
func TestBatchOrderWithinEntry(t *testing.T) {
	m := machine(t, 2)
	outs, err := m.Record(att(0, 1, 2, sroot("x")), att(1, 1, 2, sroot("y")), att(0, 1, 2, sroot("z")), att(0, 1, 2, sroot("x")))
	if err != nil {
		t.Fatal(err)
	}
	want := []slashing.Decision{slashing.DecisionAccepted, slashing.DecisionAccepted, slashing.DecisionDenied, slashing.DecisionAccepted}
	for i, o := range outs {
		if o.Decision != want[i] {
			t.Fatalf("record %d: %s (%s), want %s", i, o.Decision, o.Reason, want[i])
		}
	}
}

func TestFenceFixesHighWater(t *testing.T) {
	m := machine(t, 2)
	if _, err := m.Record(att(0, 1, 2, sroot(1)), att(1, 3, 9, sroot(2)), block(0, 77, sroot(3)), comet(0, 42, 0, 1, mustProposal(t, 42))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	hw := lease(m).HighWater
	if mk := hw.Eth[testGVR]; mk.MaxBlockSlot != 77 || mk.MaxTargetEpoch != 9 || hw.Comet["test-chain"] != 42 {
		t.Fatalf("high water = %s", hw)
	}
}

func mustProposal(t testing.TB, h int64) []byte {
	t.Helper()
	b, err := cometbft.EncodeProposalSignBytes(cometbft.CanonicalProposal{Height: h, Round: 0, POLRound: -1,
		BlockID:   cometbft.BlockID{Hash: sroot("p"), PartSetHeader: cometbft.PartSetHeader{Total: 1, Hash: sroot("pp")}},
		Timestamp: cometbft.Timestamp{Seconds: 1}, ChainID: "test-chain"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAddKeysAtomic(t *testing.T) {
	tests := []struct {
		name    string
		keys    []*commandpb.AddKey
		wantErr error
	}{
		{"bad length", []*commandpb.AddKey{
			{Pubkey: blsKey(5), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(testGVR)},
			{Pubkey: []byte{1}, Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(testGVR)}}, ErrInvalidKey},
		{"conflict with registry", []*commandpb.AddKey{
			{Pubkey: blsKey(5), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(testGVR)},
			{Pubkey: blsKey(0), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(otherGVR)}}, ErrKeyConflict},
		{"conflict within command", []*commandpb.AddKey{
			{Pubkey: blsKey(5), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(testGVR)},
			{Pubkey: blsKey(5), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(otherGVR)}}, ErrKeyConflict},
		{"unknown scheme", []*commandpb.AddKey{{Pubkey: blsKey(5), Network: "x"}}, ErrInvalidKey},
		{"BLS network not a root", []*commandpb.AddKey{{Pubkey: blsKey(5), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: "mainnet"}}, ErrInvalidKey},
		{"empty", nil, ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, 1)
			before := stateBytes(t, m)
			_, err := m.Apply(commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: tc.keys})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !bytes.Equal(before, stateBytes(t, m)) {
				t.Fatal("refused AddKeys changed the state")
			}
		})
	}
}

func TestDisabledKeyRefused(t *testing.T) {
	m := machine(t, 1)
	if _, err := m.Apply(commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: blsKey(0), Reason: "exited"}); err != nil {
		t.Fatal(err)
	}
	outs, err := m.Record(att(0, 1, 2, sroot(1)))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(outs[0].Err, ErrKeyDisabled) {
		t.Fatalf("got %+v, want ErrKeyDisabled", outs[0])
	}
}

const testInterchange = `{"metadata":{"interchange_format_version":"5","genesis_validators_root":"%s"},
"data":[{"pubkey":"0x%x","signed_blocks":[{"slot":"100","signing_root":"0x%x"}],
"signed_attestations":[{"source_epoch":"5","target_epoch":"6","signing_root":"0x%x"}]}]}`

func TestImportInterchange(t *testing.T) {
	good := fmt.Sprintf(testInterchange, RootHex(testGVR), blsKey(3), sroot("b"), sroot("a"))
	tests := []struct {
		name     string
		gvr      []byte
		doc      string
		register bool
		wantErr  error
	}{
		{"registers and imports", testGVR[:], good, true, nil},
		{"unknown key without register", testGVR[:], good, false, ErrUnknownKey},
		{"wrong genesis root", otherGVR[:], good, true, slashing.ErrGenesisMismatch},
		{"malformed json", testGVR[:], good[:len(good)-5], true, slashing.ErrInvalidInput},
		{"short root", testGVR[:4], good, true, ErrInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, 1)
			before := stateBytes(t, m)
			_, err := m.Apply(commandpb.CommandType_IMPORT_INTERCHANGE, &commandpb.ImportInterchange{
				GenesisValidatorsRoot: tc.gvr, InterchangeJson: []byte(tc.doc), RegisterKeys: tc.register})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if !bytes.Equal(before, stateBytes(t, m)) {
					t.Fatal("refused import changed the state")
				}
				return
			}
			// The imported history protects: below-watermark and double votes refused.
			k3 := &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
				GenesisValidatorsRoot: testGVR[:], Pubkey: blsKey(3), SourceEpoch: 5, TargetEpoch: 6, SigningRoot: sroot("other")}}}
			outs, err := m.Record(k3)
			if err != nil || outs[0].Decision != slashing.DecisionDenied {
				t.Fatalf("double vote against imported history: %v %+v", err, outs)
			}
		})
	}
}

// randomCommand returns a random command, valid or not.
func randomCommand(t testing.TB, r *rand.Rand) (commandpb.CommandType, proto.Message) {
	key := r.IntN(4)
	switch r.IntN(10) {
	case 0:
		return commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: uint64(r.IntN(4))}
	case 1:
		return commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: fmt.Sprint("dc", 1+r.IntN(3)), Epoch: uint64(r.IntN(5))}
	case 2:
		return commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: blsKey(key)}
	case 3:
		return commandpb.CommandType_PRUNE_HISTORY, &commandpb.PruneHistory{GenesisValidatorsRoot: testGVR[:], FinalizedEpoch: uint64(r.IntN(10))}
	default:
		var recs []*commandpb.ProtectionRecord
		for range 1 + r.IntN(5) {
			switch r.IntN(3) {
			case 0:
				s := uint64(r.IntN(10))
				recs = append(recs, att(key, s, s+uint64(r.IntN(4)), sroot(r.IntN(3))))
			case 1:
				recs = append(recs, block(key, uint64(r.IntN(40)), sroot(r.IntN(3))))
			default:
				h := int64(1 + r.IntN(6))
				recs = append(recs, comet(key, h, 0, 2, voteBytes(t, h, 0, cometbft.TypePrevote, int64(r.IntN(3)), fmt.Sprint(r.IntN(2)))))
			}
		}
		return commandpb.CommandType_RECORD_SIGNATURES, &commandpb.RecordSignatures{Holder: fmt.Sprint("dc", 1+r.IntN(2)), LeaseEpoch: uint64(1 + r.IntN(2)), Records: recs}
	}
}

// TestReplicasAgree: the same entries give the same state on every replica,
// whether applied one by one, in random batches, or after a snapshot
// restore part way through.
func TestReplicasAgree(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			a, b := machine(t, 4), machine(t, 4)
			var logs []*raft.Log
			for range 200 {
				ct, msg := randomCommand(t, r)
				a.index++
				data, err := fsm.Encode(ct, msg, "dc1", int64(a.index))
				if err != nil {
					t.Fatal(err)
				}
				if r.IntN(50) == 0 {
					data = data[:len(data)/2] // a truncated entry: refused alike everywhere
				}
				logs = append(logs, &raft.Log{Index: a.index, Type: raft.LogCommand, Data: data})
			}
			for _, l := range logs {
				a.FSM.Apply(l)
			}
			var c *LocalMachine
			for i := 0; i < len(logs); {
				n := 1 + r.IntN(17)
				n = min(n, len(logs)-i)
				b.FSM.ApplyBatch(logs[i : i+n])
				i += n
				if c == nil && i > len(logs)/2 {
					c = machine(t, 0)
					if err := c.FSM.Restore(io.NopCloser(bytes.NewReader(snap(t, b)))); err != nil {
						t.Fatal(err)
					}
					for _, l := range logs[i:] {
						c.FSM.Apply(l)
					}
				}
			}
			sa, sb, sc := snap(t, a), snap(t, b), snap(t, c)
			if !bytes.Equal(sa, sb) || !bytes.Equal(sa, sc) {
				t.Fatal("replicas diverged")
			}
		})
	}
}

// TestSnapshotRoundTripEveryRecordType covers keys of every scheme, a
// disabled key, Ethereum blocks and attestations, CometBFT records, an
// imported interchange, members and a fenced lease with its high-water
// mark; the restored state must snapshot identically and still refuse.
func TestSnapshotRoundTripEveryRecordType(t *testing.T) {
	m := machine(t, 3)
	secp := append([]byte{2}, sroot("secp")...)
	p256 := append([]byte{3}, sroot("p256")...)
	if _, err := m.Apply(commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: []*commandpb.AddKey{
		{Pubkey: secp, Scheme: commandpb.Scheme_SCHEME_SECP256K1, Network: "chain-k", Label: "k1"},
		{Pubkey: p256, Scheme: commandpb.Scheme_SCHEME_P256, Network: "chain-p", Label: "p1"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: blsKey(2), Reason: "exited"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(commandpb.CommandType_IMPORT_INTERCHANGE, &commandpb.ImportInterchange{GenesisValidatorsRoot: testGVR[:],
		InterchangeJson: []byte(fmt.Sprintf(testInterchange, RootHex(testGVR), blsKey(9), sroot("b"), sroot("a"))), RegisterKeys: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Record(att(0, 1, 2, sroot(1)), block(1, 5, sroot(2)), comet(0, 3, 1, 3, voteBytes(t, 3, 1, cometbft.TypePrecommit, 9, "z"))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1, Reason: "handover"}); err != nil {
		t.Fatal(err)
	}
	before := snap(t, m)
	r := machine(t, 0)
	if err := r.FSM.Restore(io.NopCloser(bytes.NewReader(before))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, snap(t, r)) {
		t.Fatal("restored state snapshots differently")
	}
	var l Lease
	var keys int
	r.FSM.View(func(s *State, _ uint64) { l, keys = s.Lease(), s.KeyCount() })
	if l.State != LeaseFenced || l.FenceReason != "handover" || l.HighWater.Eth[testGVR].MaxBlockSlot != 5 || keys != 9 {
		t.Fatalf("restored lease %+v keys %d", l, keys)
	}
	r.holder = "dc2"
	if _, err := r.Apply(commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	outs, err := r.Record(att(0, 1, 2, sroot("other")), comet(0, 3, 0, 3, voteBytes(t, 3, 0, cometbft.TypePrecommit, 9, "z")))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if o.Decision != slashing.DecisionDenied {
			t.Fatalf("record %d after restore: %s (%s), want denied", i, o.Decision, o.Reason)
		}
	}
}

func TestReadSnapshotRejectsGarbage(t *testing.T) {
	m := machine(t, 2)
	if _, err := m.Record(att(0, 1, 2, sroot(1))); err != nil {
		t.Fatal(err)
	}
	good := snap(t, m)
	for _, cut := range []int{21, 30, len(good) / 2, len(good) - 1} {
		r := machine(t, 1)
		before := snap(t, r)
		if err := r.FSM.Restore(io.NopCloser(bytes.NewReader(good[:cut]))); err == nil {
			t.Fatalf("truncated at %d: restore succeeded", cut)
		}
		if !bytes.Equal(before, snap(t, r)) {
			t.Fatalf("truncated at %d: failed restore changed state", cut)
		}
	}
}

func FuzzApplyEnvelope(f *testing.F) {
	m := machine(f, 2)
	for _, msg := range []proto.Message{
		&commandpb.RecordSignatures{Holder: "dc1", LeaseEpoch: 1, Records: []*commandpb.ProtectionRecord{att(0, 1, 2, sroot(1))}},
		&commandpb.AddKeys{Keys: []*commandpb.AddKey{{Pubkey: blsKey(1), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(testGVR)}}},
		&commandpb.FenceLease{Epoch: 1},
	} {
		data, _ := fsm.Encode(commandpb.CommandType_RECORD_SIGNATURES, msg, "dc1", 1)
		f.Add(data)
	}
	_ = m
	f.Fuzz(func(t *testing.T, data []byte) {
		m := machine(t, 2)
		before := stateBytes(t, m)
		m.index++
		resp := m.FSM.Apply(&raft.Log{Index: m.index, Type: raft.LogCommand, Data: data}).(fsm.Response)
		if resp.Err != nil && !bytes.Equal(before, stateBytes(t, m)) {
			t.Fatalf("rejected entry changed state: %v", resp.Err)
		}
	})
}

func ioNopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// testExt is a tiny extension: a counter.
type testExt struct{ n byte }

func (e *testExt) Name() string                    { return "test" }
func (e *testExt) WriteSnapshot(w io.Writer) error { _, err := w.Write([]byte{e.n}); return err }
func (e *testExt) ReadSnapshot(r io.Reader) error {
	var b [1]byte
	_, err := io.ReadFull(r, b[:])
	e.n = b[0]
	return err
}

func TestExtensionSnapshotAndTruncation(t *testing.T) {
	newState := NewStateWith(func() Extension { return &testExt{} })
	s := newState()
	s.Extension("test").(*testExt).n = 42
	var b bytes.Buffer
	if err := s.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	r := newState()
	if err := r.ReadSnapshot(bytes.NewReader(b.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := r.Extension("test").(*testExt).n; got != 42 {
		t.Fatalf("extension restored %d, want 42", got)
	}
	// Every truncation fails, including those on a section boundary.
	for cut := 0; cut < b.Len(); cut++ {
		if err := newState().ReadSnapshot(bytes.NewReader(b.Bytes()[:cut])); err == nil {
			t.Fatalf("truncated at %d of %d: restored", cut, b.Len())
		}
	}
	// A node without the extension refuses state it cannot keep.
	if err := NewState().ReadSnapshot(bytes.NewReader(b.Bytes())); err == nil {
		t.Fatal("a node without the extension restored its section")
	}
}

func TestAddKeysMergesWrappedSecrets(t *testing.T) {
	m := machine(t, 0)
	ids := map[string][]byte{}
	for _, r := range []string{"dc1", "dc2", "dc3"} {
		der := wrapKeyDER(t, 2048)
		if err := applyAs(t, m, r, commandpb.CommandType_REGISTER_REGION, &commandpb.RegisterRegion{Region: r, WrapPublicKey: der}); err != nil {
			t.Fatal(err)
		}
		id := sha256.Sum256(der)
		ids[r] = id[:]
	}
	w := func(region string, b byte) *commandpb.WrappedSecret {
		return &commandpb.WrappedSecret{Region: region, Ciphertext: []byte{b}, WrapKeyId: ids[region]}
	}
	key := func(ws ...*commandpb.WrappedSecret) *commandpb.AddKeys {
		return &commandpb.AddKeys{Keys: []*commandpb.AddKey{{Pubkey: blsKey(1), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: RootHex(testGVR), Wrapped: ws}}}
	}
	// Registered without secrets (as an interchange import does), then the
	// keystore import adds them; a later re-wrap adds a new region only.
	for i, cmd := range []*commandpb.AddKeys{key(), key(w("dc1", 1), w("dc2", 2)), key(w("dc2", 9), w("dc3", 3))} {
		if _, err := m.Apply(commandpb.CommandType_ADD_KEY, cmd); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	var k Key
	m.FSM.View(func(s *State, _ uint64) { k, _ = s.Key(blsKey(1)) })
	got := map[string]byte{}
	for _, x := range k.Wrapped {
		got[x.Region] = x.Ciphertext[0]
	}
	if len(got) != 3 || got["dc1"] != 1 || got["dc2"] != 2 || got["dc3"] != 3 {
		t.Fatalf("wrapped = %v, want dc1:1 dc2:2 (kept) dc3:3", got)
	}
	bad := []struct {
		name string
		cmd  *commandpb.AddKeys
	}{
		{"unregistered region", &commandpb.AddKeys{Keys: []*commandpb.AddKey{{Pubkey: blsKey(2), Scheme: commandpb.Scheme_SCHEME_BLS12381,
			Network: RootHex(testGVR), Wrapped: []*commandpb.WrappedSecret{{Region: "dc9", Ciphertext: []byte{1}, WrapKeyId: sroot("x")}}}}}},
		{"wrong wrap key id", &commandpb.AddKeys{Keys: []*commandpb.AddKey{{Pubkey: blsKey(2), Scheme: commandpb.Scheme_SCHEME_BLS12381,
			Network: RootHex(testGVR), Wrapped: []*commandpb.WrappedSecret{{Region: "dc1", Ciphertext: []byte{1}, WrapKeyId: ids["dc2"]}}}}}},
	}
	for _, b := range bad {
		before := stateBytes(t, m)
		if _, err := m.Apply(commandpb.CommandType_ADD_KEY, b.cmd); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("%s: %v, want ErrInvalidKey", b.name, err)
		}
		if !bytes.Equal(before, stateBytes(t, m)) {
			t.Fatalf("%s: refused AddKeys changed the state", b.name)
		}
	}
	if _, err := m.Apply(commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: blsKey(1)}); err != nil {
		t.Fatal(err)
	}
	before := stateBytes(t, m)
	if _, err := m.Apply(commandpb.CommandType_ADD_KEY, key(w("dc3", 4))); !errors.Is(err, ErrKeyConflict) {
		t.Fatalf("secrets for a disabled key: %v, want ErrKeyConflict", err)
	}
	if !bytes.Equal(before, stateBytes(t, m)) {
		t.Fatal("refused AddKeys changed the state")
	}
}
