package opsapi_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
)

func TestSubmit(t *testing.T) {
	type check func(t *testing.T, e *env, resp *opspb.SubmitResponse, err error)
	accepted := func(action string) check {
		return func(t *testing.T, e *env, resp *opspb.SubmitResponse, err error) {
			if err != nil || !resp.Accepted || resp.Reason != "" || resp.Action != action {
				t.Fatalf("got %+v, %v; want %s accepted", resp, err, action)
			}
			rec := e.audit()[resp.AuditSeq]
			if rec.Outcome != failover.OutcomeAccepted || rec.Index != resp.Index || rec.Action != action || rec.HandoverID != resp.HandoverId {
				t.Fatalf("response %+v does not match its audit record %+v", resp, rec)
			}
		}
	}
	refused := func(reason string) check {
		return func(t *testing.T, e *env, resp *opspb.SubmitResponse, err error) {
			if err != nil || resp.Accepted || !strings.Contains(resp.Reason, reason) {
				t.Fatalf("got %+v, %v; want refused with %q", resp, err, reason)
			}
			rec := e.audit()[resp.AuditSeq]
			if rec.Outcome != failover.OutcomeRejected || rec.Reason != resp.Reason || rec.Index != resp.Index {
				t.Fatalf("response %+v does not match its audit record %+v", resp, rec)
			}
		}
	}
	grpcError := func(code codes.Code, msg string) check {
		return func(t *testing.T, e *env, resp *opspb.SubmitResponse, err error) {
			if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
				t.Fatalf("got %+v, %v; want %v with %q", resp, err, code, msg)
			}
		}
	}
	rows := []struct {
		name   string
		mode   mode
		caller string
		// payload builds what is submitted; earlier submissions happen in it.
		payload func(t *testing.T, e *env) []byte
		check   check
		// changes: whether the state may change (besides audit for refusals).
		proposes bool
	}{
		{name: "request on the leader", mode: onLeader, caller: "regentctl", proposes: true,
			payload: func(t *testing.T, e *env) []byte { return e.sign("alice", request("dc2", "maintenance")) },
			check: func(t *testing.T, e *env, resp *opspb.SubmitResponse, err error) {
				accepted("handover.request")(t, e, resp, err)
				if resp.HandoverId != resp.Index || resp.Lease.GetState() != "active" {
					t.Fatalf("handover id %d, index %d, lease %v", resp.HandoverId, resp.Index, resp.Lease)
				}
			}},
		{name: "request forwarded", mode: forwarded, caller: "regentctl", proposes: true,
			payload: func(t *testing.T, e *env) []byte { return e.sign("alice", request("dc2", "maintenance")) },
			check:   accepted("handover.request")},
		{name: "threshold reached fences", mode: onLeader, caller: "regentctl", proposes: true,
			payload: func(t *testing.T, e *env) []byte { return e.sign("alice", request("dc2", "now"), "carol") },
			check: func(t *testing.T, e *env, resp *opspb.SubmitResponse, err error) {
				accepted("handover.request")(t, e, resp, err)
				if resp.Lease.GetState() != "fenced" {
					t.Fatalf("lease %v, want fenced", resp.Lease)
				}
			}},
		{name: "bad signature on the leader", mode: onLeader, caller: "regentctl", proposes: true,
			payload: func(t *testing.T, e *env) []byte { return badSignature(t, e.sign("alice", request("dc2", "x"))) },
			check:   refused("bad operator signature")},
		{name: "bad signature forwarded", mode: forwarded, caller: "regentctl", proposes: true,
			payload: func(t *testing.T, e *env) []byte { return badSignature(t, e.sign("alice", request("dc2", "x"))) },
			check:   refused("bad operator signature")},
		{name: "replay forwarded", mode: forwarded, caller: "regentctl", proposes: true,
			payload: func(t *testing.T, e *env) []byte {
				sc := e.sign("alice", request("dc2", "once"))
				if resp, err := e.client("regentctl").Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: sc}); err != nil || !resp.Accepted {
					t.Fatalf("first submission: %+v, %v", resp, err)
				}
				return sc
			},
			check: refused("nonce already used")},
		{name: "auditor may not approve", mode: onLeader, caller: "regentctl", proposes: true,
			payload: func(t *testing.T, e *env) []byte { return e.sign("erin", request("dc2", "x")) },
			check:   refused("role does not permit")},
		{name: "outcome unknown", mode: maybe, caller: "regentctl", proposes: true,
			payload: func(t *testing.T, e *env) []byte { return e.sign("alice", request("dc2", "x")) },
			check:   grpcError(codes.Unavailable, "may or may not have committed")},
		{name: "no quorum", mode: down, caller: "regentctl", proposes: true,
			payload: func(t *testing.T, e *env) []byte { return e.sign("alice", request("dc2", "x")) },
			check:   grpcError(codes.Unavailable, "cannot take the command")},
		{name: "garbage", mode: onLeader, caller: "regentctl",
			payload: func(t *testing.T, e *env) []byte { return []byte("not a signed command") },
			check:   grpcError(codes.InvalidArgument, "signed_command")},
		{name: "empty", mode: onLeader, caller: "regentctl",
			payload: func(t *testing.T, e *env) []byte { return nil },
			check:   grpcError(codes.InvalidArgument, "signed_command")},
		{name: "client certificate", mode: onLeader, caller: "vc-1",
			payload: func(t *testing.T, e *env) []byte { return e.sign("alice", request("dc2", "x")) },
			check:   grpcError(codes.PermissionDenied, "operator certificate")},
		{name: "node certificate", mode: onLeader, caller: "dc2",
			payload: func(t *testing.T, e *env) []byte { return e.sign("alice", request("dc2", "x")) },
			check:   grpcError(codes.PermissionDenied, "operator certificate")},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			e := newEnv(t, envOpts{mode: row.mode})
			payload := row.payload(t, e)
			calls := e.p.calls
			before := e.p.stateBytes(t)
			resp, err := e.client(row.caller).Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: payload})
			row.check(t, e, resp, err)
			if got := e.p.calls - calls; (got == 1) != row.proposes || got > 1 {
				t.Fatalf("%d proposals, want proposes=%v", got, row.proposes)
			}
			if !row.proposes && !bytes.Equal(before, e.p.stateBytes(t)) {
				t.Fatal("refused request changed the state")
			}
		})
	}
}

// An approval through Submit moves a handover to the fence; the response
// names the handover.
func TestSubmitApprovalReachesFence(t *testing.T) {
	e := newEnv(t, envOpts{mode: forwarded})
	c := e.client("regentctl")
	r1, err := c.Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: e.sign("alice", request("dc3", "drill"))})
	if err != nil || !r1.Accepted {
		t.Fatalf("request: %+v, %v", r1, err)
	}
	r2, err := c.Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: e.sign("carol", approve(r1.HandoverId))})
	if err != nil || !r2.Accepted || r2.HandoverId != r1.HandoverId || r2.Lease.GetState() != "fenced" {
		t.Fatalf("approve: %+v, %v", r2, err)
	}
	r3, err := c.Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: e.sign("bob", approve(r1.HandoverId))})
	if err != nil || r3.Accepted || !strings.Contains(r3.Reason, "approvals are taken before the fence") {
		t.Fatalf("late approval: %+v, %v", r3, err)
	}
}
