package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

// world is a failover.Machine shared by the test and the agents' proposers,
// under one lock (the machine is not safe for concurrent use).
type world struct {
	t   *testing.T
	mu  sync.Mutex
	m   *failover.Machine
	ops map[string]ed25519.PrivateKey
	// applied receives every command an agent proposed, after it applied.
	applied chan commandpb.CommandType
}

func newWorld(t *testing.T) *world {
	t.Helper()
	m, err := failover.NewMachine(failover.MachineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, m: m, ops: map[string]ed25519.PrivateKey{}, applied: make(chan commandpb.CommandType, 64)}
	boot := &failoverpb.BootstrapOperators{ClusterId: "c", ExitLimitPerDay: 1, FinalityQuorum: 1}
	for _, id := range []string{"alice", "bob"} {
		s := sha256.Sum256([]byte(id))
		k := ed25519.NewKeyFromSeed(s[:])
		w.ops[id] = k
		der, err := opsig.MarshalPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		boot.Operators = append(boot.Operators, &failoverpb.Operator{Id: id, PublicKey: der, Role: failoverpb.Role_ROLE_ADMIN})
	}
	for _, a := range failover.Actions() {
		boot.Thresholds = append(boot.Thresholds, &failoverpb.Threshold{Action: a, Required: 2})
	}
	w.must(w.apply("dc1", commandpb.CommandType_BOOTSTRAP_OPERATORS, boot))
	return w
}

func (w *world) apply(region string, t commandpb.CommandType, msg proto.Message) (any, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m.Apply(region, t, msg)
}

func (w *world) must(v any, err error) {
	w.t.Helper()
	if err := failover.ResponseError(fsm.Response{Value: v, Err: err}); err != nil {
		w.t.Fatal(err)
	}
}

// operator submits a command signed by alice and bob.
func (w *world) operator(set func(*failoverpb.OperatorCommand)) {
	w.t.Helper()
	cmd, err := opsig.Builder{ClusterID: "c", OperatorID: "alice", Now: w.now}.New()
	if err != nil {
		w.t.Fatal(err)
	}
	set(cmd)
	sc, err := opsig.SignCommand(cmd, w.ops["alice"])
	if err != nil {
		w.t.Fatal(err)
	}
	if err := opsig.Cosign(sc, "bob", w.ops["bob"]); err != nil {
		w.t.Fatal(err)
	}
	w.must(w.apply("dc1", commandpb.CommandType_OPERATOR_COMMAND, sc))
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m.Now()
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m.Advance(d)
}

func (w *world) lease() leader.Lease {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m.Lease()
}

// proposer is one region's Proposer into the world.
type proposer struct {
	w      *world
	region string
}

func (p proposer) Propose(_ context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error) {
	v, err := p.w.apply(p.region, t, msg)
	p.w.applied <- t
	return fsm.Response{Value: v, Err: err}, err
}

func (w *world) agent(region string, f Finality) *Agent {
	w.t.Helper()
	a, err := New(Config{Region: region, Proposer: proposer{w, region}, Replica: w.m.FSM, Finality: f, Now: w.now,
		HeartbeatInterval: 5 * time.Second, RetryInterval: 30 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	return a
}

// awaitApplied waits, with a deadline, for an agent's proposal of type t.
func (w *world) awaitApplied(t commandpb.CommandType) {
	w.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-w.applied:
			if got == t {
				return
			}
		case <-deadline:
			w.t.Fatalf("no %v proposed before the deadline", t)
		}
	}
}

// fakeFinality hands out evidence when the test says so.
type fakeFinality struct {
	evidence chan *failoverpb.ConfirmFinality
	err      chan error
	started  chan uint64
	stopped  chan uint64
}

func newFakeFinality() *fakeFinality {
	return &fakeFinality{evidence: make(chan *failoverpb.ConfirmFinality, 1), err: make(chan error, 1),
		started: make(chan uint64, 8), stopped: make(chan uint64, 8)}
}

func (f *fakeFinality) WaitPast(ctx context.Context, id uint64, _ leader.HighWater) (*failoverpb.ConfirmFinality, error) {
	f.started <- id
	select {
	case cf := <-f.evidence:
		return cf, nil
	case err := <-f.err:
		return nil, err
	case <-ctx.Done():
		f.stopped <- id
		return nil, ctx.Err()
	}
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received before the deadline")
		panic("unreachable")
	}
}

func request(to string) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_RequestHandover{RequestHandover: &failoverpb.RequestHandover{To: to, Reason: "test"}}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	w := newWorld(t)
	for _, cfg := range []Config{
		{},
		{Region: "dc1", Replica: w.m.FSM},
		{Region: "dc1", Proposer: proposer{w, "dc1"}},
		{Region: "dc1", Proposer: proposer{w, "dc1"}, Replica: w.m.FSM, HeartbeatInterval: -time.Second},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Fatalf("config %+v: %v", cfg, err)
		}
	}
}

func TestHeartbeatsOnlyFromTheHolder(t *testing.T) {
	w := newWorld(t)
	holder, other := w.agent("dc1", nil), w.agent("dc2", nil)
	if did := holder.Step(context.Background()); len(did) != 1 || did[0] != commandpb.CommandType_LEASE_HEARTBEAT {
		t.Fatalf("holder did %v", did)
	}
	var hb failover.Heartbeat
	w.m.View(func(_ *leader.State, s *failover.State) { hb = s.LastHeartbeat() })
	if hb.Holder != "dc1" || hb.Epoch != 1 {
		t.Fatalf("heartbeat %+v", hb)
	}
	if did := holder.Step(context.Background()); len(did) != 0 {
		t.Fatalf("second heartbeat within the interval: %v", did)
	}
	w.advance(5 * time.Second)
	if did := holder.Step(context.Background()); len(did) != 1 {
		t.Fatalf("no heartbeat after the interval: %v", did)
	}
	if did := other.Step(context.Background()); len(did) != 0 {
		t.Fatalf("non-holder did %v", did)
	}
}

func TestDRTakeoverAfterSilenceThenFinality(t *testing.T) {
	w := newWorld(t)
	w.operator(func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_SetDrPolicy{SetDrPolicy: &failoverpb.SetDRPolicy{Region: "dc2", SilenceSeconds: 60, Enabled: true}}
	})
	holder := w.agent("dc1", nil)
	fin := newFakeFinality()
	dr := w.agent("dc2", fin)
	holder.Step(context.Background())
	w.advance(30 * time.Second)
	if did := dr.Step(context.Background()); len(did) != 0 {
		t.Fatalf("DR before the silence: %v", did)
	}
	// dc1 goes quiet; dc2 takes over once the silence has passed.
	w.advance(31 * time.Second)
	if did := dr.Step(context.Background()); len(did) != 1 || did[0] != commandpb.CommandType_DR_TAKEOVER {
		t.Fatalf("DR after the silence: %v", did)
	}
	if l := w.lease(); l.State != leader.LeaseFenced {
		t.Fatalf("lease %+v", l)
	}
	// The next step starts the finality wait for the DR handover.
	dr.Step(context.Background())
	id := recv(t, fin.started)
	if dr.Waiting() != id {
		t.Fatalf("waiting for %d, started %d", dr.Waiting(), id)
	}
	dr.Step(context.Background()) // no second wait for the same handover
	select {
	case x := <-fin.started:
		t.Fatalf("second wait started for %d", x)
	default:
	}
	fin.evidence <- &failoverpb.ConfirmFinality{}
	w.awaitApplied(commandpb.CommandType_CONFIRM_FINALITY)
	if l := w.lease(); l.State != leader.LeaseActive || l.Holder != "dc2" || l.Epoch != 2 {
		t.Fatalf("lease after finality %+v", l)
	}
}

func TestFinalityWaitStopsWhenHandoverRedirected(t *testing.T) {
	w := newWorld(t)
	fin := newFakeFinality()
	a := w.agent("dc2", fin)
	w.operator(request("dc2")) // co-signed: fenced at once
	a.Step(context.Background())
	first := recv(t, fin.started)
	w.operator(request("dc3")) // redirected while dc2 waits
	a.Step(context.Background())
	if got := recv(t, fin.stopped); got != first {
		t.Fatalf("stopped %d, want %d", got, first)
	}
	if a.Waiting() != 0 {
		t.Fatalf("still waiting for %d", a.Waiting())
	}
}

func TestFinalityErrorIsRetriedAfterInterval(t *testing.T) {
	w := newWorld(t)
	fin := newFakeFinality()
	a := w.agent("dc2", fin)
	w.operator(request("dc2"))
	a.Step(context.Background())
	id := recv(t, fin.started)
	fin.err <- errors.New("no quorum")
	// The wait ends; wait for that on the agent's state with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for a.Waiting() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("wait did not end")
		}
		runtimeYield()
	}
	a.Step(context.Background())
	select {
	case x := <-fin.started:
		t.Fatalf("retried %d before the retry interval", x)
	default:
	}
	w.advance(31 * time.Second)
	a.Step(context.Background())
	if got := recv(t, fin.started); got != id {
		t.Fatalf("retry for %d, want %d", got, id)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	w := newWorld(t)
	a := w.agent("dc1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	tick := make(chan time.Time)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, tick) }()
	tick <- time.Time{}
	w.awaitApplied(commandpb.CommandType_LEASE_HEARTBEAT)
	cancel()
	if err := recv(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func runtimeYield() { runtime.Gosched() }
