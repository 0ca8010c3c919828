package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/cmd/internal/client"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/slashing"
)

type demoClient struct {
	conns map[string]*grpc.ClientConn
	nodes map[string]nodepb.NodeClient
}

func newClient(certs string, regions []*region) (*demoClient, error) {
	mat, err := pki.LoadTLS(filepath.Join(certs, "ca.crt"), filepath.Join(certs, "regentctl.crt"), filepath.Join(certs, "regentctl.key"))
	if err != nil {
		return nil, err
	}
	c := &demoClient{conns: map[string]*grpc.ClientConn{}, nodes: map[string]nodepb.NodeClient{}}
	for _, r := range regions {
		conn, err := client.Dial(mat, r.grpcAdr)
		if err != nil {
			c.close()
			return nil, err
		}
		c.conns[r.name], c.nodes[r.name] = conn, nodepb.NewNodeClient(conn)
	}
	return c, nil
}

func (c *demoClient) close() {
	for _, conn := range c.conns {
		conn.Close()
	}
}

func (c *demoClient) status(ctx context.Context, name string) (*nodepb.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return c.nodes[name].Status(ctx, &nodepb.StatusRequest{})
}

// waitFor polls cond until it returns nil or the deadline passes.
func (c *demoClient) waitFor(ctx context.Context, limit time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s: %w", limit, what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *demoClient) expectLease(holder string, epoch uint64, state string, on ...*region) error {
	for _, r := range on {
		st, err := c.status(context.Background(), r.name)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		if l := st.Lease; l.Holder != holder || l.Epoch != epoch || l.State != state {
			return fmt.Errorf("%s sees lease %s %s@%d, want %s %s@%d", r.name, l.State, l.Holder, l.Epoch, state, holder, epoch)
		}
	}
	return nil
}

func (c *demoClient) leaderAmong(ctx context.Context, names ...string) (string, error) {
	for _, n := range names {
		st, err := c.status(ctx, n)
		if err == nil && st.RaftState == "Leader" {
			return n, nil
		}
	}
	return "", errors.New("no leader yet")
}

func (c *demoClient) caughtUp(ctx context.Context, name string) error {
	st, err := c.status(ctx, name)
	if err != nil {
		return err
	}
	l, err := c.leaderAmong(ctx, "dc1", "dc2", "dc3")
	if err != nil {
		return err
	}
	ls, err := c.status(ctx, l)
	if err != nil {
		return err
	}
	if st.AppliedIndex < ls.CommitIndex {
		return fmt.Errorf("%s applied %d, leader committed %d", name, st.AppliedIndex, ls.CommitIndex)
	}
	return nil
}

func (c *demoClient) addKeys(ctx context.Context, on string, set validatorSet) error {
	req := &commandpb.AddKeys{}
	for i, v := range set {
		req.Keys = append(req.Keys, &commandpb.AddKey{Pubkey: v.pubkey, Scheme: commandpb.Scheme_SCHEME_BLS12381,
			Network: leader.RootHex(demoGVR), Label: fmt.Sprintf("demo-validator-%d", i)})
	}
	resp, err := c.nodes[on].AddKeys(ctx, req)
	if err != nil {
		return fmt.Errorf("add keys on %s: %w", on, err)
	}
	if int(resp.Added) != len(set) {
		return fmt.Errorf("added %d keys, want %d", resp.Added, len(set))
	}
	return nil
}

// recordDuties commits every duty of epochs 1..n through region on, in
// concurrent chunks the way many validator clients would, and returns
// the acknowledged records. Any refusal is an error.
func (c *demoClient) recordDuties(ctx context.Context, on string, set validatorSet, epochs int) ([]*commandpb.ProtectionRecord, error) {
	var acked []*commandpb.ProtectionRecord
	for e := 1; e <= epochs; e++ {
		recs := set.duties(uint64(e))
		const chunk = 50
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for off := 0; off < len(recs); off += chunk {
			part := recs[off:min(off+chunk, len(recs))]
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.nodes[on].Record(ctx, &nodepb.RecordRequest{Records: part})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				for i, o := range resp.Outcomes {
					if o.Decision != "accepted" {
						errs = append(errs, fmt.Errorf("record refused: %s %s", o.Rule, o.Reason))
						continue
					}
					acked = append(acked, part[i])
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	return acked, nil
}

func (c *demoClient) tryDoubleVote(ctx context.Context, on string, set validatorSet, epoch uint64) (string, error) {
	rec := conflicting(set.duties(epoch)[0])
	resp, err := c.nodes[on].Record(ctx, &nodepb.RecordRequest{Records: []*commandpb.ProtectionRecord{rec}})
	if err != nil {
		return "", err
	}
	o := resp.Outcomes[0]
	if o.Decision != "denied" {
		return "", fmt.Errorf("double vote was %s, want denied", o.Decision)
	}
	return fmt.Sprintf("%s (%s)", o.Rule, o.Reason), nil
}

// recordOn tries to commit one record through region on; it returns the
// refusal message.
func (c *demoClient) recordOn(ctx context.Context, on string, set validatorSet, epoch int) (string, error) {
	rec := set.duties(uint64(epoch))[0]
	_, err := c.nodes[on].Record(ctx, &nodepb.RecordRequest{Records: []*commandpb.ProtectionRecord{rec}})
	if err != nil {
		return status.Convert(err).Message(), err
	}
	return "", nil
}

// verifyHeld counts the acknowledged records region name holds: for each,
// a conflicting record must be refused by that region's state.
func (c *demoClient) verifyHeld(ctx context.Context, name string, acked []*commandpb.ProtectionRecord) (int, error) {
	held := 0
	for off := 0; off < len(acked); off += leader.MaxBatch {
		part := acked[off:min(off+leader.MaxBatch, len(acked))]
		req := &nodepb.RecordRequest{}
		for _, r := range part {
			req.Records = append(req.Records, conflicting(r))
		}
		resp, err := c.nodes[name].Check(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("check on %s: %w", name, err)
		}
		for _, o := range resp.Outcomes {
			// Only the double-vote/double-proposal rules prove the original
			// record is there; any other refusal does not count.
			if o.Decision == "denied" && (o.Rule == string(slashing.RuleAttDoubleVote) || o.Rule == string(slashing.RuleBlockDoubleProposal)) {
				held++
			}
		}
	}
	return held, nil
}
