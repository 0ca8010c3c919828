package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrConfig marks an invalid node configuration.
var ErrConfig = errors.New("node: invalid config")

// Config is one region node's configuration. Precedence, highest first:
// command-line flags, REGENT_* environment variables, the YAML file.
type Config struct {
	NodeID  string `yaml:"node_id"`
	Region  string `yaml:"region"`
	DataDir string `yaml:"data_dir"`
	Raft    struct {
		Bind      string `yaml:"bind"`
		Advertise string `yaml:"advertise"`
	} `yaml:"raft"`
	API struct {
		GRPC string `yaml:"grpc"` // operator/node API (mTLS)
		HTTP string `yaml:"http"` // /metrics, /healthz, /readyz (plain HTTP; bind to a private address)
	} `yaml:"api"`
	TLS struct {
		CA   string `yaml:"ca"`
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	Peers []struct {
		ID      string `yaml:"id"`
		Address string `yaml:"address"`
		API     string `yaml:"api"`
	} `yaml:"peers"`
	// InitialLeaseHolder is granted the lease at epoch 1 on a fresh cluster.
	// Every region must name the same one; later grants are refused.
	InitialLeaseHolder string `yaml:"initial_lease_holder"`
	LogLevel           string `yaml:"log_level"`
	// Raft timing profile: "wan" (default) or "lan" (fast elections, tests).
	RaftProfile string `yaml:"raft_profile"`

	// Network is the Ethereum network this cluster signs for (mainnet,
	// sepolia, holesky, hoodi). Required when signing.http is set.
	Network string `yaml:"network"`
	// HSM is this region's PKCS#11 token. Required to sign.
	HSM struct {
		Module      string `yaml:"module"`       // e.g. /usr/lib/softhsm/libsofthsm2.so
		TokenLabel  string `yaml:"token_label"`  // e.g. regent-dc1
		PINFile     string `yaml:"pin_file"`     // file holding the user PIN
		MaxSessions int    `yaml:"max_sessions"` // session pool size; 0 means 4
	} `yaml:"hsm"`
	// Signing is the client-facing API: Web3Signer-compatible eth2 signing
	// and the Keymanager API, over mutual TLS (or bearer tokens).
	Signing struct {
		HTTP string `yaml:"http"`
	} `yaml:"signing"`
	// Privval connects this region to CometBFT nodes as their remote signer.
	Privval []PrivvalConfig `yaml:"privval"`
	// Failover configures operators, heartbeats and the finality watcher.
	Failover FailoverConfig `yaml:"failover"`
}

// PrivvalConfig is one CometBFT node this region signs for.
type PrivvalConfig struct {
	ChainID string `yaml:"chain_id"`
	// Address is the node's priv_validator_laddr: tcp://host:port or unix:///path.
	Address string `yaml:"address"`
	// NodeKeys allowlists the node's SecretConnection public keys (hex
	// Ed25519). "any" accepts every key: stock CometBFT makes a new
	// listener key at every start, so it cannot be pinned.
	NodeKeys []string `yaml:"node_keys"`
	// ConnectionKeyFile holds this signer's SecretConnection key (not the validator key).
	ConnectionKeyFile string `yaml:"connection_key_file"`
	// Identity is the policy identity requests from this node sign as.
	Identity string `yaml:"identity"`
}

// Signs reports whether this region has an HSM configured to sign with.
func (c *Config) Signs() bool { return c.HSM.Module != "" }

// overrides are the flag/env settable fields, by flag name.
func (c *Config) overrides() map[string]*string {
	return map[string]*string{
		"node-id":              &c.NodeID,
		"region":               &c.Region,
		"data-dir":             &c.DataDir,
		"raft-bind":            &c.Raft.Bind,
		"raft-advertise":       &c.Raft.Advertise,
		"grpc-addr":            &c.API.GRPC,
		"http-addr":            &c.API.HTTP,
		"tls-ca":               &c.TLS.CA,
		"tls-cert":             &c.TLS.Cert,
		"tls-key":              &c.TLS.Key,
		"initial-lease-holder": &c.InitialLeaseHolder,
		"log-level":            &c.LogLevel,
		"raft-profile":         &c.RaftProfile,
		"network":              &c.Network,
		"hsm-module":           &c.HSM.Module,
		"hsm-token-label":      &c.HSM.TokenLabel,
		"hsm-pin-file":         &c.HSM.PINFile,
		"signing-http":         &c.Signing.HTTP,
	}
}

// OverrideNames lists the settings flags and env variables may override,
// sorted.
func OverrideNames() []string {
	var c Config
	names := make([]string, 0, len(c.overrides()))
	for n := range c.overrides() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EnvName maps a flag name to its environment variable.
func EnvName(flag string) string {
	return "REGENT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// LoadConfig reads path (if not empty), then applies env and flags (flags
// holds only flags the user set), defaults and validation.
func LoadConfig(path string, env func(string) string, flags map[string]string) (*Config, error) {
	c := &Config{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrConfig, path, err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
		}
	}
	for name, field := range c.overrides() {
		if v := env(EnvName(name)); v != "" {
			*field = v
		}
		if v, ok := flags[name]; ok {
			*field = v
		}
	}
	for name := range flags {
		if _, ok := c.overrides()[name]; !ok {
			return nil, fmt.Errorf("%w: unknown setting %q", ErrConfig, name)
		}
	}
	if c.Region == "" {
		c.Region = c.NodeID
	}
	if c.Raft.Advertise == "" {
		c.Raft.Advertise = c.Raft.Bind
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.RaftProfile == "" {
		c.RaftProfile = "wan"
	}
	return c, c.Validate()
}

// Validate checks every field and cross-field rule, naming what is wrong.
func (c *Config) Validate() error {
	var errs []error
	need := func(v, name string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	need(c.NodeID, "node_id")
	need(c.DataDir, "data_dir")
	need(c.Raft.Bind, "raft.bind")
	need(c.API.GRPC, "api.grpc")
	need(c.TLS.CA, "tls.ca")
	need(c.TLS.Cert, "tls.cert")
	need(c.TLS.Key, "tls.key")
	for name, addr := range map[string]string{"raft.bind": c.Raft.Bind, "raft.advertise": c.Raft.Advertise, "api.grpc": c.API.GRPC, "api.http": c.API.HTTP} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, addr, err))
		}
	}
	if host, _, err := net.SplitHostPort(c.Raft.Advertise); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("raft.advertise %q must be an address peers can reach, not unspecified", c.Raft.Advertise))
		}
	}
	if len(c.Peers) == 0 {
		errs = append(errs, errors.New("peers are required (the static voters, this node included)"))
	}
	self := false
	ids := map[string]bool{}
	for i, p := range c.Peers {
		if p.ID == "" || p.Address == "" {
			errs = append(errs, fmt.Errorf("peers[%d] needs id and address", i))
		}
		if ids[p.ID] {
			errs = append(errs, fmt.Errorf("peers[%d]: id %q listed twice", i, p.ID))
		}
		ids[p.ID] = true
		if p.ID == c.NodeID {
			self = true
			if p.Address != c.Raft.Advertise {
				errs = append(errs, fmt.Errorf("peers[%d] (%s) address %q differs from raft.advertise %q", i, p.ID, p.Address, c.Raft.Advertise))
			}
		}
	}
	if len(c.Peers) > 0 && !self {
		errs = append(errs, fmt.Errorf("node_id %q is not among the peers", c.NodeID))
	}
	if c.InitialLeaseHolder != "" && !ids[c.InitialLeaseHolder] {
		errs = append(errs, fmt.Errorf("initial_lease_holder %q is not a peer", c.InitialLeaseHolder))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.RaftProfile {
	case "wan", "lan":
	default:
		errs = append(errs, fmt.Errorf("raft_profile %q: want wan or lan", c.RaftProfile))
	}
	if c.Signs() {
		need(c.HSM.TokenLabel, "hsm.token_label")
		need(c.HSM.PINFile, "hsm.pin_file")
		if c.HSM.MaxSessions < 0 || c.HSM.MaxSessions > 256 {
			errs = append(errs, fmt.Errorf("hsm.max_sessions %d: want 0..256", c.HSM.MaxSessions))
		}
	}
	if c.Signing.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.Signing.HTTP); err != nil {
			errs = append(errs, fmt.Errorf("signing.http %q: %w", c.Signing.HTTP, err))
		}
		if !c.Signs() {
			errs = append(errs, errors.New("signing.http needs an hsm (hsm.module) to sign with"))
		}
		need(c.Network, "network (signing.http is set)")
	}
	if c.Failover.OperatorsFile != "" {
		if _, err := LoadOperators(c.Failover.OperatorsFile); err != nil {
			errs = append(errs, fmt.Errorf("failover.operators_file: %w", err))
		}
	}
	if c.Failover.HeartbeatInterval < 0 {
		errs = append(errs, errors.New("failover.heartbeat_interval must not be negative"))
	}
	for i, e := range c.Failover.Finality.Eth {
		if len(e.Endpoints) == 0 {
			errs = append(errs, fmt.Errorf("failover.finality.eth[%d] needs endpoints", i))
		}
	}
	for i, cm := range c.Failover.Finality.Comet {
		if cm.ChainID == "" || len(cm.Endpoints) == 0 {
			errs = append(errs, fmt.Errorf("failover.finality.comet[%d] needs chain_id and endpoints", i))
		}
	}
	for i, p := range c.Privval {
		if p.ChainID == "" || p.Address == "" {
			errs = append(errs, fmt.Errorf("privval[%d] needs chain_id and address", i))
		}
		if !strings.HasPrefix(p.Address, "tcp://") && !strings.HasPrefix(p.Address, "unix://") {
			errs = append(errs, fmt.Errorf("privval[%d].address %q: want tcp://host:port or unix:///path", i, p.Address))
		}
		if strings.HasPrefix(p.Address, "tcp://") && (len(p.NodeKeys) == 0 || p.ConnectionKeyFile == "") {
			errs = append(errs, fmt.Errorf("privval[%d]: tcp needs node_keys (allowlisted SecretConnection keys) and connection_key_file", i))
		}
		if !c.Signs() {
			errs = append(errs, fmt.Errorf("privval[%d] needs an hsm (hsm.module) to sign with", i))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}
