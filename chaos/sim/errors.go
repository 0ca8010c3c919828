package sim

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrOptions: Options fail validation; nothing ran.
	ErrOptions = errors.New("sim: invalid options")
	// ErrInvariant: a safety invariant was broken. The error is a
	// *Violation carrying the seed that reproduces the schedule.
	ErrInvariant = errors.New("sim: invariant violated")
	// ErrSetup: the simulated cluster could not be brought up (no leader,
	// no lease grant, bootstrap refused) within the settle timeout.
	ErrSetup = errors.New("sim: cluster setup failed")
	// ErrLiveness: after every fault was healed and every region restarted,
	// the regions did not converge within the settle timeout. Safety may
	// still hold; the run could not finish its end-of-run checks.
	ErrLiveness = errors.New("sim: cluster did not converge after healing")
	// ErrInternal: the simulation itself failed (it could not build a
	// request or a command); its checks cannot be vouched for.
	ErrInternal = errors.New("sim: internal error")
)

// Pseudo-invariants that route ErrInternal and ErrLiveness through the
// same channel as violations.
const (
	invInternal = "internal"
	invLiveness = "liveness"
)

// Invariant names, as they appear in a Violation.
const (
	// InvNoSlashablePair: no two signatures ever produced for one key form
	// a slashable pair (double proposal, double vote, surround vote).
	InvNoSlashablePair = "no-slashable-pair"
	// InvSignedUnderCurrentEpoch: every signature is covered by a record
	// the FSM accepted from the signing region while that region held the
	// active lease at the record's log index.
	InvSignedUnderCurrentEpoch = "signed-under-current-epoch"
	// InvOneHolderPerEpoch: at most one holder per lease epoch; the lease
	// moves only active(h,e) → fenced(h,e) → active(h',e+1) (or the initial
	// grant), the activation proposed by h' itself.
	InvOneHolderPerEpoch = "one-holder-per-epoch"
	// InvReplicasAgree: replicas that applied the same index hold
	// identical state and produced identical results.
	InvReplicasAgree = "replicas-agree"
	// InvNothingLost: every record the FSM accepted is present on every
	// region that applied its index.
	InvNothingLost = "nothing-acknowledged-lost"
	// InvRefusedChangesNothing: a command the FSM refused (forged,
	// expired, replayed, short finality evidence...) changed no lease and
	// was not accepted.
	InvRefusedChangesNothing = "refused-changes-nothing"
)

// Violation is a broken invariant. It wraps ErrInvariant.
type Violation struct {
	Seed      int64
	Step      int // 0-based step index; -1 during setup or the final checks
	Invariant string
	Detail    string
	// Trace is the tail of the step log, oldest first.
	Trace []string
}

func (v *Violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sim: invariant %s violated at step %d (seed %d; replay with -sim.seed=%d): %s",
		v.Invariant, v.Step, v.Seed, v.Seed, v.Detail)
	if len(v.Trace) > 0 {
		b.WriteString("\nlast steps:\n  ")
		b.WriteString(strings.Join(v.Trace, "\n  "))
	}
	return b.String()
}

// Unwrap makes errors.Is(v, ErrInvariant) hold.
func (v *Violation) Unwrap() error { return ErrInvariant }
