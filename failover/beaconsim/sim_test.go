package beaconsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-signer/regent/failover/beaconsim"
	"github.com/regent-signer/regent/failover/finality"
	"github.com/regent-signer/regent/slashing/eth"
)

var (
	gvr = eth.Root{0x4b, 0x36, 0x3d, 0xb9}
	t0  = time.Unix(1_606_824_023, 0)
)

// simClock is a Clock the test moves by hand. After (for the finality
// watcher) advances the clock by d and fires at once, so a watcher polling
// a simulator moves simulated time forward without real waiting; onAfter,
// if set, runs on every After call.
type simClock struct {
	mu      sync.Mutex
	now     time.Time
	afters  int
	onAfter func(n int)
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *simClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.afters++
	n, now, hook := c.afters, c.now, c.onAfter
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

const slot = 12 * time.Second

// at returns the instant of slot s.
func at(s uint64) time.Time { return t0.Add(time.Duration(s) * slot) }

func newNode(t *testing.T, clk beaconsim.Clock, mutate func(*beaconsim.Config)) (*beaconsim.Node, string) {
	t.Helper()
	cfg := beaconsim.DefaultConfig()
	cfg.GenesisValidatorsRoot = gvr
	cfg.GenesisTime = t0
	cfg.Clock = clk
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := beaconsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(srv.Close)
	return n, srv.URL
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func mustOK(t *testing.T, url string) []byte {
	t.Helper()
	code, b := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, b)
	}
	return b
}

// report decodes what a node serves with the watcher's own decoders.
type report struct {
	genesis   finality.Genesis
	cps       finality.FinalityCheckpoints
	finalized finality.BlockHeader
	head      finality.BlockHeader
}

func fetch(t *testing.T, base string) report {
	t.Helper()
	var r report
	var err error
	if r.genesis, err = finality.DecodeGenesis(mustOK(t, base+"/eth/v1/beacon/genesis")); err != nil {
		t.Fatal(err)
	}
	if r.cps, err = finality.DecodeFinalityCheckpoints(mustOK(t, base+"/eth/v1/beacon/states/head/finality_checkpoints")); err != nil {
		t.Fatal(err)
	}
	if r.finalized, err = finality.DecodeBlockHeader(mustOK(t, base+"/eth/v1/beacon/headers/finalized")); err != nil {
		t.Fatal(err)
	}
	if r.head, err = finality.DecodeBlockHeader(mustOK(t, base+"/eth/v1/beacon/headers/head")); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEndpointsAreSpecShaped(t *testing.T) {
	clk := &simClock{now: at(10*32 + 5)}
	n, base := newNode(t, clk, func(c *beaconsim.Config) { c.GenesisForkVersion = [4]byte{1, 2, 3, 4} })
	r := fetch(t, base)
	if r.genesis.ValidatorsRoot != gvr || r.genesis.Time != uint64(t0.Unix()) || r.genesis.ForkVersion != [4]byte{1, 2, 3, 4} {
		t.Fatalf("genesis %+v", r.genesis)
	}
	v := n.View()
	if r.cps.Finalized.Epoch != 8 || r.cps.PreviousJustified.Epoch != 8 || r.cps.CurrentJustified.Epoch != 9 || r.cps.ExecutionOptimistic {
		t.Fatalf("checkpoints %+v", r.cps)
	}
	if r.cps.Finalized.Root != v.Finalized.Root || r.cps.Finalized.Root == (eth.Root{}) {
		t.Fatalf("finalized root %x, view %x", r.cps.Finalized.Root, v.Finalized.Root)
	}
	if r.finalized.Slot != 8*32 || r.finalized.Root != r.cps.Finalized.Root || !r.finalized.Finalized || !r.finalized.Canonical {
		t.Fatalf("finalized header %+v", r.finalized)
	}
	if r.head.Slot != 325 || r.head.Root != v.HeadRoot || r.head.Finalized {
		t.Fatalf("head header %+v", r.head)
	}
	// The head's parent is the previous slot's block: the chain links.
	clk.Advance(slot)
	if next := fetch(t, base).head; next.ParentRoot != r.head.Root || next.Slot != 326 {
		t.Fatalf("next head %+v does not link to %x", next, r.head.Root)
	}
	// The genesis header and the node endpoints.
	g, err := finality.DecodeBlockHeader(mustOK(t, base+"/eth/v1/beacon/headers/genesis"))
	if err != nil || g.Slot != 0 || g.ParentRoot != (eth.Root{}) {
		t.Fatalf("genesis header %+v, %v", g, err)
	}
	var syncing struct {
		Data struct {
			HeadSlot     string `json:"head_slot"`
			SyncDistance string `json:"sync_distance"`
			IsSyncing    bool   `json:"is_syncing"`
			IsOptimistic bool   `json:"is_optimistic"`
			ElOffline    bool   `json:"el_offline"`
		} `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(mustOK(t, base+"/eth/v1/node/syncing")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&syncing); err != nil || syncing.Data.HeadSlot != "326" || syncing.Data.SyncDistance != "0" || syncing.Data.IsSyncing {
		t.Fatalf("syncing %+v, %v", syncing, err)
	}
	if code, _ := get(t, base+"/eth/v1/node/health"); code != http.StatusOK {
		t.Fatalf("health %d", code)
	}
	resp, err := http.Get(base + "/eth/v1/beacon/genesis")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
}

func TestFinalityFollowsTheClock(t *testing.T) {
	cases := []struct {
		name             string
		now              time.Time
		slot             uint64
		finalized, justd uint64
	}{
		{"before genesis", t0.Add(-time.Hour), 0, 0, 0},
		{"genesis", t0, 0, 0, 0},
		{"epoch 1", at(32), 32, 0, 0},
		{"epoch 2", at(64), 64, 0, 1},
		{"epoch 3", at(96), 96, 1, 2},
		{"last slot of epoch 3", at(127), 127, 1, 2},
		{"epoch 100", at(3200 + 31), 3231, 98, 99},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &simClock{now: tc.now}
			n, base := newNode(t, clk, nil)
			r := fetch(t, base)
			if r.head.Slot != tc.slot || r.cps.Finalized.Epoch != tc.finalized || r.cps.CurrentJustified.Epoch != tc.justd {
				t.Fatalf("slot %d finalized %d justified %d", r.head.Slot, r.cps.Finalized.Epoch, r.cps.CurrentJustified.Epoch)
			}
			if (tc.finalized == 0) != (r.cps.Finalized.Root == eth.Root{}) {
				t.Fatalf("finalized root %x at epoch %d", r.cps.Finalized.Root, tc.finalized)
			}
			// One epoch later finality moved by exactly one epoch (once
			// past the start).
			clk.Advance(32 * slot)
			after := n.View()
			if tc.finalized > 0 && after.Finalized.Epoch != tc.finalized+1 {
				t.Fatalf("an epoch later: finalized %d", after.Finalized.Epoch)
			}
		})
	}
}

func TestStallKnob(t *testing.T) {
	clk := &simClock{now: at(10 * 32)}
	n, base := newNode(t, clk, nil)
	n.SetFinalizing(false)
	clk.Advance(5 * 32 * slot)
	r := fetch(t, base)
	if r.cps.Finalized.Epoch != 8 || r.cps.CurrentJustified.Epoch != 9 || r.head.Slot != 15*32 {
		t.Fatalf("stalled: finalized %d justified %d head %d", r.cps.Finalized.Epoch, r.cps.CurrentJustified.Epoch, r.head.Slot)
	}
	if r.finalized.Slot != 8*32 || r.finalized.Root != r.cps.Finalized.Root {
		t.Fatalf("stalled finalized header %+v", r.finalized)
	}
	n.SetFinalizing(false) // idempotent: does not re-freeze later
	if v := n.View(); v.Finalized.Epoch != 8 || v.Finalizing {
		t.Fatalf("view %+v", v)
	}
	n.SetFinalizing(true)
	if v := n.View(); v.Finalized.Epoch != 13 || !v.Finalizing {
		t.Fatalf("resumed: %+v", v)
	}
}

func TestInstancesAgreeAndForkDiffers(t *testing.T) {
	clk := &simClock{now: at(40*32 + 3)}
	_, a := newNode(t, clk, nil)
	nb, b := newNode(t, clk, nil)
	ca := mustOK(t, a+"/eth/v1/beacon/states/head/finality_checkpoints")
	if cb := mustOK(t, b+"/eth/v1/beacon/states/head/finality_checkpoints"); !bytes.Equal(ca, cb) {
		t.Fatalf("two instances differ:\n%s\n%s", ca, cb)
	}
	nb.SetFork(1)
	ra, rb := fetch(t, a), fetch(t, b)
	if ra.cps.Finalized.Epoch != rb.cps.Finalized.Epoch || ra.cps.Finalized.Root == rb.cps.Finalized.Root {
		t.Fatalf("fork: %+v vs %+v", ra.cps.Finalized, rb.cps.Finalized)
	}
	if rb.finalized.Root != rb.cps.Finalized.Root {
		t.Fatalf("forked node inconsistent: header %x, checkpoint %x", rb.finalized.Root, rb.cps.Finalized.Root)
	}
	// A different network is a different chain too.
	_, c := newNode(t, clk, func(cfg *beaconsim.Config) { cfg.GenesisValidatorsRoot = eth.Root{9} })
	if rc := fetch(t, c); rc.cps.Finalized.Root == ra.cps.Finalized.Root || rc.genesis.ValidatorsRoot == gvr {
		t.Fatalf("other network serves the same roots")
	}
}

func TestLieKnob(t *testing.T) {
	clk := &simClock{now: at(10 * 32)}
	n, base := newNode(t, clk, nil)
	if err := n.SetLie(1000); err != nil {
		t.Fatal(err)
	}
	r := fetch(t, base)
	if r.cps.Finalized.Epoch != 1008 || r.finalized.Slot != 1008*32 || r.finalized.Root != r.cps.Finalized.Root {
		t.Fatalf("lie: %+v, header %+v", r.cps, r.finalized)
	}
	before := n.View()
	if err := n.SetLie(beaconsim.MaxLieEpochs + 1); !errors.Is(err, beaconsim.ErrInvalidKnob) {
		t.Fatalf("SetLie(too much) = %v", err)
	}
	if after := n.View(); after != before {
		t.Fatalf("refused knob changed the node: %+v → %+v", before, after)
	}
	if err := n.SetLie(0); err != nil || n.View().Finalized.Epoch != 8 {
		t.Fatalf("stop lying: %v, %+v", err, n.View())
	}
}

func TestSyncingAndAvailability(t *testing.T) {
	clk := &simClock{now: at(100)}
	n, base := newNode(t, clk, nil)
	n.SetSyncing(true)
	if code, _ := get(t, base+"/eth/v1/node/health"); code != http.StatusPartialContent {
		t.Fatalf("health while syncing: %d", code)
	}
	if code, _ := get(t, base+"/eth/v1/node/health?syncing_status=299"); code != 299 {
		t.Fatalf("custom syncing status: %d", code)
	}
	if code, _ := get(t, base+"/eth/v1/node/health?syncing_status=abc"); code != http.StatusBadRequest {
		t.Fatalf("invalid syncing status: %d", code)
	}
	if b := mustOK(t, base+"/eth/v1/node/syncing"); !strings.Contains(string(b), `"is_syncing":true`) || !strings.Contains(string(b), `"sync_distance":"32"`) {
		t.Fatalf("syncing: %s", b)
	}
	n.SetSyncing(false)
	n.SetAvailable(false)
	for _, p := range []string{"/eth/v1/beacon/genesis", "/eth/v1/beacon/states/head/finality_checkpoints",
		"/eth/v1/beacon/headers/finalized", "/eth/v1/node/syncing", "/eth/v1/node/health"} {
		if code, b := get(t, base+p); code != http.StatusServiceUnavailable || !strings.Contains(string(b), `"code":503`) {
			t.Fatalf("%s while unavailable: %d %s", p, code, b)
		}
	}
	n.SetAvailable(true)
	mustOK(t, base+"/eth/v1/beacon/genesis")
}

func TestBadRequests(t *testing.T) {
	clk := &simClock{now: at(100)}
	_, base := newNode(t, clk, nil)
	cases := []struct {
		name   string
		method string
		path   string
		want   int
	}{
		{"state finalized not served", "GET", "/eth/v1/beacon/states/finalized/finality_checkpoints", 404},
		{"state by slot not served", "GET", "/eth/v1/beacon/states/12/finality_checkpoints", 404},
		{"invalid state id", "GET", "/eth/v1/beacon/states/current/finality_checkpoints", 400},
		{"header by slot not served", "GET", "/eth/v1/beacon/headers/12345", 404},
		{"invalid block id", "GET", "/eth/v1/beacon/headers/0x12", 400},
		{"post", "POST", "/eth/v1/beacon/genesis", 405},
		{"unknown path", "GET", "/eth/v2/whatever", 404},
		{"control API off", "GET", "/beaconsim/v1/knobs", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tc.want)
			}
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Code != tc.want || e.Message == "" {
				t.Fatalf("error body %s: %v", b, err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*beaconsim.Config)
	}{
		{"zero root", func(c *beaconsim.Config) { c.GenesisValidatorsRoot = eth.Root{} }},
		{"zero slot duration", func(c *beaconsim.Config) { c.SlotDuration = 0 }},
		{"tiny slot duration", func(c *beaconsim.Config) { c.SlotDuration = time.Microsecond }},
		{"zero slots per epoch", func(c *beaconsim.Config) { c.SlotsPerEpoch = 0 }},
		{"huge slots per epoch", func(c *beaconsim.Config) { c.SlotsPerEpoch = beaconsim.MaxSlotsPerEpoch + 1 }},
		{"genesis before 1970", func(c *beaconsim.Config) { c.GenesisTime = time.Unix(-10, 0) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := beaconsim.DefaultConfig()
			cfg.GenesisValidatorsRoot = gvr
			tc.change(&cfg)
			if n, err := beaconsim.New(cfg); !errors.Is(err, beaconsim.ErrInvalidConfig) || n != nil {
				t.Fatalf("New = %v, %v", n, err)
			}
			if err := beaconsim.Run(context.Background(), "127.0.0.1:0", cfg); !errors.Is(err, beaconsim.ErrInvalidConfig) {
				t.Fatalf("Run = %v", err)
			}
		})
	}
	// Zero genesis time means "now".
	cfg := beaconsim.DefaultConfig()
	cfg.GenesisValidatorsRoot = gvr
	clk := &simClock{now: t0.Add(time.Hour)}
	cfg.Clock = clk
	n, err := beaconsim.New(cfg)
	if err != nil || !n.Config().GenesisTime.Equal(clk.Now()) || n.View().Slot != 0 {
		t.Fatalf("default genesis: %v, %v", n.Config().GenesisTime, err)
	}
}

func TestControlAPI(t *testing.T) {
	clk := &simClock{now: at(10 * 32)}
	n, base := newNode(t, clk, func(c *beaconsim.Config) { c.ControlAPI = true })
	post := func(body string) (int, string) {
		resp, err := http.Post(base+"/beaconsim/v1/knobs", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := post(`{"finalizing":false,"fork":2}`); code != 200 || !strings.Contains(b, `"finalizing":false`) || !strings.Contains(b, `"fork":2`) {
		t.Fatalf("post: %d %s", code, b)
	}
	clk.Advance(3 * 32 * slot)
	if v := n.View(); v.Finalizing || v.Fork != 2 || v.Finalized.Epoch != 8 {
		t.Fatalf("view %+v", v)
	}
	before := n.View()
	for _, bad := range []string{
		`{"finalizing":true,"bogus":1}`,
		`{"lie_epochs":4294967297}`,
		`{"finalizing":true} {}`,
		`{"finalizing":"yes"}`,
		`{"finalizing":true,"x":"` + strings.Repeat("a", 5000) + `"}`,
		``,
	} {
		if code, b := post(bad); code != http.StatusBadRequest {
			t.Fatalf("post %.40q: %d %s", bad, code, b)
		}
		if after := n.View(); after != before {
			t.Fatalf("bad knob body %.40q changed the node", bad)
		}
	}
	if code, b := get(t, base+"/beaconsim/v1/knobs"); code != 200 || !strings.Contains(string(b), `"available":true`) {
		t.Fatalf("get knobs: %d %s", code, b)
	}
	if code, b := post(`{"available":false}`); code != 200 {
		t.Fatalf("post: %d %s", code, b)
	}
	if code, _ := get(t, base+"/eth/v1/beacon/genesis"); code != 503 {
		t.Fatalf("not unavailable: %d", code)
	}
	if code, _ := get(t, base+"/beaconsim/v1/knobs"); code != 200 {
		t.Fatalf("control API down with the node: %d", code)
	}
}

func TestServeAndRun(t *testing.T) {
	clk := &simClock{now: at(64)}
	cfg := beaconsim.DefaultConfig()
	cfg.GenesisValidatorsRoot = gvr
	cfg.GenesisTime = t0
	cfg.Clock = clk
	n, err := beaconsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx, ln) }()
	if _, err := finality.DecodeGenesis(mustOK(t, "http://"+ln.Addr().String()+"/eth/v1/beacon/genesis")); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
	// Run: a bad address fails; a good one serves until cancelled.
	if err := beaconsim.Run(context.Background(), "256.0.0.1:bad", cfg); err == nil {
		t.Fatal("Run on a bad address succeeded")
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- beaconsim.Run(ctx, "127.0.0.1:0", cfg) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}
