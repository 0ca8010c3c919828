package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"github.com/regent-signer/regent/cmd/internal/client"
	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/pki"
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
