package privval

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/privval/wire"
)

// readySwitch is a Config.Ready whose answer the test sets.
type readySwitch struct {
	mu  sync.Mutex
	err error
}

var errNotHolder = errors.New("test: not the lease holder")

func (r *readySwitch) set(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

func (r *readySwitch) ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// noConnection checks that nothing connects to the node for a while: the
// signer stands by. (Absence can only be observed over a bounded wait.)
func noConnection(t *testing.T, n *fakeNode, within time.Duration) {
	t.Helper()
	_ = n.ln.(deadliner).SetDeadline(time.Now().Add(within))
	c, err := n.ln.Accept()
	if err == nil {
		c.Close()
		t.Fatal("a standing-by signer dialled the node")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("accept: %v", err)
	}
}

// While Ready refuses, the signer does not dial (so a standby region never
// becomes the node's one connection); once it allows, the signer dials and
// serves.
func TestStandbyDoesNotDial(t *testing.T) {
	e := newEnv(t, true, allTypes())
	node := newFakeNode(t, "tcp")
	rs := &readySwitch{err: errNotHolder}
	cfg := testConfig(node.addr(), newConnKey(t))
	cfg.Ready, cfg.ReadyPoll = rs.ready, 10*time.Millisecond
	cfg.Metrics = newMetrics(t)
	s, err := New(cfg, e.backend())
	if err != nil {
		t.Fatal(err)
	}
	runSigner(t, s)
	eventually(t, "the signer to report it stands by", func() bool {
		st := s.Status()
		return errors.Is(st.LastError, ErrStandby) && errors.Is(st.LastError, errNotHolder)
	})
	noConnection(t, node, 300*time.Millisecond)
	if n := cfg.Metrics.Connections(testChain, ConnDialFailed) + cfg.Metrics.Connections(testChain, ConnConnected); n != 0 {
		t.Fatalf("%v connection attempts while standing by", n)
	}
	rs.set(nil)
	c := node.accept()
	if r := c.call(voteReq(vote(wire.TypePrevote, 5, 0, 7, ts0()))).SignedVoteResponse; r == nil || r.Error != nil {
		t.Fatalf("vote once ready: %+v", r)
	}
}

// A connected signer whose Ready starts refusing closes the connection by
// itself, counts it as released, and stands by until Ready allows again.
func TestLosingReadyReleasesTheConnection(t *testing.T) {
	e := newEnv(t, true, allTypes())
	node := newFakeNode(t, "tcp")
	rs := &readySwitch{}
	cfg := testConfig(node.addr(), newConnKey(t))
	cfg.Ready, cfg.ReadyPoll = rs.ready, 10*time.Millisecond
	cfg.Metrics = newMetrics(t)
	s, err := New(cfg, e.backend())
	if err != nil {
		t.Fatal(err)
	}
	runSigner(t, s)
	c := node.accept()
	if r := c.call(voteReq(vote(wire.TypePrevote, 5, 0, 7, ts0()))).SignedVoteResponse; r == nil || r.Error != nil {
		t.Fatalf("vote: %+v", r)
	}
	rs.set(errNotHolder)
	// The node's next read sees the connection closed, with no request sent.
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := wire.ReadMessage(c.r, 1<<20); err == nil {
		t.Fatal("the signer sent something unasked")
	} else {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the connection stayed open after Ready started refusing")
		}
	}
	eventually(t, "the release to be counted", func() bool { return cfg.Metrics.Connections(testChain, ConnReleased) == 1 })
	eventually(t, "the signer to stand by", func() bool { return errors.Is(s.Status().LastError, ErrStandby) })
	noConnection(t, node, 300*time.Millisecond)
	rs.set(nil)
	c2 := node.accept()
	if c2.call(wire.Message{PingRequest: &wire.PingRequest{}}).PingResponse == nil {
		t.Fatal("no pong after Ready allowed again")
	}
}

// flipBackend makes Ready refuse just before the backend is asked, as when
// the lease moves while a request is in hand.
type flipBackend struct {
	Backend
	rs *readySwitch
}

func (b flipBackend) SignComet(ctx context.Context, c pipeline.Caller, req pipeline.CometRequest) (pipeline.CometResult, error) {
	b.rs.set(errNotHolder)
	return b.Backend.SignComet(ctx, c, req)
}

// A sign request that finds this region unable to sign is left unanswered
// — so the node retries it on the lease holder's connection — exactly when
// Ready refuses; while Ready allows, a backend refusal is answered as
// before. Either way nothing is recorded.
func TestSignRequestsWhenTheRegionCannotSign(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the backend and the Ready switch, given the env.
		holding   bool
		setup     func(e *testEnv, rs *readySwitch) Backend
		afterDial func(rs *readySwitch)
		answered  bool
		code      int32
	}{
		{
			name:      "ready refuses before the request is handled",
			holding:   true,
			setup:     func(e *testEnv, _ *readySwitch) Backend { return e.backend() },
			afterDial: func(rs *readySwitch) { rs.set(errNotHolder) },
			answered:  false,
		},
		{
			name:      "the backend cannot sign and ready now refuses",
			holding:   false,
			setup:     func(e *testEnv, rs *readySwitch) Backend { return flipBackend{Backend: e.backend(), rs: rs} },
			afterDial: func(*readySwitch) {},
			answered:  false,
		},
		{
			name:      "the backend cannot sign while ready allows",
			holding:   false,
			setup:     func(e *testEnv, _ *readySwitch) Backend { return e.backend() },
			afterDial: func(*readySwitch) {},
			answered:  true,
			code:      CodeNotLeaseHolder,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.holding, allTypes())
			node := newFakeNode(t, "tcp")
			rs := &readySwitch{}
			cfg := testConfig(node.addr(), newConnKey(t))
			// The watcher must not close the connection first: this
			// checks the request path.
			cfg.Ready, cfg.ReadyPoll = rs.ready, time.Hour
			cfg.YieldAfter = 0
			cfg.Metrics = newMetrics(t)
			s, err := New(cfg, tc.setup(e, rs))
			if err != nil {
				t.Fatal(err)
			}
			runSigner(t, s)
			c := node.accept()
			before := e.snapshot()
			tc.afterDial(rs)
			resp, err := c.tryCall(voteReq(vote(wire.TypePrevote, 5, 0, 7, ts0())))
			if !tc.answered {
				if err == nil {
					t.Fatalf("answered %+v; want the request left unanswered", resp)
				}
				eventually(t, "the release to be counted", func() bool {
					return cfg.Metrics.Requests(testChain, ReqSignVote, OutcomeReleased) == 1 &&
						cfg.Metrics.Connections(testChain, ConnReleased) == 1
				})
			} else {
				if err != nil {
					t.Fatalf("not answered: %v", err)
				}
				if r := resp.SignedVoteResponse; r == nil || !isCode(r.Error, tc.code) {
					t.Fatalf("answer %+v, want code %d", resp, tc.code)
				}
				if c.call(wire.Message{PingRequest: &wire.PingRequest{}}).PingResponse == nil {
					t.Fatal("the connection did not stay after an answered refusal")
				}
			}
			if e.snapshot() != before {
				t.Fatal("a request that was not signed changed the state")
			}
		})
	}
}
