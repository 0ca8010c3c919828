package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/slashing/conformance"
)

func newSlashingCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "slashing", Short: "Slashing-protection tools"}
	cmd.AddCommand(&cobra.Command{
		Use:   "conformance DIR",
		Short: "Run EIP-3076 interchange test files through the replicated state machine",
		Long: `Run every *.json file in DIR written in the public EIP-3076
slashing-protection interchange-test format. Each case starts from an empty
state; interchanges go through the ImportInterchange command and every block
and attestation through a RecordSignatures entry, applied by the same state
machine a region runs. Outcomes are compared with should_succeed_complete
(Regent keeps full history). Prints one line per case and "N passed, M
failed"; exits 1 when any case fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			passed, failed, err := conformance.Run(args[0], func() (conformance.Target, error) {
				return leader.NewEthTarget()
			}, stdout)
			if err != nil {
				return err
			}
			if failed > 0 || passed == 0 {
				if passed == 0 && failed == 0 {
					fmt.Fprintln(stdout, "no test cases found")
				}
				return exitCode(1)
			}
			return nil
		},
	})
	return cmd
}
