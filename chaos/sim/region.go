package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/agent"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
)

// errCrashed: the region's process is dead; its key backend signs nothing.
var errCrashed = errors.New("sim: region crashed")

// errNotFinal: the simulated chain has not finalized past the mark yet.
var errNotFinal = errors.New("sim: chain not final past the high-water mark")

// stores are a region's durable Raft state: they survive a crash.
type stores struct {
	logs  *raft.InmemStore
	snaps *raft.InmemSnapshotStore
}

// instance is one run of a region's process: Raft node, FSM, Service,
// sign pipeline, key backend and failover agent. A crash ends the
// instance; a restart makes a new one over the same stores.
type instance struct {
	c     *cluster
	idx   int
	name  string
	gen   int
	trans *raft.InmemTransport
	raft  *raft.Raft
	obs   *observedFSM
	fsm   *fsm.FSM[*leader.State]
	svc   *leader.Service
	pipe  *pipeline.Pipeline
	agent *agent.Agent
	ctx   context.Context
	stop  context.CancelFunc
	dead  atomic.Bool
}

// noPipeline disables pipelined replication, as the production wiring
// does (cluster.WithoutPipeline): one AppendEntries in flight per
// follower.
type noPipeline struct{ *raft.InmemTransport }

func (noPipeline) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// observedFSM wraps the production FSM to record, for every command
// entry, the lease before and after it and the apply response (through
// the FSM's Applied hook, before the local Service can act on it), and
// after a restore the lease it restored.
type observedFSM struct {
	inner  *fsm.FSM[*leader.State]
	region int
	hist   *history
	every  int
	svc    atomic.Pointer[leader.Service]
	// Set by Apply for the hook, on the FSM goroutine only.
	before   leaseView
	proposer string
	stamp    int64
	records  []recordObs
}

func (o *observedFSM) lease() (leaseView, uint64) {
	var l leaseView
	var last uint64
	o.inner.View(func(s *leader.State, applied uint64) { l, last = viewOf(s.Lease()), applied })
	return l, last
}

// Apply implements raft.FSM.
func (o *observedFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return o.inner.Apply(l)
	}
	o.before, _ = o.lease()
	o.proposer, o.stamp, o.records = "", 0, nil
	var env commandpb.Envelope
	if proto.Unmarshal(l.Data, &env) == nil {
		o.proposer, o.stamp = env.GetProposer(), env.GetProposedAtUnixNano()
		if env.GetType() == commandpb.CommandType_RECORD_SIGNATURES {
			var rs commandpb.RecordSignatures
			if proto.Unmarshal(env.GetPayload(), &rs) == nil {
				o.records = recordsOf(&rs)
			}
		}
	}
	resp := o.inner.Apply(l)
	after, _ := o.lease()
	var digest *[32]byte
	if o.every > 0 && l.Index%uint64(o.every) == 0 {
		if d, err := stateDigest(o.inner); err == nil {
			digest = &d
		}
	}
	o.hist.observeAfter(o.region, l.Index, after, digest)
	return resp
}

// ApplyBatch implements raft.BatchingFSM, one entry at a time.
func (o *observedFSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = o.Apply(l)
	}
	return out
}

// Snapshot implements raft.FSM.
func (o *observedFSM) Snapshot() (raft.FSMSnapshot, error) { return o.inner.Snapshot() }

// Restore implements raft.FSM.
func (o *observedFSM) Restore(rc io.ReadCloser) error {
	if err := o.inner.Restore(rc); err != nil {
		return err
	}
	l, idx := o.lease()
	o.hist.observeRestore(o.region, idx, l)
	return nil
}

// applied is the FSM's Applied hook.
func (o *observedFSM) applied(index uint64, t commandpb.CommandType, resp fsm.Response) {
	o.hist.observe(o.region, index, t, o.proposer, o.stamp, o.before, resp, o.records)
	if svc := o.svc.Load(); svc != nil {
		svc.NoteApplied(index, t, resp)
	}
}

func recordsOf(rs *commandpb.RecordSignatures) []recordObs {
	out := make([]recordObs, 0, len(rs.Records))
	for _, r := range rs.Records {
		var ro recordObs
		switch x := r.GetRecord().(type) {
		case *commandpb.ProtectionRecord_EthBlock:
			ro.Block, ro.Slot = true, x.EthBlock.GetSlot()
			copy(ro.Pubkey[:], x.EthBlock.GetPubkey())
			copy(ro.Root[:], x.EthBlock.GetSigningRoot())
		case *commandpb.ProtectionRecord_EthAttestation:
			ro.Source, ro.Target = x.EthAttestation.GetSourceEpoch(), x.EthAttestation.GetTargetEpoch()
			copy(ro.Pubkey[:], x.EthAttestation.GetPubkey())
			copy(ro.Root[:], x.EthAttestation.GetSigningRoot())
		}
		out = append(out, ro)
	}
	return out
}

// stateBytes returns the FSM's full snapshot: the index it was taken at
// and the state without the header (whose index differs between
// otherwise equal states).
func stateBytes(f *fsm.FSM[*leader.State]) (uint64, []byte, error) {
	var b bytes.Buffer
	if err := f.WriteSnapshot(&b); err != nil {
		return 0, nil, err
	}
	raw := b.Bytes()
	if len(raw) < 20 {
		return 0, nil, fmt.Errorf("snapshot of %d bytes", len(raw))
	}
	var idx uint64
	for _, c := range raw[12:20] {
		idx = idx<<8 | uint64(c)
	}
	return idx, raw[20:], nil
}

func stateDigest(f *fsm.FSM[*leader.State]) ([32]byte, error) {
	_, b, err := stateBytes(f)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// forwarder implements leader.Forwarder between in-memory regions: it
// hands the command to the leader's Service.ProposeRaw with this region
// as proposer, if the link to the leader is up, and loses the answer if
// the link went down meanwhile.
type forwarder struct{ inst *instance }

func (f forwarder) Forward(ctx context.Context, t commandpb.CommandType, payload []byte) (uint64, error) {
	from := f.inst
	if from.dead.Load() {
		return 0, fmt.Errorf("%w: %w", leader.ErrUnavailable, errCrashed)
	}
	_, id := from.raft.LeaderWithID()
	li := regionIndex(string(id))
	if li < 0 || li == from.idx {
		return 0, fmt.Errorf("%w: no raft leader known to %s", leader.ErrUnavailable, from.name)
	}
	to := from.c.reachable(from.idx, li)
	if to == nil {
		return 0, fmt.Errorf("%w: leader %s unreachable from %s", leader.ErrUnavailable, id, from.name)
	}
	resp, err := to.svc.ProposeRaw(ctx, t, payload, from.name)
	if from.c.reachable(from.idx, li) == nil {
		return 0, fmt.Errorf("%w: link to %s lost before its answer", leader.ErrMaybeCommitted, id)
	}
	switch {
	case err == nil:
		return resp.Index, nil
	case resp.Index != 0:
		return 0, fmt.Errorf("%w: at index %d: %w", leader.ErrRejected, resp.Index, err)
	case errors.Is(err, leader.ErrNotLeader), errors.Is(err, leader.ErrUnavailable):
		return 0, fmt.Errorf("%w: forwarded to %s: %w", leader.ErrUnavailable, id, err)
	default:
		return 0, fmt.Errorf("%w: forwarded to %s: %w", leader.ErrMaybeCommitted, id, err)
	}
}

func regionIndex(name string) int {
	for i := range numRegions {
		if regionName(i) == name {
			return i
		}
	}
	return -1
}

// keyBackend is the simulated key store of one instance: it signs with
// fakeSignature and records every signature it produces.
type keyBackend struct{ inst *instance }

func (k keyBackend) SignBLS(pk bls.PublicKey, root [32]byte) ([96]byte, error) {
	if k.inst.dead.Load() {
		return [96]byte{}, errCrashed
	}
	sig := fakeSignature(pk, root)
	k.inst.c.hist.addSignature(k.inst.name, k.inst.gen, pk, root, sig, int(k.inst.c.stepNo.Load()))
	return sig, nil
}

// recordCapture receives what Service.Record reported for one request.
type recordCapture struct {
	index, epoch uint64
	ok           bool
}

type captureKey struct{}

// recorder is the pipeline's Recorder: the region's Service, reporting
// index and epoch to a capture carried in the context.
type recorder struct{ svc *leader.Service }

func (r recorder) Record(ctx context.Context, recs []*commandpb.ProtectionRecord) ([]leader.Outcome, uint64, uint64, error) {
	outs, index, epoch, err := r.svc.Record(ctx, recs)
	if c, ok := ctx.Value(captureKey{}).(*recordCapture); ok && err == nil {
		c.index, c.epoch, c.ok = index, epoch, true
	}
	return outs, index, epoch, err
}

// finalitySource is the agent's Finality: the simulated chain's truthful
// finality, reported by two beacon endpoints; it does not block.
type finalitySource struct{ c *cluster }

func (f finalitySource) WaitPast(ctx context.Context, id uint64, hw leader.HighWater) (*failoverpb.ConfirmFinality, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cf := f.c.evidence(id, f.c.chain.finalized(f.c.clock.Now()), 2)
	if err := failover.CheckEvidence(hw, cf, 1); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotFinal, err)
	}
	return cf, nil
}

// evidence builds a ConfirmFinality for the simulated chain.
func (c *cluster) evidence(id, finalized uint64, endpoints int) *failoverpb.ConfirmFinality {
	eps := []string{"beacon-a", "beacon-b", "beacon-c"}[:endpoints]
	root := tagRoot("finalized", finalized)
	return &failoverpb.ConfirmFinality{HandoverId: id, Eth: []*failoverpb.EthFinality{{
		GenesisValidatorsRoot: c.chain.gvr[:], FinalizedEpoch: finalized, FinalizedRoot: root[:],
		Endpoints: eps, SlotsPerEpoch: slotsPerEpoch,
	}}}
}

// clientIdentity is the policy identity both validator clients use.
const clientIdentity = "validator-client"

// startInstance starts region r's next instance over its stores,
// bootstrapping the three-voter configuration on first start.
func (c *cluster) startInstance(r int, bootstrap bool) (*instance, error) {
	c.gens[r]++
	name := regionName(r)
	inst := &instance{c: c, idx: r, name: name, gen: c.gens[r]}
	inst.ctx, inst.stop = context.WithCancel(context.Background())
	_, trans := raft.NewInmemTransportWithTimeout(raft.ServerAddress(name), c.opts.Raft.TransportTimeout)
	inst.trans = trans

	obs := &observedFSM{region: r, hist: c.hist, every: c.opts.DigestEvery}
	f, err := fsm.New(fsm.Config[*leader.State]{
		New: failover.NewLeaderState, Registry: failover.NewRegistry(), Applied: obs.applied,
		Fatal: func(err error) { c.fatal(r, err) },
	})
	if err != nil {
		return nil, err
	}
	obs.inner = f
	inst.obs, inst.fsm = obs, f

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(name)
	rc.HeartbeatTimeout = c.opts.Raft.HeartbeatTimeout
	rc.ElectionTimeout = c.opts.Raft.ElectionTimeout
	rc.LeaderLeaseTimeout = c.opts.Raft.LeaderLeaseTimeout
	rc.CommitTimeout = c.opts.Raft.CommitTimeout
	rc.SnapshotInterval = 5 * c.opts.Raft.HeartbeatTimeout
	rc.SnapshotThreshold = c.opts.Raft.SnapshotThreshold
	rc.TrailingLogs = c.opts.Raft.TrailingLogs
	rc.BatchApplyCh = true
	rc.Logger = hclog.NewNullLogger()
	st := c.stores[r]
	tr := noPipeline{trans}
	if bootstrap {
		var servers []raft.Server
		for i := range numRegions {
			servers = append(servers, raft.Server{ID: raft.ServerID(regionName(i)), Address: raft.ServerAddress(regionName(i)), Suffrage: raft.Voter})
		}
		if err := raft.BootstrapCluster(rc, st.logs, st.logs, st.snaps, tr, raft.Configuration{Servers: servers}); err != nil {
			return nil, fmt.Errorf("%w: bootstrap %s: %w", ErrSetup, name, err)
		}
	}
	rn, err := raft.NewRaft(rc, obs, st.logs, st.logs, st.snaps, tr)
	if err != nil {
		return nil, fmt.Errorf("%w: start raft on %s: %w", ErrSetup, name, err)
	}
	inst.raft = rn
	now := c.regionNow(r)
	svc, err := leader.NewService(leader.ServiceConfig{
		NodeID: name, Raft: rn, FSM: f, Now: now, Linger: time.Millisecond,
		ApplyTimeout: c.opts.CommandTimeout / 2, KeeperInterval: 20 * time.Millisecond,
		InitialHolder: regionName(0), Forward: forwarder{inst}, Logger: c.log.With("region", name),
	})
	if err != nil {
		_ = rn.Shutdown().Error()
		return nil, err
	}
	inst.svc = svc
	obs.svc.Store(svc)
	inst.pipe, err = pipeline.New(pipeline.Config{
		Recorder: recorder{svc}, State: f, BLS: keyBackend{inst},
		Network: eth2.Network{Name: "sim", GenesisValidatorsRoot: eth2.Root(c.chain.gvr)}, Logger: c.log.With("region", name),
	})
	if err != nil {
		inst.shutdown()
		return nil, err
	}
	inst.agent, err = agent.New(agent.Config{
		Region: name, Proposer: svc, Replica: f, Finality: finalitySource{c}, Now: now,
		HeartbeatInterval: heartbeatInterval, DRMargin: drMargin, RetryInterval: agentRetry,
		ProposeTimeout: c.opts.CommandTimeout, Logger: c.log.With("region", name),
	})
	if err != nil {
		inst.shutdown()
		return nil, err
	}
	c.mu.Lock()
	c.inst[r] = inst
	c.applyLinksLocked()
	c.mu.Unlock()
	return inst, nil
}

// shutdown stops the instance like a killed process: Raft stops, pending
// proposals fail, the agent's context ends, the key backend refuses.
func (inst *instance) shutdown() {
	inst.dead.Store(true)
	inst.stop()
	_ = inst.raft.Shutdown().Error()
	if inst.svc != nil {
		inst.svc.Close()
	}
}

// lease reads the instance's replica.
func (inst *instance) lease() leader.Lease {
	var l leader.Lease
	inst.fsm.View(func(s *leader.State, _ uint64) { l = s.Lease() })
	return l
}

// openHandover reads the open handover on the instance's replica.
func (inst *instance) openHandover() (failover.Handover, bool) {
	var h failover.Handover
	var ok bool
	inst.fsm.View(func(s *leader.State, _ uint64) {
		if fs := failover.From(s); fs != nil {
			h, ok = fs.OpenHandover()
		}
	})
	return h, ok
}

// logger returns l or a discarding logger.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
