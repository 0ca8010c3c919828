package keysync

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/signer/bls"
)

// Guard defaults.
const (
	// DefaultBarrierTimeout bounds the Raft barrier a new holder runs.
	DefaultBarrierTimeout = 5 * time.Second
	// DefaultUnsealTimeout bounds one UnsealAll.
	DefaultUnsealTimeout = 2 * time.Minute
	// DefaultGuardRetryMax caps the back-off between failed loads.
	DefaultGuardRetryMax = 5 * time.Second
)

// GuardConfig configures a Guard.
type GuardConfig struct {
	// Region is this region's id, compared with the lease holder.
	Region  string
	State   StateView
	Barrier Barrier
	// Store holds the region's sealed BLS keys.
	Store SealedStore
	// HSM signs with Ed25519 keys; nil refuses every Ed25519 signature.
	HSM EdSigner
	// Interval is the lease poll interval: keys are zeroed at most this long
	// after this node applied the entry that took the lease away (sooner
	// with Kick). Zero means DefaultInterval.
	Interval time.Duration
	// BarrierTimeout: zero means DefaultBarrierTimeout.
	BarrierTimeout time.Duration
	// UnsealTimeout: zero means DefaultUnsealTimeout.
	UnsealTimeout time.Duration
	// RetryMax caps the back-off of failed barriers and unseals; zero means
	// DefaultGuardRetryMax.
	RetryMax time.Duration
	// Logger: nil discards.
	Logger *slog.Logger
	// Now: nil means time.Now.
	Now func() time.Time
}

// GuardStats are the Guard's counters since start.
type GuardStats struct {
	Loads           uint64 // key sets unsealed and made live (first load and refreshes)
	LoadFailures    uint64 // failed UnsealAll
	BarrierFailures uint64 // failed barriers
	Zeroed          uint64 // live key sets zeroed because the lease was lost or the guard stopped
	Refused         uint64 // signatures refused because keys are not live
	Epoch           uint64 // lease epoch signing is allowed under; 0 when not holding
}

// Guard opens this region's keys only while it holds the lease (I5) and
// signs with them: it implements pipeline.BLSKeys and pipeline.EdSigner.
//
// Two goroutines started by Run watch the lease in the locally applied
// state. The watcher, every Interval, zeroes the unsealed key set and stops
// Ed25519 signing as soon as the lease is not active with this region as
// holder at the epoch the keys were opened for (fenced, moved, vacant, or a
// new epoch). The loader, once this region holds the lease, runs a Raft
// barrier (once per epoch), allows Ed25519 signing, unseals every BLS key
// (Store.UnsealAll) and swaps the set in; Refresh makes it unseal again
// after keys were added or removed. The watcher never waits for the HSM, so
// a slow unseal cannot delay zeroing.
//
// SignBLS reads the live set through an atomic pointer: no lock of the
// Guard's on the signing path.
type Guard struct {
	cfg GuardConfig
	log *slog.Logger

	cur     atomic.Pointer[liveSet]
	edEpoch atomic.Uint64 // epoch Ed25519 signing is allowed under; 0 = no
	refresh atomic.Bool

	kickWatch chan struct{}
	kickLoad  chan struct{}

	loads, loadFailures, barrierFailures, zeroed, refused atomic.Uint64
}

// liveSet is an unsealed key set and the lease epoch it was opened under.
type liveSet struct {
	keys  *bls.KeySet
	epoch uint64
}

// NewGuard returns a Guard; nothing is unsealed until Run sees the lease.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	switch {
	case cfg.Region == "":
		return nil, fmt.Errorf("%w: guard Region is required", ErrConfig)
	case cfg.State == nil || cfg.Barrier == nil || cfg.Store == nil:
		return nil, fmt.Errorf("%w: guard State, Barrier and Store are required", ErrConfig)
	case cfg.Interval < 0 || cfg.BarrierTimeout < 0 || cfg.UnsealTimeout < 0 || cfg.RetryMax < 0:
		return nil, fmt.Errorf("%w: negative guard interval", ErrConfig)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.BarrierTimeout == 0 {
		cfg.BarrierTimeout = DefaultBarrierTimeout
	}
	if cfg.UnsealTimeout == 0 {
		cfg.UnsealTimeout = DefaultUnsealTimeout
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = DefaultGuardRetryMax
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Guard{
		cfg: cfg, log: cfg.Logger.With("region", cfg.Region),
		kickWatch: make(chan struct{}, 1), kickLoad: make(chan struct{}, 1),
	}, nil
}

// Run watches the lease until ctx ends, then zeroes the keys. It returns
// ctx.Err().
func (g *Guard) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { g.watch(ctx) })
	wg.Go(func() { g.load(ctx) })
	wg.Wait()
	g.drop("guard stopped", leader.Lease{})
	return ctx.Err()
}

// Kick makes the guard look at the lease now instead of at the next poll
// (wire it to the FSM's apply hook for lease commands). It never blocks.
func (g *Guard) Kick() { poke(g.kickWatch) }

// Refresh asks the loader to unseal the store again and swap the new set in
// while this region holds the lease (after keys were added or removed). It
// never blocks; refreshes coalesce.
func (g *Guard) Refresh() {
	g.refresh.Store(true)
	poke(g.kickLoad)
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Loaded reports how many BLS keys are unsealed and whether this region is
// signing (holds the lease and passed its barrier).
func (g *Guard) Loaded() (n int, holding bool) {
	if p := g.cur.Load(); p != nil {
		n = p.keys.Len()
	}
	return n, g.edEpoch.Load() != 0
}

// Stats returns the guard's counters.
func (g *Guard) Stats() GuardStats {
	return GuardStats{
		Loads: g.loads.Load(), LoadFailures: g.loadFailures.Load(), BarrierFailures: g.barrierFailures.Load(),
		Zeroed: g.zeroed.Load(), Refused: g.refused.Load(), Epoch: g.edEpoch.Load(),
	}
}

// SignBLS implements pipeline.BLSKeys: it signs root with the unsealed key
// pk. It fails with ErrNotHolder while this region does not hold the lease,
// ErrKeysNotLoaded while it holds it but has not unsealed its keys, and
// ErrKeyNotHere (wrapping bls.ErrKeyNotLoaded) when the set lacks pk. It
// does not check slashing protection: the pipeline calls it only for
// committed, accepted records (I1).
func (g *Guard) SignBLS(pk bls.PublicKey, root [32]byte) ([96]byte, error) {
	var out [96]byte
	for range 2 {
		p := g.cur.Load()
		if p == nil {
			return out, g.notLive()
		}
		sig, err := p.keys.Sign(pk, root)
		if err == nil {
			return sig, nil
		}
		if !errors.Is(err, bls.ErrKeyNotLoaded) {
			return out, err
		}
		if g.cur.Load() == p {
			return out, fmt.Errorf("%w: %w", ErrKeyNotHere, err)
		}
		// The set was swapped or zeroed during the call: look again once.
	}
	return out, g.notLive()
}

// CanSignBLS reports whether SignBLS could sign with pk now (same errors,
// without signing). The pipeline asks before it commits a record, so a
// holder missing a key refuses without writing one; the answer can change
// before SignBLS runs (a fence zeroes the set), which SignBLS still
// catches.
func (g *Guard) CanSignBLS(pk bls.PublicKey) error {
	p := g.cur.Load()
	if p == nil {
		return g.notLive()
	}
	if !p.keys.Has(pk) {
		return fmt.Errorf("%w: %w", ErrKeyNotHere, bls.ErrKeyNotLoaded)
	}
	return nil
}

func (g *Guard) notLive() error {
	g.refused.Add(1)
	if e := g.edEpoch.Load(); e != 0 {
		return fmt.Errorf("%w (lease epoch %d)", ErrKeysNotLoaded, e)
	}
	return ErrNotHolder
}

// SignEd25519 implements pipeline.EdSigner: the HSM signs msg with the key
// labelled EdLabel(pubkey), and the signature is checked against pubkey
// before it is returned. It fails with ErrNotHolder while this region does
// not hold the lease.
func (g *Guard) SignEd25519(ctx context.Context, pubkey []byte, msg []byte) ([]byte, error) {
	if len(pubkey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrInvalidInput, len(pubkey))
	}
	if g.edEpoch.Load() == 0 {
		g.refused.Add(1)
		return nil, ErrNotHolder
	}
	if g.cfg.HSM == nil {
		return nil, fmt.Errorf("%w: no HSM configured for Ed25519 signing", ErrConfig)
	}
	sig, err := g.cfg.HSM.Sign(ctx, EdLabel(pubkey), msg)
	if err != nil {
		return nil, fmt.Errorf("%w: sign with %x: %w", ErrHSM, pubkey, err)
	}
	if !ed25519.Verify(pubkey, msg, sig) {
		return nil, fmt.Errorf("%w: the signature of HSM key %s does not verify under %x", ErrHSM, EdLabel(pubkey), pubkey)
	}
	return sig, nil
}

// lease reads the lease from the applied state.
func (g *Guard) lease() leader.Lease {
	var l leader.Lease
	g.cfg.State.View(func(s *leader.State, _ uint64) { l = s.Lease() })
	return l
}

func (g *Guard) holds(l leader.Lease) bool {
	return l.State == leader.LeaseActive && l.Holder == g.cfg.Region
}

// stillHolding reports whether the applied state still gives this region the
// lease at epoch.
func (g *Guard) stillHolding(epoch uint64) bool {
	l := g.lease()
	return g.holds(l) && l.Epoch == epoch
}

// watch is the fast loop: it only reads the state and zeroes.
func (g *Guard) watch(ctx context.Context) {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		g.check()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.kickWatch:
		}
	}
}

// check zeroes whatever does not match the lease and wakes the loader when
// this region holds the lease without live keys.
func (g *Guard) check() {
	l := g.lease()
	if !g.holds(l) {
		if g.edEpoch.Load() != 0 || g.cur.Load() != nil {
			g.drop("lease not held", l)
		}
		return
	}
	if e := g.edEpoch.Load(); e != 0 && e != l.Epoch {
		g.drop("lease epoch changed", l)
	}
	if p := g.cur.Load(); p != nil && p.epoch != l.Epoch {
		g.drop("lease epoch changed", l)
	}
	if g.edEpoch.Load() == 0 || g.cur.Load() == nil {
		poke(g.kickLoad)
	}
}

// drop stops signing and zeroes the live set, if any.
func (g *Guard) drop(reason string, l leader.Lease) {
	was := g.edEpoch.Swap(0)
	old := g.cur.Swap(nil)
	if old != nil {
		old.keys.Zero()
		g.zeroed.Add(1)
	}
	if was != 0 || old != nil {
		n := 0
		if old != nil {
			n = old.keys.Len()
		}
		g.log.Info("signing keys closed", "reason", reason, "keys_zeroed", n, "lease_epoch", was,
			"lease_state", l.State.String(), "lease_holder", l.Holder, "new_lease_epoch", l.Epoch)
	}
}

// load is the slow loop: barrier, unseal, swap in.
func (g *Guard) load(ctx context.Context) {
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	var (
		barrierEpoch uint64
		attempts     int
		next         time.Time
	)
	fail := func() {
		attempts++
		d := g.cfg.Interval
		for i := 1; i < attempts && d < g.cfg.RetryMax; i++ {
			d *= 2
		}
		next = g.cfg.Now().Add(min(d, g.cfg.RetryMax))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.kickLoad:
		}
		if g.cfg.Now().Before(next) {
			continue
		}
		l := g.lease()
		if !g.holds(l) {
			continue
		}
		if barrierEpoch != l.Epoch {
			if err := g.cfg.Barrier.Barrier(g.cfg.BarrierTimeout); err != nil {
				g.barrierFailures.Add(1)
				fail()
				g.log.Warn("lease held but the barrier failed; keys stay sealed", "lease_epoch", l.Epoch, "attempt", attempts, "err", err)
				continue
			}
			barrierEpoch = l.Epoch
		}
		if !g.stillHolding(l.Epoch) {
			continue
		}
		if g.edEpoch.CompareAndSwap(0, l.Epoch) {
			g.log.Info("lease held: Ed25519 signing allowed", "lease_epoch", l.Epoch)
			if !g.stillHolding(l.Epoch) {
				g.edEpoch.CompareAndSwap(l.Epoch, 0)
				continue
			}
		}
		p := g.cur.Load()
		if p != nil && p.epoch == l.Epoch && !g.refresh.Load() {
			continue
		}
		g.refresh.Store(false)
		uctx, cancel := context.WithTimeout(ctx, g.cfg.UnsealTimeout)
		ks, err := g.cfg.Store.UnsealAll(uctx)
		cancel()
		if err != nil {
			g.loadFailures.Add(1)
			if p != nil {
				g.refresh.Store(true) // keep the current set, try again later
			}
			fail()
			g.log.Warn("cannot unseal the BLS keys", "lease_epoch", l.Epoch, "attempt", attempts, "err", err)
			continue
		}
		if !g.stillHolding(l.Epoch) || !g.cur.CompareAndSwap(p, &liveSet{keys: ks, epoch: l.Epoch}) {
			ks.Zero()
			continue
		}
		if p != nil {
			p.keys.Zero()
		}
		attempts, next = 0, time.Time{}
		g.loads.Add(1)
		g.log.Info("BLS keys unsealed", "keys", ks.Len(), "lease_epoch", l.Epoch, "refresh", p != nil, "memory_locked", ks.MemoryLocked())
		g.check() // the lease may have moved while unsealing
	}
}
