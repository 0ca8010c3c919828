package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func loadMaterial(t *testing.T, f tlsFiles) *Material {
	t.Helper()
	m, err := LoadTLS(f.ca, f.cert, f.key)
	if err != nil {
		t.Fatalf("LoadTLS(%s): %v", f.cert, err)
	}
	return m
}

// handshakeResult is what each side of one TLS connection saw.
type handshakeResult struct {
	serverErr error
	clientErr error
	serverSaw tls.ConnectionState
	clientSaw tls.ConnectionState
}

// handshake runs one TLS connection over loopback TCP. The server, once its
// handshake succeeds, writes "ok"; the client reads it, so a refusal by the
// server (which in TLS 1.3 arrives after the client's handshake returned)
// surfaces as clientErr too.
func handshake(t *testing.T, server, client *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	type srvOut struct {
		err error
		cs  tls.ConnectionState
	}
	done := make(chan srvOut, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- srvOut{err: err}
			return
		}
		defer func() { _ = raw.Close() }()
		_ = raw.SetDeadline(deadline)
		c := tls.Server(raw, server)
		if err := c.Handshake(); err != nil {
			done <- srvOut{err: err}
			return
		}
		_, err = c.Write([]byte("ok"))
		done <- srvOut{err: err, cs: c.ConnectionState()}
	}()
	var res handshakeResult
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Close() }()
	_ = raw.SetDeadline(deadline)
	c := tls.Client(raw, client)
	if res.clientErr = c.Handshake(); res.clientErr == nil {
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			res.clientErr = err
		} else if string(buf) != "ok" {
			res.clientErr = errors.New("unexpected server data")
		}
		res.clientSaw = c.ConnectionState()
	}
	_ = raw.Close()
	out := <-done
	res.serverErr, res.serverSaw = out.err, out.cs
	return res
}

func TestTLSConfigs(t *testing.T) {
	type setup struct {
		server, client *tls.Config
	}
	tests := []struct {
		name       string
		build      func(t *testing.T) setup
		fail       bool  // both sides must fail
		clientSide bool  // the client, not the server, is the side that refuses
		wantIs     error // the refusing side's error wraps this, if set
		wantAs     any   // the refusing side's error is of this type, if set
	}{
		{
			name: "node to node",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleNode)
				c, _ := loadMaterial(t, nodeFiles(dir, "dc2")).ClientConfig("127.0.0.1")
				return setup{s, c}
			},
		},
		{
			name: "node by DNS name",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleNode)
				c, _ := loadMaterial(t, nodeFiles(dir, "dc2")).ClientConfig("dc1")
				return setup{s, c}
			},
		},
		{
			name: "operator to API server allowing operators",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleOperator, RoleClient)
				c, _ := loadMaterial(t, nodeFiles(dir, OperatorFileBase)).ClientConfig("localhost")
				return setup{s, c}
			},
		},
		{
			name: "client role refused by raft server",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleNode)
				c, _ := loadMaterial(t, nodeFiles(dir, "vc-1")).ClientConfig("127.0.0.1")
				return setup{s, c}
			},
			fail: true, wantIs: ErrWrongRole,
		},
		{
			name: "operator role refused by raft server",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleNode)
				c, _ := loadMaterial(t, nodeFiles(dir, OperatorFileBase)).ClientConfig("127.0.0.1")
				return setup{s, c}
			},
			fail: true, wantIs: ErrWrongRole,
		},
		{
			name: "node refused by client-only server",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleClient)
				c, _ := loadMaterial(t, nodeFiles(dir, "dc2")).ClientConfig("127.0.0.1")
				return setup{s, c}
			},
			fail: true, wantIs: ErrWrongRole,
		},
		{
			name: "client certificate from another CA",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				other := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleNode)
				// The rogue trusts the real CA too, so only the server refuses.
				f := nodeFiles(other, "dc2")
				writeFile(t, f.ca, append(mustRead(t, f.ca), mustRead(t, nodeFiles(dir, "dc1").ca)...))
				c, _ := loadMaterial(t, f).ClientConfig("127.0.0.1")
				return setup{s, c}
			},
			fail: true, wantAs: &x509.UnknownAuthorityError{},
		},
		{
			name: "server certificate from another CA",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				other := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(other, "dc1")).ServerConfig(RoleNode)
				c, _ := loadMaterial(t, nodeFiles(dir, "dc2")).ClientConfig("127.0.0.1")
				return setup{s, c}
			},
			fail: true, clientSide: true, wantAs: &x509.UnknownAuthorityError{},
		},
		{
			name: "server name not in certificate",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleNode)
				c, _ := loadMaterial(t, nodeFiles(dir, "dc2")).ClientConfig("dc9")
				return setup{s, c}
			},
			fail: true, clientSide: true, wantAs: &x509.HostnameError{},
		},
		{
			name: "server whose role is not node",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				// A client-role certificate that is nevertheless allowed to serve.
				f := issueRaw(t, caFromDir(t, dir), dir, "sneaky", leafTemplate("regent://client/sneaky"))
				s, _ := loadMaterial(t, f).ServerConfig(RoleNode)
				c, _ := loadMaterial(t, nodeFiles(dir, "dc2")).ClientConfig("localhost")
				return setup{s, c}
			},
			fail: true, clientSide: true, wantIs: ErrWrongRole,
		},
		{
			name: "client limited to TLS 1.2",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleNode)
				c, _ := loadMaterial(t, nodeFiles(dir, "dc2")).ClientConfig("127.0.0.1")
				c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				return setup{s, c}
			},
			fail: true,
		},
		{
			name: "client without certificate",
			build: func(t *testing.T) setup {
				dir := initDir(t, Options{})
				s, _ := loadMaterial(t, nodeFiles(dir, "dc1")).ServerConfig(RoleNode)
				c, _ := loadMaterial(t, nodeFiles(dir, "dc2")).ClientConfig("127.0.0.1")
				c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
				return setup{s, c}
			},
			fail: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.build(t)
			if s.server == nil || s.client == nil {
				t.Fatal("config construction failed")
			}
			res := handshake(t, s.server, s.client)
			if !tc.fail {
				if res.serverErr != nil || res.clientErr != nil {
					t.Fatalf("handshake failed: server %v, client %v", res.serverErr, res.clientErr)
				}
				if res.serverSaw.Version != tls.VersionTLS13 {
					t.Errorf("negotiated version %x, want TLS 1.3", res.serverSaw.Version)
				}
				if _, _, err := PeerIdentity(res.serverSaw); err != nil {
					t.Errorf("server side PeerIdentity: %v", err)
				}
				role, _, err := PeerIdentity(res.clientSaw)
				if err != nil || role != RoleNode {
					t.Errorf("client side PeerIdentity: %v, %v", role, err)
				}
				return
			}
			// Both sides must fail; the refusing side with the expected cause.
			if res.serverErr == nil || res.clientErr == nil {
				t.Fatalf("handshake not refused on both sides: server %v, client %v", res.serverErr, res.clientErr)
			}
			refuser := res.serverErr
			if tc.clientSide {
				refuser = res.clientErr
			}
			if tc.wantIs != nil && !errors.Is(refuser, tc.wantIs) {
				t.Errorf("refusal %v, want %v", refuser, tc.wantIs)
			}
			if tc.wantAs != nil && !errors.As(refuser, tc.wantAs) {
				t.Errorf("refusal %v (%T), want a %T", refuser, refuser, tc.wantAs)
			}
		})
	}
}

func TestConfigArguments(t *testing.T) {
	dir := initDir(t, Options{})
	m := loadMaterial(t, nodeFiles(dir, "dc1"))
	if _, err := m.ServerConfig(); !errors.Is(err, ErrBadOptions) {
		t.Errorf("ServerConfig(): %v, want ErrBadOptions", err)
	}
	if _, err := m.ServerConfig(RoleNode, RoleUnknown); !errors.Is(err, ErrBadOptions) {
		t.Errorf("ServerConfig(node, unknown): %v, want ErrBadOptions", err)
	}
	if _, err := m.ClientConfig(""); !errors.Is(err, ErrBadOptions) {
		t.Errorf("ClientConfig(\"\"): %v, want ErrBadOptions", err)
	}
	s, err := m.ServerConfig(RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	if s.MinVersion != tls.VersionTLS13 || s.ClientAuth != tls.RequireAndVerifyClientCert || s.VerifyConnection == nil {
		t.Errorf("server config: min %x, client auth %v", s.MinVersion, s.ClientAuth)
	}
	// A caller that turns verification off still gets the role hook's refusal.
	if err := s.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{m.Leaf()}}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("VerifyConnection without verified chains: %v, want ErrUntrusted", err)
	}
	if err := s.VerifyConnection(tls.ConnectionState{}); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("VerifyConnection without certificates: %v, want ErrNoIdentity", err)
	}
	if _, _, err := PeerIdentity(tls.ConnectionState{}); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("PeerIdentity of nothing: %v, want ErrNoIdentity", err)
	}
}
