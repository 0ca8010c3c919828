package sim

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/regent-signer/regent/failover"
)

// Options configure Run. Zero fields take the value of DefaultOptions.
type Options struct {
	// Seed is the first schedule's seed; run i uses Seed+i. A failing run's
	// seed is in its Violation; Runs 1 with that Seed replays its schedule.
	Seed int64
	// Runs is how many schedules Run executes, one after the other.
	Runs int
	// Steps is the number of steps of each schedule.
	Steps int
	// Validators is the number of BLS validator keys registered.
	Validators int
	// DutyTimeout bounds one signing request (real time).
	DutyTimeout time.Duration
	// CommandTimeout bounds one operator command, finality report or
	// agent proposal (real time).
	CommandTimeout time.Duration
	// SettleTimeout bounds every wait on a condition: a leader, the first
	// lease grant, convergence of the replicas (real time).
	SettleTimeout time.Duration
	// Raft is the Raft tuning (real time: hashicorp/raft reads its own
	// clock).
	Raft RaftOptions
	// MaxClockSkew bounds how far each region's protocol clock is off the
	// simulation's (drawn per schedule).
	MaxClockSkew time.Duration
	// DRSilence is the DR policy's silence (protocol time).
	DRSilence time.Duration
	// DigestEvery: every region hashes its state after applying each index
	// that is a multiple of DigestEvery, and replicas' hashes at one index
	// must agree. Negative disables it (convergence checks still compare
	// whole states).
	DigestEvery int
	// Logger receives progress at Debug and run summaries at Info; nil
	// discards.
	Logger *slog.Logger
	// OnStep, when set, is called after every step with a one-line
	// description (what was done and how it ended).
	OnStep func(seed int64, step int, desc string)

	// sabotage deliberately breaks a component, so tests can show the
	// checker catches it. Zero in production use.
	sabotage sabotage
}

// RaftOptions is the hashicorp/raft tuning of the simulated regions.
type RaftOptions struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// TransportTimeout bounds one in-memory RPC.
	TransportTimeout time.Duration
	// SnapshotThreshold and TrailingLogs are low by default so lagging and
	// restarted regions catch up through InstallSnapshot and Restore.
	SnapshotThreshold uint64
	TrailingLogs      uint64
}

// sabotage names a deliberate fault the checker must catch.
type sabotage uint8

const (
	// sabotageSignAnywhere: a non-holder region's signer signs rogue
	// duties without any record (a standby process with the same key).
	sabotageSignAnywhere sabotage = iota + 1
)

// DefaultOptions returns the defaults: one schedule of 200 steps, four
// validators, fast Raft timers.
func DefaultOptions() Options {
	return Options{
		Seed:           1,
		Runs:           1,
		Steps:          200,
		Validators:     4,
		DutyTimeout:    500 * time.Millisecond,
		CommandTimeout: 750 * time.Millisecond,
		SettleTimeout:  20 * time.Second,
		Raft: RaftOptions{
			HeartbeatTimeout:   100 * time.Millisecond,
			ElectionTimeout:    100 * time.Millisecond,
			LeaderLeaseTimeout: 50 * time.Millisecond,
			CommitTimeout:      5 * time.Millisecond,
			TransportTimeout:   250 * time.Millisecond,
			SnapshotThreshold:  48,
			TrailingLogs:       24,
		},
		MaxClockSkew: 2 * time.Second,
		DRSilence:    60 * time.Second,
		DigestEvery:  32,
	}
}

// withDefaults fills zero fields from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Runs == 0 {
		o.Runs = d.Runs
	}
	if o.Steps == 0 {
		o.Steps = d.Steps
	}
	if o.Validators == 0 {
		o.Validators = d.Validators
	}
	if o.DutyTimeout == 0 {
		o.DutyTimeout = d.DutyTimeout
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = d.CommandTimeout
	}
	if o.SettleTimeout == 0 {
		o.SettleTimeout = d.SettleTimeout
	}
	r, dr := &o.Raft, d.Raft
	if r.HeartbeatTimeout == 0 {
		r.HeartbeatTimeout = dr.HeartbeatTimeout
	}
	if r.ElectionTimeout == 0 {
		r.ElectionTimeout = dr.ElectionTimeout
	}
	if r.LeaderLeaseTimeout == 0 {
		r.LeaderLeaseTimeout = dr.LeaderLeaseTimeout
	}
	if r.CommitTimeout == 0 {
		r.CommitTimeout = dr.CommitTimeout
	}
	if r.TransportTimeout == 0 {
		r.TransportTimeout = dr.TransportTimeout
	}
	if r.SnapshotThreshold == 0 {
		r.SnapshotThreshold = dr.SnapshotThreshold
	}
	if r.TrailingLogs == 0 {
		r.TrailingLogs = dr.TrailingLogs
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = d.MaxClockSkew
	}
	if o.DRSilence == 0 {
		o.DRSilence = d.DRSilence
	}
	if o.DigestEvery == 0 {
		o.DigestEvery = d.DigestEvery
	}
	return o
}

// Limits of Options.
const (
	MaxRuns       = 1 << 20
	MaxSteps      = 1 << 20
	MaxValidators = 64
)

// Validate checks o after defaults are applied, including the cross-field
// rules hashicorp/raft imposes. Errors wrap ErrOptions.
func (o Options) Validate() error {
	o = o.withDefaults()
	r := o.Raft
	switch {
	case o.Runs < 1 || o.Runs > MaxRuns:
		return fmt.Errorf("%w: Runs %d not in [1, %d]", ErrOptions, o.Runs, MaxRuns)
	case o.Steps < 1 || o.Steps > MaxSteps:
		return fmt.Errorf("%w: Steps %d not in [1, %d]", ErrOptions, o.Steps, MaxSteps)
	case o.Validators < 1 || o.Validators > MaxValidators:
		return fmt.Errorf("%w: Validators %d not in [1, %d]", ErrOptions, o.Validators, MaxValidators)
	case o.DutyTimeout < 0 || o.CommandTimeout < 0 || o.SettleTimeout < 0:
		return fmt.Errorf("%w: negative timeout", ErrOptions)
	case o.SettleTimeout < 10*r.ElectionTimeout:
		return fmt.Errorf("%w: SettleTimeout %v is shorter than ten election timeouts (%v)", ErrOptions, o.SettleTimeout, 10*r.ElectionTimeout)
	case r.HeartbeatTimeout < 5*time.Millisecond || r.ElectionTimeout < 5*time.Millisecond || r.LeaderLeaseTimeout < 5*time.Millisecond:
		return fmt.Errorf("%w: raft heartbeat, election and leader lease timeouts must be at least 5ms", ErrOptions)
	case r.CommitTimeout < time.Millisecond:
		return fmt.Errorf("%w: raft commit timeout %v below 1ms", ErrOptions, r.CommitTimeout)
	case r.ElectionTimeout < r.HeartbeatTimeout:
		return fmt.Errorf("%w: election timeout %v below heartbeat timeout %v", ErrOptions, r.ElectionTimeout, r.HeartbeatTimeout)
	case r.LeaderLeaseTimeout > r.HeartbeatTimeout:
		return fmt.Errorf("%w: leader lease timeout %v exceeds heartbeat timeout %v", ErrOptions, r.LeaderLeaseTimeout, r.HeartbeatTimeout)
	case r.TransportTimeout < time.Millisecond:
		return fmt.Errorf("%w: transport timeout %v below 1ms", ErrOptions, r.TransportTimeout)
	case r.TrailingLogs < 1 || r.SnapshotThreshold < 1:
		return fmt.Errorf("%w: raft trailing logs and snapshot threshold must be positive", ErrOptions)
	case o.MaxClockSkew < 0 || o.MaxClockSkew > time.Hour:
		return fmt.Errorf("%w: MaxClockSkew %v not in [0, 1h]", ErrOptions, o.MaxClockSkew)
	case o.DRSilence < failover.MinDRSilenceSeconds*time.Second || o.DRSilence > failover.MaxDRSilenceSeconds*time.Second || o.DRSilence%time.Second != 0:
		return fmt.Errorf("%w: DRSilence %v must be whole seconds in [%ds, %ds]", ErrOptions, o.DRSilence, failover.MinDRSilenceSeconds, failover.MaxDRSilenceSeconds)
	case o.DRSilence <= 2*o.MaxClockSkew+heartbeatInterval:
		return fmt.Errorf("%w: DRSilence %v must exceed twice MaxClockSkew plus the heartbeat interval (%v)", ErrOptions, o.DRSilence, 2*o.MaxClockSkew+heartbeatInterval)
	case o.sabotage > sabotageSignAnywhere:
		return fmt.Errorf("%w: unknown sabotage %d", ErrOptions, o.sabotage)
	}
	return nil
}

// Report is what Run observed, one entry per schedule run.
type Report struct {
	Runs []RunReport
}

// RunReport summarises one schedule.
type RunReport struct {
	Seed    int64
	Steps   int
	Elapsed time.Duration
	// LastIndex is the highest log index applied anywhere; Entries counts
	// the command entries applied (each once, however many regions applied
	// it); Heartbeats the accepted lease heartbeats among them.
	LastIndex  uint64
	Entries    int
	Heartbeats int
	// Duties of the honest validator client (sent to the region it
	// believes holds the lease) and of the rogue duplicate client
	// (conflicting and stale duties to random regions).
	HonestDuties, HonestSigned int
	RogueDuties, RogueSigned   int
	// SignaturesReturned counts signatures the sign path returned;
	// SignaturesProduced counts every signature a key backend produced
	// (the two differ only when a region crashed between signing and
	// returning).
	SignaturesReturned int
	SignaturesProduced int
	// Lease history.
	Fences             int
	HandoversCompleted int
	DRTakeovers        int
	FinalEpoch         uint64
	FinalHolder        string
	// Faults injected.
	Crashes, Restarts, Partitions, Heals, ClockJumps int
	// QuiescentChecks counts convergence points where whole states were
	// compared and every accepted record looked up (RecordsVerified
	// lookups in all); SettleTimeouts counts mid-run convergence waits
	// that ran out (liveness, not safety).
	QuiescentChecks int
	RecordsVerified int
	SettleTimeouts  int
	// StateDigestsCompared counts per-index state digests compared between
	// replicas; SnapshotRestores counts snapshot restores (restarts and
	// InstallSnapshot).
	StateDigestsCompared int
	SnapshotRestores     int
	// Refusals counts outcomes other than success by stable label, e.g.
	// "duty/rogue/slashable/attestation_double_vote",
	// "duty/honest/not_lease_holder",
	// "op/handover.approve/duplicate_approval", "finality/finality_short".
	Refusals map[string]int
	// Availability is HonestSigned / HonestDuties (1 when no duty ran).
	Availability float64
}

// String renders the report for logs: one line per run and a total.
func (r Report) String() string {
	var b strings.Builder
	for _, rr := range r.Runs {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// String renders one run's summary, refusals sorted by label.
func (r RunReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d steps in %v, last index %d (%d commands, %d heartbeats); honest duties %d signed %d (availability %.2f), rogue duties %d signed %d; "+
		"signatures returned %d produced %d; fences %d, handovers %d, DR takeovers %d, final lease %s@%d; "+
		"crashes %d restarts %d partitions %d heals %d clock jumps %d; quiescent checks %d (%d record lookups), settle timeouts %d, "+
		"state digests compared %d, snapshot restores %d",
		r.Seed, r.Steps, r.Elapsed.Round(time.Millisecond), r.LastIndex, r.Entries, r.Heartbeats, r.HonestDuties, r.HonestSigned, r.Availability,
		r.RogueDuties, r.RogueSigned, r.SignaturesReturned, r.SignaturesProduced, r.Fences, r.HandoversCompleted,
		r.DRTakeovers, r.FinalHolder, r.FinalEpoch, r.Crashes, r.Restarts, r.Partitions, r.Heals, r.ClockJumps,
		r.QuiescentChecks, r.RecordsVerified, r.SettleTimeouts, r.StateDigestsCompared, r.SnapshotRestores)
	labels := make([]string, 0, len(r.Refusals))
	for l := range r.Refusals {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	if len(labels) > 0 {
		b.WriteString("; refusals:")
		for _, l := range labels {
			fmt.Fprintf(&b, " %s=%d", l, r.Refusals[l])
		}
	}
	return b.String()
}
