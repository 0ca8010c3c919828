package sim

import (
	"context"
	"flag"
	"os"
	"strconv"
	"testing"
	"time"
)

// Knobs for long runs: go test ./chaos/sim/ -run TestSimulation -sim.seeds=200
// (or REGENT_SIM_SEEDS=200); replay one schedule with -sim.seed=N -sim.seeds=1.
var (
	flagSeeds = flag.Int("sim.seeds", 0, "schedules to run (default 3, or $REGENT_SIM_SEEDS)")
	flagSeed  = flag.Int64("sim.seed", 1, "first seed")
	flagSteps = flag.Int("sim.steps", 0, "steps per schedule (default 150)")
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
	steps := 150
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
