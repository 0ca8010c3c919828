package runbooks

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrSyntax marks a runbook (or a directive, expectation or path) that
	// does not follow the format; the message names the line.
	ErrSyntax = errors.New("runbooks: syntax error")
	// ErrPlaceholder marks a <NAME> placeholder with no saved value.
	ErrPlaceholder = errors.New("runbooks: unknown placeholder")
	// ErrPath marks a JSON path that does not resolve in a document.
	ErrPath = errors.New("runbooks: JSON path does not resolve")
	// ErrExpectation marks an expectation, exit status or excerpt that
	// does not hold.
	ErrExpectation = errors.New("runbooks: expectation not met")
)

// Limits.
const (
	// MaxRunbookBytes bounds the Markdown Parse accepts.
	MaxRunbookBytes = 1 << 20
	// MaxRetry bounds a step's retry budget.
	MaxRetry = 5 * time.Minute
)

// Runbook is a parsed runbook: its scenes in document order.
type Runbook struct {
	Name   string
	Scenes []Scene
}

// Steps returns the number of steps in every scene.
func (r *Runbook) Steps() int {
	n := 0
	for _, s := range r.Scenes {
		n += len(s.Steps)
	}
	return n
}

// Scene is a run of steps that share one cluster. The first scene starts at
// the top of the document; each "<!-- runbook: fresh cluster -->" marker
// starts another.
type Scene struct {
	// Line is the marker's line (1 for the implicit first scene).
	Line int
	// Slow scenes are skipped by a short test run.
	Slow  bool
	Steps []Step
}

// Step is one command of a runbook.
type Step struct {
	// Line is the 1-based line of the command's first line.
	Line int
	// Host is the region whose host runs the command ("dc2# ..."), or ""
	// for the operator's workstation ("$ ...").
	Host string
	// Command is the shell text as written (continuation lines joined by
	// "\n", the directive comment included: bash ignores it).
	Command string
	// Excerpt is the output the runbook shows under the command, one
	// entry per line; ExcerptLines holds their 1-based line numbers.
	Excerpt      []string
	ExcerptLines []int
	Check        Check
}

// Check is what a step's directive comment asks the test to verify.
type Check struct {
	// Exit is the expected exit status (default 0).
	Exit int
	// Expect must all hold on the same attempt.
	Expect []Expectation
	// Save stores values for later <NAME> placeholders.
	Save []Save
	// Retry, when positive, re-runs the command until everything holds or
	// the budget is spent.
	Retry time.Duration
}

// Expectation compares a value of the command's output with a literal.
// Path is "output" (stdout and stderr together, as text), "stdout", or a
// JSON path into stdout (see Lookup), optionally wrapped in len(...). Op is
// one of == != >= <= > < ~ (contains) !~ (does not contain), or "" when
// the path must merely resolve to something other than null.
type Expectation struct {
	Path  string
	Op    string
	Value string
}

func (e Expectation) String() string {
	if e.Op == "" {
		return e.Path
	}
	return fmt.Sprintf("%s %s %q", e.Path, e.Op, e.Value)
}

// Save stores the value at Path (as Expectation.Path) under Name.
type Save struct {
	Name string
	Path string
}

var (
	hostPrompt  = regexp.MustCompile(`^([a-z][a-z0-9-]{0,31})# (.*)$`)
	placeholder = regexp.MustCompile(`<([A-Z][A-Z0-9_]{0,63})>`)
	saveName    = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)
	markerRE    = regexp.MustCompile(`^<!--\s*runbook:(.*?)-->\s*$`)
	keywordRE   = regexp.MustCompile(`^([a-z]+):`)
)

// Parse reads a runbook. name labels errors. See the package documentation
// for the format; every error wraps ErrSyntax or ErrPlaceholder and names
// the line.
func Parse(name string, md []byte) (*Runbook, error) {
	if len(md) > MaxRunbookBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes (at most %d)", ErrSyntax, name, len(md), MaxRunbookBytes)
	}
	rb := &Runbook{Name: name, Scenes: []Scene{{Line: 1}}}
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(make([]byte, 0, 64*1024), MaxRunbookBytes)
	var (
		lineNo     int
		inFence    bool
		fence      string // the opening fence's backticks or tildes
		executed   bool   // the open fence is a ```sh block
		fenceLine  int
		cur        *Step // the command whose output lines follow
		continuing bool  // the previous command line ended with "\"
		saved      = map[string]bool{}
	)
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s:%d: %s", ErrSyntax, name, lineNo, fmt.Sprintf(format, args...))
	}
	finish := func() error {
		if cur == nil {
			return nil
		}
		c, err := parseDirective(lastLine(cur.Command))
		if err != nil {
			return fmt.Errorf("%w: %s:%d: %w", ErrSyntax, name, cur.Line, err)
		}
		for _, m := range placeholder.FindAllStringSubmatch(cur.Command, -1) {
			if !saved[m[1]] {
				return fmt.Errorf("%w: %s:%d: <%s> is used before any step saves it", ErrPlaceholder, name, cur.Line, m[1])
			}
		}
		texts := append([]string(nil), cur.Excerpt...)
		for _, e := range c.Expect {
			texts = append(texts, e.Value)
		}
		for _, text := range texts {
			for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
				if !saved[m[1]] {
					return fmt.Errorf("%w: %s:%d: <%s> is used before any step saves it", ErrPlaceholder, name, cur.Line, m[1])
				}
			}
		}
		for _, s := range c.Save {
			saved[s.Name] = true
		}
		cur.Check = c
		scene := &rb.Scenes[len(rb.Scenes)-1]
		scene.Steps = append(scene.Steps, *cur)
		cur = nil
		return nil
	}
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if !inFence {
			trimmed := strings.TrimSpace(line)
			if m := markerRE.FindStringSubmatch(trimmed); m != nil {
				slow, err := parseMarker(m[1])
				if err != nil {
					return nil, errf("%v", err)
				}
				last := &rb.Scenes[len(rb.Scenes)-1]
				if len(last.Steps) == 0 && len(rb.Scenes) == 1 {
					// A marker before the first command configures the first scene.
					last.Line, last.Slow = lineNo, slow
				} else {
					rb.Scenes = append(rb.Scenes, Scene{Line: lineNo, Slow: slow})
				}
				continue
			}
			if strings.HasPrefix(trimmed, "<!--") && strings.Contains(trimmed, "runbook:") {
				return nil, errf("runbook marker must be a single line <!-- runbook: ... -->")
			}
			if f, info, ok := openFence(line); ok {
				inFence, fence, fenceLine = true, f, lineNo
				executed = strings.Fields(info + " x")[0] == "sh"
			}
			continue
		}
		if isClosingFence(line, fence) {
			if continuing {
				return nil, errf("command continued with \\ at the end of its block")
			}
			if err := finish(); err != nil {
				return nil, err
			}
			inFence = false
			continue
		}
		if !executed {
			continue
		}
		if continuing {
			cur.Command += "\n" + line
			continuing = strings.HasSuffix(line, "\\")
			continue
		}
		host, cmd, isCmd := commandLine(line)
		if isCmd {
			if err := finish(); err != nil {
				return nil, err
			}
			if strings.TrimSpace(cmd) == "" {
				return nil, errf("empty command")
			}
			cur = &Step{Line: lineNo, Host: host, Command: cmd}
			continuing = strings.HasSuffix(line, "\\")
			continue
		}
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue // blank, or a shell comment for the reader
		}
		if cur == nil {
			return nil, errf("output excerpt %q has no command before it in its block (commands start with \"$ \" or \"<region># \")", shorten(line))
		}
		cur.Excerpt = append(cur.Excerpt, line)
		cur.ExcerptLines = append(cur.ExcerptLines, lineNo)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSyntax, name, err)
	}
	if inFence {
		lineNo = fenceLine
		return nil, errf("code block opened here is never closed")
	}
	return rb, nil
}

func parseMarker(body string) (slow bool, err error) {
	fresh := false
	for _, opt := range strings.Split(body, ",") {
		switch strings.Join(strings.Fields(opt), " ") {
		case "fresh cluster":
			fresh = true
		case "slow":
			slow = true
		case "":
			return false, errors.New("empty option in runbook marker")
		default:
			return false, fmt.Errorf("unknown runbook option %q (known: fresh cluster, slow)", strings.TrimSpace(opt))
		}
	}
	if !fresh {
		return false, errors.New("a runbook marker starts a scene: it needs \"fresh cluster\"")
	}
	return slow, nil
}

// openFence recognises a fence opening (``` or ~~~, at most three spaces
// of indentation) and returns its fence string and info string.
func openFence(line string) (fence, info string, ok bool) {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return "", "", false
	}
	for _, ch := range []byte{'`', '~'} {
		n := 0
		for n < len(t) && t[n] == ch {
			n++
		}
		if n >= 3 {
			info = strings.TrimSpace(t[n:])
			if ch == '`' && strings.Contains(info, "`") {
				return "", "", false
			}
			return t[:n], info, true
		}
	}
	return "", "", false
}

func isClosingFence(line, fence string) bool {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return false
	}
	t = strings.TrimRight(t, " \t")
	if len(t) < len(fence) || t[0] != fence[0] {
		return false
	}
	return strings.Trim(t, t[:1]) == ""
}

func commandLine(line string) (host, cmd string, ok bool) {
	if c, ok := strings.CutPrefix(line, "$ "); ok {
		return "", c, true
	}
	if m := hostPrompt.FindStringSubmatch(line); m != nil {
		return m[1], m[2], true
	}
	return "", "", false
}

func lastLine(cmd string) string {
	if i := strings.LastIndexByte(cmd, '\n'); i >= 0 {
		return cmd[i+1:]
	}
	return cmd
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// shellComment returns the text of the trailing shell comment of line (a
// '#' at the start of a word, outside quotes), without the '#'.
func shellComment(line string) (string, bool) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case c == '\\':
			i++
		case quote == '"':
			if c == '"' {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[i+1:], true
		}
	}
	return "", false
}

// parseDirective reads the directive comment of a command's last line. A
// comment whose text does not start with "word:" is an ordinary comment.
func parseDirective(line string) (Check, error) {
	var c Check
	text, ok := shellComment(line)
	if !ok {
		return c, nil
	}
	text = strings.TrimSpace(text)
	if !keywordRE.MatchString(text) {
		return c, nil
	}
	clauses, err := splitOutsideQuotes(text, ';')
	if err != nil {
		return c, err
	}
	seen := map[string]bool{}
	for _, cl := range clauses {
		cl = strings.TrimSpace(cl)
		if cl == "" {
			continue
		}
		m := keywordRE.FindStringSubmatch(cl)
		if m == nil {
			return c, fmt.Errorf("directive clause %q: want keyword: arguments", cl)
		}
		kw, arg := m[1], strings.TrimSpace(cl[len(m[0]):])
		if arg == "" {
			return c, fmt.Errorf("directive %s: has no arguments", kw)
		}
		switch kw {
		case "exit":
			if seen[kw] {
				return c, errors.New("directive exit: given twice")
			}
			n, err := strconv.Atoi(arg)
			if err != nil || n < 0 || n > 255 {
				return c, fmt.Errorf("directive exit: %q is not an exit status 0..255", arg)
			}
			c.Exit = n
		case "retry":
			if seen[kw] {
				return c, errors.New("directive retry: given twice")
			}
			d, err := time.ParseDuration(arg)
			if err != nil || d <= 0 || d > MaxRetry {
				return c, fmt.Errorf("directive retry: %q is not a duration in (0, %v]", arg, MaxRetry)
			}
			c.Retry = d
		case "expect":
			parts, err := splitOutsideQuotes(arg, ',')
			if err != nil {
				return c, err
			}
			for _, p := range parts {
				e, err := ParseExpectation(p)
				if err != nil {
					return c, err
				}
				c.Expect = append(c.Expect, e)
			}
		case "save":
			parts, err := splitOutsideQuotes(arg, ',')
			if err != nil {
				return c, err
			}
			for _, p := range parts {
				name, path, ok := strings.Cut(p, "=")
				name, path = strings.TrimSpace(name), strings.TrimSpace(path)
				if !ok || !saveName.MatchString(name) {
					return c, fmt.Errorf("directive save: %q: want NAME = path (NAME in upper case)", strings.TrimSpace(p))
				}
				if err := checkPath(path); err != nil {
					return c, fmt.Errorf("directive save: %w", err)
				}
				c.Save = append(c.Save, Save{Name: name, Path: path})
			}
		default:
			return c, fmt.Errorf("unknown directive %q (known: exit, expect, save, retry)", kw)
		}
		seen[kw] = true
	}
	return c, nil
}

// splitOutsideQuotes splits s at sep where sep is not inside "double
// quotes" (a backslash escapes the next character inside quotes).
func splitOutsideQuotes(s string, sep byte) ([]string, error) {
	var out []string
	start, inQ := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case inQ && s[i] == '\\':
			i++
		case s[i] == '"':
			inQ = !inQ
		case !inQ && s[i] == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if inQ {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	return append(out, s[start:]), nil
}

var ops = []string{"==", "!=", ">=", "<=", "!~", ">", "<", "~"}

// ParseExpectation reads "PATH OP VALUE" or "PATH". VALUE may be
// "double-quoted" (Go syntax) or a bare word running to the end.
func ParseExpectation(s string) (Expectation, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Expectation{}, errors.New("empty expectation")
	}
	path, rest, _ := strings.Cut(s, " ")
	rest = strings.TrimSpace(rest)
	if err := checkPath(path); err != nil {
		return Expectation{}, err
	}
	if rest == "" {
		return Expectation{Path: path}, nil
	}
	op, val, _ := strings.Cut(rest, " ")
	if !contains(ops, op) {
		return Expectation{}, fmt.Errorf("expectation %q: operator %q (known: %s)", s, op, strings.Join(ops, " "))
	}
	val = strings.TrimSpace(val)
	if val == "" {
		return Expectation{}, fmt.Errorf("expectation %q: no value after %s", s, op)
	}
	if strings.HasPrefix(val, `"`) {
		u, err := strconv.Unquote(val)
		if err != nil {
			return Expectation{}, fmt.Errorf("expectation %q: bad quoted value: %v", s, err)
		}
		val = u
	} else if strings.ContainsAny(val, " \t\"") {
		return Expectation{}, fmt.Errorf("expectation %q: quote a value with spaces or quotes", s)
	}
	if op == ">=" || op == "<=" || op == ">" || op == "<" {
		if !placeholder.MatchString(val) {
			if _, err := strconv.ParseFloat(val, 64); err != nil {
				return Expectation{}, fmt.Errorf("expectation %q: %s needs a number", s, op)
			}
		}
	}
	return Expectation{Path: path, Op: op, Value: val}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
