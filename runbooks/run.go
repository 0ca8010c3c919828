package runbooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrRun marks a step that could not be started or did not pass.
var ErrRun = errors.New("runbooks: step failed")

// Runner runs the steps of one runbook, in order, in bash.
type Runner struct {
	// Env returns the environment of a command on host ("" for the
	// operator's workstation). Required.
	Env func(host string) ([]string, error)
	// Dir is the working directory of every command.
	Dir string
	// Timeout bounds one attempt; zero means one minute.
	Timeout time.Duration
	// Pause is the wait between attempts of a retried step; zero means
	// 500ms.
	Pause time.Duration
	// Transcript, when set, receives every attempt's command and output.
	Transcript io.Writer
	// Vars holds the saved values placeholders are filled from; Run adds
	// to it. Nil starts empty.
	Vars map[string]string
	// Fold names environment variables (WORK, CERTS, ...) whose values are
	// written back as $NAME in the output before excerpts are compared, so
	// a runbook can show "$WORK/drill/audit.jsonl" where the run printed
	// its own temporary path.
	Fold []string
}

// Result is the outcome of a step's last attempt.
type Result struct {
	Command  string // as run, placeholders filled
	Output   Output
	Attempts int
	// Refreshed holds, per excerpt line, the whole output line it matched
	// when it matched a whole line and holds no placeholder, else "": what
	// the excerpt would say if refreshed from this run.
	Refreshed []string
}

// Run runs step until its check holds (once, or within its retry budget).
// It returns the last attempt and nil, or an error wrapping ErrRun that
// names the runbook line, the command, what did not hold, and the output.
func (r *Runner) Run(ctx context.Context, name string, step Step) (Result, error) {
	if r.Vars == nil {
		r.Vars = map[string]string{}
	}
	cmd, err := Fill(step.Command, r.Vars)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s:%d: %w", ErrRun, name, step.Line, err)
	}
	env, err := r.Env(step.Host)
	if err != nil {
		return Result{Command: cmd}, fmt.Errorf("%w: %s:%d: environment for host %q: %w", ErrRun, name, step.Line, step.Host, err)
	}
	timeout, pause := r.Timeout, r.Pause
	if timeout <= 0 {
		timeout = time.Minute
	}
	if pause <= 0 {
		pause = 500 * time.Millisecond
	}
	deadline := time.Now().Add(step.Check.Retry)
	res := Result{Command: cmd}
	for {
		res.Attempts++
		out, runErr := r.once(ctx, cmd, env, timeout)
		res.Output = out
		failed := runErr
		if failed == nil {
			res.Refreshed, failed = r.verify(step, out, env)
		}
		final := failed == nil || step.Check.Retry <= 0 || !time.Now().Add(pause).Before(deadline) || ctx.Err() != nil
		r.log(step, res, failed, final)
		if failed == nil {
			for _, s := range step.Check.Save {
				v, err := Value(out, s.Path)
				if err != nil {
					return res, fmt.Errorf("%w: %s:%d: save %s: %w\n%s", ErrRun, name, step.Line, s.Name, err, describe(cmd, out))
				}
				r.Vars[s.Name] = strings.TrimSpace(v)
			}
			return res, nil
		}
		if final {
			what := "once"
			if step.Check.Retry > 0 {
				what = fmt.Sprintf("%d attempts over %v", res.Attempts, step.Check.Retry)
			}
			return res, fmt.Errorf("%w: %s:%d (%s): %w\n%s", ErrRun, name, step.Line, what, failed, describe(cmd, out))
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, fmt.Errorf("%w: %s:%d: %w", ErrRun, name, step.Line, ctx.Err())
		case <-t.C:
		}
	}
}

// verify checks the exit status, the expectations and the excerpt.
func (r *Runner) verify(step Step, out Output, env []string) ([]string, error) {
	var errs []error
	if out.Exit != step.Check.Exit {
		errs = append(errs, fmt.Errorf("%w: exit status %d, want %d", ErrExpectation, out.Exit, step.Check.Exit))
	}
	for _, e := range step.Check.Expect {
		if err := Evaluate(e, out, r.Vars); err != nil {
			errs = append(errs, err)
		}
	}
	var refreshed []string
	if len(step.Excerpt) > 0 {
		excerpt := make([]string, len(step.Excerpt))
		for i, l := range step.Excerpt {
			f, err := Fill(l, r.Vars)
			if err != nil {
				errs = append(errs, err)
			}
			excerpt[i] = f
		}
		whole, err := matchExcerpt(excerpt, fold(string(out.Combined), env, r.Fold))
		if err != nil {
			errs = append(errs, err)
		}
		for i := range whole {
			if placeholder.MatchString(step.Excerpt[i]) {
				whole[i] = ""
			}
		}
		refreshed = whole
	}
	return refreshed, errors.Join(errs...)
}

// lockedBuffer is a buffer two copying goroutines of exec.Cmd may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

type teeWriter struct {
	own    bytes.Buffer
	shared *lockedBuffer
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.own.Write(p)
	return t.shared.Write(p)
}

func (r *Runner) once(ctx context.Context, cmd string, env []string, timeout time.Duration) (Output, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-c", "set -o pipefail\n"+cmd)
	c.Env, c.Dir = env, r.Dir
	c.WaitDelay = 5 * time.Second
	combined := &lockedBuffer{}
	stdout := &teeWriter{shared: combined}
	c.Stdout, c.Stderr = stdout, combined
	err := c.Run()
	out := Output{Stdout: stdout.own.Bytes(), Combined: combined.buf.Bytes()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return out, fmt.Errorf("%w: timed out after %v", ErrExpectation, timeout)
	case errors.As(err, &ee):
		out.Exit = ee.ExitCode()
	default:
		return out, fmt.Errorf("start bash: %w", err)
	}
	return out, nil
}

// log writes an attempt to the transcript: the command with its output
// for the final attempt, one line for an attempt that will be retried.
func (r *Runner) log(step Step, res Result, err error, final bool) {
	if r.Transcript == nil {
		return
	}
	prompt := "$ "
	if step.Host != "" {
		prompt = step.Host + "# "
	}
	if !final {
		fmt.Fprintf(r.Transcript, "[attempt %d of %s%s: exit %d, not yet: %s]\n", res.Attempts, prompt, firstLineOf(res.Command),
			res.Output.Exit, strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	fmt.Fprintf(r.Transcript, "%s%s\n%s", prompt, res.Command, res.Output.Combined)
	if len(res.Output.Combined) > 0 && !bytes.HasSuffix(res.Output.Combined, []byte("\n")) {
		fmt.Fprintln(r.Transcript)
	}
	status := "ok"
	if err != nil {
		status = "not yet: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	fmt.Fprintf(r.Transcript, "[exit %d, attempt %d: %s]\n\n", res.Output.Exit, res.Attempts, status)
}

// fold replaces the values of the named variables of env in s by $NAME,
// longest value first.
func fold(s string, env, names []string) string {
	type kv struct{ k, v string }
	var vs []kv
	for _, name := range names {
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, name+"="); ok && len(v) > 1 {
				vs = append(vs, kv{name, v})
			}
		}
	}
	sort.Slice(vs, func(i, j int) bool { return len(vs[i].v) > len(vs[j].v) })
	for _, x := range vs {
		s = strings.ReplaceAll(s, x.v, "$"+x.k)
	}
	return s
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func describe(cmd string, out Output) string {
	return fmt.Sprintf("command: %s\nexit status: %d\noutput:\n%s", cmd, out.Exit, indent(string(out.Combined)))
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "  (none)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
