package privval

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/privval/wire"
)

// The signer dials the node, authenticates it, and answers requests in
// order, over both transports CometBFT offers.
func TestSignerServesANode(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			e := newEnv(t, true, allTypes())
			node := newFakeNode(t, network)
			cfg := testConfig(node.addr(), newConnKey(t))
			if network == "unix" {
				cfg.ConnKey, cfg.AcceptAnyNodeKey = nil, false
			} else {
				cfg.AcceptAnyNodeKey, cfg.AllowedNodeKeys = false, []ed25519.PublicKey{node.pub()}
			}
			cfg.Metrics = newMetrics(t)
			s, err := New(cfg, e.backend())
			if err != nil {
				t.Fatal(err)
			}
			runSigner(t, s)
			c := node.accept()

			pk := c.call(wire.Message{PubKeyRequest: &wire.PubKeyRequest{ChainID: testChain}})
			if pk.PubKeyResponse == nil || !bytes.Equal(pk.PubKeyResponse.Ed25519, e.pub) {
				t.Fatalf("pub key: %+v", pk)
			}
			for h := int64(1); h <= 3; h++ {
				p := c.call(propReq(proposal(h, 0, -1, 7, ts0()))).SignedProposalResponse
				pv := c.call(voteReq(vote(wire.TypePrevote, h, 0, 7, ts0()))).SignedVoteResponse
				pc := c.call(voteReq(vote(wire.TypePrecommit, h, 0, 7, ts0()))).SignedVoteResponse
				if p == nil || p.Error != nil || pv == nil || pv.Error != nil || pc == nil || pc.Error != nil {
					t.Fatalf("height %d: %+v %+v %+v", h, p, pv, pc)
				}
				if !ed25519.Verify(e.pub, voteSignBytes(testChain, &pc.Vote), pc.Vote.Signature) ||
					!ed25519.Verify(e.pub, voteExtensionSignBytes(testChain, &pc.Vote), pc.Vote.ExtensionSignature) {
					t.Fatalf("height %d: precommit signatures do not verify", h)
				}
			}
			if c.call(wire.Message{PingRequest: &wire.PingRequest{}}).PingResponse == nil {
				t.Fatal("no pong")
			}
			st := s.Status()
			if !st.Connected || (network == "tcp" && !st.NodeKey.Equal(node.pub())) {
				t.Fatalf("status %+v", st)
			}
			m := cfg.Metrics
			if m.Requests(testChain, ReqSignVote, OutcomeOK) != 6 || m.Requests(testChain, ReqSignProposal, OutcomeOK) != 3 ||
				m.Requests(testChain, ReqPing, OutcomeOK) != 1 || m.Connections(testChain, ConnConnected) != 1 {
				t.Fatal("metrics did not count the requests")
			}
		})
	}
}

// A refusal is an answer, not a disconnection: after any number of
// refusals the same connection keeps serving.
func TestRefusalsKeepTheConnection(t *testing.T) {
	e := newEnv(t, true, allTypes())
	node := newFakeNode(t, "tcp")
	cfg := testConfig(node.addr(), newConnKey(t))
	cfg.YieldAfter, cfg.YieldFor = 1, time.Hour // slashing refusals must not yield
	cfg.Metrics = newMetrics(t)
	s, err := New(cfg, e.backend())
	if err != nil {
		t.Fatal(err)
	}
	runSigner(t, s)
	c := node.accept()
	if r := c.call(voteReq(vote(1, 5, 0, 7, ts0()))).SignedVoteResponse; r == nil || r.Error != nil {
		t.Fatalf("first vote: %+v", r)
	}
	for i := 0; i < 5; i++ {
		r := c.call(voteReq(vote(1, 5, 0, 8, ts0()))).SignedVoteResponse
		if r == nil || !isCode(r.Error, CodeSlashable) {
			t.Fatalf("double sign %d: %+v", i, r)
		}
		if r := c.call(wire.Message{SignVoteRequest: &wire.SignVoteRequest{Vote: vote(1, 6, 0, 7, ts0()), ChainID: "other"}}).SignedVoteResponse; r == nil || !isCode(r.Error, CodeWrongChain) {
			t.Fatalf("wrong chain %d: %+v", i, r)
		}
	}
	if r := c.call(voteReq(vote(1, 6, 0, 7, ts0()))).SignedVoteResponse; r == nil || r.Error != nil {
		t.Fatalf("vote after refusals: %+v", r)
	}
	if s.Sessions() != 1 || cfg.Metrics.Requests(testChain, ReqSignVote, OutcomeSlashable) != 5 {
		t.Fatalf("sessions %d, slashable %v", s.Sessions(), cfg.Metrics.Requests(testChain, ReqSignVote, OutcomeSlashable))
	}
}

// A region that cannot sign gives the node back after YieldAfter refusals
// and comes back after YieldFor.
func TestYieldWhenThisRegionCannotSign(t *testing.T) {
	e := newEnv(t, false, allTypes())
	node := newFakeNode(t, "tcp")
	cfg := testConfig(node.addr(), newConnKey(t))
	cfg.YieldAfter, cfg.YieldFor = 2, 200*time.Millisecond
	cfg.Metrics = newMetrics(t)
	s, err := New(cfg, e.backend())
	if err != nil {
		t.Fatal(err)
	}
	runSigner(t, s)
	c := node.accept()
	// Pings and public keys do not count; a refusal answered is still an
	// answer.
	for i := 0; i < 2; i++ {
		c.call(wire.Message{PingRequest: &wire.PingRequest{}})
		c.call(wire.Message{PubKeyRequest: &wire.PubKeyRequest{ChainID: testChain}})
		r := c.call(voteReq(vote(1, 5, int32(i), 7, ts0()))).SignedVoteResponse
		if r == nil || !isCode(r.Error, CodeNotLeaseHolder) {
			t.Fatalf("refusal %d: %+v", i, r)
		}
	}
	// The signer has closed the connection.
	if _, err := c.tryCall(wire.Message{PingRequest: &wire.PingRequest{}}); err == nil {
		t.Fatal("the connection is still served after YieldAfter refusals")
	}
	if cfg.Metrics.Connections(testChain, ConnYielded) != 1 {
		t.Fatal("yield not counted")
	}
	start := time.Now()
	c2 := node.accept()
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("redialled after %v, before YieldFor/2", waited)
	}
	if c2.call(wire.Message{PingRequest: &wire.PingRequest{}}).PingResponse == nil {
		t.Fatal("no pong after coming back")
	}
}

// A node whose key is not allowlisted is never served: the signer closes
// the connection after the handshake, before reading any request.
func TestUnlistedNodeIsRefused(t *testing.T) {
	e := newEnv(t, true, allTypes())
	node := newFakeNode(t, "tcp")
	cfg := testConfig(node.addr(), newConnKey(t))
	cfg.AcceptAnyNodeKey, cfg.AllowedNodeKeys = false, []ed25519.PublicKey{newConnKey(t).Public().(ed25519.PublicKey)}
	cfg.Metrics = newMetrics(t)
	s, err := New(cfg, e.backend())
	if err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()
	runSigner(t, s)
	c := node.accept()
	if _, err := c.tryCall(voteReq(vote(1, 5, 0, 7, ts0()))); err == nil {
		t.Fatal("an unlisted node got an answer")
	}
	eventually(t, "refusal counted", func() bool { return cfg.Metrics.Connections(testChain, ConnNodeNotAllowed) >= 1 })
	if st := s.Status(); !errors.Is(st.LastError, ErrNodeNotAllowed) || st.Connected || !st.NodeKey.Equal(node.pub()) || s.Sessions() != 0 {
		t.Fatalf("status %+v sessions %d", st, s.Sessions())
	}
	if e.snapshot() != before {
		t.Fatal("state changed")
	}
}

// When the node drops the connection (restart, ping timeout) the signer
// comes back by itself.
func TestReconnectsAfterTheNodeDrops(t *testing.T) {
	e := newEnv(t, true, allTypes())
	node := newFakeNode(t, "tcp")
	s, err := New(testConfig(node.addr(), newConnKey(t)), e.backend())
	if err != nil {
		t.Fatal(err)
	}
	runSigner(t, s)
	c := node.accept()
	c.call(voteReq(vote(1, 5, 0, 7, ts0())))
	c.c.Close()
	c2 := node.accept()
	if r := c2.call(voteReq(vote(2, 5, 0, 7, ts0()))).SignedVoteResponse; r == nil || r.Error != nil {
		t.Fatalf("after reconnect: %+v", r)
	}
	eventually(t, "second session", func() bool { return s.Sessions() == 2 })
}

// A frame that arrives whole but does not decode gets the empty message and
// the connection stays; a frame over the size limit ends the connection.
func TestBadFrames(t *testing.T) {
	e := newEnv(t, true, allTypes())
	node := newFakeNode(t, "tcp")
	cfg := testConfig(node.addr(), newConnKey(t))
	cfg.MaxMessageSize = 4096
	cfg.Metrics = newMetrics(t)
	s, err := New(cfg, e.backend())
	if err != nil {
		t.Fatal(err)
	}
	runSigner(t, s)
	c := node.accept()
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, garbage := range [][]byte{{0xff, 0xff}, {0x5a, 0x00}, {0x3a, 0x00, 0x42, 0x00}} {
		if _, err := c.c.Write(protowire.AppendBytes(nil, garbage)); err != nil {
			t.Fatal(err)
		}
		resp, err := wire.ReadMessage(c.r, 1<<20)
		if err != nil || resp.Kind() != "empty" {
			t.Fatalf("answer to %x: %+v, %v", garbage, resp, err)
		}
	}
	if c.call(wire.Message{PingRequest: &wire.PingRequest{}}).PingResponse == nil {
		t.Fatal("connection not usable after undecodable frames")
	}
	if cfg.Metrics.Requests(testChain, ReqUnknown, OutcomeUnknownRequest) != 3 {
		t.Fatal("undecodable frames not counted")
	}
	// Declare 5000 bytes against a 4096-byte limit.
	if _, err := c.c.Write(protowire.AppendVarint(nil, 5000)); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.ReadMessage(c.r, 1<<20); !errors.Is(err, io.EOF) {
		t.Fatalf("after an oversize frame: %v, want the connection closed", err)
	}
}

// The signer refuses to run when the validator key is its connection key.
func TestRunRefusesTheValidatorKeyAsConnectionKey(t *testing.T) {
	e := newEnv(t, true, allTypes())
	s, err := New(testConfig("tcp://127.0.0.1:1", ed25519.NewKeyFromSeed(validatorSeed())), e.backend())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, ErrConfig) {
		t.Fatalf("Run = %v, want ErrConfig", err)
	}
}

// Run returns promptly when its context ends, even mid-session.
func TestRunStopsWithItsContext(t *testing.T) {
	e := newEnv(t, true, allTypes())
	node := newFakeNode(t, "tcp")
	s, err := New(testConfig(node.addr(), newConnKey(t)), e.backend())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	c := node.accept()
	c.call(wire.Message{PingRequest: &wire.PingRequest{}})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if s.Status().Connected {
		t.Fatal("still reported connected")
	}
}

// blockingBackend holds every SignComet until its context ends.
type blockingBackend struct {
	Backend
	entered chan struct{}
}

func (b blockingBackend) SignComet(ctx context.Context, _ pipeline.Caller, _ pipeline.CometRequest) (pipeline.CometResult, error) {
	close(b.entered)
	<-ctx.Done()
	return pipeline.CometResult{}, fmt.Errorf("%w: %w", pipeline.ErrCannotSign, ctx.Err())
}

// A signer that stops while a request is in flight leaves it unanswered:
// the node sees a transport error and retries on another connection, where
// a refusal would have been final for the round.
func TestStoppingSignerLeavesTheRequestUnanswered(t *testing.T) {
	e := newEnv(t, true, allTypes())
	node := newFakeNode(t, "tcp")
	b := blockingBackend{Backend: e.backend(), entered: make(chan struct{})}
	s, err := New(testConfig(node.addr(), newConnKey(t)), b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	c := node.accept()
	answered := make(chan error, 1)
	go func() { _, err := c.tryCall(voteReq(vote(1, 5, 0, 7, ts0()))); answered <- err }()
	<-b.entered
	cancel()
	if err := <-answered; err == nil {
		t.Fatal("a stopping signer answered the in-flight request")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A node that keeps the signer's connection in its accept queue (it is
// served by another signer) is not a handshake failure: it is counted as
// not_taken, and the signer keeps dialling.
func TestQueuedConnectionIsNotAHandshakeFailure(t *testing.T) {
	e := newEnv(t, true, allTypes())
	node := newFakeNode(t, "tcp") // never accepts until told to
	cfg := testConfig(node.addr(), newConnKey(t))
	cfg.HandshakeTimeout = 100 * time.Millisecond
	cfg.Metrics = newMetrics(t)
	s, err := New(cfg, e.backend())
	if err != nil {
		t.Fatal(err)
	}
	runSigner(t, s)
	eventually(t, "two queue timeouts", func() bool { return cfg.Metrics.Connections(testChain, ConnNotTaken) >= 2 })
	if cfg.Metrics.Connections(testChain, ConnHandshake) != 0 {
		t.Fatal("a queued connection was counted as a handshake failure")
	}
}
