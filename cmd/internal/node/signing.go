package node

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/token"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/hsm"
	"github.com/regent-signer/regent/signer/keymanager"
	"github.com/regent-signer/regent/signer/keysync"
	signmetrics "github.com/regent-signer/regent/signer/metrics"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/privval"
	"github.com/regent-signer/regent/signer/web3signer"
)

// SealingKeyLabel names the AES key that seals BLS keys in a region's HSM.
const SealingKeyLabel = "regent-seal"

// signing is a region's signing side: HSM, sealed keys, key sync, the
// lease-driven key guard, the pipeline and the client APIs.
type signing struct {
	hsm      *hsm.HSM
	module   *hsm.Module // owned (closed on stop) when not shared
	manager  *keysync.Manager
	guard    *keysync.Guard
	pipeline *pipeline.Pipeline
	server   *http.Server
	privval  []*privval.Signer
	cancel   context.CancelFunc
	done     chan struct{}
	addr     string
}

// startSigning brings up the signing side. Called by Start when the
// config names an HSM.
func (n *Node) startSigning(cfg *Config, opts Options, mat *pki.Material, reg prometheus.Registerer) (*signing, error) {
	sg := &signing{done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			sg.stop()
		}
	}()
	network, err := networkByName(cfg.Network)
	if err != nil {
		return nil, err
	}
	module := opts.HSMModule
	if module == nil {
		if module, err = hsm.LoadModule(cfg.HSM.Module); err != nil {
			return nil, fmt.Errorf("node: HSM module: %w", err)
		}
		sg.module = module
	}
	hsmErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "regent_hsm_operation_errors_total", Help: "Failed PKCS#11 operations of this region's HSM, by operation.",
	}, []string{"op"})
	reg.MustRegister(hsmErrors)
	h, err := module.Open(hsm.Config{
		Module: cfg.HSM.Module, TokenLabel: cfg.HSM.TokenLabel, PINFile: cfg.HSM.PINFile, MaxSessions: cfg.HSM.MaxSessions,
		Logger: n.log, OnError: func(op string, _ error) { hsmErrors.WithLabelValues(op).Inc() },
	})
	if err != nil {
		return nil, fmt.Errorf("node: HSM token %q: %w", cfg.HSM.TokenLabel, err)
	}
	sg.hsm = h
	ctx, cancel := context.WithCancel(context.Background())
	sg.cancel = cancel
	if err := h.EnsureSealingKey(ctx, SealingKeyLabel); err != nil {
		return nil, fmt.Errorf("node: HSM sealing key: %w", err)
	}
	store, err := bls.NewStore(filepath.Join(cfg.DataDir, "keys"), h.SealingKey(SealingKeyLabel), bls.StoreOptions{Logger: n.log})
	if err != nil {
		return nil, fmt.Errorf("node: sealed key store: %w", err)
	}
	guard, err := keysync.NewGuard(keysync.GuardConfig{
		Region: cfg.NodeID, State: n.FSM, Barrier: n.Service, Store: store, HSM: h, Logger: n.log,
	})
	if err != nil {
		return nil, err
	}
	sg.guard = guard
	mgr, err := keysync.New(keysync.Config{
		Region: cfg.NodeID, GenesisValidatorsRoot: network.GenesisValidatorsRoot, Proposer: n.Service, State: n.FSM,
		HSM: h, Store: store, Guard: guard, Logger: n.log,
	})
	if err != nil {
		return nil, err
	}
	sg.manager = mgr
	if err := keysync.RegisterMetrics(reg, mgr, guard); err != nil {
		return nil, err
	}
	sm, err := signmetrics.New(reg)
	if err != nil {
		return nil, err
	}
	var blsKeys pipeline.BLSKeys = guard
	if opts.WrapBLS != nil {
		blsKeys = opts.WrapBLS(guard)
	}
	pipe, err := pipeline.New(pipeline.Config{
		Recorder: n.Service, State: n.FSM, BLS: blsKeys, Ed25519: guard, Network: network, Logger: n.log, Observe: sm.Observe,
	})
	if err != nil {
		return nil, err
	}
	sg.pipeline = pipe

	go func() {
		defer close(sg.done)
		errc := make(chan error, 2)
		go func() { errc <- guard.Run(ctx) }()
		go func() { errc <- mgr.Run(ctx) }()
		for range 2 {
			if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
				n.log.Error("key service stopped", "err", err)
			}
		}
	}()

	if cfg.Signing.HTTP != "" {
		w3s, err := web3signer.New(web3signer.Config{
			Signer: pipe, State: n.FSM, Health: health{n: n, guard: guard}, Network: network, Logger: n.log, Rejected: sm.Rejected,
			Tokens: &token.Verifier{State: n.FSM},
		})
		if err != nil {
			return nil, err
		}
		km, err := keymanager.New(keymanager.Config{
			Importer: importer{mgr}, Proposer: kmProposer{n.Service}, State: n.FSM, Network: network, Logger: n.log,
		})
		if err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("/eth/v1/keystores", km)
		mux.Handle("/", w3s)
		tc, err := mat.ServerConfig(pki.RoleClient, pki.RoleOperator)
		if err != nil {
			return nil, err
		}
		// Validator clients may present an operator-signed bearer token
		// instead of a certificate: a certificate is verified when given,
		// and the handlers refuse a request carrying neither (401).
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		verify := tc.VerifyConnection
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			return verify(cs)
		}
		ln, err := net.Listen("tcp", cfg.Signing.HTTP)
		if err != nil {
			return nil, fmt.Errorf("node: signing API listen %s: %w", cfg.Signing.HTTP, err)
		}
		sg.addr = ln.Addr().String()
		sg.server = web3signer.NewServer(sg.addr, tc, mux)
		go func() { _ = sg.server.ServeTLS(ln, "", "") }()
	}
	if err := n.startPrivval(ctx, sg, cfg, reg); err != nil {
		return nil, err
	}
	ok = true
	return sg, nil
}

// startPrivval dials every configured CometBFT node as its remote signer.
func (n *Node) startPrivval(ctx context.Context, sg *signing, cfg *Config, reg prometheus.Registerer) error {
	if len(cfg.Privval) == 0 {
		return nil
	}
	pm, err := privval.NewMetrics(reg)
	if err != nil {
		return err
	}
	for i, p := range cfg.Privval {
		pc := privval.DefaultConfig()
		pc.Address, pc.ChainID, pc.Caller, pc.Logger, pc.Metrics = p.Address, p.ChainID, p.Identity, n.log, pm
		if pc.Caller == "" {
			pc.Caller = "cometbft-" + p.ChainID
		}
		for _, k := range p.NodeKeys {
			if k == "any" {
				// Stock CometBFT makes a fresh listener key at every start,
				// so an allowlist cannot pin it; say so loudly.
				pc.AcceptAnyNodeKey = true
				n.log.Warn("privval accepts any CometBFT node key", "chain", p.ChainID, "address", p.Address)
				continue
			}
			b, err := hex.DecodeString(k)
			if err != nil || len(b) != ed25519.PublicKeySize {
				return fmt.Errorf("node: privval[%d].node_keys: %q is not a hex Ed25519 public key", i, k)
			}
			pc.AllowedNodeKeys = append(pc.AllowedNodeKeys, ed25519.PublicKey(b))
		}
		if p.ConnectionKeyFile != "" {
			if pc.ConnKey, err = privval.LoadConnKey(p.ConnectionKeyFile); err != nil {
				return fmt.Errorf("node: privval[%d]: %w", i, err)
			}
		}
		// Only the lease holder whose key guard is past this epoch's barrier
		// connects: CometBFT takes one signer connection at a time and a
		// refused vote is final for its round, so a standby must not hold
		// the node's connection.
		pc.Ready = func() error {
			var l leader.Lease
			n.FSM.View(func(s *leader.State, _ uint64) { l = s.Lease() })
			if l.State != leader.LeaseActive || l.Holder != cfg.NodeID {
				return fmt.Errorf("%w: lease %s held by %q at epoch %d", leader.ErrNotHolder, l.State, l.Holder, l.Epoch)
			}
			if _, signing := sg.guard.Loaded(); !signing {
				return errors.New("lease held; key guard not past this epoch's barrier yet")
			}
			return nil
		}
		chain := p.ChainID
		signer, err := privval.New(pc, privval.PipelineBackend{Pipeline: sg.pipeline, Key: func(context.Context, string) (ed25519.PublicKey, error) {
			return n.cometKey(chain)
		}})
		if err != nil {
			return fmt.Errorf("node: privval[%d]: %w", i, err)
		}
		sg.privval = append(sg.privval, signer)
		go func() {
			if err := signer.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				n.log.Error("privval signer stopped", "chain", chain, "err", err)
			}
		}()
	}
	return nil
}

// cometKey returns the enabled Ed25519 key registered for chain.
func (n *Node) cometKey(chain string) (ed25519.PublicKey, error) {
	var out ed25519.PublicKey
	n.FSM.View(func(s *leader.State, _ uint64) {
		for _, k := range s.Keys() {
			if k.Scheme == commandpb.Scheme_SCHEME_ED25519 && k.Network == chain && !k.Disabled {
				out = ed25519.PublicKey(k.Pubkey)
				return
			}
		}
	})
	if out == nil {
		return nil, fmt.Errorf("%w: no enabled Ed25519 key for chain %q", leader.ErrUnknownKey, chain)
	}
	return out, nil
}

// kick wakes the guard after lease changes and the key sync after
// registry changes, so they react before their next poll. It runs inside
// the FSM's apply: it must not block.
func (sg *signing) kick(t commandpb.CommandType) {
	switch t {
	case commandpb.CommandType_GRANT_LEASE, commandpb.CommandType_FENCE_LEASE, commandpb.CommandType_ACTIVATE_LEASE,
		commandpb.CommandType_OPERATOR_COMMAND, commandpb.CommandType_CONFIRM_FINALITY, commandpb.CommandType_DR_TAKEOVER:
		if sg.guard != nil {
			sg.guard.Kick()
		}
	case commandpb.CommandType_ADD_KEY, commandpb.CommandType_DISABLE_KEY, commandpb.CommandType_REGISTER_REGION:
		if sg.manager != nil {
			sg.manager.Kick()
		}
	}
}

func (sg *signing) stop() {
	if sg.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = sg.server.Shutdown(ctx)
		cancel()
	}
	if sg.cancel != nil {
		sg.cancel()
		if sg.manager != nil {
			<-sg.done
		}
	}
	if sg.hsm != nil {
		_ = sg.hsm.Close()
	}
	if sg.module != nil {
		_ = sg.module.Close()
	}
}

func networkByName(name string) (eth2.Network, error) {
	n, err := eth2.NetworkByName(name)
	if err != nil {
		return eth2.Network{}, fmt.Errorf("node: network: %w", err)
	}
	return n, nil
}

// health answers /healthcheck from the lease, the guard and Raft.
type health struct {
	n     *Node
	guard *keysync.Guard
}

func (h health) Health() web3signer.HealthStatus {
	st := web3signer.HealthStatus{Region: h.n.Config.NodeID}
	h.n.FSM.View(func(s *leader.State, _ uint64) {
		l := s.Lease()
		st.LeaseState, st.LeaseHolder, st.LeaseEpoch = l.State.String(), l.Holder, l.Epoch
		st.LeaseHeld = l.State == leader.LeaseActive && l.Holder == h.n.Config.NodeID
		for _, k := range s.Keys() {
			if !k.Disabled && k.Scheme == commandpb.Scheme_SCHEME_BLS12381 {
				st.KeysExpected++
			}
		}
	})
	st.KeysLoaded, _ = h.guard.Loaded()
	st.Quorum = h.n.Ready() == nil
	if st.LeaseHeld && st.KeysLoaded < st.KeysExpected {
		st.Detail = fmt.Sprintf("%d of %d keys unsealed", st.KeysLoaded, st.KeysExpected)
	}
	if h.n.Raft.State() == raft.Shutdown {
		st.Quorum = false
	}
	return st
}

// importer adapts keysync.Manager to keymanager.KeyImporter.
type importer struct{ m *keysync.Manager }

func (i importer) ImportKeystore(ctx context.Context, ks []byte, password string) (bls.PublicKey, error) {
	pk, err := i.m.ImportKeystore(ctx, ks, password)
	switch {
	case errors.Is(err, keysync.ErrDuplicate):
		return pk, fmt.Errorf("%w: %w", keymanager.ErrDuplicate, err)
	case errors.Is(err, keysync.ErrSyncPending):
		return pk, fmt.Errorf("%w: %w", keymanager.ErrPending, err)
	}
	return pk, err
}

func (i importer) DeleteKey(ctx context.Context, pk bls.PublicKey) ([]byte, error) {
	b, err := i.m.DeleteKey(ctx, pk)
	if errors.Is(err, keysync.ErrUnknownKey) {
		return nil, fmt.Errorf("%w: %w", keymanager.ErrNotFound, err)
	}
	return b, err
}

func (i importer) List() []keymanager.ListedKey {
	var out []keymanager.ListedKey
	for _, k := range i.m.List() {
		if k.Scheme != commandpb.Scheme_SCHEME_BLS12381 || !k.Local || k.Disabled || len(k.Pubkey) != 48 {
			continue
		}
		out = append(out, keymanager.ListedKey{Pubkey: bls.PublicKey(k.Pubkey)})
	}
	return out
}

// kmProposer marks state-machine refusals for the keymanager.
type kmProposer struct{ s *leader.Service }

func (p kmProposer) Propose(ctx context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error) {
	resp, err := p.s.Propose(ctx, t, msg)
	if err != nil && (resp.Index != 0 || errors.Is(err, leader.ErrRejected)) {
		return resp, fmt.Errorf("%w: %w", keymanager.ErrRejected, err)
	}
	return resp, err
}
