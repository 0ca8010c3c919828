package cometbft

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/regent-signer/regent/slashing"
)

// req is one signing request in a test: the message plus optional overrides
// of what the request claims.
type req struct {
	key   string
	chain string // defaults to m.chain
	hrs   *HRS   // defaults to m.hrs()
	m     tm
	raw   []byte // overrides m.bytes()
}

func (r req) args() (string, string, HRS, []byte) {
	key := r.key
	if key == "" {
		key = "key-1"
	}
	chain := r.chain
	if chain == "" {
		chain = r.m.chain
	}
	hrs := r.m.hrs()
	if r.hrs != nil {
		hrs = *r.hrs
	}
	b := r.raw
	if b == nil {
		b = r.m.bytes()
	}
	return key, chain, hrs, b
}

func hrsp(h int64, r int32, s Step) *HRS { return &HRS{Height: h, Round: r, Step: s} }

// want names which bytes an accepted outcome must carry.
type wantBytes int

const (
	wantNone     wantBytes = iota // not accepted: nil
	wantRequest                   // the request's own bytes
	wantPriorEnd                  // the bytes of the last prior request
)

// TestRules has one row per rule outcome; every row builds its own State
// from its own prior requests (all of which must be accepted).
func TestRules(t *testing.T) {
	tests := []struct {
		name     string
		prior    []req
		req      req
		decision slashing.Decision
		rule     slashing.Rule
		errIs    error
		same     bool
		reused   bool
		bytes    wantBytes
		reason   []string // substrings the reason must contain
	}{
		// Accepted, new position.
		{name: "first request", req: req{m: prevote(10, 0, 1)},
			decision: slashing.DecisionAccepted, bytes: wantRequest},
		{name: "higher height", prior: []req{{m: precommit(10, 5, 1)}}, req: req{m: proposal(11, 0, 2)},
			decision: slashing.DecisionAccepted, bytes: wantRequest},
		{name: "same height higher round", prior: []req{{m: precommit(10, 0, 1)}}, req: req{m: prevote(10, 1, 0)},
			decision: slashing.DecisionAccepted, bytes: wantRequest},
		{name: "same round higher step propose to prevote", prior: []req{{m: proposal(10, 0, 1)}}, req: req{m: prevote(10, 0, 2)},
			decision: slashing.DecisionAccepted, bytes: wantRequest},
		{name: "same round prevote to precommit", prior: []req{{m: prevote(10, 0, 1)}}, req: req{m: precommit(10, 0, 0)},
			decision: slashing.DecisionAccepted, bytes: wantRequest},
		{name: "other key is independent", prior: []req{{key: "key-2", m: precommit(99, 0, 1)}}, req: req{m: prevote(10, 0, 1)},
			decision: slashing.DecisionAccepted, bytes: wantRequest},
		{name: "other chain is independent", prior: []req{{m: func() tm { m := precommit(99, 0, 1); m.chain = "chain-b"; return m }()}}, req: req{m: prevote(10, 0, 1)},
			decision: slashing.DecisionAccepted, bytes: wantRequest},

		// Regression.
		{name: "lower height", prior: []req{{m: prevote(10, 0, 1)}}, req: req{m: precommit(9, 3, 1)},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSRegression,
			reason: []string{"height 9 round 3 step precommit", "height 10 round 0 step prevote"}},
		{name: "same height lower round", prior: []req{{m: prevote(10, 2, 1)}}, req: req{m: precommit(10, 1, 1)},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSRegression,
			reason: []string{"round 1", "round 2"}},
		{name: "same round lower step precommit to prevote", prior: []req{{m: precommit(10, 0, 1)}}, req: req{m: prevote(10, 0, 1)},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSRegression},
		{name: "same round lower step prevote to proposal", prior: []req{{m: prevote(10, 0, 1)}}, req: req{m: proposal(10, 0, 1)},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSRegression},
		{name: "regression below an older re-sign", prior: []req{{m: prevote(10, 0, 1)}, {m: prevote(11, 0, 1)}}, req: req{m: prevote(10, 0, 1)},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSRegression},

		// Same HRS.
		{name: "identical bytes re-sign", prior: []req{{m: precommit(10, 0, 1)}}, req: req{m: precommit(10, 0, 1)},
			decision: slashing.DecisionAccepted, same: true, bytes: wantRequest},
		{name: "timestamp only later", prior: []req{{m: precommit(10, 0, 1)}}, req: req{m: precommit(10, 0, 1).withTS(1_700_000_009, 1)},
			decision: slashing.DecisionAccepted, same: true, reused: true, bytes: wantPriorEnd},
		{name: "timestamp only earlier still returns recorded", prior: []req{{m: precommit(10, 0, 1)}}, req: req{m: precommit(10, 0, 1).withTS(1, 0)},
			decision: slashing.DecisionAccepted, same: true, reused: true, bytes: wantPriorEnd},
		{name: "proposal timestamp only", prior: []req{{m: proposal(10, 0, 1)}}, req: req{m: proposal(10, 0, 1).withTS(1_800_000_000, 0)},
			decision: slashing.DecisionAccepted, same: true, reused: true, bytes: wantPriorEnd},
		{name: "nil prevote timestamp only", prior: []req{{m: prevote(10, 0, 0)}}, req: req{m: prevote(10, 0, 0).withTS(1_700_000_001, 0)},
			decision: slashing.DecisionAccepted, same: true, reused: true, bytes: wantPriorEnd},
		{name: "different block", prior: []req{{m: precommit(10, 0, 1)}}, req: req{m: precommit(10, 0, 2)},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSConflict, reason: []string{"block_id", "height 10 round 0 step precommit"}},
		{name: "block vs nil", prior: []req{{m: prevote(10, 0, 1)}}, req: req{m: prevote(10, 0, 0)},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSConflict, reason: []string{"block_id"}},
		{name: "different block and timestamp", prior: []req{{m: prevote(10, 0, 1)}}, req: req{m: prevote(10, 0, 2).withTS(5, 5)},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSConflict},
		{name: "proposal different pol_round", prior: []req{{m: proposal(10, 3, 1)}}, req: req{m: func() tm { m := proposal(10, 3, 1); m.pol = 2; return m }()},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSConflict, reason: []string{"pol_round"}},
		{name: "after timestamp retry the first bytes still rule", prior: []req{{m: precommit(10, 0, 1)}, {m: precommit(10, 0, 1).withTS(7, 0)}}, req: req{m: precommit(10, 0, 2)},
			decision: slashing.DecisionDenied, rule: slashing.RuleHRSConflict},

		// Failed: invalid or lying requests.
		{name: "hrs lies about height", req: req{m: prevote(10, 0, 1), hrs: hrsp(11, 0, StepPrevote)},
			decision: slashing.DecisionFailed, errIs: ErrRequestMismatch},
		{name: "hrs lies about round", req: req{m: prevote(10, 0, 1), hrs: hrsp(10, 1, StepPrevote)},
			decision: slashing.DecisionFailed, errIs: ErrRequestMismatch},
		{name: "prevote claimed as precommit", req: req{m: prevote(10, 0, 1), hrs: hrsp(10, 0, StepPrecommit)},
			decision: slashing.DecisionFailed, errIs: ErrRequestMismatch},
		{name: "proposal claimed as prevote", req: req{m: proposal(10, 0, 1), hrs: hrsp(10, 0, StepPrevote)},
			decision: slashing.DecisionFailed, errIs: ErrRequestMismatch},
		{name: "lie that would dodge a regression", prior: []req{{m: precommit(10, 0, 1)}}, req: req{m: prevote(9, 0, 2), hrs: hrsp(11, 0, StepPrevote)},
			decision: slashing.DecisionFailed, errIs: ErrRequestMismatch},
		{name: "chain mismatch", req: req{m: prevote(10, 0, 1), chain: "chain-b"},
			decision: slashing.DecisionFailed, errIs: ErrRequestMismatch},
		{name: "malformed sign bytes", req: req{m: prevote(10, 0, 1), raw: []byte{3, 8, 1, 0}},
			decision: slashing.DecisionFailed, errIs: ErrMalformedSignBytes},
		{name: "vote extension bytes", req: req{m: prevote(10, 0, 1), raw: delim(msg(str(1, "x"), fx(2, 10), str(4, "chain-a")))},
			decision: slashing.DecisionFailed, errIs: ErrMalformedSignBytes},
		{name: "step zero", req: req{m: prevote(10, 0, 1), hrs: hrsp(10, 0, 0)},
			decision: slashing.DecisionFailed, errIs: ErrInvalidRequest},
		{name: "step four", req: req{m: prevote(10, 0, 1), hrs: hrsp(10, 0, 4)},
			decision: slashing.DecisionFailed, errIs: ErrInvalidRequest},
		{name: "height zero", req: req{m: prevote(10, 0, 1), hrs: hrsp(0, 0, StepPrevote)},
			decision: slashing.DecisionFailed, errIs: ErrInvalidRequest},
		{name: "negative round", req: req{m: prevote(10, 0, 1), hrs: hrsp(10, -1, StepPrevote)},
			decision: slashing.DecisionFailed, errIs: ErrInvalidRequest},
		{name: "key too long", req: req{m: prevote(10, 0, 1), key: strings.Repeat("k", MaxKeyIDLen+1)},
			decision: slashing.DecisionFailed, errIs: ErrInvalidRequest},
		{name: "key not utf-8", req: req{m: prevote(10, 0, 1), key: "\xff"},
			decision: slashing.DecisionFailed, errIs: ErrInvalidRequest},
		{name: "chain too long", req: req{m: prevote(10, 0, 1), chain: strings.Repeat("c", MaxChainIDLen+1)},
			decision: slashing.DecisionFailed, errIs: ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState()
			var priorEnd []byte
			for i, p := range tc.prior {
				o := s.Record(p.args())
				if !o.Accepted() {
					t.Fatalf("prior request %d not accepted: %+v", i, o.Result)
				}
				priorEnd = o.SignBytes
			}
			key, chain, hrs, b := tc.req.args()
			lastBefore, hadBefore := s.Last(key, chain)
			before := snapshotBytes(t, s)

			checked := s.Check(key, chain, hrs, b)
			if !bytes.Equal(before, snapshotBytes(t, s)) {
				t.Fatal("Check changed the State")
			}
			o := s.Record(key, chain, hrs, b)
			if !outcomesEqual(checked, o) {
				t.Fatalf("Check and Record disagree:\n check  %+v\n record %+v", checked, o)
			}

			if o.Decision != tc.decision || o.Rule != tc.rule {
				t.Fatalf("decision %v rule %q (%s), want %v rule %q", o.Decision, o.Rule, o.Reason, tc.decision, tc.rule)
			}
			if tc.errIs != nil {
				if !errors.Is(o.Err, tc.errIs) || !errors.Is(o.Err, slashing.ErrInvalidInput) {
					t.Fatalf("err %v, want %v wrapping slashing.ErrInvalidInput", o.Err, tc.errIs)
				}
				if o.Reason == "" {
					t.Fatal("failed outcome without a reason")
				}
			} else if o.Err != nil {
				t.Fatalf("unexpected err %v", o.Err)
			}
			if o.SameHRS != tc.same || o.ReusedEarlier != tc.reused {
				t.Fatalf("SameHRS %v ReusedEarlier %v, want %v %v", o.SameHRS, o.ReusedEarlier, tc.same, tc.reused)
			}
			for _, sub := range tc.reason {
				if !strings.Contains(o.Reason, sub) {
					t.Errorf("reason %q lacks %q", o.Reason, sub)
				}
			}
			if tc.decision == slashing.DecisionDenied && o.Reason == "" {
				t.Fatal("denied without a reason")
			}

			var want []byte
			switch tc.bytes {
			case wantRequest:
				want = b
			case wantPriorEnd:
				want = priorEnd
			}
			if !bytes.Equal(o.SignBytes, want) {
				t.Fatalf("SignBytes\n got %x\nwant %x", o.SignBytes, want)
			}
			if o.Accepted() {
				ts, err := SignBytesTimestamp(o.SignBytes)
				if err != nil || ts != o.Timestamp {
					t.Fatalf("Timestamp %v does not match the bytes to sign (%v, %v)", o.Timestamp, ts, err)
				}
			}

			// The State moves only on acceptance at a new position.
			last, has := s.Last(key, chain)
			if o.Accepted() && !o.SameHRS {
				if !has || last != hrs {
					t.Fatalf("after acceptance Last = %v, %v; want %v", last, has, hrs)
				}
			} else if !bytes.Equal(before, snapshotBytes(t, s)) || last != lastBefore || has != hadBefore {
				t.Fatal("State changed on an outcome that must not change it")
			}
		})
	}
}

func outcomesEqual(a, b Outcome) bool {
	return a.Decision == b.Decision && a.Rule == b.Rule && a.Reason == b.Reason &&
		errText(a.Err) == errText(b.Err) &&
		bytes.Equal(a.SignBytes, b.SignBytes) && a.Timestamp == b.Timestamp &&
		a.SameHRS == b.SameHRS && a.ReusedEarlier == b.ReusedEarlier
}

func TestEmptyKeyFails(t *testing.T) {
	s := NewState()
	m := prevote(1, 0, 1)
	o := s.Record("", m.chain, m.hrs(), m.bytes())
	if o.Decision != slashing.DecisionFailed || !errors.Is(o.Err, ErrInvalidRequest) {
		t.Fatalf("empty key: %+v", o.Result)
	}
	if s.Len() != 0 {
		t.Fatal("State changed")
	}
}

func TestZeroValueStateAndOutcome(t *testing.T) {
	var o Outcome
	if o.Accepted() || o.Decision != slashing.DecisionUnknown {
		t.Fatal("zero Outcome must not be accepted")
	}
	var s State // zero value is usable
	m := prevote(1, 0, 1)
	if o := s.Check("k", m.chain, m.hrs(), m.bytes()); !o.Accepted() {
		t.Fatalf("zero State Check: %+v", o.Result)
	}
	if o := s.Record("k", m.chain, m.hrs(), m.bytes()); !o.Accepted() {
		t.Fatalf("zero State Record: %+v", o.Result)
	}
	if h, ok := s.Last("k", m.chain); !ok || h != m.hrs() {
		t.Fatalf("Last = %v, %v", h, ok)
	}
}

func TestOutcomeBytesDoNotAlias(t *testing.T) {
	s := NewState()
	m := precommit(4, 0, 1)
	in := m.bytes()
	o := s.Record("k", m.chain, m.hrs(), in)
	in[len(in)-1] ^= 1                              // caller reuses its buffer
	o.SignBytes[0] ^= 0xff                          // caller scribbles on the outcome
	o2 := s.Check("k", m.chain, m.hrs(), m.bytes()) // must still be a plain re-sign
	if !o2.Accepted() || o2.ReusedEarlier || !bytes.Equal(o2.SignBytes, m.bytes()) {
		t.Fatalf("State was changed through an aliased slice: %+v", o2)
	}
	e := s.Entries()
	e[0].SignBytes[0] ^= 0xff
	if o3 := s.Check("k", m.chain, m.hrs(), m.bytes()); !o3.Accepted() || o3.ReusedEarlier {
		t.Fatal("State was changed through Entries")
	}
}

func TestLastAndMaxHeight(t *testing.T) {
	s := NewState()
	if _, ok := s.Last("k", "chain-a"); ok {
		t.Fatal("Last on empty State")
	}
	if h := s.MaxHeight("chain-a"); h != 0 {
		t.Fatalf("MaxHeight on empty State = %d", h)
	}
	onB := func(m tm) tm { m.chain = "chain-b"; return m }
	for _, r := range []req{
		{key: "k1", m: precommit(7, 2, 1)},
		{key: "k2", m: prevote(12, 0, 1)},
		{key: "k1", m: onB(prevote(100, 0, 1))},
		{key: "k3", m: proposal(3, 0, 1)},
	} {
		if o := s.Record(r.args()); !o.Accepted() {
			t.Fatalf("%+v: %+v", r, o.Result)
		}
	}
	if got := s.MaxHeight("chain-a"); got != 12 {
		t.Fatalf("MaxHeight(chain-a) = %d, want 12", got)
	}
	if got := s.MaxHeight("chain-b"); got != 100 {
		t.Fatalf("MaxHeight(chain-b) = %d, want 100", got)
	}
	if got := s.MaxHeight("chain-c"); got != 0 {
		t.Fatalf("MaxHeight(chain-c) = %d, want 0", got)
	}
	if h, ok := s.Last("k1", "chain-a"); !ok || h != (HRS{7, 2, StepPrecommit}) {
		t.Fatalf("Last(k1, chain-a) = %v, %v", h, ok)
	}
	if got := len(s.Entries()); got != 4 || s.Len() != 4 {
		t.Fatalf("Entries = %d, Len = %d, want 4", got, s.Len())
	}
}

func TestImport(t *testing.T) {
	tests := []struct {
		name      string
		prior     []req
		hrs       HRS
		signBytes []byte
		key       string
		chain     string
		errIs     error
		wantLast  HRS
		// then: a probe request and its expected decision
		probe    tm
		probeDec slashing.Decision
	}{
		{name: "watermark into empty state", hrs: HRS{100, 2, StepPrecommit},
			wantLast: HRS{100, 2, StepPrecommit}, probe: precommit(100, 2, 1), probeDec: slashing.DecisionDenied},
		{name: "watermark allows above", hrs: HRS{100, 2, StepPrevote},
			wantLast: HRS{100, 2, StepPrevote}, probe: precommit(100, 2, 1), probeDec: slashing.DecisionAccepted},
		{name: "watermark denies below", hrs: HRS{100, 2, StepPrevote},
			wantLast: HRS{100, 2, StepPrevote}, probe: precommit(99, 9, 1), probeDec: slashing.DecisionDenied},
		{name: "with sign bytes allows re-sign", hrs: precommit(50, 0, 1).hrs(), signBytes: precommit(50, 0, 1).bytes(),
			wantLast: precommit(50, 0, 1).hrs(), probe: precommit(50, 0, 1).withTS(9, 0), probeDec: slashing.DecisionAccepted},
		{name: "lower than recorded is ignored", prior: []req{{m: prevote(60, 0, 1)}}, hrs: HRS{50, 0, StepPrecommit},
			wantLast: prevote(60, 0, 1).hrs(), probe: prevote(60, 0, 1), probeDec: slashing.DecisionAccepted},
		{name: "higher than recorded wins", prior: []req{{m: prevote(60, 0, 1)}}, hrs: HRS{70, 0, StepPropose},
			wantLast: HRS{70, 0, StepPropose}, probe: prevote(60, 0, 1), probeDec: slashing.DecisionDenied},
		{name: "equal position conflicting bytes", prior: []req{{m: prevote(60, 0, 1)}},
			hrs: prevote(60, 0, 2).hrs(), signBytes: prevote(60, 0, 2).bytes(), errIs: ErrImportConflict,
			wantLast: prevote(60, 0, 1).hrs(), probe: prevote(60, 0, 1), probeDec: slashing.DecisionAccepted},
		{name: "equal position timestamp-only keeps recorded", prior: []req{{m: prevote(60, 0, 1)}},
			hrs: prevote(60, 0, 1).hrs(), signBytes: prevote(60, 0, 1).withTS(3, 0).bytes(),
			wantLast: prevote(60, 0, 1).hrs(), probe: prevote(60, 0, 1), probeDec: slashing.DecisionAccepted},
		{name: "bytes disagree with hrs", hrs: HRS{61, 0, StepPrevote}, signBytes: prevote(60, 0, 1).bytes(), errIs: ErrRequestMismatch,
			probe: prevote(1, 0, 1), probeDec: slashing.DecisionAccepted},
		{name: "malformed bytes", hrs: HRS{61, 0, StepPrevote}, signBytes: []byte{1, 0}, errIs: ErrMalformedSignBytes,
			probe: prevote(1, 0, 1), probeDec: slashing.DecisionAccepted},
		{name: "invalid hrs", hrs: HRS{0, 0, StepPrevote}, errIs: ErrInvalidRequest,
			probe: prevote(1, 0, 1), probeDec: slashing.DecisionAccepted},
		{name: "invalid key", key: "\xff", hrs: HRS{5, 0, StepPrevote}, errIs: ErrInvalidRequest,
			probe: prevote(1, 0, 1), probeDec: slashing.DecisionAccepted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState()
			for _, p := range tc.prior {
				if o := s.Record(p.args()); !o.Accepted() {
					t.Fatalf("prior: %+v", o.Result)
				}
			}
			key := tc.key
			if key == "" {
				key = "key-1"
			}
			chain := tc.chain
			if chain == "" {
				chain = "chain-a"
			}
			before := snapshotBytes(t, s)
			err := s.Import(key, chain, tc.hrs, tc.signBytes)
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("err = %v, want %v", err, tc.errIs)
				}
				if !bytes.Equal(before, snapshotBytes(t, s)) {
					t.Fatal("failed Import changed the State")
				}
			} else if err != nil {
				t.Fatalf("Import: %v", err)
			}
			if tc.wantLast != (HRS{}) {
				if last, ok := s.Last(key, chain); !ok || last != tc.wantLast {
					t.Fatalf("Last = %v, %v; want %v", last, ok, tc.wantLast)
				}
			}
			if o := s.Check("key-1", tc.probe.chain, tc.probe.hrs(), tc.probe.bytes()); o.Decision != tc.probeDec {
				t.Fatalf("probe %+v: %v (%s), want %v", tc.probe.hrs(), o.Decision, o.Reason, tc.probeDec)
			}
		})
	}
}

func TestImportAdoptsBytesAtWatermark(t *testing.T) {
	s := NewState()
	m := precommit(80, 1, 1)
	if err := s.Import("k", m.chain, m.hrs(), nil); err != nil {
		t.Fatal(err)
	}
	if o := s.Check("k", m.chain, m.hrs(), m.bytes()); o.Accepted() {
		t.Fatal("bare watermark allowed a sign at its own position")
	}
	if err := s.Import("k", m.chain, m.hrs(), m.bytes()); err != nil {
		t.Fatal(err)
	}
	if o := s.Check("k", m.chain, m.hrs(), m.bytes()); !o.Accepted() || !o.SameHRS {
		t.Fatalf("re-sign after adopting bytes: %+v", o.Result)
	}
	if o := s.Check("k", m.chain, m.hrs(), precommit(80, 1, 2).bytes()); o.Rule != slashing.RuleHRSConflict {
		t.Fatalf("conflict after adopting bytes: %+v", o.Result)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	s := NewState()
	m := prevote(5, 0, 1)
	s.Record("k", m.chain, m.hrs(), m.bytes())
	c := s.Clone()
	n := precommit(5, 0, 1)
	c.Record("k", n.chain, n.hrs(), n.bytes())
	if last, _ := s.Last("k", m.chain); last != m.hrs() {
		t.Fatalf("original moved to %v", last)
	}
	if last, _ := c.Last("k", m.chain); last != n.hrs() {
		t.Fatalf("clone at %v", last)
	}
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
