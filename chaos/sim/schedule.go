package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// numRegions is the number of simulated data centres.
const numRegions = 3

// regionName names region i (0-based): dc1, dc2, dc3.
func regionName(i int) string { return fmt.Sprintf("dc%d", i+1) }

// StepKind is what one step does.
type StepKind uint8

const (
	// KindUnknown is the zero value; no schedule contains it.
	KindUnknown StepKind = iota
	// KindDuties: the honest and rogue clients send a batch of signing
	// requests concurrently, optionally while a fault strikes.
	KindDuties
	// KindRequest: an operator files RequestHandover (sometimes co-signed
	// up to the threshold, sometimes to the holder itself).
	KindRequest
	// KindApprove: an operator approves the open handover (duplicates
	// included).
	KindApprove
	// KindCancel: an operator cancels the open handover.
	KindCancel
	// KindBadCommand: a forged, expired, replayed, foreign or otherwise
	// invalid operator command; it must be refused.
	KindBadCommand
	// KindFinality: a region reports finality for the open handover, with
	// evidence that is truthful, short of the high-water mark, below the
	// endpoint quorum, for a stale handover, or from the wrong region.
	KindFinality
	// KindClockJump: the protocol clock leaps ahead (a pause, or long
	// enough for a DR takeover).
	KindClockJump
	// KindCrash: a region's process dies (Raft shut down); its stores
	// survive.
	KindCrash
	// KindRestart: a crashed region restarts on the same stores.
	KindRestart
	// KindIsolate: a region is cut off from both others.
	KindIsolate
	// KindCutLink: the link between two regions is cut (the third still
	// reaches both).
	KindCutLink
	// KindHeal: every link is restored.
	KindHeal
	// KindSettle: wait for the reachable replicas to converge and compare
	// their whole states and histories.
	KindSettle
)

func (k StepKind) String() string {
	switch k {
	case KindDuties:
		return "duties"
	case KindRequest:
		return "request-handover"
	case KindApprove:
		return "approve-handover"
	case KindCancel:
		return "cancel-handover"
	case KindBadCommand:
		return "bad-command"
	case KindFinality:
		return "finality"
	case KindClockJump:
		return "clock-jump"
	case KindCrash:
		return "crash"
	case KindRestart:
		return "restart"
	case KindIsolate:
		return "isolate"
	case KindCutLink:
		return "cut-link"
	case KindHeal:
		return "heal"
	case KindSettle:
		return "settle"
	default:
		return "unknown"
	}
}

// DutyShape is the kind of signing request a client sends.
type DutyShape uint8

const (
	// ShapeUnknown is the zero value; no schedule contains it.
	ShapeUnknown DutyShape = iota
	// ShapeAttest: the honest attestation of the current epoch (retries
	// are identical).
	ShapeAttest
	// ShapeBlock: the honest block of the current slot.
	ShapeBlock
	// ShapeDoubleVote: same target as the honest attestation, another
	// block root.
	ShapeDoubleVote
	// ShapeSurround: a vote around recent ones (lower source, higher
	// target).
	ShapeSurround
	// ShapeStaleAttest: an attestation for an old target.
	ShapeStaleAttest
	// ShapeDoubleBlock: another block at the current slot.
	ShapeDoubleBlock
	// ShapeStaleBlock: a block at a past slot.
	ShapeStaleBlock
)

func (s DutyShape) String() string {
	switch s {
	case ShapeAttest:
		return "attest"
	case ShapeBlock:
		return "block"
	case ShapeDoubleVote:
		return "double-vote"
	case ShapeSurround:
		return "surround"
	case ShapeStaleAttest:
		return "stale-attest"
	case ShapeDoubleBlock:
		return "double-block"
	case ShapeStaleBlock:
		return "stale-block"
	default:
		return "unknown"
	}
}

// Honest reports whether the honest validator client sends this shape.
func (s DutyShape) Honest() bool { return s == ShapeAttest || s == ShapeBlock }

// Duty is one signing request of a KindDuties step.
type Duty struct {
	Shape DutyShape
	// Key indexes the validator keys.
	Key int
	// Region: for an honest duty, the region whose replica the client
	// asks who holds the lease; for a rogue duty, the region it is sent to.
	Region int
	// Variant perturbs the message (another root, another offset).
	Variant int
}

// FaultKind is a fault that strikes while a duty batch is in flight.
type FaultKind uint8

const (
	// FaultNone: the batch runs undisturbed.
	FaultNone FaultKind = iota
	// FaultCrash crashes the region serving the first duty.
	FaultCrash
	// FaultIsolate isolates the region serving the first duty.
	FaultIsolate
)

// Step is one step of a schedule. Every field is drawn from the seed
// before the run starts; the step is interpreted against the live cluster
// (e.g. "approve the open handover, if any").
type Step struct {
	Kind StepKind
	// Advance moves the protocol clock before the step.
	Advance time.Duration
	// Region and Other name regions (by index) the step acts on or through.
	Region, Other int
	// Operator indexes the operators.
	Operator int
	// Variant selects a sub-case (which invalid command, which evidence).
	Variant int
	// Cosign is how many other operators co-sign a handover request.
	Cosign int
	Duties []Duty
	Fault  FaultKind
}

// Variant counts.
const (
	badCommandVariants = 7
	finalityVariants   = 6
)

func (s Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s +%v", s.Kind, s.Advance)
	switch s.Kind {
	case KindDuties:
		for _, d := range s.Duties {
			fmt.Fprintf(&b, " [%s key%d %s v%d]", d.Shape, d.Key, regionName(d.Region), d.Variant)
		}
		switch s.Fault {
		case FaultCrash:
			b.WriteString(" while crashing the first duty's region")
		case FaultIsolate:
			b.WriteString(" while isolating the first duty's region")
		}
	case KindRequest:
		fmt.Fprintf(&b, " op%d to=%s cosign=%d via %s", s.Operator, regionName(s.Other), s.Cosign, regionName(s.Region))
	case KindApprove, KindCancel:
		fmt.Fprintf(&b, " op%d via %s", s.Operator, regionName(s.Region))
	case KindBadCommand, KindFinality:
		fmt.Fprintf(&b, " variant %d op%d via %s", s.Variant, s.Operator, regionName(s.Region))
	case KindCrash, KindRestart, KindIsolate:
		fmt.Fprintf(&b, " %s", regionName(s.Region))
	case KindCutLink:
		fmt.Fprintf(&b, " %s-%s", regionName(s.Region), regionName(s.Other))
	}
	return b.String()
}

// Schedule returns the steps of the schedule of seed for a cluster with
// validators keys: a pure function of its arguments. A shadow model of the
// faults keeps the schedule sensible (restarts follow crashes, heals follow
// partitions, rarely more than one region down). Steps outside
// [1, MaxSteps] or validators outside [1, MaxValidators] give an error
// wrapping ErrOptions.
func Schedule(seed int64, steps, validators int) ([]Step, error) {
	if steps < 1 || steps > MaxSteps || validators < 1 || validators > MaxValidators {
		return nil, fmt.Errorf("%w: schedule of %d steps over %d validators (1..%d steps, 1..%d validators)",
			ErrOptions, steps, validators, MaxSteps, MaxValidators)
	}
	operators := numOperators
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed5eed))
	down := [3]bool{}
	partitioned := false
	out := make([]Step, 0, steps)
	for range steps {
		s := Step{
			Advance:  time.Duration(rng.IntN(4001)) * time.Millisecond,
			Region:   rng.IntN(3),
			Other:    rng.IntN(3),
			Operator: rng.IntN(operators),
		}
		nDown := 0
		for _, d := range down {
			if d {
				nDown++
			}
		}
		type choice struct {
			k StepKind
			w int
		}
		choices := []choice{
			{KindDuties, 40}, {KindRequest, 4}, {KindApprove, 8}, {KindCancel, 2}, {KindBadCommand, 5},
			{KindFinality, 6}, {KindClockJump, 3}, {KindSettle, 3},
		}
		switch nDown {
		case 0:
			choices = append(choices, choice{KindCrash, 3})
		case 1:
			choices = append(choices, choice{KindCrash, 1}, choice{KindRestart, 10})
		default:
			choices = append(choices, choice{KindRestart, 30})
		}
		if partitioned {
			choices = append(choices, choice{KindHeal, 15})
		} else {
			choices = append(choices, choice{KindIsolate, 3}, choice{KindCutLink, 2})
		}
		total := 0
		for _, c := range choices {
			total += c.w
		}
		n := rng.IntN(total)
		for _, c := range choices {
			if n < c.w {
				s.Kind = c.k
				break
			}
			n -= c.w
		}
		switch s.Kind {
		case KindDuties:
			nd := 1 + rng.IntN(4)
			for range nd {
				d := Duty{Key: rng.IntN(validators), Region: rng.IntN(3), Variant: rng.IntN(1 << 16)}
				switch p := rng.IntN(100); {
				case p < 40:
					d.Shape = ShapeAttest
				case p < 55:
					d.Shape = ShapeBlock
				case p < 66:
					d.Shape = ShapeDoubleVote
				case p < 75:
					d.Shape = ShapeSurround
				case p < 83:
					d.Shape = ShapeStaleAttest
				case p < 92:
					d.Shape = ShapeDoubleBlock
				default:
					d.Shape = ShapeStaleBlock
				}
				s.Duties = append(s.Duties, d)
			}
			if nDown == 0 && !partitioned && rng.IntN(100) < 8 {
				if rng.IntN(2) == 0 {
					s.Fault = FaultCrash
					// The shadow does not know which region; mark one so
					// restarts get scheduled (Restart restarts any crashed
					// region when the named one is up).
					down[s.Region] = true
				} else {
					s.Fault = FaultIsolate
					partitioned = true
				}
			}
		case KindRequest:
			s.Cosign = rng.IntN(3) // 0, 1 (reaches threshold 2) or 2
		case KindBadCommand:
			s.Variant = rng.IntN(badCommandVariants)
		case KindFinality:
			s.Variant = rng.IntN(finalityVariants)
		case KindClockJump:
			s.Advance = time.Duration(20+rng.IntN(160)) * time.Second
		case KindCrash:
			if down[s.Region] {
				for i := range down {
					if !down[i] {
						s.Region = i
						break
					}
				}
			}
			down[s.Region] = true
		case KindRestart:
			if !down[s.Region] {
				for i := range down {
					if down[i] {
						s.Region = i
						break
					}
				}
			}
			down[s.Region] = false
		case KindIsolate:
			partitioned = true
		case KindCutLink:
			if s.Other == s.Region {
				s.Other = (s.Region + 1 + rng.IntN(2)) % 3
			}
			partitioned = true
		case KindHeal:
			partitioned = false
		}
		out = append(out, s)
	}
	return out, nil
}
