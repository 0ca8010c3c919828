package privval

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigValidate(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	nodeKey := key.Public().(ed25519.PublicKey)
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"tcp with any node key", func(*Config) {}, true},
		{"tcp with an allowlist", func(c *Config) { c.AcceptAnyNodeKey = false; c.AllowedNodeKeys = []ed25519.PublicKey{nodeKey} }, true},
		{"unix without keys", func(c *Config) { c.Address = "unix:///tmp/x.sock"; c.AcceptAnyNodeKey = false; c.ConnKey = nil }, true},
		{"no scheme", func(c *Config) { c.Address = "127.0.0.1:26659" }, false},
		{"http scheme", func(c *Config) { c.Address = "http://127.0.0.1:26659" }, false},
		{"tcp without port", func(c *Config) { c.Address = "tcp://127.0.0.1" }, false},
		{"tcp without host", func(c *Config) { c.Address = "tcp://:26659" }, false},
		{"unix without path", func(c *Config) { c.Address = "unix://"; c.AcceptAnyNodeKey = false; c.ConnKey = nil }, false},
		{"empty chain id", func(c *Config) { c.ChainID = "" }, false},
		{"chain id over 50 bytes", func(c *Config) { c.ChainID = strings.Repeat("c", 51) }, false},
		{"caller over 63 bytes", func(c *Config) { c.Caller = strings.Repeat("c", 64) }, false},
		{"tcp without a connection key", func(c *Config) { c.ConnKey = nil }, false},
		{"tcp with a truncated connection key", func(c *Config) { c.ConnKey = c.ConnKey[:32] }, false},
		{"tcp with neither node policy", func(c *Config) { c.AcceptAnyNodeKey = false }, false},
		{"tcp with both node policies", func(c *Config) { c.AllowedNodeKeys = []ed25519.PublicKey{nodeKey} }, false},
		{"allowlisted key of 31 bytes", func(c *Config) { c.AcceptAnyNodeKey = false; c.AllowedNodeKeys = []ed25519.PublicKey{nodeKey[:31]} }, false},
		{"unix with an allowlist", func(c *Config) {
			c.Address = "unix:///tmp/x.sock"
			c.AcceptAnyNodeKey = false
			c.AllowedNodeKeys = []ed25519.PublicKey{nodeKey}
		}, false},
		{"unix accepting any key", func(c *Config) { c.Address = "unix:///tmp/x.sock" }, false},
		{"zero dial timeout", func(c *Config) { c.DialTimeout = 0 }, false},
		{"negative request timeout", func(c *Config) { c.RequestTimeout = -time.Second }, false},
		{"zero handshake timeout", func(c *Config) { c.HandshakeTimeout = 0 }, false},
		{"zero write timeout", func(c *Config) { c.WriteTimeout = 0 }, false},
		{"backoff max below min", func(c *Config) { c.BackoffMax = c.BackoffMin / 2 }, false},
		{"negative idle timeout", func(c *Config) { c.IdleTimeout = -1 }, false},
		{"yield without a duration", func(c *Config) { c.YieldFor = 0 }, false},
		{"negative yield count", func(c *Config) { c.YieldAfter = -1 }, false},
		{"yield disabled", func(c *Config) { c.YieldAfter = 0; c.YieldFor = 0 }, true},
		{"ready with a poll interval", func(c *Config) { c.Ready = func() error { return nil } }, true},
		{"ready without a poll interval", func(c *Config) { c.Ready = func() error { return nil }; c.ReadyPoll = 0 }, false},
		{"tiny message limit", func(c *Config) { c.MaxMessageSize = 100 }, false},
		{"huge message limit", func(c *Config) { c.MaxMessageSize = 1 << 30 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig("tcp://127.0.0.1:26659", ed25519.NewKeyFromSeed(make([]byte, 32)))
			tc.mutate(&c)
			err := c.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			if _, err2 := New(c, newEnv(t, true, allTypes()).backend()); (err2 == nil) != tc.ok {
				t.Fatalf("New() = %v, want ok=%v", err2, tc.ok)
			}
		})
	}
	if _, err := New(testConfig("tcp://127.0.0.1:1", key), nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("New without a backend: %v", err)
	}
}

func TestNewDefaultsTheCallerIdentity(t *testing.T) {
	s, err := New(testConfig("tcp://127.0.0.1:1", newConnKey(t)), newEnv(t, true, allTypes()).backend())
	if err != nil {
		t.Fatal(err)
	}
	if s.h.caller.Name != "cometbft-"+testChain {
		t.Fatalf("caller %q", s.h.caller.Name)
	}
}

func TestConnKeyFiles(t *testing.T) {
	k := ed25519.NewKeyFromSeed(validatorSeed())
	nodeKeyJSON := func(raw []byte, typ string) string {
		return fmt.Sprintf(`{"priv_key":{"type":%q,"value":%q}}`, typ, base64.StdEncoding.EncodeToString(raw))
	}
	mismatched := append(append([]byte(nil), k[:32]...), make([]byte, 32)...)
	tests := []struct {
		name    string
		content func(dir string) string // file content; "" means use WriteConnKey
		mode    os.FileMode
		ok      bool
	}{
		{"PKCS#8 PEM written by WriteConnKey", nil, 0o600, true},
		{"CometBFT node_key.json", func(string) string { return nodeKeyJSON(k, "tendermint/PrivKeyEd25519") }, 0o600, true},
		{"readable by group", func(string) string { return nodeKeyJSON(k, "tendermint/PrivKeyEd25519") }, 0o640, false},
		{"readable by others", nil, 0o604, false},
		{"node_key.json with a secp256k1 key", func(string) string { return nodeKeyJSON(k, "tendermint/PrivKeySecp256k1") }, 0o600, false},
		{"node_key.json with a 32-byte value", func(string) string { return nodeKeyJSON(k[:32], "tendermint/PrivKeyEd25519") }, 0o600, false},
		{"node_key.json whose halves disagree", func(string) string { return nodeKeyJSON(mismatched, "tendermint/PrivKeyEd25519") }, 0o600, false},
		{"node_key.json with an unknown field", func(string) string {
			return `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"` + base64.StdEncoding.EncodeToString(k) + `"},"x":1}`
		}, 0o600, false},
		{"PEM of another type", func(string) string {
			return "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
		}, 0o600, false},
		{"garbage", func(string) string { return "not a key" }, 0o600, false},
		{"empty file", func(string) string { return "" }, 0o600, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "conn.key")
			if tc.content == nil {
				if err := WriteConnKey(path, k); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, []byte(tc.content(dir)), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			got, err := LoadConnKey(path)
			if tc.ok {
				if err != nil || !got.Equal(k) {
					t.Fatalf("LoadConnKey = %v; equal %v", err, got.Equal(k))
				}
				return
			}
			if !errors.Is(err, ErrKeyFile) || got != nil {
				t.Fatalf("LoadConnKey = %x, %v; want ErrKeyFile", got, err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if _, err := LoadConnKey(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, ErrKeyFile) {
			t.Fatal(err)
		}
	})
	t.Run("a directory", func(t *testing.T) {
		dir := t.TempDir()
		_ = os.Chmod(dir, 0o700)
		if _, err := LoadConnKey(dir); !errors.Is(err, ErrKeyFile) {
			t.Fatal(err)
		}
	})
	t.Run("WriteConnKey refuses to overwrite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "k")
		if err := WriteConnKey(path, k); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		if err := WriteConnKey(path, newConnKey(t)); !errors.Is(err, ErrKeyFile) {
			t.Fatalf("second write: %v", err)
		}
		after, _ := os.ReadFile(path)
		if string(before) != string(after) {
			t.Fatal("the existing key file changed")
		}
	})
}

func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); !errors.Is(err, ErrConfig) {
		t.Fatalf("second registration: %v", err)
	}
	if _, err := NewMetrics(nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("nil registry: %v", err)
	}
}
