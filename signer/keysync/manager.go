package keysync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/hsm"
	"github.com/regent-signer/regent/signer/keystore"
	"github.com/regent-signer/regent/slashing/eth"
)

// Defaults of Config and GuardConfig.
const (
	// DefaultInterval is how often the sync loop and the guard look at the
	// replicated state.
	DefaultInterval = 100 * time.Millisecond
	// DefaultFullSyncInterval is how often the sync loop re-reads the local
	// stores although the replicated state did not change.
	DefaultFullSyncInterval = 30 * time.Second
	// DefaultRetryMax caps the back-off between attempts to install one key.
	DefaultRetryMax = time.Minute
	// DefaultProposeTimeout bounds one proposal made by the sync loop.
	DefaultProposeTimeout = 10 * time.Second
	// DeleteReason is the DisableKey reason DeleteKey records.
	DeleteReason = "deleted through the Keymanager API"
	// maxChainID bounds a CometBFT chain id (the registry's network limit).
	maxChainID = 256
)

// Config configures a Manager.
type Config struct {
	// Region is this region's id: its Raft node id and the name it registers
	// its wrapping key under.
	Region string
	// GenesisValidatorsRoot is the Ethereum network imported BLS keys are
	// registered for. Zero means no Ethereum network: ImportKeystore fails.
	GenesisValidatorsRoot [32]byte
	// WrapKeyLabel is the label of the region's RSA wrapping key; empty
	// means hsm.DefaultWrapKeyLabel.
	WrapKeyLabel string
	Proposer     Proposer
	State        StateView
	HSM          HSM
	Store        SealedStore
	// Guard, when set, is asked to re-unseal after the sync loop added or
	// removed a BLS key, so the live key set follows the registry.
	Guard *Guard
	// Interval is the poll interval of Run; zero means DefaultInterval.
	Interval time.Duration
	// FullSyncInterval: zero means DefaultFullSyncInterval.
	FullSyncInterval time.Duration
	// RetryMax caps the per-key retry back-off; zero means DefaultRetryMax.
	RetryMax time.Duration
	// ProposeTimeout bounds a RegisterRegion proposal of the sync loop;
	// zero means DefaultProposeTimeout.
	ProposeTimeout time.Duration
	// Logger: nil discards.
	Logger *slog.Logger
	// Now: nil means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	switch {
	case c.Region == "":
		return fmt.Errorf("%w: Region is required", ErrConfig)
	case c.Proposer == nil || c.State == nil || c.HSM == nil || c.Store == nil:
		return fmt.Errorf("%w: Proposer, State, HSM and Store are required", ErrConfig)
	case c.Interval < 0 || c.FullSyncInterval < 0 || c.RetryMax < 0 || c.ProposeTimeout < 0:
		return fmt.Errorf("%w: negative interval", ErrConfig)
	}
	if c.WrapKeyLabel == "" {
		c.WrapKeyLabel = hsm.DefaultWrapKeyLabel
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.FullSyncInterval == 0 {
		c.FullSyncInterval = DefaultFullSyncInterval
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.ProposeTimeout == 0 {
		c.ProposeTimeout = DefaultProposeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// ListedKey is one registry key with its state in this region.
type ListedKey struct {
	Pubkey  []byte
	Scheme  commandpb.Scheme
	Network string // 0x-hex genesis validators root, or CometBFT chain id
	Label   string
	// Local: this region holds the key (sealed in its store, or in its HSM)
	// as of the last sync pass.
	Local    bool
	Disabled bool
}

// ManagerStats are the Manager's counters (since start) and the gauges of
// its last sync pass.
type ManagerStats struct {
	Passes            uint64 // sync passes run
	Synced            uint64 // keys unwrapped and installed here
	SyncFailures      uint64 // failed attempts to unwrap or install a key
	Removed           uint64 // local copies of disabled keys deleted
	RemoveFailures    uint64 // failed attempts to delete a local copy
	RegisterFailures  uint64 // failed RegisterRegion proposals
	LocalReadFailures uint64 // failed listings of the store or HSM, or of the wrapping key
	WrongWrapKeyTotal uint64 // keys found wrapped to a key that is not this region's

	Registered   bool // the state holds this region's current wrapping key
	Pending      int  // enabled keys wrapped for this region, not installed yet
	NotWrapped   int  // enabled keys with no wrapped secret for this region
	WrongWrapKey int  // enabled keys wrapped to another key of this region
	Orphans      int  // keys held here that the registry does not list
}

// Manager distributes imported keys to this region: it registers the
// region's wrapping key, imports keystores (wrapping them for every
// registered region), installs keys wrapped for this region, deletes the
// local copies of disabled keys, and lists keys. It is safe for concurrent
// use; Run must run for keys to be installed.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	network string // RootHex of GenesisValidatorsRoot, "" if unset
	kick    chan struct{}

	wrapMu  sync.Mutex
	wrapDER []byte
	wrapID  []byte

	// syncMu serialises passes and guards the pass bookkeeping below.
	syncMu      sync.Mutex
	retries     map[string]*retry
	noted       map[string]string // pubkey -> condition already logged
	notedNow    map[string]bool   // conditions seen by the current pass
	regNext     time.Time
	regAttempts int
	lastApplied uint64
	passed      bool
	nextFull    time.Time

	// mu guards what the pass publishes.
	mu       sync.Mutex
	local    localSet
	passDone chan struct{}
	lastErr  map[string]error
	gauges   ManagerStats

	passes, synced, syncFailures, removed, removeFailures atomic.Uint64
	registerFailures, localReadFailures, wrongWrapTotal   atomic.Uint64
}

type retry struct {
	attempts int
	next     time.Time
}

// localSet is what this region holds. Published sets are never mutated.
type localSet struct {
	bls map[bls.PublicKey]bool
	ed  map[string]bool // EdLabel
}

// New returns a Manager. It does not touch the HSM or propose anything;
// Run (or SyncOnce) does.
func New(cfg Config) (*Manager, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:      cfg,
		log:      cfg.Logger.With("region", cfg.Region),
		kick:     make(chan struct{}, 1),
		retries:  make(map[string]*retry),
		noted:    make(map[string]string),
		notedNow: make(map[string]bool),
		passDone: make(chan struct{}),
		lastErr:  make(map[string]error),
		local:    localSet{bls: map[bls.PublicKey]bool{}, ed: map[string]bool{}},
	}
	if cfg.GenesisValidatorsRoot != ([32]byte{}) {
		m.network = leader.RootHex(eth.Root(cfg.GenesisValidatorsRoot))
	}
	return m, nil
}

// Kick asks Run for a sync pass now. It never blocks.
func (m *Manager) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Stats returns the counters and the last pass's gauges.
func (m *Manager) Stats() ManagerStats {
	m.mu.Lock()
	s := m.gauges
	m.mu.Unlock()
	s.Passes = m.passes.Load()
	s.Synced = m.synced.Load()
	s.SyncFailures = m.syncFailures.Load()
	s.Removed = m.removed.Load()
	s.RemoveFailures = m.removeFailures.Load()
	s.RegisterFailures = m.registerFailures.Load()
	s.LocalReadFailures = m.localReadFailures.Load()
	s.WrongWrapKeyTotal = m.wrongWrapTotal.Load()
	return s
}

// Run keeps this region in step with the key registry until ctx ends: a
// sync pass at start, then whenever the applied state moved, a retry is
// due, Kick was called, or FullSyncInterval passed, looking every
// Interval. Failures are logged and counted, never fatal. It returns
// ctx.Err().
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	force := true
	for {
		if force || m.due() {
			_ = m.SyncOnce(ctx) // logged and counted inside
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.kick:
			force = true
		case <-t.C:
			force = false
		}
	}
}

// due reports whether a pass has anything to do.
func (m *Manager) due() bool {
	var applied uint64
	m.cfg.State.View(func(_ *leader.State, a uint64) { applied = a })
	now := m.cfg.Now()
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if !m.passed || applied != m.lastApplied || !now.Before(m.nextFull) {
		return true
	}
	if !m.regNext.IsZero() && !now.Before(m.regNext) {
		return true
	}
	for _, r := range m.retries {
		if !now.Before(r.next) {
			return true
		}
	}
	return false
}

// wrapIdentity returns this region's wrapping public key (PKIX DER) and
// its id, making sure the HSM holds the key (once per Manager).
func (m *Manager) wrapIdentity(ctx context.Context) (der, id []byte, err error) {
	m.wrapMu.Lock()
	defer m.wrapMu.Unlock()
	if m.wrapDER != nil {
		return m.wrapDER, m.wrapID, nil
	}
	der, err = m.cfg.HSM.EnsureWrapKey(ctx, m.cfg.WrapKeyLabel)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: wrapping key %q: %w", ErrHSM, m.cfg.WrapKeyLabel, err)
	}
	sum := hsm.WrapKeyID(der)
	m.wrapDER, m.wrapID = der, sum[:]
	return m.wrapDER, m.wrapID, nil
}

// WrapKey returns this region's wrapping public key (PKIX DER), creating it
// in the HSM if needed.
func (m *Manager) WrapKey(ctx context.Context) ([]byte, error) {
	der, _, err := m.wrapIdentity(ctx)
	return bytes.Clone(der), err
}

// ImportKeystore imports an EIP-2335 keystore: it decrypts it, wraps the
// secret for every region registered in the replicated state, proposes
// AddKeys (BLS12-381, on the configured network) and zeroes the plaintext.
// It then waits, bounded by ctx, until this region's sync loop has sealed
// the key into its store; if ctx ends first the key is registered and the
// error wraps ErrSyncPending.
//
// A key the registry already holds is a duplicate (ErrDuplicate, nothing
// proposed) when it is disabled, registered as another scheme or network,
// or has a wrapped secret for every registered region. Otherwise (a key an
// interchange import registered without secrets, or one imported before a
// region registered) the secret is wrapped for the regions that lack one and
// attached to it: importing the keystore again is how a late region gets a
// key. A bad keystore or password wraps ErrKeystore and the keystore
// package's error; nothing is proposed.
func (m *Manager) ImportKeystore(ctx context.Context, keystoreJSON []byte, password string) (bls.PublicKey, error) {
	if m.network == "" {
		return bls.PublicKey{}, fmt.Errorf("%w: no Ethereum network (GenesisValidatorsRoot) configured", ErrConfig)
	}
	secret, pub, err := keystore.Decrypt(keystoreJSON, password)
	if err != nil {
		return bls.PublicKey{}, fmt.Errorf("%w: %w", ErrKeystore, err)
	}
	defer clear(secret)
	var pk bls.PublicKey
	copy(pk[:], pub)
	if err := m.importSecret(ctx, commandpb.Scheme_SCHEME_BLS12381, pk[:], m.network, secret); err != nil {
		return pk, err
	}
	clear(secret)
	return pk, m.waitLocal(ctx, pk[:])
}

// ImportCometBFTKey imports the Ed25519 key of a CometBFT
// priv_validator_key.json for chainID, as ImportKeystore does for BLS keys
// (same duplicate and late-region rules): the seed is wrapped for every
// registered region, proposed with AddKeys (Ed25519, network chainID) and
// zeroed; every region imports it into its HSM as a non-extractable key
// labelled EdLabel(pubkey). It waits, bounded by ctx, until this region's
// HSM holds the key. A bad file wraps ErrKeystore and hsm.ErrCometBFTKey; an
// empty or over-long chainID is ErrInvalidInput; nothing is proposed.
func (m *Manager) ImportCometBFTKey(ctx context.Context, keyJSON []byte, chainID string) (ed25519.PublicKey, error) {
	if chainID == "" || len(chainID) > maxChainID {
		return nil, fmt.Errorf("%w: chain id must be 1 to %d bytes", ErrInvalidInput, maxChainID)
	}
	seed, pub, err := hsm.ParseCometBFTKey(keyJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeystore, err)
	}
	defer clear(seed)
	if err := m.importSecret(ctx, commandpb.Scheme_SCHEME_ED25519, pub, chainID, seed); err != nil {
		return pub, err
	}
	clear(seed)
	return pub, m.waitLocal(ctx, pub)
}

// importSecret wraps secret for every registered region that lacks it and
// proposes the key. A key the registry does not know is added with a
// wrapped secret for every registered region. A known, enabled key of the
// same scheme and network (registered by an interchange import, or imported
// before some region registered) gains secrets for the registered regions
// that have none; when none lacks one it is a duplicate. The caller zeroes
// secret.
func (m *Manager) importSecret(ctx context.Context, scheme commandpb.Scheme, pubkey []byte, network string, secret []byte) error {
	_, myID, err := m.wrapIdentity(ctx)
	if err != nil {
		return err
	}
	var (
		existing   bool
		prev       leader.Key
		have       = map[string]bool{}
		registered bool
		missing    []leader.Region
	)
	m.cfg.State.View(func(s *leader.State, _ uint64) {
		if k, ok := s.Key(pubkey); ok {
			existing = true
			prev = leader.Key{Scheme: k.Scheme, Network: k.Network, Disabled: k.Disabled}
			for _, w := range k.Wrapped {
				have[w.Region] = true
			}
		}
		for _, r := range s.Regions() {
			if r.ID == m.cfg.Region && bytes.Equal(r.WrapKeyID, myID) {
				registered = true
			}
			if !have[r.ID] {
				missing = append(missing, leader.Region{ID: r.ID, WrapPublicKey: bytes.Clone(r.WrapPublicKey), WrapKeyID: bytes.Clone(r.WrapKeyID)})
			}
		}
	})
	switch {
	case existing && prev.Disabled:
		return fmt.Errorf("%w: %x is disabled and cannot be imported again", ErrDuplicate, pubkey)
	case existing && (prev.Scheme != scheme || prev.Network != network):
		return fmt.Errorf("%w: %x is registered as %v on %s", ErrDuplicate, pubkey, prev.Scheme, prev.Network)
	case !registered:
		return fmt.Errorf("%w: region %s (is the sync loop running?)", ErrNotRegistered, m.cfg.Region)
	case existing && len(missing) == 0:
		return fmt.Errorf("%w: %x already has a wrapped secret for every registered region", ErrDuplicate, pubkey)
	}
	add := &commandpb.AddKey{Pubkey: bytes.Clone(pubkey), Scheme: scheme, Network: network}
	ids := make([]string, len(missing))
	for i, r := range missing {
		ct, err := hsm.WrapSecret(r.WrapPublicKey, secret)
		if err != nil {
			return fmt.Errorf("%w: region %s's wrapping key: %w", ErrHSM, r.ID, err)
		}
		add.Wrapped = append(add.Wrapped, &commandpb.WrappedSecret{Region: r.ID, Ciphertext: ct, WrapKeyId: r.WrapKeyID})
		ids[i] = r.ID
	}
	resp, err := m.cfg.Proposer.Propose(ctx, commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: []*commandpb.AddKey{add}})
	if errors.Is(err, leader.ErrKeyConflict) {
		return fmt.Errorf("%w: %w", ErrDuplicate, err)
	}
	if err != nil {
		return fmt.Errorf("%w: AddKeys %x: %w", ErrPropose, pubkey, err)
	}
	if n, ok := resp.Value.(int); ok && n == 0 && !existing {
		return fmt.Errorf("%w: %x was registered concurrently", ErrDuplicate, pubkey)
	}
	msg := "key imported"
	if existing {
		msg = "secrets attached to a registered key"
	}
	m.log.Info(msg, "pubkey", fmt.Sprintf("%x", pubkey), "scheme", scheme.String(), "network", network,
		"index", resp.Index, "wrapped_for", ids)
	return nil
}

// waitLocal waits until a sync pass finds pubkey installed here.
func (m *Manager) waitLocal(ctx context.Context, pubkey []byte) error {
	m.Kick()
	for {
		m.mu.Lock()
		ok := m.local.has(pubkey)
		ch := m.passDone
		last := m.lastErr[string(pubkey)]
		m.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w: %w (last attempt: %w)", ErrSyncPending, ctx.Err(), last)
			}
			return fmt.Errorf("%w: %w", ErrSyncPending, ctx.Err())
		}
	}
}

func (l localSet) has(pubkey []byte) bool {
	switch len(pubkey) {
	case bls.PublicKeySize:
		return l.bls[bls.PublicKey(pubkey)]
	case ed25519.PublicKeySize:
		return l.ed[EdLabel(pubkey)]
	}
	return false
}

// DeleteKey is the Keymanager API's delete: it proposes DisableKey for the
// BLS key pk (unless already disabled), waits until this region has
// applied it, and returns the key's EIP-3076 slashing-protection
// interchange exported from the applied state. Once disabled the FSM
// refuses every record for the key, so the export is final. The sync loops
// then delete every region's sealed copy. An unknown key fails with
// ErrUnknownKey, a non-BLS key with ErrInvalidInput; nothing is proposed.
func (m *Manager) DeleteKey(ctx context.Context, pk bls.PublicKey) ([]byte, error) {
	var (
		k     leader.Key
		found bool
	)
	m.cfg.State.View(func(s *leader.State, _ uint64) {
		var kk leader.Key
		if kk, found = s.Key(pk[:]); found {
			k = leader.Key{Scheme: kk.Scheme, Network: kk.Network, Disabled: kk.Disabled}
		}
	})
	if !found {
		return nil, fmt.Errorf("%w: %s", ErrUnknownKey, pk)
	}
	if k.Scheme != commandpb.Scheme_SCHEME_BLS12381 {
		return nil, fmt.Errorf("%w: %s is a %v key; the Keymanager API deletes BLS keys", ErrInvalidInput, pk, k.Scheme)
	}
	gvr, err := leader.ParseRoot(k.Network)
	if err != nil {
		return nil, fmt.Errorf("%w: registry network %q: %w", ErrInvalidInput, k.Network, err)
	}
	if !k.Disabled {
		resp, err := m.cfg.Proposer.Propose(ctx, commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: pk[:], Reason: DeleteReason})
		if err != nil {
			return nil, fmt.Errorf("%w: DisableKey %s: %w", ErrPropose, pk, err)
		}
		m.log.Info("key disabled", "pubkey", pk.String(), "index", resp.Index)
	}
	if err := m.waitDisabled(ctx, pk); err != nil {
		return nil, err
	}
	var out []byte
	m.cfg.State.View(func(s *leader.State, _ uint64) {
		out, err = eth.EncodeInterchange(s.Eth().Export(gvr, []eth.Pubkey{eth.Pubkey(pk)}))
	})
	if err != nil {
		return nil, fmt.Errorf("keysync: export interchange for %s: %w", pk, err)
	}
	m.Kick()
	return out, nil
}

// waitDisabled polls the applied state until pk is disabled there.
func (m *Manager) waitDisabled(ctx context.Context, pk bls.PublicKey) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		var disabled bool
		m.cfg.State.View(func(s *leader.State, _ uint64) {
			k, ok := s.Key(pk[:])
			disabled = ok && k.Disabled
		})
		if disabled {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: DisableKey %s committed but not applied here yet: %w", ErrPropose, pk, ctx.Err())
		case <-t.C:
		}
	}
}

// List returns every registry key, sorted by public key, with whether this
// region holds it (as of the last sync pass) and whether it is disabled.
func (m *Manager) List() []ListedKey {
	m.mu.Lock()
	local := m.local
	m.mu.Unlock()
	var out []ListedKey
	m.cfg.State.View(func(s *leader.State, _ uint64) {
		for _, k := range s.Keys() {
			out = append(out, ListedKey{
				Pubkey: bytes.Clone(k.Pubkey), Scheme: k.Scheme, Network: k.Network, Label: k.Label,
				Local: local.has(k.Pubkey), Disabled: k.Disabled,
			})
		}
	})
	return out
}
