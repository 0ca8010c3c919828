package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/opsapi"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
)

func newAuditCmd(g *globals, op *operatorFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The failover audit chain: show, export, verify",
		Long: `Every operator command, finality confirmation, DR takeover, bootstrap and
lease change — accepted or rejected — appends one record whose hash covers
the previous record's hash.`,
	}
	var since uint64
	var limit uint32
	show := &cobra.Command{
		Use:   "show [--since N]",
		Short: "Print audit records from seq N",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			conn, err := g.ops(cmd.Context(), op.maxRecv)
			if err != nil {
				return err
			}
			defer conn.close()
			ctx, cancel := g.callCtx(cmd.Context())
			defer cancel()
			resp, err := conn.Audit(ctx, &opspb.AuditRequest{SinceSeq: since, Limit: limit})
			if err != nil {
				return rpcError("audit", err)
			}
			recs := make([]failover.AuditRecord, len(resp.Records))
			for i, p := range resp.Records {
				recs[i] = opsapi.AuditFromProto(p)
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				return printJSONValue(w, map[string]any{"via": conn.region, "total": resp.Total, "head_hash": fmt.Sprintf("%x", resp.HeadHash), "records": recs})
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tINDEX\tTIME\tACTOR\tACTION\tOUTCOME\tLEASE\tDETAIL")
			for _, r := range recs {
				detail := r.Detail
				if r.Outcome == failover.OutcomeRejected || (detail == "" && r.Reason != "") {
					detail = r.Reason
				}
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s %s@%d\t%s\n", r.Seq, r.Index, time.Unix(0, r.UnixNano).UTC().Format(time.RFC3339),
					r.Actor, r.Action, r.Outcome, r.LeaseState, r.LeaseHolder, r.LeaseEpoch, oneLine(detail))
			}
			tw.Flush()
			fmt.Fprintf(w, "%d of %d records (via %s)\n", len(recs), resp.Total, conn.region)
			return nil
		}),
	}
	show.Flags().Uint64Var(&since, "since", 0, "first seq to show")
	show.Flags().Uint32Var(&limit, "limit", opspb.DefaultAuditLimit, fmt.Sprintf("records to show (at most %d)", opspb.MaxAuditLimit))

	var exportFile string
	export := &cobra.Command{
		Use:   "export --file F",
		Short: "Write the whole audit chain to F (JSON lines, the failover audit file format)",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			conn, err := g.ops(cmd.Context(), op.maxRecv)
			if err != nil {
				return err
			}
			defer conn.close()
			ctx, cancel := writeCtx(cmd.Context())
			defer cancel()
			resp, err := conn.AuditFile(ctx, &opspb.AuditFileRequest{})
			if err != nil {
				return rpcError("audit file", err)
			}
			if err := writeFileAtomic(exportFile, resp.File, 0o644); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				return printJSONValue(w, map[string]any{"file": exportFile, "records": resp.Records, "head_hash": fmt.Sprintf("%x", resp.HeadHash),
					"applied_index": resp.AppliedIndex, "via": conn.region})
			}
			fmt.Fprintf(w, "wrote %d audit records to %s (head %x, %s at index %d)\n", resp.Records, exportFile, resp.HeadHash, conn.region, resp.AppliedIndex)
			return nil
		}),
	}
	export.Flags().StringVar(&exportFile, "file", "", "output file (required)")
	_ = export.MarkFlagRequired("file")

	var verifyFile string
	verify := &cobra.Command{
		Use:   "verify [--file F]",
		Short: "Re-walk the audit chain of a region (or an exported file); exit 2 at the first break",
		Long: `Re-walk every record: seq, outcome, log order, the link to the previous
record's hash and the record's own hash. Without --file the chain is
fetched from a region and its head compared with the region's; with
--file the exported file is checked offline. The first broken record is
reported with its seq and why (exit 2). A file cut short at the end still
verifies: compare its head with a region's (regentctl audit export).`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			var data []byte
			var headHash []byte
			var headCount uint64
			source := verifyFile
			if verifyFile != "" {
				b, err := readLimited(verifyFile, int64(op.maxRecv))
				if err != nil {
					return err
				}
				data = b
			} else {
				conn, err := g.ops(cmd.Context(), op.maxRecv)
				if err != nil {
					return err
				}
				defer conn.close()
				ctx, cancel := writeCtx(cmd.Context())
				defer cancel()
				resp, err := conn.AuditFile(ctx, &opspb.AuditFileRequest{})
				if err != nil {
					return rpcError("audit file", err)
				}
				data, headHash, headCount, source = resp.File, resp.HeadHash, resp.Records, "region "+conn.region
			}
			return verifyAudit(cmd, g, source, data, headHash, headCount)
		}),
	}
	verify.Flags().StringVar(&verifyFile, "file", "", "exported audit file to verify offline")
	cmd.AddCommand(show, export, verify)
	return cmd
}

// verifyAudit checks an audit file's chain (and, from a region, its head).
func verifyAudit(cmd *cobra.Command, g *globals, source string, data, headHash []byte, headCount uint64) error {
	recs, err := failover.ReadAuditFile(bytes.NewReader(data))
	if err != nil {
		return refusedf("%s: %v", source, err)
	}
	w := cmd.OutOrStdout()
	bad, verr := failover.VerifyChain(recs)
	if verr == nil && headHash != nil {
		switch {
		case uint64(len(recs)) != headCount:
			bad, verr = len(recs), fmt.Errorf("%w: %d records, the region reports %d", failover.ErrAuditBroken, len(recs), headCount)
		case len(recs) > 0 && !bytes.Equal(recs[len(recs)-1].Hash, headHash):
			bad, verr = len(recs)-1, fmt.Errorf("%w: last hash %x, the region's head is %x", failover.ErrAuditBroken, []byte(recs[len(recs)-1].Hash), headHash)
		}
	}
	if g.output == "json" {
		out := map[string]any{"source": source, "records": len(recs), "intact": verr == nil}
		if verr != nil {
			out["first_bad_seq"], out["reason"] = bad, verr.Error()
		} else if len(recs) > 0 {
			out["head_hash"] = fmt.Sprintf("%x", []byte(recs[len(recs)-1].Hash))
		}
		if err := printJSONValue(w, out); err != nil {
			return err
		}
	} else if verr == nil {
		head := "none"
		if len(recs) > 0 {
			head = fmt.Sprintf("%x", []byte(recs[len(recs)-1].Hash))
		}
		fmt.Fprintf(w, "audit chain of %s intact: %d records, head %s\n", source, len(recs), head)
	}
	if verr != nil {
		if !errors.Is(verr, failover.ErrAuditBroken) {
			return verr
		}
		return refusedf("audit chain of %s broken at seq %d: %v", source, bad, verr)
	}
	return nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > 120 {
		return string(r[:119]) + "…"
	}
	return s
}
