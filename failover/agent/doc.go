// Package agent is the node-side driver of the failover protocol in one
// region. It reads the region's replica and proposes, through Raft, the
// entries only a node can propose:
//
//   - LeaseHeartbeat, every HeartbeatInterval, while this region holds the
//     active lease (the liveness a DR policy measures);
//   - ConfirmFinality, when a fenced handover targets this region: it asks
//     its Finality source (the finality watcher) for evidence past the
//     lease's fixed high-water mark and proposes it;
//   - DRTakeover, when an enabled DR policy names this region and the
//     holder's last heartbeat (or lease start) is older than the policy's
//     silence plus DRMargin on this region's clock.
//
// It decides nothing that matters for safety: the state machine re-checks
// every condition deterministically and refuses what does not hold; the
// agent only avoids proposing what would obviously be refused. Operator
// commands are not proposed here: operators sign them (package opsig) and
// regentctl submits them.
//
// Logs use log/slog with the stable keys region, lease_epoch, index.
package agent
