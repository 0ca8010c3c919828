package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/regent-signer/regent/cmd/internal/client"
	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/pki"
)

// regionStatus is one row of `regentctl status`.
type regionStatus struct {
	Region    string                 `json:"region"`
	Endpoint  string                 `json:"endpoint"`
	Reachable bool                   `json:"reachable"`
	Error     string                 `json:"error,omitempty"`
	Status    *nodepb.StatusResponse `json:"status,omitempty"`
}

// statusReport is the whole answer, as printed with --output json.
type statusReport struct {
	Regions   []regionStatus `json:"regions"`
	Reachable int            `json:"reachable"`
	Quorum    bool           `json:"quorum"`
	Leader    string         `json:"leader"`
	Lease     *nodepb.Lease  `json:"lease,omitempty"`
	// LeaseSource is the region whose applied index was highest: its view
	// of the lease is the freshest.
	LeaseSource string   `json:"lease_source,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show every region: reachable, Raft role/term/commit, lease holder and epoch, keys",
		Long: `Ask every region for its view and print one row per region plus a summary.
Exit status: 0 all regions healthy, 2 degraded (a region unreachable or
halted, majority still answering), 3 no majority answering.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			eps, err := parseEndpoints(g.endpoints)
			if err != nil {
				return err
			}
			timeout, err := time.ParseDuration(g.timeout)
			if err != nil {
				return fmt.Errorf("--timeout: %w", err)
			}
			mat, err := pki.LoadTLS(g.ca, g.cert, g.key)
			if err != nil {
				return err
			}
			rep := collectStatus(cmd.Context(), mat, eps, timeout)
			if g.output == "json" {
				if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printStatus(cmd, rep)
			}
			switch {
			case !rep.Quorum:
				return exitCode(3)
			case rep.Reachable < len(rep.Regions) || len(rep.Warnings) > 0:
				return exitCode(2)
			}
			return nil
		},
	}
}

type endpoint struct{ region, addr string }

func parseEndpoints(list []string) ([]endpoint, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("no endpoints: pass --endpoints dc1=host:port,... or set REGENTCTL_ENDPOINTS")
	}
	var out []endpoint
	for _, e := range list {
		region, addr, ok := strings.Cut(e, "=")
		if !ok || region == "" {
			return nil, fmt.Errorf("endpoint %q: want region=host:port", e)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", e, err)
		}
		out = append(out, endpoint{region, addr})
	}
	return out, nil
}

func collectStatus(ctx context.Context, mat *pki.Material, eps []endpoint, timeout time.Duration) statusReport {
	rep := statusReport{Regions: make([]regionStatus, len(eps))}
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := regionStatus{Region: ep.region, Endpoint: ep.addr}
			defer func() { rep.Regions[i] = rs }()
			conn, err := client.Dial(mat, ep.addr)
			if err != nil {
				rs.Error = err.Error()
				return
			}
			defer conn.Close()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st, err := nodepb.NewNodeClient(conn).Status(cctx, &nodepb.StatusRequest{}, grpc.WaitForReady(false))
			if err != nil {
				rs.Error = err.Error()
				return
			}
			rs.Reachable, rs.Status = true, st
		}()
	}
	wg.Wait()
	var freshest uint64
	leaders := map[string]bool{}
	for _, rs := range rep.Regions {
		if !rs.Reachable {
			continue
		}
		rep.Reachable++
		st := rs.Status
		if st.FsmHalted != "" {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: state machine halted: %s", rs.Region, st.FsmHalted))
		}
		if st.RaftState == "Leader" {
			leaders[rs.Region] = true
		}
		if rep.Lease == nil || st.AppliedIndex > freshest {
			rep.Lease, rep.LeaseSource, freshest = st.Lease, rs.Region, st.AppliedIndex
		}
		if st.NodeId != rs.Region {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("endpoint for %s answered as node %s", rs.Region, st.NodeId))
		}
	}
	rep.Quorum = rep.Reachable > len(eps)/2
	for l := range leaders {
		if rep.Leader != "" {
			rep.Warnings = append(rep.Warnings, "more than one region reports itself Raft leader (a stale leader is partitioned)")
		}
		rep.Leader = l
	}
	if rep.Leader == "" {
		for _, rs := range rep.Regions {
			if rs.Reachable && rs.Status.LeaderId != "" {
				rep.Leader = rs.Status.LeaderId
			}
		}
	}
	return rep
}

func printStatus(cmd *cobra.Command, rep statusReport) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "REGION\tREACHABLE\tRAFT\tTERM\tCOMMIT\tAPPLIED\tLEASE\tKEYS\tRECORDS OK/REFUSED")
	for _, rs := range rep.Regions {
		if !rs.Reachable {
			fmt.Fprintf(w, "%s\tno: %s\t-\t-\t-\t-\t-\t-\t-\n", rs.Region, shorten(rs.Error, 60))
			continue
		}
		st := rs.Status
		lease := fmt.Sprintf("%s %s@%d", st.Lease.State, st.Lease.Holder, st.Lease.Epoch)
		if st.Lease.HeldHere {
			lease += " (here)"
		}
		fmt.Fprintf(w, "%s\tyes\t%s\t%d\t%d\t%d\t%s\t%d\t%d/%d\n", rs.Region, st.RaftState, st.Term, st.CommitIndex,
			st.AppliedIndex, lease, st.KeyCount, st.RecordsAccepted, st.RecordsRefused)
	}
	w.Flush()
	out := cmd.OutOrStdout()
	fmt.Fprintln(out)
	quorum := "yes"
	if !rep.Quorum {
		quorum = "NO - nothing can be committed or signed"
	}
	fmt.Fprintf(out, "Regions reachable: %d of %d; majority: %s\n", rep.Reachable, len(rep.Regions), quorum)
	if rep.Leader != "" {
		fmt.Fprintf(out, "Raft leader: %s\n", rep.Leader)
	}
	if l := rep.Lease; l != nil {
		switch l.State {
		case "active":
			fmt.Fprintf(out, "Signing lease: ACTIVE, held by %s at epoch %d (since log index %d). Only %s may sign.\n", l.Holder, l.Epoch, l.SinceIndex, l.Holder)
		case "fenced":
			fmt.Fprintf(out, "Signing lease: FENCED at epoch %d (was %s; high-water mark %s). Nobody may sign until a new holder is activated.\n", l.Epoch, l.Holder, l.HighWater)
		default:
			fmt.Fprintf(out, "Signing lease: VACANT. Nobody may sign.\n")
		}
	}
	for _, wmsg := range rep.Warnings {
		fmt.Fprintf(out, "WARNING: %s\n", wmsg)
	}
}

// printJSON writes the report with every protobuf field present (zero
// values included), so scripts can rely on the keys.
func printJSON(w io.Writer, rep statusReport) error {
	pj := protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}
	type regionJSON struct {
		Region    string          `json:"region"`
		Endpoint  string          `json:"endpoint"`
		Reachable bool            `json:"reachable"`
		Error     string          `json:"error"`
		Status    json.RawMessage `json:"status"`
	}
	out := struct {
		Regions     []regionJSON    `json:"regions"`
		Reachable   int             `json:"reachable"`
		Quorum      bool            `json:"quorum"`
		Leader      string          `json:"leader"`
		Lease       json.RawMessage `json:"lease"`
		LeaseSource string          `json:"lease_source"`
		Warnings    []string        `json:"warnings"`
	}{Reachable: rep.Reachable, Quorum: rep.Quorum, Leader: rep.Leader, LeaseSource: rep.LeaseSource, Warnings: rep.Warnings,
		Lease: json.RawMessage("null")}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	if rep.Lease != nil {
		b, err := pj.Marshal(rep.Lease)
		if err != nil {
			return err
		}
		out.Lease = b
	}
	for _, rs := range rep.Regions {
		r := regionJSON{Region: rs.Region, Endpoint: rs.Endpoint, Reachable: rs.Reachable, Error: rs.Error, Status: json.RawMessage("null")}
		if rs.Status != nil {
			b, err := pj.Marshal(rs.Status)
			if err != nil {
				return err
			}
			r.Status = b
		}
		out.Regions = append(out.Regions, r)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
