package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/regent-signer/regent/leader"
)

// TestFaultMachinery checks the simulation's own fault injection against
// a live cluster: an isolated holder cannot sign, healing restores
// signing, a crashed region restarts on its stores and converges to the
// same state, and none of it trips an invariant.
func TestFaultMachinery(t *testing.T) {
	ctx := context.Background()
	opts := DefaultOptions()
	c, err := newCluster(opts, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer c.shutdown()
	r := &runner{c: c, ops: newOperators(5, c.clock.Now), chk: newChecker(c.hist), rep: RunReport{Refusals: map[string]int{}}}
	if err := r.setup(ctx); err != nil {
		t.Fatal(err)
	}
	checkClean := func(when string) {
		t.Helper()
		if err := r.check(); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	checkClean("after setup")
	holder := holderIndex(c.live(0).lease())
	if holder != 0 {
		t.Fatalf("initial holder %d, want dc1", holder)
	}
	duty := func(target int) string {
		c.clock.Advance(slotDuration * slotsPerEpoch) // a fresh epoch: a fresh honest attestation
		return r.duty(ctx, Duty{Shape: ShapeAttest, Key: 0, Region: target}, target, c.clock.Now()).label
	}
	signsEventually := func(target int, when string) {
		t.Helper()
		var last string
		if !waitFor(ctx, opts.SettleTimeout, func() bool { last = duty(target); return last == "signed" }) {
			t.Fatalf("%s: %s never signed (last: %s)", when, regionName(target), last)
		}
	}
	signsEventually(0, "healthy cluster")

	c.isolate(0)
	c.hist.mu.Lock()
	sigs := len(c.hist.sigs)
	c.hist.mu.Unlock()
	for range 3 {
		if got := duty(0); got == "signed" {
			t.Fatalf("isolated holder signed")
		}
	}
	if got := duty(1); !strings.HasPrefix(got, "not_lease_holder") {
		t.Fatalf("non-holder answered %q", got)
	}
	c.hist.mu.Lock()
	produced := len(c.hist.sigs) - sigs
	c.hist.mu.Unlock()
	if produced != 0 {
		t.Fatalf("%d signatures produced while the holder was isolated", produced)
	}
	checkClean("while isolated")

	c.heal()
	signsEventually(0, "after heal")
	checkClean("after heal")

	if !c.crash(1) || c.live(1) != nil {
		t.Fatal("crash of dc2 did not take")
	}
	signsEventually(0, "with dc2 down")
	if ok, err := c.restart(1); !ok || err != nil {
		t.Fatalf("restart of dc2: %t, %v", ok, err)
	}
	if desc := r.settle(ctx, true); !strings.HasPrefix(desc, "converged") {
		t.Fatalf("after restart: %s", desc)
	}
	checkClean("after restart")
	if l := c.live(1).lease(); l.State != leader.LeaseActive || l.Holder != "dc1" {
		t.Fatalf("restarted dc2 sees lease %+v", l)
	}
	if r.rep.QuiescentChecks != 1 || r.rep.RecordsVerified == 0 {
		t.Fatalf("settle compared %d times, verified %d records", r.rep.QuiescentChecks, r.rep.RecordsVerified)
	}
}
