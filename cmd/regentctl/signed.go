package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/raft/commandpb"
)

// Signed command file (written by --out, read by cosign and submit): one
// JSON object
//
//	{"format":"regent-signed-command","version":1,
//	 "signed_command":"<base64 of the SignedCommand protobuf>",
//	 "description":"…","signers":["alice"],"expires":"2031-…"}
//
// Only format, version and signed_command are read; description, signers
// and expires are written for people and recomputed from the signed bytes
// on every write (cosign shows what it signs from the bytes, never from
// the description).
const (
	signedFormat  = "regent-signed-command"
	signedVersion = 1
	// maxSignedFile bounds a signed command file.
	maxSignedFile = 3*opsig.MaxBody + 64<<10
)

type signedFile struct {
	Format        string   `json:"format"`
	Version       int      `json:"version"`
	SignedCommand string   `json:"signed_command"`
	Description   string   `json:"description,omitempty"`
	Signers       []string `json:"signers,omitempty"`
	Expires       string   `json:"expires,omitempty"`
}

// errSignedFile marks an unusable signed command file.
var errSignedFile = errors.New("signed command file")

// decodeSignedFile parses a signed command file and checks the command's
// shape (opsig.DecodeSigned, DecodeBody). Every error wraps errSignedFile.
func decodeSignedFile(b []byte) (*failoverpb.SignedCommand, *failoverpb.OperatorCommand, error) {
	if len(b) > maxSignedFile {
		return nil, nil, fmt.Errorf("%w: %d bytes (at most %d)", errSignedFile, len(b), maxSignedFile)
	}
	var f signedFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errSignedFile, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: data after the JSON object", errSignedFile)
	}
	if f.Format != signedFormat || f.Version != signedVersion {
		return nil, nil, fmt.Errorf("%w: format %q version %d, want %q version %d", errSignedFile, f.Format, f.Version, signedFormat, signedVersion)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(f.SignedCommand)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signed_command: %v", errSignedFile, err)
	}
	sc, err := opsig.DecodeSigned(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errSignedFile, err)
	}
	body, err := opsig.DecodeBody(sc.GetBody())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errSignedFile, err)
	}
	return sc, body, nil
}

// encodeSignedFile renders a signed command file.
func encodeSignedFile(sc *failoverpb.SignedCommand, body *failoverpb.OperatorCommand) ([]byte, error) {
	raw, err := opsig.EncodeSigned(sc)
	if err != nil {
		return nil, err
	}
	f := signedFile{Format: signedFormat, Version: signedVersion, SignedCommand: base64.StdEncoding.EncodeToString(raw),
		Description: describe(body), Signers: signers(sc), Expires: time.Unix(0, body.GetExpiresUnixNano()).UTC().Format(time.RFC3339)}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func signers(sc *failoverpb.SignedCommand) []string {
	var out []string
	for _, s := range sc.GetSignatures() {
		out = append(out, s.GetOperatorId())
	}
	return out
}

// readSignedFile reads and decodes a signed command file.
func readSignedFile(path string) (*failoverpb.SignedCommand, *failoverpb.OperatorCommand, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSignedFile+1))
	if err != nil {
		return nil, nil, err
	}
	sc, body, err := decodeSignedFile(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return sc, body, nil
}

// writeFileAtomic writes b to path through a temporary file and rename.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// describe says what a command does, for people reviewing it.
func describe(c *failoverpb.OperatorCommand) string {
	var what string
	switch a := c.GetAction().(type) {
	case *failoverpb.OperatorCommand_RequestHandover:
		what = fmt.Sprintf("request a handover of the signing lease to %s (reason: %q)", a.RequestHandover.GetTo(), a.RequestHandover.GetReason())
	case *failoverpb.OperatorCommand_ApproveHandover:
		what = fmt.Sprintf("approve handover %d", a.ApproveHandover.GetHandoverId())
	case *failoverpb.OperatorCommand_CancelHandover:
		what = fmt.Sprintf("cancel handover %d (reason: %q)", a.CancelHandover.GetHandoverId(), a.CancelHandover.GetReason())
	case *failoverpb.OperatorCommand_AddOperator:
		d := sha256.Sum256(a.AddOperator.GetPublicKey())
		what = fmt.Sprintf("add operator %s with role %s, key fingerprint %x", a.AddOperator.GetId(), roleName(a.AddOperator.GetRole()), d[:8])
	case *failoverpb.OperatorCommand_RemoveOperator:
		what = fmt.Sprintf("remove operator %s", a.RemoveOperator.GetId())
	case *failoverpb.OperatorCommand_SetThreshold:
		what = fmt.Sprintf("set the %s threshold to %d", actionName(a.SetThreshold.GetAction()), a.SetThreshold.GetRequired())
	case *failoverpb.OperatorCommand_SetDrPolicy:
		if a.SetDrPolicy.GetEnabled() {
			what = fmt.Sprintf("let %s take the lease over after %ds of holder silence (DR policy)", a.SetDrPolicy.GetRegion(), a.SetDrPolicy.GetSilenceSeconds())
		} else {
			what = fmt.Sprintf("disable the DR policy of %s", a.SetDrPolicy.GetRegion())
		}
	case *failoverpb.OperatorCommand_ApproveExit:
		what = fmt.Sprintf("approve one voluntary exit of 0x%x (reason: %q)", a.ApproveExit.GetPubkey(), a.ApproveExit.GetReason())
	case *failoverpb.OperatorCommand_SetPolicy:
		p := a.SetPolicy
		if p.GetRemove() {
			what = fmt.Sprintf("remove the signing policy of client %s", p.GetIdentity())
		} else {
			what = fmt.Sprintf("let client %s sign %v with keys %v", p.GetIdentity(), p.GetMessageTypes(), p.GetKeyPatterns())
		}
	case *failoverpb.OperatorCommand_SetExitLimit:
		what = fmt.Sprintf("set the daily voluntary-exit limit to %d", a.SetExitLimit.GetPerDay())
	case *failoverpb.OperatorCommand_SetFinalityQuorum:
		what = fmt.Sprintf("require %d agreeing chain endpoints in finality evidence", a.SetFinalityQuorum.GetEndpoints())
	case *failoverpb.OperatorCommand_AddKeys:
		what = fmt.Sprintf("register %d keys", len(a.AddKeys.GetKeys()))
	case *failoverpb.OperatorCommand_DisableKey:
		what = fmt.Sprintf("disable key 0x%x (reason: %q)", a.DisableKey.GetPubkey(), a.DisableKey.GetReason())
	default:
		what = "an unknown action"
	}
	return fmt.Sprintf("%s: %s, cluster %s, expires %s", c.GetOperatorId(), what, c.GetClusterId(),
		time.Unix(0, c.GetExpiresUnixNano()).UTC().Format(time.RFC3339))
}

func roleName(r failoverpb.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

func actionName(a failoverpb.Action) string {
	return strings.ToLower(strings.TrimPrefix(a.String(), "ACTION_"))
}

// signing bundles what the signing commands share.
type signing struct {
	g  *globals
	op *operatorFlags
}

// addOut registers --out on a signing command.
func addOut(cmd *cobra.Command, out *string) {
	cmd.Flags().StringVar(out, "out", "", "write the signed command to FILE for co-signers instead of submitting it")
}

// sign builds, signs and either writes (out != "") or submits one
// operator command whose action fill sets. report prints an accepted
// submission (nil: the generic report).
func (s signing) sign(cmd *cobra.Command, out string, fill func(*failoverpb.OperatorCommand) error, report func(w io.Writer, resp *opspb.SubmitResponse)) error {
	id, signer, done, err := s.op.signer(cmd)
	if err != nil {
		return err
	}
	defer done()
	ctx := cmd.Context()
	clusterID := s.op.clusterID
	var conn *opsClient
	if clusterID == "" || out == "" {
		if conn, err = s.g.ops(ctx, s.op.maxRecv); err != nil {
			return err
		}
		defer conn.close()
		if !conn.status.GetBootstrapped() {
			return refusedf("the cluster has no operator registry yet (%s is not bootstrapped): signed commands cannot be checked", conn.region)
		}
		if clusterID == "" {
			clusterID = conn.status.GetClusterId()
		} else if clusterID != conn.status.GetClusterId() {
			return refusedf("--cluster-id %q, but %s belongs to cluster %q", clusterID, conn.region, conn.status.GetClusterId())
		}
	}
	b := opsig.Builder{ClusterID: clusterID, OperatorID: id, Now: s.op.now, TTL: s.op.ttl}
	body, err := b.New()
	if err != nil {
		return err
	}
	if err := fill(body); err != nil {
		return err
	}
	sc, err := opsig.SignCommand(body, signer)
	if err != nil {
		return err
	}
	if out != "" {
		f, err := encodeSignedFile(sc, body)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(out, f, 0o644); err != nil {
			return err
		}
		return s.printWritten(cmd, out, sc, body)
	}
	return s.submit(cmd, conn, sc, body, report)
}

func (s signing) printWritten(cmd *cobra.Command, path string, sc *failoverpb.SignedCommand, body *failoverpb.OperatorCommand) error {
	w := cmd.OutOrStdout()
	if s.g.output == "json" {
		return printJSONValue(w, map[string]any{"file": path, "description": describe(body), "signers": signers(sc),
			"expires": time.Unix(0, body.GetExpiresUnixNano()).UTC().Format(time.RFC3339)})
	}
	fmt.Fprintf(w, "wrote %s\n  %s\n  signed by: %s\nco-sign with `regentctl cosign %s`, then `regentctl submit %s`\n",
		path, describe(body), strings.Join(signers(sc), ", "), path, path)
	return nil
}

// submit sends sc through conn (or the first region answering) and prints
// the outcome; a refusal is exit 2.
func (s signing) submit(cmd *cobra.Command, conn *opsClient, sc *failoverpb.SignedCommand, body *failoverpb.OperatorCommand, report func(io.Writer, *opspb.SubmitResponse)) error {
	raw, err := opsig.EncodeSigned(sc)
	if err != nil {
		return err
	}
	if conn == nil {
		if conn, err = s.g.ops(cmd.Context(), s.op.maxRecv); err != nil {
			return err
		}
		defer conn.close()
	}
	ctx, cancel := writeCtx(cmd.Context())
	defer cancel()
	resp, err := conn.Submit(ctx, &opspb.SubmitRequest{SignedCommand: raw})
	if err != nil {
		return rpcError("submit", err)
	}
	w := cmd.OutOrStdout()
	if s.g.output == "json" {
		if err := printJSONValue(w, map[string]any{"via": conn.region, "description": describe(body), "result": protoValue(resp)}); err != nil {
			return err
		}
	} else if resp.Accepted {
		if report != nil {
			report(w, resp)
		} else {
			fmt.Fprintf(w, "%s: accepted at log index %d (audit seq %d, via %s)\n", resp.Action, resp.Index, resp.AuditSeq, conn.region)
		}
	}
	if !resp.Accepted {
		return refusedf("%s refused by the cluster: %s (audit seq %d)", resp.GetAction(), resp.GetReason(), resp.GetAuditSeq())
	}
	return nil
}

func newCosignCmd(g *globals, op *operatorFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "cosign FILE",
		Short: "Add your operator signature to a signed command file",
		Long: `Show what the signed command in FILE does (decoded from its signed bytes,
not from its description), add this operator's signature and write it back
(or to --out). No cluster is contacted. Thresholds count distinct
operators; an operator signs a command once.`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			sc, body, err := readSignedFile(args[0])
			if err != nil {
				return err
			}
			id, signer, done, err := op.signer(cmd)
			if err != nil {
				return err
			}
			defer done()
			if exp := time.Unix(0, body.GetExpiresUnixNano()); !op.now().Before(exp) {
				return fmt.Errorf("%s: the command expired at %s; have it signed again", args[0], exp.UTC().Format(time.RFC3339))
			}
			if err := opsig.Cosign(sc, id, signer); err != nil {
				return err
			}
			f, err := encodeSignedFile(sc, body)
			if err != nil {
				return err
			}
			dst := args[0]
			if out != "" {
				dst = out
			}
			if err := writeFileAtomic(dst, f, 0o644); err != nil {
				return err
			}
			return signing{g, op}.printWritten(cmd, dst, sc, body)
		}),
	}
	cmd.Flags().StringVar(&out, "out", "", "write to FILE instead of updating the input")
	return cmd
}

func newSubmitCmd(g *globals, op *operatorFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "submit FILE",
		Short: "Submit a signed command file to the cluster",
		Long: `Submit the signed command in FILE (written by --out, co-signed with
cosign). The state machine verifies every signature, the roles, the
threshold, the expiry and the nonce; a refusal is audited and exits 2.
Submitting the same file twice is refused as a replay.`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			sc, body, err := readSignedFile(args[0])
			if err != nil {
				return err
			}
			return signing{g, op}.submit(cmd, nil, sc, body, nil)
		}),
	}
}

// signedWhenBootstrapped wraps an existing unsigned control command (policy
// set/remove, exit approve, keys disable): while the cluster has no
// operator registry it runs unchanged; once the registry is bootstrapped
// (the state machine then refuses unsigned control commands) it builds
// the operator-signed equivalent from the same flags instead.
func signedWhenBootstrapped(s signing, sub *cobra.Command, fill func(cmd *cobra.Command) (func(*failoverpb.OperatorCommand) error, error)) {
	legacy := sub.RunE
	var out string
	addOut(sub, &out)
	sub.Long += "\n\nOnce the cluster's operator registry is bootstrapped this builds an\noperator-signed command instead (--operator-id and a key are required;\n--out writes it for co-signers)."
	sub.RunE = run(func(cmd *cobra.Command, args []string) error {
		bootstrapped, err := s.bootstrapped(cmd.Context())
		if err != nil {
			return err
		}
		if !bootstrapped {
			if out != "" {
				return errors.New("--out: the cluster has no operator registry yet, so this command is not signed")
			}
			return legacy(cmd, args)
		}
		set, err := fill(cmd)
		if err != nil {
			return err
		}
		return s.sign(cmd, out, set, nil)
	})
}

// bootstrapped asks the cluster whether its operator registry exists; a
// region without the operator API counts as not bootstrapped.
func (s signing) bootstrapped(ctx context.Context) (bool, error) {
	conn, err := s.g.ops(ctx, s.op.maxRecv)
	var ce *cliError
	if errors.As(err, &ce) && ce.code == exitLocal {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer conn.close()
	return conn.status.GetBootstrapped(), nil
}

// signedPolicy, signedExit and signedKeys wrap control.go's commands.
func signedPolicy(s signing, cmd *cobra.Command) *cobra.Command {
	for _, sub := range cmd.Commands() {
		switch sub.Name() {
		case "set":
			signedWhenBootstrapped(s, sub, func(c *cobra.Command) (func(*failoverpb.OperatorCommand) error, error) {
				id, _ := c.Flags().GetString("identity")
				keys, _ := c.Flags().GetStringSlice("keys")
				types, _ := c.Flags().GetStringSlice("types")
				return func(oc *failoverpb.OperatorCommand) error {
					oc.Action = &failoverpb.OperatorCommand_SetPolicy{SetPolicy: &failoverpb.SetPolicy{Identity: id, KeyPatterns: keys, MessageTypes: types}}
					return nil
				}, nil
			})
		case "remove":
			signedWhenBootstrapped(s, sub, func(c *cobra.Command) (func(*failoverpb.OperatorCommand) error, error) {
				id, _ := c.Flags().GetString("identity")
				return func(oc *failoverpb.OperatorCommand) error {
					oc.Action = &failoverpb.OperatorCommand_SetPolicy{SetPolicy: &failoverpb.SetPolicy{Identity: id, Remove: true}}
					return nil
				}, nil
			})
		}
	}
	return cmd
}

func signedExit(s signing, cmd *cobra.Command) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == "approve" {
			signedWhenBootstrapped(s, sub, func(c *cobra.Command) (func(*failoverpb.OperatorCommand) error, error) {
				pkHex, _ := c.Flags().GetString("pubkey")
				reason, _ := c.Flags().GetString("reason")
				pk, err := parsePubkey(pkHex)
				if err != nil {
					return nil, err
				}
				return func(oc *failoverpb.OperatorCommand) error {
					oc.Action = &failoverpb.OperatorCommand_ApproveExit{ApproveExit: &failoverpb.ApproveExit{Pubkey: pk, Reason: reason}}
					return nil
				}, nil
			})
		}
	}
	return cmd
}

func signedKeys(s signing, cmd *cobra.Command) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == "disable" {
			signedWhenBootstrapped(s, sub, func(c *cobra.Command) (func(*failoverpb.OperatorCommand) error, error) {
				pkHex, _ := c.Flags().GetString("pubkey")
				reason, _ := c.Flags().GetString("reason")
				pk, err := parsePubkey(pkHex)
				if err != nil {
					return nil, err
				}
				return func(oc *failoverpb.OperatorCommand) error {
					oc.Action = &failoverpb.OperatorCommand_DisableKey{DisableKey: &commandpb.DisableKey{Pubkey: pk, Reason: reason}}
					return nil
				}, nil
			})
		}
	}
	cmd.AddCommand(newKeysListCmd(s.g, s.op), newKeysImportCmd(s.g, s.op))
	return cmd
}

// hexKey renders a public key as 0x-hex.
func hexKey(b []byte) string { return "0x" + hex.EncodeToString(b) }
