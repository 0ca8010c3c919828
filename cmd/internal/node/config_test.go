package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const goodConfig = `node_id: dc1
data_dir: /tmp/x
raft:
  bind: 127.0.0.1:7000
api:
  grpc: 127.0.0.1:7100
tls:
  ca: ca.crt
  cert: dc1.crt
  key: dc1.key
initial_lease_holder: dc1
peers:
  - {id: dc1, address: "127.0.0.1:7000"}
  - {id: dc2, address: "127.0.0.1:7001"}
  - {id: dc3, address: "127.0.0.1:7002"}
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		env     map[string]string
		flags   map[string]string
		wantErr string // substring naming the problem; "" means success
		check   func(t *testing.T, c *Config)
	}{
		{name: "good", body: goodConfig, check: func(t *testing.T, c *Config) {
			if c.Region != "dc1" || c.Raft.Advertise != "127.0.0.1:7000" || c.RaftProfile != "wan" || c.LogLevel != "info" {
				t.Fatalf("defaults not applied: %+v", c)
			}
		}},
		{name: "env overrides file", body: goodConfig, env: map[string]string{"REGENT_LOG_LEVEL": "debug"}, check: func(t *testing.T, c *Config) {
			if c.LogLevel != "debug" {
				t.Fatalf("log level %q", c.LogLevel)
			}
		}},
		{name: "flag overrides env", body: goodConfig, env: map[string]string{"REGENT_LOG_LEVEL": "debug"}, flags: map[string]string{"log-level": "warn"},
			check: func(t *testing.T, c *Config) {
				if c.LogLevel != "warn" {
					t.Fatalf("log level %q", c.LogLevel)
				}
			}},
		{name: "unknown yaml field", body: goodConfig + "bogus: 1\n", wantErr: "field bogus not found"},
		{name: "malformed yaml", body: "node_id: [", wantErr: "c.yaml"},
		{name: "missing node id", body: strings.Replace(goodConfig, "node_id: dc1", "", 1), wantErr: "node_id is required"},
		{name: "missing tls", body: strings.Replace(goodConfig, "  key: dc1.key\n", "", 1), wantErr: "tls.key is required"},
		{name: "bad address", body: strings.Replace(goodConfig, "bind: 127.0.0.1:7000", "bind: nowhere", 1), wantErr: "raft.bind"},
		{name: "unspecified advertise", body: goodConfig, flags: map[string]string{"raft-bind": "0.0.0.0:7000"}, wantErr: "not unspecified"},
		{name: "node not a peer", body: goodConfig, flags: map[string]string{"node-id": "dc9"}, wantErr: `node_id "dc9" is not among the peers`},
		{name: "advertise differs from peer entry", body: goodConfig, flags: map[string]string{"raft-advertise": "127.0.0.1:9999"}, wantErr: "differs from raft.advertise"},
		{name: "duplicate peer", body: goodConfig + "  - {id: dc2, address: \"127.0.0.1:7003\"}\n", wantErr: "listed twice"},
		{name: "lease holder not a peer", body: goodConfig, flags: map[string]string{"initial-lease-holder": "dc7"}, wantErr: "initial_lease_holder"},
		{name: "bad log level", body: goodConfig, flags: map[string]string{"log-level": "loud"}, wantErr: "log_level"},
		{name: "bad profile", body: goodConfig, flags: map[string]string{"raft-profile": "fast"}, wantErr: "raft_profile"},
		{name: "signing without hsm", body: goodConfig, flags: map[string]string{"signing-http": "127.0.0.1:9000", "network": "mainnet"}, wantErr: "needs an hsm"},
		{name: "signing without network", body: goodConfig, flags: map[string]string{"signing-http": "127.0.0.1:9000",
			"hsm-module": "/usr/lib/softhsm/libsofthsm2.so", "hsm-token-label": "t", "hsm-pin-file": "p"}, wantErr: "network"},
		{name: "hsm without pin file", body: goodConfig, flags: map[string]string{"hsm-module": "/m.so", "hsm-token-label": "t"}, wantErr: "hsm.pin_file is required"},
		{name: "privval bad address", body: goodConfig + "hsm: {module: /m.so, token_label: t, pin_file: p}\nprivval:\n  - {chain_id: c, address: \"127.0.0.1:26659\"}\n", wantErr: "want tcp://host:port"},
		{name: "privval tcp without allowlist", body: goodConfig + "hsm: {module: /m.so, token_label: t, pin_file: p}\nprivval:\n  - {chain_id: c, address: \"tcp://127.0.0.1:26659\"}\n", wantErr: "node_keys"},
		{name: "signing configured", body: goodConfig, flags: map[string]string{"signing-http": "127.0.0.1:9000", "network": "mainnet",
			"hsm-module": "/m.so", "hsm-token-label": "t", "hsm-pin-file": "p"}, check: func(t *testing.T, c *Config) {
			if !c.Signs() || c.Signing.HTTP != "127.0.0.1:9000" {
				t.Fatalf("signing not configured: %+v", c)
			}
		}},
		{name: "unknown flag", body: goodConfig, flags: map[string]string{"colour": "red"}, wantErr: "unknown setting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.body)
			c, err := LoadConfig(p, func(k string) string { return tc.env[k] }, tc.flags)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, c)
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "absent.yaml"), func(string) string { return "" }, nil)
	if !errors.Is(err, ErrConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestStartRefusesMissingTLSFiles(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, goodConfig), func(string) string { return "" }, map[string]string{"data-dir": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c.TLS.CA, c.TLS.Cert, c.TLS.Key = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "dc1.crt"), filepath.Join(dir, "dc1.key")
	_, err = Start(c, Options{})
	if err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Fatalf("err = %v, want a clear error naming ca.crt", err)
	}
	if entries, _ := os.ReadDir(c.DataDir); len(entries) != 0 {
		t.Fatalf("a refused start wrote %d files to the data dir", len(entries))
	}
}

// TestExampleConfigFields: every field of the shipped example config is a
// real setting (decoded strictly; files it names need not exist here).
func TestExampleConfigFields(t *testing.T) {
	b, err := os.ReadFile("../../../deploy/config/dc1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "dc1" || !c.Signs() || len(c.Privval) != 1 || c.Failover.OperatorsFile == "" || len(c.Failover.Finality.Eth) != 1 {
		t.Fatalf("example config decoded to %+v", c)
	}
}
