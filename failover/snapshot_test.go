package failover

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata golden files")

// view is everything State exposes, for comparing two states.
type view struct {
	ClusterID      string
	Operators      []Operator
	Thresholds     map[failoverpb.Action]uint32
	Nonces         map[string]int64
	Handovers      []Handover
	DR             []DRPolicy
	Heartbeat      Heartbeat
	ExitDay        int64
	ExitCount      uint32
	ExitLimit      uint32
	FinalityQuorum uint32
	Clock          int64
	Audit          []AuditRecord
}

func viewOf(s *State) view {
	v := view{ClusterID: s.ClusterID(), Operators: s.Operators(), Thresholds: map[failoverpb.Action]uint32{}, Nonces: map[string]int64{},
		Handovers: s.Handovers(), DR: s.DRPolicies(), Heartbeat: s.LastHeartbeat(), ExitLimit: s.ExitLimit(),
		FinalityQuorum: s.FinalityQuorum(), Clock: s.Clock(), Audit: normalizeAudit(s.Audit())}
	v.ExitDay, v.ExitCount = s.ExitsApproved()
	for _, a := range Actions() {
		v.Thresholds[a] = s.Threshold(a)
	}
	for k, e := range s.nonces {
		v.Nonces[k] = e
	}
	for i := range v.Handovers {
		h := &v.Handovers[i]
		if len(h.Approvals) == 0 {
			h.Approvals = nil
		}
		if len(h.Evidence) == 0 {
			h.Evidence = nil
		}
		if len(h.EvidenceDigest) == 0 {
			h.EvidenceDigest = nil
		}
	}
	for i := range v.DR {
		if len(v.DR[i].Approvals) == 0 {
			v.DR[i].Approvals = nil
		}
	}
	return v
}

func sectionOf(t testing.TB, s *State) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSnapshotRoundTrip: each row builds a state holding one record type
// (and checks it is there), then the failover section and the whole FSM
// snapshot must restore to an equal state that re-encodes to the same
// bytes.
func TestSnapshotRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		build func(t *testing.T) *cluster
		has   func(v view) bool
	}{
		{"not bootstrapped", func(t *testing.T) *cluster { return newCluster(t, withoutBootstrap()) },
			func(v view) bool { return v.ClusterID == "" && len(v.Audit) > 0 }},
		{"operators and thresholds", func(t *testing.T) *cluster { return newCluster(t) },
			func(v view) bool {
				return len(v.Operators) == 4 && v.Thresholds[failoverpb.Action_ACTION_HANDOVER] == 2
			}},
		{"nonces", func(t *testing.T) *cluster {
			c := newCluster(t)
			c.mustDo("alice", request("dc2", "x"))
			return c
		}, func(v view) bool { return len(v.Nonces) == 1 }},
		{"handover requested", func(t *testing.T) *cluster {
			c := newCluster(t)
			c.mustDo("alice", request("dc2", "x"))
			return c
		}, func(v view) bool { return len(v.Handovers) == 1 && v.Handovers[0].State == HandoverRequested }},
		{"handover fenced", func(t *testing.T) *cluster {
			c := newCluster(t)
			c.mustRecord("dc1", 1, att(testGVR, 0, 1, 2))
			c.requestAndFence("dc2")
			return c
		}, func(v view) bool { return v.Handovers[0].State == HandoverFenced && v.Handovers[0].FencedEpoch == 1 }},
		{"handover completed with evidence", func(t *testing.T) *cluster {
			c := newCluster(t)
			c.mustRecord("dc1", 1, att(testGVR, 0, 1, 2))
			id := c.requestAndFence("dc2")
			c.confirm("dc2", &failoverpb.ConfirmFinality{HandoverId: id, Eth: []*failoverpb.EthFinality{ethEv(testGVR, 3, 2)}})
			return c
		}, func(v view) bool {
			return v.Handovers[0].State == HandoverCompleted && len(v.Handovers[0].Evidence) > 0
		}},
		{"handover cancelled", func(t *testing.T) *cluster {
			c := newCluster(t)
			c.mustDo("carol", cancelH(c.mustDo("alice", request("dc2", "x")).Handover.ID))
			return c
		}, func(v view) bool {
			return v.Handovers[0].State == HandoverCancelled && v.Handovers[0].ClosedBy == "carol"
		}},
		{"handover rejected (superseded)", func(t *testing.T) *cluster {
			c := newCluster(t)
			c.requestAndFence("dc2")
			c.mustDo("alice", request("dc3", "redirect"), "bob")
			return c
		}, func(v view) bool { return len(v.Handovers) == 2 && v.Handovers[0].State == HandoverRejected }},
		{"DR handover and policies", func(t *testing.T) *cluster {
			c := newCluster(t)
			c.mustDo("alice", drPolicy("dc2", 60, true), "bob")
			c.mustDo("alice", drPolicy("dc3", 90, true), "bob")
			c.mustDo("alice", drPolicy("dc3", 0, false), "bob")
			c.m.Advance(time.Hour)
			if _, err := c.m.Apply("dc2", commandpb.CommandType_DR_TAKEOVER, &failoverpb.DRTakeover{Region: "dc2", Reason: "dc1 gone"}); err != nil {
				t.Fatal(err)
			}
			return c
		}, func(v view) bool { return len(v.DR) == 2 && !v.DR[1].Enabled && v.Handovers[0].DR }},
		{"heartbeat", func(t *testing.T) *cluster {
			c := newCluster(t)
			if _, err := c.m.Apply("dc1", commandpb.CommandType_LEASE_HEARTBEAT, &failoverpb.LeaseHeartbeat{Holder: "dc1", Epoch: 1}); err != nil {
				t.Fatal(err)
			}
			return c
		}, func(v view) bool { return v.Heartbeat.Holder == "dc1" && v.Heartbeat.Index > 0 }},
		{"exit count, limit, quorum", func(t *testing.T) *cluster {
			c := newCluster(t)
			c.mustDo("carol", exitFor(blsKey(0)))
			c.mustDo("alice", func(cmd *failoverpb.OperatorCommand) {
				cmd.Action = &failoverpb.OperatorCommand_SetFinalityQuorum{SetFinalityQuorum: &failoverpb.SetFinalityQuorum{Endpoints: 5}}
			}, "bob")
			return c
		}, func(v view) bool {
			return v.ExitCount == 1 && v.ExitDay > 0 && v.ExitLimit == 2 && v.FinalityQuorum == 5 && v.Clock > 0
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.build(t)
			orig := c.fs()
			v := viewOf(orig)
			if !tc.has(v) {
				t.Fatalf("the row's record is not in the state: %+v", v)
			}
			sec := sectionOf(t, orig)
			fresh := NewState()
			if err := fresh.ReadSnapshot(bytes.NewReader(sec)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(viewOf(fresh), v) {
				t.Fatalf("restored state differs:\n got %+v\nwant %+v", viewOf(fresh), v)
			}
			if again := sectionOf(t, fresh); !bytes.Equal(again, sec) {
				t.Fatal("re-encoded section differs")
			}
			// Whole FSM: restore a machine from the snapshot and continue.
			var full bytes.Buffer
			if err := c.m.FSM.WriteSnapshot(&full); err != nil {
				t.Fatal(err)
			}
			m2, err := NewMachine(MachineConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := m2.FSM.Restore(nopCloser{bytes.NewReader(full.Bytes())}); err != nil {
				t.Fatal(err)
			}
			a, _ := c.m.StateBytes()
			b, _ := m2.StateBytes()
			if !bytes.Equal(a, b) {
				t.Fatal("restored FSM snapshot differs")
			}
		})
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// validSnapshotProto returns the proto of a state with every record type.
func validSnapshotProto(t testing.TB) *failoverpb.FailoverSnapshot {
	t.Helper()
	c := newCluster(t)
	c.mustDo("alice", drPolicy("dc2", 60, true), "bob")
	c.mustRecord("dc1", 1, att(testGVR, 0, 1, 2))
	id := c.requestAndFence("dc2")
	c.confirm("dc2", &failoverpb.ConfirmFinality{HandoverId: id, Eth: []*failoverpb.EthFinality{ethEv(testGVR, 3, 2)}})
	c.mustDo("alice", request("dc3", "another"))
	return c.fs().toProto()
}

func encodeSection(t testing.TB, p *failoverpb.FailoverSnapshot, version uint32) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var h [8]byte
	copy(h[:], snapshotMagic)
	binary.BigEndian.PutUint32(h[4:], version)
	return append(h[:], b...)
}

func TestReadSnapshotRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(p *failoverpb.FailoverSnapshot)
		raw  func(b []byte) []byte
	}{
		{name: "empty", raw: func([]byte) []byte { return nil }},
		{name: "wrong magic", raw: func(b []byte) []byte { c := append([]byte(nil), b...); c[0] = 'X'; return c }},
		{name: "version 0", raw: func(b []byte) []byte { c := append([]byte(nil), b...); c[7] = 0; return c }},
		{name: "version 2", raw: func(b []byte) []byte { c := append([]byte(nil), b...); c[7] = 2; return c }},
		{name: "truncated", raw: func(b []byte) []byte { return b[:len(b)-3] }},
		{name: "bad cluster id", edit: func(p *failoverpb.FailoverSnapshot) { p.ClusterId = "a b" }},
		{name: "registry without cluster id", edit: func(p *failoverpb.FailoverSnapshot) { p.ClusterId = "" }},
		{name: "operator with a bad key", edit: func(p *failoverpb.FailoverSnapshot) { p.Operators[0].PublicKey = []byte("x") }},
		{name: "operator twice", edit: func(p *failoverpb.FailoverSnapshot) { p.Operators = append(p.Operators, p.Operators[0]) }},
		{name: "operator without role", edit: func(p *failoverpb.FailoverSnapshot) { p.Operators[0].Role = 0 }},
		{name: "no operators", edit: func(p *failoverpb.FailoverSnapshot) { p.Operators = nil }},
		{name: "threshold missing", edit: func(p *failoverpb.FailoverSnapshot) { p.Thresholds = p.Thresholds[1:] }},
		{name: "threshold unreachable", edit: func(p *failoverpb.FailoverSnapshot) { p.Thresholds[1].Required = 9 }},
		{name: "finality quorum zero", edit: func(p *failoverpb.FailoverSnapshot) { p.FinalityQuorum = 0 }},
		{name: "exit limit too high", edit: func(p *failoverpb.FailoverSnapshot) { p.ExitLimitPerDay = MaxExitLimit + 1 }},
		{name: "short nonce", edit: func(p *failoverpb.FailoverSnapshot) { p.Nonces[0].Nonce = p.Nonces[0].Nonce[:4] }},
		{name: "nonce twice", edit: func(p *failoverpb.FailoverSnapshot) { p.Nonces = append(p.Nonces, p.Nonces[0]) }},
		{name: "handover state unknown", edit: func(p *failoverpb.FailoverSnapshot) { p.Handovers[0].State = 9 }},
		{name: "handover ids not increasing", edit: func(p *failoverpb.FailoverSnapshot) { p.Handovers[1].Id = p.Handovers[0].Id }},
		{name: "open handover not last", edit: func(p *failoverpb.FailoverSnapshot) {
			p.Handovers[0].State = failoverpb.HandoverState_HANDOVER_REQUESTED
		}},
		{name: "handover id zero", edit: func(p *failoverpb.FailoverSnapshot) { p.Handovers[0].Id = 0 }},
		{name: "DR policy region invalid", edit: func(p *failoverpb.FailoverSnapshot) { p.DrPolicies[0].Region = "" }},
		{name: "DR policy silence invalid", edit: func(p *failoverpb.FailoverSnapshot) { p.DrPolicies[0].SilenceSeconds = 1 }},
		{name: "audit outcome unknown", edit: func(p *failoverpb.FailoverSnapshot) { p.Audit[1].Outcome = 0 }},
		{name: "audit outcome out of range", edit: func(p *failoverpb.FailoverSnapshot) { p.Audit[1].Outcome = 257 }},
		{name: "audit tampered", edit: func(p *failoverpb.FailoverSnapshot) { p.Audit[2].Actor = "mallory" }},
		{name: "audit record dropped", edit: func(p *failoverpb.FailoverSnapshot) { p.Audit = append(p.Audit[:1], p.Audit[2:]...) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := validSnapshotProto(t)
			if tc.edit != nil {
				tc.edit(p)
			}
			b := encodeSection(t, p, snapshotVersion)
			if tc.raw != nil {
				b = tc.raw(b)
			}
			s := NewState()
			before := sectionOf(t, s)
			err := s.ReadSnapshot(bytes.NewReader(b))
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("err %v, want ErrBadSnapshot", err)
			}
			if !bytes.Equal(sectionOf(t, s), before) {
				t.Fatal("a refused snapshot changed the receiver")
			}
		})
	}
}

// TestSnapshotGolden decodes the version-1 section kept in testdata and
// checks it re-encodes byte for byte: the format must not drift without a
// version bump. Regenerate with -rewrite.
func TestSnapshotGolden(t *testing.T) {
	path := filepath.Join("testdata", "snapshot-v1.bin")
	if *rewrite {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, sectionOf(t, deterministicState(t)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := NewState()
	if err := s.ReadSnapshot(bytes.NewReader(golden)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sectionOf(t, s), golden) {
		t.Fatal("the golden section does not re-encode identically")
	}
	v := viewOf(s)
	if v.ClusterID != testCluster || len(v.Operators) != 3 || len(v.Handovers) != 2 || len(v.DR) != 1 || len(v.Audit) < 8 {
		t.Fatalf("golden content: %+v", v)
	}
	// The same scenario today produces the same bytes.
	if now := sectionOf(t, deterministicState(t)); !bytes.Equal(now, golden) {
		t.Fatal("the deterministic scenario no longer encodes to the golden section (format change without a version bump?)")
	}
}

// deterministicState runs a fixed scenario with Ed25519 operators and
// nonces from a fixed stream.
func deterministicState(t *testing.T) *State {
	t.Helper()
	m, err := NewMachine(MachineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]testOp{}
	boot := &failoverpb.BootstrapOperators{ClusterId: testCluster, ExitLimitPerDay: 1, FinalityQuorum: 1}
	for _, id := range []string{"alice", "bob", "carol"} {
		o := edOp(t, id, failoverpb.Role_ROLE_ADMIN)
		ops[id] = o
		boot.Operators = append(boot.Operators, &failoverpb.Operator{Id: id, PublicKey: o.der, Role: o.role})
	}
	for _, a := range Actions() {
		boot.Thresholds = append(boot.Thresholds, &failoverpb.Threshold{Action: a, Required: 2})
	}
	if _, err := m.Apply("dc1", commandpb.CommandType_BOOTSTRAP_OPERATORS, boot); err != nil {
		t.Fatal(err)
	}
	seq := 0
	do := func(op string, fn func(*failoverpb.OperatorCommand), co ...string) {
		seq++
		cmd := &failoverpb.OperatorCommand{ClusterId: testCluster, OperatorId: op, ExpiresUnixNano: m.Now().Add(time.Hour).UnixNano()}
		n := sha256.Sum256([]byte{byte(seq)})
		cmd.Nonce = n[:]
		fn(cmd)
		c := &cluster{t: t, m: m, ops: ops}
		c.submit("dc1", c.sign(cmd, co...))
	}
	do("alice", drPolicy("dc3", 120, true), "bob")
	do("alice", request("dc2", "planned"))
	do("bob", approve(m.Index()))
	h := m.Index() - 1
	if _, err := m.Apply("dc2", commandpb.CommandType_CONFIRM_FINALITY, &failoverpb.ConfirmFinality{HandoverId: h}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply("dc2", commandpb.CommandType_LEASE_HEARTBEAT, &failoverpb.LeaseHeartbeat{Holder: "dc2", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	do("carol", request("dc1", "back"))
	ops["mallory"] = edOp(t, "mallory", failoverpb.Role_ROLE_ADMIN)
	do("mallory", request("dc1", "rejected")) // not registered: refused, audited
	var s *State
	m.View(func(_ *leader.State, fs *State) { s = fs })
	return s
}

func FuzzReadSnapshot(f *testing.F) {
	p := validSnapshotProto(f)
	f.Add(encodeSection(f, p, snapshotVersion))
	f.Add(encodeSection(f, &failoverpb.FailoverSnapshot{}, snapshotVersion))
	f.Add([]byte("RGFO"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewState()
		if err := s.ReadSnapshot(bytes.NewReader(b)); err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v is not ErrBadSnapshot", err)
			}
			return
		}
		// Whatever decodes is a valid state: it re-encodes, and that
		// encoding decodes to the same state.
		sec := sectionOf(t, s)
		s2 := NewState()
		if err := s2.ReadSnapshot(bytes.NewReader(sec)); err != nil {
			t.Fatalf("re-encoded section refused: %v", err)
		}
		if !bytes.Equal(sectionOf(t, s2), sec) {
			t.Fatal("unstable encoding")
		}
		if _, err := VerifyChain(s.audit); err != nil {
			t.Fatal(err)
		}
	})
}
