package conformance

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/eth"
)

// Target is a fresh slashing-protection database for one test case.
//
// The runner calls it from one goroutine. Implementations must evaluate
// records through the same code path production signing uses, and must
// return errors that keep slashing's sentinels wrapped (errors.Is must find
// slashing.ErrSlashableImport when an import is refused as slashable).
type Target interface {
	// Import merges an EIP-3076 interchange document (raw JSON, possibly
	// malformed on purpose) for the chain gvr. It returns an error if the
	// document is refused; a refused import must change nothing.
	Import(interchangeJSON []byte, gvr eth.Root) error
	// SignBlock evaluates a block proposal and records it if accepted. The
	// error is for infrastructure failures only; a refusal is a Result.
	SignBlock(gvr eth.Root, pk eth.Pubkey, slot uint64, root eth.Root) (slashing.Result, error)
	// SignAttestation evaluates an attestation and records it if accepted.
	SignAttestation(gvr eth.Root, pk eth.Pubkey, source, target uint64, root eth.Root) (slashing.Result, error)
}

// NewTarget makes an empty Target; Run calls it once per test case.
type NewTarget func() (Target, error)

// Sentinel errors. Match with errors.Is.
var (
	// ErrNoCases means the directory holds no *.json test case.
	ErrNoCases = errors.New("conformance: no test case files")
	// ErrBadCase marks a test case file that cannot be read as a case.
	ErrBadCase = errors.New("conformance: malformed test case")
)

// maxCaseBytes bounds one test case file: an interchange plus checks.
const maxCaseBytes = eth.MaxInterchangeBytes + 16<<20

// Run runs every *.json file in dir (not recursive, in name order) as one
// test case against a fresh Target from newTarget, writes one line per case
// and a final "N passed, M failed" line to out, and returns the counts. A
// file that is not a valid test case counts as failed. err is non-nil only
// when dir cannot be read, holds no case (ErrNoCases), or out fails.
func Run(dir string, newTarget NewTarget, out io.Writer) (passed, failed int, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("conformance: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		name, failure := runFile(filepath.Join(dir, e.Name()), newTarget)
		var line string
		if failure == "" {
			passed++
			line = "PASS " + name + "\n"
		} else {
			failed++
			line = "FAIL " + name + ": " + failure + "\n"
		}
		if _, err := io.WriteString(out, line); err != nil {
			return passed, failed, fmt.Errorf("conformance: write report: %w", err)
		}
	}
	if _, err := fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed); err != nil {
		return passed, failed, fmt.Errorf("conformance: write report: %w", err)
	}
	if passed+failed == 0 {
		return 0, 0, fmt.Errorf("%w in %s", ErrNoCases, dir)
	}
	return passed, failed, nil
}

// runFile reads and runs one case. It returns the case name (the file name
// if the case has none or cannot be read) and "" on success or what failed.
func runFile(path string, newTarget NewTarget) (name, failure string) {
	name = filepath.Base(path)
	raw, err := readBounded(path)
	if err != nil {
		return name, err.Error()
	}
	tc, err := parseCase(raw)
	if err != nil {
		return name, err.Error()
	}
	if tc.name != "" {
		name = tc.name
	}
	return name, tc.run(newTarget, raw)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCase, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxCaseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCase, err)
	}
	if len(raw) > maxCaseBytes {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrBadCase, maxCaseBytes)
	}
	return raw, nil
}

// JSON shape of a test case. Unknown fields (e.g. allow_partial_import in
// older files) are ignored.
type (
	jsonCase struct {
		Name  string     `json:"name"`
		GVR   *string    `json:"genesis_validators_root"`
		Steps []jsonStep `json:"steps"`
	}
	jsonStep struct {
		ShouldSucceed         *bool           `json:"should_succeed"`
		ContainsSlashableData bool            `json:"contains_slashable_data"`
		Interchange           json.RawMessage `json:"interchange"`
		Blocks                []jsonBlock     `json:"blocks"`
		Attestations          []jsonAtt       `json:"attestations"`
	}
	jsonBlock struct {
		Pubkey                string   `json:"pubkey"`
		Slot                  flexUint `json:"slot"`
		SigningRoot           *string  `json:"signing_root"`
		ShouldSucceed         *bool    `json:"should_succeed"`
		ShouldSucceedComplete *bool    `json:"should_succeed_complete"`
	}
	jsonAtt struct {
		Pubkey                string   `json:"pubkey"`
		SourceEpoch           flexUint `json:"source_epoch"`
		TargetEpoch           flexUint `json:"target_epoch"`
		SigningRoot           *string  `json:"signing_root"`
		ShouldSucceed         *bool    `json:"should_succeed"`
		ShouldSucceedComplete *bool    `json:"should_succeed_complete"`
	}
)

// flexUint accepts a slot or epoch written as a decimal string or a JSON
// number (the public files have used both); it must be a non-negative
// integer that fits in 64 bits.
type flexUint struct {
	v   uint64
	set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexUint) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return fmt.Errorf("%q is not an unsigned integer", s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q does not fit in 64 bits", s)
	}
	f.v, f.set = v, true
	return nil
}

// testCase is a parsed, validated case.
type testCase struct {
	name  string
	gvr   eth.Root
	steps []step
}

type step struct {
	shouldSucceed bool
	slashable     bool
	interchange   []byte
	blocks        []blockCheck
	atts          []attCheck
}

type blockCheck struct {
	pk     eth.Pubkey
	slot   uint64
	root   *eth.Root // nil: absent
	expect bool
}

type attCheck struct {
	pk             eth.Pubkey
	source, target uint64
	root           *eth.Root
	expect         bool
}

func badCase(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadCase}, args...)...)
}

// parseCase decodes and validates a case file.
func parseCase(raw []byte) (*testCase, error) {
	var jc jsonCase
	if err := json.Unmarshal(raw, &jc); err != nil {
		return nil, badCase("%v", err)
	}
	tc := &testCase{name: jc.Name}
	if jc.GVR == nil {
		return nil, badCase("genesis_validators_root missing")
	}
	gvr, err := eth.ParseRoot(*jc.GVR)
	if err != nil {
		return nil, badCase("genesis_validators_root: %v", err)
	}
	tc.gvr = gvr
	if len(jc.Steps) == 0 {
		return nil, badCase("no steps")
	}
	for si, js := range jc.Steps {
		if js.ShouldSucceed == nil {
			return nil, badCase("steps[%d].should_succeed missing", si)
		}
		if len(js.Interchange) == 0 || string(js.Interchange) == "null" {
			return nil, badCase("steps[%d].interchange missing", si)
		}
		st := step{shouldSucceed: *js.ShouldSucceed, slashable: js.ContainsSlashableData, interchange: js.Interchange}
		for bi, jb := range js.Blocks {
			where := fmt.Sprintf("steps[%d].blocks[%d]", si, bi)
			pk, root, expect, err := parseItem(where, jb.Pubkey, jb.SigningRoot, jb.ShouldSucceed, jb.ShouldSucceedComplete)
			if err != nil {
				return nil, err
			}
			if !jb.Slot.set {
				return nil, badCase("%s.slot missing", where)
			}
			st.blocks = append(st.blocks, blockCheck{pk: pk, slot: jb.Slot.v, root: root, expect: expect})
		}
		for ai, ja := range js.Attestations {
			where := fmt.Sprintf("steps[%d].attestations[%d]", si, ai)
			pk, root, expect, err := parseItem(where, ja.Pubkey, ja.SigningRoot, ja.ShouldSucceed, ja.ShouldSucceedComplete)
			if err != nil {
				return nil, err
			}
			if !ja.SourceEpoch.set || !ja.TargetEpoch.set {
				return nil, badCase("%s: source_epoch and target_epoch are required", where)
			}
			st.atts = append(st.atts, attCheck{pk: pk, source: ja.SourceEpoch.v, target: ja.TargetEpoch.v, root: root, expect: expect})
		}
		tc.steps = append(tc.steps, st)
	}
	return tc, nil
}

func parseItem(where, pubkey string, signingRoot *string, should, complete *bool) (eth.Pubkey, *eth.Root, bool, error) {
	pk, err := eth.ParsePubkey(pubkey)
	if err != nil {
		return pk, nil, false, badCase("%s.pubkey: %v", where, err)
	}
	var root *eth.Root
	if signingRoot != nil {
		r, err := eth.ParseRoot(*signingRoot)
		if err != nil {
			return pk, nil, false, badCase("%s.signing_root: %v", where, err)
		}
		root = &r
	}
	switch {
	case complete != nil:
		return pk, root, *complete, nil
	case should != nil:
		return pk, root, *should, nil
	}
	return pk, nil, false, badCase("%s: should_succeed_complete (or should_succeed) missing", where)
}

// hexRoot finds every 32-byte hex value in a case file.
var hexRoot = regexp.MustCompile(`0[xX][0-9a-fA-F]{64}`)

// sentinels hands out roots for absent signing roots: each appears nowhere
// in the case file and is handed out once.
type sentinels struct {
	seen map[eth.Root]bool
	n    uint64
}

func newSentinels(raw []byte) *sentinels {
	s := &sentinels{seen: make(map[eth.Root]bool)}
	for _, m := range hexRoot.FindAll(raw, -1) {
		if r, err := eth.ParseRoot(string(m)); err == nil {
			s.seen[r] = true
		}
	}
	return s
}

func (s *sentinels) next() eth.Root {
	for {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], s.n)
		s.n++
		r := eth.Root(sha256.Sum256(append([]byte("regent conformance: absent signing root "), buf[:]...)))
		if !s.seen[r] {
			s.seen[r] = true
			return r
		}
	}
}

// run executes the case and returns "" or what failed. A panic in the
// Target fails the case instead of the run.
func (tc *testCase) run(newTarget NewTarget, raw []byte) (failure string) {
	defer func() {
		if p := recover(); p != nil {
			failure = fmt.Sprintf("panic: %v", p)
		}
	}()
	target, err := newTarget()
	if err != nil {
		return fmt.Sprintf("new target: %v", err)
	}
	roots := newSentinels(raw)
	rootOrSentinel := func(r *eth.Root) eth.Root {
		if r == nil {
			return roots.next()
		}
		return *r
	}
	for si, st := range tc.steps {
		err := target.Import(st.interchange, tc.gvr)
		switch {
		case !st.shouldSucceed:
			if err == nil {
				return fmt.Sprintf("step %d import: expected refusal, got success", si)
			}
		case err == nil:
		case st.slashable && errors.Is(err, slashing.ErrSlashableImport):
			return "" // refusing slashable data is allowed; the rest is skipped
		case st.slashable:
			return fmt.Sprintf("step %d import: refused with %v; a step with contains_slashable_data may only be refused as slashable", si, err)
		default:
			return fmt.Sprintf("step %d import: expected success, got %v", si, err)
		}
		for bi, b := range st.blocks {
			res, err := target.SignBlock(tc.gvr, b.pk, b.slot, rootOrSentinel(b.root))
			if msg := verdict(res, err, b.expect); msg != "" {
				return fmt.Sprintf("step %d block %d (slot %d): %s", si, bi, b.slot, msg)
			}
		}
		for ai, a := range st.atts {
			res, err := target.SignAttestation(tc.gvr, a.pk, a.source, a.target, rootOrSentinel(a.root))
			if msg := verdict(res, err, a.expect); msg != "" {
				return fmt.Sprintf("step %d attestation %d (source %d, target %d): %s", si, ai, a.source, a.target, msg)
			}
		}
	}
	return ""
}

// verdict compares a result with the expectation; "" means it matches.
func verdict(res slashing.Result, err error, expectAccept bool) string {
	if err != nil {
		return fmt.Sprintf("target error: %v", err)
	}
	want := slashing.DecisionDenied
	if expectAccept {
		want = slashing.DecisionAccepted
	}
	if res.Decision == want {
		return ""
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "expected %s, got %s", want, res.Decision)
	if res.Rule != slashing.RuleNone || res.Reason != "" {
		fmt.Fprintf(&b, " (%s: %s)", res.Rule, res.Reason)
	}
	return b.String()
}
