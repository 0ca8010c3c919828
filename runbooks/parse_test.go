package runbooks

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want []Scene
	}{{
		name: "commands, hosts, excerpts and directives",
		md: "# Title\n\ntext $ not a command\n\n```sh\n" +
			"$ regentctl status --output json   # expect: .lease.holder == dc1, .lease.epoch >= 1; save: EPOCH = .lease.epoch\n" +
			"{\"lease\": ...}\n" +
			"\n" +
			"dc2# systemctl stop regent   # exit: 0\n" +
			"$ regentctl handover watch <EPOCH>   # retry: 30s; exit: 2\n" +
			"watching\n" +
			"...\n" +
			"done\n" +
			"```\n",
		want: []Scene{{Line: 1, Steps: []Step{
			{Line: 6, Command: "regentctl status --output json   # expect: .lease.holder == dc1, .lease.epoch >= 1; save: EPOCH = .lease.epoch",
				Excerpt: []string{"{\"lease\": ...}"}, ExcerptLines: []int{7},
				Check: Check{Expect: []Expectation{{".lease.holder", "==", "dc1"}, {".lease.epoch", ">=", "1"}}, Save: []Save{{"EPOCH", ".lease.epoch"}}}},
			{Line: 9, Host: "dc2", Command: "systemctl stop regent   # exit: 0"},
			{Line: 10, Command: "regentctl handover watch <EPOCH>   # retry: 30s; exit: 2", Excerpt: []string{"watching", "...", "done"}, ExcerptLines: []int{11, 12, 13},
				Check: Check{Exit: 2, Retry: 30 * time.Second}},
		}}},
	}, {
		name: "other blocks are illustrations; ordinary comments are not directives",
		md: "```text\n$ not run\n```\n~~~yaml\nkey: value\n~~~\n```sh\n$ echo '# expect: not a comment' \"#\" # just a note\n```\n" +
			"````sh\n$ cat <<EOF\n```\n````\n",
		want: []Scene{{Line: 1, Steps: []Step{
			{Line: 8, Command: "echo '# expect: not a comment' \"#\" # just a note"},
			{Line: 11, Command: "cat <<EOF", Excerpt: []string{"```"}, ExcerptLines: []int{12}},
		}}},
	}, {
		name: "continuation lines belong to the command; the directive is on the last",
		md:   "```sh\n$ regentctl handover request \\\n    --to dc2 \\\n    --reason \"maintenance\"   # expect: .accepted == true\nout\n```\n",
		want: []Scene{{Line: 1, Steps: []Step{{
			Line: 2, Command: "regentctl handover request \\\n    --to dc2 \\\n    --reason \"maintenance\"   # expect: .accepted == true",
			Excerpt: []string{"out"}, ExcerptLines: []int{5}, Check: Check{Expect: []Expectation{{".accepted", "==", "true"}}},
		}}}},
	}, {
		name: "scene markers",
		md: "<!-- runbook: fresh cluster, slow -->\n```sh\n$ a\n```\n<!-- runbook: fresh cluster -->\n```sh\n$ b\n```\n" +
			"<!-- runbook:fresh   cluster,slow-->\n```sh\n$ c   # expect: output ~ \"a, b; c\"\n```\n",
		want: []Scene{
			{Line: 1, Slow: true, Steps: []Step{{Line: 3, Command: "a"}}},
			{Line: 5, Steps: []Step{{Line: 7, Command: "b"}}},
			{Line: 9, Slow: true, Steps: []Step{{Line: 11, Command: "c   # expect: output ~ \"a, b; c\"", Check: Check{Expect: []Expectation{{"output", "~", "a, b; c"}}}}}},
		},
	}, {
		name: "selectors, len() and bare existence",
		md:   "```sh\n$ x   # expect: .regions[region=dc2].status.lease.held_here == true, len(.operators) == 3, .handovers[-1].id, stdout !~ \"error\"\n```\n",
		want: []Scene{{Line: 1, Steps: []Step{{Line: 2,
			Command: "x   # expect: .regions[region=dc2].status.lease.held_here == true, len(.operators) == 3, .handovers[-1].id, stdout !~ \"error\"",
			Check: Check{Expect: []Expectation{
				{".regions[region=dc2].status.lease.held_here", "==", "true"}, {"len(.operators)", "==", "3"}, {Path: ".handovers[-1].id"}, {"stdout", "!~", "error"},
			}}}}}},
	}, {
		name: "comment lines are neither commands nor excerpts; placeholders after a save",
		md:   "```sh\n$ a   # save: ID = .id\n# what to look for:\n$ b <ID>\nid <ID>\n  # indented comment\n```\n",
		want: []Scene{{Line: 1, Steps: []Step{
			{Line: 2, Command: "a   # save: ID = .id", Check: Check{Save: []Save{{"ID", ".id"}}}},
			{Line: 4, Command: "b <ID>", Excerpt: []string{"id <ID>"}, ExcerptLines: []int{5}},
		}}},
	}, {
		name: "no commands at all",
		md:   "# README\n\n```sh\n# a shell comment only\n```\n",
		want: []Scene{{Line: 1}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rb, err := Parse("t.md", []byte(tc.md))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rb.Scenes, tc.want) {
				t.Errorf("got  %+v\nwant %+v", rb.Scenes, tc.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, md, want string
		err            error
	}{
		{"unterminated fence", "text\n```sh\n$ a\n", "t.md:2: code block opened here is never closed", ErrSyntax},
		{"excerpt without command", "```sh\noutput\n```\n", "t.md:2: output excerpt", ErrSyntax},
		{"unknown directive", "```sh\n$ a   # expcet: .x == 1\n```\n", `t.md:2: unknown directive "expcet"`, ErrSyntax},
		{"bad exit", "```sh\n$ a   # exit: 300\n```\n", "t.md:2: directive exit: \"300\"", ErrSyntax},
		{"exit twice", "```sh\n$ a   # exit: 1; exit: 2\n```\n", "exit: given twice", ErrSyntax},
		{"bad retry", "```sh\n$ a   # retry: forever\n```\n", "directive retry", ErrSyntax},
		{"retry too long", "```sh\n$ a   # retry: 1h\n```\n", "directive retry", ErrSyntax},
		{"bad operator", "```sh\n$ a   # expect: .x === 1\n```\n", `operator "==="`, ErrSyntax},
		{"bad path", "```sh\n$ a   # expect: lease.holder == dc1\n```\n", "JSON path starting with", ErrSyntax},
		{"bad selector", "```sh\n$ a   # expect: .a[x] == 1\n```\n", "cannot read", ErrSyntax},
		{"numeric op on a word", "```sh\n$ a   # expect: .a >= many\n```\n", "needs a number", ErrSyntax},
		{"unquoted spaces", "```sh\n$ a   # expect: output ~ two words\n```\n", "quote a value", ErrSyntax},
		{"unterminated quote", "```sh\n$ a   # expect: output ~ \"open\n```\n", "unterminated quote", ErrSyntax},
		{"missing value", "```sh\n$ a   # expect: .a ==\n```\n", "no value after ==", ErrSyntax},
		{"bad save name", "```sh\n$ a   # save: id = .id\n```\n", "NAME in upper case", ErrSyntax},
		{"save without path", "```sh\n$ a   # save: ID\n```\n", "want NAME = path", ErrSyntax},
		{"empty directive", "```sh\n$ a   # expect:\n```\n", "has no arguments", ErrSyntax},
		{"empty command", "```sh\n$  \n```\n", "empty command", ErrSyntax},
		{"placeholder before save", "```sh\n$ a <ID>\n$ b   # save: ID = .id\n```\n", "<ID> is used before any step saves it", ErrPlaceholder},
		{"placeholder in a value before save", "```sh\n$ a   # expect: .x == <ID>\n```\n", "<ID> is used before", ErrPlaceholder},
		{"placeholder in an excerpt before save", "```sh\n$ a\nhandover <ID> done\n```\n", "<ID> is used before", ErrPlaceholder},
		{"placeholder saved by the same step", "```sh\n$ a <ID>   # save: ID = .id\n```\n", "<ID> is used before", ErrPlaceholder},
		{"a URL-like comment is a directive", "```sh\n$ curl x   # https://example.org\n```\n", `unknown directive "https"`, ErrSyntax},
		{"continuation at end of block", "```sh\n$ a \\\n```\n", "continued", ErrSyntax},
		{"marker without fresh cluster", "<!-- runbook: slow -->\n", "needs \"fresh cluster\"", ErrSyntax},
		{"unknown marker option", "<!-- runbook: fresh cluster, quick -->\n", `unknown runbook option "quick"`, ErrSyntax},
		{"empty marker option", "<!-- runbook: fresh cluster, -->\n", "empty option", ErrSyntax},
		{"multi-line marker", "<!-- runbook: fresh cluster\n-->\n", "single line", ErrSyntax},
		{"too large", strings.Repeat("x", MaxRunbookBytes+1), "bytes (at most", ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rb, err := Parse("t.md", []byte(tc.md))
			if err == nil {
				t.Fatalf("parsed: %+v", rb)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %v does not wrap %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if rb != nil {
				t.Errorf("a refused runbook came back: %+v", rb)
			}
		})
	}
}

func TestShellComment(t *testing.T) {
	tests := []struct {
		line, want string
		ok         bool
	}{
		{"echo a # c", " c", true},
		{"echo a#b", "", false},
		{"echo 'a # b'", "", false},
		{`echo "a # b" # c`, " c", true},
		{`echo \# b`, "", false},
		{`echo "it's" # c`, " c", true},
		{"# whole line", " whole line", true},
		{"curl -d '{\"a\":\"#\"}'\t# c", " c", true},
	}
	for _, tc := range tests {
		got, ok := shellComment(tc.line)
		if got != tc.want || ok != tc.ok {
			t.Errorf("shellComment(%q) = %q, %v; want %q, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts it accepts again
// identically and every step's directive re-parses on its own.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"```sh\n$ regentctl status   # expect: .lease.holder == dc1; save: X = .a[0].b\nout\n```\n",
		"<!-- runbook: fresh cluster, slow -->\n```sh\ndc1# systemctl stop regent\n$ a \\\n  b   # retry: 5s; exit: 3\n```\n",
		"```sh\n$ x <A>\n```\n",
		"````sh\n$ a\n```\nb\n````\n",
		"```sh\n$ a   # expect: .a[k=v][-1].c, len(.x) > 2, output !~ \"q\\\"\"\n```\n",
		"~~~\n$ a\n~~~\n```sh",
		"```sh\n$ a   # expect: \"\n```\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, md []byte) {
		rb, err := Parse("f.md", md)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrPlaceholder) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		again, err := Parse("f.md", md)
		if err != nil || !reflect.DeepEqual(rb, again) {
			t.Fatalf("not deterministic: %v", err)
		}
		for _, sc := range rb.Scenes {
			for _, st := range sc.Steps {
				c, err := parseDirective(lastLine(st.Command))
				if err != nil || !reflect.DeepEqual(c, st.Check) {
					t.Fatalf("step %d: directive does not re-parse: %v", st.Line, err)
				}
				if st.Check.Retry < 0 || st.Check.Retry > MaxRetry || st.Check.Exit < 0 || st.Check.Exit > 255 {
					t.Fatalf("step %d: out-of-range check %+v", st.Line, st.Check)
				}
			}
		}
	})
}
