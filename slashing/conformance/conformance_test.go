package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/eth"
)

// stateTarget runs cases directly against the rule engine.
type stateTarget struct{ s *eth.State }

func newStateTarget() (Target, error) {
	s, err := eth.NewState(eth.Options{})
	if err != nil {
		return nil, err
	}
	return &stateTarget{s: s}, nil
}

func (t *stateTarget) Import(raw []byte, gvr eth.Root) error {
	ic, err := eth.DecodeInterchange(raw)
	if err != nil {
		return err
	}
	return t.s.Import(ic, gvr)
}

func (t *stateTarget) SignBlock(gvr eth.Root, pk eth.Pubkey, slot uint64, root eth.Root) (slashing.Result, error) {
	return t.s.RecordBlock(gvr, pk, slot, root), nil
}

func (t *stateTarget) SignAttestation(gvr eth.Root, pk eth.Pubkey, source, target uint64, root eth.Root) (slashing.Result, error) {
	return t.s.RecordAttestation(gvr, pk, source, target, root), nil
}

func TestTestdataPasses(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := Run("testdata", newStateTarget, &out)
	if err != nil {
		t.Fatal(err)
	}
	if failed != 0 {
		t.Fatalf("%d cases failed:\n%s", failed, out.String())
	}
	if passed < 25 {
		t.Fatalf("only %d cases", passed)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != passed+1 {
		t.Fatalf("%d report lines for %d cases", len(lines), passed)
	}
	for _, l := range lines[:passed] {
		if !strings.HasPrefix(l, "PASS ") {
			t.Fatalf("line %q", l)
		}
	}
	if want := itoa(passed) + " passed, 0 failed"; lines[passed] != want {
		t.Fatalf("last line %q, want %q", lines[passed], want)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// editCase copies testdata/<name>.json into dir after applying edit to its
// decoded JSON.
func editCase(t *testing.T, dir, name string, edit func(c map[string]any)) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func item(c map[string]any, stepIdx int, kind string, idx int) map[string]any {
	return c["steps"].([]any)[stepIdx].(map[string]any)[kind].([]any)[idx].(map[string]any)
}

func stepOf(c map[string]any, stepIdx int) map[string]any {
	return c["steps"].([]any)[stepIdx].(map[string]any)
}

func runDir(t *testing.T, dir string, nt NewTarget) (int, int, string) {
	t.Helper()
	var out bytes.Buffer
	p, f, err := Run(dir, nt, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	return p, f, out.String()
}

// TestWrongExpectationFails flips single expectations in copies of good
// cases and checks each yields a FAIL line naming the step and item.
func TestWrongExpectationFails(t *testing.T) {
	tests := []struct {
		name, file string
		edit       func(c map[string]any)
		want       string
	}{
		{
			name: "block expected accepted but double proposal", file: "block_double_proposal",
			edit: func(c map[string]any) { item(c, 0, "blocks", 0)["should_succeed_complete"] = true },
			want: "FAIL block_double_proposal: step 0 block 0 (slot 20): expected accepted, got denied (block_double_proposal: slot 20 already signed",
		},
		{
			name: "attestation expected denied but accepted", file: "attestation_surrounded",
			edit: func(c map[string]any) { item(c, 0, "attestations", 3)["should_succeed_complete"] = false },
			want: "FAIL attestation_surrounded: step 0 attestation 3 (source 11, target 21): expected denied, got accepted",
		},
		{
			name: "failing import expected to succeed", file: "import_wrong_genesis_validators_root",
			edit: func(c map[string]any) { stepOf(c, 0)["should_succeed"] = true },
			want: "FAIL import_wrong_genesis_validators_root: step 0 import: expected success, got slashing: genesis validators root mismatch",
		},
		{
			name: "good import expected to fail", file: "block_double_proposal",
			edit: func(c map[string]any) { stepOf(c, 0)["should_succeed"] = false },
			want: "FAIL block_double_proposal: step 0 import: expected refusal, got success",
		},
		{
			name: "complete expectation wins over minimal", file: "block_complete_history_allows_unsigned_slots",
			edit: func(c map[string]any) { item(c, 0, "blocks", 5)["should_succeed_complete"] = false },
			want: "FAIL block_complete_history_allows_unsigned_slots: step 0 block 5 (slot 4): expected denied, got accepted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			editCase(t, dir, tt.file, tt.edit)
			passed, failed, out := runDir(t, dir, newStateTarget)
			if passed != 0 || failed != 1 {
				t.Fatalf("passed %d failed %d:\n%s", passed, failed, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Fatalf("report:\n%s\nwant a line starting %q", out, tt.want)
			}
			if !strings.HasSuffix(out, "\n0 passed, 1 failed\n") {
				t.Fatalf("report does not end with the totals:\n%s", out)
			}
		})
	}
}

// TestFallsBackToShouldSucceed runs a case whose items lack
// should_succeed_complete (as in older public files).
func TestFallsBackToShouldSucceed(t *testing.T) {
	dir := t.TempDir()
	editCase(t, dir, "block_double_proposal", func(c map[string]any) {
		for _, b := range stepOf(c, 0)["blocks"].([]any) {
			delete(b.(map[string]any), "should_succeed_complete")
		}
	})
	if p, f, out := runDir(t, dir, newStateTarget); p != 1 || f != 0 {
		t.Fatalf("passed %d failed %d:\n%s", p, f, out)
	}
	editCase(t, dir, "block_double_proposal", func(c map[string]any) {
		b := item(c, 0, "blocks", 0)
		delete(b, "should_succeed_complete")
		b["should_succeed"] = true
	})
	if p, f, out := runDir(t, dir, newStateTarget); p != 0 || f != 1 {
		t.Fatalf("passed %d failed %d:\n%s", p, f, out)
	}
}

func TestMalformedCaseFiles(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not json", `{`, "FAIL bad.json: conformance: malformed test case"},
		{"no steps", `{"name":"x","genesis_validators_root":"0x` + strings.Repeat("00", 32) + `","steps":[]}`, "FAIL bad.json: conformance: malformed test case: no steps"},
		{"no gvr", `{"name":"x","steps":[]}`, "genesis_validators_root missing"},
		{"bad item pubkey", `{"name":"x","genesis_validators_root":"0x` + strings.Repeat("00", 32) +
			`","steps":[{"should_succeed":true,"interchange":{},"blocks":[{"pubkey":"0x00","slot":"1","should_succeed":true}],"attestations":[]}]}`,
			"steps[0].blocks[0].pubkey"},
		{"negative slot", `{"name":"x","genesis_validators_root":"0x` + strings.Repeat("00", 32) +
			`","steps":[{"should_succeed":true,"interchange":{},"blocks":[{"pubkey":"0x` + strings.Repeat("aa", 48) + `","slot":-1,"should_succeed":true}],"attestations":[]}]}`,
			"not an unsigned integer"},
		{"missing expectation", `{"name":"x","genesis_validators_root":"0x` + strings.Repeat("00", 32) +
			`","steps":[{"should_succeed":true,"interchange":{},"blocks":[{"pubkey":"0x` + strings.Repeat("aa", 48) + `","slot":"1"}],"attestations":[]}]}`,
			"should_succeed_complete (or should_succeed) missing"},
		{"missing interchange", `{"name":"x","genesis_validators_root":"0x` + strings.Repeat("00", 32) +
			`","steps":[{"should_succeed":true,"blocks":[],"attestations":[]}]}`, "steps[0].interchange missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			p, f, out := runDir(t, dir, newStateTarget)
			if p != 0 || f != 1 || !strings.Contains(out, tt.want) {
				t.Fatalf("passed %d failed %d, report:\n%s\nwant %q", p, f, out, tt.want)
			}
		})
	}
}

func TestRunDirectoryErrors(t *testing.T) {
	var out bytes.Buffer
	if _, _, err := Run(filepath.Join(t.TempDir(), "missing"), newStateTarget, &out); err == nil {
		t.Fatal("missing dir accepted")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a case"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	_, _, err := Run(dir, newStateTarget, &out)
	if !errors.Is(err, ErrNoCases) {
		t.Fatalf("got %v", err)
	}
	if out.String() != "0 passed, 0 failed\n" {
		t.Fatalf("report %q", out.String())
	}
}

// fakeTarget lets tests script a Target's misbehaviour.
type fakeTarget struct {
	importErr error
	signErr   error
	panicMsg  string
}

func (f *fakeTarget) Import([]byte, eth.Root) error { return f.importErr }

func (f *fakeTarget) SignBlock(eth.Root, eth.Pubkey, uint64, eth.Root) (slashing.Result, error) {
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	return slashing.Result{Decision: slashing.DecisionAccepted}, f.signErr
}

func (f *fakeTarget) SignAttestation(eth.Root, eth.Pubkey, uint64, uint64, eth.Root) (slashing.Result, error) {
	return slashing.Result{}, f.signErr
}

func TestTargetMisbehaviour(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		target *fakeTarget
		newErr error
		want   string
	}{
		{"sign error", "block_double_proposal", &fakeTarget{signErr: errors.New("no quorum")}, nil, "step 0 block 0 (slot 20): target error: no quorum"},
		{"panic", "block_double_proposal", &fakeTarget{panicMsg: "boom"}, nil, "panic: boom"},
		{"new target fails", "block_double_proposal", nil, errors.New("cannot open"), "new target: cannot open"},
		{"unknown decision is not a refusal", "attestation_double_vote", &fakeTarget{}, nil, "expected denied, got unknown"},
		{"slashable step refused for another reason", "duplicate_pubkeys_slashable_block", &fakeTarget{importErr: errors.New("disk full")}, nil,
			"step 0 import: refused with disk full; a step with contains_slashable_data may only be refused as slashable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			editCase(t, dir, tt.file, func(map[string]any) {})
			nt := func() (Target, error) {
				if tt.newErr != nil {
					return nil, tt.newErr
				}
				return tt.target, nil
			}
			p, f, out := runDir(t, dir, nt)
			if p != 0 || f != 1 || !strings.Contains(out, tt.want) {
				t.Fatalf("passed %d failed %d, report:\n%s\nwant %q", p, f, out, tt.want)
			}
		})
	}
}

// TestSlashableRefusalSkipsRest checks that refusing a contains_slashable_data
// step as slashable passes and skips the remaining checks.
func TestSlashableRefusalSkipsRest(t *testing.T) {
	dir := t.TempDir()
	editCase(t, dir, "duplicate_pubkeys_slashable_block", func(c map[string]any) {
		item(c, 0, "blocks", 0)["should_succeed_complete"] = true // would fail if it ran
	})
	ft := &fakeTarget{importErr: slashing.ErrSlashableImport}
	p, f, out := runDir(t, dir, func() (Target, error) { return ft, nil })
	if p != 1 || f != 0 {
		t.Fatalf("passed %d failed %d:\n%s", p, f, out)
	}
}

// TestAbsentRootsNeverRepeat checks the sentinels stand in for absent roots
// without colliding with roots in the file or with each other.
func TestAbsentRootsNeverRepeat(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "block_absent_root_in_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSentinels(raw)
	inFile := len(s.seen)
	if inFile == 0 {
		t.Fatal("no roots found in the file")
	}
	got := map[eth.Root]bool{}
	for range 100 {
		r := s.next()
		if got[r] {
			t.Fatal("sentinel repeated")
		}
		got[r] = true
	}
	// A sentinel that happens to appear in a file is skipped.
	first := newSentinels(nil).next()
	s2 := newSentinels([]byte(first.String()))
	if s2.next() == first {
		t.Fatal("sentinel present in the file was handed out")
	}
}
