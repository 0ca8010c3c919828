package web3signer

import "net/http"

// Health report statuses, as Web3Signer (Vert.x health checks) spells them.
const (
	StatusUp   = "UP"
	StatusDown = "DOWN"
)

// HealthCheck is one named check of a health report.
type HealthCheck struct {
	ID     string         `json:"id"`
	Status string         `json:"status"`
	Data   map[string]any `json:"data,omitempty"`
}

// HealthReport is the body of GET /healthcheck: Web3Signer's shape
// (status, checks, outcome), with Regent's checks "lease", "keys-check"
// and "quorum".
type HealthReport struct {
	Status  string        `json:"status"`
	Checks  []HealthCheck `json:"checks"`
	Outcome string        `json:"outcome"`
}

func upDown(ok bool) string {
	if ok {
		return StatusUp
	}
	return StatusDown
}

// Report turns a HealthStatus into a HealthReport. The report is UP only
// when this region can sign now: it holds the lease, every expected key is
// loaded, and the log has a quorum. A healthy standby region therefore
// reports DOWN (its "lease" check says who holds the lease), which is what
// a load balancer in front of several regions needs.
func Report(s HealthStatus) HealthReport {
	lease := HealthCheck{ID: "lease", Status: upDown(s.LeaseHeld), Data: map[string]any{
		"region": s.Region, "state": s.LeaseState, "holder": s.LeaseHolder, "epoch": s.LeaseEpoch,
	}}
	keys := HealthCheck{ID: "keys-check", Status: upDown(s.LeaseHeld && s.KeysLoaded >= s.KeysExpected), Data: map[string]any{
		"keys-loaded": s.KeysLoaded, "keys-expected": s.KeysExpected,
	}}
	if s.Detail != "" {
		keys.Data["detail"] = s.Detail
	}
	quorum := HealthCheck{ID: "quorum", Status: upDown(s.Quorum)}
	all := upDown(lease.Status == StatusUp && keys.Status == StatusUp && quorum.Status == StatusUp)
	return HealthReport{Status: all, Checks: []HealthCheck{lease, keys, quorum}, Outcome: all}
}

// healthcheck answers 200 with an UP report, 503 with a DOWN one.
func (h *Handler) healthcheck(w http.ResponseWriter, _ *http.Request) {
	rep := Report(h.cfg.Health.Health())
	status := http.StatusOK
	if rep.Status != StatusUp {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rep)
}
