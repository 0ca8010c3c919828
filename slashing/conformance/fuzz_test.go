package conformance

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseCase: any bytes either parse into a case or fail with an error
// wrapping ErrBadCase; never a panic. Seeds are this package's own cases.
func FuzzParseCase(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files[:min(len(files), 8)] {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"steps":[{"blocks":[{"slot":1e3}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tc, err := parseCase(raw)
		if err != nil {
			if !errors.Is(err, ErrBadCase) {
				t.Fatalf("error %v does not wrap ErrBadCase", err)
			}
			return
		}
		if len(tc.steps) == 0 {
			t.Fatal("parsed a case without steps")
		}
		// Running it against the real engine must not panic either.
		if failure := tc.run(newStateTarget, raw); len(failure) >= 6 && failure[:6] == "panic:" {
			t.Fatalf("engine panicked: %s", failure)
		}
	})
}

func TestFlexUint(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{`"12"`, 12, true}, {`12`, 12, true}, {`"0"`, 0, true}, {`18446744073709551615`, 1<<64 - 1, true},
		{`"18446744073709551616"`, 0, false}, {`-1`, 0, false}, {`1.5`, 0, false}, {`1e3`, 0, false},
		{`""`, 0, false}, {`" 1"`, 0, false}, {`true`, 0, false}, {`null`, 0, false},
	}
	for _, tt := range tests {
		var f flexUint
		err := f.UnmarshalJSON([]byte(tt.in))
		if (err == nil) != tt.ok || (tt.ok && (f.v != tt.want || !f.set)) {
			t.Errorf("%s: got %d,%v err %v; want %d ok=%v", tt.in, f.v, f.set, err, tt.want, tt.ok)
		}
	}
}
