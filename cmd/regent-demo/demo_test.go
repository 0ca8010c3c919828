package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoWithRealProcesses builds regent and regentctl and runs the demo
// story with a small validator set: three region processes over mutual
// TLS, SIGKILL of the lease holder, verification that the survivors hold
// every acknowledged record, restart and catch-up. Every claim the demo
// prints is checked by the demo itself.
func TestDemoWithRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs three processes")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-tags", "hashicorpmetrics", "-o", bin+"/",
		"github.com/regent-signer/regent/cmd/regent", "github.com/regent-signer/regent/cmd/regentctl")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	var out strings.Builder
	d := &demo{bin: bin, dir: t.TempDir(), out: &out, validators: 40, epochs: 2}
	err := d.run()
	d.stopAll()
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"holds 144 of 144 acknowledged records", "DEMO OK", "does not hold the signing lease",
		"Signing lease: ACTIVE, held by dc1 at epoch 1", "Regions reachable: 2 of 3; majority: yes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(d.dir, "data", "dc1", "raft.db")); err != nil {
		t.Errorf("no bolt file for dc1: %v", err)
	}
}
