package finality

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/regent-signer/regent/slashing/eth"
)

func ethMark(slot uint64, target uint64) HighWater {
	return HighWater{Eth: map[eth.Root]EthMark{gvrA: {MaxBlockSlot: slot, HasBlock: true, MaxTargetEpoch: target, HasAttestation: true}}}
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// waitResult runs WaitPast in a goroutine.
type waitResult struct {
	ev  Evidence
	err error
}

func startWait(ctx context.Context, w *Watcher, target HighWater) <-chan waitResult {
	out := make(chan waitResult, 1)
	go func() {
		ev, err := w.WaitPast(ctx, target)
		out <- waitResult{ev, err}
	}()
	return out
}

func await(t *testing.T, ch <-chan waitResult) waitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("WaitPast did not return")
		return waitResult{}
	}
}

func TestWaitPastQuorumAgrees(t *testing.T) {
	_, a := newBeacon(t, gvrA, 10)
	_, b := newBeacon(t, gvrA, 10)
	_, c := newBeacon(t, gvrA, 9)
	reg := prometheus.NewRegistry()
	cfg := ethConfig(newManualClock(), gvrA, a, b, c)
	cfg.Registerer = reg
	w := mustWatcher(t, cfg)
	ev, err := w.WaitPast(context.Background(), ethMark(319, 9))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Eth) != 1 {
		t.Fatalf("evidence %+v", ev)
	}
	f := ev.Eth[0]
	if f.Epoch != 10 || f.Root != testRoot(0, 10) || f.FirstSlot != 320 || f.Quorum != 2 || f.Endpoints != 3 || len(f.Agreeing) != 2 {
		t.Fatalf("finality %+v", f)
	}
	for _, a := range f.Agreeing {
		if a.Finalized.Epoch != 10 || a.FinalizedBlockSlot != 320 || a.FinalizedBlockRoot != f.Root || a.GenesisTime != 1606824023 {
			t.Fatalf("answer %+v", a)
		}
	}
	if err := ev.Covers(ethMark(319, 9)); err != nil {
		t.Fatalf("Covers: %v", err)
	}
	if err := ev.Covers(ethMark(320, 9)); !errors.Is(err, ErrNotPast) {
		t.Fatalf("Covers slot 320: %v", err)
	}
	if got := metricValue(t, w.Metrics().AgreedEpoch.WithLabelValues("test-eth")); got != 10 {
		t.Fatalf("agreed epoch gauge %v", got)
	}
	if got := metricValue(t, w.Metrics().Polls.WithLabelValues("test-eth")); got != 1 {
		t.Fatalf("polls %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"regent_finality_polls_total", "regent_finality_agreed_epoch", "regent_finality_agreeing_endpoints"} {
		if !names[want] {
			t.Fatalf("%s not exported; have %v", want, names)
		}
	}
}

// A mark exactly at the boundary is not passed: finality must be strictly
// above both the target epoch and the block slot.
func TestWaitPastNeedsStrictlyAbove(t *testing.T) {
	cases := []struct {
		name string
		mark EthMark
		pass bool
	}{
		{"target equal", EthMark{MaxTargetEpoch: 10, HasAttestation: true}, false},
		{"target below", EthMark{MaxTargetEpoch: 9, HasAttestation: true}, true},
		{"slot at first slot", EthMark{MaxBlockSlot: 320, HasBlock: true}, false},
		{"slot just below", EthMark{MaxBlockSlot: 319, HasBlock: true}, true},
		{"target ignored without flag", EthMark{MaxTargetEpoch: 99}, true},
		{"slot ignored without flag", EthMark{MaxBlockSlot: 9999}, true},
		{"both, one fails", EthMark{MaxBlockSlot: 100, HasBlock: true, MaxTargetEpoch: 10, HasAttestation: true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, a := newBeacon(t, gvrA, 10)
			clk := newManualClock()
			w := mustWatcher(t, ethConfig(clk, gvrA, a))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := startWait(ctx, w, HighWater{Eth: map[eth.Root]EthMark{gvrA: tc.mark}})
			if tc.pass {
				r := await(t, done)
				if r.err != nil || r.ev.Eth[0].Epoch != 10 {
					t.Fatalf("got %+v, %v", r.ev, r.err)
				}
				return
			}
			clk.awaitWait(t)
			cancel()
			r := await(t, done)
			if !errors.Is(r.err, ErrNotPast) || !errors.Is(r.err, context.Canceled) || len(r.ev.Eth) != 0 {
				t.Fatalf("got %+v, %v", r.ev, r.err)
			}
		})
	}
}

func TestWaitPastFollowsFinality(t *testing.T) {
	fa, a := newBeacon(t, gvrA, 5)
	fb, b := newBeacon(t, gvrA, 5)
	_, c := newBeacon(t, gvrA, 5)
	clk := newManualClock()
	w := mustWatcher(t, ethConfig(clk, gvrA, a, b, c))
	done := startWait(context.Background(), w, ethMark(200, 6))
	// Round 1 sees epoch 5 everywhere. One node advances: not a quorum.
	clk.step(t, time.Second, func() { fa.set(func(f *fakeBeacon) { f.epoch = 7 }) }) // round 2: 7/5/5 → 5
	clk.step(t, time.Second, func() { fb.set(func(f *fakeBeacon) { f.epoch = 8 }) }) // round 3: 7/8/5 → 7
	r := await(t, done)
	if r.err != nil || r.ev.Eth[0].Epoch != 7 || len(r.ev.Eth[0].Agreeing) != 2 {
		t.Fatalf("got %+v, %v", r.ev, r.err)
	}
	if r.ev.ObservedAt != clk.Now() {
		t.Fatalf("ObservedAt %v, clock %v", r.ev.ObservedAt, clk.Now())
	}
}

func TestLiarFarAheadIsNotTrusted(t *testing.T) {
	_, liar := newBeacon(t, gvrA, 1_000_000)
	_, b := newBeacon(t, gvrA, 10)
	_, c := newBeacon(t, gvrA, 9)
	clk := newManualClock()
	w := mustWatcher(t, ethConfig(clk, gvrA, liar, b, c))
	rep := w.Check(context.Background())
	if rep.Eth[0].Err != nil || rep.Eth[0].Finality.Epoch != 10 {
		t.Fatalf("report %+v", rep.Eth[0])
	}
	// Waiting past epoch 11 must not succeed on the liar's word.
	ctx, cancel := context.WithCancel(context.Background())
	done := startWait(ctx, w, ethMark(0, 11))
	clk.tick(t, time.Second)
	clk.awaitWait(t)
	cancel()
	r := await(t, done)
	if !errors.Is(r.err, ErrNotPast) || len(r.ev.Eth) != 0 {
		t.Fatalf("got %+v, %v", r.ev, r.err)
	}
}

func TestRootDisagreementIsRefused(t *testing.T) {
	_, a := newBeacon(t, gvrA, 10)
	fb, b := newBeacon(t, gvrA, 10)
	_, c := newBeacon(t, gvrA, 10)
	fb.set(func(f *fakeBeacon) { f.fork = 1 })
	var logs bytes.Buffer
	clk := newManualClock()
	cfg := ethConfig(clk, gvrA, a, b, c)
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	w := mustWatcher(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := startWait(ctx, w, ethMark(0, 1))
	clk.tick(t, time.Second)
	clk.awaitWait(t)
	cancel()
	r := await(t, done)
	if !errors.Is(r.err, ErrConflict) || len(r.ev.Eth) != 0 {
		t.Fatalf("got %+v, %v", r.ev, r.err)
	}
	if got := metricValue(t, w.Metrics().Conflicts.WithLabelValues("test-eth")); got != 2 {
		t.Fatalf("conflicts counted %v, want 2", got)
	}
	if !strings.Contains(logs.String(), `"msg":"finality refused: endpoints disagree","chain":"test-eth"`) {
		t.Fatalf("conflict not logged: %s", logs.String())
	}
	if last := w.Last(); !errors.Is(last.Eth[0].Err, ErrConflict) {
		t.Fatalf("Last: %+v", last)
	}
}

func TestWrongNetworkEndpointExcluded(t *testing.T) {
	_, wrong := newBeacon(t, gvrB, 500)
	_, b := newBeacon(t, gvrA, 10)
	_, c := newBeacon(t, gvrA, 10)
	w := mustWatcher(t, ethConfig(newManualClock(), gvrA, wrong, b, c))
	ev, err := w.WaitPast(context.Background(), ethMark(0, 9))
	if err != nil || ev.Eth[0].Epoch != 10 || len(ev.Eth[0].Agreeing) != 2 {
		t.Fatalf("got %+v, %v", ev, err)
	}
	last := w.Last().Eth[0]
	if len(last.Failures) != 1 || last.Failures[0].Endpoint != wrong || !errors.Is(last.Failures[0].Err, ErrWrongNetwork) {
		t.Fatalf("failures %+v", last.Failures)
	}
	if got := metricValue(t, w.Metrics().EndpointFailures.WithLabelValues("test-eth", wrong, "wrong_network")); got != 1 {
		t.Fatalf("failure metric %v", got)
	}
}

func TestEndpointsDownWaitWithoutEvidence(t *testing.T) {
	clk := newManualClock()
	w := mustWatcher(t, ethConfig(clk, gvrA, deadURL(t), deadURL(t), deadURL(t)))
	ctx, cancel := context.WithCancel(context.Background())
	done := startWait(ctx, w, ethMark(0, 0))
	for range 3 {
		clk.tick(t, time.Second)
	}
	clk.awaitWait(t)
	cancel()
	r := await(t, done)
	if !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, ErrNoQuorum) || len(r.ev.Eth) != 0 {
		t.Fatalf("got %+v, %v", r.ev, r.err)
	}
	for _, f := range w.Last().Eth[0].Failures {
		if !errors.Is(f.Err, ErrUnreachable) {
			t.Fatalf("failure %v", f.Err)
		}
	}
	if got := metricValue(t, w.Metrics().Polls.WithLabelValues("test-eth")); got != 4 {
		t.Fatalf("polls %v, want 4", got)
	}
}

// Bad answers: one endpoint misbehaves, two are fine. The bad one is
// counted with its reason; the round still agrees, on the good ones only.
func TestBadAnswersExcluded(t *testing.T) {
	huge := func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 200 { // 12.5 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	cases := []struct {
		name   string
		path   string
		handle func(w http.ResponseWriter, r *http.Request)
		setup  func(f *fakeBeacon)
		reason string
		want   error
	}{
		{"malformed JSON", pathCheckpoints, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"data":`)) }, nil, "malformed", ErrMalformed},
		{"html", pathGenesis, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`<html>oops</html>`)) }, nil, "malformed", ErrMalformed},
		{"huge body", pathCheckpoints, huge, nil, "too_large", ErrResponseTooLarge},
		{"huge declared length", pathFinalHeader, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100000000")
			_, _ = w.Write([]byte("{}"))
		}, nil, "too_large", ErrResponseTooLarge},
		{"500", pathCheckpoints, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, nil, "http_status", ErrHTTPStatus},
		{"optimistic", "", nil, func(f *fakeBeacon) { f.optimistic = true; f.epoch = 50 }, "optimistic", ErrOptimistic},
		{"header root differs", "", nil, func(f *fakeBeacon) { r := testRoot(9, 9); f.headerRoot = &r; f.epoch = 50 }, "inconsistent", ErrInconsistent},
		{"implausible epoch", pathCheckpoints, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(checkpointsJSON(Checkpoint{Epoch: 1 << 60, Root: testRoot(0, 1)}, false)))
		}, nil, "implausible", ErrImplausible},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad, badURL := newBeacon(t, gvrA, 10)
			bad.set(func(f *fakeBeacon) {
				if tc.handle != nil {
					f.raw = map[string]func(http.ResponseWriter, *http.Request){tc.path: tc.handle}
				}
				if tc.setup != nil {
					tc.setup(f)
				}
			})
			_, b := newBeacon(t, gvrA, 10)
			_, c := newBeacon(t, gvrA, 10)
			w := mustWatcher(t, ethConfig(newManualClock(), gvrA, badURL, b, c))
			rep := w.Check(context.Background())
			r := rep.Eth[0]
			if r.Err != nil || r.Finality.Epoch != 10 || len(r.Finality.Agreeing) != 2 {
				t.Fatalf("result %+v", r)
			}
			if len(r.Failures) != 1 || r.Failures[0].Endpoint != badURL || !errors.Is(r.Failures[0].Err, tc.want) {
				t.Fatalf("failures %+v", r.Failures)
			}
			if got := metricValue(t, w.Metrics().EndpointFailures.WithLabelValues("test-eth", badURL, tc.reason)); got != 1 {
				t.Fatalf("failure metric %q = %v", tc.reason, got)
			}
		})
	}
}

func TestAllowOptimistic(t *testing.T) {
	fa, a := newBeacon(t, gvrA, 10)
	fa.set(func(f *fakeBeacon) { f.optimistic = true })
	cfg := ethConfig(newManualClock(), gvrA, a)
	cfg.AllowOptimistic = true
	w := mustWatcher(t, cfg)
	r := w.Check(context.Background()).Eth[0]
	if r.Err != nil || !r.Finality.Agreeing[0].ExecutionOptimistic {
		t.Fatalf("result %+v", r)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	_, good := newBeacon(t, gvrA, 10)
	redir := httptest.NewServer(http.RedirectHandler(good+pathGenesis, http.StatusFound))
	defer redir.Close()
	w := mustWatcher(t, ethConfig(newManualClock(), gvrA, redir.URL))
	r := w.Check(context.Background()).Eth[0]
	if !errors.Is(r.Err, ErrNoQuorum) || len(r.Failures) != 1 || !errors.Is(r.Failures[0].Err, ErrHTTPStatus) {
		t.Fatalf("result %+v", r)
	}
}

func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	_, b := newBeacon(t, gvrA, 10)
	_, c := newBeacon(t, gvrA, 10)
	cfg := ethConfig(newManualClock(), gvrA, hang.URL, b, c)
	cfg.RequestTimeout = 100 * time.Millisecond
	w := mustWatcher(t, cfg)
	r := w.Check(context.Background()).Eth[0]
	if r.Err != nil || len(r.Failures) != 1 || !errors.Is(r.Failures[0].Err, ErrUnreachable) {
		t.Fatalf("result %+v", r)
	}
}

func TestHTTPSEndpoints(t *testing.T) {
	f := &fakeBeacon{gvr: gvrA, epoch: 12}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	cfg := ethConfig(newManualClock(), gvrA, srv.URL)
	cfg.HTTPClient = srv.Client()
	w := mustWatcher(t, cfg)
	r := w.Check(context.Background()).Eth[0]
	if r.Err != nil || r.Finality.Epoch != 12 {
		t.Fatalf("result %+v", r)
	}
	// Without the test CA the endpoint is unreachable, not trusted.
	cfg.HTTPClient = nil
	cfg.Registerer = nil
	w = mustWatcher(t, cfg)
	r = w.Check(context.Background()).Eth[0]
	if !errors.Is(r.Err, ErrNoQuorum) || !errors.Is(r.Failures[0].Err, ErrUnreachable) {
		t.Fatalf("result %+v", r)
	}
}

func TestPreFinalityCheckpointAgrees(t *testing.T) {
	_, a := newBeacon(t, gvrA, 0)
	w := mustWatcher(t, ethConfig(newManualClock(), gvrA, a))
	r := w.Check(context.Background()).Eth[0]
	if r.Err != nil || r.Finality.Epoch != 0 || r.Finality.Root != (eth.Root{}) {
		t.Fatalf("result %+v", r)
	}
	// Nothing signed yet on the chain: any agreed finality passes.
	ev, err := w.WaitPast(context.Background(), HighWater{Eth: map[eth.Root]EthMark{gvrA: {}}})
	if err != nil || len(ev.Eth) != 1 {
		t.Fatalf("got %+v, %v", ev, err)
	}
	// But a signed attestation at target 0 is not passed by epoch 0, nor a
	// block at slot 0.
	if err := ev.Covers(ethMark(0, 0)); !errors.Is(err, ErrNotPast) {
		t.Fatalf("Covers: %v", err)
	}
	// A cancelled context returns at once, without evidence.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ev, err := w.WaitPast(ctx, ethMark(0, 0)); !errors.Is(err, context.Canceled) || len(ev.Eth) != 0 {
		t.Fatalf("got %+v, %v", ev, err)
	}
}

func TestWaitPastBadTargets(t *testing.T) {
	_, a := newBeacon(t, gvrA, 10)
	_, ca := newComet(t, "chain-1", 10)
	cfg := ethConfig(newManualClock(), gvrA, a)
	cfg.Comet = []CometChain{{ChainID: "chain-1", Endpoints: []string{ca}}}
	w := mustWatcher(t, cfg)
	cases := []struct {
		name   string
		target HighWater
		want   error
	}{
		{"unknown network", HighWater{Eth: map[eth.Root]EthMark{gvrB: {}}}, ErrUnknownChain},
		{"unknown chain", HighWater{Comet: map[string]int64{"other": 1}}, ErrUnknownChain},
		{"negative height", HighWater{Comet: map[string]int64{"chain-1": -1}}, ErrInvalidTarget},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := w.WaitPast(context.Background(), tc.target)
			if !errors.Is(err, tc.want) || len(ev.Eth)+len(ev.Comet) != 0 {
				t.Fatalf("got %+v, %v", ev, err)
			}
		})
	}
	if got := metricValue(t, w.Metrics().Polls.WithLabelValues("test-eth")); got != 0 {
		t.Fatalf("a refused target polled: %v", got)
	}
	// An empty mark is passed at once, with no polling.
	ev, err := w.WaitPast(context.Background(), HighWater{})
	if err != nil || len(ev.Eth)+len(ev.Comet) != 0 {
		t.Fatalf("got %+v, %v", ev, err)
	}
}

// ---- CometBFT ----

func cometMark(h int64) HighWater { return HighWater{Comet: map[string]int64{"chain-1": h}} }

func TestCometQuorumAgrees(t *testing.T) {
	_, a := newComet(t, "chain-1", 103)
	_, b := newComet(t, "chain-1", 101)
	_, c := newComet(t, "chain-1", 100)
	w := mustWatcher(t, cometConfig(newManualClock(), "chain-1", a, b, c))
	ev, err := w.WaitPast(context.Background(), cometMark(100))
	if err != nil {
		t.Fatal(err)
	}
	f := ev.Comet[0]
	if f.Height != 101 || f.BlockHash != testRoot(0, 101) || len(f.Agreeing) != 2 || f.Quorum != 2 || f.Endpoints != 3 {
		t.Fatalf("finality %+v", f)
	}
	for _, a := range f.Agreeing {
		if a.CommitHash != f.BlockHash || !a.CommitCanonical {
			t.Fatalf("answer %+v", a)
		}
	}
	if got := metricValue(t, w.Metrics().AgreedHeight.WithLabelValues("chain-1")); got != 101 {
		t.Fatalf("height gauge %v", got)
	}
	if err := ev.Covers(cometMark(101)); !errors.Is(err, ErrNotPast) {
		t.Fatalf("Covers(101): %v", err)
	}
}

func TestCometFaults(t *testing.T) {
	fork1 := byte(1)
	cases := []struct {
		name       string
		setup      func(a, b, c *fakeComet)
		wantErr    error // chain result
		wantHeight int64
		failReason string // of endpoint a, "" for none
	}{
		{"liar far ahead, no commit there", func(a, b, c *fakeComet) { a.height = 1 << 40; a.noCommit = true }, nil, 100, "rpc_error"},
		{"two ahead, one refuses its commit", func(a, b, c *fakeComet) { a.height = 1 << 40; a.noCommit = true; b.height = 120 }, nil, 100, "rpc_error"},
		{"two refuse their commits", func(a, b, c *fakeComet) { a.noCommit = true; b.noCommit = true }, ErrNoQuorum, 0, "rpc_error"},
		{"liar far ahead, honest commit", func(a, b, c *fakeComet) { a.height = 1 << 40 }, nil, 100, ""},
		{"liar far ahead, forged commit", func(a, b, c *fakeComet) { a.height = 1 << 40; a.commitFork = &fork1 }, ErrConflict, 0, ""},
		{"same height different block", func(a, b, c *fakeComet) { a.fork = 1 }, ErrConflict, 0, ""},
		{"wrong network", func(a, b, c *fakeComet) { a.network = "chain-2"; a.height = 500 }, nil, 100, "wrong_network"},
		{"catching up", func(a, b, c *fakeComet) { a.catchingUp = true; a.height = 500 }, nil, 100, "catching_up"},
		{"status and commit disagree", func(a, b, c *fakeComet) { a.commitFork = &fork1 }, nil, 100, "inconsistent"},
		{"two down", func(a, b, c *fakeComet) { a.catchingUp = true; b.network = "x" }, ErrNoQuorum, 0, "catching_up"},
		{"malformed status", func(a, b, c *fakeComet) {
			a.raw = map[string]func(http.ResponseWriter, *http.Request){"/status": func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","result":{"node_info":{}}`))
			}}
		}, nil, 100, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fa, a := newComet(t, "chain-1", 100)
			fb, b := newComet(t, "chain-1", 100)
			fc, c := newComet(t, "chain-1", 100)
			fa.mu.Lock()
			fb.mu.Lock()
			fc.mu.Lock()
			tc.setup(fa, fb, fc)
			fa.mu.Unlock()
			fb.mu.Unlock()
			fc.mu.Unlock()
			w := mustWatcher(t, cometConfig(newManualClock(), "chain-1", a, b, c))
			r := w.Check(context.Background()).Comet[0]
			if !errors.Is(r.Err, tc.wantErr) || (tc.wantErr == nil) != (r.Err == nil) {
				t.Fatalf("err = %v, want %v", r.Err, tc.wantErr)
			}
			if r.Finality.Height != tc.wantHeight {
				t.Fatalf("height %d, want %d", r.Finality.Height, tc.wantHeight)
			}
			if tc.failReason != "" {
				if got := metricValue(t, w.Metrics().EndpointFailures.WithLabelValues("chain-1", a, tc.failReason)); got != 1 {
					t.Fatalf("failure %q counted %v; failures %+v", tc.failReason, got, r.Failures)
				}
			}
		})
	}
}

func TestCometWaitsWhileDown(t *testing.T) {
	fa, a := newComet(t, "chain-1", 50)
	fb, b := newComet(t, "chain-1", 50)
	clk := newManualClock()
	w := mustWatcher(t, cometConfig(clk, "chain-1", a, b, deadURL(t)))
	done := startWait(context.Background(), w, cometMark(60))
	// Round 1: 50/50, third endpoint down. Then a advances alone.
	clk.step(t, time.Second, func() { fa.set(func(f *fakeComet) { f.height = 70 }) }) // round 2: 70/50 → 50
	clk.step(t, time.Second, func() { fb.set(func(f *fakeComet) { f.height = 65 }) }) // round 3: 70/65 → 65
	r := await(t, done)
	if r.err != nil || r.ev.Comet[0].Height != 65 || r.ev.Comet[0].BlockHash != testRoot(0, 65) {
		t.Fatalf("got %+v, %v", r.ev, r.err)
	}
	if got := metricValue(t, w.Metrics().Polls.WithLabelValues("chain-1")); got != 3 {
		t.Fatalf("polls %v, want 3", got)
	}
}
