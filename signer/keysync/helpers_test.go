package keysync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	blst "github.com/supranational/blst/bindings/go"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/hsm"
	"github.com/regent-signer/regent/signer/hsm/hsmtest"
	"github.com/regent-signer/regent/signer/keystore"
	"github.com/regent-signer/regent/signer/pipeline"
)

// The Guard is what the sign pipeline signs through; the HSM and the store
// are what the lead wires in.
var (
	_ pipeline.BLSKeys  = (*Guard)(nil)
	_ pipeline.EdSigner = (*Guard)(nil)
	_ HSM               = (*hsm.HSM)(nil)
	_ EdSigner          = (*hsm.HSM)(nil)
	_ SealedStore       = (*bls.Store)(nil)
	_ StateView         = (*fsm.FSM[*leader.State])(nil)
	_ Barrier           = (*leader.Service)(nil)
	_ Proposer          = (*leader.Service)(nil)
)

const (
	testPIN       = "1234"
	sealLabel     = "regent-seal"
	genesisHolder = "genesis"
	// guardInterval is the guard's poll interval in these tests.
	guardInterval = 100 * time.Millisecond
)

var testGVR = [32]byte{0xaa, 0xbb, 0xcc, 1, 2, 3}

// cluster is three regions in one process over one replicated state: a
// leader.LocalMachine's FSM (no Raft). Every proposal is applied at once, in
// order, stamped with the proposing region as the envelope's proposer (the
// LocalMachine's own Apply stamps its holder, which RegisterRegion refuses,
// so proposals go through apply below).
type cluster struct {
	t   *testing.T
	mod *hsm.Module
	m   *leader.LocalMachine

	mu    sync.Mutex
	index uint64
	now   int64

	proposals atomic.Int64
	regions   map[string]*region
}

type region struct {
	id       string
	hsm      *hsm.HSM
	store    *bls.Store
	mgr      *Manager
	guard    *Guard
	barrier  *testBarrier
	logs     *logBuffer
	cancel   context.CancelFunc
	stopped  chan struct{}
	stopOnce sync.Once
}

// newCluster creates a SoftHSM2 token per id (one PKCS#11 module for the
// process) and the shared state, with the lease held by a "genesis" member
// that is no region, so that no region starts as holder.
func newCluster(t *testing.T, ids ...string) *cluster {
	t.Helper()
	env := hsmtest.New(t)
	for _, id := range ids {
		env.InitToken(t, id, testPIN)
	}
	mod, err := hsm.LoadModule(env.Module)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mod.Close(); err != nil {
			t.Errorf("module close: %v", err)
		}
	})
	m, err := leader.NewLocalMachine(genesisHolder)
	if err != nil {
		t.Fatal(err)
	}
	servers := []raft.Server{{ID: genesisHolder, Address: genesisHolder, Suffrage: raft.Voter}}
	for _, id := range ids {
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id), Suffrage: raft.Voter})
	}
	m.FSM.ApplyBatch([]*raft.Log{{Index: 3, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{Servers: servers})}})
	return &cluster{t: t, mod: mod, m: m, index: 10, regions: map[string]*region{}}
}

// apply writes one command proposed by proposer.
func (c *cluster) apply(proposer string, t commandpb.CommandType, msg proto.Message) (fsm.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proposals.Add(1)
	c.index++
	c.now += 1e9
	data, err := fsm.Encode(t, msg, proposer, c.now)
	if err != nil {
		return fsm.Response{}, err
	}
	resp := c.m.FSM.Apply(&raft.Log{Index: c.index, Term: 1, Type: raft.LogCommand, Data: data}).(fsm.Response)
	return resp, resp.Err
}

func (c *cluster) mustApply(proposer string, t commandpb.CommandType, msg proto.Message) {
	c.t.Helper()
	if _, err := c.apply(proposer, t, msg); err != nil {
		c.t.Fatalf("apply %v: %v", t, err)
	}
}

// stateBytes is the replicated state's snapshot without its header.
func (c *cluster) stateBytes() []byte {
	c.t.Helper()
	var b bytes.Buffer
	if err := c.m.FSM.WriteSnapshot(&b); err != nil {
		c.t.Fatal(err)
	}
	return b.Bytes()[20:]
}

func (c *cluster) lease() leader.Lease {
	var l leader.Lease
	c.m.FSM.View(func(s *leader.State, _ uint64) { l = s.Lease() })
	return l
}

// moveLease fences the current lease and activates holder at the next epoch.
func (c *cluster) moveLease(holder string) uint64 {
	c.t.Helper()
	l := c.lease()
	if l.State == leader.LeaseActive {
		c.mustApply(genesisHolder, commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: l.Epoch, Reason: "test"})
	}
	c.mustApply(genesisHolder, commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: holder, Epoch: l.Epoch + 1, Reason: "test"})
	return l.Epoch + 1
}

func (c *cluster) fence() {
	c.t.Helper()
	c.mustApply(genesisHolder, commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: c.lease().Epoch, Reason: "test"})
}

type regionProposer struct {
	c  *cluster
	id string
}

func (p regionProposer) Propose(_ context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error) {
	return p.c.apply(p.id, t, msg)
}

// testBarrier counts calls and fails while failing is set.
type testBarrier struct {
	calls   atomic.Int64
	failing atomic.Bool
}

var errBarrier = errors.New("test barrier: no quorum")

func (b *testBarrier) Barrier(time.Duration) error {
	b.calls.Add(1)
	if b.failing.Load() {
		return errBarrier
	}
	return nil
}

// logBuffer collects a region's log output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type regionOpts struct {
	guardInterval time.Duration
	noRun         bool // build the Manager and Guard without running them
}

// addRegion opens the region's token, its store and sealing key, and runs
// its Manager and Guard until the test ends (or stop). Unless noRun, it
// waits until the region registered its wrapping key.
func (c *cluster) addRegion(id string, o regionOpts) *region {
	t := c.t
	t.Helper()
	h, err := c.mod.Open(hsm.Config{TokenLabel: id, PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("hsm close: %v", err)
		}
	})
	if err := h.EnsureSealingKey(t.Context(), sealLabel); err != nil {
		t.Fatal(err)
	}
	store, err := bls.NewStore(filepath.Join(t.TempDir(), id), h.SealingKey(sealLabel), bls.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := &region{id: id, hsm: h, store: store, barrier: &testBarrier{}, logs: &logBuffer{}, stopped: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.guardInterval == 0 {
		o.guardInterval = guardInterval
	}
	r.guard, err = NewGuard(GuardConfig{Region: id, State: c.m.FSM, Barrier: r.barrier, Store: store, HSM: h,
		Interval: o.guardInterval, RetryMax: 200 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r.mgr, err = New(Config{Region: id, GenesisValidatorsRoot: testGVR, Proposer: regionProposer{c, id}, State: c.m.FSM,
		HSM: h, Store: store, Guard: r.guard, Interval: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	c.regions[id] = r
	if o.noRun {
		close(r.stopped)
		return r
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.mgr.Run(ctx) })
	wg.Go(func() { _ = r.guard.Run(ctx) })
	go func() { wg.Wait(); close(r.stopped) }()
	t.Cleanup(r.stop) // runs before the HSM is closed
	waitFor(t, 20*time.Second, id+" registered", func() bool { return r.mgr.Stats().Registered })
	return r
}

func (r *region) stop() {
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
		}
		<-r.stopped
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		<-tick.C
	}
}

// blsKey derives a BLS key from a name.
func blsKey(name string) (secret []byte, pk bls.PublicKey) {
	ikm := sha256.Sum256([]byte("bls " + name))
	sk := blst.KeyGen(ikm[:])
	copy(pk[:], new(blst.P1Affine).From(sk).Compress())
	return sk.Serialize(), pk
}

// testKeystore is an EIP-2335 keystore (cheap PBKDF2) of the key named name.
func testKeystore(t *testing.T, name, password string) ([]byte, []byte, bls.PublicKey) {
	t.Helper()
	secret, pk := blsKey(name)
	ks, err := keystore.Encrypt(secret, password, keystore.KDF{Function: "pbkdf2", C: 16})
	if err != nil {
		t.Fatal(err)
	}
	return ks, secret, pk
}

// cometKey is a CometBFT priv_validator_key.json of the key named name.
func cometKey(name string) ([]byte, ed25519.PrivateKey) {
	seed := sha256.Sum256([]byte("ed25519 " + name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	pub := priv.Public().(ed25519.PublicKey)
	addr := sha256.Sum256(pub)
	j := fmt.Sprintf(`{"address":%q,"pub_key":{"type":"tendermint/PubKeyEd25519","value":%q},"priv_key":{"type":"tendermint/PrivKeyEd25519","value":%q}}`,
		strings.ToUpper(hex.EncodeToString(addr[:20])), base64.StdEncoding.EncodeToString(pub), base64.StdEncoding.EncodeToString(priv))
	return []byte(j), priv
}

// verifyBLS checks sig with blst, independently of the signer.
func verifyBLS(t *testing.T, pk bls.PublicKey, root [32]byte, sig [96]byte) {
	t.Helper()
	p := new(blst.P1Affine).Uncompress(pk[:])
	s := new(blst.P2Affine).Uncompress(sig[:])
	if p == nil || s == nil || !s.Verify(true, p, true, root[:], []byte(bls.DST)) {
		t.Fatalf("BLS signature %x does not verify under %s", sig[:8], pk)
	}
}

// hasSealed reports whether r's store holds pk.
func (r *region) hasSealed(t *testing.T, pk bls.PublicKey) bool {
	t.Helper()
	pks, err := r.store.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pks {
		if p == pk {
			return true
		}
	}
	return false
}

// hasEd reports whether r's HSM holds the Ed25519 key pub.
func (r *region) hasEd(t *testing.T, pub []byte) bool {
	t.Helper()
	got, err := r.hsm.PublicKey(t.Context(), EdLabel(pub))
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(got.Bytes, pub)
}

func (r *region) sealedFile(t *testing.T, pk bls.PublicKey) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.store.Dir(), hex.EncodeToString(pk[:])+".sealed"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lastErr is the last install error r's Manager recorded for pubkey.
func (r *region) lastErr(pubkey []byte) error {
	r.mgr.mu.Lock()
	defer r.mgr.mu.Unlock()
	return r.mgr.lastErr[string(pubkey)]
}

// condition is what r's Manager noted about pubkey in its last pass.
func (r *region) condition(pubkey []byte) string {
	r.mgr.syncMu.Lock()
	defer r.mgr.syncMu.Unlock()
	return r.mgr.noted[string(pubkey)]
}
