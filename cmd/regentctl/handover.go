package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
)

func newHandoverCmd(g *globals, op *operatorFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "handover",
		Short: "Move the signing lease to another region: request, approve, cancel, list, watch",
		Long: `A handover moves the signing lease from its holder to another region:
requested → approvals (the handover threshold of distinct operators; the
requester's signature counts) → fenced (nothing more is signed under the
old epoch; its high-water mark is fixed) → finality (the incoming region's
watcher proves the chain finalized past the mark) → active at epoch e+1.`,
	}
	s := signing{g, op}

	var to, reason, reqOut string
	request := &cobra.Command{
		Use:   "request --to REGION --reason TEXT",
		Short: "Request a handover to REGION (prints the handover id)",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return s.sign(cmd, reqOut, func(c *failoverpb.OperatorCommand) error {
				c.Action = &failoverpb.OperatorCommand_RequestHandover{RequestHandover: &failoverpb.RequestHandover{To: to, Reason: reason}}
				return nil
			}, func(w io.Writer, r *opspb.SubmitResponse) {
				fmt.Fprintf(w, "handover %d requested: %s → %s (log index %d, audit seq %d); lease %s\n",
					r.HandoverId, r.GetLease().GetHolder(), to, r.Index, r.AuditSeq, r.GetLease().GetState())
			})
		}),
	}
	request.Flags().StringVar(&to, "to", "", "region to hand the lease to (required)")
	request.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit chain)")
	addOut(request, &reqOut)
	_ = request.MarkFlagRequired("to")

	var apOut string
	approve := &cobra.Command{
		Use:   "approve ID",
		Short: "Approve handover ID",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			id, err := parseHandoverID(args[0])
			if err != nil {
				return err
			}
			return s.sign(cmd, apOut, func(c *failoverpb.OperatorCommand) error {
				c.Action = &failoverpb.OperatorCommand_ApproveHandover{ApproveHandover: &failoverpb.ApproveHandover{HandoverId: id}}
				return nil
			}, func(w io.Writer, r *opspb.SubmitResponse) {
				fmt.Fprintf(w, "handover %d approved (log index %d, audit seq %d); lease %s\n", id, r.Index, r.AuditSeq, r.GetLease().GetState())
			})
		}),
	}
	addOut(approve, &apOut)

	var cancelReason, cancelOut string
	cancel := &cobra.Command{
		Use:   "cancel ID --reason TEXT",
		Short: "Cancel handover ID (only before the fence)",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			id, err := parseHandoverID(args[0])
			if err != nil {
				return err
			}
			return s.sign(cmd, cancelOut, func(c *failoverpb.OperatorCommand) error {
				c.Action = &failoverpb.OperatorCommand_CancelHandover{CancelHandover: &failoverpb.CancelHandover{HandoverId: id, Reason: cancelReason}}
				return nil
			}, nil)
		}),
	}
	cancel.Flags().StringVar(&cancelReason, "reason", "", "why (recorded)")
	addOut(cancel, &cancelOut)

	list := &cobra.Command{
		Use:   "list",
		Short: "List the handovers the cluster keeps (the open one last)",
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
				return printJSONValue(w, map[string]any{"via": conn.region, "lease": protoValue(st.GetLease()), "handovers": protoList(st.Handovers)})
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFROM\tTO\tSTATE\tAPPROVALS\tREQUESTED BY\tWAITING FOR")
			for _, h := range st.Handovers {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", h.Id, h.From, h.To, h.State, h.ApprovalsCounted, h.ApprovalsRequired, h.RequestedBy, h.WaitingFor)
			}
			tw.Flush()
			l := st.GetLease()
			fmt.Fprintf(w, "lease: %s %s at epoch %d (as %s sees it)\n", l.GetState(), l.GetHolder(), l.GetEpoch(), conn.region)
			return nil
		}),
	}

	var watchTimeout, interval time.Duration
	watch := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow handover ID step by step until it completes",
		Long: `Follow a handover live: requested → approvals → fenced (with the fixed
high-water mark) → finality → active at the new epoch, printing what it
waits for at each step. Exit 0 when it completes, 2 when it is cancelled
or rejected, 3 on --timeout (or when no region answers until then).`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			id, err := parseHandoverID(args[0])
			if err != nil {
				return err
			}
			return watchHandover(cmd, g, op, id, watchTimeout, interval)
		}),
	}
	watch.Flags().DurationVar(&watchTimeout, "timeout", 10*time.Minute, "give up after this long (exit 3)")
	watch.Flags().DurationVar(&interval, "interval", 500*time.Millisecond, "how often to ask")

	cmd.AddCommand(request, approve, cancel, list, watch)
	return cmd
}

func parseHandoverID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("handover id %q: want the positive number `handover request` printed", s)
	}
	return id, nil
}

// watchEvent is one line of `handover watch --output json`.
type watchEvent struct {
	Event      string          `json:"event"`
	HandoverID uint64          `json:"handover_id"`
	Elapsed    string          `json:"elapsed"`
	Via        string          `json:"via,omitempty"`
	State      string          `json:"state,omitempty"`
	WaitingFor string          `json:"waiting_for,omitempty"`
	Message    string          `json:"message"`
	Handover   json.RawMessage `json:"handover,omitempty"`
}

// watchHandover polls the cluster until handover id closes or timeout.
func watchHandover(cmd *cobra.Command, g *globals, op *operatorFlags, id uint64, timeout, interval time.Duration) error {
	if timeout <= 0 || interval <= 0 {
		return fmt.Errorf("--timeout and --interval must be positive")
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	start := time.Now()
	w := cmd.OutOrStdout()
	emit := func(ev watchEvent) {
		ev.HandoverID, ev.Elapsed = id, time.Since(start).Round(time.Millisecond).String()
		if g.output == "json" {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "%s\n", b)
			return
		}
		fmt.Fprintf(w, "[%8s] handover %d: %s\n", ev.Elapsed, id, ev.Message)
	}
	var conn *opsClient
	defer func() {
		if conn != nil {
			conn.close()
		}
	}()
	var last *opspb.HandoverInfo
	var lastErr error
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		st, err := watchStatus(ctx, g, op, &conn)
		if err != nil {
			lastErr = err
		} else {
			h := findHandover(st, id)
			switch {
			case h == nil && st.AppliedIndex >= id:
				return refusedf("handover %d is not among the handovers %s keeps (no such handover, or closed long ago)", id, conn.region)
			case h != nil:
				if done, err := reportChange(emit, conn.region, st, last, h); done {
					return err
				}
				last = h
			}
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("gave up after %v", timeout)
			if last != nil {
				msg += fmt.Sprintf("; still %s, waiting for %s", last.State, last.WaitingFor)
			}
			if lastErr != nil {
				msg += fmt.Sprintf("; last error: %v", lastErr)
			}
			emit(watchEvent{Event: "timeout", Message: msg})
			return unavailablef("handover %d: %s", id, msg)
		case <-tick.C:
		}
	}
}

// watchStatus asks the connected region, reconnecting to any region
// after a failure.
func watchStatus(ctx context.Context, g *globals, op *operatorFlags, conn **opsClient) (*opspb.StatusResponse, error) {
	if *conn == nil {
		c, err := g.ops(ctx, op.maxRecv)
		if err != nil {
			return nil, err
		}
		*conn = c
		return c.status, nil
	}
	cctx, cancel := g.callCtx(ctx)
	defer cancel()
	st, err := (*conn).Status(cctx, &opspb.StatusRequest{})
	if err != nil {
		(*conn).close()
		*conn = nil
		return nil, rpcError("status", err)
	}
	return st, nil
}

func findHandover(st *opspb.StatusResponse, id uint64) *opspb.HandoverInfo {
	for _, h := range st.GetHandovers() {
		if h.Id == id {
			return h
		}
	}
	return nil
}

// reportChange emits what changed since last; done is true (with the
// exit error) once the handover is closed.
func reportChange(emit func(watchEvent), via string, st *opspb.StatusResponse, last, h *opspb.HandoverInfo) (done bool, err error) {
	ev := watchEvent{Via: via, State: h.State, WaitingFor: h.WaitingFor, Handover: protoValue(h)}
	changed := last == nil || last.State != h.State || last.ApprovalsCounted != h.ApprovalsCounted || last.WaitingFor != h.WaitingFor
	if last == nil {
		ev.Event, ev.Message = "requested", fmt.Sprintf("requested by %s: %s → %s (%s)", h.RequestedBy, h.From, h.To, h.Reason)
		if h.Dr {
			ev.Message = fmt.Sprintf("DR takeover by %s: %s → %s (%s)", h.RequestedBy, h.From, h.To, h.Reason)
		}
		emit(ev)
	}
	if !changed {
		return false, nil
	}
	switch h.State {
	case "requested":
		ev.Event, ev.Message = "approvals", h.WaitingFor
		emit(ev)
	case "fenced":
		if last == nil || last.State != "fenced" {
			ev.Event, ev.Message = "fenced", fmt.Sprintf("fenced %s at epoch %d (log index %d); high-water mark: %s", h.From, h.FencedEpoch, h.FencedIndex, h.HighWater)
			emit(ev)
		}
		ev.Event, ev.Message = "finality", "waiting for "+h.WaitingFor
		emit(ev)
	case "completed":
		if last == nil || last.State == "requested" {
			ev.Event, ev.Message = "fenced", fmt.Sprintf("fenced %s at epoch %d (log index %d); high-water mark: %s", h.From, h.FencedEpoch, h.FencedIndex, h.HighWater)
			emit(ev)
		}
		ev.Event, ev.Message = "finality", "finality confirmed: "+h.EvidenceSummary
		emit(ev)
		ev.Event, ev.Message = "active", fmt.Sprintf("%s active at epoch %d (log index %d)", h.To, h.ActiveEpoch, h.ClosedIndex)
		emit(ev)
		return true, nil
	case "cancelled", "rejected":
		ev.Event, ev.Message = h.State, fmt.Sprintf("%s by %s: %s", h.State, h.ClosedBy, h.CloseReason)
		emit(ev)
		return true, refusedf("handover %d %s: %s", h.Id, h.State, h.CloseReason)
	default:
		ev.Event, ev.Message = h.State, h.WaitingFor
		emit(ev)
	}
	return false, nil
}

func newDRCmd(g *globals, op *operatorFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dr",
		Short: "Standing disaster-recovery policies",
		Long: `A DR policy pre-authorises a region to take the lease over once the
holder has been silent (no heartbeat entry) for the policy's time. The
takeover is still audited and still gated on finality.`,
	}
	s := signing{g, op}
	var region, out string
	var silence time.Duration
	var disable bool
	set := &cobra.Command{
		Use:   "set --region REGION --silence DURATION [--disable]",
		Short: "Set (or --disable) the DR policy of a region (signed; registry threshold)",
		Args:  cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			var secs uint32
			if !disable {
				lo, hi := failover.MinDRSilenceSeconds*time.Second, failover.MaxDRSilenceSeconds*time.Second
				if silence < lo || silence > hi || silence%time.Second != 0 {
					return fmt.Errorf("--silence %v: want whole seconds between %v and %v", silence, lo, hi)
				}
				secs = uint32(silence / time.Second)
			}
			return s.sign(cmd, out, func(c *failoverpb.OperatorCommand) error {
				c.Action = &failoverpb.OperatorCommand_SetDrPolicy{SetDrPolicy: &failoverpb.SetDRPolicy{Region: region, SilenceSeconds: secs, Enabled: !disable}}
				return nil
			}, nil)
		}),
	}
	set.Flags().StringVar(&region, "region", "", "region the policy authorises (required)")
	set.Flags().DurationVar(&silence, "silence", 0, "holder silence before a takeover (30s..720h)")
	set.Flags().BoolVar(&disable, "disable", false, "disable the region's policy")
	addOut(set, &out)
	_ = set.MarkFlagRequired("region")

	list := &cobra.Command{
		Use:   "list",
		Short: "List DR policies and the holder's last heartbeat",
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
				return printJSONValue(w, map[string]any{"via": conn.region, "dr_policies": protoList(st.DrPolicies), "last_heartbeat": protoValue(st.GetLastHeartbeat())})
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "REGION\tENABLED\tSILENCE\tSET AT\tAPPROVED BY")
			for _, p := range st.DrPolicies {
				var who []string
				for _, a := range p.Approvals {
					who = append(who, a.OperatorId)
				}
				fmt.Fprintf(tw, "%s\t%v\t%ds\t%d\t%s\n", p.Region, p.Enabled, p.SilenceSeconds, p.Index, strings.Join(who, ", "))
			}
			tw.Flush()
			if hb := st.GetLastHeartbeat(); hb.GetIndex() != 0 {
				fmt.Fprintf(w, "last heartbeat: %s at epoch %d, log index %d, %s\n", hb.Holder, hb.Epoch, hb.Index, time.Unix(0, hb.UnixNano).UTC().Format(time.RFC3339))
			}
			return nil
		}),
	}
	cmd.AddCommand(set, list)
	return cmd
}
