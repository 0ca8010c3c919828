package nodeapi

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
)

func as(role pki.Role, name string) context.Context {
	return context.WithValue(context.Background(), identityKey{}, Caller{Role: role, Name: name})
}

// The refusals below happen before the server touches Raft or the service:
// a Server without them proves the request changed nothing (any further
// step would dereference a nil dependency and panic).
func TestProposeRefusals(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		typ  commandpb.CommandType
		want codes.Code
	}{
		{"operator cannot forward", as(pki.RoleOperator, "alice"), commandpb.CommandType_RECORD_SIGNATURES, codes.PermissionDenied},
		{"client cannot forward", as(pki.RoleClient, "vc-1"), commandpb.CommandType_ADD_KEY, codes.PermissionDenied},
		{"no identity", context.Background(), commandpb.CommandType_NOOP, codes.PermissionDenied},
		{"lease fence is not forwardable", as(pki.RoleNode, "dc2"), commandpb.CommandType_FENCE_LEASE, codes.InvalidArgument},
		{"lease activation is not forwardable", as(pki.RoleNode, "dc2"), commandpb.CommandType_ACTIVATE_LEASE, codes.InvalidArgument},
		{"unsigned policy is not forwardable", as(pki.RoleNode, "dc2"), commandpb.CommandType_SET_POLICY, codes.InvalidArgument},
		{"unknown type", as(pki.RoleNode, "dc2"), commandpb.CommandType(999), codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Server{}).Propose(tc.ctx, &nodepb.ProposeRequest{Type: tc.typ, Payload: []byte{1}})
			if status.Code(err) != tc.want {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOperatorProposeRefusals(t *testing.T) {
	forwarded := func(onBehalf string) context.Context {
		return metadata.NewIncomingContext(as(pki.RoleNode, "dc2"), metadata.Pairs(onBehalfOf, onBehalf))
	}
	tests := []struct {
		name string
		ctx  context.Context
		typ  commandpb.CommandType
		want codes.Code
	}{
		{"client", as(pki.RoleClient, "vc-1"), commandpb.CommandType_OPERATOR_COMMAND, codes.PermissionDenied},
		{"region without an operator", as(pki.RoleNode, "dc2"), commandpb.CommandType_OPERATOR_COMMAND, codes.PermissionDenied},
		{"region vouching for a malformed name", forwarded("Alice Smith"), commandpb.CommandType_OPERATOR_COMMAND, codes.PermissionDenied},
		{"no identity", context.Background(), commandpb.CommandType_OPERATOR_COMMAND, codes.PermissionDenied},
		{"lease fence", as(pki.RoleOperator, "alice"), commandpb.CommandType_FENCE_LEASE, codes.InvalidArgument},
		{"records", as(pki.RoleOperator, "alice"), commandpb.CommandType_RECORD_SIGNATURES, codes.InvalidArgument},
		{"key registration", as(pki.RoleOperator, "alice"), commandpb.CommandType_ADD_KEY, codes.InvalidArgument},
		{"forwarded lease grant", forwarded("alice"), commandpb.CommandType_GRANT_LEASE, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Server{}).OperatorPropose(tc.ctx, &nodepb.ProposeRequest{Type: tc.typ, Payload: []byte{1}})
			if status.Code(err) != tc.want {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOperatorIdentity(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		want string
		ok   bool
	}{
		{"operator certificate", as(pki.RoleOperator, "alice"), "alice", true},
		{"region vouching", metadata.NewIncomingContext(as(pki.RoleNode, "dc1"), metadata.Pairs(onBehalfOf, "bob")), "bob", true},
		{"region vouching twice", metadata.NewIncomingContext(as(pki.RoleNode, "dc1"), metadata.Pairs(onBehalfOf, "bob", onBehalfOf, "eve")), "", false},
		{"client cannot vouch", metadata.NewIncomingContext(as(pki.RoleClient, "vc-1"), metadata.Pairs(onBehalfOf, "bob")), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := operator(tc.ctx)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("operator() = %q, %v; want %q ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}
