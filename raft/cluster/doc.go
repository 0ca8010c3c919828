// Package cluster runs one region's hashicorp/raft node: raft-boltdb stores
// in the data directory, file snapshots, the static bootstrap of the three
// regions as voters, and Raft tuning.
//
// Guarantees:
//   - Durable writes of the log and the stable store that fail stop the node
//     (Config.Fatal): a node that cannot persist protection state must not
//     keep acknowledging it (DESIGN.md I4).
//   - Bootstrap happens only on an empty data directory; every region
//     bootstraps the same static configuration, so they agree on membership.
package cluster
