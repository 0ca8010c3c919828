package sim

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/eth"
)

func att(key int, source, target uint64, tag string) message {
	m := message{Key: key, Source: source, Target: target}
	m.Pubkey[0] = byte(key + 1)
	m.Root = tagRoot("att", source, target, tag)
	return m
}

func blk(key int, slot uint64, tag string) message {
	m := message{Key: key, Block: true, Slot: slot}
	m.Pubkey[0] = byte(key + 1)
	m.Root = tagRoot("block", slot, tag)
	return m
}

func TestSlashable(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b message
		want bool
	}{
		{"identical attestation", att(0, 3, 4, "x"), att(0, 3, 4, "x"), false},
		{"double vote", att(0, 3, 4, "x"), att(0, 3, 4, "y"), true},
		{"double vote other source", att(0, 2, 4, "x"), att(0, 3, 4, "y"), true},
		{"surrounds", att(0, 1, 6, "x"), att(0, 2, 5, "y"), true},
		{"surrounded", att(0, 2, 5, "x"), att(0, 1, 6, "y"), true},
		{"shared source is not a surround", att(0, 2, 6, "x"), att(0, 2, 5, "y"), false},
		{"consecutive votes", att(0, 3, 4, "x"), att(0, 4, 5, "y"), false},
		{"other key", att(0, 3, 4, "x"), att(1, 3, 4, "y"), false},
		{"double proposal", blk(0, 100, "x"), blk(0, 100, "y"), true},
		{"identical block", blk(0, 100, "x"), blk(0, 100, "x"), false},
		{"blocks at two slots", blk(0, 100, "x"), blk(0, 101, "y"), false},
		{"block and attestation", blk(0, 4, "x"), att(0, 3, 4, "y"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := slashable(tc.a, tc.b)
			_, rev := slashable(tc.b, tc.a)
			if got != tc.want || rev != tc.want {
				t.Fatalf("slashable = %t / reversed %t, want %t", got, rev, tc.want)
			}
		})
	}
}

// TestProtectionNeverAcceptsASlashablePair is a property test of the
// production rule engine against the brute-force reference: whatever
// random sequence of duties eth.State records, the accepted ones contain
// no slashable pair; and for any pair the reference calls slashable,
// recording the first makes eth.State refuse the second.
func TestProtectionNeverAcceptsASlashablePair(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	gvr := eth.Root{1}
	for round := range 300 {
		st, err := eth.NewState(eth.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var accepted []message
		for i := range 40 {
			var m message
			if rng.IntN(3) == 0 {
				m = blk(rng.IntN(2), uint64(rng.IntN(12)), fmt.Sprint(rng.IntN(3)))
			} else {
				s := uint64(rng.IntN(10))
				m = att(rng.IntN(2), s, s+uint64(rng.IntN(5)), fmt.Sprint(rng.IntN(3)))
			}
			var res slashing.Result
			if m.Block {
				res = st.RecordBlock(gvr, eth.Pubkey(m.Pubkey), m.Slot, eth.Root(m.Root))
			} else {
				res = st.RecordAttestation(gvr, eth.Pubkey(m.Pubkey), m.Source, m.Target, eth.Root(m.Root))
			}
			if res.Accepted() {
				accepted = append(accepted, m)
			}
			if a, b, why, found := firstSlashablePair(accepted); found {
				t.Fatalf("round %d, duty %d: eth.State accepted a slashable pair %s / %s: %s", round, i, accepted[a], accepted[b], why)
			}
		}
	}
	for round := range 2000 {
		a := att(0, uint64(rng.IntN(8)), 0, fmt.Sprint(rng.IntN(2)))
		a.Target = a.Source + uint64(rng.IntN(5))
		a.Root = tagRoot("att", a.Source, a.Target, fmt.Sprint(a.Root[0]))
		b := att(0, uint64(rng.IntN(8)), 0, "other")
		b.Target = b.Source + uint64(rng.IntN(5))
		b.Root = tagRoot("att", b.Source, b.Target, "b")
		if _, bad := slashable(a, b); !bad {
			continue
		}
		st, err := eth.NewState(eth.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !st.RecordAttestation(gvr, eth.Pubkey(a.Pubkey), a.Source, a.Target, eth.Root(a.Root)).Accepted() {
			t.Fatalf("round %d: first vote %s refused on an empty history", round, a)
		}
		if st.RecordAttestation(gvr, eth.Pubkey(b.Pubkey), b.Source, b.Target, eth.Root(b.Root)).Accepted() {
			t.Fatalf("round %d: %s accepted after %s", round, b, a)
		}
	}
}

func lv(state leader.LeaseState, holder string, epoch, since uint64) leaseView {
	return leaseView{Holder: holder, Epoch: epoch, State: state, SinceIndex: since}
}

func TestCheckTransition(t *testing.T) {
	active, fenced, vacant := leader.LeaseActive, leader.LeaseFenced, leader.LeaseVacant
	op, cf, dr, grant := commandpb.CommandType_OPERATOR_COMMAND, commandpb.CommandType_CONFIRM_FINALITY,
		commandpb.CommandType_DR_TAKEOVER, commandpb.CommandType_GRANT_LEASE
	rec := commandpb.CommandType_RECORD_SIGNATURES
	for _, tc := range []struct {
		name     string
		t        commandpb.CommandType
		proposer string
		accepted bool
		before   leaseView
		after    leaseView
		wantInv  string
	}{
		{"no change", rec, "dc1", true, lv(active, "dc1", 1, 3), lv(active, "dc1", 1, 3), ""},
		{"grant", grant, "dc2", true, lv(vacant, "", 0, 0), lv(active, "dc1", 1, 3), ""},
		{"second grant", grant, "dc2", true, lv(fenced, "dc1", 1, 9), lv(active, "dc1", 2, 10), InvOneHolderPerEpoch},
		{"fence by approvals", op, "dc3", true, lv(active, "dc1", 1, 3), lv(fenced, "dc1", 1, 9), ""},
		{"fence by DR", dr, "dc3", true, lv(active, "dc1", 1, 3), lv(fenced, "dc1", 1, 9), ""},
		{"activation by the target", cf, "dc2", true, lv(fenced, "dc1", 1, 9), lv(active, "dc2", 2, 12), ""},
		{"activation proposed by another region", cf, "dc3", true, lv(fenced, "dc1", 1, 9), lv(active, "dc2", 2, 12), InvOneHolderPerEpoch},
		{"activation skipping an epoch", cf, "dc2", true, lv(fenced, "dc1", 1, 9), lv(active, "dc2", 3, 12), InvOneHolderPerEpoch},
		{"activation without a fence", cf, "dc2", true, lv(active, "dc1", 1, 3), lv(active, "dc2", 2, 12), InvOneHolderPerEpoch},
		{"operator command activates", op, "dc2", true, lv(fenced, "dc1", 1, 9), lv(active, "dc2", 2, 12), InvOneHolderPerEpoch},
		{"holder changes within an epoch", op, "dc2", true, lv(active, "dc1", 1, 3), lv(fenced, "dc2", 1, 9), InvOneHolderPerEpoch},
		{"records move the lease", rec, "dc1", true, lv(active, "dc1", 1, 3), lv(fenced, "dc1", 1, 9), InvOneHolderPerEpoch},
		{"refused command moves the lease", op, "dc3", false, lv(active, "dc1", 1, 3), lv(fenced, "dc1", 1, 9), InvRefusedChangesNothing},
		{"refused command changes nothing", op, "dc3", false, lv(active, "dc1", 1, 3), lv(active, "dc1", 1, 3), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := checkTransition(tc.t, tc.proposer, tc.accepted, tc.before, tc.after)
			if inv != tc.wantInv || (err != nil) != (tc.wantInv != "") {
				t.Fatalf("checkTransition = %q, %v; want %q", inv, err, tc.wantInv)
			}
		})
	}
}

// fixture is a history with the lease granted to dc1 at index 1 and one
// accepted attestation of key 0 at index 2, as every region would record
// it through the FSM hook.
type fixture struct {
	h   *history
	c   *checker
	msg message
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{h: newHistory()}
	f.c = newChecker(f.h)
	vac, act := lv(leader.LeaseVacant, "", 0, 0), lv(leader.LeaseActive, "dc1", 1, 1)
	for r := range numRegions {
		f.h.observe(r, 1, commandpb.CommandType_GRANT_LEASE, "dc1", 10, vac, fsm.Response{Index: 1}, nil)
		f.h.observeAfter(r, 1, act, nil)
	}
	f.msg = att(0, 3, 4, "honest")
	f.h.registerMessage(f.msg)
	f.apply(2, "dc1", 1, act, f.msg, slashing.DecisionAccepted)
	if v := f.c.step(); v != nil {
		t.Fatalf("fixture: %s: %s", v.inv, v.detail)
	}
	return f
}

// apply records a RecordSignatures entry of one record on every region.
func (f *fixture) apply(index uint64, holder string, epoch uint64, before leaseView, m message, d slashing.Decision) {
	resp := fsm.Response{Index: index, Value: leader.BatchResult{Index: index, Holder: holder, LeaseEpoch: epoch,
		Outcomes: []leader.Outcome{{Result: slashing.Result{Decision: d}}}}}
	for r := range numRegions {
		rec := []recordObs{{Pubkey: m.Pubkey, Block: m.Block, Slot: m.Slot, Source: m.Source, Target: m.Target, Root: m.Root}}
		f.h.observe(r, index, commandpb.CommandType_RECORD_SIGNATURES, holder, int64(index), before, resp, rec)
		f.h.observeAfter(r, index, before, nil)
	}
}

func TestCheckerSignatures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(f *fixture) // after the fixture, before the check
		wantInv string
	}{
		{"covered and returned", func(f *fixture) {
			f.h.addSignature("dc1", 1, f.msg.Pubkey, f.msg.Root, fakeSignature(f.msg.Pubkey, f.msg.Root), 0)
			f.h.markReturned("dc1", 1, f.msg.Pubkey, f.msg.Root, 2, 1)
		}, ""},
		{"identical retry signed twice", func(f *fixture) {
			for range 2 {
				f.h.addSignature("dc1", 1, f.msg.Pubkey, f.msg.Root, fakeSignature(f.msg.Pubkey, f.msg.Root), 0)
			}
		}, ""},
		{"signed by a region that is not the holder", func(f *fixture) {
			f.h.addSignature("dc2", 1, f.msg.Pubkey, f.msg.Root, fakeSignature(f.msg.Pubkey, f.msg.Root), 0)
		}, InvSignedUnderCurrentEpoch},
		{"returned with another index", func(f *fixture) {
			f.h.addSignature("dc1", 1, f.msg.Pubkey, f.msg.Root, fakeSignature(f.msg.Pubkey, f.msg.Root), 0)
			f.h.markReturned("dc1", 1, f.msg.Pubkey, f.msg.Root, 7, 1)
		}, InvSignedUnderCurrentEpoch},
		{"signed without any record", func(f *fixture) {
			m := att(0, 4, 5, "unrecorded")
			f.h.registerMessage(m)
			f.h.addSignature("dc1", 1, m.Pubkey, m.Root, fakeSignature(m.Pubkey, m.Root), 0)
		}, InvSignedUnderCurrentEpoch},
		{"record refused by the rules", func(f *fixture) {
			m := att(0, 4, 5, "refused")
			f.h.registerMessage(m)
			f.apply(3, "dc1", 1, lv(leader.LeaseActive, "dc1", 1, 1), m, slashing.DecisionDenied)
			f.h.addSignature("dc1", 1, m.Pubkey, m.Root, fakeSignature(m.Pubkey, m.Root), 0)
		}, InvSignedUnderCurrentEpoch},
		{"message no client built", func(f *fixture) {
			m := att(0, 4, 5, "ghost")
			f.h.addSignature("dc1", 1, m.Pubkey, m.Root, fakeSignature(m.Pubkey, m.Root), 0)
		}, InvSignedUnderCurrentEpoch},
		{"wrong signature bytes", func(f *fixture) {
			f.h.addSignature("dc1", 1, f.msg.Pubkey, f.msg.Root, [96]byte{1}, 0)
		}, InvSignedUnderCurrentEpoch},
		{"double vote signed", func(f *fixture) {
			m := att(0, 3, 4, "conflicting")
			f.h.registerMessage(m)
			f.apply(3, "dc1", 1, lv(leader.LeaseActive, "dc1", 1, 1), m, slashing.DecisionAccepted)
			f.h.addSignature("dc1", 1, f.msg.Pubkey, f.msg.Root, fakeSignature(f.msg.Pubkey, f.msg.Root), 0)
			f.h.addSignature("dc1", 1, m.Pubkey, m.Root, fakeSignature(m.Pubkey, m.Root), 0)
		}, InvNoSlashablePair},
		{"batch evaluated under another lease", func(f *fixture) {
			m := att(0, 4, 5, "stale")
			f.h.registerMessage(m)
			f.apply(3, "dc1", 1, lv(leader.LeaseFenced, "dc1", 1, 3), m, slashing.DecisionAccepted)
		}, InvSignedUnderCurrentEpoch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(f)
			v := f.c.step()
			switch {
			case tc.wantInv == "" && v != nil:
				t.Fatalf("unexpected violation %s: %s", v.inv, v.detail)
			case tc.wantInv != "" && v == nil:
				t.Fatalf("no violation, want %s", tc.wantInv)
			case tc.wantInv != "" && v.inv != tc.wantInv:
				t.Fatalf("violation %s (%s), want %s", v.inv, v.detail, tc.wantInv)
			}
		})
	}
}

func TestCheckerLeaseAndDivergence(t *testing.T) {
	act1 := lv(leader.LeaseActive, "dc1", 1, 1)
	for _, tc := range []struct {
		name    string
		setup   func(f *fixture)
		wantInv string
	}{
		{"two holders of one epoch", func(f *fixture) {
			f.h.observe(0, 3, commandpb.CommandType_NOOP, "dc2", 3, lv(leader.LeaseActive, "dc2", 1, 1), fsm.Response{Index: 3}, nil)
		}, InvOneHolderPerEpoch},
		{"epoch activated twice", func(f *fixture) {
			f.h.observe(0, 3, commandpb.CommandType_NOOP, "dc1", 3, lv(leader.LeaseActive, "dc1", 1, 2), fsm.Response{Index: 3}, nil)
		}, InvOneHolderPerEpoch},
		{"replicas applied different entries", func(f *fixture) {
			f.h.observe(0, 3, commandpb.CommandType_NOOP, "dc1", 3, act1, fsm.Response{Index: 3}, nil)
			f.h.observe(1, 3, commandpb.CommandType_NOOP, "dc2", 3, act1, fsm.Response{Index: 3}, nil)
		}, InvReplicasAgree},
		{"replicas computed different results", func(f *fixture) {
			f.h.observe(0, 3, commandpb.CommandType_OPERATOR_COMMAND, "dc1", 3, act1, fsm.Response{Index: 3, Value: failover.Result{Accepted: true}}, nil)
			f.h.observe(1, 3, commandpb.CommandType_OPERATOR_COMMAND, "dc1", 3, act1, fsm.Response{Index: 3, Value: failover.Result{}}, nil)
		}, InvReplicasAgree},
		{"replicas ended with different leases", func(f *fixture) {
			f.h.observe(0, 3, commandpb.CommandType_NOOP, "dc1", 3, act1, fsm.Response{Index: 3}, nil)
			f.h.observe(1, 3, commandpb.CommandType_NOOP, "dc1", 3, act1, fsm.Response{Index: 3}, nil)
			f.h.observeAfter(0, 3, act1, nil)
			f.h.observeAfter(1, 3, lv(leader.LeaseFenced, "dc1", 1, 3), nil)
		}, InvReplicasAgree},
		{"replicas ended with different states", func(f *fixture) {
			f.h.observe(0, 3, commandpb.CommandType_NOOP, "dc1", 3, act1, fsm.Response{Index: 3}, nil)
			f.h.observe(1, 3, commandpb.CommandType_NOOP, "dc1", 3, act1, fsm.Response{Index: 3}, nil)
			f.h.observeAfter(0, 3, act1, &[32]byte{1})
			f.h.observeAfter(1, 3, act1, &[32]byte{2})
		}, InvReplicasAgree},
		{"a replay after restart differs", func(f *fixture) {
			f.h.observe(2, 3, commandpb.CommandType_NOOP, "dc1", 3, act1, fsm.Response{Index: 3}, nil)
			f.h.observe(2, 3, commandpb.CommandType_NOOP, "dc1", 3, act1, fsm.Response{Index: 3, Err: fmt.Errorf("boom")}, nil)
		}, InvReplicasAgree},
		{"restored lease differs from the applied one", func(f *fixture) {
			f.h.observeRestore(2, 1, lv(leader.LeaseFenced, "dc1", 1, 1))
		}, InvReplicasAgree},
		{"refused command fenced the lease", func(f *fixture) {
			f.h.observe(0, 3, commandpb.CommandType_OPERATOR_COMMAND, "dc1", 3, act1, fsm.Response{Index: 3, Value: failover.Result{Accepted: false}}, nil)
			f.h.observeAfter(0, 3, lv(leader.LeaseFenced, "dc1", 1, 3), nil)
		}, InvRefusedChangesNothing},
		{"agreeing replicas", func(f *fixture) {
			for r := range numRegions {
				f.h.observe(r, 3, commandpb.CommandType_NOOP, "dc1", 3, act1, fsm.Response{Index: 3}, nil)
				f.h.observeAfter(r, 3, act1, &[32]byte{9})
			}
			f.h.observeRestore(2, 3, act1)
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(f)
			v := f.c.step()
			switch {
			case tc.wantInv == "" && v != nil:
				t.Fatalf("unexpected violation %s: %s", v.inv, v.detail)
			case tc.wantInv != "" && v == nil:
				t.Fatalf("no violation, want %s", tc.wantInv)
			case tc.wantInv != "" && v.inv != tc.wantInv:
				t.Fatalf("violation %s (%s), want %s", v.inv, v.detail, tc.wantInv)
			}
		})
	}
}

func TestPresent(t *testing.T) {
	gvr := eth.Root{2}
	rec := func(m message) recordObs {
		return recordObs{Pubkey: m.Pubkey, Block: m.Block, Slot: m.Slot, Source: m.Source, Target: m.Target, Root: m.Root}
	}
	for _, tc := range []struct {
		name    string
		maxAtts int
		history []message
		look    message
		want    bool
	}{
		{"empty history, attestation", 0, nil, att(0, 3, 4, "x"), false},
		{"empty history, block", 0, nil, blk(0, 40, "x"), false},
		{"retained attestation", 0, []message{att(0, 3, 4, "x")}, att(0, 3, 4, "x"), true},
		{"retained block", 0, []message{blk(0, 40, "x")}, blk(0, 40, "x"), true},
		{"other root at the target", 0, []message{att(0, 3, 4, "x")}, att(0, 3, 4, "y"), false},
		{"other root at the slot", 0, []message{blk(0, 40, "x")}, blk(0, 40, "y"), false},
		{"other key", 0, []message{att(0, 3, 4, "x")}, att(1, 3, 4, "x"), false},
		{"below later history, never recorded", 0, []message{att(0, 5, 6, "x"), att(0, 6, 7, "x")}, att(0, 3, 4, "x"), false},
		{"folded into the watermark at the cap", 2, []message{att(0, 3, 4, "x"), att(0, 4, 5, "y"), att(0, 5, 6, "z")}, att(0, 3, 4, "x"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := eth.NewState(eth.Options{MaxAttestations: tc.maxAtts})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.history {
				var res slashing.Result
				if m.Block {
					res = st.RecordBlock(gvr, eth.Pubkey(m.Pubkey), m.Slot, eth.Root(m.Root))
				} else {
					res = st.RecordAttestation(gvr, eth.Pubkey(m.Pubkey), m.Source, m.Target, eth.Root(m.Root))
				}
				if !res.Accepted() {
					t.Fatalf("history %s refused: %s", m, res.Reason)
				}
			}
			if got := present(st, gvr, rec(tc.look)); got != tc.want {
				t.Fatalf("present(%s) = %t, want %t", tc.look, got, tc.want)
			}
		})
	}
}
