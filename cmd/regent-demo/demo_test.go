package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDemoWithRealProcesses builds regent and regentctl and runs the whole
// demo story: three region processes with their own SoftHSM2 tokens over
// mutual TLS, keys imported once and sealed by every HSM, signing through
// the Web3Signer API, a planned handover with two operator approvals gated
// on a simulated chain's finality, a DR takeover after SIGKILL of the
// holder, and the audit chain verified. The demo checks every claim it
// prints; the test checks the story reached its end.
func TestDemoWithRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs three processes")
	}
	if _, err := os.Stat("/usr/lib/softhsm/libsofthsm2.so"); err != nil {
		t.Skip("SoftHSM2 is not installed (make deps installs it)")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-tags", "hashicorpmetrics", "-o", bin+"/",
		"github.com/regent-signer/regent/cmd/regent", "github.com/regent-signer/regent/cmd/regentctl")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	var out strings.Builder
	d := &demo{bin: bin, dir: t.TempDir(), out: &out}
	err := d.run()
	d.stopAll()
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DEMO OK", "dc2 holds the lease at epoch 2", "activated at epoch 3", "Signing lease: ACTIVE, held by dc3 at epoch 3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
