// Package node assembles one region node from its Config: TLS material,
// the mutual-TLS Raft transport, raft-boltdb stores, the replicated state
// machine, the leader service, the gRPC Node API and the HTTP endpoints for
// metrics and health. cmd/regent runs it; integration tests and the demo
// start several in one process or as separate processes.
package node
