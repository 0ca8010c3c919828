package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regent-signer/regent/signer/eth2"
)

func requestFile(name string) string {
	return filepath.Join("..", "..", "signer", "eth2", "testdata", "requests", name)
}

// rootOf is the signing root package eth2 computes for a request file.
func rootOf(t *testing.T, name string, n *eth2.Network) string {
	t.Helper()
	body, err := os.ReadFile(requestFile(name))
	if err != nil {
		t.Fatal(err)
	}
	var req *eth2.Request
	if n != nil {
		req, err = eth2.DecodeForNetwork(body, *n)
	} else {
		req, err = eth2.Decode(body)
	}
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := req.SigningRoot()
	if err != nil {
		t.Fatal(err)
	}
	return eth2.Root(root).String()
}

func runCtl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	t.Setenv("REGENTCTL_OUTPUT", "")
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestEth2SigningRootJSON(t *testing.T) {
	mainnet := eth2.Mainnet()
	for _, row := range []struct {
		file    string
		network string
		n       *eth2.Network
		slot    bool
		votes   bool
	}{
		{file: "attestation.json", votes: true},
		{file: "attestation_no_signing_root.json", network: "mainnet", n: &mainnet, votes: true},
		{file: "block_v2_deneb.json", network: "mainnet", n: &mainnet, slot: true},
		{file: "voluntary_exit.json", network: "mainnet", n: &mainnet},
		{file: "randao_reveal.json"},
	} {
		t.Run(row.file, func(t *testing.T) {
			args := []string{"eth2", "signing-root", "--request", requestFile(row.file), "--output", "json"}
			if row.network != "" {
				args = append(args, "--network", row.network)
			}
			out, err := runCtl(t, "", args...)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if want := rootOf(t, row.file, row.n); got["signing_root"] != want {
				t.Fatalf("signing_root %v, eth2 computes %s", got["signing_root"], want)
			}
			for _, k := range []string{"domain", "fork_version", "type"} {
				if s, _ := got[k].(string); s == "" {
					t.Errorf("%s missing: %s", k, out)
				}
			}
			if _, ok := got["slot"]; ok != row.slot {
				t.Errorf("slot present=%v: %s", ok, out)
			}
			_, src := got["source_epoch"]
			_, tgt := got["target_epoch"]
			if src != row.votes || tgt != row.votes {
				t.Errorf("epochs present=%v/%v: %s", src, tgt, out)
			}
		})
	}
}

func TestEth2SigningRootText(t *testing.T) {
	body, err := os.ReadFile(requestFile("block_v2_deneb.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCtl(t, string(body), "eth2", "signing-root", "--request", "-", "--network", "mainnet")
	if err != nil {
		t.Fatal(err)
	}
	mainnet := eth2.Mainnet()
	if !strings.Contains(out, "signing root:") || !strings.Contains(out, rootOf(t, "block_v2_deneb.json", &mainnet)) ||
		!strings.Contains(out, "block slot=8630273") || !strings.Contains(out, "fork version:") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestEth2SigningRootBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"type":"ATTESTATION"`), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), eth2.MaxBodyBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, row := range []struct {
		name string
		args []string
		is   error
		msg  string
	}{
		{name: "no request", args: []string{}, msg: "--request"},
		{name: "missing file", args: []string{"--request", filepath.Join(dir, "nope.json")}, msg: "nope.json"},
		{name: "malformed", args: []string{"--request", bad}, is: eth2.ErrMalformed},
		{name: "too large", args: []string{"--request", big}, is: eth2.ErrTooLarge},
		{name: "exit needs a network", args: []string{"--request", requestFile("voluntary_exit.json")}, is: eth2.ErrNetworkRequired, msg: "--network"},
		{name: "unknown network", args: []string{"--request", requestFile("attestation.json"), "--network", "gnosis"}, msg: "--network"},
		{name: "other network", args: []string{"--request", requestFile("voluntary_exit_hoodi.json"), "--network", "mainnet"}, is: eth2.ErrWrongNetwork},
	} {
		t.Run(row.name, func(t *testing.T) {
			out, err := runCtl(t, "", append([]string{"eth2", "signing-root"}, row.args...)...)
			if err == nil {
				t.Fatalf("no error; output %q", out)
			}
			var ec exitCode
			if errors.As(err, &ec) {
				t.Fatalf("exit code %d instead of the usage/local-error exit 1", ec)
			}
			if row.is != nil && !errors.Is(err, row.is) {
				t.Fatalf("error %v does not wrap %v", err, row.is)
			}
			if !strings.Contains(err.Error(), row.msg) {
				t.Fatalf("error %q lacks %q", err, row.msg)
			}
			if out != "" {
				t.Fatalf("printed %q on error", out)
			}
		})
	}
}
