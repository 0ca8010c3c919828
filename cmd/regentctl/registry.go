package main

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/failover/token"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/pki"
)

func newTokenCmd(g *globals, op *operatorFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Short-lived client tokens signed by an operator key"}
	var identity string
	var ttl time.Duration
	issue := &cobra.Command{
		Use:   "issue --identity NAME [--ttl 24h]",
		Short: "Issue a bearer token for a validator client (prints the token)",
		Long: `Issue a token (format regent1.<payload>.<signature>, see package
failover/token) that authenticates a validator client as client identity
NAME on the signing APIs, instead of a client certificate. It is signed
by this operator's key and checked by every region against the replicated
operator registry: it stops working at expiry, or as soon as the operator
is removed. The client's signing policy ("policy set --identity NAME")
still decides what it may sign. The cluster id is asked from the cluster
unless --cluster-id is given (then no cluster is contacted).`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			if !pki.ValidName(identity) {
				return fmt.Errorf("--identity %q: want a client name (lower-case letters, digits, '-', '.')", identity)
			}
			id, signer, done, err := op.signer(cmd)
			if err != nil {
				return err
			}
			defer done()
			clusterID := op.clusterID
			if clusterID == "" {
				conn, err := g.ops(cmd.Context(), op.maxRecv)
				if err != nil {
					return err
				}
				conn.close()
				if !conn.status.GetBootstrapped() {
					return refusedf("the cluster has no operator registry yet: tokens cannot be verified")
				}
				clusterID = conn.status.GetClusterId()
			}
			now := op.now()
			tok, err := token.Issue(signer, id, clusterID, identity, ttl, now)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				return printJSONValue(w, map[string]any{"token": tok, "identity": identity, "operator_id": id, "cluster_id": clusterID,
					"expires": now.Add(ttl).UTC().Format(time.RFC3339)})
			}
			fmt.Fprintln(w, tok)
			return nil
		}),
	}
	issue.Flags().StringVar(&identity, "identity", "", "client identity the token stands for (required)")
	issue.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, fmt.Sprintf("validity (at most %v)", token.MaxTTL))
	_ = issue.MarkFlagRequired("identity")
	cmd.AddCommand(issue)
	return cmd
}

func newKeysListCmd(g *globals, op *operatorFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the replicated key registry",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			conn, err := g.ops(cmd.Context(), op.maxRecv)
			if err != nil {
				return err
			}
			defer conn.close()
			ctx, cancel := g.callCtx(cmd.Context())
			defer cancel()
			resp, err := conn.ListKeys(ctx, &opspb.ListKeysRequest{})
			if err != nil {
				return rpcError("list keys", err)
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				return printJSONValue(w, map[string]any{"via": conn.region, "keys": protoList(resp.Keys), "regions": nonNil(resp.Regions)})
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "PUBKEY\tSCHEME\tNETWORK\tLABEL\tSTATUS\tSECRETS FOR")
			for _, k := range resp.Keys {
				st := "enabled"
				if k.Disabled {
					st = "disabled: " + k.DisabledReason
				}
				secrets := strings.Join(k.WrappedFor, ",")
				if secrets == "" {
					secrets = "none (history only)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", hexKey(k.Pubkey), k.Scheme, k.Network, k.Label, st, secrets)
			}
			tw.Flush()
			fmt.Fprintf(w, "%d keys; regions with wrapping keys: %s (via %s)\n", len(resp.Keys), strings.Join(resp.Regions, ", "), conn.region)
			return nil
		}),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func newKeysImportCmd(g *globals, op *operatorFlags) *cobra.Command {
	var keystore, passwordFile string
	cmd := &cobra.Command{
		Use:   "import --keystore FILE --password-file FILE",
		Short: "Import an EIP-2335 keystore through a region that signs",
		Long: `Import an EIP-2335 keystore: the region decrypts it, wraps the secret for
every registered region's HSM and registers the key. The first region in
--endpoints that answers does it; it must have an HSM (a region without one
refuses: "signing is not configured on this region").`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			ks, err := readLimited(keystore, opspb.MaxKeystore)
			if err != nil {
				return err
			}
			pw, err := readLimited(passwordFile, opspb.MaxPassword)
			if err != nil {
				return err
			}
			pw = bytes.TrimRight(pw, "\r\n")
			conn, err := g.ops(cmd.Context(), op.maxRecv)
			if err != nil {
				return err
			}
			defer conn.close()
			ctx, cancel := writeCtx(cmd.Context())
			defer cancel()
			resp, err := conn.ImportKeystore(ctx, &opspb.ImportKeystoreRequest{KeystoreJson: ks, Password: string(pw)})
			clear(pw)
			if err != nil {
				return rpcError("import keystore", err)
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				return printJSONValue(w, map[string]any{"pubkey": hexKey(resp.Pubkey), "via": conn.region})
			}
			fmt.Fprintf(w, "imported %s (via %s)\n", hexKey(resp.Pubkey), conn.region)
			return nil
		}),
	}
	cmd.Flags().StringVar(&keystore, "keystore", "", "EIP-2335 keystore JSON (required)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "file holding the keystore password (required)")
	_ = cmd.MarkFlagRequired("keystore")
	_ = cmd.MarkFlagRequired("password-file")
	return cmd
}

func newInterchangeCmd(g *globals, op *operatorFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "interchange", Short: "EIP-3076 slashing-protection interchange"}
	var pubkeys []string
	var network, file string
	export := &cobra.Command{
		Use:   "export [--pubkey 0x...] --file F",
		Short: "Write the replicated protection history as EIP-3076 JSON",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			req := &opspb.ExportInterchangeRequest{}
			for _, p := range pubkeys {
				pk, err := parsePubkey(p)
				if err != nil || len(pk) != 48 {
					return fmt.Errorf("--pubkey %q: want a 0x-hex 48-byte BLS public key", p)
				}
				req.Pubkeys = append(req.Pubkeys, pk)
			}
			if network != "" {
				r, err := leader.ParseRoot(network)
				if err != nil {
					return fmt.Errorf("--genesis-validators-root: %w", err)
				}
				req.GenesisValidatorsRoot = r[:]
			}
			conn, err := g.ops(cmd.Context(), op.maxRecv)
			if err != nil {
				return err
			}
			defer conn.close()
			ctx, cancel := writeCtx(cmd.Context())
			defer cancel()
			resp, err := conn.ExportInterchange(ctx, req)
			if err != nil {
				return rpcError("export interchange", err)
			}
			if err := writeFileAtomic(file, resp.InterchangeJson, 0o644); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				return printJSONValue(w, map[string]any{"file": file, "keys": resp.Keys, "applied_index": resp.AppliedIndex, "via": conn.region})
			}
			fmt.Fprintf(w, "wrote the history of %d keys to %s (%s at index %d)\n", resp.Keys, file, conn.region, resp.AppliedIndex)
			return nil
		}),
	}
	export.Flags().StringSliceVar(&pubkeys, "pubkey", nil, "keys to export (default: every key with history)")
	export.Flags().StringVar(&network, "genesis-validators-root", "", "0x-hex network root (default: the keys' network)")
	export.Flags().StringVar(&file, "file", "", "output file (required)")
	_ = export.MarkFlagRequired("file")

	var inFile string
	imp := &cobra.Command{
		Use:   "import --file F",
		Short: "Commit an EIP-3076 interchange (registering unknown keys); refused whole on any conflict",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			doc, err := readLimited(inFile, opspb.MaxInterchange)
			if err != nil {
				return err
			}
			conn, err := g.ops(cmd.Context(), op.maxRecv)
			if err != nil {
				return err
			}
			defer conn.close()
			ctx, cancel := writeCtx(cmd.Context())
			defer cancel()
			resp, err := conn.ImportInterchange(ctx, &opspb.ImportInterchangeRequest{InterchangeJson: doc})
			if err != nil {
				return rpcError("import interchange", err)
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				if err := printJSONValue(w, map[string]any{"result": protoValue(resp), "via": conn.region}); err != nil {
					return err
				}
			} else if resp.Accepted {
				fmt.Fprintf(w, "imported the history of %d keys at log index %d (via %s)\n", resp.Keys, resp.Index, conn.region)
			}
			if !resp.Accepted {
				return refusedf("interchange refused by the cluster: %s", resp.Reason)
			}
			return nil
		}),
	}
	imp.Flags().StringVar(&inFile, "file", "", "EIP-3076 JSON file (required)")
	_ = imp.MarkFlagRequired("file")
	cmd.AddCommand(export, imp)
	return cmd
}

func newMembersCmd(g *globals, op *operatorFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "members",
		Short: "Raft membership: list, add, remove",
		Long: `Raft membership changes are made on the Raft leader (regentctl finds it)
for a caller with an operator certificate. In this version they are NOT
multi-signed by operators and not in the failover audit chain (the regions
log them). A region holding the lease, or the target of an open handover,
cannot be removed.`,
	}
	show := func(cmd *cobra.Command, via string, resp *opspb.MembersResponse) error {
		w := cmd.OutOrStdout()
		if g.output == "json" {
			return printJSONValue(w, map[string]any{"via": via, "members": protoValue(resp)})
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tADDRESS\tSUFFRAGE\tLEADER")
		for _, m := range resp.Members {
			lead := ""
			if m.Leader {
				lead = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Id, m.Address, m.Suffrage, lead)
		}
		tw.Flush()
		fmt.Fprintf(w, "configuration at log index %d (via %s)\n", resp.ConfigurationIndex, via)
		return nil
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the Raft configuration",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			conn, err := g.ops(cmd.Context(), op.maxRecv)
			if err != nil {
				return err
			}
			defer conn.close()
			ctx, cancel := g.callCtx(cmd.Context())
			defer cancel()
			resp, err := conn.Members(ctx, &opspb.MembersRequest{})
			if err != nil {
				return rpcError("members", err)
			}
			return show(cmd, conn.region, resp)
		}),
	}
	// onLeader runs call against the Raft leader's region.
	onLeader := func(cmd *cobra.Command, call func(c *opsClient) (*opspb.MembersResponse, error)) error {
		conn, err := g.ops(cmd.Context(), op.maxRecv)
		if err != nil {
			return err
		}
		ctx, cancel := g.callCtx(cmd.Context())
		cur, err := conn.Members(ctx, &opspb.MembersRequest{})
		cancel()
		conn.close()
		if err != nil {
			return rpcError("members", err)
		}
		if cur.LeaderId == "" {
			return unavailablef("no raft leader known")
		}
		lc, err := g.opsRegion(cmd.Context(), cur.LeaderId, op.maxRecv)
		if err != nil {
			return err
		}
		defer lc.close()
		resp, err := call(lc)
		if err != nil {
			return rpcError("membership change", err)
		}
		return show(cmd, lc.region, resp)
	}
	var id, addr string
	var nonvoter bool
	add := &cobra.Command{
		Use:   "add --id ID --address HOST:PORT [--nonvoter]",
		Short: "Add a Raft member (on the leader; not multi-signed)",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return onLeader(cmd, func(c *opsClient) (*opspb.MembersResponse, error) {
				ctx, cancel := writeCtx(cmd.Context())
				defer cancel()
				return c.AddMember(ctx, &opspb.AddMemberRequest{Id: id, Address: addr, Nonvoter: nonvoter})
			})
		}),
	}
	add.Flags().StringVar(&id, "id", "", "member (node) id (required)")
	add.Flags().StringVar(&addr, "address", "", "its Raft address host:port (required)")
	add.Flags().BoolVar(&nonvoter, "nonvoter", false, "add as a non-voter (replicates, does not vote)")
	_ = add.MarkFlagRequired("id")
	_ = add.MarkFlagRequired("address")
	var rmID string
	remove := &cobra.Command{
		Use:   "remove --id ID",
		Short: "Remove a Raft member (on the leader; not multi-signed)",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return onLeader(cmd, func(c *opsClient) (*opspb.MembersResponse, error) {
				ctx, cancel := writeCtx(cmd.Context())
				defer cancel()
				return c.RemoveMember(ctx, &opspb.RemoveMemberRequest{Id: rmID})
			})
		}),
	}
	remove.Flags().StringVar(&rmID, "id", "", "member id (required)")
	_ = remove.MarkFlagRequired("id")
	cmd.AddCommand(list, add, remove)
	return cmd
}
