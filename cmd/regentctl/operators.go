package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
)

func newOperatorsCmd(g *globals, op *operatorFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "operators", Short: "The operator registry: keys, roles, thresholds"}
	s := signing{g, op}

	var id, dir, alg string
	keygen := &cobra.Command{
		Use:   "keygen --id ID --dir DIR",
		Short: "Generate an operator key pair (ID.key, PKCS#8 PEM, mode 0600; ID.pub, PEM)",
		Long: `Generate an operator signing key locally: DIR/ID.key (PKCS#8 PEM private
key, mode 0600) and DIR/ID.pub (PKIX PEM public key, for the operators file
or "operators add"). Existing files are never overwritten. For keys that
never leave hardware, generate them in a PKCS#11 token instead and sign
with --pkcs11-*.`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
				return fmt.Errorf("--id %q: want an operator id", id)
			}
			signer, err := generateKey(alg)
			if err != nil {
				return err
			}
			keyPEM, pubPEM, err := encodeKeyPair(signer)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			keyPath, pubPath := filepath.Join(dir, id+".key"), filepath.Join(dir, id+".pub")
			for _, p := range []string{keyPath, pubPath} {
				if _, err := os.Stat(p); err == nil {
					return fmt.Errorf("%s exists; refusing to overwrite an operator key", p)
				}
			}
			if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
				return err
			}
			if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
				return err
			}
			fp, err := fingerprint(signer.Public())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSONValue(cmd.OutOrStdout(), map[string]string{"id": id, "algorithm": alg, "private_key": keyPath, "public_key": pubPath, "fingerprint": fp})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "operator %s: %s key in %s (keep it secret), public key in %s, fingerprint %s\n", id, alg, keyPath, pubPath, fp)
			return nil
		}),
	}
	keygen.Flags().StringVar(&id, "id", "", "operator id (required)")
	keygen.Flags().StringVar(&dir, "dir", ".", "output directory")
	keygen.Flags().StringVar(&alg, "algorithm", "ed25519", "ed25519 or p256")
	_ = keygen.MarkFlagRequired("id")

	list := &cobra.Command{
		Use:   "list",
		Short: "List registered operators and the approval thresholds",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			conn, err := g.ops(cmd.Context(), op.maxRecv)
			if err != nil {
				return err
			}
			defer conn.close()
			st := conn.status
			w := cmd.OutOrStdout()
			if g.output == "json" {
				return printJSONValue(w, map[string]any{"via": conn.region, "cluster_id": st.ClusterId, "bootstrapped": st.Bootstrapped,
					"operators": protoList(st.Operators), "thresholds": protoList(st.Thresholds)})
			}
			if !st.Bootstrapped {
				fmt.Fprintf(w, "no operator registry yet (as %s sees it)\n", conn.region)
				return nil
			}
			fmt.Fprintf(w, "cluster %s (as %s sees it at index %d)\n", st.ClusterId, conn.region, st.AppliedIndex)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "OPERATOR\tROLE\tFINGERPRINT\tADDED AT")
			for _, o := range st.Operators {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", o.Id, o.Role, o.Fingerprint, o.AddedIndex)
			}
			tw.Flush()
			var parts []string
			for _, t := range st.Thresholds {
				parts = append(parts, fmt.Sprintf("%s %d of %d", t.Action, t.Required, t.Eligible))
			}
			fmt.Fprintf(w, "thresholds: %s\n", strings.Join(parts, ", "))
			return nil
		}),
	}

	var addID, addRole, addKey, addOutFile string
	add := &cobra.Command{
		Use:   "add --id ID --role ROLE --public-key FILE",
		Short: "Register an operator (signed; needs the registry threshold)",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			role, err := parseRole(addRole)
			if err != nil {
				return err
			}
			der, err := readPublicKeyPEM(addKey)
			if err != nil {
				return err
			}
			return s.sign(cmd, addOutFile, func(c *failoverpb.OperatorCommand) error {
				c.Action = &failoverpb.OperatorCommand_AddOperator{AddOperator: &failoverpb.AddOperator{Id: addID, PublicKey: der, Role: role}}
				return nil
			}, nil)
		}),
	}
	add.Flags().StringVar(&addID, "id", "", "new operator's id (required)")
	add.Flags().StringVar(&addRole, "role", "", "admin, operator or auditor (required)")
	add.Flags().StringVar(&addKey, "public-key", "", "PEM public key file (required)")
	addOut(add, &addOutFile)
	for _, f := range []string{"id", "role", "public-key"} {
		_ = add.MarkFlagRequired(f)
	}

	var rmID, rmOut string
	remove := &cobra.Command{
		Use:   "remove --id ID",
		Short: "Remove an operator (signed; needs the registry threshold)",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return s.sign(cmd, rmOut, func(c *failoverpb.OperatorCommand) error {
				c.Action = &failoverpb.OperatorCommand_RemoveOperator{RemoveOperator: &failoverpb.RemoveOperator{Id: rmID}}
				return nil
			}, nil)
		}),
	}
	remove.Flags().StringVar(&rmID, "id", "", "operator id (required)")
	addOut(remove, &rmOut)
	_ = remove.MarkFlagRequired("id")

	var thrAction, thrOut string
	var thrRequired uint32
	threshold := &cobra.Command{
		Use:   "threshold --action ACTION --required N",
		Short: "Set an action's approval threshold (signed; needs the registry threshold)",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			a, ok := failoverpb.Action_value["ACTION_"+strings.ToUpper(thrAction)]
			if !ok || a == 0 {
				return fmt.Errorf("--action %q: want handover, registry, policy, exit or keys", thrAction)
			}
			return s.sign(cmd, thrOut, func(c *failoverpb.OperatorCommand) error {
				c.Action = &failoverpb.OperatorCommand_SetThreshold{SetThreshold: &failoverpb.SetThreshold{Action: failoverpb.Action(a), Required: thrRequired}}
				return nil
			}, nil)
		}),
	}
	threshold.Flags().StringVar(&thrAction, "action", "", "handover, registry, policy, exit or keys (required)")
	threshold.Flags().Uint32Var(&thrRequired, "required", 0, "distinct operators needed (required)")
	addOut(threshold, &thrOut)
	_ = threshold.MarkFlagRequired("action")
	_ = threshold.MarkFlagRequired("required")

	cmd.AddCommand(keygen, list, add, remove, threshold)
	return cmd
}

func parseRole(s string) (failoverpb.Role, error) {
	switch s {
	case "admin":
		return failoverpb.Role_ROLE_ADMIN, nil
	case "operator":
		return failoverpb.Role_ROLE_OPERATOR, nil
	case "auditor":
		return failoverpb.Role_ROLE_AUDITOR, nil
	}
	return 0, fmt.Errorf("role %q: want admin, operator or auditor", s)
}

func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "p256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("--algorithm %q: want ed25519 or p256", alg)
}

// encodeKeyPair returns the PKCS#8 PEM private key and PKIX PEM public key.
func encodeKeyPair(k crypto.Signer) (keyPEM, pubPEM []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	pub, err := opsig.MarshalPublicKey(k.Public())
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

// writeNew creates path with perm, failing if it exists.
func writeNew(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fingerprint is the registry's: the first 8 bytes of SHA-256 of the PKIX
// DER, hex.
func fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := opsig.MarshalPublicKey(pub)
	if err != nil {
		return "", err
	}
	d := sha256.Sum256(der)
	return fmt.Sprintf("%x", d[:8]), nil
}

// readPublicKeyPEM reads a PEM PUBLIC KEY (Ed25519 or P-256) and returns
// its PKIX DER.
func readPublicKeyPEM(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: want a PEM \"PUBLIC KEY\" block", path)
	}
	if _, err := opsig.ParsePublicKey(blk.Bytes); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return blk.Bytes, nil
}
