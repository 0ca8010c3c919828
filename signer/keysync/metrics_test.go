package keysync

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/hsm"
)

func TestRegisterMetrics(t *testing.T) {
	m, err := New(Config{Region: "dc1", Proposer: regionProposer{}, State: &fakeView{}, HSM: &hsm.HSM{}, Store: &bls.Store{}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(GuardConfig{Region: "dc1", State: &fakeView{}, Barrier: &testBarrier{}, Store: &bls.Store{}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := RegisterMetrics(reg, m, g); err != nil {
		t.Fatal(err)
	}
	m.syncFailures.Add(3)
	g.refused.Add(2)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, f := range fams {
		mt := f.GetMetric()[0]
		switch {
		case mt.GetCounter() != nil:
			values[f.GetName()] = mt.GetCounter().GetValue()
		case mt.GetGauge() != nil:
			values[f.GetName()] = mt.GetGauge().GetValue()
		}
	}
	if len(values) != 20 {
		t.Fatalf("%d metrics: %v", len(values), values)
	}
	for name, want := range map[string]float64{
		"regent_keysync_failures_total": 3, "regent_keyguard_refused_total": 2,
		"regent_keysync_registered": 0, "regent_keyguard_signing": 0,
	} {
		if got, ok := values[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for name := range values {
		if !strings.HasPrefix(name, "regent_keysync_") && !strings.HasPrefix(name, "regent_keyguard_") {
			t.Errorf("metric %s outside the package's namespace", name)
		}
	}
	// Registering the same metrics twice is refused, not a panic.
	if err := RegisterMetrics(reg, m, nil); err == nil {
		t.Fatalf("second registration accepted")
	}
	// Only the guard's.
	if err := RegisterMetrics(prometheus.NewRegistry(), nil, g); err != nil {
		t.Fatal(err)
	}
}
