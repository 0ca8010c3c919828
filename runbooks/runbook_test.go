package runbooks

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var (
	only        = flag.String("runbook", "", "run only the runbooks whose file name contains this")
	transcripts = flag.String("runbook.transcripts", "", "directory to write each runbook's transcript to (commands and real output, for refreshing excerpts)")
	prebuilt    = flag.String("runbook.bin", "", "use the regent and regentctl binaries in this directory instead of building them")
	update      = flag.Bool("runbook.update", false, "after a runbook passes, rewrite its excerpt lines that match whole output lines with this run's output (refreshes numbers, hashes, times)")
)

// runbookFiles lists the runbooks: every *.md here but README.md.
func runbookFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if f != "README.md" {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// TestRunbooksParse checks, without a cluster, that every runbook follows
// the format, has commands, and is listed in the README index.
func TestRunbooksParse(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	files := runbookFiles(t)
	if len(files) == 0 {
		t.Fatal("no runbooks")
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := Parse(f, b)
			if err != nil {
				t.Fatal(err)
			}
			if rb.Steps() == 0 {
				t.Fatalf("%s has no commands to run", f)
			}
			if !strings.Contains(string(readme), "("+f+")") {
				t.Errorf("README.md does not link %s", f)
			}
		})
	}
	rb, err := Parse("README.md", readme)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Steps() != 0 {
		t.Errorf("README.md has %d executable commands; it documents the format and must not run any", rb.Steps())
	}
}

// buildBinaries builds regent and regentctl into a temporary directory.
func buildBinaries(t *testing.T) string {
	t.Helper()
	if *prebuilt != "" {
		dir, err := filepath.Abs(*prebuilt)
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "hashicorpmetrics", "-o", dir+string(filepath.Separator), "./cmd/regent", "./cmd/regentctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// TestRunbooks runs every runbook's commands, in order, against a real
// three-region cluster (a fresh one per scene), checking exit statuses,
// expectations and output excerpts. Scenes marked slow are skipped with
// -short.
func TestRunbooks(t *testing.T) {
	files := runbookFiles(t)
	bin := buildBinaries(t)
	for _, f := range files {
		if *only != "" && !strings.Contains(f, *only) {
			continue
		}
		t.Run(strings.TrimSuffix(f, ".md"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := Parse(f, b)
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{}
			refreshed := map[int]string{} // runbook line → refreshed excerpt line
			for i, sc := range rb.Scenes {
				if len(sc.Steps) == 0 {
					continue
				}
				if sc.Slow && testing.Short() {
					t.Logf("%s:%d: slow scene skipped (-short)", f, sc.Line)
					continue
				}
				runScene(t, bin, f, i, sc, vars, refreshed)
			}
			if *update && !t.Failed() {
				lines := strings.Split(string(b), "\n")
				for n, l := range refreshed {
					lines[n-1] = l
				}
				if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %d excerpt lines refreshed", f, len(refreshed))
			}
		})
	}
}

func runScene(t *testing.T, bin, file string, n int, sc Scene, vars map[string]string, refreshed map[int]string) {
	t.Helper()
	start := time.Now()
	c := newCluster(t, bin)
	t.Logf("%s scene %d (line %d): cluster up in %v (%s)", file, n+1, sc.Line, time.Since(start).Round(time.Millisecond), c.dir)
	tr, err := os.Create(c.path("transcript.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		tr.Close()
		if *transcripts != "" {
			b, _ := os.ReadFile(c.path("transcript.txt"))
			name := strings.TrimSuffix(file, ".md") + "-scene" + string(rune('1'+n)) + ".txt"
			_ = os.MkdirAll(*transcripts, 0o755)
			_ = os.WriteFile(filepath.Join(*transcripts, name), b, 0o644)
		}
	}()
	r := &Runner{Env: c.env, Dir: c.dir, Timeout: 90 * time.Second, Transcript: tr, Vars: vars,
		Fold: []string{"WORK", "CERTS", "KEYS", "KEYSTORES", "CONFIG", "DATA_DIR", "SOFTHSM2_CONF"}}
	for _, st := range sc.Steps {
		stepStart := time.Now()
		res, err := r.Run(context.Background(), file, st)
		if err != nil {
			t.Fatalf("%v\n(transcript: %s)", err, c.path("transcript.txt"))
		}
		t.Logf("%s:%d ok in %v (%d attempts): %s", file, st.Line, time.Since(stepStart).Round(time.Millisecond), res.Attempts, firstLine(res.Command))
		for i, l := range res.Refreshed {
			if l != "" {
				refreshed[st.ExcerptLines[i]] = l
			}
		}
	}
	c.checkSafety()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}
