package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/regent-signer/regent/raft/pki"
)

// preambleAccepted is the byte a server writes after a successful handshake.
const preambleAccepted byte = 0x01

// Defaults for zero-valued Config fields.
const (
	DefaultMaxPool              = 3
	DefaultTimeout              = 10 * time.Second
	DefaultHandshakeTimeout     = 5 * time.Second
	DefaultMaxPendingHandshakes = 64
)

// maxAcceptBackoff caps the retry delay after a transient Accept error.
const maxAcceptBackoff = time.Second

// Config configures a stream layer and the raft.NetworkTransport New builds
// on it. Zero values take the documented defaults.
type Config struct {
	// BindAddr is the TCP host:port to listen on, e.g. "0.0.0.0:7000" or
	// "127.0.0.1:0". Required.
	BindAddr string
	// AdvertiseAddr is the host:port peers dial to reach this node, e.g.
	// "dc1:7000". Its host must be in this node's certificate SANs (peers
	// verify it). Empty means the bound address, which must then not be
	// unspecified (0.0.0.0 or ::).
	AdvertiseAddr string
	// TLS is this node's material; its certificate must have role node.
	// Required.
	TLS *pki.Material
	// MaxPool is how many idle connections raft keeps per peer. Zero means
	// DefaultMaxPool.
	MaxPool int
	// Timeout is raft's I/O deadline per RPC, also used by raft as the dial
	// timeout (handshake included). Zero means DefaultTimeout.
	Timeout time.Duration
	// HandshakeTimeout bounds each inbound handshake. Zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxPendingHandshakes bounds concurrent inbound handshakes. Zero means
	// DefaultMaxPendingHandshakes.
	MaxPendingHandshakes int
	// Logger receives raft.NetworkTransport's own logs. Nil means raft's
	// default (stderr, info level).
	Logger hclog.Logger
	// Log receives this package's events (handshake failures). Nil discards
	// them.
	Log *slog.Logger
	// Metrics counts handshake failures. Nil means a private, unregistered
	// Metrics (use NewMetrics with your registry to export the counter).
	Metrics *Metrics
}

// checked is a validated Config with defaults applied.
type checked struct {
	Config
	advertise net.Addr // nil: use the listener's address
}

func (c Config) check() (checked, error) {
	out := checked{Config: c}
	if c.TLS == nil {
		return checked{}, fmt.Errorf("%w: no TLS material", ErrBadConfig)
	}
	if r := c.TLS.Role(); r != pki.RoleNode {
		return checked{}, fmt.Errorf("%w: %w: TLS material is %s/%s, a Raft transport needs role node",
			ErrBadConfig, pki.ErrWrongRole, r, c.TLS.Name())
	}
	if c.BindAddr == "" {
		return checked{}, fmt.Errorf("%w: empty BindAddr", ErrBadConfig)
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		return checked{}, fmt.Errorf("%w: BindAddr %q: %w", ErrBadConfig, c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		a, err := parseAdvertise(c.AdvertiseAddr)
		if err != nil {
			return checked{}, err
		}
		out.advertise = a
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		dst  *time.Duration
		def  time.Duration
	}{
		{"Timeout", c.Timeout, &out.Timeout, DefaultTimeout},
		{"HandshakeTimeout", c.HandshakeTimeout, &out.HandshakeTimeout, DefaultHandshakeTimeout},
	} {
		switch {
		case d.v < 0:
			return checked{}, fmt.Errorf("%w: %s %v is negative", ErrBadConfig, d.name, d.v)
		case d.v == 0:
			*d.dst = d.def
		}
	}
	for _, n := range []struct {
		name string
		v    int
		dst  *int
		def  int
	}{
		{"MaxPool", c.MaxPool, &out.MaxPool, DefaultMaxPool},
		{"MaxPendingHandshakes", c.MaxPendingHandshakes, &out.MaxPendingHandshakes, DefaultMaxPendingHandshakes},
	} {
		switch {
		case n.v < 0:
			return checked{}, fmt.Errorf("%w: %s %d is negative", ErrBadConfig, n.name, n.v)
		case n.v == 0:
			*n.dst = n.def
		}
	}
	if out.Log == nil {
		out.Log = slog.New(slog.DiscardHandler)
	}
	if out.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return checked{}, err
		}
		out.Metrics = m
	}
	return out, nil
}

// advertiseAddr keeps the advertised host:port exactly as configured (a
// host name is not resolved: container addresses change, names do not).
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

func parseAdvertise(s string) (net.Addr, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return nil, fmt.Errorf("%w: AdvertiseAddr %q: %w", ErrBadConfig, s, err)
	}
	if host == "" {
		return nil, fmt.Errorf("%w: AdvertiseAddr %q has no host", ErrNotAdvertisable, s)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("%w: AdvertiseAddr %q is an unspecified address", ErrNotAdvertisable, s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return nil, fmt.Errorf("%w: AdvertiseAddr %q: port must be 1-65535", ErrBadConfig, s)
	}
	return advertiseAddr(s), nil
}

// StreamLayer is a raft.StreamLayer over mutual TLS 1.3. Create it with
// NewStreamLayer (or let New do it). Accept, Dial, Addr and Close are safe
// for concurrent use; raft calls Accept from its listener goroutine and Dial
// from its replication and election goroutines.
type StreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	material  *pki.Material
	server    *tls.Config
	hsTimeout time.Duration
	metrics   *Metrics
	log       *slog.Logger

	conns   chan net.Conn // handshaken inbound connections, unbuffered
	slots   chan struct{} // semaphore of running inbound handshakes
	ctx     context.Context
	cancel  context.CancelFunc
	closing chan struct{}

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// NewStreamLayer validates cfg, binds cfg.BindAddr and starts accepting.
// On any error nothing stays bound. Close releases the port and stops every
// goroutine it started.
func NewStreamLayer(cfg Config) (*StreamLayer, error) {
	c, err := cfg.check()
	if err != nil {
		return nil, err
	}
	server, err := c.TLS.ServerConfig(pki.RoleNode)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	ln, err := net.Listen("tcp", c.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: listening on %s: %w", ErrBadConfig, c.BindAddr, err)
	}
	advertise := c.advertise
	if advertise == nil {
		tcp, ok := ln.Addr().(*net.TCPAddr)
		if !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
			_ = ln.Close()
			return nil, fmt.Errorf("%w: bound to %s and no AdvertiseAddr given", ErrNotAdvertisable, ln.Addr())
		}
		advertise = tcp
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &StreamLayer{
		ln:        ln,
		advertise: advertise,
		material:  c.TLS,
		server:    server,
		hsTimeout: c.HandshakeTimeout,
		metrics:   c.Metrics,
		log:       c.Log,
		conns:     make(chan net.Conn),
		slots:     make(chan struct{}, c.MaxPendingHandshakes),
		ctx:       ctx,
		cancel:    cancel,
		closing:   make(chan struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Metrics returns the Metrics this stream layer counts into.
func (s *StreamLayer) Metrics() *Metrics { return s.metrics }

// BoundAddr returns the address actually bound (useful with port 0).
func (s *StreamLayer) BoundAddr() net.Addr { return s.ln.Addr() }

// Addr returns the advertised address; raft uses it as this node's
// ServerAddress.
func (s *StreamLayer) Addr() net.Addr { return s.advertise }

// Accept returns the next inbound connection whose TLS handshake with a
// role-node peer succeeded. After Close it returns an error wrapping
// ErrClosed and net.ErrClosed.
func (s *StreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closing:
		return nil, fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed)
	}
}

// Close stops listening, aborts running handshakes, and waits for the
// goroutines of the stream layer to exit. Connections already handed to
// raft are raft's to close. Close is idempotent.
func (s *StreamLayer) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancel()
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = fmt.Errorf("transport: closing listener: %w", err)
		}
	})
	s.wg.Wait()
	return s.closeErr
}

// Dial opens a TCP connection to address, runs the TLS handshake as a
// client (verifying the server certificate for address's host and role
// node), and reads the server's preamble, all within timeout (zero or
// negative means HandshakeTimeout). A TCP failure wraps ErrDial; a
// handshake or preamble failure wraps ErrHandshake and is counted.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = s.hsTimeout
	}
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, fmt.Errorf("%w: bad address %q: %w", ErrDial, address, err)
	}
	if host == "" {
		return nil, fmt.Errorf("%w: address %q has no host", ErrDial, address)
	}
	cfg, err := s.material.ClientConfig(host)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDial, address, err)
	}
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w: %w", ErrClosed, net.ErrClosed, err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrDial, address, err)
	}
	conn := tls.Client(raw, cfg)
	err = conn.HandshakeContext(ctx)
	if err == nil {
		err = readPreamble(conn, deadline)
	}
	if err != nil {
		_ = raw.Close()
		if s.ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w: %w", ErrClosed, net.ErrClosed, err)
		}
		s.failed(DirectionOutbound, string(address), err)
		return nil, fmt.Errorf("%w: with %s: %w", ErrHandshake, address, err)
	}
	return conn, nil
}

func readPreamble(conn *tls.Conn, deadline time.Time) error {
	if err := conn.SetReadDeadline(deadline); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return fmt.Errorf("reading preamble: %w", err)
	}
	if b[0] != preambleAccepted {
		return fmt.Errorf("unexpected preamble byte %#x", b[0])
	}
	return conn.SetReadDeadline(time.Time{})
}

func (s *StreamLayer) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closing:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (for example out of file descriptors): back off.
			delay = min(max(2*delay, 5*time.Millisecond), maxAcceptBackoff)
			s.log.Error("raft transport accept failed", "error", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
				continue
			case <-s.closing:
				t.Stop()
				return
			}
		}
		delay = 0
		select {
		case s.slots <- struct{}{}:
		default:
			_ = raw.Close()
			s.failed(DirectionInbound, raw.RemoteAddr().String(), errOverload)
			continue
		}
		s.wg.Add(1)
		go s.serverHandshake(raw)
	}
}

// serverHandshake runs one inbound handshake and hands the connection to
// Accept if it succeeded.
func (s *StreamLayer) serverHandshake(raw net.Conn) {
	defer s.wg.Done()
	defer func() { <-s.slots }()
	remote := raw.RemoteAddr().String()
	deadline := time.Now().Add(s.hsTimeout)
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	conn := tls.Server(raw, s.server)
	err := conn.HandshakeContext(ctx)
	if err == nil {
		err = writePreamble(conn, deadline)
	}
	if err != nil {
		_ = raw.Close()
		if s.ctx.Err() == nil {
			s.failed(DirectionInbound, remote, err)
		}
		return
	}
	select {
	case s.conns <- conn:
	case <-s.closing:
		_ = conn.Close()
	}
}

func writePreamble(conn *tls.Conn, deadline time.Time) error {
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if _, err := conn.Write([]byte{preambleAccepted}); err != nil {
		return fmt.Errorf("writing preamble: %w", err)
	}
	return conn.SetWriteDeadline(time.Time{})
}

func (s *StreamLayer) failed(direction, remote string, err error) {
	reason := classify(err)
	s.metrics.handshakeFailed(direction, reason)
	s.log.Warn("raft TLS handshake failed",
		"direction", direction, "reason", reason, "remote_addr", remote,
		"region", s.material.Name(), "error", err)
}
