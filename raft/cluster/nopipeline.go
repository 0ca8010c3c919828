package cluster

import "github.com/hashicorp/raft"

// WithoutPipeline wraps a NetworkTransport so Raft replicates without
// pipelining (one AppendEntries in flight per follower).
//
// hashicorp/raft's pipelined replication can wedge after a follower answers
// Success=false: the pipeline's decoder blocks handing a result nobody
// reads, the in-flight channel fills, and the replication goroutine never
// returns — the follower keeps getting heartbeats but no more entries, and
// Shutdown hangs. Regent batches records into few large entries, so the
// throughput pipelining buys is small and not worth that failure mode.
func WithoutPipeline(t *raft.NetworkTransport) raft.Transport { return noPipeline{t} }

type noPipeline struct{ *raft.NetworkTransport }

// AppendEntriesPipeline implements raft.Transport: not supported, so Raft
// falls back to synchronous AppendEntries.
func (noPipeline) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
