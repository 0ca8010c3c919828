package failover

import (
	"errors"
	"testing"
	"time"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
)

func TestHandoverHappyPath(t *testing.T) {
	c := newCluster(t)
	// History under epoch 1 on every kind of chain.
	c.mustRecord("dc1", 1, att(testGVR, 0, 3, 4), block(testGVR, 0, 150), att(otherGVR, 10, 7, 8), comet(t, 0, 40))

	r := c.mustDo("alice", request("dc2", "planned move"))
	id := r.Handover.ID
	if r.Handover.State != HandoverRequested || len(r.Handover.Approvals) != 1 || r.Handover.Approvals[0].OperatorID != "alice" {
		t.Fatalf("after request: %+v", r.Handover)
	}
	if l := c.lease(); l.State != leader.LeaseActive || l.Epoch != 1 {
		t.Fatalf("lease %s/%d after the request alone", l.State, l.Epoch)
	}
	r = c.mustDo("bob", approve(id))
	if r.Handover.State != HandoverFenced || r.Lease.State != leader.LeaseFenced || r.Lease.Epoch != 1 {
		t.Fatalf("after approval: handover %s, lease %s/%d", r.Handover.State, r.Lease.State, r.Lease.Epoch)
	}
	hw := c.lease().HighWater
	if m := hw.Eth[testGVR]; m.MaxTargetEpoch != 4 || m.MaxBlockSlot != 150 || hw.Comet[testChain] != 40 {
		t.Fatalf("high-water mark %s", hw)
	}
	// From the fence on, the old epoch's records are refused.
	if _, err := c.record("dc1", 1, att(testGVR, 0, 4, 5)); !errors.Is(err, leader.ErrStaleLease) {
		t.Fatalf("record under the fenced epoch: %v", err)
	}

	cf := &failoverpb.ConfirmFinality{HandoverId: id,
		Eth:   []*failoverpb.EthFinality{ethEv(testGVR, 5, 2), ethEv(otherGVR, 9, 2)},
		Comet: []*failoverpb.CometFinality{cometEv(testChain, 41, 2)}}
	r = c.confirm("dc2", cf)
	if !r.Accepted {
		t.Fatalf("confirm refused: %v", r.Err)
	}
	if l := c.lease(); l.State != leader.LeaseActive || l.Holder != "dc2" || l.Epoch != 2 {
		t.Fatalf("lease after finality: %s %s/%d", l.State, l.Holder, l.Epoch)
	}
	if r.Handover.State != HandoverCompleted || len(r.Handover.Evidence) == 0 {
		t.Fatalf("handover after finality: %+v", r.Handover)
	}
	// The new holder signs under epoch 2; the old one can never come back.
	c.mustRecord("dc2", 2, att(testGVR, 0, 5, 6))
	for _, tc := range []struct {
		holder string
		epoch  uint64
	}{{"dc1", 1}, {"dc1", 2}, {"dc2", 1}, {"dc3", 2}} {
		if _, err := c.record(tc.holder, tc.epoch, att(testGVR, 1, 1, 2)); !errors.Is(err, leader.ErrStaleLease) {
			t.Errorf("record from %s at epoch %d: %v", tc.holder, tc.epoch, err)
		}
	}

	// The audit chain tells the story in order.
	var actions []string
	for _, a := range c.audit() {
		actions = append(actions, a.Action+"/"+a.Outcome.String())
	}
	want := []string{"lease.grant/accepted", "keys.add/accepted", "bootstrap/accepted", "handover.request/accepted", "handover.approve/accepted",
		"lease.fence/accepted", "finality.confirm/accepted", "lease.activate/accepted"}
	if len(actions) != len(want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Fatalf("audit actions %v, want %v", actions, want)
		}
	}
	a := c.audit()
	fence := a[5]
	if len(fence.Approvals) != 2 || fence.Approvals[0].OperatorID != "alice" || fence.Approvals[1].OperatorID != "bob" || fence.LeaseState != "fenced" {
		t.Fatalf("fence record %+v", fence)
	}
	if act := a[7]; act.LeaseHolder != "dc2" || act.LeaseEpoch != 2 || len(act.EvidenceDigest) != 32 {
		t.Fatalf("activate record %+v", act)
	}
	checkInvariants(t, c.m)
}

func TestApprovalsBelowThresholdDoNotFence(t *testing.T) {
	c := newCluster(t)
	// Threshold 3 of alice, bob, carol.
	c.mustDo("alice", func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_SetThreshold{SetThreshold: &failoverpb.SetThreshold{Action: failoverpb.Action_ACTION_HANDOVER, Required: 3}}
	}, "bob")
	r := c.mustDo("alice", request("dc2", "x"))
	r = c.mustDo("bob", approve(r.Handover.ID))
	if r.Handover.State != HandoverRequested || c.lease().State != leader.LeaseActive {
		t.Fatalf("2 of 3 approvals: handover %s, lease %s", r.Handover.State, c.lease().State)
	}
	c.mustRecord("dc1", 1, att(testGVR, 0, 1, 2)) // the holder still signs
	r = c.mustDo("carol", approve(r.Handover.ID))
	if r.Handover.State != HandoverFenced || c.lease().State != leader.LeaseFenced {
		t.Fatalf("3 of 3 approvals: handover %s, lease %s", r.Handover.State, c.lease().State)
	}
}

func TestDuplicateApprovalMakesNoProgress(t *testing.T) {
	c := newCluster(t)
	r := c.mustDo("alice", request("dc2", "x"))
	id := r.Handover.ID
	before := withoutAudit(t, c.m)
	n := len(c.audit())
	r = c.do("alice", approve(id)) // the requester approves again
	if r.Accepted || !errors.Is(r.Err, ErrDuplicateApproval) {
		t.Fatalf("second approval by alice: accepted=%v err=%v", r.Accepted, r.Err)
	}
	if got := withoutAudit(t, c.m); string(got) != string(before) {
		t.Fatal("a duplicate approval changed the state")
	}
	if a := c.audit(); len(a) != n+1 || a[n].Outcome != OutcomeRejected || a[n].Action != "handover.approve" {
		t.Fatalf("duplicate approval not audited as rejected: %+v", a[len(a)-1])
	}
	// Two signatures of one operator on one command are refused as well.
	cmd := c.body("bob", approve(id))
	sc := c.sign(cmd)
	sc.Signatures = append(sc.Signatures, sc.Signatures[0])
	if r := c.submit("dc1", sc); r.Accepted || !errors.Is(r.Err, ErrBadSignature) {
		t.Fatalf("doubled signature: %v %v", r.Accepted, r.Err)
	}
	if c.lease().State != leader.LeaseActive {
		t.Fatal("fenced without a second distinct operator")
	}
}

func TestRequesterApprovalCountsAndCoSignedRequestFences(t *testing.T) {
	c := newCluster(t)
	// A request co-signed by a second operator reaches 2 of 3 at once.
	r := c.mustDo("alice", request("dc3", "co-signed"), "carol")
	if r.Handover.State != HandoverFenced || c.lease().State != leader.LeaseFenced {
		t.Fatalf("co-signed request: %s, lease %s", r.Handover.State, c.lease().State)
	}
}

// finalitySetup fences a handover to dc2 after a history on two Ethereum
// networks and one CometBFT chain: testGVR target 10, slot 330 (epoch
// 10, slot 10); otherGVR target 20 only; testChain height 100.
func finalitySetup(t *testing.T) (*cluster, uint64) {
	c := newCluster(t)
	c.mustRecord("dc1", 1, att(testGVR, 0, 9, 10), block(testGVR, 0, 330), att(otherGVR, 10, 19, 20), comet(t, 0, 100))
	return c, c.requestAndFence("dc2")
}

func TestFinalityShortOfHighWaterDoesNotActivate(t *testing.T) {
	full := func(id uint64) *failoverpb.ConfirmFinality {
		return &failoverpb.ConfirmFinality{HandoverId: id,
			Eth:   []*failoverpb.EthFinality{ethEv(testGVR, 11, 2), ethEv(otherGVR, 21, 2)},
			Comet: []*failoverpb.CometFinality{cometEv(testChain, 101, 2)}}
	}
	tests := []struct {
		name   string
		mutate func(cf *failoverpb.ConfirmFinality)
		want   error
	}{
		{"eth epoch equals target", func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].FinalizedEpoch = 10 }, ErrFinalityShort},
		{"eth epoch below target", func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].FinalizedEpoch = 3 }, ErrFinalityShort},
		{"eth first slot not above block slot", func(cf *failoverpb.ConfirmFinality) {
			cf.Eth[0].FinalizedEpoch = 11
			cf.Eth[0].SlotsPerEpoch = 30 // 11 × 30 = 330, not above slot 330
		}, ErrFinalityShort},
		{"second eth chain short", func(cf *failoverpb.ConfirmFinality) { cf.Eth[1].FinalizedEpoch = 20 }, ErrFinalityShort},
		{"comet height equals", func(cf *failoverpb.ConfirmFinality) { cf.Comet[0].Height = 100 }, ErrFinalityShort},
		{"comet height below", func(cf *failoverpb.ConfirmFinality) { cf.Comet[0].Height = 7 }, ErrFinalityShort},
		{"missing eth chain", func(cf *failoverpb.ConfirmFinality) { cf.Eth = cf.Eth[:1] }, ErrFinalityShort},
		{"missing comet chain", func(cf *failoverpb.ConfirmFinality) { cf.Comet = nil }, ErrFinalityShort},
		{"no chains at all", func(cf *failoverpb.ConfirmFinality) { cf.Eth, cf.Comet = nil, nil }, ErrFinalityShort},
		{"too few endpoints", func(cf *failoverpb.ConfirmFinality) { cf.Eth[1].Endpoints = cf.Eth[1].Endpoints[:1] }, ErrFinalityShort},
		{"same endpoint twice", func(cf *failoverpb.ConfirmFinality) { cf.Comet[0].Endpoints[1] = cf.Comet[0].Endpoints[0] }, ErrMalformed},
		{"duplicate chain", func(cf *failoverpb.ConfirmFinality) { cf.Eth = append(cf.Eth, ethEv(testGVR, 50, 2)) }, ErrMalformed},
		{"short root", func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].FinalizedRoot = cf.Eth[0].FinalizedRoot[:31] }, ErrMalformed},
		{"bad block hash", func(cf *failoverpb.ConfirmFinality) { cf.Comet[0].BlockHash = nil }, ErrMalformed},
		{"wrong handover", func(cf *failoverpb.ConfirmFinality) { cf.HandoverId++ }, ErrNoHandover},
		{"accepted: all past", func(*failoverpb.ConfirmFinality) {}, nil},
		{"accepted: extra chain", func(cf *failoverpb.ConfirmFinality) { cf.Comet = append(cf.Comet, cometEv("other-chain", 1, 2)) }, nil},
		{"accepted: first slot just above", func(cf *failoverpb.ConfirmFinality) {
			cf.Eth[0].SlotsPerEpoch = 31 // 11 × 31 = 341 > 330
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, id := finalitySetup(t)
			cf := full(id)
			tc.mutate(cf)
			before := withoutAudit(t, c.m)
			r := c.confirm("dc2", cf)
			if tc.want == nil {
				if !r.Accepted || c.lease().Holder != "dc2" || c.lease().Epoch != 2 {
					t.Fatalf("accepted case: %v, lease %+v", r.Err, c.lease())
				}
				return
			}
			if r.Accepted || !errors.Is(r.Err, tc.want) {
				t.Fatalf("accepted=%v err=%v, want %v", r.Accepted, r.Err, tc.want)
			}
			if l := c.lease(); l.State != leader.LeaseFenced || l.Epoch != 1 {
				t.Fatalf("lease moved: %+v", l)
			}
			if string(withoutAudit(t, c.m)) != string(before) {
				t.Fatal("a refused confirmation changed the state")
			}
			a := c.audit()
			if last := a[len(a)-1]; last.Action != "finality.confirm" || last.Outcome != OutcomeRejected {
				t.Fatalf("refusal not audited: %+v", last)
			}
		})
	}
}

func TestConfirmFinalityPreconditions(t *testing.T) {
	ok := func(id uint64) *failoverpb.ConfirmFinality {
		return &failoverpb.ConfirmFinality{HandoverId: id, Eth: []*failoverpb.EthFinality{ethEv(testGVR, 5, 2)}}
	}
	tests := []struct {
		name  string
		setup func(c *cluster) uint64
		from  string
		want  error
	}{
		{"before the fence", func(c *cluster) uint64 { return c.mustDo("alice", request("dc2", "x")).Handover.ID }, "dc2", ErrHandoverState},
		{"from the outgoing region", func(c *cluster) uint64 { return c.requestAndFence("dc2") }, "dc1", ErrWrongProposer},
		{"from a third region", func(c *cluster) uint64 { return c.requestAndFence("dc2") }, "dc3", ErrWrongProposer},
		{"no handover", func(c *cluster) uint64 { return 999 }, "dc2", ErrNoHandover},
		{"after completion", func(c *cluster) uint64 {
			id := c.requestAndFence("dc2")
			if r := c.confirm("dc2", ok(id)); !r.Accepted {
				t.Fatal(r.Err)
			}
			return id
		}, "dc2", ErrNoHandover},
		{"target left the configuration", func(c *cluster) uint64 {
			id := c.requestAndFence("dc2")
			c.m.Configure("dc1", "dc3")
			return id
		}, "dc2", ErrHandoverState},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			c.mustRecord("dc1", 1, att(testGVR, 0, 1, 2))
			id := tc.setup(c)
			before := withoutAudit(t, c.m)
			r := c.confirm(tc.from, ok(id))
			if r.Accepted || !errors.Is(r.Err, tc.want) {
				t.Fatalf("accepted=%v err=%v, want %v", r.Accepted, r.Err, tc.want)
			}
			if string(withoutAudit(t, c.m)) != string(before) {
				t.Fatal("a refused confirmation changed the state")
			}
		})
	}
}

func TestCancel(t *testing.T) {
	t.Run("before the fence", func(t *testing.T) {
		c := newCluster(t)
		id := c.mustDo("alice", request("dc2", "x")).Handover.ID
		r := c.mustDo("carol", cancelH(id))
		if r.Handover.State != HandoverCancelled || r.Handover.ClosedBy != "carol" {
			t.Fatalf("after cancel: %+v", r.Handover)
		}
		// Approving a cancelled handover does nothing.
		if r := c.do("bob", approve(id)); r.Accepted || !errors.Is(r.Err, ErrNoHandover) {
			t.Fatalf("approve after cancel: %v %v", r.Accepted, r.Err)
		}
		if l := c.lease(); l.State != leader.LeaseActive || l.Holder != "dc1" {
			t.Fatalf("lease %+v", l)
		}
		// A new request can be filed.
		c.mustDo("bob", request("dc3", "second try"))
	})
	t.Run("after the fence", func(t *testing.T) {
		c := newCluster(t)
		id := c.requestAndFence("dc2")
		before := withoutAudit(t, c.m)
		r := c.do("carol", cancelH(id))
		if r.Accepted || !errors.Is(r.Err, ErrHandoverState) {
			t.Fatalf("cancel after fence: %v %v", r.Accepted, r.Err)
		}
		if string(withoutAudit(t, c.m)) != string(before) {
			t.Fatal("refused cancel changed the state")
		}
	})
}

func TestRedirectFencedHandover(t *testing.T) {
	c := newCluster(t)
	c.mustRecord("dc1", 1, att(testGVR, 0, 1, 2))
	id := c.requestAndFence("dc2") // then dc2 is lost before confirming
	// One operator alone cannot redirect a fenced handover.
	if r := c.do("alice", request("dc3", "dc2 lost")); r.Accepted || !errors.Is(r.Err, ErrBelowThreshold) {
		t.Fatalf("single-signature redirect: %v %v", r.Accepted, r.Err)
	}
	r := c.mustDo("alice", request("dc3", "dc2 lost"), "bob")
	if r.Handover.State != HandoverFenced || r.Handover.FencedEpoch != 1 {
		t.Fatalf("redirect: %+v", r.Handover)
	}
	var old Handover
	c.m.View(func(_ *leader.State, s *State) { old, _ = s.Handover(id) })
	if old.State != HandoverRejected {
		t.Fatalf("superseded handover is %s", old.State)
	}
	// dc2 can no longer complete; dc3 can.
	cf := &failoverpb.ConfirmFinality{HandoverId: id, Eth: []*failoverpb.EthFinality{ethEv(testGVR, 5, 2)}}
	if r := c.confirm("dc2", cf); r.Accepted {
		t.Fatal("superseded handover completed")
	}
	cf.HandoverId = r.Handover.ID
	if r := c.confirm("dc3", cf); !r.Accepted {
		t.Fatal(r.Err)
	}
	if l := c.lease(); l.Holder != "dc3" || l.Epoch != 2 {
		t.Fatalf("lease %+v", l)
	}
}

func TestDRTakeover(t *testing.T) {
	setup := func(t *testing.T) *cluster {
		c := newCluster(t)
		c.mustDo("alice", drPolicy("dc2", 60, true), "bob")
		c.mustRecord("dc1", 1, att(testGVR, 0, 1, 2), comet(t, 0, 9))
		if _, err := c.m.Apply("dc1", commandpb.CommandType_LEASE_HEARTBEAT, &failoverpb.LeaseHeartbeat{Holder: "dc1", Epoch: 1}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	takeover := func(c *cluster, region string) Result {
		v, err := c.m.Apply(region, commandpb.CommandType_DR_TAKEOVER, &failoverpb.DRTakeover{Region: region, Reason: "dc1 unreachable"})
		if err != nil {
			t.Fatal(err)
		}
		return v.(Result)
	}
	t.Run("before the silence elapsed", func(t *testing.T) {
		c := setup(t)
		c.m.Advance(50 * time.Second)
		before := withoutAudit(t, c.m)
		r := takeover(c, "dc2")
		if r.Accepted || !errors.Is(r.Err, ErrDRNotAllowed) {
			t.Fatalf("early takeover: %v %v", r.Accepted, r.Err)
		}
		if string(withoutAudit(t, c.m)) != string(before) {
			t.Fatal("refused takeover changed the state")
		}
		// A heartbeat resets the silence.
		if _, err := c.m.Apply("dc1", commandpb.CommandType_LEASE_HEARTBEAT, &failoverpb.LeaseHeartbeat{Holder: "dc1", Epoch: 1}); err != nil {
			t.Fatal(err)
		}
		c.m.Advance(30 * time.Second)
		if r := takeover(c, "dc2"); r.Accepted {
			t.Fatal("takeover 30s after a heartbeat")
		}
	})
	t.Run("after the silence, then finality", func(t *testing.T) {
		c := setup(t)
		req := c.mustDo("carol", request("dc3", "pending")) // superseded by the DR takeover
		c.m.Advance(61 * time.Second)
		r := takeover(c, "dc2")
		if !r.Accepted {
			t.Fatal(r.Err)
		}
		if !r.Handover.DR || r.Handover.State != HandoverFenced || c.lease().State != leader.LeaseFenced {
			t.Fatalf("after takeover: %+v lease %+v", r.Handover, c.lease())
		}
		if len(r.Handover.Approvals) != 2 || r.Handover.Approvals[0].OperatorID != "alice" {
			t.Fatalf("DR handover approvals %+v (want the policy's)", r.Handover.Approvals)
		}
		var old Handover
		c.m.View(func(_ *leader.State, s *State) { old, _ = s.Handover(req.Handover.ID) })
		if old.State != HandoverCancelled {
			t.Fatalf("pending handover is %s", old.State)
		}
		if _, err := c.record("dc1", 1, att(testGVR, 0, 2, 3)); !errors.Is(err, leader.ErrStaleLease) {
			t.Fatalf("old holder after DR fence: %v", err)
		}
		cf := &failoverpb.ConfirmFinality{HandoverId: r.Handover.ID,
			Eth: []*failoverpb.EthFinality{ethEv(testGVR, 3, 2)}, Comet: []*failoverpb.CometFinality{cometEv(testChain, 10, 2)}}
		if r := c.confirm("dc2", cf); !r.Accepted {
			t.Fatal(r.Err)
		}
		if l := c.lease(); l.Holder != "dc2" || l.Epoch != 2 || l.State != leader.LeaseActive {
			t.Fatalf("lease %+v", l)
		}
		a := c.audit()
		var sawDR bool
		for _, x := range a {
			if x.Action == "dr.takeover" && x.Outcome == OutcomeAccepted {
				sawDR = true
			}
		}
		if !sawDR {
			t.Fatal("DR takeover not audited")
		}
	})
	refusals := []struct {
		name   string
		region string
		from   string
		prep   func(c *cluster)
		want   error
	}{
		{"region without policy", "dc3", "dc3", nil, ErrDRNotAllowed},
		{"proposed by another region", "dc2", "dc3", nil, ErrWrongProposer},
		{"policy disabled", "dc2", "dc2", func(c *cluster) { c.mustDo("alice", drPolicy("dc2", 0, false), "bob") }, ErrDRNotAllowed},
		{"lease already fenced", "dc2", "dc2", func(c *cluster) { c.requestAndFence("dc3") }, ErrHandoverState},
		{"holder itself", "dc1", "dc1", func(c *cluster) { c.mustDo("alice", drPolicy("dc1", 60, true), "bob") }, ErrHandoverState},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			c := setup(t)
			if tc.prep != nil {
				tc.prep(c)
			}
			c.m.Advance(time.Hour)
			before := withoutAudit(t, c.m)
			v, err := c.m.Apply(tc.from, commandpb.CommandType_DR_TAKEOVER, &failoverpb.DRTakeover{Region: tc.region})
			if err != nil {
				t.Fatal(err)
			}
			if r := v.(Result); r.Accepted || !errors.Is(r.Err, tc.want) {
				t.Fatalf("accepted=%v err=%v, want %v", r.Accepted, r.Err, tc.want)
			}
			if string(withoutAudit(t, c.m)) != string(before) {
				t.Fatal("refused takeover changed the state")
			}
		})
	}
}

func TestDRSilenceUsesTheTakeoverStampNotAFastClock(t *testing.T) {
	c := newCluster(t)
	c.mustDo("alice", drPolicy("dc2", 60, true), "bob")
	// Some region with a clock an hour fast gets an entry accepted...
	if _, err := c.m.ApplyAt("dc1", c.m.Now().Add(time.Hour).UnixNano(), commandpb.CommandType_LEASE_HEARTBEAT,
		&failoverpb.LeaseHeartbeat{Holder: "dc1", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	// ...which does not make the holder look silent to dc2's honest clock.
	c.m.Advance(2 * time.Minute)
	v, err := c.m.Apply("dc2", commandpb.CommandType_DR_TAKEOVER, &failoverpb.DRTakeover{Region: "dc2"})
	if err != nil {
		t.Fatal(err)
	}
	if r := v.(Result); r.Accepted {
		t.Fatal("takeover accepted although the holder's last heartbeat is in dc2's future")
	}
}

func TestHeartbeat(t *testing.T) {
	tests := []struct {
		name   string
		prep   func(c *cluster)
		from   string
		holder string
		epoch  uint64
		want   error
	}{
		{"current holder", nil, "dc1", "dc1", 1, nil},
		{"wrong epoch", nil, "dc1", "dc1", 2, ErrStaleHeartbeat},
		{"not the holder", nil, "dc2", "dc2", 1, ErrStaleHeartbeat},
		{"proposed for the holder by another region", nil, "dc2", "dc1", 1, ErrStaleHeartbeat},
		{"fenced holder", func(c *cluster) { c.requestAndFence("dc2") }, "dc1", "dc1", 1, ErrStaleHeartbeat},
		{"superseded holder", func(c *cluster) {
			id := c.requestAndFence("dc2")
			if r := c.confirm("dc2", &failoverpb.ConfirmFinality{HandoverId: id}); !r.Accepted {
				t.Fatal(r.Err)
			}
		}, "dc1", "dc1", 1, ErrStaleHeartbeat},
		{"new holder", func(c *cluster) {
			id := c.requestAndFence("dc2")
			if r := c.confirm("dc2", &failoverpb.ConfirmFinality{HandoverId: id}); !r.Accepted {
				t.Fatal(r.Err)
			}
		}, "dc2", "dc2", 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			if tc.prep != nil {
				tc.prep(c)
			}
			before, err := c.m.StateBytes()
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.m.Apply(tc.from, commandpb.CommandType_LEASE_HEARTBEAT, &failoverpb.LeaseHeartbeat{Holder: tc.holder, Epoch: tc.epoch})
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				after, _ := c.m.StateBytes()
				if string(after) != string(before) {
					t.Fatal("refused heartbeat changed the state")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			hb := v.(Heartbeat)
			if hb.Holder != tc.holder || hb.Epoch != tc.epoch || hb.Index != c.m.Index() || hb.UnixNano != c.m.Now().UnixNano() {
				t.Fatalf("heartbeat %+v", hb)
			}
		})
	}
}

func TestRemovedOperatorApprovalNoLongerCounts(t *testing.T) {
	c := newCluster(t)
	// dave (operator) joins, requests; then dave is removed; bob's approval
	// alone is 1 valid of 2, no fence.
	dave := edOp(t, "dave", failoverpb.Role_ROLE_OPERATOR)
	c.ops["dave"] = dave
	c.mustDo("alice", func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_AddOperator{AddOperator: &failoverpb.AddOperator{Id: "dave", PublicKey: dave.der, Role: dave.role}}
	}, "bob")
	id := c.mustDo("dave", request("dc2", "x")).Handover.ID
	c.mustDo("alice", func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_RemoveOperator{RemoveOperator: &failoverpb.RemoveOperator{Id: "dave"}}
	}, "bob")
	r := c.mustDo("bob", approve(id))
	if r.Handover.State != HandoverRequested || c.lease().State != leader.LeaseActive {
		t.Fatalf("fenced with a removed operator's approval: %s", r.Handover.State)
	}
	r = c.mustDo("carol", approve(id))
	if r.Handover.State != HandoverFenced {
		t.Fatalf("two valid approvals: %s", r.Handover.State)
	}
}
