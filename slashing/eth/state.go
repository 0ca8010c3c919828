package eth

import (
	"bytes"
	"math"
	"slices"
	"strconv"

	"github.com/regent-signer/regent/slashing"
)

// blockRec is one signed block proposal.
type blockRec struct {
	slot uint64
	root SigningRoot
}

// attRec is one signed attestation.
type attRec struct {
	source, target uint64
	root           SigningRoot
}

// keyState flags.
const (
	flagBlockFloor uint8 = 1 << iota
	flagAttFloor
)

// keyState is the protection history of one validator key on one chain.
//
// Invariants (kept by every mutation, checked by ReadState):
//   - blocks are sorted by slot, slots unique, every slot >= blockFloor;
//     blocks non-empty implies flagBlockFloor;
//   - atts are sorted by target, targets unique, sources non-decreasing,
//     source <= target, source >= srcFloor and target >= tgtFloor for every
//     record; atts non-empty implies flagAttFloor;
//   - len(blocks) <= Options.MaxBlocks, len(atts) <= Options.MaxAttestations.
//
// The first two mean the retained history holds no slashable pair.
type keyState struct {
	blocks     []blockRec
	atts       []attRec
	blockFloor uint64
	srcFloor   uint64
	tgtFloor   uint64
	flags      uint8
}

// chainState holds every key of one genesis_validators_root.
type chainState struct {
	keys map[Pubkey]*keyState
	hw   HighWater
}

// State is the Ethereum slashing-protection history of every key on every
// chain, keyed by genesis_validators_root and validator public key.
//
// State is deterministic and not safe for concurrent use; see the package
// documentation.
type State struct {
	opts   Options
	chains map[Root]*chainState
}

// NewState returns an empty State. Zero fields of opts take their defaults;
// out-of-range values return an error wrapping ErrInvalidOptions.
func NewState(opts Options) (*State, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &State{opts: opts.withDefaults(), chains: make(map[Root]*chainState)}, nil
}

// Options returns the options in force (defaults applied).
func (s *State) Options() Options { return s.opts }

// lookup returns the key's history, or nil if it has none.
func (s *State) lookup(gvr Root, pk Pubkey) *keyState {
	c := s.chains[gvr]
	if c == nil {
		return nil
	}
	return c.keys[pk]
}

// ensure returns the chain and key, creating both if missing.
func (s *State) ensure(gvr Root, pk Pubkey) (*chainState, *keyState) {
	c := s.chains[gvr]
	if c == nil {
		c = &chainState{keys: make(map[Pubkey]*keyState)}
		s.chains[gvr] = c
	}
	ks := c.keys[pk]
	if ks == nil {
		ks = &keyState{}
		c.keys[pk] = ks
	}
	return c, ks
}

func accepted() slashing.Result { return slashing.Result{Decision: slashing.DecisionAccepted} }

func denied(rule slashing.Rule, reason string) slashing.Result {
	return slashing.Result{Decision: slashing.DecisionDenied, Rule: rule, Reason: reason}
}

// CheckBlock evaluates a block proposal at slot with signing root root for
// key pk on chain gvr, without changing anything. See the package
// documentation for the rules.
func (s *State) CheckBlock(gvr Root, pk Pubkey, slot uint64, root Root) slashing.Result {
	res, _, _ := s.lookup(gvr, pk).checkBlock(slot, KnownRoot(root))
	return res
}

// RecordBlock evaluates like CheckBlock and, only if the result is Accepted,
// records the proposal. An identical re-sign is Accepted and changes
// nothing. Recording may fold the oldest records when the key exceeds
// Options.MaxBlocks.
func (s *State) RecordBlock(gvr Root, pk Pubkey, slot uint64, root Root) slashing.Result {
	return s.recordBlock(gvr, pk, slot, KnownRoot(root))
}

func (s *State) recordBlock(gvr Root, pk Pubkey, slot uint64, root SigningRoot) slashing.Result {
	res, pos, isNew := s.lookup(gvr, pk).checkBlock(slot, root)
	if !res.Accepted() || !isNew {
		return res
	}
	c, ks := s.ensure(gvr, pk)
	ks.insertBlock(pos, blockRec{slot: slot, root: root})
	ks.capBlocks(s.opts.MaxBlocks)
	c.hw = c.hw.merge(ks.highWater())
	return res
}

// CheckAttestation evaluates an attestation (source, target) with signing
// root root for key pk on chain gvr, without changing anything. See the
// package documentation for the rules.
func (s *State) CheckAttestation(gvr Root, pk Pubkey, source, target uint64, root Root) slashing.Result {
	res, _, _ := s.lookup(gvr, pk).checkAtt(source, target, KnownRoot(root))
	return res
}

// RecordAttestation evaluates like CheckAttestation and, only if the result
// is Accepted, records the vote. An identical re-sign is Accepted and changes
// nothing. Recording may fold the oldest records when the key exceeds
// Options.MaxAttestations.
func (s *State) RecordAttestation(gvr Root, pk Pubkey, source, target uint64, root Root) slashing.Result {
	return s.recordAtt(gvr, pk, source, target, KnownRoot(root))
}

func (s *State) recordAtt(gvr Root, pk Pubkey, source, target uint64, root SigningRoot) slashing.Result {
	res, pos, isNew := s.lookup(gvr, pk).checkAtt(source, target, root)
	if !res.Accepted() || !isNew {
		return res
	}
	c, ks := s.ensure(gvr, pk)
	ks.insertAtt(pos, attRec{source: source, target: target, root: root})
	ks.capAtts(s.opts.MaxAttestations)
	c.hw = c.hw.merge(ks.highWater())
	return res
}

// checkBlock evaluates a proposal. It returns the decision, the index at
// which the record sits or would be inserted, and whether recording it would
// add a record (false for a repeat). ks may be nil (no history).
func (ks *keyState) checkBlock(slot uint64, root SigningRoot) (res slashing.Result, pos int, isNew bool) {
	if ks == nil {
		return accepted(), 0, true
	}
	i, found := ks.searchBlock(slot)
	if found {
		prev := ks.blocks[i].root
		if prev.Matches(root) {
			return accepted(), i, false
		}
		return denied(slashing.RuleBlockDoubleProposal,
			"slot "+u(slot)+" already signed with root "+prev.String()+" (requested "+root.String()+")"), i, false
	}
	if ks.flags&flagBlockFloor != 0 && slot <= ks.blockFloor {
		return denied(slashing.RuleBlockBelowWatermark,
			"slot "+u(slot)+" is at or below the lowest-allowed slot watermark "+u(ks.blockFloor)), i, false
	}
	return accepted(), i, true
}

// checkAtt evaluates a vote; results as for checkBlock. The surround checks
// rely on the invariant that sources never decrease along targets: the
// predecessor carries the largest source of all votes with a smaller target,
// the successor the smallest source of all votes with a larger one.
func (ks *keyState) checkAtt(source, target uint64, root SigningRoot) (res slashing.Result, pos int, isNew bool) {
	if source > target {
		return denied(slashing.RuleAttSourceAfterTarget,
			"source epoch "+u(source)+" is after target epoch "+u(target)), 0, false
	}
	if ks == nil {
		return accepted(), 0, true
	}
	i, found := ks.searchAtt(target)
	if found {
		prev := ks.atts[i]
		if prev.source == source && prev.root.Matches(root) {
			return accepted(), i, false
		}
		if prev.source != source {
			return denied(slashing.RuleAttDoubleVote,
				"target epoch "+u(target)+" already signed with source "+u(prev.source)+" and root "+prev.root.String()+
					" (requested source "+u(source)+", root "+root.String()+")"), i, false
		}
		return denied(slashing.RuleAttDoubleVote,
			"target epoch "+u(target)+" already signed with root "+prev.root.String()+" (requested "+root.String()+")"), i, false
	}
	if ks.flags&flagAttFloor != 0 {
		if target <= ks.tgtFloor {
			return denied(slashing.RuleAttTargetBelowMin,
				"target epoch "+u(target)+" is at or below the minimum target watermark "+u(ks.tgtFloor)), i, false
		}
		if source < ks.srcFloor {
			return denied(slashing.RuleAttSourceBelowMin,
				"source epoch "+u(source)+" is below the minimum source watermark "+u(ks.srcFloor)), i, false
		}
	}
	if i > 0 {
		if p := ks.atts[i-1]; p.source > source {
			return denied(slashing.RuleAttSurrounding,
				"vote (source "+u(source)+", target "+u(target)+") surrounds signed vote (source "+
					u(p.source)+", target "+u(p.target)+")"), i, false
		}
	}
	if i < len(ks.atts) {
		if n := ks.atts[i]; n.source < source {
			return denied(slashing.RuleAttSurrounded,
				"vote (source "+u(source)+", target "+u(target)+") is surrounded by signed vote (source "+
					u(n.source)+", target "+u(n.target)+")"), i, false
		}
	}
	return accepted(), i, true
}

// insertBlock inserts rec at pos; the first block ever recorded sets the
// block floor to its slot (EIP-3076 condition 2).
func (ks *keyState) insertBlock(pos int, rec blockRec) {
	ks.blocks = slices.Insert(ks.blocks, pos, rec)
	if ks.flags&flagBlockFloor == 0 {
		ks.blockFloor = rec.slot
		ks.flags |= flagBlockFloor
	}
}

// insertAtt inserts rec at pos; the first vote ever recorded sets the floors
// to its source and target (EIP-3076 conditions 4 and 5).
func (ks *keyState) insertAtt(pos int, rec attRec) {
	ks.atts = slices.Insert(ks.atts, pos, rec)
	if ks.flags&flagAttFloor == 0 {
		ks.srcFloor, ks.tgtFloor = rec.source, rec.target
		ks.flags |= flagAttFloor
	}
}

// raiseBlockFloor sets the block floor to max(floor, slot).
func (ks *keyState) raiseBlockFloor(slot uint64) {
	if ks.flags&flagBlockFloor == 0 || slot > ks.blockFloor {
		ks.blockFloor = slot
	}
	ks.flags |= flagBlockFloor
}

// raiseAttFloors sets the floors to their maxima with (source, target).
func (ks *keyState) raiseAttFloors(source, target uint64) {
	if ks.flags&flagAttFloor == 0 {
		ks.srcFloor, ks.tgtFloor = source, target
		ks.flags |= flagAttFloor
		return
	}
	ks.srcFloor = max(ks.srcFloor, source)
	ks.tgtFloor = max(ks.tgtFloor, target)
}

// foldBlocks folds the n oldest blocks into the block floor.
func (ks *keyState) foldBlocks(n int) int {
	if n <= 0 {
		return 0
	}
	ks.raiseBlockFloor(ks.blocks[n-1].slot)
	ks.blocks = ks.blocks[n:]
	if len(ks.blocks) == 0 {
		ks.blocks = nil
	}
	return n
}

// foldAtts folds the n oldest votes into the floors. Sources never decrease
// along targets, so the last folded vote carries both maxima.
func (ks *keyState) foldAtts(n int) int {
	if n <= 0 {
		return 0
	}
	last := ks.atts[n-1]
	ks.raiseAttFloors(last.source, last.target)
	ks.atts = ks.atts[n:]
	if len(ks.atts) == 0 {
		ks.atts = nil
	}
	return n
}

// capBlocks folds the oldest blocks until at most limit remain.
func (ks *keyState) capBlocks(limit int) int { return ks.foldBlocks(len(ks.blocks) - limit) }

// capAtts folds the oldest votes until at most limit remain.
func (ks *keyState) capAtts(limit int) int { return ks.foldAtts(len(ks.atts) - limit) }

// foldBelowFloors restores the invariant "every retained record is at or
// above the floors" after floors were raised (by an import): it folds the
// oldest records while they sit below a floor.
func (ks *keyState) foldBelowFloors() {
	n := 0
	for n < len(ks.blocks) && ks.blocks[n].slot < ks.blockFloor {
		n++
	}
	ks.foldBlocks(n)
	for len(ks.atts) > 0 && (ks.atts[0].target < ks.tgtFloor || ks.atts[0].source < ks.srcFloor) {
		ks.foldAtts(1)
	}
}

// highWater returns the key's high-water mark: the maximum of its floors and
// retained records.
func (ks *keyState) highWater() HighWater {
	var h HighWater
	if ks == nil {
		return h
	}
	if ks.flags&flagBlockFloor != 0 {
		h.Slot, h.HasBlock = ks.blockFloor, true
	}
	if n := len(ks.blocks); n > 0 {
		h = h.merge(HighWater{Slot: ks.blocks[n-1].slot, HasBlock: true})
	}
	if ks.flags&flagAttFloor != 0 {
		h.Target, h.HasAttestation = ks.tgtFloor, true
	}
	if n := len(ks.atts); n > 0 {
		h = h.merge(HighWater{Target: ks.atts[n-1].target, HasAttestation: true})
	}
	return h
}

// Prune folds the records of key pk on chain gvr that lie below the
// finalized checkpoint at finalizedEpoch: blocks with a slot before the
// epoch's first slot (finalizedEpoch * Options.SlotsPerEpoch) and
// attestations with a target before finalizedEpoch. It returns how many
// records were folded. Pruning never turns a refusal into an acceptance.
func (s *State) Prune(gvr Root, pk Pubkey, finalizedEpoch uint64) int {
	ks := s.lookup(gvr, pk)
	if ks == nil {
		return 0
	}
	return ks.prune(s.firstSlot(finalizedEpoch), finalizedEpoch)
}

// PruneChain prunes every key of chain gvr like Prune and returns the total
// number of records folded.
func (s *State) PruneChain(gvr Root, finalizedEpoch uint64) int {
	c := s.chains[gvr]
	if c == nil {
		return 0
	}
	slot := s.firstSlot(finalizedEpoch)
	n := 0
	for _, ks := range c.keys { // keys are independent: order does not matter
		n += ks.prune(slot, finalizedEpoch)
	}
	return n
}

// firstSlot returns epoch*SlotsPerEpoch, saturating at MaxUint64.
func (s *State) firstSlot(epoch uint64) uint64 {
	if epoch > math.MaxUint64/s.opts.SlotsPerEpoch {
		return math.MaxUint64
	}
	return epoch * s.opts.SlotsPerEpoch
}

func (ks *keyState) prune(slot, epoch uint64) int {
	nb, _ := ks.searchBlock(slot)
	na, _ := ks.searchAtt(epoch)
	return ks.foldBlocks(nb) + ks.foldAtts(na)
}

// searchBlock returns the index of the first block with slot >= slot and
// whether it has exactly that slot. Recording in slot order appends, so the
// last element is tried first.
func (ks *keyState) searchBlock(slot uint64) (int, bool) {
	n := len(ks.blocks)
	if n == 0 || ks.blocks[n-1].slot < slot {
		return n, false
	}
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ks.blocks[m].slot < slot {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, ks.blocks[lo].slot == slot
}

// searchAtt returns the index of the first vote with target >= target and
// whether it has exactly that target.
func (ks *keyState) searchAtt(target uint64) (int, bool) {
	n := len(ks.atts)
	if n == 0 || ks.atts[n-1].target < target {
		return n, false
	}
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ks.atts[m].target < target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, ks.atts[lo].target == target
}

// HighWater returns the highest block slot and attestation target key pk has
// recorded on chain gvr, including values folded into watermarks.
func (s *State) HighWater(gvr Root, pk Pubkey) HighWater { return s.lookup(gvr, pk).highWater() }

// ChainHighWater returns the maximum HighWater over every key of chain gvr.
// It is maintained incrementally (O(1)) and never decreases.
func (s *State) ChainHighWater(gvr Root) HighWater {
	if c := s.chains[gvr]; c != nil {
		return c.hw
	}
	return HighWater{}
}

// MaxSlot returns the highest block slot recorded on chain gvr, or 0 if none
// (use ChainHighWater to tell "none" from slot 0).
func (s *State) MaxSlot(gvr Root) uint64 { return s.ChainHighWater(gvr).Slot }

// MaxTarget returns the highest attestation target recorded on chain gvr, or
// 0 if none (use ChainHighWater to tell "none" from epoch 0).
func (s *State) MaxTarget(gvr Root) uint64 { return s.ChainHighWater(gvr).Target }

// Watermarks returns key pk's floors and retained record counts.
func (s *State) Watermarks(gvr Root, pk Pubkey) Watermarks {
	ks := s.lookup(gvr, pk)
	if ks == nil {
		return Watermarks{}
	}
	return Watermarks{
		BlockFloor:          ks.blockFloor,
		HasBlockFloor:       ks.flags&flagBlockFloor != 0,
		SourceFloor:         ks.srcFloor,
		TargetFloor:         ks.tgtFloor,
		HasAttestationFloor: ks.flags&flagAttFloor != 0,
		Blocks:              len(ks.blocks),
		Attestations:        len(ks.atts),
	}
}

// Keys returns the keys with history on chain gvr, sorted by byte value.
func (s *State) Keys(gvr Root) []Pubkey {
	c := s.chains[gvr]
	if c == nil {
		return nil
	}
	keys := make([]Pubkey, 0, len(c.keys))
	for pk := range c.keys {
		keys = append(keys, pk)
	}
	slices.SortFunc(keys, func(a, b Pubkey) int { return bytes.Compare(a[:], b[:]) })
	return keys
}

// Chains returns the genesis validators roots with history, sorted.
func (s *State) Chains() []Root {
	roots := make([]Root, 0, len(s.chains))
	for r := range s.chains {
		roots = append(roots, r)
	}
	slices.SortFunc(roots, func(a, b Root) int { return bytes.Compare(a[:], b[:]) })
	return roots
}

// KeyCount returns the number of keys with history across all chains.
func (s *State) KeyCount() int {
	n := 0
	for _, c := range s.chains {
		n += len(c.keys)
	}
	return n
}

// u formats an unsigned integer for reasons.
func u(v uint64) string { return strconv.FormatUint(v, 10) }

// Clone returns a deep copy of the State. The FSM can take it inside
// Snapshot (on the Apply goroutine) and let Persist call WriteTo on the copy
// while Apply continues on the original.
func (s *State) Clone() *State {
	c := &State{opts: s.opts, chains: make(map[Root]*chainState, len(s.chains))}
	for gvr, ch := range s.chains {
		nc := &chainState{keys: make(map[Pubkey]*keyState, len(ch.keys)), hw: ch.hw}
		for pk, ks := range ch.keys {
			k := *ks
			k.blocks = slices.Clone(ks.blocks)
			k.atts = slices.Clone(ks.atts)
			nc.keys[pk] = &k
		}
		c.chains[gvr] = nc
	}
	return c
}
