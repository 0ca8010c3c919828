package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("agent: invalid config")

// Proposer writes one command through Raft and waits for it to apply
// (leader.Service.Propose). Who proposes is stamped by the node.
type Proposer interface {
	Propose(ctx context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error)
}

// Replica gives read access to this region's applied state
// (*fsm.FSM[*leader.State] implements it).
type Replica interface {
	View(fn func(ls *leader.State, lastApplied uint64))
}

// Finality produces finality evidence past a high-water mark. WaitPast
// blocks until every chain of hw has finalized past its mark and returns
// the ConfirmFinality to propose (handover id set), or returns ctx's error.
// The finality watcher, adapted, implements it.
type Finality interface {
	WaitPast(ctx context.Context, handoverID uint64, hw leader.HighWater) (*failoverpb.ConfirmFinality, error)
}

// Config configures an Agent.
type Config struct {
	// Region is this node's id, as the envelope's proposer. Required.
	Region   string
	Proposer Proposer // required
	Replica  Replica  // required
	// Finality is required for this region to complete handovers to it.
	Finality Finality
	// Now is this region's clock. Nil means time.Now.
	Now func() time.Time
	// HeartbeatInterval is how often the holder proposes a heartbeat;
	// zero means 5s. It must be well below every DR policy's silence.
	HeartbeatInterval time.Duration
	// DRMargin is added to a DR policy's silence before this region
	// proposes a takeover (its clock and the holder's may differ).
	DRMargin time.Duration
	// RetryInterval spaces repeated DR proposals and finality attempts
	// after a refusal or error; zero means 10s.
	RetryInterval time.Duration
	// ProposeTimeout bounds one proposal; zero means 10s.
	ProposeTimeout time.Duration
	Logger         *slog.Logger
}

// Agent drives the failover protocol for one region. Step and Run may be
// called from one goroutine; the finality wait runs on its own.
type Agent struct {
	cfg Config

	lastHeartbeat time.Time
	lastDR        time.Time

	mu      sync.Mutex
	waiting uint64             // handover id being confirmed, 0 if none
	cancel  context.CancelFunc // stops that wait
	failed  map[uint64]time.Time
	wg      sync.WaitGroup
}

// New validates cfg and returns an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Region == "" || cfg.Proposer == nil || cfg.Replica == nil {
		return nil, fmt.Errorf("%w: Region, Proposer and Replica are required", ErrConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 10 * time.Second
	}
	if cfg.ProposeTimeout == 0 {
		cfg.ProposeTimeout = 10 * time.Second
	}
	if cfg.HeartbeatInterval < 0 || cfg.RetryInterval < 0 || cfg.ProposeTimeout < 0 || cfg.DRMargin < 0 {
		return nil, fmt.Errorf("%w: negative interval", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, failed: map[uint64]time.Time{}}, nil
}

// snapshot is what Step reads from the replica.
type snapshot struct {
	lease     leader.Lease
	open      failover.Handover
	hasOpen   bool
	dr        failover.DRPolicy
	hasDR     bool
	heartbeat failover.Heartbeat
}

func (a *Agent) read() (snap snapshot, ok bool) {
	a.cfg.Replica.View(func(ls *leader.State, _ uint64) {
		s := failover.From(ls)
		if s == nil {
			return
		}
		ok = true
		snap.lease = ls.Lease()
		snap.open, snap.hasOpen = s.OpenHandover()
		for _, p := range s.DRPolicies() {
			if p.Region == a.cfg.Region {
				snap.dr, snap.hasDR = p, true
			}
		}
		snap.heartbeat = s.LastHeartbeat()
	})
	return snap, ok
}

// Step reads the replica once and proposes what is due now. It returns
// the command types it proposed (a finality wait it starts proposes later,
// from its own goroutine).
func (a *Agent) Step(ctx context.Context) []commandpb.CommandType {
	snap, ok := a.read()
	if !ok {
		a.cfg.Logger.Error("failover extension missing from the replica", "region", a.cfg.Region)
		return nil
	}
	now := a.cfg.Now()
	var did []commandpb.CommandType
	l := snap.lease
	if l.State == leader.LeaseActive && l.Holder == a.cfg.Region && now.Sub(a.lastHeartbeat) >= a.cfg.HeartbeatInterval {
		a.lastHeartbeat = now
		did = append(did, commandpb.CommandType_LEASE_HEARTBEAT)
		if err := a.propose(ctx, commandpb.CommandType_LEASE_HEARTBEAT, &failoverpb.LeaseHeartbeat{Holder: l.Holder, Epoch: l.Epoch}); err != nil {
			a.cfg.Logger.Warn("heartbeat not accepted", "region", a.cfg.Region, "lease_epoch", l.Epoch, "err", err)
		}
	}
	if a.drDue(snap, now) {
		a.lastDR = now
		did = append(did, commandpb.CommandType_DR_TAKEOVER)
		reason := fmt.Sprintf("holder %s silent past the DR policy's %ds", l.Holder, snap.dr.SilenceSeconds)
		err := a.propose(ctx, commandpb.CommandType_DR_TAKEOVER, &failoverpb.DRTakeover{Region: a.cfg.Region, Reason: reason})
		a.cfg.Logger.Warn("DR takeover proposed", "region", a.cfg.Region, "lease_epoch", l.Epoch, "holder", l.Holder, "err", err)
	}
	a.followHandover(ctx, snap, now)
	return did
}

// drDue: an enabled policy names this region, another region holds the
// active lease, and its last sign of life is older than silence+margin.
func (a *Agent) drDue(snap snapshot, now time.Time) bool {
	l := snap.lease
	if !snap.hasDR || !snap.dr.Enabled || l.State != leader.LeaseActive || l.Holder == a.cfg.Region {
		return false
	}
	if !a.lastDR.IsZero() && now.Sub(a.lastDR) < a.cfg.RetryInterval {
		return false
	}
	last := l.SinceUnixNano
	if hb := snap.heartbeat; hb.Holder == l.Holder && hb.Epoch == l.Epoch && hb.UnixNano > last {
		last = hb.UnixNano
	}
	silence := time.Duration(snap.dr.SilenceSeconds)*time.Second + a.cfg.DRMargin
	return now.Sub(time.Unix(0, last)) >= silence
}

// followHandover starts a finality wait for a fenced handover to this
// region, and stops a wait whose handover is no longer that.
func (a *Agent) followHandover(ctx context.Context, snap snapshot, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	want := uint64(0)
	if snap.hasOpen && snap.open.State == failover.HandoverFenced && snap.open.To == a.cfg.Region {
		want = snap.open.ID
	}
	if a.waiting != 0 && a.waiting != want {
		a.cancel()
		a.waiting, a.cancel = 0, nil
	}
	if want == 0 || a.waiting == want || a.cfg.Finality == nil {
		if want != 0 && a.cfg.Finality == nil {
			a.cfg.Logger.Error("fenced handover to this region but no finality source", "region", a.cfg.Region, "index", want)
		}
		return
	}
	if t, ok := a.failed[want]; ok && now.Sub(t) < a.cfg.RetryInterval {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	a.waiting, a.cancel = want, cancel
	hw := snap.lease.HighWater
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		err := a.confirm(wctx, want, hw)
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.waiting == want {
			a.waiting, a.cancel = 0, nil
			if err != nil {
				a.failed[want] = a.cfg.Now()
			} else {
				delete(a.failed, want)
			}
		}
		cancel()
	}()
}

func (a *Agent) confirm(ctx context.Context, id uint64, hw leader.HighWater) error {
	cf, err := a.cfg.Finality.WaitPast(ctx, id, hw)
	if err != nil {
		if ctx.Err() == nil {
			a.cfg.Logger.Warn("no finality evidence", "region", a.cfg.Region, "index", id, "err", err)
		}
		return err
	}
	cf.HandoverId = id
	if err := failover.CheckEvidence(hw, cf, 1); err != nil {
		a.cfg.Logger.Error("finality source returned evidence short of the mark", "region", a.cfg.Region, "index", id, "err", err)
		return err
	}
	err = a.propose(ctx, commandpb.CommandType_CONFIRM_FINALITY, cf)
	a.cfg.Logger.Info("finality confirmation proposed", "region", a.cfg.Region, "index", id, "err", err)
	return err
}

func (a *Agent) propose(ctx context.Context, t commandpb.CommandType, msg proto.Message) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ProposeTimeout)
	defer cancel()
	resp, err := a.cfg.Proposer.Propose(ctx, t, msg)
	if err != nil {
		return err
	}
	return failover.ResponseError(resp)
}

// Run calls Step on every tick until ctx ends, then waits for a finality
// wait in progress to stop. tick is a time.Ticker's channel in production.
func (a *Agent) Run(ctx context.Context, tick <-chan time.Time) error {
	defer a.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			a.mu.Lock()
			if a.cancel != nil {
				a.cancel()
			}
			a.mu.Unlock()
			return ctx.Err()
		case <-tick:
			a.Step(ctx)
		}
	}
}

// Waiting returns the handover id whose finality is being awaited, or 0.
func (a *Agent) Waiting() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waiting
}
