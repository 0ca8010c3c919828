package eth

import (
	"bytes"
	"testing"

	"github.com/regent-signer/regent/slashing"
)

// Fixed identities used by the tests.
var (
	testGVR  = Root{0x04, 0x70}
	otherGVR = Root{0x99}
)

// pk returns a distinct test pubkey.
func pk(n byte) Pubkey { return Pubkey{0xa9, n} }

// rt returns a distinct present root.
func rt(n byte) SigningRoot { return KnownRoot(Root{0x5e, n}) }

// absent is the absent signing root.
var absent = SigningRoot{}

func newTestState(t testing.TB, opts Options) *State {
	t.Helper()
	s, err := NewState(opts)
	if err != nil {
		t.Fatalf("NewState: %v", err)
	}
	return s
}

// mustBlock records a block and fails the test unless it is accepted.
func mustBlock(t testing.TB, s *State, key Pubkey, slot uint64, root SigningRoot) {
	t.Helper()
	if res := s.recordBlock(testGVR, key, slot, root); !res.Accepted() {
		t.Fatalf("setup: block slot %d root %s: %v %s", slot, root, res.Decision, res.Reason)
	}
}

// mustAtt records a vote and fails the test unless it is accepted.
func mustAtt(t testing.TB, s *State, key Pubkey, source, target uint64, root SigningRoot) {
	t.Helper()
	if res := s.recordAtt(testGVR, key, source, target, root); !res.Accepted() {
		t.Fatalf("setup: vote (%d,%d) root %s: %v %s", source, target, root, res.Decision, res.Reason)
	}
}

// mustImport decodes and imports an interchange for testGVR.
func mustImport(t testing.TB, s *State, doc string) {
	t.Helper()
	ic, err := DecodeInterchange([]byte(doc))
	if err != nil {
		t.Fatalf("setup: decode: %v", err)
	}
	if err := s.Import(ic, testGVR); err != nil {
		t.Fatalf("setup: import: %v", err)
	}
}

// snapshot returns the State's snapshot bytes.
func snapshot(t testing.TB, s *State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	return buf.Bytes()
}

// cloneState deep-copies a State through its snapshot.
func cloneState(t testing.TB, s *State) *State {
	t.Helper()
	c, err := ReadState(bytes.NewReader(snapshot(t, s)))
	if err != nil {
		t.Fatalf("ReadState: %v", err)
	}
	return c
}

// sameDecision reports whether two results agree on decision and rule.
func sameDecision(a, b slashing.Result) bool { return a.Decision == b.Decision && a.Rule == b.Rule }

// interchangeDoc builds a version 5 interchange for testGVR with one entry for
// key, given the JSON arrays of its blocks and attestations.
func interchangeDoc(key Pubkey, blocks, atts string) string {
	return `{"metadata":{"interchange_format_version":"5","genesis_validators_root":"` + testGVR.String() +
		`"},"data":[{"pubkey":"` + key.String() + `","signed_blocks":` + blocks + `,"signed_attestations":` + atts + `}]}`
}
