package privval

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/privval/secretconn"
	"github.com/regent-signer/regent/signer/privval/wire"
)

// Signer dials a CometBFT node's priv_validator_laddr and answers its
// privval requests through a Backend. Create it with New and drive it with
// Run.
type Signer struct {
	cfg     Config
	network string
	address string
	h       *handler
	log     *slog.Logger

	mu       sync.Mutex
	status   Status
	sessions int
}

// Status is a snapshot of a Signer's connection.
type Status struct {
	// Connected is true while an authenticated connection is open.
	Connected bool
	// NodeKey is the node's SecretConnection key on the current or last
	// connection (tcp only).
	NodeKey ed25519.PublicKey
	// Since is when the current connection was established, or when the
	// last one ended.
	Since time.Time
	// LastError is why the last connection attempt or session ended.
	LastError error
}

// New validates cfg and returns a Signer. It does not connect.
func New(cfg Config, backend Backend) (*Signer, error) {
	if backend == nil {
		return nil, fmt.Errorf("%w: a Backend is required", ErrConfig)
	}
	if cfg.Caller == "" {
		cfg.Caller = "cometbft-" + cfg.ChainID
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = wire.DefaultMaxMessageSize
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	network, address, _ := ParseAddress(cfg.Address)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.AllowedNodeKeys = append([]ed25519.PublicKey(nil), cfg.AllowedNodeKeys...)
	s := &Signer{cfg: cfg, network: network, address: address, log: cfg.Logger}
	s.h = &handler{cfg: &s.cfg, backend: backend, caller: pipeline.Caller{Name: cfg.Caller}, log: cfg.Logger}
	return s, nil
}

// Status returns the current connection status.
func (s *Signer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.NodeKey = append(ed25519.PublicKey(nil), st.NodeKey...)
	return st
}

// Sessions returns how many authenticated connections this Signer has
// had so far.
func (s *Signer) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

func (s *Signer) setStatus(connected bool, nodeKey ed25519.PublicKey, err error) {
	s.mu.Lock()
	s.status = Status{Connected: connected, NodeKey: nodeKey, Since: time.Now(), LastError: err}
	if connected {
		s.sessions++
	}
	s.mu.Unlock()
	s.cfg.Metrics.setConnected(s.cfg.ChainID, connected)
}

// Run connects to the node and serves it until ctx is done, reconnecting
// with jittered exponential backoff after every failure and waiting
// YieldFor after a yield. It returns nil when ctx is done, or an error
// wrapping ErrConfig if the backend names the connection key as the
// validator key (a misconfiguration no retry can fix).
func (s *Signer) Run(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	pub, err := s.h.backend.PubKey(pctx, s.cfg.ChainID)
	cancel()
	if err == nil && s.cfg.ConnKey != nil && pub.Equal(s.cfg.ConnKey.Public()) {
		return fmt.Errorf("%w: the connection key is the validator key for %s; use a separate key", ErrConfig, s.cfg.ChainID)
	}
	backoff := s.cfg.BackoffMin
	for {
		if !s.standBy(ctx) {
			s.setStatus(false, nil, ctx.Err())
			return nil
		}
		served, err := s.session(ctx)
		if ctx.Err() != nil {
			s.setStatus(false, nil, ctx.Err())
			return nil
		}
		wait := backoff
		switch {
		case errors.Is(err, errYield):
			wait = s.cfg.YieldFor
			backoff = s.cfg.BackoffMin
		case errors.Is(err, errReleased):
			// standBy waits for Ready; dial as soon as it allows.
			backoff = s.cfg.BackoffMin
			wait = backoff
		case served:
			backoff = s.cfg.BackoffMin
			wait = backoff
		default:
			backoff = min(2*backoff, s.cfg.BackoffMax)
		}
		// Jitter in [wait/2, wait] keeps several regions from dialling in
		// lockstep.
		wait = wait/2 + rand.N(wait/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			s.setStatus(false, nil, ctx.Err())
			return nil
		case <-t.C:
		}
	}
}

// standBy returns at once when Config.Ready is unset or allows signing;
// otherwise it waits, without dialling, polling Ready every ReadyPoll, until
// Ready allows (true) or ctx ends (false).
func (s *Signer) standBy(ctx context.Context) bool {
	if s.cfg.Ready == nil {
		return true
	}
	err := s.cfg.Ready()
	if err == nil {
		return true
	}
	s.log.Info("privval: this region cannot sign now; not dialling the node", "chain_id", s.cfg.ChainID, "address", s.cfg.Address, "reason", err)
	s.setStatus(false, nil, fmt.Errorf("%w: %w", ErrStandby, err))
	t := time.NewTicker(s.cfg.ReadyPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		if s.cfg.Ready() == nil {
			s.log.Info("privval: this region can sign; dialling the node", "chain_id", s.cfg.ChainID, "address", s.cfg.Address)
			return true
		}
	}
}

// session makes one connection and serves it until it fails. served
// reports whether the node was authenticated (so the backoff resets).
func (s *Signer) session(ctx context.Context) (served bool, err error) {
	d := net.Dialer{Timeout: s.cfg.DialTimeout, KeepAlive: 15 * time.Second}
	raw, err := d.DialContext(ctx, s.network, s.address)
	if err != nil {
		s.cfg.Metrics.connection(s.cfg.ChainID, ConnDialFailed)
		s.log.Debug("privval: dial failed", "chain_id", s.cfg.ChainID, "address", s.cfg.Address, "err", err)
		s.setStatus(false, nil, err)
		return false, err
	}
	// Closing the connection is how a blocked read learns ctx is done.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	defer raw.Close()

	conn := net.Conn(raw)
	var nodeKey ed25519.PublicKey
	if s.network == "tcp" {
		_ = raw.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		sc, err := secretconn.Handshake(raw, s.cfg.ConnKey)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// The node never took this connection from its accept
				// queue: it is served by another signer. Normal for a
				// signer in reserve.
				s.cfg.Metrics.connection(s.cfg.ChainID, ConnNotTaken)
				s.log.Debug("privval: the node did not take this connection; dialling again", "chain_id", s.cfg.ChainID, "address", s.cfg.Address)
			} else {
				s.cfg.Metrics.connection(s.cfg.ChainID, ConnHandshake)
				s.log.Warn("privval: handshake failed", "chain_id", s.cfg.ChainID, "address", s.cfg.Address, "err", err)
			}
			s.setStatus(false, nil, err)
			return false, err
		}
		nodeKey = sc.RemotePubKey()
		if !s.cfg.allowsNode(nodeKey) {
			err := fmt.Errorf("%w: node at %s presented %x", ErrNodeNotAllowed, s.cfg.Address, []byte(nodeKey))
			s.cfg.Metrics.connection(s.cfg.ChainID, ConnNodeNotAllowed)
			s.log.Error("privval: refusing to serve a node whose key is not allowed", "chain_id", s.cfg.ChainID,
				"address", s.cfg.Address, "node_key", hex.EncodeToString(nodeKey))
			s.setStatus(false, nodeKey, err)
			return false, err
		}
		_ = raw.SetDeadline(time.Time{})
		conn = sc
	}
	s.cfg.Metrics.connection(s.cfg.ChainID, ConnConnected)
	s.log.Info("privval: connected", "chain_id", s.cfg.ChainID, "address", s.cfg.Address, "node_key", hex.EncodeToString(nodeKey))
	s.setStatus(true, nodeKey, nil)
	err = s.serve(ctx, conn)
	result := ConnClosed
	if errors.Is(err, errYield) {
		result = ConnYielded
		s.log.Warn("privval: this region cannot sign now; yielding the connection so another signer can serve the node",
			"chain_id", s.cfg.ChainID, "refusals", s.cfg.YieldAfter, "yield_for", s.cfg.YieldFor)
	} else if errors.Is(err, errReleased) {
		result = ConnReleased
		s.log.Warn("privval: this region can no longer sign; released the connection so the node takes the lease holder's",
			"chain_id", s.cfg.ChainID, "address", s.cfg.Address, "err", err)
	} else if ctx.Err() == nil {
		s.log.Warn("privval: connection ended", "chain_id", s.cfg.ChainID, "address", s.cfg.Address, "err", err)
	}
	s.cfg.Metrics.connection(s.cfg.ChainID, result)
	s.setStatus(false, nodeKey, err)
	return true, err
}

// serve answers requests one at a time until the connection fails or the
// signer yields. A frame that cannot be read ends the connection; a frame
// that reads but does not decode is answered with the empty message.
//
// With Config.Ready set, a watcher closes the connection once Ready
// refuses, and a sign request is left unanswered (errReleased) when Ready
// refuses before it is handled, or when the backend could not sign it and
// Ready now refuses: the node then retries it on the lease holder's
// connection instead of taking a final refusal.
func (s *Signer) serve(ctx context.Context, conn net.Conn) error {
	r := wire.NewReader(conn)
	cannot := 0
	watch := s.watchReady(conn)
	defer watch.stop()
	for {
		if s.cfg.IdleTimeout > 0 {
			_ = conn.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		}
		frame, err := wire.ReadFrame(r, s.cfg.MaxMessageSize)
		if err != nil {
			if why := watch.reason(); why != nil {
				return fmt.Errorf("%w: %w", errReleased, why)
			}
			return fmt.Errorf("reading request: %w", err)
		}
		start := time.Now()
		var res result
		msg, err := wire.DecodeMessage(frame)
		switch {
		case err != nil:
			s.log.Warn("privval: undecodable request; answering with an empty message", "chain_id", s.cfg.ChainID, "err", err)
			res = result{resp: wire.Message{}, typ: ReqUnknown, outcome: OutcomeUnknownRequest}
		case isSignRequest(msg):
			if why := s.notReady(); why != nil {
				return s.release(msg, start, why)
			}
			rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
			res = s.h.handle(rctx, msg)
			cancel()
			if cannotSignNow(res.outcome) {
				if why := s.notReady(); why != nil {
					return s.release(msg, start, why)
				}
			}
		default:
			rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
			res = s.h.handle(rctx, msg)
			cancel()
		}
		if ctx.Err() != nil {
			// Shutting down: leave the request unanswered. The node sees a
			// transport error and retries on another signer's connection,
			// where a refusal would have been final for this round.
			return ctx.Err()
		}
		// Counted before the answer leaves, so that whoever sees the answer
		// sees the count.
		s.cfg.Metrics.request(s.cfg.ChainID, res.typ, res.outcome, time.Since(start))
		if res.reused {
			s.cfg.Metrics.timestampReused(s.cfg.ChainID)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if err := wire.WriteMessage(conn, res.resp); err != nil {
			if why := watch.reason(); why != nil {
				return fmt.Errorf("%w: %w", errReleased, why)
			}
			return fmt.Errorf("writing response: %w", err)
		}
		_ = conn.SetWriteDeadline(time.Time{})
		switch {
		case res.typ != ReqSignVote && res.typ != ReqSignProposal:
		case cannotSignNow(res.outcome):
			cannot++
		default:
			cannot = 0
		}
		if s.cfg.YieldAfter > 0 && cannot >= s.cfg.YieldAfter {
			return errYield
		}
	}
}

// isSignRequest reports whether m asks for a signature.
func isSignRequest(m wire.Message) bool {
	return m.SignVoteRequest != nil || m.SignProposalRequest != nil || m.SignBytesRequest != nil
}

// notReady returns why Config.Ready refuses, or nil (also when unset).
func (s *Signer) notReady() error {
	if s.cfg.Ready == nil {
		return nil
	}
	return s.cfg.Ready()
}

// release ends the session without answering m, counting it as released.
func (s *Signer) release(m wire.Message, start time.Time, why error) error {
	typ := ReqSignBytes
	switch {
	case m.SignVoteRequest != nil:
		typ = ReqSignVote
	case m.SignProposalRequest != nil:
		typ = ReqSignProposal
	}
	s.cfg.Metrics.request(s.cfg.ChainID, typ, OutcomeReleased, time.Since(start))
	s.log.Info("privval: leaving the request unanswered for the lease holder", "chain_id", s.cfg.ChainID, "request", typ, "reason", why)
	return fmt.Errorf("%w: %w", errReleased, why)
}

// readyWatch closes a connection once Config.Ready refuses.
type readyWatch struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	why  error
}

// watchReady starts a readyWatch on conn; with Ready unset it watches
// nothing.
func (s *Signer) watchReady(conn net.Conn) *readyWatch {
	w := &readyWatch{done: make(chan struct{})}
	if s.cfg.Ready == nil {
		return w
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(s.cfg.ReadyPoll)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-t.C:
			}
			if err := s.cfg.Ready(); err != nil {
				w.mu.Lock()
				w.why = err
				w.mu.Unlock()
				_ = conn.Close()
				return
			}
		}
	}()
	return w
}

// reason is why the watcher closed the connection, or nil.
func (w *readyWatch) reason() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.why
}

func (w *readyWatch) stop() {
	close(w.done)
	w.wg.Wait()
}
