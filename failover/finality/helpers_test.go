package finality

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-signer/regent/slashing/eth"
)

// ---- JSON builders (spec-shaped answers) ----

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

func genesisJSON(gvr eth.Root, genesisTime uint64) string {
	return fmt.Sprintf(`{"data":{"genesis_time":"%d","genesis_validators_root":"%s","genesis_fork_version":"0x00000000"}}`,
		genesisTime, hex0x(gvr[:]))
}

func checkpointJSON(c Checkpoint) string {
	return fmt.Sprintf(`{"epoch":"%d","root":"%s"}`, c.Epoch, hex0x(c.Root[:]))
}

func checkpointsJSON(fin Checkpoint, optimistic bool) string {
	just := Checkpoint{Epoch: fin.Epoch + 1, Root: testRoot(0, fin.Epoch+1)}
	return fmt.Sprintf(`{"execution_optimistic":%t,"finalized":false,"data":{"previous_justified":%s,"current_justified":%s,"finalized":%s}}`,
		optimistic, checkpointJSON(fin), checkpointJSON(just), checkpointJSON(fin))
}

func headerJSON(slot uint64, root eth.Root, finalized, optimistic bool) string {
	z := hex0x(make([]byte, 32))
	return fmt.Sprintf(`{"execution_optimistic":%t,"finalized":%t,"data":{"root":"%s","canonical":true,"header":{"message":{"slot":"%d","proposer_index":"7","parent_root":"%s","state_root":"%s","body_root":"%s"},"signature":"%s"}}}`,
		optimistic, finalized, hex0x(root[:]), slot, z, z, z, hex0x(make([]byte, 96)))
}

func statusJSON(network string, height int64, hash [32]byte, catchingUp bool) string {
	h := strings.ToUpper(hex.EncodeToString(hash[:]))
	if height == 0 {
		h = ""
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":-1,"result":{"node_info":{"protocol_version":{"p2p":"8","block":"11","app":"0"},"id":"b774","listen_addr":"tcp://0.0.0.0:26656","network":%q,"version":"0.38.6","channels":"40","moniker":"n","other":{"tx_index":"on","rpc_address":"tcp://0.0.0.0:26657"}},"sync_info":{"latest_block_hash":"%s","latest_app_hash":"7F06","latest_block_height":"%d","latest_block_time":"2024-06-11T14:07:57Z","earliest_block_height":"1","catching_up":%t},"validator_info":{"address":"AB","voting_power":"10"}}}`,
		network, h, height, catchingUp)
}

func commitJSON(chainID string, height int64, hash [32]byte) string {
	h := strings.ToUpper(hex.EncodeToString(hash[:]))
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":-1,"result":{"signed_header":{"header":{"version":{"block":"11","app":"0"},"chain_id":%q,"height":"%d","time":"2024-06-11T14:07:57Z"},"commit":{"height":"%d","round":0,"block_id":{"hash":"%s","parts":{"total":1,"hash":"00"}},"signatures":[]}},"canonical":true}}`,
		chainID, height, height, h)
}

// ---- deterministic roots ----

// testRoot is the root a test chain on fork f reports at epoch (or height).
func testRoot(fork byte, n uint64) eth.Root {
	var b [9]byte
	b[0] = fork
	binary.BigEndian.PutUint64(b[1:], n)
	return sha256.Sum256(b[:])
}

var (
	gvrA = eth.Root{0xa1, 0x01}
	gvrB = eth.Root{0xb2, 0x02}
)

// ---- fake beacon node ----

// fakeBeacon serves the three beacon endpoints. Every field can be changed
// under mu while a test runs.
type fakeBeacon struct {
	mu         sync.Mutex
	gvr        eth.Root
	epoch      uint64
	fork       byte // root family; a different fork gives different roots
	spe        uint64
	optimistic bool
	// headerRoot, when set, overrides the finalized header's root.
	headerRoot *eth.Root
	// raw, when set for a path, is served as is.
	raw map[string]func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeBeacon) set(fn func(*fakeBeacon)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeBeacon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	raw := f.raw[r.URL.Path]
	gvr, epoch, fork, opt, spe := f.gvr, f.epoch, f.fork, f.optimistic, f.spe
	hr := f.headerRoot
	f.mu.Unlock()
	if spe == 0 {
		spe = 32
	}
	if raw != nil {
		raw(w, r)
		return
	}
	root := testRoot(fork, epoch)
	if epoch == 0 {
		root = eth.Root{}
	}
	switch r.URL.Path {
	case pathGenesis:
		_, _ = w.Write([]byte(genesisJSON(gvr, 1606824023)))
	case pathCheckpoints:
		_, _ = w.Write([]byte(checkpointsJSON(Checkpoint{Epoch: epoch, Root: root}, opt)))
	case pathFinalHeader:
		hroot := root
		if epoch == 0 {
			hroot = testRoot(fork, 1<<40) // the genesis block
		}
		if hr != nil {
			hroot = *hr
		}
		_, _ = w.Write([]byte(headerJSON(epoch*spe, hroot, true, opt)))
	default:
		http.Error(w, `{"code":404,"message":"not found"}`, http.StatusNotFound)
	}
}

func newBeacon(t *testing.T, gvr eth.Root, epoch uint64) (*fakeBeacon, string) {
	t.Helper()
	f := &fakeBeacon{gvr: gvr, epoch: epoch}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// deadURL returns the URL of a server that no longer listens.
func deadURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// ---- fake CometBFT node ----

type fakeComet struct {
	mu         sync.Mutex
	network    string
	height     int64
	catchingUp bool
	fork       byte
	// commitFork, when non-nil, is the fork /commit answers from (a node
	// whose status and commit disagree).
	commitFork *byte
	// noCommit makes /commit answer a JSON-RPC error.
	noCommit bool
	raw      map[string]func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeComet) set(fn func(*fakeComet)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeComet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	raw := f.raw[r.URL.Path]
	network, height, cu, fork, noCommit := f.network, f.height, f.catchingUp, f.fork, f.noCommit
	cfork := fork
	if f.commitFork != nil {
		cfork = *f.commitFork
	}
	f.mu.Unlock()
	if raw != nil {
		raw(w, r)
		return
	}
	switch r.URL.Path {
	case "/status":
		_, _ = w.Write([]byte(statusJSON(network, height, testRoot(fork, uint64(height)), cu)))
	case "/commit":
		h, err := strconv.ParseInt(r.URL.Query().Get("height"), 10, 64)
		if err != nil || h < 1 || h > height || noCommit {
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":-1,"error":{"code":-32603,"message":"Internal error","data":"height must be less than or equal to the current blockchain height"}}`))
			return
		}
		_, _ = w.Write([]byte(commitJSON(network, h, testRoot(cfork, uint64(h)))))
	default:
		http.NotFound(w, r)
	}
}

func newComet(t *testing.T, network string, height int64) (*fakeComet, string) {
	t.Helper()
	f := &fakeComet{network: network, height: height}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// ---- manual clock ----

// manualClock is a Clock whose After channels fire only when the test says
// so. Every After call is handed to the test through afters.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	afters chan chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Unix(1_700_000_000, 0), afters: make(chan chan time.Time, 64)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.afters <- ch
	return ch
}

// tick waits (with a deadline) for the watcher to start waiting, advances
// the clock by d and wakes it.
func (c *manualClock) tick(t *testing.T, d time.Duration) { c.step(t, d, nil) }

// step is tick with a change of the world made while the watcher is
// blocked between two rounds, so the next round is the first to see it.
func (c *manualClock) step(t *testing.T, d time.Duration, change func()) {
	t.Helper()
	select {
	case ch := <-c.afters:
		if change != nil {
			change()
		}
		c.mu.Lock()
		c.now = c.now.Add(d)
		now := c.now
		c.mu.Unlock()
		ch <- now
	case <-time.After(10 * time.Second):
		t.Fatal("watcher never waited for the next poll")
	}
}

// awaitWait waits (with a deadline) until the watcher waits for its next
// poll, without waking it. It returns the channel to fire.
func (c *manualClock) awaitWait(t *testing.T) chan time.Time {
	t.Helper()
	select {
	case ch := <-c.afters:
		return ch
	case <-time.After(10 * time.Second):
		t.Fatal("watcher never waited for the next poll")
		return nil
	}
}

// ---- config helpers ----

func testConfig(clk Clock) Config {
	cfg := DefaultConfig()
	cfg.Clock = clk
	cfg.RequestTimeout = 5 * time.Second
	cfg.PollInterval = time.Second
	return cfg
}

func ethConfig(clk Clock, gvr eth.Root, urls ...string) Config {
	cfg := testConfig(clk)
	cfg.Eth = []EthChain{{Name: "test-eth", GenesisValidatorsRoot: gvr, Endpoints: urls}}
	return cfg
}

func cometConfig(clk Clock, chainID string, urls ...string) Config {
	cfg := testConfig(clk)
	cfg.Comet = []CometChain{{ChainID: chainID, Endpoints: urls}}
	return cfg
}

func mustWatcher(t *testing.T, cfg Config) *Watcher {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}
