package opsapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/slashing/eth"
)

// SchemeName is the lower-case name of a key scheme ("bls12381",
// "ed25519", ...).
func SchemeName(s commandpb.Scheme) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SCHEME_"))
}

// ListKeys implements opspb.OperationsServer.
func (s *Server) ListKeys(ctx context.Context, _ *opspb.ListKeysRequest) (*opspb.ListKeysResponse, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	out := &opspb.ListKeysResponse{}
	s.d.FSM.View(func(ls *leader.State, _ uint64) {
		for _, k := range ls.Keys() {
			ki := &opspb.KeyInfo{Pubkey: k.Pubkey, Scheme: SchemeName(k.Scheme), Network: k.Network, Label: k.Label,
				Disabled: k.Disabled, DisabledReason: k.DisabledReason, AddedIndex: k.AddedIndex}
			for _, w := range k.Wrapped {
				ki.WrappedFor = append(ki.WrappedFor, w.GetRegion())
			}
			sort.Strings(ki.WrappedFor)
			out.Keys = append(out.Keys, ki)
		}
		for _, r := range ls.Regions() {
			out.Regions = append(out.Regions, r.ID)
		}
	})
	return out, nil
}

// ExportInterchange implements opspb.OperationsServer. The network is the
// request's genesis validators root, or else the one network of the
// requested keys (of every BLS key when none is requested).
func (s *Server) ExportInterchange(ctx context.Context, req *opspb.ExportInterchangeRequest) (*opspb.ExportInterchangeResponse, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	keys := make([]eth.Pubkey, len(req.GetPubkeys()))
	for i, pk := range req.GetPubkeys() {
		keys[i] = eth.Pubkey(pk)
	}
	var ic *eth.Interchange
	var applied uint64
	var err error
	s.d.FSM.View(func(ls *leader.State, a uint64) {
		applied = a
		var gvr eth.Root
		if gvr, err = exportNetwork(ls, req.GetGenesisValidatorsRoot(), keys); err == nil {
			ic = ls.Eth().Export(gvr, keys)
		}
	})
	if err != nil {
		return nil, err
	}
	doc, err := eth.EncodeInterchange(ic)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode the interchange: %v", err)
	}
	return &opspb.ExportInterchangeResponse{InterchangeJson: doc, Keys: uint32(len(ic.Data)), AppliedIndex: applied}, nil
}

// exportNetwork picks the genesis validators root of an export.
func exportNetwork(ls *leader.State, root []byte, keys []eth.Pubkey) (eth.Root, error) {
	networks := map[string]bool{}
	for _, pk := range keys {
		k, ok := ls.Key(pk[:])
		if !ok {
			return eth.Root{}, status.Errorf(codes.NotFound, "key %s is not registered", pk)
		}
		if k.Scheme != commandpb.Scheme_SCHEME_BLS12381 {
			return eth.Root{}, status.Errorf(codes.InvalidArgument, "key %s is %s, not an Ethereum BLS key", pk, SchemeName(k.Scheme))
		}
		networks[k.Network] = true
	}
	if len(root) == 32 {
		gvr := eth.Root(root)
		for n := range networks {
			if n != leader.RootHex(gvr) {
				return eth.Root{}, status.Errorf(codes.InvalidArgument, "requested keys are registered on %s, not on %s", n, leader.RootHex(gvr))
			}
		}
		return gvr, nil
	}
	if len(keys) == 0 {
		for _, k := range ls.Keys() {
			if k.Scheme == commandpb.Scheme_SCHEME_BLS12381 {
				networks[k.Network] = true
			}
		}
	}
	list := make([]string, 0, len(networks))
	for n := range networks {
		list = append(list, n)
	}
	sort.Strings(list)
	switch len(list) {
	case 0:
		return eth.Root{}, status.Error(codes.FailedPrecondition, "no Ethereum keys are registered; name the network with genesis_validators_root")
	case 1:
		gvr, err := leader.ParseRoot(list[0])
		if err != nil {
			return eth.Root{}, status.Errorf(codes.Internal, "registry network %q: %v", list[0], err)
		}
		return gvr, nil
	default:
		return eth.Root{}, status.Errorf(codes.InvalidArgument, "keys span networks %s; name one with genesis_validators_root", strings.Join(list, ", "))
	}
}

// ImportInterchange implements opspb.OperationsServer (operator only). The
// interchange is decoded here for a clear error, then committed as one
// IMPORT_INTERCHANGE entry that registers unknown keys; the state machine
// refuses the whole import if any record conflicts (accepted false).
func (s *Server) ImportInterchange(ctx context.Context, req *opspb.ImportInterchangeRequest) (*opspb.ImportInterchangeResponse, error) {
	c, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ic, err := eth.DecodeInterchange(req.GetInterchangeJson())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "interchange: %v", err)
	}
	keys := map[eth.Pubkey]bool{}
	for _, r := range ic.Data {
		keys[r.Pubkey] = true
	}
	gvr := ic.GenesisValidatorsRoot
	resp, perr := s.d.Proposer.Propose(ctx, commandpb.CommandType_IMPORT_INTERCHANGE, &commandpb.ImportInterchange{
		GenesisValidatorsRoot: gvr[:], InterchangeJson: req.GetInterchangeJson(), RegisterKeys: true,
	})
	o := classify(resp, perr)
	log := s.log.With("caller", c.Name, "keys", len(keys), "network", leader.RootHex(gvr))
	switch o {
	case outcomeAccepted:
		log.Info("interchange imported", "index", resp.Index)
		return &opspb.ImportInterchangeResponse{Accepted: true, Index: resp.Index, Keys: uint32(len(keys))}, nil
	case outcomeRefused:
		log.Warn("interchange import refused", "index", resp.Index, "reason", perr)
		return &opspb.ImportInterchangeResponse{Reason: perr.Error(), Index: resp.Index, Keys: uint32(len(keys))}, nil
	default:
		log.Warn("interchange import not committed", "err", perr)
		return nil, unavailable(o, perr)
	}
}

// ImportKeystore implements opspb.OperationsServer (operator only).
func (s *Server) ImportKeystore(ctx context.Context, req *opspb.ImportKeystoreRequest) (*opspb.ImportKeystoreResponse, error) {
	c, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if s.d.Keys == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "signing is not configured on this region (%s has no HSM); import keystores through a region that signs", s.d.NodeID)
	}
	pk, err := s.d.Keys.ImportKeystore(ctx, req.GetKeystoreJson(), req.GetPassword())
	if errors.Is(err, ErrSigningNotConfigured) {
		return nil, status.Errorf(codes.FailedPrecondition, "signing is not configured on this region (%s has no HSM); import keystores through a region that signs", s.d.NodeID)
	}
	if err != nil {
		s.log.Warn("keystore import failed", "caller", c.Name, "pubkey", pk.String(), "err", err)
		return nil, status.Error(keystoreCode(err), fmt.Sprintf("import keystore: %v", err))
	}
	s.log.Info("keystore imported", "caller", c.Name, "pubkey", pk.String())
	return &opspb.ImportKeystoreResponse{Pubkey: pk[:]}, nil
}

func keystoreCode(err error) codes.Code {
	switch {
	case errors.Is(err, ErrKeyDuplicate):
		return codes.AlreadyExists
	case errors.Is(err, ErrKeystore):
		return codes.InvalidArgument
	case errors.Is(err, ErrKeyPending), errors.Is(err, leader.ErrMaybeCommitted), errors.Is(err, leader.ErrUnavailable),
		errors.Is(err, leader.ErrNotLeader), errors.Is(err, leader.ErrClosed):
		return codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return codes.DeadlineExceeded
	default:
		return codes.FailedPrecondition
	}
}
