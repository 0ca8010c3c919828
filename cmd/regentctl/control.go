package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/cmd/internal/client"
	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
)

// connect returns a Node client for the first region that answers Status.
func (g *globals) connect(ctx context.Context) (nodepb.NodeClient, string, func(), error) {
	eps, err := parseEndpoints(g.endpoints)
	if err != nil {
		return nil, "", nil, err
	}
	timeout, err := time.ParseDuration(g.timeout)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--timeout: %w", err)
	}
	mat, err := pki.LoadTLS(g.ca, g.cert, g.key)
	if err != nil {
		return nil, "", nil, err
	}
	var errs []error
	for _, ep := range eps {
		conn, err := client.Dial(mat, ep.addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := nodepb.NewNodeClient(conn)
		cctx, cancel := context.WithTimeout(ctx, timeout)
		_, err = c.Status(cctx, &nodepb.StatusRequest{}, grpc.WaitForReady(false))
		cancel()
		if err != nil {
			conn.Close()
			errs = append(errs, fmt.Errorf("%s: %w", ep.region, err))
			continue
		}
		return c, ep.region, func() { conn.Close() }, nil
	}
	return nil, "", nil, fmt.Errorf("no region answered: %w", errors.Join(errs...))
}

// propose sends one operator command and prints the committed index.
func (g *globals) propose(cmd *cobra.Command, t commandpb.CommandType, msg proto.Message, what string) error {
	payload, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
	defer cancel()
	c, region, done, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := c.OperatorPropose(ctx, &nodepb.ProposeRequest{Type: t, Payload: payload})
	if err != nil {
		return fmt.Errorf("%s refused: %s (%s)", what, status.Convert(err).Message(), status.Code(err))
	}
	if g.output == "json" {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"committed": true, "index": resp.Index, "via": region, "what": what})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: committed at log index %d (via %s)\n", what, resp.Index, region)
	return nil
}

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "What each client identity may sign"}
	var (
		identity string
		keys     []string
		types    []string
	)
	set := &cobra.Command{
		Use:   "set",
		Short: "Replace the policy of a client identity",
		Long: `Replace what a client identity (the name in its regent://client/<name>
certificate or token) may sign. --keys takes "*", 0x-hex public keys, or
0x-hex prefixes ending in "*"; --types takes signing types (ATTESTATION,
BLOCK_V2, VOTE, PROPOSAL, ...) or "*". A client with no policy can sign nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.propose(cmd, commandpb.CommandType_SET_POLICY,
				&commandpb.SetPolicy{Identity: identity, KeyPatterns: keys, MessageTypes: types}, "policy for "+identity)
		},
	}
	set.Flags().StringVar(&identity, "identity", "", "client identity name (required)")
	set.Flags().StringSliceVar(&keys, "keys", nil, "key patterns (required)")
	set.Flags().StringSliceVar(&types, "types", nil, "message types (required)")
	for _, f := range []string{"identity", "keys", "types"} {
		_ = set.MarkFlagRequired(f)
	}
	remove := &cobra.Command{
		Use:   "remove",
		Short: "Remove a client identity's policy (it can then sign nothing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.propose(cmd, commandpb.CommandType_SET_POLICY, &commandpb.SetPolicy{Identity: identity, Remove: true}, "policy removal for "+identity)
		},
	}
	remove.Flags().StringVar(&identity, "identity", "", "client identity name (required)")
	_ = remove.MarkFlagRequired("identity")
	cmd.AddCommand(set, remove)
	return cmd
}

func parsePubkey(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(s, "0x")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || (len(b) != 48 && len(b) != 32) {
		return nil, fmt.Errorf("public key %q: want 0x-hex, 48 bytes (BLS) or 32 bytes (Ed25519)", s)
	}
	return b, nil
}

func newExitCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "exit", Short: "Voluntary exits"}
	var pubkey, reason string
	approve := &cobra.Command{
		Use:   "approve",
		Short: "Approve one voluntary exit for a validator key",
		Long: `Commit an operator approval for one voluntary exit of the key. The
first exit signed under it fixes its signing root: only an identical retry
may be signed again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pk, err := parsePubkey(pubkey)
			if err != nil {
				return err
			}
			c, _ := pki.LoadTLS(g.ca, g.cert, g.key)
			op := "regentctl"
			if c != nil {
				op = c.Name()
			}
			return g.propose(cmd, commandpb.CommandType_APPROVE_EXIT, &commandpb.ApproveExit{Pubkey: pk, Operator: op, Reason: reason}, "exit approval for "+pubkey)
		},
	}
	approve.Flags().StringVar(&pubkey, "pubkey", "", "validator public key, 0x-hex (required)")
	approve.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	_ = approve.MarkFlagRequired("pubkey")
	cmd.AddCommand(approve)
	return cmd
}

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "The replicated key registry"}
	var pubkey, reason string
	disable := &cobra.Command{
		Use:   "disable",
		Short: "Disable a key: nothing is signed with it afterwards",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pk, err := parsePubkey(pubkey)
			if err != nil {
				return err
			}
			return g.propose(cmd, commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: pk, Reason: reason}, "disable "+pubkey)
		},
	}
	disable.Flags().StringVar(&pubkey, "pubkey", "", "public key, 0x-hex (required)")
	disable.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	_ = disable.MarkFlagRequired("pubkey")
	cmd.AddCommand(disable)
	return cmd
}
