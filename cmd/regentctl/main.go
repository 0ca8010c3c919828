// Command regentctl is the operator CLI for a Regent cluster: status,
// signed handovers and DR policies, operators, audit, tokens, keys,
// interchange, members, and development PKI.
//
// Exit codes (stable, for scripts):
//
//	0  success; for status: every region reachable and healthy
//	1  usage or local error (bad flags, unreadable files)
//	2  refused by the cluster (a signed command rejected, a break in the
//	   audit chain); for status: degraded (a region unreachable or halted)
//	   but a majority answers
//	3  cluster unavailable; for status: no majority of regions answers
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot(os.Stdout, os.Stderr).Execute(); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "regentctl:", err)
		os.Exit(1)
	}
}

// exitCode is returned by commands that already printed their outcome.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// globals are the connection flags shared by every command.
type globals struct {
	endpoints []string // region=host:port
	ca, cert  string
	key       string
	output    string
	timeout   string
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "regentctl",
		Short: "Operate a Regent cluster: status, handovers, DR, operators, audit, tokens, keys",
		Long: `regentctl talks to every region's gRPC API over mutual TLS.

Connection settings come from flags or REGENTCTL_* environment variables:
  --endpoints / REGENTCTL_ENDPOINTS   comma-separated region=host:port
  --tls-ca, --tls-cert, --tls-key / REGENTCTL_TLS_CA, _CERT, _KEY
Every command accepts --output json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.fromEnv(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.endpoints, "endpoints", nil, "regions to contact, as region=host:port (comma-separated)")
	pf.StringVar(&g.ca, "tls-ca", "", "cluster CA certificate (PEM)")
	pf.StringVar(&g.cert, "tls-cert", "", "operator certificate (PEM)")
	pf.StringVar(&g.key, "tls-key", "", "operator private key (PEM)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.StringVar(&g.timeout, "timeout", "3s", "per-region timeout")
	op := setupOperator(root)
	root.AddCommand(newStatusCmd(g), newPKICmd(g), signedPolicy(signing{g, op}, newPolicyCmd(g)), signedExit(signing{g, op}, newExitCmd(g)),
		signedKeys(signing{g, op}, newKeysCmd(g)), newEth2Cmd(g), newOperatorsCmd(g, op), newHandoverCmd(g, op), newDRCmd(g, op),
		newCosignCmd(g, op), newSubmitCmd(g, op), newAuditCmd(g, op), newTokenCmd(g, op), newInterchangeCmd(g, op), newMembersCmd(g, op))
	return root
}

func (g *globals) fromEnv(cmd *cobra.Command) error {
	set := func(flag string, dst *string) {
		if !cmd.Flags().Changed(flag) {
			if v := os.Getenv("REGENTCTL_" + envSuffix(flag)); v != "" {
				*dst = v
			}
		}
	}
	set("tls-ca", &g.ca)
	set("tls-cert", &g.cert)
	set("tls-key", &g.key)
	set("output", &g.output)
	if !cmd.Flags().Changed("endpoints") {
		if v := os.Getenv("REGENTCTL_ENDPOINTS"); v != "" {
			g.endpoints = splitComma(v)
		}
	}
	switch g.output {
	case "table", "json":
	default:
		return fmt.Errorf("--output %q: want table or json", g.output)
	}
	return nil
}

func envSuffix(flag string) string {
	return strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func splitComma(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' })
}
