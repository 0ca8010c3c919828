package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/regent-signer/regent/raft/pki"
)

func newPKICmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "pki", Short: "Development certificates"}
	var (
		dir     string
		opts    pki.Options
		clients []string
	)
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Write a development CA and certificates for the regions, regentctl and validator clients",
		Long: `Write a development cluster CA (ca.crt, ca.key) and, signed by it:
  <region>.crt/.key   node certificates (server and client), identity regent://node/<region>
  regentctl.crt/.key  operator certificate, identity regent://operator/<name>
  <client>.crt/.key   validator-client certificates, identity regent://client/<client>
Refuses to overwrite existing files without --force. For production, issue
certificates from your own CA with the same identity URIs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("clients") {
				opts.Clients = clients
				if opts.Clients == nil {
					opts.Clients = []string{}
				}
			}
			if err := pki.Init(dir, opts); err != nil {
				return err
			}
			regions := opts.Regions
			if len(regions) == 0 {
				regions = pki.DefaultRegions()
			}
			if g.output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"dir": dir, "regions": regions})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote development CA and certificates for %v to %s\n", regions, dir)
			return nil
		},
	}
	f := initCmd.Flags()
	f.StringVar(&dir, "dir", "certs", "output directory")
	f.StringSliceVar(&opts.Regions, "regions", nil, "region names (default dc1,dc2,dc3)")
	f.StringSliceVar(&opts.Hosts, "hosts", nil, "DNS names and IPs for node certificates (default localhost,127.0.0.1,::1)")
	f.StringVar(&opts.OperatorName, "operator", "", "operator identity name in regentctl.crt (default regentctl)")
	f.StringSliceVar(&clients, "clients", nil, "validator-client identities (default vc-1)")
	f.BoolVar(&opts.Force, "force", false, "overwrite existing files")
	cmd.AddCommand(initCmd)
	return cmd
}
