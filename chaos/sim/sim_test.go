package sim

import (
	"context"
	"errors"
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Knobs for long runs: go test ./chaos/sim/ -run TestSimulation -sim.seeds=200
// (or REGENT_SIM_SEEDS=200); replay one schedule with -sim.seed=N -sim.seeds=1.
var (
	flagSeeds = flag.Int("sim.seeds", 0, "schedules to run (default 3, or $REGENT_SIM_SEEDS)")
	flagSeed  = flag.Int64("sim.seed", 1, "first seed")
	flagSteps = flag.Int("sim.steps", 0, "steps per schedule (default 100)")
	flagTrace = flag.Bool("sim.trace", false, "log every step")
)

func TestSimulation(t *testing.T) {
	seeds := 3
	if v, err := strconv.Atoi(os.Getenv("REGENT_SIM_SEEDS")); err == nil && v > 0 {
		seeds = v
	}
	if *flagSeeds > 0 {
		seeds = *flagSeeds
	}
	steps := 100
	if *flagSteps > 0 {
		steps = *flagSteps
	}
	if testing.Short() {
		seeds, steps = 1, 60
	}
	opts := Options{Seed: *flagSeed, Runs: seeds, Steps: steps}
	if *flagTrace {
		opts.OnStep = func(seed int64, step int, desc string) { t.Logf("seed %d step %d: %s", seed, step, desc) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rep, err := Run(ctx, opts)
	for _, r := range rep.Runs {
		t.Log(r.String())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestSabotageIsCaught runs a schedule in which every region's key
// backend signs rogue requests without any record when it does not hold
// the lease (a standby process holding the key): the checker must stop
// the run with a Violation naming the seed.
func TestSabotageIsCaught(t *testing.T) {
	opts := Options{Seed: 11, Steps: 150, sabotage: sabotageSignAnywhere}
	rep, err := Run(context.Background(), opts)
	var v *Violation
	if !errors.As(err, &v) || !errors.Is(err, ErrInvariant) {
		t.Fatalf("sabotaged run ended with %v; want a Violation (report: %s)", err, rep)
	}
	if v.Seed != opts.Seed || v.Step < 0 || len(v.Trace) == 0 {
		t.Fatalf("violation without seed, step or trace: %+v", v)
	}
	if v.Invariant != InvSignedUnderCurrentEpoch && v.Invariant != InvNoSlashablePair {
		t.Fatalf("violation of %s, want %s or %s: %v", v.Invariant, InvSignedUnderCurrentEpoch, InvNoSlashablePair, err)
	}
	if !strings.Contains(err.Error(), "-sim.seed=11") {
		t.Fatalf("error does not say how to replay: %v", err)
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := Run(ctx, Options{Steps: 50})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Run took %v to notice the cancelled context", d)
	}
}
