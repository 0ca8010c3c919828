package pki

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"
)

// maxFileSize bounds what LoadTLS reads from one file.
const maxFileSize = 1 << 20

// Material is a loaded, checked TLS identity: the CA bundle peers must chain
// to, this process's certificate chain and key, and the identity the
// certificate carries. It is immutable and safe for concurrent use; every
// tls.Config it builds is a fresh value the caller may adjust.
type Material struct {
	roots *x509.CertPool
	cert  tls.Certificate
	role  Role
	name  string
}

// LoadTLS reads a PEM CA bundle, a PEM certificate (leaf first, optionally
// followed by intermediates) and its PEM private key (PKCS#8 or SEC 1), and
// checks them as NewMaterial does. Errors name the file and wrap
// ErrMissingFile, ErrUnreadable or one of NewMaterial's sentinels.
func LoadTLS(caFile, certFile, keyFile string) (*Material, error) {
	caPEM, err := readFile("CA bundle", caFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := readFile("certificate", certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile("private key", keyFile)
	if err != nil {
		return nil, err
	}
	m, err := newMaterial(caPEM, certPEM, keyPEM, time.Now(), sources{ca: caFile, cert: certFile, key: keyFile})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// NewMaterial builds a Material from PEM bytes (for example from a
// Kubernetes secret) and checks, at the current time:
//   - every block of caPEM is a CA certificate (ErrBadPEM, ErrNotCA);
//   - certPEM holds one or more certificates, the first a non-CA leaf
//     (ErrBadPEM);
//   - keyPEM holds exactly one unencrypted private key (ErrBadPEM) matching
//     the leaf's public key (ErrKeyMismatch);
//   - the leaf verifies against the CA bundle (ErrUntrusted);
//   - the leaf carries a valid identity (ErrNoIdentity, ErrBadIdentity).
func NewMaterial(caPEM, certPEM, keyPEM []byte) (*Material, error) {
	return newMaterial(caPEM, certPEM, keyPEM, time.Now(), sources{ca: "CA bundle", cert: "certificate", key: "private key"})
}

// sources names the inputs in error messages.
type sources struct{ ca, cert, key string }

func newMaterial(caPEM, certPEM, keyPEM []byte, now time.Time, src sources) (*Material, error) {
	cas, err := parseCertificates(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.ca, err)
	}
	roots := x509.NewCertPool()
	for i, c := range cas {
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("%w: %s: certificate %d (%q)", ErrNotCA, src.ca, i+1, c.Subject.CommonName)
		}
		roots.AddCert(c)
	}
	chain, err := parseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.cert, err)
	}
	leaf := chain[0]
	if leaf.IsCA {
		return nil, fmt.Errorf("%w: %s: first certificate (%q) is a CA, want a leaf", ErrBadPEM, src.cert, leaf.Subject.CommonName)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.key, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("%w: key %s does not belong to certificate %s (%q)", ErrKeyMismatch, src.key, src.cert, leaf.Subject.CommonName)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("%w: %s (%q, valid %s to %s) against %s: %w", ErrUntrusted, src.cert,
			leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), src.ca, err)
	}
	role, name, err := Identity(leaf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.cert, err)
	}
	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	return &Material{
		roots: roots,
		cert:  tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf},
		role:  role,
		name:  name,
	}, nil
}

func readFile(what, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no %s path given", ErrMissingFile, what)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrMissingFile, what, path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrUnreadable, what, path, err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrUnreadable, what, path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: %s %s is larger than %d bytes", ErrUnreadable, what, path, maxFileSize)
	}
	return data, nil
}

// pemBlocks decodes every PEM block in data. Anything other than whitespace
// outside the blocks is an error, and so is no block at all.
func pemBlocks(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: %d bytes that are not PEM", ErrBadPEM, len(bytes.TrimSpace(rest)))
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%w: no PEM block", ErrBadPEM)
	}
	return blocks, nil
}

// parseCertificates decodes one or more CERTIFICATE blocks.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	blocks, err := pemBlocks(data)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, 0, len(blocks))
	for i, b := range blocks {
		if b.Type != pemCertificate {
			return nil, fmt.Errorf("%w: block %d is %q, want %q", ErrBadPEM, i+1, b.Type, pemCertificate)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: block %d: %w", ErrBadPEM, i+1, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// parseKey decodes exactly one PKCS#8 or SEC 1 private key block.
func parseKey(data []byte) (crypto.Signer, error) {
	blocks, err := pemBlocks(data)
	if err != nil {
		return nil, err
	}
	if len(blocks) != 1 {
		return nil, fmt.Errorf("%w: %d PEM blocks, want exactly one private key", ErrBadPEM, len(blocks))
	}
	b := blocks[0]
	var key any
	switch b.Type {
	case pemPKCS8Key:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case pemSEC1Key:
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: encrypted private keys are not supported", ErrBadPEM)
	default:
		return nil, fmt.Errorf("%w: block is %q, want %q or %q", ErrBadPEM, b.Type, pemPKCS8Key, pemSEC1Key)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key type %T cannot sign", ErrBadPEM, key)
	}
	return signer, nil
}

// Role is the role in this Material's certificate.
func (m *Material) Role() Role { return m.role }

// Name is the identity name in this Material's certificate.
func (m *Material) Name() string { return m.name }

// Leaf returns the parsed leaf certificate. Callers must not modify it.
func (m *Material) Leaf() *x509.Certificate { return m.cert.Leaf }

// ServerConfig returns a TLS 1.3-only server configuration presenting this
// Material's certificate. It requires a client certificate that chains to the
// CA bundle and, in VerifyConnection, one of the allowed roles. Raft listeners
// use ServerConfig(RoleNode). At least one valid role must be given
// (ErrBadOptions). Session tickets are disabled, so every connection runs
// the full verification.
func (m *Material) ServerConfig(allowed ...Role) (*tls.Config, error) {
	if err := checkRoles(allowed); err != nil {
		return nil, err
	}
	allowed = slices.Clone(allowed)
	cert := m.cert
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              m.roots,
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs, allowed)
		},
	}, nil
}

// ClientConfig returns a TLS 1.3-only client configuration that always
// presents this Material's certificate, verifies the server's certificate
// against the CA bundle for serverName (a DNS name or IP address that must be
// among the server certificate's SANs), and accepts only a server whose role
// is RoleNode: every Regent server is a region node. An empty serverName is
// refused (ErrBadOptions).
func (m *Material) ClientConfig(serverName string) (*tls.Config, error) {
	if serverName == "" {
		return nil, fmt.Errorf("%w: empty server name", ErrBadOptions)
	}
	cert := m.cert
	allowed := []Role{RoleNode}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		RootCAs:    m.roots,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs, allowed)
		},
	}, nil
}

func checkRoles(roles []Role) error {
	if len(roles) == 0 {
		return fmt.Errorf("%w: no allowed peer role given", ErrBadOptions)
	}
	for _, r := range roles {
		if !r.valid() {
			return fmt.Errorf("%w: allowed role %d is not a valid role", ErrBadOptions, r)
		}
	}
	return nil
}

// verifyPeer runs after crypto/tls verified the peer's chain. It insists the
// chain was in fact verified (defence in depth against a caller setting
// InsecureSkipVerify) and that the peer's role is allowed.
func verifyPeer(cs tls.ConnectionState, allowed []Role) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: peer sent no certificate", ErrNoIdentity)
	}
	if len(cs.VerifiedChains) == 0 {
		return fmt.Errorf("%w: peer certificate %q was not verified", ErrUntrusted, cs.PeerCertificates[0].Subject.CommonName)
	}
	role, name, err := Identity(cs.PeerCertificates[0])
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	if !slices.Contains(allowed, role) {
		return fmt.Errorf("%w: peer is %s/%s, allowed roles %v", ErrWrongRole, role, name, allowed)
	}
	return nil
}

// PeerIdentity returns the identity of the verified peer of an established
// TLS connection, for servers that authorise per identity (policies).
func PeerIdentity(cs tls.ConnectionState) (Role, string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return RoleUnknown, "", fmt.Errorf("%w: connection has no verified peer certificate", ErrNoIdentity)
	}
	return Identity(cs.PeerCertificates[0])
}
