package failover

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/slashing/eth"
)

// refMark is the brute-force reference of a lease epoch's high-water
// mark: the maxima of the records the test saw accepted under it.
type refMark struct {
	target, slot map[eth.Root]uint64
	hasT, hasS   map[eth.Root]bool
	height       map[string]int64
}

func newRefMark() *refMark {
	return &refMark{target: map[eth.Root]uint64{}, slot: map[eth.Root]uint64{}, hasT: map[eth.Root]bool{}, hasS: map[eth.Root]bool{}, height: map[string]int64{}}
}

func (r *refMark) note(rec *commandpb.ProtectionRecord) {
	switch x := rec.Record.(type) {
	case *commandpb.ProtectionRecord_EthAttestation:
		g := eth.Root(x.EthAttestation.GenesisValidatorsRoot)
		if !r.hasT[g] || x.EthAttestation.TargetEpoch > r.target[g] {
			r.target[g], r.hasT[g] = x.EthAttestation.TargetEpoch, true
		}
	case *commandpb.ProtectionRecord_EthBlock:
		g := eth.Root(x.EthBlock.GenesisValidatorsRoot)
		if !r.hasS[g] || x.EthBlock.Slot > r.slot[g] {
			r.slot[g], r.hasS[g] = x.EthBlock.Slot, true
		}
	case *commandpb.ProtectionRecord_Comet:
		if h, ok := r.height[x.Comet.ChainId]; !ok || x.Comet.Height > h {
			r.height[x.Comet.ChainId] = x.Comet.Height
		}
	}
}

// covered is the reference decision: does cf pass every mark?
func (r *refMark) covered(cf *failoverpb.ConfirmFinality) bool {
	find := func(g eth.Root) *failoverpb.EthFinality {
		for _, e := range cf.Eth {
			if eth.Root(e.GenesisValidatorsRoot) == g {
				return e
			}
		}
		return nil
	}
	for _, g := range []eth.Root{testGVR, otherGVR} {
		if !r.hasT[g] && !r.hasS[g] {
			continue
		}
		e := find(g)
		if e == nil {
			return false
		}
		spe := uint64(e.SlotsPerEpoch)
		if spe == 0 {
			spe = 32
		}
		if r.hasT[g] && e.FinalizedEpoch <= r.target[g] {
			return false
		}
		if r.hasS[g] && e.FinalizedEpoch*spe <= r.slot[g] {
			return false
		}
	}
	for chain, h := range r.height {
		ok := false
		for _, e := range cf.Comet {
			if e.ChainId == chain && e.Height > h {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// TestRandomCommandsReplicasAgree applies random sequences of signed and
// node-proposed commands (valid and invalid, with clocks that lag and
// jump) to two replicas and a third restored from a mid-run snapshot.
// After every entry it checks the invariants: at most one open handover,
// the audit chain verifies, the epoch grows by exactly one at each holder
// change and only in an accepted finality entry, fences only in accepted
// operator/DR entries, no record accepted outside the current (holder,
// epoch), and every activation's evidence passes a brute-force reference
// of the fenced epoch's high-water mark. At the end all replicas' snapshots
// are identical.
func TestRandomCommandsReplicasAgree(t *testing.T) {
	seeds := 24
	steps := 250
	if testing.Short() {
		seeds, steps = 4, 120
	}
	for seed := 0; seed < seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { randomRun(t, uint64(seed), steps) })
	}
}

func randomRun(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	a := newCluster(t) // replica A drives generation
	b, err := NewMachine(MachineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// B starts from A's state after setup.
	syncB := func() {
		sa, _ := a.m.StateBytes()
		var full bytes.Buffer
		if err := a.m.FSM.WriteSnapshot(&full); err != nil {
			t.Fatal(err)
		}
		if err := b.FSM.Restore(nopCloser{bytes.NewReader(full.Bytes())}); err != nil {
			t.Fatal(err)
		}
		b.index = a.m.index
		sb, _ := b.StateBytes()
		if !bytes.Equal(sa, sb) {
			t.Fatal("restore differs")
		}
	}
	syncB()
	var c3 *Machine
	regions := []string{"dc1", "dc2", "dc3", "dc4"}
	opIDs := []string{"alice", "bob", "carol", "erin", "mallory"}
	a.ops["mallory"] = edOp(t, "mallory", failoverpb.Role_ROLE_ADMIN)
	now := a.m.Now()
	var payloads [][]byte // earlier operator payloads, for replays
	ref := newRefMark()
	slot, target, height := uint64(1), uint64(1), int64(1)
	stats := map[string]int{}

	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	pickOp := func() string {
		if rng.IntN(6) == 0 {
			return pick([]string{"erin", "mallory"})
		}
		return pick([]string{"alice", "bob", "carol"})
	}
	for step := 0; step < steps; step++ {
		before := a.lease()
		var openID uint64
		if h, ok := a.open(); ok {
			openID = h.ID
		}
		if rng.IntN(8) == 0 {
			openID = uint64(rng.IntN(int(a.m.Index()) + 2))
		}
		// Time mostly moves forward; sometimes a proposer lags or jumps.
		switch rng.IntN(10) {
		case 0:
			now = now.Add(time.Duration(rng.IntN(3)) * time.Hour)
		default:
			now = now.Add(time.Duration(1+rng.IntN(90)) * time.Second)
		}
		stamp := now
		if rng.IntN(12) == 0 {
			stamp = now.Add(-time.Duration(rng.IntN(7200)) * time.Second)
		}
		a.m.now = stamp // command bodies expire relative to this

		var typ commandpb.CommandType
		var msg proto.Message
		proposer := pick(regions[:3])
		var records []*commandpb.ProtectionRecord
		signedCmd := func(op string, fn func(*failoverpb.OperatorCommand), co ...string) {
			cmd := a.body(op, fn)
			if rng.IntN(15) == 0 {
				cmd.ExpiresUnixNano = stamp.Add(-time.Second).UnixNano()
			}
			sc := a.sign(cmd, co...)
			if rng.IntN(15) == 0 {
				sc.Signatures[0].Signature[3] ^= 4
			}
			typ, msg = commandpb.CommandType_OPERATOR_COMMAND, sc
		}
		cosigners := func(op string) []string {
			var co []string
			for _, o := range opIDs {
				p := 3
				if o == "erin" || o == "mallory" {
					p = 25
				}
				if o != op && rng.IntN(p) == 0 {
					co = append(co, o)
				}
			}
			return co
		}
		k := rng.IntN(16)
		if _, ok := a.open(); !ok && (k == 2 || k == 4) && rng.IntN(4) != 0 {
			k = 0
		}
		switch k {
		case 0, 1:
			op := pickOp()
			signedCmd(op, request(pick(regions), "random"), cosigners(op)...)
		case 2, 3:
			signedCmd(pickOp(), approve(openID))
		case 4:
			signedCmd(pickOp(), cancelH(openID))
		case 5:
			op := pickOp()
			signedCmd(op, drPolicy(pick(regions), uint32(30+rng.IntN(300)), rng.IntN(4) != 0), cosigners(op)...)
		case 6:
			r := pick(regions)
			if rng.IntN(4) != 0 {
				proposer = r
			}
			typ, msg = commandpb.CommandType_DR_TAKEOVER, &failoverpb.DRTakeover{Region: r}
		case 7, 8:
			// Finality evidence around the reference mark.
			var cf failoverpb.ConfirmFinality
			cf.HandoverId = openID
			for _, g := range []eth.Root{testGVR, otherGVR} {
				if rng.IntN(6) != 0 {
					cf.Eth = append(cf.Eth, ethEv(g, target/1+uint64(rng.IntN(4)), 1+rng.IntN(3)))
				}
			}
			if rng.IntN(6) != 0 {
				cf.Comet = append(cf.Comet, cometEv(testChain, height+int64(rng.IntN(3))-1, 1+rng.IntN(3)))
			}
			if h, ok := a.open(); ok && rng.IntN(3) != 0 {
				proposer = h.To
			}
			typ, msg = commandpb.CommandType_CONFIRM_FINALITY, &cf
		case 9:
			l := a.lease()
			h, e := l.Holder, l.Epoch
			if rng.IntN(3) == 0 {
				h, e = pick(regions), uint64(rng.IntN(4))
			}
			proposer = h
			typ, msg = commandpb.CommandType_LEASE_HEARTBEAT, &failoverpb.LeaseHeartbeat{Holder: h, Epoch: e}
		case 10, 11, 12:
			l := a.lease()
			h, e := l.Holder, l.Epoch
			if rng.IntN(3) == 0 {
				h, e = pick(regions), uint64(rng.IntN(4))
			}
			proposer = h
			target++
			slot += 1 + uint64(rng.IntN(40))
			height++
			records = []*commandpb.ProtectionRecord{att(testGVR, 0, target-1, target), block(testGVR, 0, slot), comet(t, 0, height)}
			if rng.IntN(2) == 0 {
				records = append(records, att(otherGVR, 10, target-1, target))
			}
			typ, msg = commandpb.CommandType_RECORD_SIGNATURES, &commandpb.RecordSignatures{Holder: h, LeaseEpoch: e, Records: records}
		case 13:
			op := pickOp()
			actions := Actions()
			signedCmd(op, setThreshold(actions[rng.IntN(len(actions))], uint32(1+rng.IntN(3))), cosigners(op)...)
		case 14:
			if len(payloads) > 0 {
				typ = commandpb.CommandType_OPERATOR_COMMAND
				msg = nil
			} else {
				signedCmd(pickOp(), exitFor(blsKey(rng.IntN(2))))
			}
		case 15:
			unsigned := []proto.Message{&commandpb.FenceLease{Epoch: before.Epoch}, &commandpb.ActivateLease{Holder: pick(regions), Epoch: before.Epoch + 1}}
			i := rng.IntN(2)
			typ = []commandpb.CommandType{commandpb.CommandType_FENCE_LEASE, commandpb.CommandType_ACTIVATE_LEASE}[i]
			msg = unsigned[i]
		}
		var data []byte
		if msg == nil { // replay an earlier payload
			data, err = fsm.EncodeRaw(typ, payloads[rng.IntN(len(payloads))], proposer, stamp.UnixNano())
		} else {
			data, err = fsm.Encode(typ, msg, proposer, stamp.UnixNano())
			if sc, ok := msg.(*failoverpb.SignedCommand); ok {
				p, _ := opsig.EncodeSigned(sc)
				payloads = append(payloads, p)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		va, ea := a.m.ApplyRaw(data)
		vb, eb := b.ApplyRaw(data)
		if (ea == nil) != (eb == nil) || fmt.Sprint(resultSummary(va)) != fmt.Sprint(resultSummary(vb)) {
			t.Fatalf("step %d: replicas disagree: %v/%v vs %v/%v", step, resultSummary(va), ea, resultSummary(vb), eb)
		}
		if c3 != nil {
			if vc, ec := c3.ApplyRaw(data); (ec == nil) != (ea == nil) || fmt.Sprint(resultSummary(vc)) != fmt.Sprint(resultSummary(va)) {
				t.Fatalf("step %d: restored replica disagrees", step)
			}
		}
		after := a.lease()
		accepted := ea == nil
		if r, ok := va.(Result); ok {
			accepted = r.Accepted
		}

		stats[fmt.Sprint(typ, accepted)]++
		if r, ok := va.(Result); ok && !r.Accepted {
			for _, e := range []error{ErrExpired, ErrReplay, ErrUnknownOperator, ErrNotPermitted, ErrBadSignature, ErrBelowThreshold, ErrNoHandover, ErrHandoverState, ErrUnknownRegion, ErrRegistry, ErrDRNotAllowed, ErrFinalityShort, ErrWrongProposer, ErrExitLimit, ErrLeaderRefused, ErrMalformed, ErrDuplicateApproval, ErrExpiryTooFar} {
				if errors.Is(r.Err, e) {
					stats[e.Error()]++
				}
			}
		}
		if after.Epoch > before.Epoch {
			stats["activation"]++
		}
		if after.State == leader.LeaseFenced && before.State == leader.LeaseActive {
			stats["fence"]++
		}
		// Invariants.
		checkInvariants(t, a.m)
		switch {
		case after.Epoch < before.Epoch:
			t.Fatalf("step %d: epoch went back %d → %d", step, before.Epoch, after.Epoch)
		case after.Epoch > before.Epoch+1:
			t.Fatalf("step %d: epoch jumped %d → %d", step, before.Epoch, after.Epoch)
		case after.Holder != before.Holder && after.Epoch == before.Epoch:
			t.Fatalf("step %d: holder changed %s → %s within epoch %d", step, before.Holder, after.Holder, after.Epoch)
		}
		if after.Epoch == before.Epoch+1 {
			if typ != commandpb.CommandType_CONFIRM_FINALITY || !accepted || before.State != leader.LeaseFenced || after.State != leader.LeaseActive {
				t.Fatalf("step %d: epoch %d → %d by %v (accepted %v, %s → %s)", step, before.Epoch, after.Epoch, typ, accepted, before.State, after.State)
			}
			if !ref.covered(msg.(*failoverpb.ConfirmFinality)) {
				t.Fatalf("step %d: activation on evidence the reference mark says is short", step)
			}
			ref = newRefMark()
		}
		if before.State == leader.LeaseActive && after.State == leader.LeaseFenced {
			if (typ != commandpb.CommandType_OPERATOR_COMMAND && typ != commandpb.CommandType_DR_TAKEOVER) || !accepted {
				t.Fatalf("step %d: fenced by %v (accepted %v)", step, typ, accepted)
			}
		}
		if typ == commandpb.CommandType_RECORD_SIGNATURES {
			rs := msg.(*commandpb.RecordSignatures)
			allowed := before.Allows(rs.Holder, rs.LeaseEpoch)
			if allowed != (ea == nil) {
				t.Fatalf("step %d: record from %s@%d under %+v: err %v", step, rs.Holder, rs.LeaseEpoch, before, ea)
			}
			if !allowed && !errors.Is(ea, leader.ErrStaleLease) {
				t.Fatalf("step %d: stale record refused with %v", step, ea)
			}
			if allowed {
				for i, o := range va.(leader.BatchResult).Outcomes {
					if o.Accepted() {
						ref.note(records[i])
					}
				}
			}
		}
		if step == steps/2 {
			var full bytes.Buffer
			if err := a.m.FSM.WriteSnapshot(&full); err != nil {
				t.Fatal(err)
			}
			c3, err = NewMachine(MachineConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := c3.FSM.Restore(nopCloser{bytes.NewReader(full.Bytes())}); err != nil {
				t.Fatal(err)
			}
			c3.index = a.m.index
		}
	}
	t.Logf("stats: %v", stats)
	sa, _ := a.m.StateBytes()
	sb, _ := b.StateBytes()
	sc, _ := c3.StateBytes()
	if !bytes.Equal(sa, sb) || !bytes.Equal(sa, sc) {
		t.Fatal("replicas' snapshots differ")
	}
}

// resultSummary is what two replicas must agree on for one entry.
func resultSummary(v any) any {
	switch r := v.(type) {
	case Result:
		return fmt.Sprint(r.Index, r.Action, r.Accepted, r.Err, r.AuditSeq, r.Lease.Holder, r.Lease.Epoch, r.Lease.State)
	case leader.BatchResult:
		var o []string
		for _, x := range r.Outcomes {
			o = append(o, x.Decision.String())
		}
		return fmt.Sprint(r.Index, r.Holder, r.LeaseEpoch, o)
	default:
		return fmt.Sprintf("%T %v", v, v)
	}
}
