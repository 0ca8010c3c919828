// Command regent runs one Regent region node, and offers offline tools.
//
//	regent run --config /etc/regent/dc1.yaml
//	regent slashing conformance DIR
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regent-signer/regent/cmd/internal/node"
)

func main() {
	if err := newRoot(os.Stdout, os.Stderr).Execute(); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "regent:", err)
		os.Exit(1)
	}
}

// exitCode is returned by commands that already printed their outcome.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "regent",
		Short:         "Regent region node: replicated slashing protection and a single signing lease",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(stderr), newSlashingCmd(stdout))
	return root
}

func newRunCmd(stderr io.Writer) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run this region's node until SIGINT/SIGTERM",
		Long: `Run one region node. Settings come from --config (YAML), then REGENT_*
environment variables, then flags (highest precedence). Example file:
deploy/config/dc1.yaml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set := map[string]string{}
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if f.Name != "config" {
					set[f.Name] = f.Value.String()
				}
			})
			cfg, err := node.LoadConfig(cfgPath, os.Getenv, set)
			if err != nil {
				return err
			}
			var level slog.Level
			_ = level.UnmarshalText([]byte(cfg.LogLevel))
			log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
			n, err := node.Start(cfg, node.Options{Logger: log})
			if err != nil {
				return err
			}
			defer n.Close()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			select {
			case <-ctx.Done():
				log.Info("stopping on signal")
				return nil
			case err := <-n.Fatal():
				return fmt.Errorf("stopped: %w", err)
			}
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "YAML configuration file")
	for _, name := range node.OverrideNames() {
		cmd.Flags().String(name, "", "overrides the config file (env "+node.EnvName(name)+")")
	}
	return cmd
}
