package privval

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/regent-signer/regent/signer/privval/wire"
	"github.com/regent-signer/regent/slashing/cometbft"
)

// Config configures a Signer. Start from DefaultConfig; Validate checks it
// (New calls Validate). Nothing in it changes while a Signer runs.
type Config struct {
	// Address is the node's priv_validator_laddr: "tcp://host:port"
	// (SecretConnection) or "unix:///path/to.sock" (plain; protect the
	// socket with file permissions).
	Address string
	// ChainID is the only chain this signer serves. Requests naming another
	// are refused.
	ChainID string
	// Caller is the pipeline identity whose replicated policy governs what
	// this signer may sign. Default "cometbft-" + ChainID.
	Caller string

	// AllowedNodeKeys are the Ed25519 SecretConnection keys of the nodes
	// this signer will serve (tcp only). A node presenting any other key is
	// refused before it can send a request.
	AllowedNodeKeys []ed25519.PublicKey
	// AcceptAnyNodeKey serves any node over tcp. Stock CometBFT (v0.38 and
	// v1.x) listens on priv_validator_laddr with a key it generates afresh
	// at every start, so an allowlist can only be used with a node that
	// persists that key; otherwise set this and restrict who can reach the
	// signer by network means. Exactly one of AllowedNodeKeys and
	// AcceptAnyNodeKey must be set for tcp.
	AcceptAnyNodeKey bool
	// ConnKey is this signer's own SecretConnection identity (LoadConnKey).
	// It is not the validator key, and the signer refuses to run if the two
	// are equal. Required for tcp.
	ConnKey ed25519.PrivateKey

	// DialTimeout bounds one TCP or unix connect.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the SecretConnection handshake, including the
	// wait for the node to accept: CometBFT accepts a signer's connection
	// only when it needs one, so a signer held in reserve (a standby region,
	// a restarted signer while the old connection is still in use) waits
	// here, connected in the node's accept queue. Long enough that this
	// queued connection is still alive when the node takes it; a stale one
	// costs the node a failed handshake and a second accept.
	HandshakeTimeout time.Duration
	// RequestTimeout bounds the backend's work on one request (commit and
	// HSM signature). Keep it under the node's read timeout (5 s in
	// CometBFT), or the node drops the connection before the answer.
	RequestTimeout time.Duration
	// WriteTimeout bounds writing one response.
	WriteTimeout time.Duration
	// IdleTimeout, when positive, closes a connection that receives nothing
	// for that long. CometBFT pings the connection it uses every ~3.3 s but
	// never a connection it keeps in reserve, so the default is 0 (rely on
	// TCP keep-alive); set it above 4 s if you set it.
	IdleTimeout time.Duration
	// BackoffMin and BackoffMax bound the exponential (jittered) delay
	// between connection attempts. CometBFT gives a signer 3 s to connect
	// when it starts, so BackoffMax should stay near 1 s.
	BackoffMin, BackoffMax time.Duration

	// YieldAfter, when positive, makes the signer close the connection
	// after that many consecutive sign requests it could not serve because
	// this region cannot sign now (not the lease holder, no quorum, HSM or
	// store unavailable), and stay away for YieldFor. CometBFT uses one
	// signer connection at a time and keeps the others waiting; a region
	// that cannot sign would otherwise hold the node hostage while the
	// lease holder's signer waits in line. Slashing, policy and bad-request
	// refusals never count: another region would answer the same.
	YieldAfter int
	// YieldFor is how long a signer that yielded waits before dialling again.
	YieldFor time.Duration

	// Ready, when set, reports whether this region can sign now — it holds
	// the signing lease (nil) or not (an error saying why). It makes the
	// signer stand by instead of refusing:
	//   - while Ready refuses, the signer does not dial, so a standby region
	//     never becomes the node's one signer connection;
	//   - when Ready starts refusing while connected, the signer closes the
	//     connection (checked every ReadyPoll), and a sign request that
	//     arrives meanwhile, or that the backend refuses as "cannot sign
	//     now" while Ready refuses, is left unanswered. CometBFT retries an
	//     unanswered request on the next connection it takes — the new lease
	//     holder's — for about 5 s plus up to 3 s per accept it waits for,
	//     whereas a refusal is final for the round (a missed vote, which
	//     halts a chain this validator is needed for).
	// Nil keeps the older behaviour: every region dials, and one that cannot
	// sign refuses and yields (YieldAfter). Ready is called from the
	// signer's goroutines; it must be cheap and safe for concurrent use.
	Ready func() error
	// ReadyPoll is how often Ready is asked while it refuses and while a
	// connection is open. Required (positive) when Ready is set.
	ReadyPoll time.Duration

	// AllowSignBytes enables CometBFT v1's SignBytes request. Even then the
	// caller's policy must allow KindSignBytes, and bytes that could be
	// consensus or vote-extension sign bytes are refused.
	AllowSignBytes bool
	// MaxMessageSize bounds a request frame (default
	// wire.DefaultMaxMessageSize).
	MaxMessageSize int

	// Logger receives connection events and refusals (default: discard).
	Logger *slog.Logger
	// Metrics, when set, counts requests and connections.
	Metrics *Metrics
}

// DefaultConfig returns a Config with the timeouts, backoff, yield and
// ReadyPoll defaults filled in; Address, ChainID, the node-key policy,
// ConnKey and (recommended for a region of a Regent cluster) Ready remain to
// be set.
func DefaultConfig() Config {
	return Config{
		DialTimeout:      2 * time.Second,
		HandshakeTimeout: 30 * time.Second,
		RequestTimeout:   3 * time.Second,
		WriteTimeout:     3 * time.Second,
		BackoffMin:       50 * time.Millisecond,
		BackoffMax:       time.Second,
		YieldAfter:       3,
		YieldFor:         5 * time.Second,
		ReadyPoll:        100 * time.Millisecond,
		MaxMessageSize:   wire.DefaultMaxMessageSize,
	}
}

// ParseAddress splits a priv_validator_laddr into a network ("tcp" or
// "unix") and an address for net.Dial.
func ParseAddress(addr string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(addr, "tcp://"):
		address = strings.TrimPrefix(addr, "tcp://")
		host, port, err := net.SplitHostPort(address)
		if err != nil || host == "" || port == "" {
			return "", "", fmt.Errorf("%w: address %q: want tcp://host:port", ErrConfig, addr)
		}
		return "tcp", address, nil
	case strings.HasPrefix(addr, "unix://"):
		address = strings.TrimPrefix(addr, "unix://")
		if address == "" {
			return "", "", fmt.Errorf("%w: address %q: want unix:///path", ErrConfig, addr)
		}
		return "unix", address, nil
	default:
		return "", "", fmt.Errorf("%w: address %q: want tcp://host:port or unix:///path", ErrConfig, addr)
	}
}

// Validate checks c, including cross-field rules, and returns an error
// wrapping ErrConfig.
func (c *Config) Validate() error {
	network, _, err := ParseAddress(c.Address)
	if err != nil {
		return err
	}
	if len(c.ChainID) == 0 || len(c.ChainID) > cometbft.MaxChainIDLen {
		return fmt.Errorf("%w: chain id %q: want 1..%d bytes", ErrConfig, c.ChainID, cometbft.MaxChainIDLen)
	}
	if len(c.Caller) > 63 {
		return fmt.Errorf("%w: caller identity %q is longer than 63 bytes", ErrConfig, c.Caller)
	}
	if network == "tcp" {
		if len(c.ConnKey) != ed25519.PrivateKeySize {
			return fmt.Errorf("%w: tcp needs the signer's Ed25519 connection key (ConnKey)", ErrConfig)
		}
		if c.AcceptAnyNodeKey == (len(c.AllowedNodeKeys) > 0) {
			return fmt.Errorf("%w: tcp needs exactly one of AllowedNodeKeys and AcceptAnyNodeKey", ErrConfig)
		}
		for i, k := range c.AllowedNodeKeys {
			if len(k) != ed25519.PublicKeySize {
				return fmt.Errorf("%w: allowed node key %d is %d bytes, want %d", ErrConfig, i, len(k), ed25519.PublicKeySize)
			}
		}
	} else if len(c.AllowedNodeKeys) > 0 || c.AcceptAnyNodeKey {
		return fmt.Errorf("%w: node keys apply to tcp only; a unix socket is not authenticated", ErrConfig)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"HandshakeTimeout", c.HandshakeTimeout}, {"RequestTimeout", c.RequestTimeout},
		{"WriteTimeout", c.WriteTimeout}, {"BackoffMin", c.BackoffMin}, {"BackoffMax", c.BackoffMax}} {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s must be positive", ErrConfig, d.name)
		}
	}
	if c.BackoffMax < c.BackoffMin {
		return fmt.Errorf("%w: BackoffMax %v below BackoffMin %v", ErrConfig, c.BackoffMax, c.BackoffMin)
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("%w: IdleTimeout is negative", ErrConfig)
	}
	if c.YieldAfter < 0 || (c.YieldAfter > 0 && c.YieldFor <= 0) {
		return fmt.Errorf("%w: YieldAfter %d needs a positive YieldFor", ErrConfig, c.YieldAfter)
	}
	if c.Ready != nil && c.ReadyPoll <= 0 {
		return fmt.Errorf("%w: Ready needs a positive ReadyPoll", ErrConfig)
	}
	if c.MaxMessageSize < 1024 || c.MaxMessageSize > 16<<20 {
		return fmt.Errorf("%w: MaxMessageSize %d outside 1 KiB..16 MiB", ErrConfig, c.MaxMessageSize)
	}
	return nil
}

// allowsNode reports whether the node's SecretConnection key may be served.
func (c *Config) allowsNode(k ed25519.PublicKey) bool {
	if c.AcceptAnyNodeKey {
		return true
	}
	for _, a := range c.AllowedNodeKeys {
		if a.Equal(k) {
			return true
		}
	}
	return false
}

// maxConnKeyFile bounds a connection-key file.
const maxConnKeyFile = 16 << 10

// LoadConnKey reads the signer's SecretConnection key from path. Two
// formats are accepted: a PKCS#8 PEM "PRIVATE KEY" holding an Ed25519 key
// (openssl genpkey -algorithm ed25519; WriteConnKey), or a CometBFT
// node_key.json ({"priv_key":{"type":"tendermint/PrivKeyEd25519","value":
// base64(seed‖public)}}). The file must not be readable or writable by group
// or others. Errors wrap ErrKeyFile.
func LoadConnKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKeyFile, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; a key file must not be accessible to group or others (chmod 600)", ErrKeyFile, path, st.Mode().Perm())
	}
	if st.Size() > maxConnKeyFile {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrKeyFile, path, st.Size())
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	return ParseConnKey(data)
}

// ParseConnKey decodes a connection key in one of LoadConnKey's formats.
func ParseConnKey(data []byte) (ed25519.PrivateKey, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		block, rest := pem.Decode(trimmed)
		if block == nil || len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: not exactly one PEM block", ErrKeyFile)
		}
		if block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("%w: PEM block %q, want PRIVATE KEY (PKCS#8)", ErrKeyFile, block.Type)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
		}
		ed, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: PKCS#8 key is %T, want Ed25519", ErrKeyFile, k)
		}
		return ed, nil
	}
	var nk struct {
		PrivKey struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"priv_key"`
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&nk); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: neither a PKCS#8 PEM key nor a node_key.json", ErrKeyFile)
	}
	if nk.PrivKey.Type != "tendermint/PrivKeyEd25519" {
		return nil, fmt.Errorf("%w: node_key.json key type %q, want tendermint/PrivKeyEd25519", ErrKeyFile, nk.PrivKey.Type)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(nk.PrivKey.Value)
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: node_key.json value is not base64 of %d bytes", ErrKeyFile, ed25519.PrivateKeySize)
	}
	k := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	if !bytes.Equal(k[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
		return nil, fmt.Errorf("%w: node_key.json public half does not match its seed", ErrKeyFile)
	}
	clear(raw)
	return k, nil
}

// WriteConnKey writes k to path as a PKCS#8 PEM file with mode 0600. It
// refuses to overwrite an existing file.
func WriteConnKey(path string, k ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	return nil
}
