package transport

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/regent-signer/regent/raft/pki"
)

// acceptOne runs Accept in a goroutine; the channel yields its result.
type acceptResult struct {
	conn net.Conn
	err  error
}

func acceptAsync(s *StreamLayer) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := s.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan acceptResult) acceptResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("Accept did not return")
		return acceptResult{}
	}
}

// peerName is the identity name of the verified peer of an accepted conn.
func peerName(t *testing.T, c net.Conn) string {
	t.Helper()
	tc, ok := c.(*tls.Conn)
	if !ok {
		t.Fatalf("accepted %T, want *tls.Conn", c)
	}
	_, name, err := pki.PeerIdentity(tc.ConnectionState())
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// rawDial does what Dial does (TLS handshake with ClientConfig, then read the
// preamble) for material a StreamLayer would refuse to be built with.
func rawDial(t *testing.T, m *pki.Material, addr string) error {
	t.Helper()
	cfg, err := m.ClientConfig("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: waitTimeout}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	return readPreamble(c, time.Now().Add(waitTimeout))
}

func TestStreamRoundTrip(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	a, _ := newStream(t, load(t, dir, "dc1"), nil)
	b, _ := newStream(t, load(t, dir, "dc2"), nil)

	accepted := acceptAsync(a)
	out, err := b.Dial(raft.ServerAddress(a.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer func() { _ = out.Close() }()
	in := receive(t, accepted)
	if in.err != nil {
		t.Fatalf("Accept: %v", in.err)
	}
	defer func() { _ = in.conn.Close() }()
	if got := peerName(t, in.conn); got != "dc2" {
		t.Errorf("server sees peer %q, want dc2", got)
	}
	if got := peerName(t, out); got != "dc1" {
		t.Errorf("client sees peer %q, want dc1", got)
	}
	if _, err := out.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = in.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(in.conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := in.conn.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	_ = out.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if a.Metrics().HandshakeFailures() != 0 || b.Metrics().HandshakeFailures() != 0 {
		t.Errorf("failures counted on a good connection: %d, %d", a.Metrics().HandshakeFailures(), b.Metrics().HandshakeFailures())
	}
}

// TestRefusedPeers: each row dials a dc1 stream layer with some identity.
// The dial must fail, the server must count the failure with the expected
// reason, and the next connection Accept hands out must be a good peer's.
func TestRefusedPeers(t *testing.T) {
	tests := []struct {
		name       string
		dialer     func(t *testing.T, clusterDir string) *pki.Material
		wantReason string
	}{
		{
			name:       "client role",
			dialer:     func(t *testing.T, dir string) *pki.Material { return load(t, dir, "vc-1") },
			wantReason: ReasonIdentity,
		},
		{
			name:       "operator role",
			dialer:     func(t *testing.T, dir string) *pki.Material { return load(t, dir, pki.OperatorFileBase) },
			wantReason: ReasonIdentity,
		},
		{
			name: "node of another CA",
			dialer: func(t *testing.T, _ string) *pki.Material {
				return load(t, newPKI(t, pki.Options{}), "dc3")
			},
			// The rogue rejects our certificate and aborts; we see its alert.
			wantReason: ReasonOther,
		},
		{
			name: "node of another CA that trusts ours",
			dialer: func(t *testing.T, dir string) *pki.Material {
				other := newPKI(t, pki.Options{})
				ca := filepath.Join(other, pki.CACertFile)
				bundle := append(readFile(t, ca), readFile(t, filepath.Join(dir, pki.CACertFile))...)
				if err := os.WriteFile(ca, bundle, 0o644); err != nil {
					t.Fatal(err)
				}
				return load(t, other, "dc3")
			},
			wantReason: ReasonCertificate,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := newPKI(t, pki.Options{})
			a, reg := newStream(t, load(t, dir, "dc1"), nil)
			accepted := acceptAsync(a)

			m := tc.dialer(t, dir)
			if m.Role() == pki.RoleNode {
				// A node certificate can drive a real stream layer: its Dial
				// must fail (for the CA that trusts ours, only the preamble
				// tells it the server refused) and count the failure.
				s, dialerReg := newStream(t, m, nil)
				if _, err := s.Dial(raft.ServerAddress(a.Addr().String()), 5*time.Second); !errors.Is(err, ErrHandshake) {
					t.Fatalf("Dial by a refused node: %v, want ErrHandshake", err)
				}
				if got := failures(t, dialerReg, DirectionOutbound, ""); got != 1 {
					t.Errorf("dialer counted %v outbound failures, want 1", got)
				}
			} else if err := rawDial(t, m, a.Addr().String()); err == nil {
				t.Fatal("refused peer completed a connection")
			}
			waitFor(t, "the inbound failure to be counted", func() bool {
				return failures(t, reg, DirectionInbound, tc.wantReason) == 1
			})
			if got := failures(t, reg, "", ""); got != 1 {
				t.Errorf("%v failures counted in total, want 1", got)
			}

			good, _ := newStream(t, load(t, dir, "dc2"), nil)
			out, err := good.Dial(raft.ServerAddress(a.Addr().String()), 5*time.Second)
			if err != nil {
				t.Fatalf("good Dial: %v", err)
			}
			defer func() { _ = out.Close() }()
			in := receive(t, accepted)
			if in.err != nil {
				t.Fatal(in.err)
			}
			defer func() { _ = in.conn.Close() }()
			if got := peerName(t, in.conn); got != "dc2" {
				t.Fatalf("Accept handed out %q, want the good peer dc2", got)
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDialRefusesForeignServer(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	rogue, rogueReg := newStream(t, load(t, newPKI(t, pki.Options{}), "dc1"), nil)
	b, reg := newStream(t, load(t, dir, "dc2"), nil)

	_, err := b.Dial(raft.ServerAddress(rogue.Addr().String()), 5*time.Second)
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("Dial to a foreign server: %v, want ErrHandshake", err)
	}
	if got := failures(t, reg, DirectionOutbound, ReasonCertificate); got != 1 {
		t.Errorf("outbound certificate failures %v, want 1", got)
	}
	waitFor(t, "the rogue to count its inbound failure", func() bool {
		return failures(t, rogueReg, DirectionInbound, "") == 1
	})
}

func TestDialVerifiesHostName(t *testing.T) {
	dir := newPKI(t, pki.Options{Hosts: []string{"localhost"}}) // no 127.0.0.1 SAN
	a, _ := newStream(t, load(t, dir, "dc1"), nil)
	b, reg := newStream(t, load(t, dir, "dc2"), nil)
	_, port, _ := net.SplitHostPort(a.Addr().String())

	if _, err := b.Dial(raft.ServerAddress("127.0.0.1:"+port), 5*time.Second); !errors.Is(err, ErrHandshake) {
		t.Fatalf("Dial by an address not in the SANs: %v, want ErrHandshake", err)
	}
	if got := failures(t, reg, DirectionOutbound, ReasonCertificate); got != 1 {
		t.Errorf("outbound certificate failures %v, want 1", got)
	}
	accepted := acceptAsync(a)
	c, err := b.Dial(raft.ServerAddress("localhost:"+port), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial by a SAN host name: %v", err)
	}
	_ = c.Close()
	if r := receive(t, accepted); r.err != nil {
		t.Fatal(r.err)
	} else {
		_ = r.conn.Close()
	}
}

func TestDialErrors(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	b, reg := newStream(t, load(t, dir, "dc2"), nil)

	// A port nobody listens on: a TCP failure, not a handshake failure.
	free := freePort(t)
	if _, err := b.Dial(raft.ServerAddress("127.0.0.1:"+free), time.Second); !errors.Is(err, ErrDial) {
		t.Errorf("Dial to a closed port: %v, want ErrDial", err)
	}
	if _, err := b.Dial("no-port", time.Second); !errors.Is(err, ErrDial) {
		t.Errorf("Dial without port: %v, want ErrDial", err)
	}
	if got := failures(t, reg, "", ""); got != 0 {
		t.Errorf("dial errors counted as handshake failures: %v", got)
	}
	// A server that accepts TCP but never speaks TLS: handshake timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }()
		}
	}()
	if _, err := b.Dial(raft.ServerAddress(ln.Addr().String()), 200*time.Millisecond); !errors.Is(err, ErrHandshake) {
		t.Errorf("Dial to a mute server: %v, want ErrHandshake", err)
	}
	if got := failures(t, reg, DirectionOutbound, ReasonTimeout); got != 1 {
		t.Errorf("outbound timeouts %v, want 1", got)
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	return port
}

func TestSlowClientDoesNotBlockAccept(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	a, reg := newStream(t, load(t, dir, "dc1"), func(c *Config) { c.HandshakeTimeout = time.Hour })
	b, _ := newStream(t, load(t, dir, "dc2"), nil)

	// A client that connects and never sends a ClientHello.
	slow, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Close() }()

	accepted := acceptAsync(a)
	out, err := b.Dial(raft.ServerAddress(a.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial while a slow client is pending: %v", err)
	}
	defer func() { _ = out.Close() }()
	in := receive(t, accepted)
	if in.err != nil {
		t.Fatal(in.err)
	}
	_ = in.conn.Close()
	if got := peerName(t, in.conn); got != "dc2" {
		t.Fatalf("accepted %q", got)
	}

	// Close aborts the pending handshake and returns; the abort is not a
	// peer failure.
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close blocked on a pending handshake")
	}
	_ = slow.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := slow.Read(make([]byte, 1)); err == nil {
		t.Fatal("slow client's connection still open after Close")
	}
	if got := failures(t, reg, "", ""); got != 0 {
		t.Errorf("aborting on Close counted %v failures", got)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	a, reg := newStream(t, load(t, dir, "dc1"), func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	slow, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Close() }()
	waitFor(t, "the timeout to be counted", func() bool {
		return failures(t, reg, DirectionInbound, ReasonTimeout) == 1
	})
	_ = slow.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := slow.Read(make([]byte, 1)); err == nil {
		t.Fatal("timed-out connection still open")
	}
}

func TestTooManyPendingHandshakes(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	a, reg := newStream(t, load(t, dir, "dc1"), func(c *Config) {
		c.HandshakeTimeout = time.Hour
		c.MaxPendingHandshakes = 1
	})
	first, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	second, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = second.Close() }()
	waitFor(t, "the overload to be counted", func() bool {
		return failures(t, reg, DirectionInbound, ReasonOverload) == 1
	})
	_ = second.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection beyond the limit still open")
	}
	// Freeing the slot lets a good peer in.
	_ = first.Close()
	waitFor(t, "the abandoned handshake to be counted", func() bool {
		return failures(t, reg, DirectionInbound, ReasonOther) == 1
	})
	b, _ := newStream(t, load(t, dir, "dc2"), nil)
	accepted := acceptAsync(a)
	out, err := b.Dial(raft.ServerAddress(a.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial after the slot was freed: %v", err)
	}
	_ = out.Close()
	if r := receive(t, accepted); r.err != nil {
		t.Fatal(r.err)
	} else {
		_ = r.conn.Close()
	}
}

func TestClose(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	a, _ := newStream(t, load(t, dir, "dc1"), nil)
	bound := a.BoundAddr().String()
	accepted := acceptAsync(a)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r := receive(t, accepted)
	if !errors.Is(r.err, ErrClosed) || !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want ErrClosed and net.ErrClosed", r.err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Dial(raft.ServerAddress(bound), time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Dial after Close: %v, want ErrClosed", err)
	}
	ln, err := net.Listen("tcp", bound)
	if err != nil {
		t.Fatalf("port still bound after Close: %v", err)
	}
	_ = ln.Close()
}

func TestAdvertiseAddr(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	port := freePort(t)
	a, _ := newStream(t, load(t, dir, "dc1"), func(c *Config) {
		c.BindAddr = "0.0.0.0:" + port
		c.AdvertiseAddr = "localhost:" + port
	})
	if got := a.Addr().String(); got != "localhost:"+port {
		t.Fatalf("Addr = %q, want the advertised localhost:%s", got, port)
	}
	if a.Addr().Network() != "tcp" {
		t.Errorf("Addr network %q", a.Addr().Network())
	}
	b, _ := newStream(t, load(t, dir, "dc2"), nil)
	accepted := acceptAsync(a)
	c, err := b.Dial(raft.ServerAddress(a.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial to the advertised address: %v", err)
	}
	_ = c.Close()
	if r := receive(t, accepted); r.err != nil {
		t.Fatal(r.err)
	} else {
		_ = r.conn.Close()
	}

	// New reports the advertised address to raft, unresolved.
	tr, err := New(Config{BindAddr: "0.0.0.0:0", AdvertiseAddr: "dc1.example:7000", TLS: load(t, dir, "dc1")})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer func() { _ = tr.Close() }()
	if got := tr.LocalAddr(); got != "dc1.example:7000" {
		t.Fatalf("LocalAddr = %q", got)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	node := load(t, dir, "dc1")
	tests := []struct {
		name    string
		cfg     func(t *testing.T, port string) Config // port: free, to check nothing stays bound
		wantErr []error
	}{
		{name: "no TLS", cfg: func(t *testing.T, p string) Config { return Config{BindAddr: "127.0.0.1:" + p} },
			wantErr: []error{ErrBadConfig}},
		{name: "client material", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, TLS: load(t, dir, "vc-1")}
		}, wantErr: []error{ErrBadConfig, pki.ErrWrongRole}},
		{name: "operator material", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, TLS: load(t, dir, pki.OperatorFileBase)}
		}, wantErr: []error{ErrBadConfig, pki.ErrWrongRole}},
		{name: "empty bind", cfg: func(t *testing.T, p string) Config { return Config{TLS: node} },
			wantErr: []error{ErrBadConfig}},
		{name: "bind without port", cfg: func(t *testing.T, p string) Config { return Config{BindAddr: "127.0.0.1", TLS: node} },
			wantErr: []error{ErrBadConfig}},
		{name: "bind port in use", cfg: func(t *testing.T, p string) Config {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ln.Close() })
			return Config{BindAddr: ln.Addr().String(), TLS: node}
		}, wantErr: []error{ErrBadConfig}},
		{name: "unspecified bind, no advertise", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "0.0.0.0:" + p, TLS: node}
		}, wantErr: []error{ErrNotAdvertisable}},
		{name: "advertise without port", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, AdvertiseAddr: "dc1", TLS: node}
		}, wantErr: []error{ErrBadConfig}},
		{name: "advertise without host", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, AdvertiseAddr: ":7000", TLS: node}
		}, wantErr: []error{ErrNotAdvertisable}},
		{name: "advertise 0.0.0.0", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, AdvertiseAddr: "0.0.0.0:7000", TLS: node}
		}, wantErr: []error{ErrNotAdvertisable}},
		{name: "advertise ::", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, AdvertiseAddr: "[::]:7000", TLS: node}
		}, wantErr: []error{ErrNotAdvertisable}},
		{name: "advertise port 0", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, AdvertiseAddr: "dc1:0", TLS: node}
		}, wantErr: []error{ErrBadConfig}},
		{name: "advertise port too large", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, AdvertiseAddr: "dc1:70000", TLS: node}
		}, wantErr: []error{ErrBadConfig}},
		{name: "advertise port not numeric", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, AdvertiseAddr: "dc1:raft", TLS: node}
		}, wantErr: []error{ErrBadConfig}},
		{name: "negative timeout", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, TLS: node, Timeout: -time.Second}
		}, wantErr: []error{ErrBadConfig}},
		{name: "negative handshake timeout", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, TLS: node, HandshakeTimeout: -time.Second}
		}, wantErr: []error{ErrBadConfig}},
		{name: "negative pool", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, TLS: node, MaxPool: -1}
		}, wantErr: []error{ErrBadConfig}},
		{name: "negative pending handshakes", cfg: func(t *testing.T, p string) Config {
			return Config{BindAddr: "127.0.0.1:" + p, TLS: node, MaxPendingHandshakes: -1}
		}, wantErr: []error{ErrBadConfig}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			cfg := tc.cfg(t, port)
			tr, err := New(cfg)
			if err == nil {
				_ = tr.Close()
				t.Fatal("New accepted a bad config")
			}
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("New: %v, want %v", err, want)
				}
			}
			s, err := NewStreamLayer(cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("NewStreamLayer accepted a bad config")
			}
			// Nothing stays bound on the port the row would have used.
			for _, host := range []string{"127.0.0.1", "0.0.0.0"} {
				ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
				if err != nil {
					t.Fatalf("port %s still bound after a failed New: %v", port, err)
				}
				_ = ln.Close()
			}
		})
	}
}

func TestTLSFileErrors(t *testing.T) {
	dir := newPKI(t, pki.Options{})
	ca := filepath.Join(dir, pki.CACertFile)
	if _, err := pki.LoadTLS(ca, pki.CertPath(dir, "dc1"), filepath.Join(dir, "missing.key")); !errors.Is(err, pki.ErrMissingFile) {
		t.Errorf("missing key: %v, want pki.ErrMissingFile", err)
	}
	if _, err := pki.LoadTLS(filepath.Join(dir, "missing.crt"), pki.CertPath(dir, "dc1"), pki.KeyPath(dir, "dc1")); !errors.Is(err, pki.ErrMissingFile) {
		t.Errorf("missing CA: %v, want pki.ErrMissingFile", err)
	}
	if _, err := pki.LoadTLS(ca, pki.CertPath(dir, "dc1"), pki.KeyPath(dir, "dc2")); !errors.Is(err, pki.ErrKeyMismatch) {
		t.Errorf("wrong key: %v, want pki.ErrKeyMismatch", err)
	}
}

func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	m1, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewMetrics(reg) // e.g. a transport restarted in one process
	if err != nil {
		t.Fatalf("second NewMetrics on one registry: %v", err)
	}
	m1.handshakeFailed(DirectionInbound, ReasonIdentity)
	m2.handshakeFailed(DirectionInbound, ReasonIdentity)
	if got := failures(t, reg, DirectionInbound, ReasonIdentity); got != 2 {
		t.Errorf("shared counter = %v, want 2", got)
	}
	// Every series exists from the start.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series int
	for _, f := range families {
		if f.GetName() == HandshakeFailuresMetric {
			series = len(f.GetMetric())
		}
	}
	if series != len(directions)*len(reasons) {
		t.Errorf("%d series, want %d", series, len(directions)*len(reasons))
	}

	clash := prometheus.NewRegistry()
	clash.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: HandshakeFailuresMetric, Help: "x"}))
	if _, err := NewMetrics(clash); !errors.Is(err, ErrBadConfig) {
		t.Errorf("NewMetrics on a clashing registry: %v, want ErrBadConfig", err)
	}
	if m, err := NewMetrics(nil); err != nil || m == nil {
		t.Errorf("NewMetrics(nil): %v", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errOverload, ReasonOverload},
		{pki.ErrWrongRole, ReasonIdentity},
		{pki.ErrNoIdentity, ReasonIdentity},
		{pki.ErrBadIdentity, ReasonIdentity},
		{pki.ErrUntrusted, ReasonCertificate},
		{&tls.CertificateVerificationError{Err: errors.New("x")}, ReasonCertificate},
		{os.ErrDeadlineExceeded, ReasonTimeout},
		{io.EOF, ReasonOther},
		{errors.New(strconv.Itoa(42)), ReasonOther},
	}
	for _, tc := range tests {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
