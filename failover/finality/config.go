package finality

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-signer/regent/slashing/eth"
)

// Limits enforced by Validate.
const (
	// MaxEndpoints is the most endpoints one chain may list.
	MaxEndpoints = 32
	// DefaultSlotsPerEpoch is SLOTS_PER_EPOCH of every public Ethereum
	// network.
	DefaultSlotsPerEpoch = 32
	// MaxSlotsPerEpoch bounds EthChain.SlotsPerEpoch.
	MaxSlotsPerEpoch = 1024
	// MaxEndpointLen bounds an endpoint URL's length (it is logged,
	// labelled and carried in evidence).
	MaxEndpointLen = 256
	// MinResponseBytes and MaxResponseBytesLimit bound
	// Config.MaxResponseBytes.
	MinResponseBytes      = 512
	MaxResponseBytesLimit = 64 << 20
)

// Clock is the watcher's source of time. Now stamps rounds and evidence;
// After paces polling. The system clock is SystemClock(); tests inject one
// they advance by hand. Implementations must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemClock returns the wall clock.
func SystemClock() Clock { return systemClock{} }

// EthChain is one Ethereum network to watch.
type EthChain struct {
	// Name labels the chain in logs and metrics (key "chain"). Empty means
	// "eth-" and the first four bytes of the root in hex.
	Name string
	// GenesisValidatorsRoot identifies the network. An endpoint whose
	// /eth/v1/beacon/genesis names another root is excluded.
	GenesisValidatorsRoot eth.Root
	// Endpoints are beacon-node base URLs (http or https), e.g.
	// "https://beacon-1.dc2.example:5052". Paths are appended to them.
	Endpoints []string
	// Quorum is how many endpoints must agree. 0 means a majority of
	// Endpoints (len/2+1). Validate refuses less than a majority, so that
	// two disjoint sets of endpoints can never both decide.
	Quorum int
	// SlotsPerEpoch converts a finalized epoch to its first slot. 0 means
	// DefaultSlotsPerEpoch.
	SlotsPerEpoch uint64
}

// CometChain is one CometBFT chain to watch.
type CometChain struct {
	// ChainID identifies the chain (node_info.network, header.chain_id).
	// It is also the chain's "chain" label.
	ChainID string
	// Endpoints are CometBFT RPC base URLs, e.g. "http://node-1:26657".
	Endpoints []string
	// Quorum as for EthChain.
	Quorum int
}

// Config configures a Watcher. Start from DefaultConfig.
type Config struct {
	Eth   []EthChain
	Comet []CometChain

	// HTTPClient makes every request. nil means a client of this package's
	// own (no global state touched) that does not follow redirects (a 3xx
	// answer fails the endpoint with ErrHTTPStatus). Put TLS roots or
	// client certificates for https endpoints in its Transport; a client
	// given here keeps its own redirect policy.
	HTTPClient *http.Client
	// RequestTimeout bounds each HTTP request, body included.
	RequestTimeout time.Duration
	// MaxResponseBytes bounds each response body; a longer one fails the
	// endpoint with ErrResponseTooLarge.
	MaxResponseBytes int64
	// PollInterval is the pause between two rounds of WaitPast.
	PollInterval time.Duration
	// AllowOptimistic accepts Ethereum answers flagged
	// execution_optimistic. Default false: an optimistic node has not
	// verified the execution payloads, so its view is not counted.
	AllowOptimistic bool

	// Clock nil means SystemClock().
	Clock Clock
	// Logger nil means no logs.
	Logger *slog.Logger
	// Registerer receives the metrics (see Metrics in metrics.go). nil
	// means the metrics are kept but not exported.
	Registerer prometheus.Registerer
}

// DefaultConfig returns a Config with the default limits and no chains.
func DefaultConfig() Config {
	return Config{
		RequestTimeout:   5 * time.Second,
		MaxResponseBytes: 1 << 20,
		PollInterval:     6 * time.Second,
	}
}

// Validate checks cfg, field by field and across fields: at least one
// chain; per chain 1..MaxEndpoints distinct http(s) base URLs without
// query, fragment or user info, a Quorum in (len/2, len] (or 0); Ethereum
// roots non-zero and distinct, chain names distinct, SlotsPerEpoch in
// [0, MaxSlotsPerEpoch]; chain ids valid and distinct; positive timeouts;
// MaxResponseBytes in [MinResponseBytes, MaxResponseBytesLimit]. Errors wrap
// ErrInvalidConfig.
func (c Config) Validate() error {
	if len(c.Eth)+len(c.Comet) == 0 {
		return fmt.Errorf("%w: no chain to watch", ErrInvalidConfig)
	}
	if c.RequestTimeout <= 0 {
		return fmt.Errorf("%w: RequestTimeout %v must be positive", ErrInvalidConfig, c.RequestTimeout)
	}
	if c.PollInterval <= 0 {
		return fmt.Errorf("%w: PollInterval %v must be positive", ErrInvalidConfig, c.PollInterval)
	}
	if c.MaxResponseBytes < MinResponseBytes || c.MaxResponseBytes > MaxResponseBytesLimit {
		return fmt.Errorf("%w: MaxResponseBytes %d not in [%d, %d]", ErrInvalidConfig, c.MaxResponseBytes, MinResponseBytes, MaxResponseBytesLimit)
	}
	names := map[string]bool{}
	roots := map[eth.Root]bool{}
	for i, ch := range c.Eth {
		where := fmt.Sprintf("Eth[%d]", i)
		if ch.GenesisValidatorsRoot == (eth.Root{}) {
			return fmt.Errorf("%w: %s: zero GenesisValidatorsRoot", ErrInvalidConfig, where)
		}
		if roots[ch.GenesisValidatorsRoot] {
			return fmt.Errorf("%w: %s: GenesisValidatorsRoot %x listed twice", ErrInvalidConfig, where, ch.GenesisValidatorsRoot)
		}
		roots[ch.GenesisValidatorsRoot] = true
		name := ch.label()
		if names[name] {
			return fmt.Errorf("%w: %s: chain name %q used twice", ErrInvalidConfig, where, name)
		}
		names[name] = true
		if ch.SlotsPerEpoch > MaxSlotsPerEpoch {
			return fmt.Errorf("%w: %s: SlotsPerEpoch %d above %d", ErrInvalidConfig, where, ch.SlotsPerEpoch, MaxSlotsPerEpoch)
		}
		if err := checkEndpoints(where, ch.Endpoints, ch.Quorum); err != nil {
			return err
		}
	}
	for i, ch := range c.Comet {
		where := fmt.Sprintf("Comet[%d]", i)
		if err := checkChainID(ch.ChainID, "ChainID"); err != nil {
			return fmt.Errorf("%w: %s: invalid ChainID %q", ErrInvalidConfig, where, clip(ch.ChainID))
		}
		if names[ch.ChainID] {
			return fmt.Errorf("%w: %s: chain name %q used twice", ErrInvalidConfig, where, ch.ChainID)
		}
		names[ch.ChainID] = true
		if err := checkEndpoints(where, ch.Endpoints, ch.Quorum); err != nil {
			return err
		}
	}
	return nil
}

// label is the chain's name in logs and metrics.
func (ch EthChain) label() string {
	if ch.Name != "" {
		return ch.Name
	}
	return "eth-" + hex.EncodeToString(ch.GenesisValidatorsRoot[:4])
}

func (ch EthChain) slotsPerEpoch() uint64 {
	if ch.SlotsPerEpoch == 0 {
		return DefaultSlotsPerEpoch
	}
	return ch.SlotsPerEpoch
}

// quorumOf returns the effective quorum of n endpoints.
func quorumOf(q, n int) int {
	if q == 0 {
		return n/2 + 1
	}
	return q
}

func checkEndpoints(where string, eps []string, quorum int) error {
	n := len(eps)
	if n == 0 || n > MaxEndpoints {
		return fmt.Errorf("%w: %s: %d endpoints, want 1..%d", ErrInvalidConfig, where, n, MaxEndpoints)
	}
	q := quorumOf(quorum, n)
	if q <= n/2 || q > n {
		return fmt.Errorf("%w: %s: Quorum %d of %d endpoints: want a majority, at most all", ErrInvalidConfig, where, quorum, n)
	}
	seen := map[string]bool{}
	for _, raw := range eps {
		u, err := parseEndpoint(raw)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, where, err)
		}
		key := u.String()
		if seen[key] {
			return fmt.Errorf("%w: %s: endpoint %s listed twice", ErrInvalidConfig, where, u.Redacted())
		}
		seen[key] = true
	}
	return nil
}

// parseEndpoint checks a base URL and returns it normalised: scheme and
// host lower case, no trailing slash.
func parseEndpoint(raw string) (*url.URL, error) {
	if len(raw) > MaxEndpointLen {
		return nil, fmt.Errorf("endpoint %q: longer than %d bytes", clip(raw), MaxEndpointLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %v", clip(raw), err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("endpoint %s: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("endpoint %s: no host", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("endpoint %s: a base URL has no query or fragment", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("endpoint %s: put credentials in the HTTP client, not the URL", u.Redacted())
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}
