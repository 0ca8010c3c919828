package eth

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/regent-signer/regent/slashing"
)

func TestBlockRules(t *testing.T) {
	k := pk(1)
	tests := []struct {
		name   string
		setup  func(t *testing.T, s *State)
		slot   uint64
		root   SigningRoot
		want   slashing.Decision
		rule   slashing.Rule
		reason []string // substrings of Reason
	}{
		{
			name:  "empty history accepts any slot",
			setup: func(t *testing.T, s *State) {},
			slot:  0, root: rt(1), want: slashing.DecisionAccepted,
		},
		{
			name:  "identical re-sign is accepted",
			setup: func(t *testing.T, s *State) { mustBlock(t, s, k, 10, rt(1)) },
			slot:  10, root: rt(1), want: slashing.DecisionAccepted,
		},
		{
			name:  "different root at a signed slot is a double proposal",
			setup: func(t *testing.T, s *State) { mustBlock(t, s, k, 10, rt(1)) },
			slot:  10, root: rt(2), want: slashing.DecisionDenied, rule: slashing.RuleBlockDoubleProposal,
			reason: []string{"slot 10 already signed with root " + rt(1).String(), "requested " + rt(2).String()},
		},
		{
			name:  "absent recorded root never matches",
			setup: func(t *testing.T, s *State) { mustBlock(t, s, k, 10, absent) },
			slot:  10, root: rt(1), want: slashing.DecisionDenied, rule: slashing.RuleBlockDoubleProposal,
			reason: []string{"(absent)"},
		},
		{
			name:  "absent requested root never matches",
			setup: func(t *testing.T, s *State) { mustBlock(t, s, k, 10, rt(1)) },
			slot:  10, root: absent, want: slashing.DecisionDenied, rule: slashing.RuleBlockDoubleProposal,
		},
		{
			name:  "slot below the first signed slot is refused",
			setup: func(t *testing.T, s *State) { mustBlock(t, s, k, 10, rt(1)); mustBlock(t, s, k, 20, rt(2)) },
			slot:  9, root: rt(3), want: slashing.DecisionDenied, rule: slashing.RuleBlockBelowWatermark,
			reason: []string{"slot 9 is at or below the lowest-allowed slot watermark 10"},
		},
		{
			name:  "unsigned slot between signed slots is accepted (complete history)",
			setup: func(t *testing.T, s *State) { mustBlock(t, s, k, 10, rt(1)); mustBlock(t, s, k, 20, rt(2)) },
			slot:  15, root: rt(3), want: slashing.DecisionAccepted,
		},
		{
			name:  "other key is independent",
			setup: func(t *testing.T, s *State) { mustBlock(t, s, pk(2), 10, rt(1)) },
			slot:  5, root: rt(2), want: slashing.DecisionAccepted,
		},
		{
			name: "other chain is independent",
			setup: func(t *testing.T, s *State) {
				if r := s.RecordBlock(otherGVR, k, 10, rt(1).Value); !r.Accepted() {
					t.Fatal(r.Reason)
				}
			},
			slot: 5, root: rt(2), want: slashing.DecisionAccepted,
		},
		{
			name: "pruned slot is refused even with its old root",
			setup: func(t *testing.T, s *State) {
				mustBlock(t, s, k, 10, rt(1))
				mustBlock(t, s, k, 100, rt(2))
				s.Prune(testGVR, k, 2) // first slot 64: folds slot 10
			},
			slot: 10, root: rt(1), want: slashing.DecisionDenied, rule: slashing.RuleBlockBelowWatermark,
		},
		{
			name: "slot above the pruned watermark is accepted",
			setup: func(t *testing.T, s *State) {
				mustBlock(t, s, k, 10, rt(1))
				mustBlock(t, s, k, 100, rt(2))
				s.Prune(testGVR, k, 2)
			},
			slot: 11, root: rt(3), want: slashing.DecisionAccepted,
		},
		{
			name: "imported slot without root refuses a re-sign at that slot",
			setup: func(t *testing.T, s *State) {
				mustImport(t, s, interchangeDoc(k, `[{"slot":"15"}]`, `[]`))
			},
			slot: 15, root: rt(1), want: slashing.DecisionDenied, rule: slashing.RuleBlockDoubleProposal,
		},
		{
			name: "identical re-sign at the import watermark is accepted",
			setup: func(t *testing.T, s *State) {
				mustImport(t, s, interchangeDoc(k, `[{"slot":"15","signing_root":"`+rt(1).String()+`"},{"slot":"17"}]`, `[]`))
			},
			slot: 15, root: rt(1), want: slashing.DecisionAccepted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestState(t, Options{})
			tt.setup(t, s)
			before := snapshot(t, s)
			res, _, _ := s.lookup(testGVR, k).checkBlock(tt.slot, tt.root)
			checkResult(t, res, tt.want, tt.rule, tt.reason)
			if !bytes.Equal(before, snapshot(t, s)) {
				t.Fatal("check mutated the state")
			}
			rec := s.recordBlock(testGVR, k, tt.slot, tt.root)
			if !sameDecision(rec, res) || rec.Reason != res.Reason {
				t.Fatalf("record %+v differs from check %+v", rec, res)
			}
			if !rec.Accepted() && !bytes.Equal(before, snapshot(t, s)) {
				t.Fatal("refused record mutated the state")
			}
		})
	}
}

func TestAttestationRules(t *testing.T) {
	k := pk(1)
	tests := []struct {
		name           string
		setup          func(t *testing.T, s *State)
		source, target uint64
		root           SigningRoot
		want           slashing.Decision
		rule           slashing.Rule
		reason         []string
	}{
		{
			name: "empty history accepts", setup: func(t *testing.T, s *State) {},
			source: 0, target: 0, root: rt(1), want: slashing.DecisionAccepted,
		},
		{
			name: "source after target", setup: func(t *testing.T, s *State) {},
			source: 5, target: 4, root: rt(1), want: slashing.DecisionDenied, rule: slashing.RuleAttSourceAfterTarget,
			reason: []string{"source epoch 5 is after target epoch 4"},
		},
		{
			name:   "identical re-sign",
			setup:  func(t *testing.T, s *State) { mustAtt(t, s, k, 5, 10, rt(1)) },
			source: 5, target: 10, root: rt(1), want: slashing.DecisionAccepted,
		},
		{
			name:   "double vote, different root",
			setup:  func(t *testing.T, s *State) { mustAtt(t, s, k, 5, 10, rt(0xab)) },
			source: 5, target: 10, root: rt(0xcd), want: slashing.DecisionDenied, rule: slashing.RuleAttDoubleVote,
			reason: []string{"target epoch 10 already signed with root " + rt(0xab).String(), "(requested " + rt(0xcd).String() + ")"},
		},
		{
			name:   "double vote, different source same root",
			setup:  func(t *testing.T, s *State) { mustAtt(t, s, k, 5, 10, rt(1)) },
			source: 6, target: 10, root: rt(1), want: slashing.DecisionDenied, rule: slashing.RuleAttDoubleVote,
			reason: []string{"already signed with source 5", "requested source 6"},
		},
		{
			name:   "double vote against an absent root",
			setup:  func(t *testing.T, s *State) { mustAtt(t, s, k, 5, 10, absent) },
			source: 5, target: 10, root: rt(1), want: slashing.DecisionDenied, rule: slashing.RuleAttDoubleVote,
		},
		{
			name:   "surrounding the first vote is caught by the source floor",
			setup:  func(t *testing.T, s *State) { mustAtt(t, s, k, 5, 10, rt(1)); mustAtt(t, s, k, 10, 11, rt(2)) },
			source: 4, target: 12, root: rt(3), want: slashing.DecisionDenied, rule: slashing.RuleAttSourceBelowMin,
		},
		{
			name: "surrounding a later vote",
			setup: func(t *testing.T, s *State) {
				mustAtt(t, s, k, 2, 3, rt(1))
				mustAtt(t, s, k, 6, 8, rt(2))
			},
			source: 5, target: 9, root: rt(3), want: slashing.DecisionDenied, rule: slashing.RuleAttSurrounding,
			reason: []string{"vote (source 5, target 9) surrounds signed vote (source 6, target 8)"},
		},
		{
			name: "surrounded",
			setup: func(t *testing.T, s *State) {
				mustAtt(t, s, k, 2, 3, rt(1))
				mustAtt(t, s, k, 4, 10, rt(2))
			},
			source: 5, target: 9, root: rt(3), want: slashing.DecisionDenied, rule: slashing.RuleAttSurrounded,
			reason: []string{"vote (source 5, target 9) is surrounded by signed vote (source 4, target 10)"},
		},
		{
			name: "same source, larger target is fine",
			setup: func(t *testing.T, s *State) {
				mustAtt(t, s, k, 4, 10, rt(2))
			},
			source: 4, target: 11, root: rt(3), want: slashing.DecisionAccepted,
		},
		{
			name: "vote between two signed votes that does not surround",
			setup: func(t *testing.T, s *State) {
				mustAtt(t, s, k, 2, 3, rt(1))
				mustAtt(t, s, k, 7, 10, rt(2))
			},
			source: 3, target: 5, root: rt(3), want: slashing.DecisionAccepted,
		},
		{
			name:   "target below the first vote's target",
			setup:  func(t *testing.T, s *State) { mustAtt(t, s, k, 5, 10, rt(1)) },
			source: 5, target: 9, root: rt(2), want: slashing.DecisionDenied, rule: slashing.RuleAttTargetBelowMin,
			reason: []string{"target epoch 9 is at or below the minimum target watermark 10"},
		},
		{
			name:   "source below the first vote's source",
			setup:  func(t *testing.T, s *State) { mustAtt(t, s, k, 5, 10, rt(1)) },
			source: 4, target: 11, root: rt(2), want: slashing.DecisionDenied, rule: slashing.RuleAttSourceBelowMin,
			reason: []string{"source epoch 4 is below the minimum source watermark 5"},
		},
		{
			name: "pruned target refuses even its identical re-sign",
			setup: func(t *testing.T, s *State) {
				mustAtt(t, s, k, 5, 10, rt(1))
				mustAtt(t, s, k, 10, 20, rt(2))
				s.Prune(testGVR, k, 15)
			},
			source: 5, target: 10, root: rt(1), want: slashing.DecisionDenied, rule: slashing.RuleAttTargetBelowMin,
		},
		{
			name: "vote that would have surrounded a pruned vote is refused",
			setup: func(t *testing.T, s *State) {
				mustAtt(t, s, k, 5, 10, rt(1))
				mustAtt(t, s, k, 10, 20, rt(2))
				s.Prune(testGVR, k, 15)
			},
			source: 4, target: 25, root: rt(3), want: slashing.DecisionDenied, rule: slashing.RuleAttSourceBelowMin,
		},
		{
			name: "import watermark refuses in the gap",
			setup: func(t *testing.T, s *State) {
				mustAtt(t, s, k, 2, 30, rt(1))
				mustImport(t, s, interchangeDoc(k, `[]`, `[{"source_epoch":"10","target_epoch":"50"}]`))
			},
			source: 9, target: 49, root: rt(2), want: slashing.DecisionDenied, rule: slashing.RuleAttTargetBelowMin,
		},
		{
			name: "identical re-sign at the import watermark",
			setup: func(t *testing.T, s *State) {
				mustImport(t, s, interchangeDoc(k, `[]`, `[{"source_epoch":"5","target_epoch":"15","signing_root":"`+rt(7).String()+`"}]`))
			},
			source: 5, target: 15, root: rt(7), want: slashing.DecisionAccepted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestState(t, Options{})
			tt.setup(t, s)
			before := snapshot(t, s)
			res, _, _ := s.lookup(testGVR, k).checkAtt(tt.source, tt.target, tt.root)
			checkResult(t, res, tt.want, tt.rule, tt.reason)
			if !bytes.Equal(before, snapshot(t, s)) {
				t.Fatal("check mutated the state")
			}
			rec := s.recordAtt(testGVR, k, tt.source, tt.target, tt.root)
			if !sameDecision(rec, res) || rec.Reason != res.Reason {
				t.Fatalf("record %+v differs from check %+v", rec, res)
			}
			if !rec.Accepted() && !bytes.Equal(before, snapshot(t, s)) {
				t.Fatal("refused record mutated the state")
			}
		})
	}
}

func TestPublicAPIUsesPresentRoots(t *testing.T) {
	s := newTestState(t, Options{})
	k := pk(1)
	r := Root{1}
	if res := s.RecordBlock(testGVR, k, 5, r); !res.Accepted() {
		t.Fatal(res.Reason)
	}
	if res := s.CheckBlock(testGVR, k, 5, r); !res.Accepted() {
		t.Fatalf("identical re-sign via the public API refused: %s", res.Reason)
	}
	if res := s.RecordAttestation(testGVR, k, 1, 2, r); !res.Accepted() {
		t.Fatal(res.Reason)
	}
	if res := s.CheckAttestation(testGVR, k, 1, 2, r); !res.Accepted() {
		t.Fatalf("identical re-sign via the public API refused: %s", res.Reason)
	}
	if res := s.CheckAttestation(testGVR, k, 1, 2, Root{2}); res.Rule != slashing.RuleAttDoubleVote {
		t.Fatalf("got %+v", res)
	}
}

func TestIdenticalResignChangesNothing(t *testing.T) {
	s := newTestState(t, Options{})
	k := pk(1)
	mustBlock(t, s, k, 10, rt(1))
	mustAtt(t, s, k, 1, 2, rt(1))
	before := snapshot(t, s)
	mustBlock(t, s, k, 10, rt(1))
	mustAtt(t, s, k, 1, 2, rt(1))
	if !bytes.Equal(before, snapshot(t, s)) {
		t.Fatal("identical re-sign changed the state")
	}
}

func TestCapFoldsOldestDeterministically(t *testing.T) {
	s := newTestState(t, Options{MaxBlocks: 3, MaxAttestations: 3})
	k := pk(1)
	for i := uint64(1); i <= 5; i++ {
		mustBlock(t, s, k, i*10, rt(byte(i)))
		mustAtt(t, s, k, i, i+1, rt(byte(i)))
	}
	w := s.Watermarks(testGVR, k)
	want := Watermarks{BlockFloor: 20, HasBlockFloor: true, SourceFloor: 2, TargetFloor: 3, HasAttestationFloor: true, Blocks: 3, Attestations: 3}
	if w != want {
		t.Fatalf("watermarks %+v, want %+v", w, want)
	}
	if res := s.CheckBlock(testGVR, k, 20, rt(2).Value); res.Rule != slashing.RuleBlockBelowWatermark {
		t.Fatalf("folded block re-sign: %+v", res)
	}
	if res := s.CheckBlock(testGVR, k, 30, rt(3).Value); !res.Accepted() {
		t.Fatalf("retained block re-sign: %+v", res)
	}
	if hw := s.HighWater(testGVR, k); hw != (HighWater{Slot: 50, HasBlock: true, Target: 6, HasAttestation: true}) {
		t.Fatalf("high water %+v", hw)
	}
}

func TestHighWater(t *testing.T) {
	s := newTestState(t, Options{})
	if hw := s.ChainHighWater(testGVR); hw != (HighWater{}) {
		t.Fatalf("empty chain high water %+v", hw)
	}
	mustBlock(t, s, pk(1), 100, rt(1))
	mustBlock(t, s, pk(2), 50, rt(1))
	mustAtt(t, s, pk(2), 3, 7, rt(1))
	mustAtt(t, s, pk(1), 1, 2, rt(1))
	if got := s.MaxSlot(testGVR); got != 100 {
		t.Fatalf("MaxSlot %d", got)
	}
	if got := s.MaxTarget(testGVR); got != 7 {
		t.Fatalf("MaxTarget %d", got)
	}
	// Pruning everything keeps the mark.
	s.PruneChain(testGVR, 1000)
	if hw := s.ChainHighWater(testGVR); hw.Slot != 100 || hw.Target != 7 {
		t.Fatalf("after prune %+v", hw)
	}
	if hw := s.HighWater(testGVR, pk(1)); hw.Slot != 100 || hw.Target != 2 {
		t.Fatalf("key high water after prune %+v", hw)
	}
	if w := s.Watermarks(testGVR, pk(1)); w.Blocks != 0 || w.Attestations != 0 || w.BlockFloor != 100 {
		t.Fatalf("watermarks after prune %+v", w)
	}
	// The restored state reports the same marks.
	c := cloneState(t, s)
	if c.ChainHighWater(testGVR) != s.ChainHighWater(testGVR) {
		t.Fatal("high water lost in snapshot")
	}
}

func TestKeysSortedAndChains(t *testing.T) {
	s := newTestState(t, Options{})
	for _, n := range []byte{9, 3, 7} {
		mustBlock(t, s, pk(n), 1, rt(1))
	}
	keys := s.Keys(testGVR)
	if len(keys) != 3 || keys[0] != pk(3) || keys[1] != pk(7) || keys[2] != pk(9) {
		t.Fatalf("keys %v", keys)
	}
	if got := s.Keys(otherGVR); got != nil {
		t.Fatalf("unknown chain keys %v", got)
	}
	if got := s.Chains(); len(got) != 1 || got[0] != testGVR {
		t.Fatalf("chains %v", got)
	}
	if s.KeyCount() != 3 {
		t.Fatalf("KeyCount %d", s.KeyCount())
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"zero means defaults", Options{}, true},
		{"explicit", Options{MaxBlocks: 1, MaxAttestations: 1, SlotsPerEpoch: 8}, true},
		{"negative blocks", Options{MaxBlocks: -1}, false},
		{"huge attestations", Options{MaxAttestations: MaxRecordsLimit + 1}, false},
		{"huge slots per epoch", Options{SlotsPerEpoch: 1<<20 + 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewState(tt.opts)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v does not wrap ErrInvalidOptions", err)
			}
		})
	}
}

func TestPruneSaturatesSlot(t *testing.T) {
	s := newTestState(t, Options{})
	k := pk(1)
	mustBlock(t, s, k, 1<<63, rt(1))
	if n := s.Prune(testGVR, k, 1<<62); n != 1 {
		t.Fatalf("folded %d, want 1 (first slot saturates)", n)
	}
	if n := s.Prune(otherGVR, k, 5); n != 0 {
		t.Fatalf("unknown key folded %d", n)
	}
}

func checkResult(t *testing.T, res slashing.Result, want slashing.Decision, rule slashing.Rule, reason []string) {
	t.Helper()
	if res.Decision != want || res.Rule != rule {
		t.Fatalf("got %v/%q (%s), want %v/%q", res.Decision, res.Rule, res.Reason, want, rule)
	}
	if want == slashing.DecisionDenied && res.Reason == "" {
		t.Fatal("denied without a reason")
	}
	for _, sub := range reason {
		if !strings.Contains(res.Reason, sub) {
			t.Fatalf("reason %q does not contain %q", res.Reason, sub)
		}
	}
}
