package cometbfttest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrBuild: the cometbft binary could not be built or found.
	ErrBuild = errors.New("cometbfttest: cannot build cometbft")
	// ErrNode: the node could not be initialised, started or queried.
	ErrNode = errors.New("cometbfttest: node failure")
	// ErrExited: the node process is not running.
	ErrExited = errors.New("cometbfttest: node exited")
)

// The CometBFT releases the tests run against: the v0.38 line (privval
// package tendermint.privval) and the v1 line (cometbft.privval.v1, whose
// PubKeyResponse, SignVoteRequest and SignBytes differ).
const (
	Version   = "v0.38.26"
	VersionV1 = "v1.0.1"
)

// CacheDir returns where built cometbft binaries are kept:
// $(go env GOCACHE)/regent-cometbft/<version>.
func CacheDir(ctx context.Context, version string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: no go command on PATH: %w", ErrBuild, err)
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "GOCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("%w: go env GOCACHE: %w", ErrBuild, err)
	}
	cache := strings.TrimSpace(string(out))
	if cache == "" || cache == "off" {
		return "", fmt.Errorf("%w: GOCACHE is %q", ErrBuild, cache)
	}
	return filepath.Join(cache, "regent-cometbft", version), nil
}

// Binary returns the path of the cometbft binary of version, building it
// from the Go module proxy with `go install
// github.com/cometbft/cometbft/cmd/cometbft@<version>` into CacheDir when it
// is not there yet. The binary is a test tool, not a dependency of this
// module. The first build takes about a minute on two cores (most of it
// downloading and compiling cometbft's dependencies); later calls return at
// once.
func Binary(ctx context.Context, version string) (string, error) {
	dir, err := CacheDir(ctx, version)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cometbft")
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o100 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuild, err)
	}
	// Build into a private directory and rename, so that concurrent builds
	// never expose a half-written binary.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuild, err)
	}
	defer os.RemoveAll(tmp)
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuild, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "install", "github.com/cometbft/cometbft/cmd/cometbft@"+version)
	cmd.Dir = tmp // outside any module: the install must not see ours
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: go install cometbft@%s: %w\n%s", ErrBuild, version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "cometbft"), bin); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBuild, err)
	}
	return bin, nil
}

// Options configure a node.
type Options struct {
	// Binary is the cometbft executable (Binary()).
	Binary string
	// Home is the node's home directory; it must not exist or be empty.
	Home string
	// ChainID of the single-validator chain.
	ChainID string
	// Validator is the only genesis validator: the key Regent holds.
	Validator ed25519.PublicKey
	// Power of the validator (default 10).
	Power int64
	// VoteExtensionsHeight, when positive, enables vote extensions from
	// that height (consensus param abci.vote_extensions_enable_height).
	VoteExtensionsHeight int64
	// Unix makes priv_validator_laddr a unix socket instead of tcp.
	Unix bool
}

// Node is a single-validator CometBFT node whose validator signs through a
// remote signer dialling PrivvalAddr.
type Node struct {
	opts        Options
	home        string
	rpcAddr     string // host:port
	p2pAddr     string
	privvalAddr string // tcp://... or unix://...
	logPath     string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// freePort reserves and releases a loopback port.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Init runs `cometbft init` in opts.Home and rewrites the configuration:
// kvstore application in-process, every listener on 127.0.0.1, fast
// consensus timeouts, priv_validator_laddr set, and a genesis whose only
// validator is opts.Validator. The node's own priv_validator_key.json is
// deleted: it holds no key of this chain's validator.
func Init(ctx context.Context, opts Options) (*Node, error) {
	if opts.Power == 0 {
		opts.Power = 10
	}
	if len(opts.Validator) != ed25519.PublicKeySize || opts.ChainID == "" || opts.Binary == "" || opts.Home == "" {
		return nil, fmt.Errorf("%w: Init needs Binary, Home, ChainID and a 32-byte Validator key", ErrNode)
	}
	n := &Node{opts: opts, home: opts.Home, logPath: filepath.Join(opts.Home, "node.log")}
	var err error
	if n.rpcAddr, err = freePort(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNode, err)
	}
	if n.p2pAddr, err = freePort(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNode, err)
	}
	if opts.Unix {
		n.privvalAddr = "unix://" + filepath.Join(opts.Home, "privval.sock")
	} else {
		pv, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNode, err)
		}
		n.privvalAddr = "tcp://" + pv
	}
	if out, err := exec.CommandContext(ctx, opts.Binary, "init", "--home", opts.Home).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: cometbft init: %w\n%s", ErrNode, err, out)
	}
	cfgPath := filepath.Join(opts.Home, "config", "config.toml")
	err = editTOML(cfgPath, []tomlEdit{
		{"", "proxy_app", `"kvstore"`},
		{"", "moniker", `"regent-test"`},
		{"", "priv_validator_laddr", strconv.Quote(n.privvalAddr)},
		{"rpc", "laddr", strconv.Quote("tcp://" + n.rpcAddr)},
		{"p2p", "laddr", strconv.Quote("tcp://" + n.p2pAddr)},
		{"p2p", "pex", "false"},
		{"p2p", "addr_book_strict", "false"},
		{"consensus", "timeout_propose", `"1s"`},
		{"consensus", "timeout_propose_delta", `"100ms"`},
		{"consensus", "timeout_prevote", `"300ms"`},
		{"consensus", "timeout_prevote_delta", `"100ms"`},
		{"consensus", "timeout_precommit", `"300ms"`},
		{"consensus", "timeout_precommit_delta", `"100ms"`},
		{"consensus", "timeout_commit", `"200ms"`},
		{"instrumentation", "prometheus", "false"},
	})
	if err != nil {
		return nil, err
	}
	if err := n.writeGenesis(); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(opts.Home, "config", "priv_validator_key.json")); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNode, err)
	}
	return n, nil
}

// writeGenesis replaces chain id and validators, keeping everything else
// cometbft init wrote.
func (n *Node) writeGenesis() error {
	path := filepath.Join(n.home, "config", "genesis.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNode, err)
	}
	var g map[string]any
	if err := json.Unmarshal(raw, &g); err != nil {
		return fmt.Errorf("%w: genesis.json: %w", ErrNode, err)
	}
	g["chain_id"] = n.opts.ChainID
	g["validators"] = []any{map[string]any{
		"address": Address(n.opts.Validator),
		"pub_key": map[string]any{"type": "tendermint/PubKeyEd25519", "value": base64.StdEncoding.EncodeToString(n.opts.Validator)},
		"power":   strconv.FormatInt(n.opts.Power, 10),
		"name":    "regent",
	}}
	if n.opts.VoteExtensionsHeight > 0 {
		params, ok := g["consensus_params"].(map[string]any)
		if !ok {
			return fmt.Errorf("%w: genesis.json has no consensus_params", ErrNode)
		}
		// v0.38 keeps the parameter under "abci", v1 under "feature".
		section := "abci"
		if _, v1 := params["feature"]; v1 {
			section = "feature"
		}
		sec, _ := params[section].(map[string]any)
		if sec == nil {
			sec = map[string]any{}
		}
		sec["vote_extensions_enable_height"] = strconv.FormatInt(n.opts.VoteExtensionsHeight, 10)
		params[section] = sec
	}
	out, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNode, err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrNode, err)
	}
	return nil
}

// Address is CometBFT's validator address of an Ed25519 key: the first 20
// bytes of SHA-256(pubkey), upper-case hex.
func Address(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return strings.ToUpper(hex.EncodeToString(h[:20]))
}

type tomlEdit struct{ section, key, value string }

// editTOML sets key = value inside [section] ("" is the top level) of a
// cometbft config.toml. Every edit must find its key, so a changed
// configuration layout fails loudly instead of being silently ignored.
func editTOML(path string, edits []tomlEdit) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNode, err)
	}
	lines := strings.Split(string(raw), "\n")
	done := make([]bool, len(edits))
	section := ""
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
			section = strings.Trim(trimmed, "[]")
			continue
		}
		key, _, ok := strings.Cut(trimmed, "=")
		if !ok || strings.HasPrefix(trimmed, "#") {
			continue
		}
		key = strings.TrimSpace(key)
		for j, e := range edits {
			if e.section == section && e.key == key {
				lines[i] = e.key + " = " + e.value
				done[j] = true
			}
		}
	}
	for j, ok := range done {
		if !ok {
			return fmt.Errorf("%w: %s has no %q in [%s]", ErrNode, path, edits[j].key, edits[j].section)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrNode, err)
	}
	return nil
}

// PrivvalAddr is the node's priv_validator_laddr, for the signer to dial.
func (n *Node) PrivvalAddr() string { return n.privvalAddr }

// RPCAddr is the node's RPC host:port.
func (n *Node) RPCAddr() string { return n.rpcAddr }

// LogPath is the file the node's output goes to.
func (n *Node) LogPath() string { return n.logPath }

// Start starts the node process (again, after Stop or Kill). CometBFT gives
// a remote signer 3 s to connect before it gives up starting, so the signer
// should already be dialling.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.exited:
		default:
			return fmt.Errorf("%w: already running", ErrNode)
		}
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNode, err)
	}
	fmt.Fprintf(f, "\n==== regent harness: start %s ====\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.opts.Binary, "start", "--home", n.home)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%w: start: %w", ErrNode, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.exitErr = cmd, exited, nil
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		f.Close()
		close(exited)
	}()
	return nil
}

// Exited is closed when the current node process has exited.
func (n *Node) Exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.exited == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return n.exited
}

// ExitErr is the current process's exit status once Exited is closed.
func (n *Node) ExitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exitErr
}

// Stop sends SIGTERM and, if the node has not exited after grace, SIGKILL.
// It returns when the process is gone.
func (n *Node) Stop(grace time.Duration) error {
	return n.signal(syscall.SIGTERM, grace)
}

// Kill sends SIGKILL (a crash: no WAL flush, no clean shutdown) and waits.
func (n *Node) Kill() error { return n.signal(syscall.SIGKILL, 0) }

func (n *Node) signal(sig syscall.Signal, grace time.Duration) error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	if sig != syscall.SIGKILL {
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%w: process %d did not exit", ErrNode, cmd.Process.Pid)
	}
}

// rpc GETs path from the node's RPC server and decodes "result" into out.
func (n *Node) rpc(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.rpcAddr+path, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNode, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNode, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNode, path, err)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNode, path, err)
	}
	if len(env.Error) > 0 && string(env.Error) != "null" {
		return fmt.Errorf("%w: %s: %s", ErrNode, path, env.Error)
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNode, path, err)
	}
	return nil
}

// Status is the part of /status the harness uses.
type Status struct {
	Height    int64
	Validator ed25519.PublicKey
}

// Status queries /status.
func (n *Node) Status(ctx context.Context) (Status, error) {
	var s struct {
		SyncInfo struct {
			LatestBlockHeight string `json:"latest_block_height"`
		} `json:"sync_info"`
		ValidatorInfo struct {
			PubKey struct {
				Value string `json:"value"`
			} `json:"pub_key"`
		} `json:"validator_info"`
	}
	if err := n.rpc(ctx, "/status", &s); err != nil {
		return Status{}, err
	}
	h, err := strconv.ParseInt(s.SyncInfo.LatestBlockHeight, 10, 64)
	if err != nil {
		return Status{}, fmt.Errorf("%w: height %q", ErrNode, s.SyncInfo.LatestBlockHeight)
	}
	pk, _ := base64.StdEncoding.DecodeString(s.ValidatorInfo.PubKey.Value)
	return Status{Height: h, Validator: pk}, nil
}

// Height returns the latest block height.
func (n *Node) Height(ctx context.Context) (int64, error) {
	s, err := n.Status(ctx)
	return s.Height, err
}

// WaitHeight polls /status until the chain reaches height h, the node
// exits (ErrExited) or ctx ends.
func (n *Node) WaitHeight(ctx context.Context, h int64) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := int64(-1)
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, err := n.Height(qctx)
		cancel()
		if err == nil {
			last = got
			if got >= h {
				return nil
			}
		}
		select {
		case <-n.Exited():
			return fmt.Errorf("%w while waiting for height %d (at %d): %v", ErrExited, h, last, n.ExitErr())
		case <-ctx.Done():
			return fmt.Errorf("%w: height %d not reached (at %d): %w", ErrNode, h, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// CommitSig is one validator signature of a commit.
type CommitSig struct {
	Flag             int
	ValidatorAddress string
	Timestamp        time.Time
	Signature        []byte
}

// Block is what the harness reads of a committed block at Height: its
// evidence and the commit for it (from /commit).
type Block struct {
	Height    int64
	Round     int32
	BlockHash []byte
	PartsHash []byte
	PartTotal uint32
	Evidence  []json.RawMessage
	Sigs      []CommitSig
}

// Block reads block h's evidence (/block) and its commit (/commit).
func (n *Node) Block(ctx context.Context, h int64) (Block, error) {
	var b struct {
		Block struct {
			Evidence struct {
				Evidence []json.RawMessage `json:"evidence"`
			} `json:"evidence"`
		} `json:"block"`
	}
	if err := n.rpc(ctx, fmt.Sprintf("/block?height=%d", h), &b); err != nil {
		return Block{}, err
	}
	var c struct {
		SignedHeader struct {
			Commit struct {
				Height  string `json:"height"`
				Round   int32  `json:"round"`
				BlockID struct {
					Hash  string `json:"hash"`
					Parts struct {
						Total uint32 `json:"total"`
						Hash  string `json:"hash"`
					} `json:"parts"`
				} `json:"block_id"`
				Signatures []struct {
					Flag      int       `json:"block_id_flag"`
					Address   string    `json:"validator_address"`
					Timestamp time.Time `json:"timestamp"`
					Signature []byte    `json:"signature"`
				} `json:"signatures"`
			} `json:"commit"`
		} `json:"signed_header"`
	}
	if err := n.rpc(ctx, fmt.Sprintf("/commit?height=%d", h), &c); err != nil {
		return Block{}, err
	}
	cm := c.SignedHeader.Commit
	out := Block{Height: h, Round: cm.Round, PartTotal: cm.BlockID.Parts.Total, Evidence: b.Block.Evidence.Evidence}
	var err error
	if out.BlockHash, err = hex.DecodeString(cm.BlockID.Hash); err != nil {
		return Block{}, fmt.Errorf("%w: block hash %q", ErrNode, cm.BlockID.Hash)
	}
	if out.PartsHash, err = hex.DecodeString(cm.BlockID.Parts.Hash); err != nil {
		return Block{}, fmt.Errorf("%w: parts hash %q", ErrNode, cm.BlockID.Parts.Hash)
	}
	for _, s := range cm.Signatures {
		out.Sigs = append(out.Sigs, CommitSig{Flag: s.Flag, ValidatorAddress: s.Address, Timestamp: s.Timestamp, Signature: s.Signature})
	}
	return out, nil
}

// LogContains reports whether the node's log so far contains s
// (case-insensitive).
func (n *Node) LogContains(s string) (bool, error) {
	f, err := os.Open(n.logPath)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrNode, err)
	}
	defer f.Close()
	needle := bytes.ToLower([]byte(s))
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if bytes.Contains(bytes.ToLower(sc.Bytes()), needle) {
			return true, nil
		}
	}
	return false, sc.Err()
}

// LogTail returns the last n lines of the node's log, for failure reports.
func (n *Node) LogTail(lines int) string {
	raw, err := os.ReadFile(n.logPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
