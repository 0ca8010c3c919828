package node

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/agent"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/finality"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/slashing/eth"
)

// FailoverConfig configures the handover protocol on this region.
type FailoverConfig struct {
	// OperatorsFile bootstraps the operator registry once, when the cluster
	// is first formed (see LoadOperators). Every region names the same file
	// contents; later changes go through approved commands.
	OperatorsFile string `yaml:"operators_file"`
	// HeartbeatInterval is how often the lease holder proposes a heartbeat
	// (DR policies measure silence against it). Zero means 5s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// Finality lists the chain endpoints this region's watcher polls before
	// it confirms finality for a handover to this region.
	Finality struct {
		Eth []struct {
			Name                  string   `yaml:"name"`
			GenesisValidatorsRoot string   `yaml:"genesis_validators_root"` // default: the network's
			Endpoints             []string `yaml:"endpoints"`
			Quorum                int      `yaml:"quorum"`
			SlotsPerEpoch         uint64   `yaml:"slots_per_epoch"`
		} `yaml:"eth"`
		Comet []struct {
			ChainID   string   `yaml:"chain_id"`
			Endpoints []string `yaml:"endpoints"`
			Quorum    int      `yaml:"quorum"`
		} `yaml:"comet"`
		PollInterval time.Duration `yaml:"poll_interval"`
	} `yaml:"finality"`
}

// operatorsFile is the YAML an operators_file holds.
type operatorsFile struct {
	ClusterID string `yaml:"cluster_id"`
	Operators []struct {
		ID            string `yaml:"id"`
		Role          string `yaml:"role"` // admin, operator, auditor
		PublicKeyFile string `yaml:"public_key_file"`
	} `yaml:"operators"`
	// Thresholds per action: handover, registry, policy, exit, keys.
	Thresholds      map[string]uint32 `yaml:"thresholds"`
	ExitLimitPerDay uint32            `yaml:"exit_limit_per_day"`
	FinalityQuorum  uint32            `yaml:"finality_quorum"`
}

// ErrOperators marks an unusable operators file.
var ErrOperators = errors.New("node: invalid operators file")

// LoadOperators reads an operators file into the BootstrapOperators
// command. Public key files are PEM "PUBLIC KEY" (PKIX, Ed25519 or P-256);
// relative paths are relative to the operators file.
func LoadOperators(path string) (*failoverpb.BootstrapOperators, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOperators, err)
	}
	var f operatorsFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrOperators, path, err)
	}
	if f.ClusterID == "" || len(f.Operators) == 0 {
		return nil, fmt.Errorf("%w: %s needs cluster_id and operators", ErrOperators, path)
	}
	out := &failoverpb.BootstrapOperators{ClusterId: f.ClusterID, ExitLimitPerDay: f.ExitLimitPerDay, FinalityQuorum: f.FinalityQuorum}
	roles := map[string]failoverpb.Role{"admin": failoverpb.Role_ROLE_ADMIN, "operator": failoverpb.Role_ROLE_OPERATOR, "auditor": failoverpb.Role_ROLE_AUDITOR}
	for i, o := range f.Operators {
		role, ok := roles[o.Role]
		if !ok || o.ID == "" || o.PublicKeyFile == "" {
			return nil, fmt.Errorf("%w: operators[%d] needs id, role (admin, operator, auditor) and public_key_file", ErrOperators, i)
		}
		kp := o.PublicKeyFile
		if !filepath.IsAbs(kp) {
			kp = filepath.Join(filepath.Dir(path), kp)
		}
		der, err := readPublicKey(kp)
		if err != nil {
			return nil, fmt.Errorf("%w: operators[%d] (%s): %w", ErrOperators, i, o.ID, err)
		}
		out.Operators = append(out.Operators, &failoverpb.Operator{Id: o.ID, PublicKey: der, Role: role})
	}
	actions := map[string]failoverpb.Action{"handover": failoverpb.Action_ACTION_HANDOVER, "registry": failoverpb.Action_ACTION_REGISTRY,
		"policy": failoverpb.Action_ACTION_POLICY, "exit": failoverpb.Action_ACTION_EXIT, "keys": failoverpb.Action_ACTION_KEYS}
	for _, name := range []string{"handover", "registry", "policy", "exit", "keys"} {
		n, ok := f.Thresholds[name]
		if !ok {
			return nil, fmt.Errorf("%w: thresholds.%s is required", ErrOperators, name)
		}
		out.Thresholds = append(out.Thresholds, &failoverpb.Threshold{Action: actions[name], Required: n})
	}
	for name := range f.Thresholds {
		if _, ok := actions[name]; !ok {
			return nil, fmt.Errorf("%w: unknown threshold %q", ErrOperators, name)
		}
	}
	return out, nil
}

func readPublicKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: want a PEM PUBLIC KEY block", path)
	}
	if _, err := x509.ParsePKIXPublicKey(blk.Bytes); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return blk.Bytes, nil
}

// bootstrapOperators returns the leader service's Bootstrap hook: propose
// the operator registry once, if the replicated state has none.
func (n *Node) bootstrapOperators(cmd *failoverpb.BootstrapOperators) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		done := false
		n.FSM.View(func(s *leader.State, _ uint64) { done = failover.From(s).Bootstrapped() })
		if done {
			return nil
		}
		_, err := n.Service.Propose(ctx, commandpb.CommandType_BOOTSTRAP_OPERATORS, cmd)
		if err == nil {
			n.log.Info("operator registry bootstrapped", "cluster", cmd.ClusterId, "operators", len(cmd.Operators))
		}
		return err
	}
}

// startAgent runs the failover agent: heartbeats while holding the lease,
// DR takeovers under a standing policy, finality confirmation for a
// handover to this region.
func (n *Node) startAgent(cfg *Config) error {
	fw, err := n.finalityWatcher(cfg)
	if err != nil {
		return err
	}
	ac := agent.Config{Region: cfg.NodeID, Proposer: n.Service, Replica: n.FSM, HeartbeatInterval: cfg.Failover.HeartbeatInterval, Logger: n.log}
	if fw != nil {
		ac.Finality = finalityAdapter{w: fw}
	}
	a, err := agent.New(ac)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	interval := cfg.Failover.HeartbeatInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	ticker := time.NewTicker(min(interval/2, time.Second))
	n.agentStop = func() { cancel(); ticker.Stop() }
	go func() {
		if err := a.Run(ctx, ticker.C); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("failover agent stopped", "err", err)
		}
	}()
	return nil
}

func (n *Node) finalityWatcher(cfg *Config) (*finality.Watcher, error) {
	fc := cfg.Failover.Finality
	if len(fc.Eth) == 0 && len(fc.Comet) == 0 {
		return nil, nil
	}
	wc := finality.DefaultConfig()
	wc.Logger = n.log
	if fc.PollInterval > 0 {
		wc.PollInterval = fc.PollInterval
	}
	for _, e := range fc.Eth {
		ch := finality.EthChain{Name: e.Name, Endpoints: e.Endpoints, Quorum: e.Quorum, SlotsPerEpoch: e.SlotsPerEpoch}
		if e.GenesisValidatorsRoot != "" {
			r, err := eth.ParseRoot(e.GenesisValidatorsRoot)
			if err != nil {
				return nil, fmt.Errorf("node: failover.finality.eth %s: %w", e.Name, err)
			}
			ch.GenesisValidatorsRoot = r
		} else {
			net, err := networkByName(cfg.Network)
			if err != nil {
				return nil, err
			}
			ch.GenesisValidatorsRoot = eth.Root(net.GenesisValidatorsRoot)
		}
		wc.Eth = append(wc.Eth, ch)
	}
	for _, c := range fc.Comet {
		wc.Comet = append(wc.Comet, finality.CometChain{ChainID: c.ChainID, Endpoints: c.Endpoints, Quorum: c.Quorum})
	}
	return finality.New(wc)
}

// finalityAdapter turns the watcher's evidence into ConfirmFinality.
type finalityAdapter struct{ w *finality.Watcher }

func (f finalityAdapter) WaitPast(ctx context.Context, id uint64, hw leader.HighWater) (*failoverpb.ConfirmFinality, error) {
	target := finality.HighWater{Eth: map[eth.Root]finality.EthMark{}, Comet: map[string]int64{}}
	for gvr, m := range hw.Eth {
		target.Eth[gvr] = finality.EthMark(m)
	}
	for c, h := range hw.Comet {
		target.Comet[c] = h
	}
	ev, err := f.w.WaitPast(ctx, target)
	if err != nil {
		return nil, err
	}
	out := &failoverpb.ConfirmFinality{HandoverId: id}
	for _, e := range ev.Eth {
		ef := &failoverpb.EthFinality{GenesisValidatorsRoot: e.GenesisValidatorsRoot[:], FinalizedEpoch: e.Epoch, FinalizedRoot: e.Root[:], SlotsPerEpoch: uint32(e.SlotsPerEpoch)}
		// Every agreeing endpoint reported finality at or past this epoch
		// (finality only moves forward), so each vouches for it.
		for _, a := range e.Agreeing {
			ef.Endpoints = append(ef.Endpoints, a.Endpoint)
		}
		out.Eth = append(out.Eth, ef)
	}
	for _, c := range ev.Comet {
		cf := &failoverpb.CometFinality{ChainId: c.ChainID, Height: c.Height, BlockHash: c.BlockHash[:]}
		for _, a := range c.Agreeing {
			cf.Endpoints = append(cf.Endpoints, a.Endpoint)
		}
		out.Comet = append(out.Comet, cf)
	}
	return out, nil
}
