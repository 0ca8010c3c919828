package sim

import (
	"fmt"
	"sort"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/eth"
)

// slashable reports whether two messages signed with one key form a
// slashable pair under the consensus rules — double proposal, double vote,
// surround vote — and names the offence. It is the brute-force reference:
// no history, no watermarks, just the pair. Identical messages (same
// signing root) are never slashable.
func slashable(a, b message) (string, bool) {
	if a.Pubkey != b.Pubkey || a.Root == b.Root || a.Block != b.Block {
		return "", false
	}
	if a.Block {
		if a.Slot == b.Slot {
			return fmt.Sprintf("double proposal at slot %d", a.Slot), true
		}
		return "", false
	}
	switch {
	case a.Target == b.Target:
		return fmt.Sprintf("double vote at target %d", a.Target), true
	case a.Source < b.Source && b.Target < a.Target:
		return fmt.Sprintf("vote %d→%d surrounds %d→%d", a.Source, a.Target, b.Source, b.Target), true
	case b.Source < a.Source && a.Target < b.Target:
		return fmt.Sprintf("vote %d→%d surrounds %d→%d", b.Source, b.Target, a.Source, a.Target), true
	}
	return "", false
}

// firstSlashablePair scans msgs (all of one key or mixed) pairwise and
// returns the first slashable pair it finds.
func firstSlashablePair(msgs []message) (i, j int, why string, found bool) {
	for j := range msgs {
		for i := range j {
			if w, ok := slashable(msgs[i], msgs[j]); ok {
				return i, j, w, true
			}
		}
	}
	return 0, 0, "", false
}

// leaseChangers are the commands whose acceptance may move the lease.
func mayMoveLease(t commandpb.CommandType) bool {
	switch t {
	case commandpb.CommandType_GRANT_LEASE, commandpb.CommandType_OPERATOR_COMMAND,
		commandpb.CommandType_DR_TAKEOVER, commandpb.CommandType_CONFIRM_FINALITY:
		return true
	}
	return false
}

// checkTransition checks one entry's effect on the lease: a refused entry
// or one that cannot move the lease changes nothing; otherwise the lease
// stays, or moves vacant → active(h, 1) by the grant, active(h, e) →
// fenced(h, e) by an operator command or DR takeover, or fenced(h, e) →
// active(h', e+1) by a finality confirmation proposed by h'.
func checkTransition(t commandpb.CommandType, proposer string, accepted bool, before, after leaseView) (inv string, err error) {
	if before == after {
		return "", nil
	}
	if !accepted {
		return InvRefusedChangesNothing, fmt.Errorf("refused %v moved the lease %v → %v", t, before, after)
	}
	if !mayMoveLease(t) {
		return InvOneHolderPerEpoch, fmt.Errorf("%v moved the lease %v → %v", t, before, after)
	}
	switch {
	case t == commandpb.CommandType_GRANT_LEASE && before.State == leader.LeaseVacant && before.Epoch == 0 &&
		after.State == leader.LeaseActive && after.Epoch == 1:
		return "", nil
	case (t == commandpb.CommandType_OPERATOR_COMMAND || t == commandpb.CommandType_DR_TAKEOVER) &&
		before.State == leader.LeaseActive && after.State == leader.LeaseFenced &&
		after.Epoch == before.Epoch && after.Holder == before.Holder:
		return "", nil
	case t == commandpb.CommandType_CONFIRM_FINALITY && before.State == leader.LeaseFenced && after.State == leader.LeaseActive &&
		after.Epoch == before.Epoch+1 && after.Holder == proposer:
		return "", nil
	}
	return InvOneHolderPerEpoch, fmt.Errorf("%v from %s moved the lease %v → %v, which the protocol does not allow", t, proposer, before, after)
}

// sigKey indexes accepted records by key and signing root.
type sigKey struct {
	pk   [48]byte
	root [32]byte
}

// acceptance is one accepted record: where, by whom, under which epoch.
type acceptance struct {
	index  uint64
	holder string
	epoch  uint64
	before leaseView
}

// checker holds the incremental state of the per-step checks. It is used
// by the run's goroutine only.
type checker struct {
	h           *history
	epochHolder map[uint64]string
	activeSince map[uint64]uint64
	accepted    map[sigKey][]acceptance
	byKey       map[[48]byte][]message
	nextSig     int
	nextRestore int
	nextProblem int
	// stats derived from the log, counted once per index.
	fences, handovers, drTakeovers int
	heartbeats, entries            int
	lastIndex                      uint64
}

func newChecker(h *history) *checker {
	return &checker{h: h, epochHolder: map[uint64]string{}, activeSince: map[uint64]uint64{},
		accepted: map[sigKey][]acceptance{}, byKey: map[[48]byte][]message{}}
}

// violation is a broken invariant found by a check.
type violation struct{ inv, detail string }

// step runs every per-step check over what was recorded since the last
// call and returns the first violation.
func (c *checker) step() *violation {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if c.nextProblem < len(c.h.problems) {
		p := c.h.problems[c.nextProblem]
		c.nextProblem++
		return &violation{p.inv, p.detail}
	}
	idx := make([]uint64, 0, len(c.h.dirty))
	for i := range c.h.dirty {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	for _, i := range idx {
		if v := c.entry(c.h.entries[i]); v != nil {
			return v
		}
		if e := c.h.entries[i]; e.checked && e.indexed {
			delete(c.h.dirty, i)
		}
	}
	for ; c.nextRestore < len(c.h.restores); c.nextRestore++ {
		r := c.h.restores[c.nextRestore]
		if v := c.noteLease(r.lease, fmt.Sprintf("%s after restoring the snapshot of index %d", regionName(r.region), r.index)); v != nil {
			return v
		}
		if e, ok := c.h.entries[r.index]; ok {
			for o := range e.regions {
				if ro := e.regions[o]; ro.hasAfter && ro.after != r.lease {
					return &violation{InvReplicasAgree, fmt.Sprintf("%s restored index %d with lease %v; %s applied it to %v",
						regionName(r.region), r.index, r.lease, regionName(o), ro.after)}
				}
			}
		}
	}
	for ; c.nextSig < len(c.h.sigs); c.nextSig++ {
		if v := c.signature(c.h.sigs[c.nextSig]); v != nil {
			return v
		}
	}
	return nil
}

// noteLease checks a lease seen anywhere against the epoch → holder map.
func (c *checker) noteLease(l leaseView, where string) *violation {
	if l.State == leader.LeaseVacant {
		if l.Epoch != 0 {
			return &violation{InvOneHolderPerEpoch, fmt.Sprintf("%s: vacant lease at epoch %d", where, l.Epoch)}
		}
		return nil
	}
	if h, ok := c.epochHolder[l.Epoch]; ok && h != l.Holder {
		return &violation{InvOneHolderPerEpoch, fmt.Sprintf("%s: epoch %d held by %s, elsewhere by %s", where, l.Epoch, l.Holder, h)}
	}
	c.epochHolder[l.Epoch] = l.Holder
	if l.State == leader.LeaseActive {
		if s, ok := c.activeSince[l.Epoch]; ok && s != l.SinceIndex {
			return &violation{InvOneHolderPerEpoch, fmt.Sprintf("%s: epoch %d activated at index %d, elsewhere at %d", where, l.Epoch, l.SinceIndex, s)}
		}
		c.activeSince[l.Epoch] = l.SinceIndex
	}
	return nil
}

// entry checks one applied entry: every lease a region saw around it
// against the epoch map; the records it accepted (indexed as soon as one
// region applied it, so signatures on them can be checked); and, once one
// region reported the lease after it, the lease transition it made.
func (c *checker) entry(e *entryObs) *violation {
	c.lastIndex = max(c.lastIndex, e.Index)
	for r := range e.regions {
		ro := e.regions[r]
		if !ro.applied {
			continue
		}
		where := fmt.Sprintf("index %d on %s", e.Index, regionName(r))
		if v := c.noteLease(ro.before, where); v != nil {
			return v
		}
		if ro.hasAfter {
			if v := c.noteLease(ro.after, where); v != nil {
				return v
			}
		}
		if !e.indexed {
			e.indexed = true
			c.entries++
			if e.Type == commandpb.CommandType_LEASE_HEARTBEAT && e.Resp.Err == nil {
				c.heartbeats++
			}
			if v := c.indexRecords(e, ro.before); v != nil {
				return v
			}
		}
		if e.checked || !ro.hasAfter {
			continue
		}
		e.checked = true
		if inv, err := checkTransition(e.Type, e.Proposer, e.accepted(), ro.before, ro.after); err != nil {
			return &violation{inv, fmt.Sprintf("index %d: %v", e.Index, err)}
		}
		switch {
		case ro.before.State == leader.LeaseActive && ro.after.State == leader.LeaseFenced:
			c.fences++
			if e.Type == commandpb.CommandType_DR_TAKEOVER {
				c.drTakeovers++
			}
		case ro.before.State == leader.LeaseFenced && ro.after.State == leader.LeaseActive:
			c.handovers++
		}
	}
	return nil
}

// indexRecords checks that a RecordSignatures entry was evaluated under
// the lease it names and indexes its accepted records.
func (c *checker) indexRecords(e *entryObs, before leaseView) *violation {
	if e.Type != commandpb.CommandType_RECORD_SIGNATURES || e.Resp.Err != nil {
		return nil
	}
	if !before.Active(e.Holder, e.Epoch) {
		return &violation{InvSignedUnderCurrentEpoch, fmt.Sprintf("index %d: batch of %s at epoch %d evaluated under lease %v",
			e.Index, e.Holder, e.Epoch, before)}
	}
	if e.Proposer != e.Holder {
		return &violation{InvSignedUnderCurrentEpoch, fmt.Sprintf("index %d: batch for holder %s proposed by %s", e.Index, e.Holder, e.Proposer)}
	}
	for _, rec := range e.Records {
		if rec.Decision == slashing.DecisionAccepted {
			k := sigKey{rec.Pubkey, rec.Root}
			c.accepted[k] = append(c.accepted[k], acceptance{index: e.Index, holder: e.Holder, epoch: e.Epoch, before: before})
		}
	}
	return nil
}

// Active reports whether the lease is active for holder at epoch.
func (l leaseView) Active(holder string, epoch uint64) bool {
	return l.State == leader.LeaseActive && l.Holder == holder && l.Epoch == epoch
}

// signature checks one produced signature: it is the key backend's
// signature over a message a client built, covered by a record the FSM
// accepted from the signing region while it held the lease at that index
// (the exact index Service.Record reported, when it was returned), and it
// forms no slashable pair with any earlier signature of its key.
func (c *checker) signature(s *sigRecord) *violation {
	m := s.Msg
	if m.Key < 0 {
		return &violation{InvSignedUnderCurrentEpoch, fmt.Sprintf("%s signed root %x for key %x, which no client asked for", s.Region, m.Root[:4], m.Pubkey[:4])}
	}
	if s.Sig != fakeSignature(m.Pubkey, m.Root) {
		return &violation{InvSignedUnderCurrentEpoch, fmt.Sprintf("%s returned a signature that is not the key's over %s", s.Region, m)}
	}
	prev := c.byKey[m.Pubkey]
	for _, p := range prev {
		if why, bad := slashable(p, m); bad {
			return &violation{InvNoSlashablePair, fmt.Sprintf("%s and %s: %s (latest signed by %s at step %d)", p, m, why, s.Region, s.Step)}
		}
	}
	var ok bool
	for _, a := range c.accepted[sigKey{m.Pubkey, m.Root}] {
		if a.holder != s.Region || !a.before.Active(s.Region, a.epoch) || c.epochHolder[a.epoch] != s.Region {
			continue
		}
		if s.Returned && (a.index != s.Index || a.epoch != s.Epoch) {
			continue
		}
		ok = true
		break
	}
	if !ok {
		detail := fmt.Sprintf("%s (instance %d) signed %s at step %d without a record accepted from it under its active lease", s.Region, s.Gen, m, s.Step)
		if s.Returned {
			detail += fmt.Sprintf(" (Service.Record reported index %d, epoch %d)", s.Index, s.Epoch)
		}
		return &violation{InvSignedUnderCurrentEpoch, detail}
	}
	c.byKey[m.Pubkey] = append(prev, m)
	return nil
}

// present reports whether rec is in st's protection history for chain
// gvr: retained with its signing root, or — only once the key's retained
// records reached the state's cap, so the oldest were folded into the
// watermarks — at or below the floor with no retained record at its slot
// or target. The simulation stays far below the caps, so in practice a
// record counts only when retained exactly.
func present(st *eth.State, gvr eth.Root, rec recordObs) bool {
	pk := eth.Pubkey(rec.Pubkey)
	ic := st.Export(gvr, []eth.Pubkey{pk})
	w := st.Watermarks(gvr, pk)
	opts := st.Options()
	for _, d := range ic.Data {
		if d.Pubkey != pk {
			continue
		}
		if rec.Block {
			for _, b := range d.SignedBlocks {
				if b.Slot == rec.Slot && b.SigningRoot.Present { // rootless: the floor marker
					return b.SigningRoot.Value == eth.Root(rec.Root)
				}
			}
			return w.Blocks >= opts.MaxBlocks && w.HasBlockFloor && rec.Slot <= w.BlockFloor
		}
		for _, a := range d.SignedAttestations {
			if a.TargetEpoch == rec.Target && a.SigningRoot.Present {
				return a.SourceEpoch == rec.Source && a.SigningRoot.Value == eth.Root(rec.Root)
			}
		}
		return w.Attestations >= opts.MaxAttestations && w.HasAttestationFloor && rec.Target <= w.TargetFloor
	}
	return false
}
