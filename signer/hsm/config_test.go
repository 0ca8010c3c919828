package hsm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	slot := uint(3)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty means valid
	}{
		{"label and pin", Config{Module: "/m.so", TokenLabel: "dc1", PIN: "1"}, ""},
		{"slot and pin file", Config{Module: "/m.so", Slot: &slot, PINFile: "/p"}, ""},
		{"max sessions bound", Config{Module: "/m.so", TokenLabel: "dc1", PIN: "1", MaxSessions: MaxMaxSessions}, ""},
		{"no module", Config{TokenLabel: "dc1", PIN: "1"}, "module"},
		{"no token", Config{Module: "/m.so", PIN: "1"}, "token_label or slot is required"},
		{"label and slot", Config{Module: "/m.so", TokenLabel: "dc1", Slot: &slot, PIN: "1"}, "mutually exclusive"},
		{"label too long", Config{Module: "/m.so", TokenLabel: strings.Repeat("x", 33), PIN: "1"}, "at most 32"},
		{"label not utf8", Config{Module: "/m.so", TokenLabel: "\xff", PIN: "1"}, "UTF-8"},
		{"no pin", Config{Module: "/m.so", TokenLabel: "dc1"}, "pin_file"},
		{"pin and pin file", Config{Module: "/m.so", TokenLabel: "dc1", PIN: "1", PINFile: "/p"}, "mutually exclusive"},
		{"negative sessions", Config{Module: "/m.so", TokenLabel: "dc1", PIN: "1", MaxSessions: -1}, "max_sessions"},
		{"too many sessions", Config{Module: "/m.so", TokenLabel: "dc1", PIN: "1", MaxSessions: MaxMaxSessions + 1}, "max_sessions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantErr(t, err, ErrConfig)
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadPIN(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: file absent
		mode    os.FileMode
		want    string
		wantErr bool
	}{
		{"plain", ptr("1234"), 0o600, "1234", false},
		{"trailing newline", ptr("1234\n"), 0o600, "1234", false},
		{"trailing crlf", ptr("1234\r\n"), 0o600, "1234", false},
		{"spaces kept", ptr(" 12 34 \n"), 0o600, " 12 34 ", false},
		{"readable by others still works", ptr("1234"), 0o644, "1234", false},
		{"empty", ptr(""), 0o600, "", true},
		{"only newline", ptr("\n"), 0o600, "", true},
		{"two lines", ptr("1234\n5678\n"), 0o600, "", true},
		{"too large", ptr(strings.Repeat("9", maxPINFileSize+1)), 0o600, "", true},
		{"missing", nil, 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pin")
			if tc.content != nil {
				if err := os.WriteFile(path, []byte(*tc.content), tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			cfg := Config{Module: "/m.so", TokenLabel: "x", PINFile: path}
			got, err := cfg.readPIN(cfg.logger())
			if tc.wantErr {
				wantErr(t, err, ErrConfig)
				return
			}
			if err != nil {
				t.Fatalf("readPIN: %v", err)
			}
			if got != tc.want {
				t.Fatalf("PIN %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadPINDirectory(t *testing.T) {
	cfg := Config{Module: "/m.so", TokenLabel: "x", PINFile: t.TempDir()}
	_, err := cfg.readPIN(cfg.logger())
	wantErr(t, err, ErrConfig)
}

func ptr[T any](v T) *T { return &v }

func TestParseAlgorithm(t *testing.T) {
	for _, a := range []Algorithm{Ed25519, Secp256k1, P256} {
		got, err := ParseAlgorithm(a.String())
		if err != nil || got != a {
			t.Fatalf("ParseAlgorithm(%q) = %v, %v", a.String(), got, err)
		}
	}
	for _, s := range []string{"", "unknown", "ED25519", "rsa"} {
		if _, err := ParseAlgorithm(s); err == nil {
			t.Fatalf("ParseAlgorithm(%q) succeeded", s)
		}
	}
}
