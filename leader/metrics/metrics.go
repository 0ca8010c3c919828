// Package metrics defines the Prometheus metrics of a region node's
// replicated core. Every metric is registered on a registry the caller
// owns (no global registry); README.md documents each one.
package metrics

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

// Core holds the replicated-core metrics.
type Core struct {
	Applied      *prometheus.CounterVec // regent_fsm_applied_total{command,result}
	BatchRecords prometheus.Histogram   // regent_record_batch_size
	Commit       prometheus.Histogram   // regent_record_commit_seconds
	BatchErrors  prometheus.Counter     // regent_record_batch_errors_total
}

// NewCore registers the core metrics on reg, and gauges that read raft and
// the FSM at scrape time.
func NewCore(reg prometheus.Registerer, region string, r *raft.Raft, f *fsm.FSM[*leader.State]) *Core {
	c := &Core{
		Applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regent_fsm_applied_total", Help: "Log entries applied to the state machine, by command type and result (ok, rejected).",
		}, []string{"command", "result"}),
		BatchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "regent_record_batch_size", Help: "Protection records per RecordSignatures entry proposed by this region.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		Commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "regent_record_commit_seconds", Help: "Time from proposing a RecordSignatures entry to its apply on this region.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		BatchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regent_record_batch_errors_total", Help: "RecordSignatures proposals that failed (not holder, no quorum, maybe committed).",
		}),
	}
	reg.MustRegister(c.Applied, c.BatchRecords, c.Commit, c.BatchErrors)
	labels := prometheus.Labels{"region": region}
	view := func(fn func(s *leader.State, applied uint64) float64) func() float64 {
		return func() (v float64) {
			f.View(func(s *leader.State, applied uint64) { v = fn(s, applied) })
			return v
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "regent_raft_leader", Help: "1 when this region is the Raft leader.", ConstLabels: labels},
			func() float64 { return b2f(r.State() == raft.Leader) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "regent_raft_commit_index", Help: "Raft commit index known to this region.", ConstLabels: labels},
			func() float64 { return float64(r.CommitIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "regent_fsm_applied_index", Help: "Last log index applied to this region's state machine.", ConstLabels: labels},
			view(func(_ *leader.State, a uint64) float64 { return float64(a) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "regent_lease_epoch", Help: "Current signing-lease epoch (fencing token).", ConstLabels: labels},
			view(func(s *leader.State, _ uint64) float64 { return float64(s.Lease().Epoch) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "regent_lease_held", Help: "1 when this region holds the active signing lease.", ConstLabels: labels},
			view(func(s *leader.State, _ uint64) float64 {
				l := s.Lease()
				return b2f(l.State == leader.LeaseActive && l.Holder == region)
			})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "regent_lease_fenced", Help: "1 while the lease is fenced (nobody may sign).", ConstLabels: labels},
			view(func(s *leader.State, _ uint64) float64 { return b2f(s.Lease().State == leader.LeaseFenced) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "regent_keys", Help: "Keys in the replicated registry.", ConstLabels: labels},
			view(func(s *leader.State, _ uint64) float64 { return float64(s.KeyCount()) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "regent_fsm_halted", Help: "1 when the state machine stopped on an entry it cannot apply.", ConstLabels: labels},
			func() float64 { return b2f(f.Halted() != nil) }),
	)
	return c
}

// OnApplied is an fsm.Config.Applied hook.
func (c *Core) OnApplied(_ uint64, t commandpb.CommandType, resp fsm.Response) {
	result := "ok"
	if resp.Err != nil {
		result = "rejected"
	}
	c.Applied.WithLabelValues(t.String(), result).Inc()
}

// OnBatch is a leader.ServiceConfig.Observe hook.
func (c *Core) OnBatch(records int, commit time.Duration, err error) {
	c.BatchRecords.Observe(float64(records))
	if err != nil {
		c.BatchErrors.Inc()
		return
	}
	c.Commit.Observe(commit.Seconds())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
