package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/regent-signer/regent/signer/eth2"
)

// eth2SigningRoot is the JSON output of `regentctl eth2 signing-root`: the
// explanation plus the message's slashing-relevant positions.
type eth2SigningRoot struct {
	*eth2.Explanation
	Slot        *uint64 `json:"slot,omitempty"`
	SourceEpoch *uint64 `json:"source_epoch,omitempty"`
	TargetEpoch *uint64 `json:"target_epoch,omitempty"`
}

func newEth2Cmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "eth2", Short: "Ethereum signing requests, offline"}
	var file, network string
	root := &cobra.Command{
		Use:   "signing-root --request FILE",
		Short: "Explain the signing root of a Web3Signer eth2 signing request",
		Long: `Decode a Web3Signer eth2 signing request (the JSON body of
POST /api/v1/eth2/sign/{pubkey}) and print its signing root, the domain and
the fork version used, the message epoch and what slashing protection must
record (block slot, attestation source and target epochs).

Works offline: no cluster is contacted. --request - reads standard input.
With --network (mainnet, sepolia, holesky, hoodi) the request is checked
against that network's genesis validators root, and VOLUNTARY_EXIT and
VALIDATOR_REGISTRATION can be explained (their domains depend on network
parameters). Exits 1 with the decoder's message on bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--request FILE is required")
			}
			body, err := readRequest(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			var req *eth2.Request
			if network != "" {
				n, err := eth2.NetworkByName(network)
				if err != nil {
					return fmt.Errorf("--network: %w", err)
				}
				req, err = eth2.DecodeForNetwork(body, n)
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			} else if req, err = eth2.Decode(body); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			ex, err := req.Explain()
			if errors.Is(err, eth2.ErrNetworkRequired) {
				return fmt.Errorf("%s: %w (pass --network)", file, err)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			out := eth2SigningRoot{Explanation: ex}
			switch p := req.Protection(); p.Kind {
			case eth2.ProtectionBlock:
				out.Slot = &p.Slot
			case eth2.ProtectionAttestation:
				out.SourceEpoch, out.TargetEpoch = &p.SourceEpoch, &p.TargetEpoch
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			_, err = io.WriteString(w, ex.String())
			return err
		},
	}
	root.Flags().StringVar(&file, "request", "", "signing request body (JSON file, or - for standard input)")
	root.Flags().StringVar(&network, "network", "", "network: mainnet, sepolia, holesky or hoodi (default: none, no network checks)")
	cmd.AddCommand(root)
	return cmd
}

// readRequest reads a request file (or standard input for "-"), refusing
// anything larger than a signing request may be.
func readRequest(stdin io.Reader, file string) ([]byte, error) {
	var r io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	body, err := io.ReadAll(io.LimitReader(r, eth2.MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(body) > eth2.MaxBodyBytes {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", file, eth2.ErrTooLarge, eth2.MaxBodyBytes)
	}
	return body, nil
}
