package transport

import (
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/regent-signer/regent/raft/pki"
)

// waitTimeout bounds every wait on a condition.
const waitTimeout = 20 * time.Second

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		<-tick.C
	}
}

// newPKI writes a development PKI into a temporary directory.
func newPKI(t *testing.T, opts pki.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if err := pki.Init(dir, opts); err != nil {
		t.Fatalf("pki.Init: %v", err)
	}
	return dir
}

// load reads the material of identity file base name from dir.
func load(t *testing.T, dir, name string) *pki.Material {
	t.Helper()
	m, err := pki.LoadTLS(filepath.Join(dir, pki.CACertFile), pki.CertPath(dir, name), pki.KeyPath(dir, name))
	if err != nil {
		t.Fatalf("LoadTLS(%s): %v", name, err)
	}
	return m
}

// newMetrics returns Metrics registered on a fresh registry.
func newMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// failures reads regent_raft_tls_handshake_failures_total from reg, summed
// over the series matching direction and reason ("" matches any).
func failures(t *testing.T, reg prometheus.Gatherer, direction, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != HandshakeFailuresMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			if matches(m, "direction", direction) && matches(m, "reason", reason) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, label, want string) bool {
	if want == "" {
		return true
	}
	for _, l := range m.GetLabel() {
		if l.GetName() == label {
			return l.GetValue() == want
		}
	}
	return false
}

// newStream starts a stream layer on 127.0.0.1:0 with its own metrics.
func newStream(t *testing.T, m *pki.Material, mutate func(*Config)) (*StreamLayer, *prometheus.Registry) {
	t.Helper()
	metrics, reg := newMetrics(t)
	cfg := Config{BindAddr: "127.0.0.1:0", TLS: m, Metrics: metrics}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := NewStreamLayer(cfg)
	if err != nil {
		t.Fatalf("NewStreamLayer: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, reg
}

// testFSM records every applied entry.
type testFSM struct {
	mu      sync.Mutex
	applied []string
}

func (f *testFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, string(l.Data))
	return len(f.applied)
}

func (f *testFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &testSnapshot{entries: slices.Clone(f.applied)}, nil
}

func (f *testFSM) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	var entries []string
	if err := json.NewDecoder(rc).Decode(&entries); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = entries
	return nil
}

func (f *testFSM) entries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

func (f *testFSM) has(entry string) bool { return slices.Contains(f.entries(), entry) }

type testSnapshot struct{ entries []string }

func (s *testSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.entries); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *testSnapshot) Release() {}
