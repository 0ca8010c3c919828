package runbooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const statusDoc = `{"regions":[{"region":"dc1","status":{"lease":{"held_here":false}}},{"region":"dc2","status":{"lease":{"held_here":true}}}],
"lease":{"holder":"dc2","epoch":"2","state":"active"},"reachable":3,"warnings":[],"handovers":[{"id":7},{"id":12}],"ok":true,"none":null}`

func TestValue(t *testing.T) {
	tests := []struct {
		name, stdout, path, want string
		err                      error
	}{
		{"member", statusDoc, ".lease.holder", "dc2", nil},
		{"selector", statusDoc, ".regions[region=dc2].status.lease.held_here", "true", nil},
		{"index", statusDoc, ".regions[0].region", "dc1", nil},
		{"negative index", statusDoc, ".handovers[-1].id", "12", nil},
		{"number", statusDoc, ".reachable", "3", nil},
		{"null", statusDoc, ".none", "null", nil},
		{"object as JSON", statusDoc, ".handovers[0]", `{"id":7}`, nil},
		{"len of array", statusDoc, "len(.regions)", "2", nil},
		{"len of empty array", statusDoc, "len(.warnings)", "0", nil},
		{"root", `"text"`, ".", "text", nil},
		{"last of JSON lines", "{\"state\":\"requested\"}\n{\"state\":\"fenced\"}\n{\"state\":\"completed\"}\n", ".state", "completed", nil},
		{"stdout as text", "hello\n", "stdout", "hello\n", nil},
		{"missing member", statusDoc, ".lease.nope", "", ErrPath},
		{"index out of range", statusDoc, ".handovers[5]", "", ErrPath},
		{"no selected element", statusDoc, ".regions[region=dc9]", "", ErrPath},
		{"member of an array", statusDoc, ".regions.region", "", ErrPath},
		{"index into an object", statusDoc, ".lease[0]", "", ErrPath},
		{"len of a number", statusDoc, "len(.reachable)", "", ErrPath},
		{"not JSON", "Signing lease: ACTIVE", ".lease", "", ErrPath},
		{"empty stdout", "", ".lease", "", ErrPath},
		{"bad path", statusDoc, ".lease..holder", "", ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Value(Output{Stdout: []byte(tc.stdout), Combined: []byte(tc.stdout)}, tc.path)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Value(%s) = %q, %v; want an error wrapping %v", tc.path, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Value(%s) = %q, %v; want %q", tc.path, got, err, tc.want)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	out := Output{Stdout: []byte(statusDoc), Combined: []byte(statusDoc + "\nwarning: something on stderr\n")}
	vars := map[string]string{"HOLDER": "dc2", "EPOCH": "2"}
	tests := []struct {
		expr string
		err  error // nil: holds
	}{
		{`.lease.holder == dc2`, nil},
		{`.lease.holder == <HOLDER>`, nil},
		{`.lease.holder != dc1`, nil},
		{`.lease.epoch >= <EPOCH>`, nil},
		{`.lease.epoch > 1`, nil},
		{`.lease.epoch < 3`, nil},
		{`.lease.epoch <= 2`, nil},
		{`output ~ "on stderr"`, nil},
		{`stdout !~ "on stderr"`, nil},
		{`.handovers[-1].id`, nil},
		{`.ok == true`, nil},
		{`.lease.holder == dc1`, ErrExpectation},
		{`.lease.epoch > 2`, ErrExpectation},
		{`.lease.holder >= 1`, ErrExpectation},
		{`output !~ stderr`, ErrExpectation},
		{`.none`, ErrExpectation},
		{`.lease.holder == <UNSAVED>`, ErrPlaceholder},
		{`.nope == 1`, ErrPath},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := ParseExpectation(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			err = Evaluate(e, out, vars)
			if tc.err == nil && err != nil {
				t.Fatalf("does not hold: %v", err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.err)
			}
		})
	}
}

func TestNormalizeAndMatchExcerpt(t *testing.T) {
	output := `REGION  REACHABLE  RAFT      TERM  COMMIT  APPLIED  LEASE                KEYS
dc1     yes        Leader    3     129     129      active dc2@2         2
dc2     yes        Follower  3     128     128      active dc2@2 (here)  2

Signing lease: ACTIVE, held by dc2 at epoch 2 (since log index 57). Only dc2 may sign.
handover 57: completed at 2025-11-21T18:04:05.123Z, evidence 0x4b363db94e286120 digest 9f86d081884c7d659a2feaa0c55ad015
took 1.25s`
	tests := []struct {
		name    string
		excerpt []string
		ok      bool
	}{
		{"numbers, widths, hex and times vary", []string{
			"dc2 yes Follower 7 12 12 active dc2@2 (here) 2",
			"...",
			"Signing lease: ACTIVE, held by dc2 at epoch 3 (since log index 9). Only dc2 may sign.",
			"handover 9: completed at 2024-01-01T00:00:00Z, evidence 0xabcdef digest 0123456789abcdef0123",
			"took 2.5s"}, true},
		{"a part of a line", []string{"held by dc2 at epoch 3"}, true},
		{"Raft roles are the elections' business", []string{"dc2 yes Leader 3 128 128 active dc2@2 (here) 2"}, true},
		{"region names are not numbers", []string{"held by dc1 at epoch 2"}, false},
		{"order matters", []string{"Signing lease", "REGION"}, false},
		{"elision only", []string{"..."}, true},
		{"absent line", []string{"FENCED"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := MatchExcerpt(tc.excerpt, output)
			if tc.ok != (err == nil) {
				t.Fatalf("MatchExcerpt = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrExpectation) {
				t.Fatalf("error %v does not wrap ErrExpectation", err)
			}
		})
	}
	// Durations vary in unit as well as value.
	for _, d := range []string{"1.25s", "300ms", "2m3.5s", "15µs"} {
		if got := Normalize("[" + d + "] took " + d); got != "[DUR] took DUR" {
			t.Errorf("Normalize(%q) = %q", d, got)
		}
	}
	if got := Normalize("dc2@2 3s2 0x12s"); got != "dc2@N Ns2 HEXs" {
		t.Errorf("Normalize of things that are not durations = %q", got)
	}
	if got, want := Normalize("  a   dc2@2  epoch=17 0x12ab  "), "a dc2@N epoch=N HEX"; got != want {
		t.Errorf("Normalize = %q, want %q", got, want)
	}
}

func TestFill(t *testing.T) {
	got, err := Fill("regentctl handover approve <ID> --reason <WHY> <ID>", map[string]string{"ID": "42", "WHY": "x"})
	if err != nil || got != "regentctl handover approve 42 --reason x 42" {
		t.Fatalf("Fill = %q, %v", got, err)
	}
	if _, err := Fill("a <MISSING> <ALSO>", nil); !errors.Is(err, ErrPlaceholder) || !strings.Contains(err.Error(), "<MISSING>, <ALSO>") {
		t.Fatalf("Fill with missing names: %v", err)
	}
	if got, err := Fill("cat <<EOF <lower> < file", nil); err != nil || got != "cat <<EOF <lower> < file" {
		t.Fatalf("Fill touched what is not a placeholder: %q, %v", got, err)
	}
}

// runnerFor runs steps in a temporary directory with a plain environment.
func runnerFor(t *testing.T) *Runner {
	dir := t.TempDir()
	return &Runner{
		Env: func(host string) ([]string, error) {
			if host == "nowhere" {
				return nil, errors.New("no such host")
			}
			return []string{"PATH=" + os.Getenv("PATH"), "HOST=" + host}, nil
		},
		Dir: dir, Timeout: 10 * time.Second, Pause: 10 * time.Millisecond,
	}
}

func parseOne(t *testing.T, md string) Step {
	t.Helper()
	rb, err := Parse("r.md", []byte(md))
	if err != nil {
		t.Fatal(err)
	}
	return rb.Scenes[0].Steps[0]
}

func TestRunner(t *testing.T) {
	tests := []struct {
		name string
		md   string
		ok   bool
		want string // in the error, or in the last output
	}{
		{"exit status and expectations hold", "```sh\n$ echo '{\"a\":{\"b\":2}}'; echo err >&2   # expect: .a.b == 2, output ~ err\nerr\n```\n", true, "err"},
		{"host environment", "```sh\ndc2# echo \"on $HOST\"\non dc2\n```\n", true, "on dc2"},
		{"expected non-zero exit", "```sh\n$ exit 2   # exit: 2\n```\n", true, ""},
		{"unexpected exit", "```sh\n$ echo out; exit 3\n```\n", false, "exit status 3, want 0"},
		{"pipefail", "```sh\n$ false | cat\n```\n", false, "exit status 1, want 0"},
		{"expectation fails", "```sh\n$ echo '{\"a\":1}'   # expect: .a == 2\n```\n", false, `.a == "2", got "1"`},
		{"excerpt fails", "```sh\n$ echo hello\ngoodbye\n```\n", false, `excerpt line "goodbye"`},
		{"retry until it holds", "```sh\n$ n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; echo \"{\\\"n\\\": $n}\"   # expect: .n >= 3; retry: 10s\n```\n", true, ""},
		{"retry gives up", "```sh\n$ echo '{\"n\":0}'   # expect: .n == 1; retry: 100ms\n```\n", false, "attempts over 100ms"},
		{"unknown host", "```sh\nnowhere# true\n```\n", false, "no such host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runnerFor(t)
			res, err := r.Run(context.Background(), "r.md", parseOne(t, tc.md))
			if tc.ok != (err == nil) {
				t.Fatalf("Run = %v (output %q), want ok=%v", err, res.Output.Combined, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrRun) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "r.md:") {
					t.Fatalf("error %q: want ErrRun naming the line and %q", err, tc.want)
				}
				return
			}
			if !strings.Contains(string(res.Output.Combined), tc.want) {
				t.Fatalf("output %q does not contain %q", res.Output.Combined, tc.want)
			}
		})
	}
}

func TestRunnerSavesForLaterSteps(t *testing.T) {
	r := runnerFor(t)
	rb, err := Parse("r.md", []byte("```sh\n$ echo '{\"handover_id\": 42}'   # save: ID = .handover_id\n$ echo \"approve <ID>\"   # expect: output ~ \"approve 42\"\n```\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range rb.Scenes[0].Steps {
		if _, err := r.Run(context.Background(), "r.md", st); err != nil {
			t.Fatal(err)
		}
	}
	if r.Vars["ID"] != "42" {
		t.Fatalf("saved %v", r.Vars)
	}
	// A save whose path does not resolve fails the step and saves nothing.
	r2 := runnerFor(t)
	st := parseOne(t, "```sh\n$ echo '{}'   # save: ID = .handover_id\n```\n")
	if _, err := r2.Run(context.Background(), "r.md", st); !errors.Is(err, ErrRun) || !errors.Is(err, ErrPath) {
		t.Fatalf("Run = %v, want ErrRun wrapping ErrPath", err)
	}
	if _, ok := r2.Vars["ID"]; ok {
		t.Fatal("a failed save stored a value")
	}
}

func TestRunnerFoldsPaths(t *testing.T) {
	r := runnerFor(t)
	r.Fold = []string{"WORK", "HOST"}
	base := r.Env
	r.Env = func(host string) ([]string, error) {
		env, err := base(host)
		return append(env, "WORK=/tmp/x/work", "NOTFOLDED=/tmp/x"), err
	}
	st := parseOne(t, "```sh\n$ echo wrote /tmp/x/work/a.json to /tmp/x/b   # expect: output ~ /tmp/x/work/a.json\nwrote $WORK/a.json to /tmp/x/b\n```\n")
	res, err := r.Run(context.Background(), "r.md", st)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refreshed) != 1 || res.Refreshed[0] != "wrote $WORK/a.json to /tmp/x/b" {
		t.Fatalf("refreshed %q", res.Refreshed)
	}
}

func TestRunnerTranscript(t *testing.T) {
	r := runnerFor(t)
	var b strings.Builder
	r.Transcript = &b
	if _, err := r.Run(context.Background(), "r.md", parseOne(t, "```sh\n$ echo hi\n```\n")); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "$ echo hi\nhi\n[exit 0, attempt 1: ok]") {
		t.Fatalf("transcript %q", got)
	}
	if _, err := os.Stat(filepath.Join(r.Dir)); err != nil {
		t.Fatal(err)
	}
}

// FuzzValue: any path against any stdout either resolves or fails with a
// sentinel; it never panics.
func FuzzValue(f *testing.F) {
	f.Add([]byte(statusDoc), ".regions[region=dc2].status.lease.held_here")
	f.Add([]byte("{\"a\":[1,2]}\n{\"a\":[3]}"), "len(.a)")
	f.Add([]byte("[]"), ".[-1]")
	f.Add([]byte("not json"), ".a")
	f.Add([]byte(`{"a":{"b":null}}`), ".a.b[k=]")
	f.Fuzz(func(t *testing.T, stdout []byte, path string) {
		_, err := Value(Output{Stdout: stdout, Combined: stdout}, path)
		if err != nil && !errors.Is(err, ErrPath) && !errors.Is(err, ErrSyntax) {
			t.Fatalf("Value(%q): error wraps no sentinel: %v", path, err)
		}
	})
}

func TestSignerChanges(t *testing.T) {
	tests := []struct {
		name    string
		signers map[uint64]string
		lease   int
		ok      bool
	}{
		{"one holder", map[uint64]string{10: "dc1", 11: "dc1", 12: "dc1"}, 1, true},
		{"one handover", map[uint64]string{10: "dc1", 11: "dc1", 14: "dc2", 15: "dc2"}, 2, true},
		{"there and back", map[uint64]string{10: "dc1", 14: "dc2", 18: "dc1"}, 3, true},
		{"the old holder signed again", map[uint64]string{10: "dc1", 14: "dc2", 15: "dc1", 16: "dc2"}, 2, false},
		{"a signer with no lease change", map[uint64]string{10: "dc1", 11: "dc3"}, 1, false},
		{"nothing signed", map[uint64]string{}, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := signerChanges(tc.signers, tc.lease)
			if tc.ok != (err == nil) {
				t.Fatalf("signerChanges = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
