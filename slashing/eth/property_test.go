package eth

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/regent-signer/regent/slashing"
)

// refCheckAtt is the brute-force reference for checkAtt: the same rules in
// the same order, but every question answered by scanning the whole retained
// history. It assumes nothing about its order.
func refCheckAtt(ks *keyState, source, target uint64, root SigningRoot) slashing.Result {
	if source > target {
		return denied(slashing.RuleAttSourceAfterTarget, "")
	}
	if ks == nil {
		return accepted()
	}
	for _, a := range ks.atts {
		if a.target == target {
			if a.source == source && a.root.Matches(root) {
				return accepted()
			}
			return denied(slashing.RuleAttDoubleVote, "")
		}
	}
	if ks.flags&flagAttFloor != 0 {
		if target <= ks.tgtFloor {
			return denied(slashing.RuleAttTargetBelowMin, "")
		}
		if source < ks.srcFloor {
			return denied(slashing.RuleAttSourceBelowMin, "")
		}
	}
	for _, a := range ks.atts {
		if source < a.source && target > a.target {
			return denied(slashing.RuleAttSurrounding, "")
		}
	}
	for _, a := range ks.atts {
		if a.source < source && a.target > target {
			return denied(slashing.RuleAttSurrounded, "")
		}
	}
	return accepted()
}

// refCheckBlock is the brute-force reference for checkBlock.
func refCheckBlock(ks *keyState, slot uint64, root SigningRoot) slashing.Result {
	if ks == nil {
		return accepted()
	}
	for _, b := range ks.blocks {
		if b.slot == slot {
			if b.root.Matches(root) {
				return accepted()
			}
			return denied(slashing.RuleBlockDoubleProposal, "")
		}
	}
	if ks.flags&flagBlockFloor != 0 && slot <= ks.blockFloor {
		return denied(slashing.RuleBlockBelowWatermark, "")
	}
	return accepted()
}

// slashableVote reports whether signing (s, t, root) would add a slashable
// pair to log: a different message at the same target, or a surround. A
// message identical to one already in the log adds nothing (it re-broadcasts
// a signature that exists). It knows nothing about watermarks or the engine.
func slashableVote(log []attRec, s, t uint64, root SigningRoot) bool {
	for _, a := range log {
		if a.target == t && a.source == s && a.root.Matches(root) {
			return false
		}
	}
	for _, a := range log {
		if a.target == t && !(a.source == s && a.root.Matches(root)) {
			return true
		}
		if (s < a.source && t > a.target) || (a.source < s && a.target > t) {
			return true
		}
	}
	return false
}

func slashableBlock(log []blockRec, slot uint64, root SigningRoot) bool {
	for _, b := range log {
		if b.slot == slot && b.root.Matches(root) {
			return false
		}
	}
	for _, b := range log {
		if b.slot == slot && !b.root.Matches(root) {
			return true
		}
	}
	return false
}

// randRoot returns one of a few present roots, or absent.
func randRoot(r *rand.Rand) SigningRoot {
	n := r.IntN(5)
	if n == 4 {
		return absent
	}
	return rt(byte(n))
}

// randVote returns a random vote, source <= target most of the time.
func randVote(r *rand.Rand, span uint64) (uint64, uint64) {
	a, b := r.Uint64N(span), r.Uint64N(span)
	if a > b && r.IntN(10) != 0 {
		a, b = b, a
	}
	return a, b
}

// fullLog records every message a State ever accepted, per key, never pruned.
type fullLog struct {
	blocks map[Pubkey][]blockRec
	atts   map[Pubkey][]attRec
}

// randomHistory drives s with n random operations on a few keys: records
// (which must never be slashable against everything accepted before),
// prunes, and small imports. It returns the log of accepted messages.
func randomHistory(t *testing.T, r *rand.Rand, s *State, keys []Pubkey, n int, span uint64) fullLog {
	t.Helper()
	log := fullLog{blocks: map[Pubkey][]blockRec{}, atts: map[Pubkey][]attRec{}}
	for range n {
		k := keys[r.IntN(len(keys))]
		switch op := r.IntN(20); {
		case op < 9:
			src, tgt := randVote(r, span)
			root := randRoot(r)
			if res := s.recordAtt(testGVR, k, src, tgt, root); res.Accepted() {
				if slashableVote(log.atts[k], src, tgt, root) {
					t.Fatalf("accepted slashable vote (%d,%d) %s; log %v", src, tgt, root, log.atts[k])
				}
				log.atts[k] = append(log.atts[k], attRec{source: src, target: tgt, root: root})
			}
		case op < 17:
			slot := r.Uint64N(span * 2)
			root := randRoot(r)
			if res := s.recordBlock(testGVR, k, slot, root); res.Accepted() {
				if slashableBlock(log.blocks[k], slot, root) {
					t.Fatalf("accepted slashable block %d %s; log %v", slot, root, log.blocks[k])
				}
				log.blocks[k] = append(log.blocks[k], blockRec{slot: slot, root: root})
			}
		case op < 19:
			s.Prune(testGVR, k, r.Uint64N(span/2+1))
		default:
			ic := &Interchange{GenesisValidatorsRoot: testGVR, Data: []InterchangeRecord{{Pubkey: k}}}
			for range r.IntN(3) {
				ic.Data[0].SignedBlocks = append(ic.Data[0].SignedBlocks, SignedBlock{Slot: r.Uint64N(span * 2), SigningRoot: randRoot(r)})
			}
			for range r.IntN(3) {
				src, tgt := randVote(r, span)
				ic.Data[0].SignedAttestations = append(ic.Data[0].SignedAttestations, SignedAttestation{SourceEpoch: src, TargetEpoch: tgt, SigningRoot: randRoot(r)})
			}
			if err := s.Import(ic, testGVR); err == nil {
				// Imported history was signed elsewhere: it joins the log.
				for _, b := range ic.Data[0].SignedBlocks {
					log.blocks[k] = append(log.blocks[k], blockRec{slot: b.Slot, root: b.SigningRoot})
				}
				for _, a := range ic.Data[0].SignedAttestations {
					log.atts[k] = append(log.atts[k], attRec{source: a.SourceEpoch, target: a.TargetEpoch, root: a.SigningRoot})
				}
			}
		}
	}
	return log
}

// TestFastChecksMatchBruteForce compares the O(log n) checks with a scan of
// the full retained history, over random histories and candidates.
func TestFastChecksMatchBruteForce(t *testing.T) {
	keys := []Pubkey{pk(1), pk(2)}
	cases := 0
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 0xfa57))
		opts := Options{MaxBlocks: 1 + r.IntN(40), MaxAttestations: 1 + r.IntN(40)}
		s := newTestState(t, opts)
		span := 8 + r.Uint64N(60)
		randomHistory(t, r, s, keys, 50+r.IntN(300), span)
		for range 60 {
			k := keys[r.IntN(len(keys))]
			ks := s.lookup(testGVR, k)
			src, tgt := randVote(r, span+5)
			root := randRoot(r)
			if r.IntN(4) == 0 && ks != nil && len(ks.atts) > 0 { // aim at existing targets too
				a := ks.atts[r.IntN(len(ks.atts))]
				src, tgt, root = a.source, a.target, a.root
				if r.IntN(2) == 0 {
					root = randRoot(r)
				}
			}
			fast, _, _ := ks.checkAtt(src, tgt, root)
			ref := refCheckAtt(ks, src, tgt, root)
			if !sameDecision(fast, ref) {
				t.Fatalf("seed %d: vote (%d,%d) %s: fast %v/%s, reference %v/%s\nhistory %+v floors %d/%d",
					seed, src, tgt, root, fast.Decision, fast.Rule, ref.Decision, ref.Rule, ks.atts, ks.srcFloor, ks.tgtFloor)
			}
			slot := r.Uint64N(2*span + 5)
			broot := randRoot(r)
			fastB, _, _ := ks.checkBlock(slot, broot)
			refB := refCheckBlock(ks, slot, broot)
			if !sameDecision(fastB, refB) {
				t.Fatalf("seed %d: block %d %s: fast %v/%s, reference %v/%s", seed, slot, broot, fastB.Decision, fastB.Rule, refB.Decision, refB.Rule)
			}
			cases += 2
		}
		assertInvariants(t, s)
	}
	if cases < 10000 {
		t.Fatalf("only %d cases", cases)
	}
}

// TestPruneNeverTurnsRefusalIntoAcceptance prunes (and cap-folds) a copy of
// random states and checks, over a grid of candidates, that everything the
// original refused the pruned copy refuses too.
func TestPruneNeverTurnsRefusalIntoAcceptance(t *testing.T) {
	keys := []Pubkey{pk(1)}
	k := keys[0]
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 0x9e11))
		s := newTestState(t, Options{MaxBlocks: 64, MaxAttestations: 64})
		const span = 24
		randomHistory(t, r, s, keys, 40+r.IntN(120), span)
		pruned := cloneState(t, s)
		if r.IntN(2) == 0 {
			pruned.Prune(testGVR, k, r.Uint64N(span+2))
		} else if ks := pruned.lookup(testGVR, k); ks != nil {
			ks.foldAtts(r.IntN(len(ks.atts) + 1))
			ks.foldBlocks(r.IntN(len(ks.blocks) + 1))
		}
		assertInvariants(t, pruned)
		before, after := s.lookup(testGVR, k), pruned.lookup(testGVR, k)
		roots := []SigningRoot{absent, rt(0), rt(1), rt(2), rt(3)}
		for src := uint64(0); src <= span+2; src++ {
			for tgt := uint64(0); tgt <= span+2; tgt++ {
				for _, root := range roots {
					b, _, _ := before.checkAtt(src, tgt, root)
					a, _, _ := after.checkAtt(src, tgt, root)
					if !b.Accepted() && a.Accepted() {
						t.Fatalf("seed %d: vote (%d,%d) %s refused before pruning (%s) but accepted after", seed, src, tgt, root, b.Reason)
					}
				}
			}
		}
		for slot := uint64(0); slot <= 2*span+2; slot++ {
			for _, root := range roots {
				b, _, _ := before.checkBlock(slot, root)
				a, _, _ := after.checkBlock(slot, root)
				if !b.Accepted() && a.Accepted() {
					t.Fatalf("seed %d: block %d %s refused before pruning (%s) but accepted after", seed, slot, root, b.Reason)
				}
			}
		}
	}
}

// TestFoldingNeverAcceptsSlashable runs long random histories with tiny caps
// and frequent pruning; randomHistory fails the test if any accepted message
// is slashable against everything accepted or imported before it.
func TestFoldingNeverAcceptsSlashable(t *testing.T) {
	keys := []Pubkey{pk(1), pk(2), pk(3)}
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 0x5afe))
		s := newTestState(t, Options{MaxBlocks: 1 + r.IntN(4), MaxAttestations: 1 + r.IntN(4)})
		randomHistory(t, r, s, keys, 500, 40)
		assertInvariants(t, s)
	}
}

// assertInvariants checks the keyState invariants on every key.
func assertInvariants(t *testing.T, s *State) {
	t.Helper()
	for gvr, c := range s.chains {
		var hw HighWater
		for key, ks := range c.keys {
			if len(ks.blocks) > s.opts.MaxBlocks || len(ks.atts) > s.opts.MaxAttestations {
				t.Fatalf("%s: over cap: %d blocks %d atts", key, len(ks.blocks), len(ks.atts))
			}
			for i, b := range ks.blocks {
				if ks.flags&flagBlockFloor == 0 || b.slot < ks.blockFloor || (i > 0 && b.slot <= ks.blocks[i-1].slot) {
					t.Fatalf("%s: block invariant broken at %d: %+v floor %d", key, i, ks.blocks, ks.blockFloor)
				}
			}
			for i, a := range ks.atts {
				if ks.flags&flagAttFloor == 0 || a.source > a.target || a.source < ks.srcFloor || a.target < ks.tgtFloor ||
					(i > 0 && (a.target <= ks.atts[i-1].target || a.source < ks.atts[i-1].source)) {
					t.Fatalf("%s: attestation invariant broken at %d: %+v floors %d/%d", key, i, ks.atts, ks.srcFloor, ks.tgtFloor)
				}
			}
			hw = hw.merge(ks.highWater())
		}
		if hw != c.hw {
			t.Fatalf("chain %s high water %+v, keys say %+v", gvr, c.hw, hw)
		}
	}
}

// TestImportRefusesExactlyTheSlashableDocuments compares Import's verdict
// with a brute-force pairwise scan of retained ∪ imported records.
func TestImportRefusesExactlyTheSlashableDocuments(t *testing.T) {
	k := pk(1)
	refused, imported := 0, 0
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 0x1e9))
		s := newTestState(t, Options{MaxBlocks: 1000, MaxAttestations: 1000})
		const span = 16
		randomHistory(t, r, s, []Pubkey{k}, r.IntN(40), span)
		var retainedB []blockRec
		var retainedA []attRec
		if ks := s.lookup(testGVR, k); ks != nil {
			retainedB, retainedA = slices.Clone(ks.blocks), slices.Clone(ks.atts)
		}
		// A document of one or two entries for k, sometimes repeating
		// retained records exactly or with another root.
		ic := &Interchange{GenesisValidatorsRoot: testGVR}
		var impB []blockRec
		var impA []attRec
		for range 1 + r.IntN(2) {
			e := InterchangeRecord{Pubkey: k}
			for range r.IntN(4) {
				b := blockRec{slot: r.Uint64N(2 * span), root: randRoot(r)}
				if len(retainedB) > 0 && r.IntN(3) == 0 {
					b = retainedB[r.IntN(len(retainedB))]
					if r.IntN(2) == 0 {
						b.root = randRoot(r)
					}
				}
				e.SignedBlocks = append(e.SignedBlocks, SignedBlock{Slot: b.slot, SigningRoot: b.root})
				impB = append(impB, b)
			}
			for range r.IntN(4) {
				src, tgt := randVote(r, span)
				a := attRec{source: src, target: tgt, root: randRoot(r)}
				if len(retainedA) > 0 && r.IntN(3) == 0 {
					a = retainedA[r.IntN(len(retainedA))]
					if r.IntN(2) == 0 {
						a.root = randRoot(r)
					}
				}
				e.SignedAttestations = append(e.SignedAttestations, SignedAttestation{SourceEpoch: a.source, TargetEpoch: a.target, SigningRoot: a.root})
				impA = append(impA, a)
			}
			ic.Data = append(ic.Data, e)
		}
		want := bruteSlashable(append(retainedB, impB...), append(retainedA, impA...))
		before := snapshot(t, s)
		err := s.Import(ic, testGVR)
		switch {
		case want && err == nil:
			t.Fatalf("seed %d: slashable document imported: retained %v %v, imported %v %v", seed, retainedB, retainedA, impB, impA)
		case !want && err != nil:
			t.Fatalf("seed %d: clean document refused: %v", seed, err)
		case err != nil:
			if !errors.Is(err, slashing.ErrSlashableImport) {
				t.Fatalf("seed %d: error %v", seed, err)
			}
			if !bytes.Equal(before, snapshot(t, s)) {
				t.Fatalf("seed %d: refused import changed the state", seed)
			}
			refused++
		default:
			imported++
			assertInvariants(t, s)
		}
	}
	if refused < 100 || imported < 100 {
		t.Fatalf("poor coverage: %d refused, %d imported", refused, imported)
	}
}

// bruteSlashable reports whether any two records are slashable together, or
// any vote has source > target. Identical records are not a conflict.
func bruteSlashable(blocks []blockRec, atts []attRec) bool {
	for i, a := range blocks {
		for _, b := range blocks[i+1:] {
			if a.slot == b.slot && !a.root.sameRecord(b.root) {
				return true
			}
		}
	}
	for i, a := range atts {
		if a.source > a.target {
			return true
		}
		for _, b := range atts[i+1:] {
			if a.target == b.target && !(a.source == b.source && a.root.sameRecord(b.root)) {
				return true
			}
			if (a.source < b.source && a.target > b.target) || (b.source < a.source && b.target > a.target) {
				return true
			}
		}
	}
	return false
}

// TestImportLargeUnsortedHistory imports a complete history of 200,000
// votes and blocks in descending order for one key (a validator running
// since genesis), which must merge in O(n log n) and fold to the caps.
func TestImportLargeUnsortedHistory(t *testing.T) {
	const n = 200_000
	e := InterchangeRecord{Pubkey: pk(1)}
	for i := uint64(n); i >= 1; i-- {
		e.SignedBlocks = append(e.SignedBlocks, SignedBlock{Slot: i * 32, SigningRoot: rt(1)})
		e.SignedAttestations = append(e.SignedAttestations, SignedAttestation{SourceEpoch: i - 1, TargetEpoch: i, SigningRoot: rt(1)})
	}
	s := newTestState(t, Options{})
	start := time.Now()
	if err := s.Import(&Interchange{GenesisValidatorsRoot: testGVR, Data: []InterchangeRecord{e}}, testGVR); err != nil {
		t.Fatal(err)
	}
	t.Logf("imported %d blocks + %d votes in %v", n, n, time.Since(start))
	w := s.Watermarks(testGVR, pk(1))
	if w.Blocks != DefaultMaxBlocks || w.Attestations != DefaultMaxAttestations {
		t.Fatalf("not capped: %+v", w)
	}
	if w.TargetFloor != n-DefaultMaxAttestations || w.BlockFloor != (n-DefaultMaxBlocks)*32 {
		t.Fatalf("floors %+v", w)
	}
	if res := s.CheckAttestation(testGVR, pk(1), n, n+1, Root{}); !res.Accepted() {
		t.Fatalf("next vote refused: %s", res.Reason)
	}
}
