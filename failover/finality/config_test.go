package finality

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-signer/regent/slashing/eth"
)

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		cfg := DefaultConfig()
		cfg.Eth = []EthChain{{GenesisValidatorsRoot: gvrA, Endpoints: []string{"http://a:5052", "https://b:5052/", "http://c"}}}
		cfg.Comet = []CometChain{{ChainID: "chain-1", Endpoints: []string{"http://n1:26657"}}}
		return cfg
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("base config: %v", err)
	}
	cases := []struct {
		name   string
		change func(*Config)
	}{
		{"no chains", func(c *Config) { c.Eth, c.Comet = nil, nil }},
		{"zero timeout", func(c *Config) { c.RequestTimeout = 0 }},
		{"negative poll", func(c *Config) { c.PollInterval = -time.Second }},
		{"tiny body limit", func(c *Config) { c.MaxResponseBytes = 10 }},
		{"huge body limit", func(c *Config) { c.MaxResponseBytes = 1 << 40 }},
		{"zero root", func(c *Config) { c.Eth[0].GenesisValidatorsRoot = eth.Root{} }},
		{"same root twice", func(c *Config) { c.Eth = append(c.Eth, c.Eth[0]) }},
		{"same name twice", func(c *Config) {
			c.Eth = append(c.Eth, EthChain{Name: "x", GenesisValidatorsRoot: gvrB, Endpoints: []string{"http://d"}})
			c.Eth[0].Name = "x"
		}},
		{"eth name equals chain id", func(c *Config) { c.Eth[0].Name = "chain-1" }},
		{"slots per epoch too big", func(c *Config) { c.Eth[0].SlotsPerEpoch = MaxSlotsPerEpoch + 1 }},
		{"no endpoints", func(c *Config) { c.Eth[0].Endpoints = nil }},
		{"too many endpoints", func(c *Config) {
			c.Eth[0].Endpoints = nil
			for i := range MaxEndpoints + 1 {
				c.Eth[0].Endpoints = append(c.Eth[0].Endpoints, "http://h"+string(rune('a'+i%26))+string(rune('a'+i/26)))
			}
		}},
		{"minority quorum", func(c *Config) { c.Eth[0].Quorum = 1 }},
		{"half quorum", func(c *Config) { c.Eth[0].Endpoints = append(c.Eth[0].Endpoints, "http://d"); c.Eth[0].Quorum = 2 }},
		{"quorum above endpoints", func(c *Config) { c.Eth[0].Quorum = 4 }},
		{"negative quorum", func(c *Config) { c.Eth[0].Quorum = -1 }},
		{"duplicate endpoint", func(c *Config) { c.Eth[0].Endpoints[1] = "HTTP://A:5052/" }},
		{"ftp endpoint", func(c *Config) { c.Eth[0].Endpoints[0] = "ftp://a" }},
		{"no host", func(c *Config) { c.Eth[0].Endpoints[0] = "http:///x" }},
		{"query", func(c *Config) { c.Eth[0].Endpoints[0] = "http://a/?k=v" }},
		{"fragment", func(c *Config) { c.Eth[0].Endpoints[0] = "http://a/#f" }},
		{"credentials", func(c *Config) { c.Eth[0].Endpoints[0] = "http://user:pw@a" }},
		{"unparsable", func(c *Config) { c.Eth[0].Endpoints[0] = "http://a b\x7f" }},
		{"long endpoint", func(c *Config) { c.Eth[0].Endpoints[0] = "http://a/" + strings.Repeat("p", MaxEndpointLen) }},
		{"empty chain id", func(c *Config) { c.Comet[0].ChainID = "" }},
		{"long chain id", func(c *Config) { c.Comet[0].ChainID = string(make([]byte, 51)) }},
		{"chain id twice", func(c *Config) { c.Comet = append(c.Comet, c.Comet[0]) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.change(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			w, err := New(cfg)
			if !errors.Is(err, ErrInvalidConfig) || w != nil {
				t.Fatalf("New = %v, %v", w, err)
			}
		})
	}
}

func TestQuorumDefaultsToMajority(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3} {
		if got := quorumOf(0, n); got != want {
			t.Fatalf("quorumOf(0, %d) = %d, want %d", n, got, want)
		}
	}
}

func TestMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := ethConfig(newManualClock(), gvrA, "http://a")
	cfg.Registerer = reg
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("second watcher on one registry: %v", err)
	}
}
