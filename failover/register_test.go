package failover

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

// registered probes a registry: the highest envelope version it accepts
// for t (0 when t has no handler). It applies ignorable envelopes to a
// fresh state, so an unknown type or version reports instead of halting.
func registered(t *testing.T, r *fsm.Registry[*leader.State], typ commandpb.CommandType) uint32 {
	t.Helper()
	max := uint32(0)
	for v := uint32(1); v <= 8; v++ {
		f, err := fsm.New(fsm.Config[*leader.State]{New: NewLeaderState, Registry: r, Fatal: func(error) {}})
		if err != nil {
			t.Fatal(err)
		}
		data, err := proto.Marshal(&commandpb.Envelope{Type: typ, Version: v, Ignorable: true})
		if err != nil {
			t.Fatal(err)
		}
		resp := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(fsm.Response)
		switch {
		case errors.Is(resp.Err, fsm.ErrUnknownCommand):
			return 0
		case errors.Is(resp.Err, fsm.ErrUnsupportedVersion):
			return max
		}
		max = v
	}
	return max
}

// TestDelegatedCommandsMatchLeader: NewRegistry delegates exactly the
// commands (and versions) leader.Register installs, so a leader command
// added later cannot silently be missing from a failover region (it
// would halt the node on its first entry).
func TestDelegatedCommandsMatchLeader(t *testing.T) {
	lr := leader.NewRegistry()
	ours := map[commandpb.CommandType]uint32{}
	for _, c := range leaderCommands() {
		ours[c.t] = c.maxVersion
	}
	fr := NewRegistry()
	for n := range commandpb.CommandType_name {
		typ := commandpb.CommandType(n)
		lv := registered(t, lr, typ)
		if lv != ours[typ] {
			t.Errorf("%v: leader accepts up to version %d, failover delegates %d", typ, lv, ours[typ])
		}
		fv := registered(t, fr, typ)
		switch typ {
		case commandpb.CommandType_OPERATOR_COMMAND, commandpb.CommandType_CONFIRM_FINALITY, commandpb.CommandType_LEASE_HEARTBEAT,
			commandpb.CommandType_DR_TAKEOVER, commandpb.CommandType_BOOTSTRAP_OPERATORS:
			if fv != 1 {
				t.Errorf("%v: failover registry accepts up to %d", typ, fv)
			}
		default:
			if fv != lv {
				t.Errorf("%v: failover registry accepts up to %d, leader %d", typ, fv, lv)
			}
		}
	}
}

// TestRegisterBesideLeader: Register can share a registry with
// leader.Register (tests keep the unsigned lease commands there).
func TestRegisterBesideLeader(t *testing.T) {
	r := leader.NewRegistry()
	Register(r)
	m, err := NewMachine(MachineConfig{Registry: r})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, m: m, ops: map[string]testOp{}}
	for _, o := range []testOp{edOp(t, "alice", failoverpb.Role_ROLE_ADMIN), edOp(t, "bob", failoverpb.Role_ROLE_ADMIN),
		edOp(t, "carol", failoverpb.Role_ROLE_OPERATOR), edOp(t, "erin", failoverpb.Role_ROLE_AUDITOR)} {
		c.ops[o.id] = o
	}
	c.bootstrap()
	id := c.requestAndFence("dc2")
	if r := c.confirm("dc2", &failoverpb.ConfirmFinality{HandoverId: id}); !r.Accepted {
		t.Fatal(r.Err)
	}
	// Here the unsigned path stays open (it is a test registry).
	if _, err := m.Apply("dc1", commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 2}); err != nil {
		t.Fatalf("unsigned fence on a test registry: %v", err)
	}
}

func TestFSMConfig(t *testing.T) {
	cfg := FSMConfig()
	if cfg.New == nil || cfg.Registry == nil {
		t.Fatal("incomplete config")
	}
	if From(cfg.New()) == nil {
		t.Fatal("state without the failover extension")
	}
	if got := registered(t, cfg.Registry, commandpb.CommandType_OPERATOR_COMMAND); got != 1 {
		t.Fatalf("operator command version %d", got)
	}
}

func TestResponseError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		resp fsm.Response
		want error
	}{
		{"handler error", fsm.Response{Err: boom}, boom},
		{"accepted", fsm.Response{Value: Result{Accepted: true}}, nil},
		{"refused", fsm.Response{Value: Result{Err: ErrReplay}}, ErrReplay},
		{"refused without reason", fsm.Response{Value: Result{}}, ErrMalformed},
		{"other value", fsm.Response{Value: Heartbeat{}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ResponseError(tc.resp); tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAuditAt(t *testing.T) {
	c := newCluster(t)
	r := c.mustDo("alice", request("dc2", "x"))
	r2 := c.mustDo("bob", approve(r.Handover.ID))
	recs := c.fs().AuditAt(r2.Index)
	if len(recs) != 2 || recs[0].Action != "handover.approve" || recs[1].Action != "lease.fence" {
		t.Fatalf("records at %d: %+v", r2.Index, recs)
	}
	if got := c.fs().AuditAt(999999); len(got) != 0 {
		t.Fatal("records for an index never written")
	}
	n, head := c.fs().AuditHead()
	a := c.audit()
	if n != len(a) || string(head) != string(a[len(a)-1].Hash) {
		t.Fatal("AuditHead disagrees with Audit")
	}
}

// FuzzApply feeds arbitrary payloads to every failover command type on a
// bootstrapped cluster: no panic, a refusal changes nothing but the audit
// chain, and the invariants hold.
func FuzzApply(f *testing.F) {
	c := newCluster(f)
	sc := c.sign(c.body("alice", request("dc2", "x")))
	for _, m := range []proto.Message{sc, &failoverpb.ConfirmFinality{HandoverId: 5, Eth: []*failoverpb.EthFinality{ethEv(testGVR, 3, 2)}},
		&failoverpb.LeaseHeartbeat{Holder: "dc1", Epoch: 1}, &failoverpb.DRTakeover{Region: "dc2"}, c.bootstrapMsg()} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		for typ := uint8(0); typ < 5; typ++ {
			f.Add(typ, b)
		}
	}
	types := []commandpb.CommandType{commandpb.CommandType_OPERATOR_COMMAND, commandpb.CommandType_CONFIRM_FINALITY,
		commandpb.CommandType_LEASE_HEARTBEAT, commandpb.CommandType_DR_TAKEOVER, commandpb.CommandType_BOOTSTRAP_OPERATORS}
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		c := newCluster(t)
		before := withoutAudit(t, c.m)
		v, err := c.m.ApplyPayload("dc2", types[int(typ)%len(types)], payload)
		refused := err != nil
		if r, ok := v.(Result); ok && !r.Accepted {
			refused = true
		}
		if refused && string(withoutAudit(t, c.m)) != string(before) {
			t.Fatal("a refused command changed the state")
		}
		checkInvariants(t, c.m)
	})
}
