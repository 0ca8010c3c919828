package keysync

import (
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers, on reg, metrics that read m's and g's counters
// at scrape time. Either may be nil. Names:
//
//	regent_keysync_passes_total              sync passes run
//	regent_keysync_installed_total           keys unwrapped and installed in this region
//	regent_keysync_failures_total            failed attempts to unwrap or install a key (retried)
//	regent_keysync_removed_total             local copies of disabled keys deleted
//	regent_keysync_remove_failures_total     failed deletions of local copies (retried)
//	regent_keysync_register_failures_total   failed RegisterRegion proposals (retried)
//	regent_keysync_local_read_failures_total failed listings of the store/HSM or wrapping key
//	regent_keysync_wrong_wrap_key_total      keys found wrapped to another key of this region
//	regent_keysync_registered                1 when the state holds this region's wrapping key
//	regent_keysync_pending_keys              enabled keys wrapped here but not installed yet
//	regent_keysync_not_wrapped_keys          enabled keys with no wrapped secret for this region
//	regent_keysync_wrong_wrap_key_keys       enabled keys skipped for a wrap key mismatch
//	regent_keysync_orphan_keys               keys held here that the registry does not list
//	regent_keyguard_keys_loaded              BLS keys unsealed in memory
//	regent_keyguard_signing                  1 while the guard lets this region sign
//	regent_keyguard_loads_total              key sets unsealed and made live
//	regent_keyguard_load_failures_total      failed unseals
//	regent_keyguard_barrier_failures_total   failed barriers of a new holder
//	regent_keyguard_zeroed_total             live key sets zeroed
//	regent_keyguard_refused_total            signatures refused: keys not live
func RegisterMetrics(reg prometheus.Registerer, m *Manager, g *Guard) error {
	var cs []prometheus.Collector
	counter := func(name, help string, f func() uint64) {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) }))
	}
	gauge := func(name, help string, f func() float64) {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	if m != nil {
		counter("regent_keysync_passes_total", "Key sync passes run.", func() uint64 { return m.Stats().Passes })
		counter("regent_keysync_installed_total", "Keys unwrapped and installed in this region.", func() uint64 { return m.Stats().Synced })
		counter("regent_keysync_failures_total", "Failed attempts to unwrap or install a key (retried with back-off).", func() uint64 { return m.Stats().SyncFailures })
		counter("regent_keysync_removed_total", "Local copies of disabled keys deleted.", func() uint64 { return m.Stats().Removed })
		counter("regent_keysync_remove_failures_total", "Failed deletions of the local copy of a disabled key (retried).", func() uint64 { return m.Stats().RemoveFailures })
		counter("regent_keysync_register_failures_total", "Failed RegisterRegion proposals (retried).", func() uint64 { return m.Stats().RegisterFailures })
		counter("regent_keysync_local_read_failures_total", "Failed listings of the sealed store, the HSM keys or the wrapping key.", func() uint64 { return m.Stats().LocalReadFailures })
		counter("regent_keysync_wrong_wrap_key_total", "Keys found wrapped to a wrapping key that is not this region's current one.", func() uint64 { return m.Stats().WrongWrapKeyTotal })
		gauge("regent_keysync_registered", "1 when the replicated state holds this region's current wrapping key.", func() float64 { return b2f(m.Stats().Registered) })
		gauge("regent_keysync_pending_keys", "Enabled keys wrapped for this region that are not installed yet.", func() float64 { return float64(m.Stats().Pending) })
		gauge("regent_keysync_not_wrapped_keys", "Enabled keys with no wrapped secret for this region (they cannot sign here).", func() float64 { return float64(m.Stats().NotWrapped) })
		gauge("regent_keysync_wrong_wrap_key_keys", "Enabled keys skipped because they are wrapped to another key of this region.", func() float64 { return float64(m.Stats().WrongWrapKey) })
		gauge("regent_keysync_orphan_keys", "Keys held in this region that the registry does not list.", func() float64 { return float64(m.Stats().Orphans) })
	}
	if g != nil {
		gauge("regent_keyguard_keys_loaded", "BLS keys unsealed in memory.", func() float64 { n, _ := g.Loaded(); return float64(n) })
		gauge("regent_keyguard_signing", "1 while the key guard lets this region sign (lease held, barrier passed).", func() float64 { _, h := g.Loaded(); return b2f(h) })
		counter("regent_keyguard_loads_total", "Key sets unsealed and made live.", func() uint64 { return g.Stats().Loads })
		counter("regent_keyguard_load_failures_total", "Failed unseals of the BLS key store.", func() uint64 { return g.Stats().LoadFailures })
		counter("regent_keyguard_barrier_failures_total", "Failed Raft barriers of a new lease holder.", func() uint64 { return g.Stats().BarrierFailures })
		counter("regent_keyguard_zeroed_total", "Live key sets zeroed (lease lost or guard stopped).", func() uint64 { return g.Stats().Zeroed })
		counter("regent_keyguard_refused_total", "Signatures refused because the keys are not live here.", func() uint64 { return g.Stats().Refused })
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
