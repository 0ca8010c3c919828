package sim

import (
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/slashing"
)

// leaseView is the comparable part of a lease.
type leaseView struct {
	Holder     string
	Epoch      uint64
	State      leader.LeaseState
	SinceIndex uint64
	HighWater  string
}

func viewOf(l leader.Lease) leaseView {
	return leaseView{Holder: l.Holder, Epoch: l.Epoch, State: l.State, SinceIndex: l.SinceIndex, HighWater: l.HighWater.String()}
}

func (l leaseView) String() string {
	return fmt.Sprintf("%s(%s, epoch %d, since %d)", l.State, l.Holder, l.Epoch, l.SinceIndex)
}

// recordObs is one protection record of a RecordSignatures entry with
// the FSM's decision.
type recordObs struct {
	Pubkey   [48]byte
	Block    bool
	Slot     uint64
	Source   uint64
	Target   uint64
	Root     [32]byte
	Decision slashing.Decision
	Rule     slashing.Rule
}

// regionObs is what one region saw when it applied one entry.
type regionObs struct {
	applied     bool
	before      leaseView
	after       leaseView
	hasAfter    bool
	digest      [32]byte // of the apply response
	stateDigest [32]byte
	hasState    bool
}

// entryObs is one committed command entry as the regions applied it.
type entryObs struct {
	Index    uint64
	Type     commandpb.CommandType
	Proposer string
	Stamp    int64
	// Resp is the first applying region's response.
	Resp fsm.Response
	// Batch fields of a RecordSignatures entry.
	Holder  string
	Epoch   uint64
	Records []recordObs
	regions [numRegions]regionObs
	indexed bool // accepted records indexed (needs one region's apply)
	checked bool // transition checked (needs one region's before and after)
}

// accepted reports whether a failover command was accepted (false for a
// refusal or a handler error; true for commands that are not failover's
// and applied without error).
func (e *entryObs) accepted() bool {
	if e.Resp.Err != nil {
		return false
	}
	if r, ok := e.Resp.Value.(failover.Result); ok {
		return r.Accepted
	}
	return true
}

// sigRecord is one signature a simulated key backend produced.
type sigRecord struct {
	Region string
	Gen    int
	Msg    message
	Sig    [96]byte
	Step   int
	// Returned is set when the sign path returned the signature, with the
	// index and lease epoch Service.Record reported for its record.
	Returned bool
	Index    uint64
	Epoch    uint64
}

// restoreObs is a region's state right after a snapshot restore.
type restoreObs struct {
	region int
	index  uint64
	lease  leaseView
}

// history is the global, append-only record of a run: what every region
// applied, every signature produced, every message the clients built. FSM
// goroutines of all regions write to it; the checker reads it between
// steps. Safe for concurrent use.
type history struct {
	mu       sync.Mutex
	entries  map[uint64]*entryObs
	dirty    map[uint64]bool
	sigs     []*sigRecord
	messages map[[32]byte]message
	restores []restoreObs
	// problems are violations noticed while recording (divergent replicas).
	problems []problem
	// digestsCompared counts state digests compared between applies of one
	// index.
	digestsCompared int
}

type problem struct{ inv, detail string }

func newHistory() *history {
	return &history{entries: map[uint64]*entryObs{}, dirty: map[uint64]bool{}, messages: map[[32]byte]message{}}
}

// responseDigest digests an apply response deterministically (no
// pointers, no map order).
func responseDigest(t commandpb.CommandType, resp fsm.Response) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "type %d|", t)
	if resp.Err != nil {
		fmt.Fprintf(h, "err %s|", resp.Err)
	}
	switch v := resp.Value.(type) {
	case leader.BatchResult:
		fmt.Fprintf(h, "batch %s %d|", v.Holder, v.LeaseEpoch)
		for _, o := range v.Outcomes {
			fmt.Fprintf(h, "%d %s %s|", o.Decision, o.Rule, o.Reason)
		}
	case failover.Result:
		fmt.Fprintf(h, "result %t %s %d %v|", v.Accepted, v.Action, v.AuditSeq, viewOf(v.Lease))
		if v.Err != nil {
			fmt.Fprintf(h, "refusal %s|", v.Err)
		}
		if v.Handover != nil {
			fmt.Fprintf(h, "handover %d %d %s %d|", v.Handover.ID, v.Handover.State, v.Handover.To, len(v.Handover.Approvals))
		}
	case leader.Lease:
		fmt.Fprintf(h, "lease %v|", viewOf(v))
	case failover.Heartbeat:
		fmt.Fprintf(h, "heartbeat %+v|", v)
	case nil:
	default:
		fmt.Fprintf(h, "value %T|", v)
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// observe records region r's apply of one command entry: the lease before
// it, the response, and (first observer only) the entry's content. It
// runs inside the FSM's Apply, before the local Service learns of the
// entry, so an entry is in the history before anyone can sign on it.
func (h *history) observe(r int, index uint64, t commandpb.CommandType, proposer string, stamp int64,
	before leaseView, resp fsm.Response, records []recordObs) {
	d := responseDigest(t, resp)
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.entries[index]
	if !ok {
		e = &entryObs{Index: index, Type: t, Proposer: proposer, Stamp: stamp, Resp: resp, Records: records}
		if br, ok := resp.Value.(leader.BatchResult); ok {
			e.Holder, e.Epoch = br.Holder, br.LeaseEpoch
			for i := range e.Records {
				if i < len(br.Outcomes) {
					e.Records[i].Decision = br.Outcomes[i].Decision
					e.Records[i].Rule = br.Outcomes[i].Rule
				}
			}
		}
		h.entries[index] = e
	} else {
		if e.Type != t || e.Proposer != proposer || e.Stamp != stamp {
			h.problems = append(h.problems, problem{InvReplicasAgree, fmt.Sprintf(
				"index %d: %s applied %v from %s stamped %d, another region applied %v from %s stamped %d",
				index, regionName(r), t, proposer, stamp, e.Type, e.Proposer, e.Stamp)})
		}
		// Compare with every earlier apply of this index, this region's
		// own before a restart included (replay must be deterministic).
		for o := range e.regions {
			ro := e.regions[o]
			if !ro.applied {
				continue
			}
			if ro.digest != d {
				h.problems = append(h.problems, problem{InvReplicasAgree, fmt.Sprintf(
					"index %d (%v): %s and %s produced different results (%v vs %v)", index, t, regionName(r), regionName(o), resp, e.Resp)})
			}
			if ro.before != before {
				h.problems = append(h.problems, problem{InvReplicasAgree, fmt.Sprintf(
					"index %d: lease before the entry is %v on %s, %v on %s", index, before, regionName(r), ro.before, regionName(o))})
			}
		}
	}
	e.regions[r] = regionObs{applied: true, before: before, digest: d}
	h.dirty[index] = true
}

// observeAfter records the lease on region r right after index applied,
// and optionally a digest of its whole state.
func (h *history) observeAfter(r int, index uint64, after leaseView, state *[32]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.entries[index]
	if !ok || !e.regions[r].applied {
		return
	}
	ro := &e.regions[r]
	ro.after, ro.hasAfter = after, true
	if state != nil {
		ro.stateDigest, ro.hasState = *state, true
	}
	for o := range e.regions {
		x := e.regions[o]
		if o == r || !x.hasAfter {
			continue
		}
		if x.after != after {
			h.problems = append(h.problems, problem{InvReplicasAgree, fmt.Sprintf(
				"index %d: lease after the entry is %v on %s, %v on %s", index, after, regionName(r), x.after, regionName(o))})
		}
		if state != nil && x.hasState {
			h.digestsCompared++
		}
		if state != nil && x.hasState && x.stateDigest != *state {
			h.problems = append(h.problems, problem{InvReplicasAgree, fmt.Sprintf(
				"index %d: state of %s differs from state of %s after applying it", index, regionName(r), regionName(o))})
		}
	}
	h.dirty[index] = true
}

// observeRestore records region r's lease right after restoring a
// snapshot taken at index.
func (h *history) observeRestore(r int, index uint64, l leaseView) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.restores = append(h.restores, restoreObs{region: r, index: index, lease: l})
}

// registerMessage remembers what a signing root stands for.
func (h *history) registerMessage(m message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.messages[m.Root] = m
}

// addSignature records a produced signature and returns it for later
// marking as returned. The message is looked up by its signing root.
func (h *history) addSignature(region string, gen int, pk [48]byte, root [32]byte, sig [96]byte, step int) *sigRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.messages[root]
	if !ok {
		m = message{Pubkey: pk, Root: root, Key: -1}
	}
	s := &sigRecord{Region: region, Gen: gen, Msg: m, Sig: sig, Step: step}
	h.sigs = append(h.sigs, s)
	return s
}

// markReturned notes that the sign path returned the signature over
// (pk, root) from region gen, with the record's index and epoch.
func (h *history) markReturned(region string, gen int, pk [48]byte, root [32]byte, index, epoch uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.sigs) - 1; i >= 0; i-- {
		s := h.sigs[i]
		if s.Region == region && s.Gen == gen && s.Msg.Pubkey == pk && s.Msg.Root == root && !s.Returned {
			s.Returned, s.Index, s.Epoch = true, index, epoch
			return true
		}
	}
	return false
}

// entry returns a copy of the entry at index, if any region applied it.
func (h *history) entry(index uint64) (entryObs, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.entries[index]
	if !ok {
		return entryObs{}, false
	}
	return *e, true
}
