package finality

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regent-signer/regent/slashing/eth"
)

// Beacon-node and CometBFT RPC paths the watcher asks.
const (
	pathGenesis     = "/eth/v1/beacon/genesis"
	pathCheckpoints = "/eth/v1/beacon/states/head/finality_checkpoints"
	pathFinalHeader = "/eth/v1/beacon/headers/finalized"
	pathStatus      = "/status"
	pathCommit      = "/commit?height="
)

// EthMark is the high-water mark of one Ethereum network: the highest block
// slot and attestation target epoch signed under the fenced lease epoch.
// It has the fields of leader.EthMark, so a conversion is a type cast.
type EthMark struct {
	MaxBlockSlot   uint64
	HasBlock       bool
	MaxTargetEpoch uint64
	HasAttestation bool
}

// HighWater is what WaitPast waits past: per Ethereum network (by genesis
// validators root) and per CometBFT chain id. It mirrors leader.HighWater.
type HighWater struct {
	Eth   map[eth.Root]EthMark
	Comet map[string]int64
}

// passedBy reports whether finality f is past m: its epoch above the
// highest attestation target (when there is one) and its first slot above
// the highest block slot (when there is one). A mark with neither is passed
// by any agreed finality.
func (m EthMark) passedBy(f EthFinality) bool {
	if m.HasAttestation && f.Epoch <= m.MaxTargetEpoch {
		return false
	}
	if m.HasBlock && f.FirstSlot <= m.MaxBlockSlot {
		return false
	}
	return true
}

// EthFinality is the finality a quorum of one network's beacon nodes agreed
// on in one round.
type EthFinality struct {
	Chain                 string
	GenesisValidatorsRoot eth.Root
	// Epoch and Root are the agreed finalized checkpoint (see agreeEth).
	Epoch uint64
	Root  eth.Root
	// FirstSlot is Epoch × SlotsPerEpoch: every slot below it is final.
	FirstSlot     uint64
	SlotsPerEpoch uint64
	Quorum        int
	Endpoints     int // configured
	// Agreeing are the answers at or above Epoch, sorted by endpoint. At
	// least Quorum of them.
	Agreeing []EthAnswer
}

// CometFinality is the block a quorum of one chain's CometBFT nodes agreed
// on in one round. CometBFT finality is immediate: a block with a commit is
// final.
type CometFinality struct {
	ChainID   string
	Height    int64
	BlockHash [32]byte
	Quorum    int
	Endpoints int // configured
	// Agreeing are the answers whose commit at Height named BlockHash,
	// sorted by endpoint. At least Quorum of them.
	Agreeing []CometAnswer
}

// Evidence is what WaitPast returns: for every chain of the HighWater it
// waited past, the agreed finality and the answers behind it, for the
// audit record and the ConfirmFinality command.
type Evidence struct {
	// ObservedAt is the clock's time when the deciding round started.
	ObservedAt time.Time
	Eth        []EthFinality   // sorted by genesis validators root
	Comet      []CometFinality // sorted by chain id
}

// Covers reports whether e shows every chain of h finalized past its mark:
// nil, or an error wrapping ErrUnknownChain (a chain of h without
// evidence), ErrNotPast, or ErrInvalidTarget. It also checks that each
// entry is self-consistent (FirstSlot = Epoch × SlotsPerEpoch, at least
// Quorum agreeing answers). It is pure and deterministic, so a state
// machine may re-check proposed evidence with it.
func (e Evidence) Covers(h HighWater) error {
	var errs []error
	for gvr, m := range h.Eth {
		i := slices.IndexFunc(e.Eth, func(f EthFinality) bool { return f.GenesisValidatorsRoot == gvr })
		if i < 0 {
			errs = append(errs, fmt.Errorf("%w: no evidence for network %x", ErrUnknownChain, gvr))
			continue
		}
		f := e.Eth[i]
		hi, lo := bits.Mul64(f.Epoch, f.SlotsPerEpoch)
		if f.SlotsPerEpoch == 0 || hi != 0 || lo != f.FirstSlot || f.Quorum < 1 || len(f.Agreeing) < f.Quorum {
			errs = append(errs, fmt.Errorf("%w: evidence for network %x is not self-consistent", ErrInvalidTarget, gvr))
			continue
		}
		if !m.passedBy(f) {
			errs = append(errs, fmt.Errorf("%w: %s: finalized epoch %d (first slot %d), mark: target %d (%t), slot %d (%t)",
				ErrNotPast, f.Chain, f.Epoch, f.FirstSlot, m.MaxTargetEpoch, m.HasAttestation, m.MaxBlockSlot, m.HasBlock))
		}
	}
	for id, height := range h.Comet {
		if height < 0 {
			errs = append(errs, fmt.Errorf("%w: chain %s: negative height %d", ErrInvalidTarget, id, height))
			continue
		}
		i := slices.IndexFunc(e.Comet, func(f CometFinality) bool { return f.ChainID == id })
		if i < 0 {
			errs = append(errs, fmt.Errorf("%w: no evidence for chain %s", ErrUnknownChain, id))
			continue
		}
		f := e.Comet[i]
		if f.Quorum < 1 || len(f.Agreeing) < f.Quorum {
			errs = append(errs, fmt.Errorf("%w: evidence for chain %s is not self-consistent", ErrInvalidTarget, id))
			continue
		}
		if f.Height <= height {
			errs = append(errs, fmt.Errorf("%w: %s: height %d, mark %d", ErrNotPast, id, f.Height, height))
		}
	}
	return errors.Join(errs...)
}

// EndpointFailure is one endpoint whose answer was not usable in a round.
type EndpointFailure struct {
	Endpoint string
	Err      error
}

// EthResult is one round's outcome for one Ethereum network.
type EthResult struct {
	Chain                 string
	GenesisValidatorsRoot eth.Root
	// Err is nil when a quorum agreed (Finality is then set), else wraps
	// ErrNoQuorum or ErrConflict.
	Err      error
	Finality EthFinality
	Answers  []EthAnswer // every usable answer, sorted by endpoint
	Failures []EndpointFailure
}

// CometResult is one round's outcome for one CometBFT chain.
type CometResult struct {
	ChainID  string
	Err      error // as for EthResult
	Finality CometFinality
	// Answers are every usable /status answer, sorted by endpoint; an
	// endpoint whose commit then failed is in Failures as well.
	Answers  []CometAnswer
	Failures []EndpointFailure
}

// Report is the outcome of one round over some or all chains.
type Report struct {
	At    time.Time
	Eth   []EthResult
	Comet []CometResult
}

type ethWatch struct {
	name   string
	gvr    eth.Root
	spe    uint64
	quorum int
	eps    []endpoint
}

type cometWatch struct {
	chainID string
	quorum  int
	eps     []endpoint
}

// Watcher asks a quorum of chain endpoints how far their chains have
// finalized. It is safe for concurrent use; rounds may overlap.
type Watcher struct {
	cfg   Config
	eth   []*ethWatch
	comet []*cometWatch
	fetch fetcher
	clock Clock
	log   *slog.Logger
	m     *Metrics

	mu         sync.Mutex
	last       Report
	lastReason map[string]string // chain+" "+endpoint → last failure reason ("" when fine)
	lastAgreed map[string]string // chain → last agreed finality, for logging changes
}

// New validates cfg, registers the metrics on cfg.Registerer and returns a
// Watcher. It does no I/O.
func New(cfg Config) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Watcher{
		cfg:        cfg,
		clock:      cfg.Clock,
		log:        cfg.Logger,
		lastReason: map[string]string{},
		lastAgreed: map[string]string{},
	}
	if w.clock == nil {
		w.clock = SystemClock()
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// An endpoint answers for itself: a redirect to another host
			// would let one operator's node stand in for another's.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	w.fetch = fetcher{client: client, timeout: cfg.RequestTimeout, limit: cfg.MaxResponseBytes}
	for _, ch := range cfg.Eth {
		ew := &ethWatch{name: ch.label(), gvr: ch.GenesisValidatorsRoot, spe: ch.slotsPerEpoch(), quorum: quorumOf(ch.Quorum, len(ch.Endpoints))}
		for _, raw := range ch.Endpoints {
			ep, err := newEndpoint(raw)
			if err != nil { // Validate checked; kept for safety
				return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
			}
			ew.eps = append(ew.eps, ep)
		}
		w.eth = append(w.eth, ew)
	}
	for _, ch := range cfg.Comet {
		cw := &cometWatch{chainID: ch.ChainID, quorum: quorumOf(ch.Quorum, len(ch.Endpoints))}
		for _, raw := range ch.Endpoints {
			ep, err := newEndpoint(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
			}
			cw.eps = append(cw.eps, ep)
		}
		w.comet = append(w.comet, cw)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	w.m = m
	return w, nil
}

// Metrics returns the watcher's metrics (for tests and status pages).
func (w *Watcher) Metrics() *Metrics { return w.m }

// Last returns the report of the most recent round (Check or a WaitPast
// round); zero before the first. The caller must not modify it.
func (w *Watcher) Last() Report {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// Check runs one round over every configured chain and returns its report.
// Every endpoint is asked concurrently, each request bounded by
// RequestTimeout and MaxResponseBytes.
func (w *Watcher) Check(ctx context.Context) Report {
	return w.round(ctx, w.eth, w.comet)
}

// WaitPast polls until every chain of target is finalized past its mark,
// then returns the evidence of that round:
//
//   - Ethereum: the agreed finalized epoch is above MaxTargetEpoch (when
//     HasAttestation) and its first slot is above MaxBlockSlot (when
//     HasBlock). A mark with neither needs only an agreed finality.
//   - CometBFT: the agreed height is above the mark's height.
//
// Only the chains of target are polled, once per PollInterval (on the
// injected Clock). A round without a quorum, with a conflict, or not yet
// past the mark confirms nothing; WaitPast logs it and polls again. It
// returns early, with an error wrapping ErrUnknownChain or
// ErrInvalidTarget, for a target it could never confirm, and, when ctx
// ends, an error wrapping ctx.Err() and the last round's reasons
// (ErrNoQuorum, ErrConflict, ErrNotPast). A target with no chain is
// passed at once by empty evidence. Evidence is never returned with an
// error.
func (w *Watcher) WaitPast(ctx context.Context, target HighWater) (Evidence, error) {
	ethSel, cometSel, err := w.selectChains(target)
	if err != nil {
		return Evidence{}, err
	}
	if len(ethSel) == 0 && len(cometSel) == 0 {
		return Evidence{ObservedAt: w.clock.Now()}, nil
	}
	var last error
	for {
		if err := ctx.Err(); err != nil {
			if last == nil {
				return Evidence{}, fmt.Errorf("finality: waiting past %s: %w", target, err)
			}
			return Evidence{}, fmt.Errorf("finality: waiting past %s: %w; last round: %w", target, err, last)
		}
		rep := w.round(ctx, ethSel, cometSel)
		ev, err := evidenceOf(rep, target)
		if err == nil {
			w.log.Info("finality past the high-water mark", "mark", target.String(), "evidence", ev.String())
			return ev, nil
		}
		last = err
		w.log.Debug("finality not yet past the high-water mark", "mark", target.String(), "err", err)
		select {
		case <-ctx.Done():
		case <-w.clock.After(w.cfg.PollInterval):
		}
	}
}

// selectChains returns the configured chains target names, or an error if
// it names one that is not configured or a negative height.
func (w *Watcher) selectChains(target HighWater) ([]*ethWatch, []*cometWatch, error) {
	var es []*ethWatch
	var cs []*cometWatch
	for gvr := range target.Eth {
		i := slices.IndexFunc(w.eth, func(e *ethWatch) bool { return e.gvr == gvr })
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: Ethereum network %x", ErrUnknownChain, gvr)
		}
		es = append(es, w.eth[i])
	}
	for id, h := range target.Comet {
		if h < 0 {
			return nil, nil, fmt.Errorf("%w: chain %s: negative height %d", ErrInvalidTarget, id, h)
		}
		i := slices.IndexFunc(w.comet, func(c *cometWatch) bool { return c.chainID == id })
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: CometBFT chain %s", ErrUnknownChain, id)
		}
		cs = append(cs, w.comet[i])
	}
	slices.SortFunc(es, func(a, b *ethWatch) int { return compareRoots(a.gvr, b.gvr) })
	slices.SortFunc(cs, func(a, b *cometWatch) int { return strings.Compare(a.chainID, b.chainID) })
	return es, cs, nil
}

// evidenceOf turns a round's report into evidence if every chain of target
// agreed past its mark.
func evidenceOf(rep Report, target HighWater) (Evidence, error) {
	ev := Evidence{ObservedAt: rep.At}
	var errs []error
	for _, r := range rep.Eth {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Chain, r.Err))
			continue
		}
		ev.Eth = append(ev.Eth, r.Finality)
	}
	for _, r := range rep.Comet {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.ChainID, r.Err))
			continue
		}
		ev.Comet = append(ev.Comet, r.Finality)
	}
	if len(errs) > 0 {
		return Evidence{}, errors.Join(errs...)
	}
	if err := ev.Covers(target); err != nil {
		return Evidence{}, err
	}
	return ev, nil
}

// round asks the given chains once, concurrently.
func (w *Watcher) round(ctx context.Context, es []*ethWatch, cs []*cometWatch) Report {
	rep := Report{At: w.clock.Now(), Eth: make([]EthResult, len(es)), Comet: make([]CometResult, len(cs))}
	var wg sync.WaitGroup
	for i, c := range es {
		wg.Go(func() { rep.Eth[i] = w.checkEth(ctx, c) })
	}
	for i, c := range cs {
		wg.Go(func() { rep.Comet[i] = w.checkComet(ctx, c) })
	}
	wg.Wait()
	w.mu.Lock()
	w.last = rep
	w.mu.Unlock()
	return rep
}

// askAll runs fn for every item concurrently and returns the results in
// item order.
func askAll[I, T any](items []I, fn func(I) (T, error)) ([]T, []error) {
	out := make([]T, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { out[i], errs[i] = fn(it) })
	}
	wg.Wait()
	return out, errs
}

func (w *Watcher) checkEth(ctx context.Context, c *ethWatch) EthResult {
	w.m.Polls.WithLabelValues(c.name).Inc()
	res := EthResult{Chain: c.name, GenesisValidatorsRoot: c.gvr}
	answers, errs := askAll(c.eps, func(ep endpoint) (EthAnswer, error) { return w.askBeacon(ctx, c, ep) })
	for i, ep := range c.eps {
		if errs[i] != nil {
			res.Failures = append(res.Failures, EndpointFailure{Endpoint: ep.name, Err: errs[i]})
		} else {
			res.Answers = append(res.Answers, answers[i])
		}
		w.noteEndpoint(c.name, ep.name, errs[i])
	}
	slices.SortFunc(res.Answers, func(a, b EthAnswer) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	epoch, root, agreeing, err := agreeEth(res.Answers, c.quorum)
	if err != nil {
		res.Err = err
		w.noteRefusal(c.name, err)
		return res
	}
	res.Finality = EthFinality{
		Chain: c.name, GenesisValidatorsRoot: c.gvr,
		Epoch: epoch, Root: root, FirstSlot: epoch * c.spe, SlotsPerEpoch: c.spe,
		Quorum: c.quorum, Endpoints: len(c.eps), Agreeing: agreeing,
	}
	w.m.AgreedEpoch.WithLabelValues(c.name).Set(float64(epoch))
	w.m.AgreeingCount.WithLabelValues(c.name).Set(float64(len(agreeing)))
	w.noteAgreed(c.name, fmt.Sprintf("epoch %d root %x", epoch, root), "epoch", epoch, "root", fmt.Sprintf("%x", root), "agreeing", len(agreeing))
	return res
}

// askBeacon asks one beacon node for its network, finalized checkpoint and
// finalized header, and checks them against each other.
func (w *Watcher) askBeacon(ctx context.Context, c *ethWatch, ep endpoint) (EthAnswer, error) {
	a := EthAnswer{Endpoint: ep.name}
	body, err := w.fetch.get(ctx, ep, pathGenesis)
	if err != nil {
		return a, err
	}
	g, err := DecodeGenesis(body)
	if err != nil {
		return a, fmt.Errorf("%s%s: %w", ep.name, pathGenesis, err)
	}
	if g.ValidatorsRoot != c.gvr {
		return a, fmt.Errorf("%w: %s: genesis_validators_root %x, want %x", ErrWrongNetwork, ep.name, g.ValidatorsRoot, c.gvr)
	}
	a.GenesisTime = g.Time
	if body, err = w.fetch.get(ctx, ep, pathCheckpoints); err != nil {
		return a, err
	}
	cp, err := DecodeFinalityCheckpoints(body)
	if err != nil {
		return a, fmt.Errorf("%s%s: %w", ep.name, pathCheckpoints, err)
	}
	if cp.ExecutionOptimistic && !w.cfg.AllowOptimistic {
		return a, fmt.Errorf("%w: %s: finality checkpoints", ErrOptimistic, ep.name)
	}
	if hi, _ := bits.Mul64(cp.Finalized.Epoch, c.spe); hi != 0 {
		return a, fmt.Errorf("%w: %s: finalized epoch %d", ErrImplausible, ep.name, cp.Finalized.Epoch)
	}
	a.Finalized = cp.Finalized
	a.ExecutionOptimistic = cp.ExecutionOptimistic
	if body, err = w.fetch.get(ctx, ep, pathFinalHeader); err != nil {
		return a, err
	}
	h, err := DecodeBlockHeader(body)
	if err != nil {
		return a, fmt.Errorf("%s%s: %w", ep.name, pathFinalHeader, err)
	}
	if h.ExecutionOptimistic && !w.cfg.AllowOptimistic {
		return a, fmt.Errorf("%w: %s: finalized header", ErrOptimistic, ep.name)
	}
	a.FinalizedBlockSlot, a.FinalizedBlockRoot = h.Slot, h.Root
	preFinality := cp.Finalized.Epoch == 0 && cp.Finalized.Root == (eth.Root{})
	if !preFinality {
		if h.Root != cp.Finalized.Root {
			return a, fmt.Errorf("%w: %s: finalized header root %x, finalized checkpoint root %x (epoch %d)",
				ErrInconsistent, ep.name, h.Root, cp.Finalized.Root, cp.Finalized.Epoch)
		}
		if h.Slot > cp.Finalized.Epoch*c.spe {
			return a, fmt.Errorf("%w: %s: finalized header slot %d after the first slot of epoch %d",
				ErrInconsistent, ep.name, h.Slot, cp.Finalized.Epoch)
		}
		if h.HasFinalized && !h.Finalized {
			return a, fmt.Errorf("%w: %s: finalized header marked not finalized", ErrInconsistent, ep.name)
		}
	}
	return a, nil
}

func (w *Watcher) checkComet(ctx context.Context, c *cometWatch) CometResult {
	w.m.Polls.WithLabelValues(c.chainID).Inc()
	res := CometResult{ChainID: c.chainID}
	statuses, errs := askAll(c.eps, func(ep endpoint) (CometAnswer, error) { return w.askStatus(ctx, c, ep) })
	failed := slices.Clone(errs)
	for i := range c.eps {
		if errs[i] == nil {
			res.Answers = append(res.Answers, statuses[i])
		}
	}
	slices.SortFunc(res.Answers, func(a, b CometAnswer) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	// Phase 2. Ask every endpoint at or above the candidate height for the
	// block it committed there. An endpoint whose commit cannot be had is
	// dropped and the candidate height recomputed without it, so that one
	// endpoint cannot stall agreement by claiming a height it will not
	// back with a commit. Each pass drops at least one endpoint or ends.
	var height int64
	var err error
	for {
		var live []CometAnswer
		for i := range c.eps {
			if failed[i] == nil {
				live = append(live, statuses[i])
			}
		}
		if height, err = cometHeight(live, c.quorum); err != nil {
			break
		}
		var asked []int
		for i := range c.eps {
			if failed[i] == nil && statuses[i].LatestHeight >= height {
				asked = append(asked, i)
			}
		}
		commits, cerrs := askAll(asked, func(i int) (CometAnswer, error) {
			return w.askCommit(ctx, c, c.eps[i], statuses[i], height)
		})
		var ok []CometAnswer
		dropped := false
		for j, i := range asked {
			if cerrs[j] != nil {
				failed[i], dropped = cerrs[j], true
				continue
			}
			ok = append(ok, commits[j])
		}
		var hash [32]byte
		var agreeing []CometAnswer
		hash, agreeing, err = cometAgree(ok, height, c.quorum)
		if err == nil {
			res.Finality = CometFinality{
				ChainID: c.chainID, Height: height, BlockHash: hash,
				Quorum: c.quorum, Endpoints: len(c.eps), Agreeing: agreeing,
			}
		}
		if err == nil || errors.Is(err, ErrConflict) || !dropped {
			break
		}
	}
	for i, ep := range c.eps {
		if failed[i] != nil {
			res.Failures = append(res.Failures, EndpointFailure{Endpoint: ep.name, Err: failed[i]})
		}
		w.noteEndpoint(c.chainID, ep.name, failed[i])
	}
	if err != nil {
		res.Err = err
		w.noteRefusal(c.chainID, err)
		return res
	}
	w.m.AgreedHeight.WithLabelValues(c.chainID).Set(float64(height))
	w.m.AgreeingCount.WithLabelValues(c.chainID).Set(float64(len(res.Finality.Agreeing)))
	w.noteAgreed(c.chainID, fmt.Sprintf("height %d hash %X", height, res.Finality.BlockHash),
		"height", height, "hash", fmt.Sprintf("%X", res.Finality.BlockHash), "agreeing", len(res.Finality.Agreeing))
	return res
}

func (w *Watcher) askStatus(ctx context.Context, c *cometWatch, ep endpoint) (CometAnswer, error) {
	a := CometAnswer{Endpoint: ep.name}
	body, err := w.fetch.get(ctx, ep, pathStatus)
	if err != nil {
		return a, err
	}
	st, err := DecodeCometStatus(body)
	if err != nil {
		return a, fmt.Errorf("%s%s: %w", ep.name, pathStatus, err)
	}
	if st.Network != c.chainID {
		return a, fmt.Errorf("%w: %s: network %q, want %q", ErrWrongNetwork, ep.name, st.Network, c.chainID)
	}
	if st.CatchingUp || st.LatestHeight < 1 {
		return a, fmt.Errorf("%w: %s: catching_up %t, latest height %d", ErrCatchingUp, ep.name, st.CatchingUp, st.LatestHeight)
	}
	a.LatestHeight, a.LatestHash = st.LatestHeight, st.LatestHash
	return a, nil
}

// askCommit asks one node for its commit at height and checks it against
// the node's own status answer st.
func (w *Watcher) askCommit(ctx context.Context, c *cometWatch, ep endpoint, st CometAnswer, height int64) (CometAnswer, error) {
	path := pathCommit + strconv.FormatInt(height, 10)
	body, err := w.fetch.get(ctx, ep, path)
	if err != nil {
		return st, err
	}
	cm, err := DecodeCometCommit(body)
	if err != nil {
		return st, fmt.Errorf("%s%s: %w", ep.name, path, err)
	}
	if cm.ChainID != c.chainID {
		return st, fmt.Errorf("%w: %s: commit for chain %q, want %q", ErrInconsistent, ep.name, cm.ChainID, c.chainID)
	}
	if cm.Height != height {
		return st, fmt.Errorf("%w: %s: asked for the commit at %d, got %d", ErrInconsistent, ep.name, height, cm.Height)
	}
	if st.LatestHeight == height && st.LatestHash != cm.BlockHash {
		return st, fmt.Errorf("%w: %s: status names block %X at height %d, commit names %X",
			ErrInconsistent, ep.name, st.LatestHash, height, cm.BlockHash)
	}
	st.CommitHash, st.CommitCanonical = cm.BlockHash, cm.Canonical
	return st, nil
}

// noteEndpoint counts a failure and logs an endpoint's change of state at
// Warn (failing, or failing for a new reason) or Info (recovered); repeats
// go to Debug so a dead endpoint does not flood the log.
func (w *Watcher) noteEndpoint(chain, ep string, err error) {
	reason := ""
	if err != nil {
		reason = reasonOf(err)
		w.m.EndpointFailures.WithLabelValues(chain, ep, reason).Inc()
	}
	key := chain + " " + ep
	w.mu.Lock()
	prev, seen := w.lastReason[key]
	w.lastReason[key] = reason
	w.mu.Unlock()
	switch {
	case err != nil && prev != reason:
		w.log.Warn("finality endpoint answer not usable", "chain", chain, "endpoint", ep, "reason", reason, "err", err)
	case err != nil:
		w.log.Debug("finality endpoint answer not usable", "chain", chain, "endpoint", ep, "reason", reason, "err", err)
	case seen && prev != "":
		w.log.Info("finality endpoint answers again", "chain", chain, "endpoint", ep)
	}
}

// noteRefusal counts and logs a round that agreed on nothing.
func (w *Watcher) noteRefusal(chain string, err error) {
	if errors.Is(err, ErrConflict) {
		w.m.Conflicts.WithLabelValues(chain).Inc()
		w.log.Error("finality refused: endpoints disagree", "chain", chain, "err", err)
		return
	}
	w.m.NoQuorum.WithLabelValues(chain).Inc()
	w.log.Warn("finality: no quorum", "chain", chain, "err", err)
}

// noteAgreed logs an agreement at Info when it changed, else at Debug.
func (w *Watcher) noteAgreed(chain, summary string, attrs ...any) {
	w.mu.Lock()
	changed := w.lastAgreed[chain] != summary
	w.lastAgreed[chain] = summary
	w.mu.Unlock()
	level := slog.LevelDebug
	if changed {
		level = slog.LevelInfo
	}
	w.log.Log(context.Background(), level, "finality agreed", append([]any{"chain", chain}, attrs...)...)
}

// String renders the mark in a stable order, for logs and errors.
func (h HighWater) String() string {
	var parts []string
	roots := make([]eth.Root, 0, len(h.Eth))
	for r := range h.Eth {
		roots = append(roots, r)
	}
	slices.SortFunc(roots, compareRoots)
	for _, r := range roots {
		m := h.Eth[r]
		s := fmt.Sprintf("eth %x:", r[:4])
		if m.HasBlock {
			s += fmt.Sprintf(" slot %d", m.MaxBlockSlot)
		}
		if m.HasAttestation {
			s += fmt.Sprintf(" target %d", m.MaxTargetEpoch)
		}
		parts = append(parts, s)
	}
	ids := make([]string, 0, len(h.Comet))
	for id := range h.Comet {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s: height %d", id, h.Comet[id]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// String summarises the evidence for logs.
func (e Evidence) String() string {
	var parts []string
	for _, f := range e.Eth {
		parts = append(parts, fmt.Sprintf("%s: epoch %d root %x (%d/%d endpoints)", f.Chain, f.Epoch, f.Root[:4], len(f.Agreeing), f.Endpoints))
	}
	for _, f := range e.Comet {
		parts = append(parts, fmt.Sprintf("%s: height %d hash %X (%d/%d endpoints)", f.ChainID, f.Height, f.BlockHash[:4], len(f.Agreeing), f.Endpoints))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}
