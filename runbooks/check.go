package runbooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Output is what one run of a command produced.
type Output struct {
	Stdout []byte
	// Combined is stdout and stderr interleaved as they were written.
	Combined []byte
	Exit     int
}

var (
	pathName = regexp.MustCompile(`^[A-Za-z0-9_-]+`)
	// selector: [N] or [field=value]
	indexRE = regexp.MustCompile(`^\[(-?[0-9]+)\]`)
	selRE   = regexp.MustCompile(`^\[([A-Za-z0-9_-]+)=([^\]]*)\]`)
)

// checkPath validates an expectation or save path without a document.
func checkPath(p string) error {
	switch {
	case p == "output" || p == "stdout":
		return nil
	case strings.HasPrefix(p, "len(") && strings.HasSuffix(p, ")"):
		inner := p[4 : len(p)-1]
		if inner == "output" || inner == "stdout" {
			return nil
		}
		return checkJSONPath(inner)
	}
	return checkJSONPath(p)
}

func checkJSONPath(p string) error {
	_, err := splitPath(p)
	return err
}

type segment struct {
	name       string // .name
	index      int    // [N]
	isIndex    bool
	field, val string // [field=value]
}

func splitPath(p string) ([]segment, error) {
	if !strings.HasPrefix(p, ".") {
		return nil, fmt.Errorf("path %q: want output, stdout, len(...) or a JSON path starting with \".\"", p)
	}
	var segs []segment
	rest := p
	if rest == "." {
		return nil, nil
	}
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "."):
			m := pathName.FindString(rest[1:])
			if m == "" {
				return nil, fmt.Errorf("path %q: expected a member name after \".\" at %q", p, rest)
			}
			segs = append(segs, segment{name: m})
			rest = rest[1+len(m):]
		case indexRE.MatchString(rest):
			m := indexRE.FindStringSubmatch(rest)
			n, err := strconv.Atoi(m[1])
			if err != nil || n > 1<<20 || n < -(1<<20) {
				return nil, fmt.Errorf("path %q: index %s out of range", p, m[1])
			}
			segs = append(segs, segment{index: n, isIndex: true})
			rest = rest[len(m[0]):]
		case selRE.MatchString(rest):
			m := selRE.FindStringSubmatch(rest)
			segs = append(segs, segment{field: m[1], val: m[2]})
			rest = rest[len(m[0]):]
		default:
			return nil, fmt.Errorf("path %q: cannot read %q (want .name, [N] or [field=value])", p, rest)
		}
	}
	return segs, nil
}

// lastJSON decodes the last JSON value in b (a command may print JSON
// lines; it is judged on its final one).
func lastJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var last any
	n := 0
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: stdout is not JSON: %v", ErrPath, err)
		}
		last, n = v, n+1
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: stdout holds no JSON value", ErrPath)
	}
	return last, nil
}

// Lookup resolves a JSON path in doc. Paths: "." (the document), ".name"
// (object member), "[N]" (array element; negative counts from the end),
// "[field=value]" (the first array element whose member field renders as
// value), chained: .regions[region=dc2].status.lease.holder.
func Lookup(doc any, path string) (any, error) {
	segs, err := splitPath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	v := doc
	for i, s := range segs {
		at := func() string { return pathPrefix(segs[:i+1]) }
		switch {
		case s.name != "":
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s: not an object", ErrPath, at())
			}
			if v, ok = m[s.name]; !ok {
				return nil, fmt.Errorf("%w: %s: no such member", ErrPath, at())
			}
		case s.isIndex:
			a, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s: not an array", ErrPath, at())
			}
			idx := s.index
			if idx < 0 {
				idx += len(a)
			}
			if idx < 0 || idx >= len(a) {
				return nil, fmt.Errorf("%w: %s: index out of range (length %d)", ErrPath, at(), len(a))
			}
			v = a[idx]
		default:
			a, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s: not an array", ErrPath, at())
			}
			found := false
			for _, el := range a {
				if m, ok := el.(map[string]any); ok {
					if fv, ok := m[s.field]; ok && render(fv) == s.val {
						v, found = el, true
						break
					}
				}
			}
			if !found {
				return nil, fmt.Errorf("%w: %s: no element with %s=%s", ErrPath, at(), s.field, s.val)
			}
		}
	}
	return v, nil
}

func pathPrefix(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		switch {
		case s.name != "":
			b.WriteString("." + s.name)
		case s.isIndex:
			fmt.Fprintf(&b, "[%d]", s.index)
		default:
			fmt.Fprintf(&b, "[%s=%s]", s.field, s.val)
		}
	}
	return b.String()
}

// render turns a decoded JSON value into the text expectations compare:
// strings as themselves, numbers as written, true/false, null, and
// objects and arrays as compact JSON.
func render(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

// Value resolves path (as Expectation.Path) against out and renders it.
func Value(out Output, path string) (string, error) {
	if inner, ok := strings.CutPrefix(path, "len("); ok && strings.HasSuffix(inner, ")") {
		inner = inner[:len(inner)-1]
		if inner == "output" || inner == "stdout" {
			s, _ := Value(out, inner)
			return strconv.Itoa(len(s)), nil
		}
		doc, err := lastJSON(out.Stdout)
		if err != nil {
			return "", err
		}
		v, err := Lookup(doc, inner)
		if err != nil {
			return "", err
		}
		switch x := v.(type) {
		case []any:
			return strconv.Itoa(len(x)), nil
		case map[string]any:
			return strconv.Itoa(len(x)), nil
		case string:
			return strconv.Itoa(len(x)), nil
		case nil:
			return "0", nil
		}
		return "", fmt.Errorf("%w: len(%s): not an array, object or string", ErrPath, inner)
	}
	switch path {
	case "output":
		return string(out.Combined), nil
	case "stdout":
		return string(out.Stdout), nil
	}
	doc, err := lastJSON(out.Stdout)
	if err != nil {
		return "", err
	}
	v, err := Lookup(doc, path)
	if err != nil {
		return "", err
	}
	return render(v), nil
}

// Evaluate checks e against out, after filling placeholders in its value
// from vars. It returns nil, or an error wrapping ErrExpectation (the
// comparison failed), ErrPath (the path does not resolve) or
// ErrPlaceholder.
func Evaluate(e Expectation, out Output, vars map[string]string) error {
	got, err := Value(out, e.Path)
	if err != nil {
		return err
	}
	if e.Op == "" {
		if got == "null" || strings.TrimSpace(got) == "" {
			return fmt.Errorf("%w: %s is %s", ErrExpectation, e.Path, shortValue(got))
		}
		return nil
	}
	want, err := Fill(e.Value, vars)
	if err != nil {
		return err
	}
	if e.Op != "~" && e.Op != "!~" {
		got = strings.TrimSpace(got) // "dc2\n" printed by jq -r is dc2
	}
	ok := false
	switch e.Op {
	case "==":
		ok = got == want
	case "!=":
		ok = got != want
	case "~":
		ok = strings.Contains(got, want)
	case "!~":
		ok = !strings.Contains(got, want)
	default:
		g, err1 := strconv.ParseFloat(got, 64)
		w, err2 := strconv.ParseFloat(want, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%w: %s %s %s: compares numbers, got %s", ErrExpectation, e.Path, e.Op, want, shortValue(got))
		}
		switch e.Op {
		case ">=":
			ok = g >= w
		case "<=":
			ok = g <= w
		case ">":
			ok = g > w
		case "<":
			ok = g < w
		}
	}
	if !ok {
		return fmt.Errorf("%w: %s %s %q, got %s", ErrExpectation, e.Path, e.Op, want, shortValue(got))
	}
	return nil
}

func shortValue(s string) string {
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return strconv.Quote(s)
}

// Fill replaces every <NAME> in s with vars[NAME]; a name with no value is
// an error wrapping ErrPlaceholder.
func Fill(s string, vars map[string]string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, m)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s", ErrPlaceholder, strings.Join(missing, ", "))
	}
	return out, nil
}

var (
	timeRE  = regexp.MustCompile(`[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:?[0-9]{2})?`)
	hex0xRE = regexp.MustCompile(`0x[0-9a-fA-F]+`)
	// a long hex run standing alone (hashes, keys, ids without 0x)
	hexRunRE = regexp.MustCompile(`(^|[^0-9A-Za-z_])[0-9a-fA-F]{16,}`)
	// a number not glued to a letter (dc2 stays dc2; epoch 2 becomes epoch N)
	numberRE = regexp.MustCompile(`(^|[^0-9A-Za-z_.])[0-9]+(\.[0-9]+)?`)
	spaceRE  = regexp.MustCompile(`\s+`)
	// Raft roles: elections, not runbooks, decide who leads
	roleRE = regexp.MustCompile(`\b(Leader|Follower|Candidate)\b`)
	// Go durations (1.502s, 569ms, 2m3s): a unit crosses a boundary as
	// timings vary
	durRE = regexp.MustCompile(`(^|[^0-9A-Za-z_.])([0-9]+(\.[0-9]+)?(ns|µs|us|ms|s|m|h))+\b`)
)

// Normalize maps an output line to the form excerpts are compared in:
// timestamps, durations, hex strings, numbers not glued to a letter and
// Raft roles (Leader, Follower, Candidate: elections decide them) are
// replaced by placeholders, and runs of white space collapse to one space (tables
// re-align as numbers change width).
func Normalize(line string) string {
	s := timeRE.ReplaceAllString(line, "TIME")
	s = roleRE.ReplaceAllString(s, "ROLE")
	s = durRE.ReplaceAllString(s, "${1}DUR")
	s = hex0xRE.ReplaceAllString(s, "HEX")
	s = hexRunRE.ReplaceAllString(s, "${1}HEX")
	s = numberRE.ReplaceAllString(s, "${1}N")
	return strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
}

// MatchExcerpt checks that every excerpt line (after Normalize) is part of
// some line of output (after Normalize), in order; lines that are exactly
// "..." (elisions) match nothing and are skipped.
func MatchExcerpt(excerpt []string, output string) error {
	_, err := matchExcerpt(excerpt, output)
	return err
}

// matchExcerpt is MatchExcerpt; for every excerpt line that matches a
// whole output line it also returns that output line ("" otherwise), so a
// runbook's excerpts can be refreshed from a run.
func matchExcerpt(excerpt []string, output string) ([]string, error) {
	lines := strings.Split(output, "\n")
	norm := make([]string, len(lines))
	for i, l := range lines {
		norm[i] = Normalize(l)
	}
	whole := make([]string, len(excerpt))
	at := 0
	for i, ex := range excerpt {
		if t := strings.TrimSpace(ex); t == "..." || t == "…" {
			continue
		}
		want := Normalize(ex)
		found := false
		for at < len(norm) {
			if strings.Contains(norm[at], want) {
				if norm[at] == want {
					whole[i] = lines[at]
				}
				found = true
				at++
				break
			}
			at++
		}
		if !found {
			return nil, fmt.Errorf("%w: excerpt line %q is not in the output (in order)", ErrExpectation, ex)
		}
	}
	return whole, nil
}
