package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestInitDefaults(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	dir := initDir(t, Options{Now: func() time.Time { return now }})

	wantFiles := []string{"ca.crt", "ca.key", "dc1.crt", "dc1.key", "dc2.crt", "dc2.key", "dc3.crt", "dc3.key",
		"regentctl.crt", "regentctl.key", "vc-1.crt", "vc-1.key"}
	got := snapshotDir(t, dir)
	if len(got) != len(wantFiles) {
		t.Errorf("files = %v, want %v", keys(got), wantFiles)
	}
	for _, name := range wantFiles {
		st, ok := got[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		want := os.FileMode(0o644)
		if filepath.Ext(name) == ".key" {
			want = 0o600
		}
		if st.mode.Perm() != want {
			t.Errorf("%s mode %v, want %v", name, st.mode.Perm(), want)
		}
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("directory mode: %v, %v; want 0700", info.Mode().Perm(), err)
	}

	ca := readCert(t, filepath.Join(dir, CACertFile))
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v, key usage %v", ca.IsCA, ca.KeyUsage)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if !ca.NotAfter.Equal(now.Add(DefaultValidity)) {
		t.Errorf("CA NotAfter %v, want %v", ca.NotAfter, now.Add(DefaultValidity))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	for _, region := range DefaultRegions() {
		c := readCert(t, CertPath(dir, region))
		role, name, err := Identity(c)
		if err != nil || role != RoleNode || name != region {
			t.Errorf("%s identity = %v/%q, %v", region, role, name, err)
		}
		if c.URIs[0].String() != "regent://node/"+region {
			t.Errorf("%s URI %s", region, c.URIs[0])
		}
		for _, host := range []string{"localhost", "127.0.0.1", "::1", region} {
			// Both as server (for this host name) and as client.
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("%s as server for %s: %v", region, host, err)
			}
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s as client: %v", region, err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com", CurrentTime: now}); err == nil {
			t.Errorf("%s verifies for a host it was not issued for", region)
		}
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s key is %T, want ECDSA P-256", region, c.PublicKey)
		}
		if !c.NotAfter.Equal(now.Add(DefaultValidity)) || !c.NotBefore.Equal(now.Add(-clockSkew)) {
			t.Errorf("%s validity %v..%v", region, c.NotBefore, c.NotAfter)
		}
		if _, err := LoadTLS(filepath.Join(dir, CACertFile), CertPath(dir, region), KeyPath(dir, region)); err != nil {
			t.Errorf("LoadTLS(%s): %v", region, err)
		}
	}

	for _, tc := range []struct {
		file string
		role Role
		name string
	}{
		{OperatorFileBase, RoleOperator, DefaultOperatorName},
		{"vc-1", RoleClient, "vc-1"},
	} {
		c := readCert(t, CertPath(dir, tc.file))
		role, name, err := Identity(c)
		if err != nil || role != tc.role || name != tc.name {
			t.Errorf("%s identity = %v/%q, %v; want %v/%q", tc.file, role, name, err, tc.role, tc.name)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s as client: %v", tc.file, err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			t.Errorf("%s must not be usable as a TLS server certificate", tc.file)
		}
		m, err := LoadTLS(filepath.Join(dir, CACertFile), CertPath(dir, tc.file), KeyPath(dir, tc.file))
		if err != nil || m.Role() != tc.role || m.Name() != tc.name {
			t.Errorf("LoadTLS(%s) = %v, %v", tc.file, m, err)
		}
	}
}

func keys(m map[string]fileState) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestInitCustom(t *testing.T) {
	now := time.Now()
	dir := initDir(t, Options{
		Regions:      []string{"eu", "us"},
		Hosts:        []string{"Regent.Example.com", "10.0.0.7", "10.0.0.7", "fd00::1"},
		OperatorName: "alice",
		Clients:      []string{"lighthouse", "teku"},
		Validity:     48 * time.Hour,
		Now:          func() time.Time { return now },
	})
	got := keys(snapshotDir(t, dir))
	want := []string{"ca.crt", "ca.key", "eu.crt", "eu.key", "lighthouse.crt", "lighthouse.key",
		"regentctl.crt", "regentctl.key", "teku.crt", "teku.key", "us.crt", "us.key"}
	if !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	eu := readCert(t, CertPath(dir, "eu"))
	if !slices.Equal(eu.DNSNames, []string{"regent.example.com", "eu"}) {
		t.Errorf("eu DNS names %v", eu.DNSNames)
	}
	if len(eu.IPAddresses) != 2 || !eu.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) || !eu.IPAddresses[1].Equal(net.ParseIP("fd00::1")) {
		t.Errorf("eu IPs %v", eu.IPAddresses)
	}
	if eu.NotAfter.Sub(now) > 48*time.Hour+time.Second || eu.NotAfter.Sub(now) < 48*time.Hour-time.Second {
		t.Errorf("eu NotAfter %v, want now+48h", eu.NotAfter)
	}
	if _, name, _ := Identity(readCert(t, CertPath(dir, OperatorFileBase))); name != "alice" {
		t.Errorf("operator name %q", name)
	}
}

func TestInitNoClients(t *testing.T) {
	dir := initDir(t, Options{Clients: []string{}})
	if _, err := os.Stat(CertPath(dir, "vc-1")); !os.IsNotExist(err) {
		t.Fatalf("vc-1.crt exists with an explicitly empty client list: %v", err)
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) // creates the pre-existing state
	}{
		{name: "existing PKI", prepare: func(t *testing.T, dir string) {
			if err := Init(dir, Options{}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "only a CA key", prepare: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, CAKeyFile), []byte("precious"))
		}},
		{name: "only a client certificate", prepare: func(t *testing.T, dir string) {
			writeFile(t, CertPath(dir, "vc-1"), []byte("x"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.prepare(t, dir)
			before := snapshotDir(t, dir)
			err := Init(dir, Options{})
			if !errors.Is(err, ErrExists) {
				t.Fatalf("Init over existing files: %v, want ErrExists", err)
			}
			assertSameDir(t, before, snapshotDir(t, dir))
		})
	}
}

func TestInitForceReplaces(t *testing.T) {
	dir := initDir(t, Options{})
	oldCA := mustRead(t, filepath.Join(dir, CACertFile))
	writeFile(t, filepath.Join(dir, "unrelated.txt"), []byte("keep me"))
	if err := Init(dir, Options{Force: true}); err != nil {
		t.Fatalf("Init with Force: %v", err)
	}
	newCA := mustRead(t, filepath.Join(dir, CACertFile))
	if string(newCA) == string(oldCA) {
		t.Fatal("Force did not replace the CA")
	}
	if string(mustRead(t, filepath.Join(dir, "unrelated.txt"))) != "keep me" {
		t.Fatal("Force touched an unrelated file")
	}
	// The new node certificates chain to the new CA.
	if _, err := LoadTLS(filepath.Join(dir, CACertFile), CertPath(dir, "dc2"), KeyPath(dir, "dc2")); err != nil {
		t.Fatalf("LoadTLS after Force: %v", err)
	}
	for name, st := range snapshotDir(t, dir) {
		if filepath.Ext(name) == ".tmp" {
			t.Errorf("temporary file %s left behind (%v)", name, st.mode)
		}
	}
}

func TestInitForceRefusesNonRegularTarget(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(CertPath(dir, "dc1"), 0o700); err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, dir)
	if err := Init(dir, Options{Force: true}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("Init with a directory where dc1.crt goes: %v, want ErrBadOptions", err)
	}
	assertSameDir(t, before, snapshotDir(t, dir))
}

func TestInitBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{name: "bad region name", opts: Options{Regions: []string{"dc1", "DC2"}}},
		{name: "region with slash", opts: Options{Regions: []string{"../dc1"}}},
		{name: "duplicate region", opts: Options{Regions: []string{"dc1", "dc1"}}},
		{name: "region named ca", opts: Options{Regions: []string{"ca"}}},
		{name: "region named regentctl", opts: Options{Regions: []string{"regentctl"}}},
		{name: "client clashes with region", opts: Options{Clients: []string{"dc1"}}},
		{name: "duplicate client", opts: Options{Clients: []string{"vc-1", "vc-1"}}},
		{name: "bad client name", opts: Options{Clients: []string{"vc 1"}}},
		{name: "bad operator name", opts: Options{OperatorName: "Alice"}},
		{name: "bad host", opts: Options{Hosts: []string{"exa mple.com"}}},
		{name: "host with port", opts: Options{Hosts: []string{"localhost:8080"}}},
		{name: "host label starting with dash", opts: Options{Hosts: []string{"-x.example"}}},
		{name: "empty host", opts: Options{Hosts: []string{""}}},
		{name: "negative validity", opts: Options{Validity: -time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "pki")
			before := snapshotDir(t, parent)
			if err := Init(dir, tc.opts); !errors.Is(err, ErrBadOptions) {
				t.Fatalf("Init: %v, want ErrBadOptions", err)
			}
			assertSameDir(t, before, snapshotDir(t, parent))
		})
	}
}

func TestInitBadDirectory(t *testing.T) {
	if err := Init("", Options{}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("Init(\"\"): %v, want ErrBadOptions", err)
	}
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	writeFile(t, file, []byte("x"))
	before := snapshotDir(t, parent)
	if err := Init(file, Options{}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("Init(file): %v, want ErrBadOptions", err)
	}
	if err := Init(filepath.Join(file, "sub"), Options{}); err == nil {
		t.Errorf("Init under a file succeeded")
	}
	assertSameDir(t, before, snapshotDir(t, parent))
}
