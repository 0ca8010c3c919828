package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsFiles are the three paths LoadTLS takes.
type tlsFiles struct{ ca, cert, key string }

func nodeFiles(dir, name string) tlsFiles {
	return tlsFiles{ca: filepath.Join(dir, CACertFile), cert: CertPath(dir, name), key: KeyPath(dir, name)}
}

// caFromDir loads the CA written by Init so tests can issue odd certificates.
func caFromDir(t *testing.T, dir string) *issuer {
	t.Helper()
	certs, err := parseCertificates(mustRead(t, filepath.Join(dir, CACertFile)))
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKey(mustRead(t, filepath.Join(dir, CAKeyFile)))
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{cert: certs[0], key: key}
}

// issueRaw signs tmpl (with a fresh key) by ca and writes <base>.crt/.key
// into dir.
func issueRaw(t *testing.T, ca *issuer, dir, base string, tmpl *x509.Certificate) tlsFiles {
	t.Helper()
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		if tmpl.SerialNumber, err = newSerial(); err != nil {
			t.Fatal(err)
		}
	}
	der, err := x509.CreateCertificate(nil, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, CertPath(dir, base), encodeCert(der))
	writeFile(t, KeyPath(dir, base), keyPEM)
	return tlsFiles{ca: filepath.Join(dir, CACertFile), cert: CertPath(dir, base), key: KeyPath(dir, base)}
}

func leafTemplate(uris ...string) *x509.Certificate {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "odd"},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			panic(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	return tmpl
}

func TestLoadTLS(t *testing.T) {
	dir := initDir(t, Options{})
	f := nodeFiles(dir, "dc2")
	m, err := LoadTLS(f.ca, f.cert, f.key)
	if err != nil {
		t.Fatalf("LoadTLS: %v", err)
	}
	if m.Role() != RoleNode || m.Name() != "dc2" {
		t.Errorf("identity %v/%q, want node/dc2", m.Role(), m.Name())
	}
	if m.Leaf() == nil || m.Leaf().Subject.CommonName != "dc2" {
		t.Errorf("leaf %v", m.Leaf())
	}
}

func TestLoadTLSAcceptsSEC1KeyAndCABundle(t *testing.T) {
	dir := initDir(t, Options{})
	other := initDir(t, Options{})
	f := nodeFiles(dir, "dc1")
	bundle := append(mustRead(t, filepath.Join(other, CACertFile)), mustRead(t, f.ca)...)
	writeFile(t, filepath.Join(dir, "bundle.crt"), bundle)
	key, err := parseKey(mustRead(t, f.key))
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "dc1-sec1.key"), pem.EncodeToMemory(&pem.Block{Type: pemSEC1Key, Bytes: der}))
	m, err := LoadTLS(filepath.Join(dir, "bundle.crt"), f.cert, filepath.Join(dir, "dc1-sec1.key"))
	if err != nil {
		t.Fatalf("LoadTLS with bundle and SEC 1 key: %v", err)
	}
	if m.Name() != "dc1" {
		t.Errorf("name %q", m.Name())
	}
}

func TestLoadTLSBadFiles(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options                                 // for the Init that provides the base files
		prepare func(t *testing.T, dir string) tlsFiles // breaks one thing
		wantErr error
		wantIn  func(f tlsFiles) string // text the error must mention
	}{
		{
			name: "missing CA",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				f.ca = filepath.Join(dir, "nope.crt")
				return f
			},
			wantErr: ErrMissingFile, wantIn: func(f tlsFiles) string { return f.ca },
		},
		{
			name: "missing certificate",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				f.cert = filepath.Join(dir, "nope.crt")
				return f
			},
			wantErr: ErrMissingFile, wantIn: func(f tlsFiles) string { return f.cert },
		},
		{
			name: "missing key",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				f.key = filepath.Join(dir, "nope.key")
				return f
			},
			wantErr: ErrMissingFile, wantIn: func(f tlsFiles) string { return f.key },
		},
		{
			name:    "empty key path",
			prepare: func(t *testing.T, dir string) tlsFiles { f := nodeFiles(dir, "dc1"); f.key = ""; return f },
			wantErr: ErrMissingFile, wantIn: func(tlsFiles) string { return "private key" },
		},
		{
			name: "CA path is a directory",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				f.ca = t.TempDir()
				return f
			},
			wantErr: ErrUnreadable, wantIn: func(f tlsFiles) string { return f.ca },
		},
		{
			name: "key file too large",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				writeFile(t, f.key, append(mustRead(t, f.key), make([]byte, maxFileSize)...))
				return f
			},
			wantErr: ErrUnreadable, wantIn: func(f tlsFiles) string { return f.key },
		},
		{
			name: "CA is not PEM",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				writeFile(t, f.ca, []byte("hello"))
				return f
			},
			wantErr: ErrBadPEM, wantIn: func(f tlsFiles) string { return f.ca },
		},
		{
			name: "empty certificate file",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				writeFile(t, f.cert, nil)
				return f
			},
			wantErr: ErrBadPEM, wantIn: func(f tlsFiles) string { return f.cert },
		},
		{
			name: "CA file holds a private key",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				f.ca = filepath.Join(dir, CAKeyFile)
				return f
			},
			wantErr: ErrBadPEM, wantIn: func(f tlsFiles) string { return f.ca },
		},
		{
			name: "certificate followed by garbage",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				writeFile(t, f.cert, append(mustRead(t, f.cert), "trailing junk\n"...))
				return f
			},
			wantErr: ErrBadPEM, wantIn: func(f tlsFiles) string { return f.cert },
		},
		{
			name: "certificate DER corrupt",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				writeFile(t, f.cert, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: []byte{0x30, 0x03, 1, 2, 3}}))
				return f
			},
			wantErr: ErrBadPEM, wantIn: func(f tlsFiles) string { return f.cert },
		},
		{
			name: "CA bundle holds a leaf",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				f.ca = CertPath(dir, "dc2")
				return f
			},
			wantErr: ErrNotCA, wantIn: func(f tlsFiles) string { return f.ca },
		},
		{
			name: "certificate is the CA",
			prepare: func(t *testing.T, dir string) tlsFiles {
				return tlsFiles{ca: filepath.Join(dir, CACertFile), cert: filepath.Join(dir, CACertFile), key: filepath.Join(dir, CAKeyFile)}
			},
			wantErr: ErrBadPEM, wantIn: func(f tlsFiles) string { return f.cert },
		},
		{
			name: "key file holds a certificate",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				f.key = f.cert
				return f
			},
			wantErr: ErrBadPEM, wantIn: func(f tlsFiles) string { return f.key },
		},
		{
			name: "two keys in the key file",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				writeFile(t, f.key, append(mustRead(t, f.key), mustRead(t, KeyPath(dir, "dc2"))...))
				return f
			},
			wantErr: ErrBadPEM, wantIn: func(f tlsFiles) string { return f.key },
		},
		{
			name: "encrypted key",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				writeFile(t, f.key, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}))
				return f
			},
			wantErr: ErrBadPEM, wantIn: func(f tlsFiles) string { return f.key },
		},
		{
			name: "key of another certificate",
			prepare: func(t *testing.T, dir string) tlsFiles {
				f := nodeFiles(dir, "dc1")
				f.key = KeyPath(dir, "dc2")
				return f
			},
			wantErr: ErrKeyMismatch, wantIn: func(f tlsFiles) string { return f.key },
		},
		{
			name: "certificate from another CA",
			prepare: func(t *testing.T, dir string) tlsFiles {
				other := initDir(t, Options{})
				f := nodeFiles(other, "dc1")
				f.ca = filepath.Join(dir, CACertFile)
				return f
			},
			wantErr: ErrUntrusted, wantIn: func(f tlsFiles) string { return f.cert },
		},
		{
			name:    "expired certificate",
			opts:    Options{Now: func() time.Time { return time.Now().Add(-2 * DefaultValidity) }},
			prepare: func(t *testing.T, dir string) tlsFiles { return nodeFiles(dir, "dc1") },
			wantErr: ErrUntrusted, wantIn: func(f tlsFiles) string { return f.cert },
		},
		{
			name:    "certificate not yet valid",
			opts:    Options{Now: func() time.Time { return time.Now().Add(time.Hour) }},
			prepare: func(t *testing.T, dir string) tlsFiles { return nodeFiles(dir, "dc1") },
			wantErr: ErrUntrusted, wantIn: func(f tlsFiles) string { return f.cert },
		},
		{
			name: "certificate without identity",
			prepare: func(t *testing.T, dir string) tlsFiles {
				return issueRaw(t, caFromDir(t, dir), dir, "anon", leafTemplate("https://example.com/x"))
			},
			wantErr: ErrNoIdentity, wantIn: func(f tlsFiles) string { return f.cert },
		},
		{
			name: "certificate with two identities",
			prepare: func(t *testing.T, dir string) tlsFiles {
				return issueRaw(t, caFromDir(t, dir), dir, "twice", leafTemplate("regent://node/a", "regent://operator/b"))
			},
			wantErr: ErrBadIdentity, wantIn: func(f tlsFiles) string { return f.cert },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := initDir(t, tc.opts)
			f := tc.prepare(t, dir)
			before := snapshotDir(t, dir)
			m, err := LoadTLS(f.ca, f.cert, f.key)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("LoadTLS: %v, want %v", err, tc.wantErr)
			}
			if m != nil {
				t.Fatal("LoadTLS returned material with an error")
			}
			if want := tc.wantIn(f); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
			assertSameDir(t, before, snapshotDir(t, dir))
		})
	}
}

func TestNewMaterial(t *testing.T) {
	dir := initDir(t, Options{})
	f := nodeFiles(dir, "dc3")
	m, err := NewMaterial(mustRead(t, f.ca), mustRead(t, f.cert), mustRead(t, f.key))
	if err != nil || m.Name() != "dc3" {
		t.Fatalf("NewMaterial: %v, %v", m, err)
	}
	if _, err := NewMaterial(mustRead(t, f.ca), mustRead(t, f.cert), mustRead(t, KeyPath(dir, "dc1"))); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("NewMaterial with wrong key: %v, want ErrKeyMismatch", err)
	}
}

// FuzzNewMaterial feeds arbitrary PEM inputs to the decoder. It must never
// panic; it either refuses with one of the package's sentinels or returns
// material with a valid identity.
func FuzzNewMaterial(f *testing.F) {
	now := time.Now()
	ca, caPEM, err := newCA("fuzz CA", now, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	node, err := ca.issue(leafSpec{role: RoleNode, name: "dc1", server: true, client: true}, now, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	other, err := ca.issue(leafSpec{role: RoleClient, name: "vc-1", client: true}, now, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(caPEM.cert, node.cert, node.key)
	f.Add(caPEM.cert, node.cert, other.key)
	f.Add(node.cert, node.cert, node.key)
	f.Add(caPEM.cert, caPEM.cert, caPEM.key)
	f.Add(caPEM.cert, append(node.cert, caPEM.cert...), node.key)
	f.Add([]byte("x"), []byte{}, []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	sentinels := []error{ErrBadPEM, ErrNotCA, ErrKeyMismatch, ErrUntrusted, ErrNoIdentity, ErrBadIdentity}
	f.Fuzz(func(t *testing.T, caIn, certIn, keyIn []byte) {
		m, err := NewMaterial(caIn, certIn, keyIn)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if !m.Role().valid() || !ValidName(m.Name()) || m.Leaf() == nil {
			t.Fatalf("accepted material with identity %v/%q", m.Role(), m.Name())
		}
	})
}

func TestReadFileKeepsUnderlyingError(t *testing.T) {
	_, err := readFile("CA bundle", filepath.Join(t.TempDir(), "absent"))
	if !errors.Is(err, ErrMissingFile) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("readFile: %v, want ErrMissingFile wrapping os.ErrNotExist", err)
	}
}
