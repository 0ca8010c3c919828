package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

// Errors of the node-local service. Match with errors.Is.
var (
	// ErrNotLeader: this node is not the Raft leader; nothing was written.
	ErrNotLeader = errors.New("leader: this region is not the raft leader")
	// ErrNotHolder: this region does not hold an active lease; nothing was
	// written and nothing may be signed.
	ErrNotHolder = errors.New("leader: this region does not hold the signing lease")
	// ErrMaybeCommitted: the write was handed to Raft but its fate is
	// unknown (leadership lost, shutdown, caller gave up). Never sign on it,
	// never assume it is absent.
	ErrMaybeCommitted = errors.New("leader: write may or may not have committed")
	// ErrUnavailable: Raft could not take the write in time (no quorum or
	// overload); nothing was written.
	ErrUnavailable = errors.New("leader: replicated log unavailable")
	// ErrClosed: the service is shutting down.
	ErrClosed = errors.New("leader: service closed")
	// ErrRejected: the command committed but the state machine refused it.
	ErrRejected = errors.New("leader: command rejected by the state machine")
)

// ServiceConfig configures a Service.
type ServiceConfig struct {
	NodeID string
	Raft   *raft.Raft
	FSM    *fsm.FSM[*State]
	// Now stamps proposals. Nil means time.Now.
	Now func() time.Time
	// Linger is how long the batcher waits for more records before it
	// proposes. Zero means 1ms.
	Linger time.Duration
	// MaxBatch bounds records per entry; zero means 1024, capped at MaxBatch.
	MaxBatch int
	// ApplyTimeout bounds the wait for Raft to take a write; zero means 5s.
	ApplyTimeout time.Duration
	// KeeperInterval is how often the leadership keeper looks; zero means 1s.
	KeeperInterval time.Duration
	// NoLeadershipTransfer stops the keeper from moving Raft leadership to
	// the lease holder (tests of the forwarding path); the initial grant
	// still happens.
	NoLeadershipTransfer bool
	Logger               *slog.Logger
	// InitialHolder, when set, is granted the lease at epoch 1 by whichever
	// region first leads a fresh cluster. The FSM refuses any later grant.
	InitialHolder string
	// Bootstrap, when set, is called by the leadership keeper on the Raft
	// leader once the lease is active, until it returns nil (one-time
	// cluster setup such as the operator registry).
	Bootstrap func(ctx context.Context) error
	// Observe, when set, is called after every RecordSignatures proposal
	// with the number of records and how long commit took.
	Observe func(records int, commit time.Duration, err error)
	// Forward, when set, sends a proposal this node cannot make (it is not
	// the Raft leader) to the leader, which stamps this region as proposer.
	Forward Forwarder
}

// Forwarder hands a command to the Raft leader and returns the index it
// was committed at. Its errors follow Propose's: ErrNotLeader/ErrUnavailable
// (nothing written), ErrMaybeCommitted (fate unknown), or a rejection.
type Forwarder interface {
	Forward(ctx context.Context, t commandpb.CommandType, payload []byte) (index uint64, err error)
}

// resultsKept bounds the local cache of RecordSignatures results.
const resultsKept = 4096

// Service is the node-local side of the replicated state: it proposes
// commands, group-commits protection records, and keeps Raft leadership
// next to the lease holder. It is safe for concurrent use.
type Service struct {
	cfg   ServiceConfig
	queue chan *submission
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	// Results of this region's RecordSignatures entries as applied by the
	// local FSM, for proposals that were forwarded to another leader.
	rmu     sync.Mutex
	results map[uint64]BatchResult
	order   []uint64
	applied uint64
	advance chan struct{} // closed and replaced whenever applied grows
}

type submission struct {
	ctx     context.Context
	records []*commandpb.ProtectionRecord
	reply   chan submissionReply
}

type submissionReply struct {
	outcomes []Outcome
	index    uint64
	epoch    uint64
	err      error
}

// NewService starts the batcher and the leadership keeper.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.NodeID == "" || cfg.Raft == nil || cfg.FSM == nil {
		return nil, errors.New("leader: NodeID, Raft and FSM are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Linger <= 0 {
		cfg.Linger = time.Millisecond
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1024
	}
	cfg.MaxBatch = min(cfg.MaxBatch, MaxBatch)
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 5 * time.Second
	}
	if cfg.KeeperInterval <= 0 {
		cfg.KeeperInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, queue: make(chan *submission, 4*cfg.MaxBatch), stop: make(chan struct{}),
		results: make(map[uint64]BatchResult), advance: make(chan struct{})}
	s.wg.Add(2)
	go s.batcher()
	go s.keeper()
	return s, nil
}

// Close stops the background work. Pending submissions fail with ErrClosed.
func (s *Service) Close() {
	s.once.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// Propose writes one command and waits for it to be applied on this node.
// A nil error means the command committed and was applied without error;
// an error wrapping fsm errors or this package's sentinels otherwise. The
// apply response value is returned either way when it exists.
//
// On a follower with a Forwarder, the command goes to the leader and Propose
// returns once this node applied it; the response then carries the index
// but no value.
func (s *Service) Propose(ctx context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error) {
	payload, err := proto.Marshal(msg)
	if err != nil {
		return fsm.Response{}, fmt.Errorf("leader: encode %v: %w", t, err)
	}
	// Leadership can move between looking and proposing. Where nothing was
	// written (ErrNotLeader, ErrUnavailable), try again through whoever
	// leads now, until the context ends.
	backoff := 10 * time.Millisecond
	for {
		resp, err := s.proposeOnce(ctx, t, payload)
		if err == nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrUnavailable)) || s.cfg.Forward == nil {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, err
		case <-s.stop:
			return resp, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

func (s *Service) proposeOnce(ctx context.Context, t commandpb.CommandType, payload []byte) (fsm.Response, error) {
	if s.cfg.Raft.State() != raft.Leader && s.cfg.Forward != nil {
		index, err := s.cfg.Forward.Forward(ctx, t, payload)
		if err != nil {
			return fsm.Response{Index: index}, err
		}
		// Return once the command is applied here too, so the caller reads
		// its effect from this node's state.
		return fsm.Response{Index: index}, s.waitApplied(ctx, index)
	}
	return s.ProposeRaw(ctx, t, payload, s.cfg.NodeID)
}

// ProposeRaw writes a marshalled command on this node, which must be the
// leader, stamping proposer (this node, or the region that forwarded it).
func (s *Service) ProposeRaw(ctx context.Context, t commandpb.CommandType, payload []byte, proposer string) (fsm.Response, error) {
	data, err := fsm.EncodeRaw(t, payload, proposer, s.cfg.Now().UnixNano())
	if err != nil {
		return fsm.Response{}, err
	}
	return s.apply(ctx, data)
}

// NoteApplied is the FSM's Applied hook: it keeps this region's recent
// RecordSignatures results so a forwarded batch can read its outcomes from
// the local apply (identical on every replica, I3).
func (s *Service) NoteApplied(index uint64, t commandpb.CommandType, resp fsm.Response) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if r, ok := resp.Value.(BatchResult); ok && t == commandpb.CommandType_RECORD_SIGNATURES && r.Holder == s.cfg.NodeID {
		s.results[index] = r
		s.order = append(s.order, index)
		if len(s.order) > resultsKept {
			delete(s.results, s.order[0])
			s.order = s.order[1:]
		}
	}
	if index > s.applied {
		s.applied = index
		close(s.advance)
		s.advance = make(chan struct{})
	}
}

// localResult waits until the local FSM applied index and returns this
// region's result for it. A missing result means the fate is unknown here.
func (s *Service) localResult(ctx context.Context, index uint64) (BatchResult, error) {
	for {
		s.rmu.Lock()
		applied, advance := s.applied, s.advance
		r, ok := s.results[index]
		s.rmu.Unlock()
		if applied >= index {
			if !ok {
				return BatchResult{}, fmt.Errorf("%w: no local result for index %d", ErrMaybeCommitted, index)
			}
			return r, nil
		}
		select {
		case <-advance:
		case <-ctx.Done():
			return BatchResult{}, fmt.Errorf("%w: waiting for local apply of %d: %w", ErrMaybeCommitted, index, ctx.Err())
		case <-s.stop:
			return BatchResult{}, fmt.Errorf("%w: %w", ErrMaybeCommitted, ErrClosed)
		}
	}
}

func (s *Service) apply(ctx context.Context, data []byte) (fsm.Response, error) {
	if s.cfg.Raft.State() != raft.Leader {
		addr, id := s.cfg.Raft.LeaderWithID()
		return fsm.Response{}, fmt.Errorf("%w (leader is %q at %q)", ErrNotLeader, id, addr)
	}
	f := s.cfg.Raft.Apply(data, s.cfg.ApplyTimeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fsm.Response{}, mapApplyError(err)
		}
	case <-ctx.Done():
		return fsm.Response{}, fmt.Errorf("%w: %w", ErrMaybeCommitted, ctx.Err())
	case <-s.stop:
		return fsm.Response{}, fmt.Errorf("%w: %w", ErrMaybeCommitted, ErrClosed)
	}
	resp, ok := f.Response().(fsm.Response)
	if !ok {
		return fsm.Response{}, fmt.Errorf("%w: unexpected apply response %T", ErrMaybeCommitted, f.Response())
	}
	if resp.Err == nil {
		// Some handlers refuse by value (they append an audit record, so
		// they cannot return an error): surface the refusal.
		if r, ok := resp.Value.(interface{ Refusal() error }); ok {
			if err := r.Refusal(); err != nil {
				return resp, fmt.Errorf("%w: %w", ErrRejected, err)
			}
		}
	}
	return resp, resp.Err
}

func mapApplyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before it entered the log: nothing was written.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	default: // ErrLeadershipLost, ErrRaftShutdown, ErrAbortedByRestore...
		return fmt.Errorf("%w: %w", ErrMaybeCommitted, err)
	}
}

// Record submits protection records for the current lease and waits for
// the entry that carries them to be committed and applied here. Outcomes
// are in the order of records. Only an Accepted outcome in a nil-error
// return may be signed (I1). All records of one call travel in one entry.
func (s *Service) Record(ctx context.Context, records []*commandpb.ProtectionRecord) (outcomes []Outcome, index, epoch uint64, err error) {
	if len(records) == 0 || len(records) > s.cfg.MaxBatch {
		return nil, 0, 0, fmt.Errorf("%w: %d records in one call (1..%d)", ErrInvalidInput, len(records), s.cfg.MaxBatch)
	}
	if _, err := s.Holding(); err != nil {
		return nil, 0, 0, err
	}
	sub := &submission{ctx: ctx, records: records, reply: make(chan submissionReply, 1)}
	select {
	case s.queue <- sub:
	case <-ctx.Done():
		return nil, 0, 0, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	case <-s.stop:
		return nil, 0, 0, ErrClosed
	}
	select {
	case r := <-sub.reply:
		return r.outcomes, r.index, r.epoch, r.err
	case <-ctx.Done():
		return nil, 0, 0, fmt.Errorf("%w: %w", ErrMaybeCommitted, ctx.Err())
	case <-s.stop:
		return nil, 0, 0, fmt.Errorf("%w: %w", ErrMaybeCommitted, ErrClosed)
	}
}

// Holding returns the lease if this region holds it, active, as this node's
// state says; ErrNotHolder otherwise. The FSM re-checks at apply time.
func (s *Service) Holding() (Lease, error) {
	var l Lease
	s.cfg.FSM.View(func(st *State, _ uint64) { l = st.Lease() })
	if l.State != LeaseActive || l.Holder != s.cfg.NodeID {
		return l, fmt.Errorf("%w: lease is %s (holder %q, epoch %d)", ErrNotHolder, l.State, l.Holder, l.Epoch)
	}
	return l, nil
}

func (s *Service) batcher() {
	defer s.wg.Done()
	for {
		var first *submission
		select {
		case first = <-s.queue:
		case <-s.stop:
			s.drain()
			return
		}
		batch := []*submission{first}
		n := len(first.records)
		timer := time.NewTimer(s.cfg.Linger)
	collect:
		for n < s.cfg.MaxBatch {
			select {
			case sub := <-s.queue:
				if n+len(sub.records) > s.cfg.MaxBatch {
					s.flush(batch)
					batch, n = nil, 0
				}
				batch = append(batch, sub)
				n += len(sub.records)
			case <-timer.C:
				break collect
			case <-s.stop:
				timer.Stop()
				for _, sub := range batch {
					sub.reply <- submissionReply{err: ErrClosed}
				}
				s.drain()
				return
			}
		}
		timer.Stop()
		s.flush(batch)
	}
}

func (s *Service) drain() {
	for {
		select {
		case sub := <-s.queue:
			sub.reply <- submissionReply{err: ErrClosed}
		default:
			return
		}
	}
}

// flush proposes one RecordSignatures entry for the live submissions.
func (s *Service) flush(batch []*submission) {
	live := batch[:0]
	for _, sub := range batch {
		if sub.ctx.Err() != nil {
			sub.reply <- submissionReply{err: fmt.Errorf("%w: %w", ErrUnavailable, sub.ctx.Err())}
			continue
		}
		live = append(live, sub)
	}
	if len(live) == 0 {
		return
	}
	lease, err := s.Holding()
	if err != nil {
		for _, sub := range live {
			sub.reply <- submissionReply{err: err}
		}
		return
	}
	cmd := &commandpb.RecordSignatures{Holder: s.cfg.NodeID, LeaseEpoch: lease.Epoch}
	for _, sub := range live {
		cmd.Records = append(cmd.Records, sub.records...)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*s.cfg.ApplyTimeout)
	defer cancel()
	resp, err := s.Propose(ctx, commandpb.CommandType_RECORD_SIGNATURES, cmd)
	var res BatchResult
	if err == nil {
		var ok bool
		if res, ok = resp.Value.(BatchResult); !ok {
			// Forwarded: read the outcomes from this region's own apply.
			res, err = s.localResult(ctx, resp.Index)
		}
	}
	if err == nil && len(res.Outcomes) != len(cmd.Records) {
		err = fmt.Errorf("%w: malformed batch result", ErrMaybeCommitted)
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(len(cmd.Records), time.Since(start), err)
	}
	if err != nil {
		s.cfg.Logger.Warn("record batch not accepted", "records", len(cmd.Records), "lease_epoch", lease.Epoch, "err", err)
	}
	off := 0
	for _, sub := range live {
		if err != nil {
			sub.reply <- submissionReply{err: err}
			continue
		}
		n := len(sub.records)
		sub.reply <- submissionReply{outcomes: res.Outcomes[off : off+n], index: res.Index, epoch: res.LeaseEpoch}
		off += n
	}
}

// keeper moves Raft leadership to the lease holder when this node leads
// but does not hold the lease, so the holder can commit its own records
// without a forwarding hop. A transfer in progress blocks writes, so it is
// not tried while the holder misses heartbeats, and failures back off.
func (s *Service) keeper() {
	defer s.wg.Done()
	obsCh := make(chan raft.Observation, 16)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	s.cfg.Raft.RegisterObserver(obs)
	defer s.cfg.Raft.DeregisterObserver(obs)
	failing := map[raft.ServerID]bool{}
	bootstrapped := false
	backoff := s.cfg.KeeperInterval
	var next time.Time
	t := time.NewTicker(s.cfg.KeeperInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case o := <-obsCh:
			switch d := o.Data.(type) {
			case raft.FailedHeartbeatObservation:
				failing[d.PeerID] = true
			case raft.ResumedHeartbeatObservation:
				delete(failing, d.PeerID)
			}
			continue
		case now := <-t.C:
			if now.Before(next) {
				continue
			}
		}
		if s.cfg.Raft.State() != raft.Leader {
			continue
		}
		var l Lease
		s.cfg.FSM.View(func(st *State, _ uint64) { l = st.Lease() })
		if l.State == LeaseVacant && l.Epoch == 0 && s.cfg.InitialHolder != "" {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
			_, err := s.Propose(ctx, commandpb.CommandType_GRANT_LEASE, &commandpb.GrantLease{Holder: s.cfg.InitialHolder})
			cancel()
			s.cfg.Logger.Info("initial lease grant", "region", s.cfg.InitialHolder, "err", err)
			continue
		}
		if s.cfg.Bootstrap != nil && l.State == LeaseActive && !bootstrapped {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
			err := s.cfg.Bootstrap(ctx)
			cancel()
			if err == nil {
				bootstrapped = true
			} else {
				s.cfg.Logger.Warn("cluster bootstrap", "err", err)
			}
		}
		if s.cfg.NoLeadershipTransfer || l.State != LeaseActive || l.Holder == s.cfg.NodeID || failing[raft.ServerID(l.Holder)] {
			continue
		}
		cf := s.cfg.Raft.GetConfiguration()
		if cf.Error() != nil {
			continue
		}
		for _, srv := range cf.Configuration().Servers {
			if string(srv.ID) != l.Holder || srv.Suffrage != raft.Voter {
				continue
			}
			err := s.cfg.Raft.LeadershipTransferToServer(srv.ID, srv.Address).Error()
			s.cfg.Logger.Info("leadership transfer to lease holder", "region", l.Holder, "lease_epoch", l.Epoch, "err", err)
			if err != nil {
				backoff = min(2*backoff, time.Minute)
				next = time.Now().Add(backoff)
			} else {
				backoff = s.cfg.KeeperInterval
			}
		}
	}
}

// Barrier waits until every entry committed before the call is applied on
// this node. A new lease holder runs it before its first signature. On a
// follower it commits a no-op through the leader and waits for its own
// apply of it, which has the same effect.
func (s *Service) Barrier(timeout time.Duration) error {
	if s.cfg.Raft.State() == raft.Leader || s.cfg.Forward == nil {
		if err := s.cfg.Raft.Barrier(timeout).Error(); err != nil {
			return mapApplyError(err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := s.Propose(ctx, commandpb.CommandType_NOOP, &commandpb.Noop{Note: "barrier " + s.cfg.NodeID})
	if err != nil {
		return err
	}
	return s.waitApplied(ctx, resp.Index)
}

// waitApplied waits until the local FSM applied index.
func (s *Service) waitApplied(ctx context.Context, index uint64) error {
	for {
		s.rmu.Lock()
		applied, advance := s.applied, s.advance
		s.rmu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-advance:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for local apply of %d: %w", ErrUnavailable, index, ctx.Err())
		case <-s.stop:
			return ErrClosed
		}
	}
}
