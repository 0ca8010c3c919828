package metrics

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/pipeline/pipelinetest"
	"github.com/regent-signer/regent/slashing"
)

func newMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// value reads a counter.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// series counts the series a collector exports.
func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 1024)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

func histCount(t *testing.T, reg *prometheus.Registry, stage string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != NameSignDuration {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestNewRegistration(t *testing.T) {
	if _, err := New(nil); !errors.Is(err, ErrNoRegisterer) {
		t.Fatalf("nil registerer: %v", err)
	}
	m, reg := newMetrics(t)
	if _, err := New(reg); err == nil {
		t.Fatal("registered twice on one registry")
	}
	// The failed second New left the first's families intact.
	m.Observe(pipeline.Observation{Type: "ATTESTATION", Outcome: "signed"})
	if got := value(t, m.requests.WithLabelValues("ATTESTATION", "signed")); got != 1 {
		t.Fatalf("requests %v", got)
	}
	// A registry that already holds one name gets none of ours.
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: NameHSMErrors, Help: "taken"}))
	if _, err := New(reg2); err == nil {
		t.Fatal("conflicting registration accepted")
	}
	mfs, _ := reg2.Gather()
	for _, mf := range mfs {
		if mf.GetName() != NameHSMErrors {
			t.Fatalf("%s left registered after a failed New", mf.GetName())
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

func TestRulesStartAtZero(t *testing.T) {
	m, _ := newMetrics(t)
	if n := series(m.refusals); n != len(KnownRules()) {
		t.Fatalf("%d refusal series, want %d", n, len(KnownRules()))
	}
	for _, r := range KnownRules() {
		if v := value(t, m.refusals.WithLabelValues(string(r))); v != 0 {
			t.Fatalf("%s = %v", r, v)
		}
	}
}

// TestObserve: each row is one observation on fresh metrics and the
// series it must move.
func TestObserve(t *testing.T) {
	rows := []struct {
		name         string
		obs          pipeline.Observation
		typ, outcome string
		rule         string // refusal series expected at 1
		commit, sign uint64
		hsm          float64
	}{
		{name: "signed", obs: pipeline.Observation{Type: "ATTESTATION", Outcome: "signed", Total: 3 * time.Millisecond, Commit: 2 * time.Millisecond, Sign: time.Millisecond},
			typ: "ATTESTATION", outcome: "signed", commit: 1, sign: 1},
		{name: "slashable", obs: pipeline.Observation{Type: "BLOCK_V2", Outcome: "slashable", Rule: slashing.RuleBlockDoubleProposal, Total: time.Millisecond, Commit: time.Millisecond},
			typ: "BLOCK_V2", outcome: "slashable", rule: "block_double_proposal", commit: 1},
		{name: "slashable without rule", obs: pipeline.Observation{Type: "ATTESTATION", Outcome: "slashable"},
			typ: "ATTESTATION", outcome: "slashable", rule: "unknown"},
		{name: "refused before commit", obs: pipeline.Observation{Type: "ATTESTATION", Outcome: "forbidden", Total: time.Microsecond},
			typ: "ATTESTATION", outcome: "forbidden"},
		{name: "hsm failure", obs: pipeline.Observation{Type: "RANDAO_REVEAL", Outcome: "unavailable", Commit: time.Millisecond, Sign: time.Millisecond, HSMFailed: true},
			typ: "RANDAO_REVEAL", outcome: "unavailable", commit: 1, sign: 1, hsm: 1},
		{name: "lower-case type", obs: pipeline.Observation{Type: "vote", Outcome: "signed"}, typ: "other", outcome: "signed"},
		{name: "long type", obs: pipeline.Observation{Type: strings.Repeat("A", 65), Outcome: "signed"}, typ: "other", outcome: "signed"},
		{name: "empty type and outcome", obs: pipeline.Observation{}, typ: "unknown", outcome: "unknown"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			m, reg := newMetrics(t)
			m.Observe(row.obs)
			if n := series(m.requests); n != 1 {
				t.Fatalf("%d request series", n)
			}
			if v := value(t, m.requests.WithLabelValues(row.typ, row.outcome)); v != 1 {
				t.Fatalf("requests{%s,%s} = %v", row.typ, row.outcome, v)
			}
			total := 0.0
			for _, r := range append(KnownRules(), "unknown") {
				total += value(t, m.refusals.WithLabelValues(string(r)))
			}
			if row.rule != "" {
				if v := value(t, m.refusals.WithLabelValues(row.rule)); v != 1 || total != 1 {
					t.Fatalf("refusals{%s} = %v, total %v", row.rule, v, total)
				}
			} else if total != 0 {
				t.Fatalf("refusals counted for outcome %s", row.outcome)
			}
			if histCount(t, reg, StageTotal) != 1 || histCount(t, reg, StageCommit) != row.commit || histCount(t, reg, StageSign) != row.sign {
				t.Fatalf("histogram counts total=%d commit=%d sign=%d", histCount(t, reg, StageTotal), histCount(t, reg, StageCommit), histCount(t, reg, StageSign))
			}
			if v := value(t, m.hsmErrors); v != row.hsm {
				t.Fatalf("hsm errors %v", v)
			}
		})
	}
}

func TestRejected(t *testing.T) {
	m, _ := newMetrics(t)
	m.Rejected("bad_request")
	m.Rejected("bad_request")
	m.Rejected("")
	if v := value(t, m.requests.WithLabelValues("unknown", "bad_request")); v != 2 {
		t.Fatalf("bad_request %v", v)
	}
	if v := value(t, m.requests.WithLabelValues("unknown", "unknown")); v != 1 {
		t.Fatalf("unknown %v", v)
	}
}

// TestObserveThroughPipeline wires Observe into a real pipeline over the
// replicated state machine: a signed attestation, then a conflicting one
// (refused before it is written).
func TestObserveThroughPipeline(t *testing.T) {
	m, reg := newMetrics(t)
	env, err := pipelinetest.New(eth2.Mainnet())
	if err != nil {
		t.Fatal(err)
	}
	ikm := sha256.Sum256([]byte("metrics test key"))
	pk, err := env.AddBLSKey(ikm[:], eth2.Mainnet().GenesisValidatorsRoot)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Allow("vc", []string{"*"}, []string{"*"}); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Config{Recorder: env, State: env, BLS: env, Network: eth2.Mainnet(), Observe: m.Observe})
	if err != nil {
		t.Fatal(err)
	}
	gvr := eth2.Mainnet().GenesisValidatorsRoot
	att := func(root byte) *eth2.Request {
		body := fmt.Sprintf(`{"type":"ATTESTATION","fork_info":{"fork":{"previous_version":"0x04000000","current_version":"0x05000000","epoch":"364032"},"genesis_validators_root":"%s"},"attestation":{"slot":"100","index":"0","beacon_block_root":"0x%064x","source":{"epoch":"2","root":"0x%064x"},"target":{"epoch":"3","root":"0x%064x"}}}`,
			gvr.String(), root, 1, 2)
		r, err := eth2.DecodeForNetwork([]byte(body), eth2.Mainnet())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if _, err := p.SignEth(context.Background(), pipeline.Caller{Name: "vc"}, pk, att(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SignEth(context.Background(), pipeline.Caller{Name: "vc"}, pk, att(2)); !errors.Is(err, pipeline.ErrSlashable) {
		t.Fatalf("conflict: %v", err)
	}
	if v := value(t, m.requests.WithLabelValues("ATTESTATION", "signed")); v != 1 {
		t.Fatalf("signed %v", v)
	}
	if v := value(t, m.refusals.WithLabelValues("attestation_double_vote")); v != 1 {
		t.Fatalf("double vote %v", v)
	}
	// The conflicting request is refused against the local state before
	// any write, so only the first request commits and signs.
	if histCount(t, reg, StageTotal) != 2 || histCount(t, reg, StageCommit) != 1 || histCount(t, reg, StageSign) != 1 {
		t.Fatal("stage histograms do not match two requests, one commit and one signature")
	}
}
