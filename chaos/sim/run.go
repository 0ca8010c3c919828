package sim

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/eth"
)

// traceLen is how many recent steps a Violation carries.
const traceLen = 40

// Run executes opts.Runs schedules (seeds opts.Seed, opts.Seed+1, ...)
// against a fresh three-region cluster each, checking the invariants after
// every step, and returns what it observed. It stops at the first
// violation (an error wrapping ErrInvariant: a *Violation naming the
// seed), setup or liveness failure, or when ctx ends; the report then
// holds the runs done so far, the failing one last.
func Run(ctx context.Context, opts Options) (Report, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return Report{}, err
	}
	var rep Report
	for i := range opts.Runs {
		seed := opts.Seed + int64(i)
		rr, err := runOne(ctx, opts, seed)
		rep.Runs = append(rep.Runs, rr)
		logger(opts.Logger).Info("sim run", "seed", seed, "report", rr.String(), "err", err)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// runner executes one schedule.
type runner struct {
	c    *cluster
	ops  *operators
	chk  *checker
	rep  RunReport
	step int
	// trace is the tail of the step log.
	trace []string
	// lastHandover is the newest handover id seen.
	lastHandover uint64
	drRegion     int
}

func runOne(ctx context.Context, opts Options, seed int64) (RunReport, error) {
	start := time.Now()
	c, err := newCluster(opts, seed)
	if err != nil {
		return RunReport{Seed: seed}, err
	}
	defer c.shutdown()
	r := &runner{c: c, ops: newOperators(seed, c.clock.Now), chk: newChecker(c.hist),
		rep: RunReport{Seed: seed, Refusals: map[string]int{}}, step: -1}
	r.drRegion = rand.New(rand.NewPCG(uint64(seed), 0xd5)).IntN(numRegions)
	finish := func(err error) (RunReport, error) {
		r.fillReport()
		r.rep.Elapsed = time.Since(start)
		return r.rep, err
	}
	if err := r.setup(ctx); err != nil {
		return finish(fmt.Errorf("seed %d: %w", seed, err))
	}
	if v := r.check(); v != nil {
		return finish(v)
	}
	sched, err := Schedule(seed, opts.Steps, opts.Validators)
	if err != nil {
		return finish(err)
	}
	for i, st := range sched {
		if err := ctx.Err(); err != nil {
			return finish(err)
		}
		r.step = i
		c.stepNo.Store(int64(i))
		desc := st.String() + " → " + r.exec(ctx, st)
		r.rep.Steps++
		r.trace = append(r.trace, fmt.Sprintf("%d: %s", i, desc))
		if len(r.trace) > traceLen {
			r.trace = r.trace[1:]
		}
		if opts.OnStep != nil {
			opts.OnStep(seed, i, desc)
		}
		c.log.Debug("sim step", "step", i, "desc", desc)
		if v := r.check(); v != nil {
			return finish(v)
		}
	}
	r.step = -1
	if err := r.final(ctx); err != nil {
		return finish(err)
	}
	return finish(nil)
}

// check runs the per-step checks and turns what they found into an
// error: a *Violation for a broken invariant, ErrInternal or ErrLiveness
// otherwise.
func (r *runner) check() error {
	v := r.chk.step()
	if v == nil {
		return nil
	}
	switch v.inv {
	case invInternal:
		return fmt.Errorf("%w: seed %d, step %d: %s", ErrInternal, r.c.seed, r.step, v.detail)
	case invLiveness:
		return fmt.Errorf("%w: seed %d: %s", ErrLiveness, r.c.seed, v.detail)
	}
	return &Violation{Seed: r.c.seed, Step: r.step, Invariant: v.inv, Detail: v.detail, Trace: append([]string(nil), r.trace...)}
}

// violate records a violation found while executing a step; the check
// after the step reports it. Safe from any goroutine.
func (r *runner) violate(inv, format string, args ...any) {
	h := r.c.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	h.problems = append(h.problems, problem{inv, fmt.Sprintf(format, args...)})
}

func (r *runner) count(label string) { r.rep.Refusals[label]++ }

func (r *runner) fillReport() {
	h := r.c.hist
	h.mu.Lock()
	for _, s := range h.sigs {
		r.rep.SignaturesProduced++
		if s.Returned {
			r.rep.SignaturesReturned++
		}
	}
	r.rep.StateDigestsCompared = h.digestsCompared
	r.rep.SnapshotRestores = len(h.restores)
	h.mu.Unlock()
	r.rep.Fences, r.rep.HandoversCompleted, r.rep.DRTakeovers = r.chk.fences, r.chk.handovers, r.chk.drTakeovers
	r.rep.LastIndex, r.rep.Entries, r.rep.Heartbeats = r.chk.lastIndex, r.chk.entries, r.chk.heartbeats
	r.rep.Availability = 1
	if r.rep.HonestDuties > 0 {
		r.rep.Availability = float64(r.rep.HonestSigned) / float64(r.rep.HonestDuties)
	}
	for i := range numRegions {
		if inst := r.c.live(i); inst != nil {
			l := inst.lease()
			if l.Epoch >= r.rep.FinalEpoch {
				r.rep.FinalEpoch, r.rep.FinalHolder = l.Epoch, l.Holder
			}
		}
	}
}

// --- setup -------------------------------------------------------------

// setup starts the regions, lets the first leader grant the lease to dc1,
// registers the validator keys and the client policy, bootstraps the
// operators and sets the DR policy.
func (r *runner) setup(ctx context.Context) error {
	c := r.c
	for i := range numRegions {
		if _, err := c.startInstance(i, true); err != nil {
			return err
		}
	}
	granted := waitFor(ctx, c.opts.SettleTimeout, func() bool {
		for i := range numRegions {
			if inst := c.live(i); inst != nil && inst.lease().State == leader.LeaseActive {
				return true
			}
		}
		return false
	})
	if !granted {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: no initial lease grant within %v", ErrSetup, c.opts.SettleTimeout)
	}
	add := &commandpb.AddKeys{}
	for _, pk := range c.keys {
		add.Keys = append(add.Keys, &commandpb.AddKey{Pubkey: pk[:], Scheme: commandpb.Scheme_SCHEME_BLS12381,
			Network: leader.RootHex(c.chain.gvr), Label: fmt.Sprintf("validator %x", pk[:4])})
	}
	steps := []struct {
		what string
		t    commandpb.CommandType
		msg  func() (proto.Message, error)
		done func(*leader.State) bool
	}{
		{"add keys", commandpb.CommandType_ADD_KEY, func() (proto.Message, error) { return add, nil },
			func(s *leader.State) bool { return s.KeyCount() == len(c.keys) }},
		{"set client policy", commandpb.CommandType_SET_POLICY, func() (proto.Message, error) {
			return &commandpb.SetPolicy{Identity: clientIdentity, KeyPatterns: []string{"*"}, MessageTypes: []string{"ATTESTATION", "BLOCK_V2"}}, nil
		}, func(s *leader.State) bool { _, ok := s.Policy(clientIdentity); return ok }},
		{"bootstrap operators", commandpb.CommandType_BOOTSTRAP_OPERATORS, func() (proto.Message, error) { return r.ops.bootstrap() },
			func(s *leader.State) bool { fs := failover.From(s); return fs != nil && fs.Bootstrapped() }},
		{"set DR policy", commandpb.CommandType_OPERATOR_COMMAND, func() (proto.Message, error) {
			return r.ops.signed(0, 1, setDRPolicy(regionName(r.drRegion), c.opts.DRSilence))
		}, func(s *leader.State) bool {
			fs := failover.From(s)
			if fs == nil {
				return false
			}
			for _, p := range fs.DRPolicies() {
				if p.Region == regionName(r.drRegion) && p.Enabled {
					return true
				}
			}
			return false
		}},
	}
	for _, s := range steps {
		if err := r.proposeUntil(ctx, s.t, s.msg, s.done); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSetup, s.what, err)
		}
	}
	return nil
}

// proposeUntil proposes through the Raft leader until done holds on the
// leader's replica or the settle timeout passes.
func (r *runner) proposeUntil(ctx context.Context, t commandpb.CommandType, build func() (proto.Message, error), done func(*leader.State) bool) error {
	deadline := time.Now().Add(r.c.opts.SettleTimeout)
	var last error
	for time.Now().Before(deadline) {
		var l *instance
		if !waitFor(ctx, time.Until(deadline), func() bool { l = r.c.leaderInstance(); return l != nil }) {
			break
		}
		var ok bool
		l.fsm.View(func(s *leader.State, _ uint64) { ok = done(s) })
		if ok {
			return nil
		}
		msg, err := build()
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, r.c.opts.CommandTimeout)
		resp, err := l.svc.Propose(pctx, t, msg)
		cancel()
		if err == nil {
			err = failover.ResponseError(resp)
		}
		last = err
		if err == nil {
			if sc, isOp := msg.(*failoverpb.SignedCommand); isOp {
				r.ops.accepted = append(r.ops.accepted, sc)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("not done within %v (last error: %v)", r.c.opts.SettleTimeout, last)
}

// --- steps -------------------------------------------------------------

// exec runs one step and describes its outcome.
func (r *runner) exec(ctx context.Context, st Step) string {
	c := r.c
	c.clock.Advance(st.Advance)
	r.tickAgents()
	switch st.Kind {
	case KindDuties:
		return r.duties(ctx, st)
	case KindRequest:
		sc, err := r.ops.signed(st.Operator, st.Cosign, requestHandover(regionName(st.Other), fmt.Sprintf("step %d", r.step)))
		if err != nil {
			return r.internal(err)
		}
		return r.operatorCommand(ctx, st.Region, "handover.request", sc, "")
	case KindApprove:
		sc, err := r.ops.signed(st.Operator, 0, approveHandover(r.openID(st.Region)))
		if err != nil {
			return r.internal(err)
		}
		return r.operatorCommand(ctx, st.Region, "handover.approve", sc, "")
	case KindCancel:
		sc, err := r.ops.signed(st.Operator, 0, cancelHandover(r.openID(st.Region), fmt.Sprintf("step %d", r.step)))
		if err != nil {
			return r.internal(err)
		}
		return r.operatorCommand(ctx, st.Region, "handover.cancel", sc, "")
	case KindBadCommand:
		sc, what, err := r.ops.bad(st.Variant, st.Operator, regionName(st.Other))
		if err != nil {
			return r.internal(err)
		}
		return r.operatorCommand(ctx, st.Region, "bad", sc, what)
	case KindFinality:
		return r.finality(ctx, st)
	case KindClockJump:
		r.rep.ClockJumps++
		return fmt.Sprintf("clock at %s", c.clock.Now().Format(time.TimeOnly))
	case KindCrash:
		if c.live(st.Region) == nil || c.liveCount() < 2 {
			return "skipped"
		}
		c.crash(st.Region)
		r.rep.Crashes++
		return "crashed " + regionName(st.Region)
	case KindRestart:
		return r.restartOne(st.Region)
	case KindIsolate:
		c.isolate(st.Region)
		r.rep.Partitions++
		return "isolated " + regionName(st.Region)
	case KindCutLink:
		c.cut(st.Region, st.Other)
		r.rep.Partitions++
		return fmt.Sprintf("cut %s-%s", regionName(st.Region), regionName(st.Other))
	case KindHeal:
		if c.heal() {
			r.rep.Heals++
			return "healed"
		}
		return "nothing to heal"
	case KindSettle:
		return r.settle(ctx, false)
	default:
		return "unknown step"
	}
}

// internal records a failure of the simulation itself (not of the system
// under test) as a violation: the run cannot vouch for its checks.
func (r *runner) internal(err error) string {
	r.violate(invInternal, "%v", err)
	return "internal error: " + err.Error()
}

func (r *runner) restartOne(want int) string {
	c := r.c
	order := []int{want}
	for i := range numRegions {
		if i != want {
			order = append(order, i)
		}
	}
	for _, i := range order {
		ok, err := c.restart(i)
		if err != nil {
			return r.internal(err)
		}
		if ok {
			r.rep.Restarts++
			return "restarted " + regionName(i)
		}
	}
	return "nothing to restart"
}

// tickAgents runs one Step of every live region's failover agent, in
// parallel: heartbeats, DR takeovers, finality confirmations.
func (r *runner) tickAgents() {
	var wg sync.WaitGroup
	for i := range numRegions {
		inst := r.c.live(i)
		if inst == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst.agent.Step(inst.ctx)
		}()
	}
	wg.Wait()
}

// openID is the open handover's id on region via's replica (any live one
// when via is down), else the newest id seen.
func (r *runner) openID(via int) uint64 {
	inst := r.c.live(via)
	for i := 0; inst == nil && i < numRegions; i++ {
		inst = r.c.live(i)
	}
	if inst != nil {
		if h, ok := inst.openHandover(); ok {
			r.lastHandover = max(r.lastHandover, h.ID)
			return h.ID
		}
	}
	return r.lastHandover
}

// outcome is what became of one proposal.
type outcome struct {
	label    string
	accepted bool
	index    uint64
}

// result reads a proposal's fate from the history: the apply response of
// its index, which every replica computed identically.
func (r *runner) result(resp fsm.Response, err error) outcome {
	if resp.Index != 0 {
		if e, ok := r.c.hist.entry(resp.Index); ok {
			o := outcome{index: resp.Index, accepted: e.accepted()}
			switch {
			case o.accepted:
				o.label = "accepted"
			case e.Resp.Err != nil:
				o.label = refusalLabel(e.Resp.Err)
			default:
				res, _ := e.Resp.Value.(failover.Result)
				o.label = refusalLabel(res.Refusal())
			}
			if res, ok := e.Resp.Value.(failover.Result); ok && res.Handover != nil {
				r.lastHandover = max(r.lastHandover, res.Handover.ID)
			}
			return o
		}
	}
	if err == nil {
		return outcome{label: "unknown"}
	}
	return outcome{label: refusalLabel(err)}
}

// proposeVia proposes msg through region via's Service (it forwards when
// not the Raft leader).
func (r *runner) proposeVia(ctx context.Context, via int, t commandpb.CommandType, msg proto.Message) (outcome, bool) {
	inst := r.c.live(via)
	if inst == nil {
		return outcome{label: "region_down"}, false
	}
	pctx, cancel := context.WithTimeout(ctx, r.c.opts.CommandTimeout)
	defer cancel()
	resp, err := inst.svc.Propose(pctx, t, msg)
	return r.result(resp, err), true
}

// operatorCommand submits a signed command through region via. A command
// built to be invalid (what != "") must be refused.
func (r *runner) operatorCommand(ctx context.Context, via int, action string, sc *failoverpb.SignedCommand, what string) string {
	o, _ := r.proposeVia(ctx, via, commandpb.CommandType_OPERATOR_COMMAND, sc)
	if o.accepted {
		r.ops.accepted = append(r.ops.accepted, sc)
		if what != "" {
			r.violate(InvRefusedChangesNothing, "operator command with %s accepted at index %d", what, o.index)
		}
	} else {
		r.count("op/" + action + "/" + o.label)
	}
	if what != "" {
		return fmt.Sprintf("%s: %s (index %d)", what, o.label, o.index)
	}
	return fmt.Sprintf("%s (index %d)", o.label, o.index)
}

// finality reports finality for the open handover; variants 1..5 are
// built to be refused.
func (r *runner) finality(ctx context.Context, st Step) string {
	c := r.c
	inst := c.live(st.Region)
	for i := 0; inst == nil && i < numRegions; i++ {
		inst = c.live(i)
	}
	if inst == nil {
		return "no live region"
	}
	h, open := inst.openHandover()
	l := inst.lease()
	id, proposer := r.lastHandover, st.Region
	fe, eps := c.chain.finalized(c.clock.Now()), 2
	mustRefuse := false
	what := "truthful"
	if open {
		r.lastHandover = max(r.lastHandover, h.ID)
		id, proposer = h.ID, regionIndex(h.To)
		fenced := h.State == failover.HandoverFenced && l.State == leader.LeaseFenced && l.Epoch == h.FencedEpoch
		mark := l.HighWater.Eth[eth.Root(c.chain.gvr)]
		switch st.Variant {
		case 1:
			if fenced && mark.HasAttestation {
				fe, mustRefuse, what = mark.MaxTargetEpoch, true, "not past the target epoch"
			}
		case 2:
			if fenced && mark.HasBlock {
				fe, mustRefuse, what = mark.MaxBlockSlot/slotsPerEpoch, true, "not past the block slot"
			}
		case 3:
			eps, mustRefuse, what = 1, true, "below the endpoint quorum"
		case 4:
			proposer, mustRefuse, what = (proposer+1+st.Other%2)%numRegions, true, "wrong proposer"
		case 5:
			id, mustRefuse, what = h.ID-1, true, "stale handover id"
		}
	}
	cf := c.evidence(id, fe, eps)
	o, ok := r.proposeVia(ctx, proposer, commandpb.CommandType_CONFIRM_FINALITY, cf)
	if !ok {
		return fmt.Sprintf("%s: proposer %s down", what, regionName(proposer))
	}
	if o.accepted && mustRefuse {
		r.violate(InvRefusedChangesNothing, "finality evidence %s (handover %d, finalized epoch %d, %d endpoints, from %s) accepted at index %d",
			what, id, fe, eps, regionName(proposer), o.index)
	}
	if !o.accepted {
		r.count("finality/" + o.label)
	}
	return fmt.Sprintf("%s from %s for handover %d: %s (index %d)", what, regionName(proposer), id, o.label, o.index)
}

// dutyResult is what became of one signing request.
type dutyResult struct {
	label  string
	honest bool
}

// duties sends a batch of signing requests concurrently; a fault may
// strike the region serving the first one while they are in flight.
func (r *runner) duties(ctx context.Context, st Step) string {
	c := r.c
	now := c.clock.Now()
	targets := make([]int, len(st.Duties))
	for i, d := range st.Duties {
		targets[i] = r.target(d)
	}
	results := make([]dutyResult, len(st.Duties))
	var wg sync.WaitGroup
	for i, d := range st.Duties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.duty(ctx, d, targets[i], now)
		}()
	}
	fault := ""
	switch st.Fault {
	case FaultCrash:
		if c.liveCount() >= 2 && c.crash(targets[0]) {
			r.rep.Crashes++
			fault = " with " + regionName(targets[0]) + " crashed"
		}
	case FaultIsolate:
		c.isolate(targets[0])
		r.rep.Partitions++
		fault = " with " + regionName(targets[0]) + " isolated"
	}
	wg.Wait()
	var b bytes.Buffer
	for i, res := range results {
		if res.honest {
			r.rep.HonestDuties++
		} else {
			r.rep.RogueDuties++
		}
		if res.label == "signed" {
			if res.honest {
				r.rep.HonestSigned++
			} else {
				r.rep.RogueSigned++
			}
		} else if res.honest {
			r.count("duty/honest/" + res.label)
		} else {
			r.count("duty/rogue/" + res.label)
		}
		fmt.Fprintf(&b, "%s@%s:%s ", st.Duties[i].Shape, regionName(targets[i]), res.label)
	}
	return b.String() + fault
}

// target is where a duty goes: the honest client asks replicas, starting
// with the step's, who holds the lease (skipping replicas that do not
// know yet); the rogue client sends wherever the step says.
func (r *runner) target(d Duty) int {
	if !d.Shape.Honest() {
		return d.Region
	}
	for i := range numRegions {
		inst := r.c.live((d.Region + i) % numRegions)
		if inst == nil {
			continue
		}
		if h := holderIndex(inst.lease()); h >= 0 {
			return h
		}
	}
	return d.Region
}

// duty sends one signing request through region target's sign pipeline.
func (r *runner) duty(ctx context.Context, d Duty, target int, now time.Time) dutyResult {
	c := r.c
	res := dutyResult{honest: d.Shape.Honest()}
	req, msg := c.chain.dutyRequest(d, now)
	if req == nil {
		res.label = r.internal(fmt.Errorf("no request for duty shape %v", d.Shape))
		return res
	}
	root, _, err := req.SigningRoot()
	if err != nil {
		res.label = r.internal(fmt.Errorf("signing root of %v: %w", d.Shape, err))
		return res
	}
	pk := c.keys[d.Key]
	msg.Root, msg.Pubkey = root, pk
	c.hist.registerMessage(msg)
	inst := c.live(target)
	if inst == nil {
		res.label = "region_down"
		return res
	}
	if c.opts.sabotage == sabotageSignAnywhere && !res.honest && holderIndex(inst.lease()) != target {
		// A standby process with the key signs what it is asked to.
		if _, err := (keyBackend{inst}).SignBLS(pk, root); err == nil {
			c.hist.markReturned(inst.name, inst.gen, pk, root, 0, 0)
			res.label = "signed"
			return res
		}
	}
	capture := &recordCapture{}
	dctx, cancel := context.WithTimeout(context.WithValue(ctx, captureKey{}, capture), c.opts.DutyTimeout)
	defer cancel()
	sig, err := inst.pipe.SignEth(dctx, pipeline.Caller{Name: clientIdentity}, pk, req)
	if err != nil {
		res.label = dutyLabel(err)
		return res
	}
	res.label = "signed"
	switch {
	case !capture.ok:
		r.violate(InvSignedUnderCurrentEpoch, "%s returned a signature over %s without a recorded, accepted record", inst.name, msg)
	case sig != fakeSignature(pk, root):
		r.violate(InvSignedUnderCurrentEpoch, "%s returned a signature over %s that its key backend did not produce", inst.name, msg)
	case !c.hist.markReturned(inst.name, inst.gen, pk, root, capture.index, capture.epoch):
		r.violate(InvSignedUnderCurrentEpoch, "%s returned a signature over %s that its key backend has no record of", inst.name, msg)
	}
	return res
}

// --- convergence checks --------------------------------------------------

// settle waits for the replicas reachable from the leader to converge,
// then compares their whole states (replicas that applied the same index
// must be byte-identical) and checks every accepted record is present on
// each of them. With all set, every region must take part.
func (r *runner) settle(ctx context.Context, all bool) string {
	type snap struct {
		inst  *instance
		index uint64
		body  []byte
	}
	var g []*instance
	var snaps []snap
	// An agent's finality confirmation may still be committing: take the
	// states again until every replica is at one index (a few tries).
	for try := 0; ; try++ {
		var err error
		g, err = r.c.converge(ctx, all)
		if err != nil {
			if ctx.Err() == nil && all {
				r.violate(invLiveness, "%v", err)
			}
			r.rep.SettleTimeouts++
			return "did not converge: " + err.Error()
		}
		snaps = snaps[:0]
		same := true
		for _, x := range g {
			idx, body, err := stateBytes(x.fsm)
			if err != nil {
				return r.internal(fmt.Errorf("snapshot of %s: %w", x.name, err))
			}
			snaps = append(snaps, snap{x, idx, body})
			same = same && idx == snaps[0].index
		}
		if same || try == 4 {
			break
		}
	}
	r.rep.QuiescentChecks++
	compared := 0
	for i := range snaps {
		for j := range i {
			a, b := snaps[i], snaps[j]
			if a.index != b.index {
				continue
			}
			compared++
			if !bytes.Equal(a.body, b.body) {
				r.violate(InvReplicasAgree, "%s and %s applied index %d but their states differ (%d vs %d bytes)",
					a.inst.name, b.inst.name, a.index, len(a.body), len(b.body))
				return "states differ"
			}
		}
	}
	missing := r.checkPresent(g)
	if missing != "" {
		r.violate(InvNothingLost, "%s", missing)
		return "record missing"
	}
	names := ""
	for _, x := range g {
		names += x.name + " "
	}
	return fmt.Sprintf("converged %sat index %d; %d state pairs equal", names, snaps[0].index, compared)
}

// checkPresent checks that every record an entry accepted is present on
// each instance that applied the entry's index.
func (r *runner) checkPresent(g []*instance) string {
	type acc struct {
		index uint64
		rec   recordObs
	}
	var all []acc
	h := r.c.hist
	h.mu.Lock()
	for _, e := range h.entries {
		if e.Type != commandpb.CommandType_RECORD_SIGNATURES || e.Resp.Err != nil {
			continue
		}
		for _, rec := range e.Records {
			if rec.Decision == slashing.DecisionAccepted {
				all = append(all, acc{e.Index, rec})
			}
		}
	}
	h.mu.Unlock()
	gvr := eth.Root(r.c.chain.gvr)
	for _, x := range g {
		var msg string
		x.fsm.View(func(s *leader.State, applied uint64) {
			for _, a := range all {
				if a.index > applied {
					continue
				}
				r.rep.RecordsVerified++
				if !present(s.Eth(), gvr, a.rec) {
					msg = fmt.Sprintf("%s applied index %d but lacks the record it accepted there (key %x, block %t, slot %d, %d→%d)",
						x.name, a.index, a.rec.Pubkey[:4], a.rec.Block, a.rec.Slot, a.rec.Source, a.rec.Target)
					return
				}
			}
		})
		if msg != "" {
			return msg
		}
	}
	return ""
}

// final heals every partition, restarts every crashed region, waits for
// all three to converge and runs the whole-state checks one last time.
func (r *runner) final(ctx context.Context) error {
	c := r.c
	c.heal()
	for i := range numRegions {
		if _, err := c.restart(i); err != nil {
			return err
		}
	}
	desc := r.settle(ctx, true)
	if err := ctx.Err(); err != nil {
		return err
	}
	r.trace = append(r.trace, "final: "+desc)
	return r.check()
}
