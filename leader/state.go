package leader

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/cometbft"
	"github.com/regent-signer/regent/slashing/eth"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrStaleLease: a record's (holder, epoch) is not the current active lease.
	ErrStaleLease = errors.New("leader: not the current lease")
	// ErrLeaseTransition: a lease command does not fit the lease's state.
	ErrLeaseTransition = errors.New("leader: lease transition not allowed")
	// ErrUnknownMember: a lease names a region that is not a Raft voter.
	ErrUnknownMember = errors.New("leader: unknown member")
	// ErrInvalidKey: a key registry command is malformed.
	ErrInvalidKey = errors.New("leader: invalid key")
	// ErrKeyConflict: AddKey for a known key with different attributes.
	ErrKeyConflict = errors.New("leader: key already registered differently")
	// ErrUnknownKey: a command names a key the registry does not hold.
	ErrUnknownKey = errors.New("leader: unknown key")
	// ErrKeyDisabled: a record names a disabled key.
	ErrKeyDisabled = errors.New("leader: key disabled")
	// ErrInvalidInput: a command field is malformed.
	ErrInvalidInput = errors.New("leader: invalid input")
	// ErrEmptyBatch: a RecordSignatures entry with no records.
	ErrEmptyBatch = errors.New("leader: empty batch")
)

// MaxBatch bounds the records of one RecordSignatures entry.
const MaxBatch = 4096

// Member is a Raft server as recorded by committed configuration entries.
type Member struct {
	ID      string
	Address string
	Voter   bool
}

// Outcome is the FSM's verdict on one protection record.
type Outcome struct {
	slashing.Result
	// SignBytes are the bytes the holder must sign for a CometBFT record:
	// the request's own, or the earlier ones when only the timestamp differs.
	SignBytes []byte
	// ReusedEarlier is set when SignBytes are the earlier request's.
	ReusedEarlier bool
	// Timestamp is the timestamp inside SignBytes (CometBFT records); the
	// signer returns it in the vote or proposal so message and signature
	// match.
	Timestamp cometbft.Timestamp
}

// BatchResult is the apply response of a RecordSignatures entry.
type BatchResult struct {
	Index      uint64
	Holder     string
	LeaseEpoch uint64
	Outcomes   []Outcome // one per record, in order
}

// State is the replicated state. Only handlers registered by Register
// mutate it, one committed entry at a time.
type State struct {
	lease   Lease
	keys    map[string]*Key // by string(pubkey)
	members map[string]Member
	eth     *eth.State
	comet   *cometbft.State
	// current is the high-water mark of the current epoch so far.
	current  HighWater
	accepted uint64
	refused  uint64
	regions  map[string]Region
	policies map[string]Policy
	exits    map[string]*ExitApproval // by string(pubkey)
	exts     []Extension
}

// NewState returns an empty state: vacant lease, no keys.
func NewState() *State {
	return &State{
		keys:     make(map[string]*Key),
		members:  make(map[string]Member),
		eth:      mustEth(eth.NewState(eth.Options{})),
		comet:    cometbft.NewState(),
		regions:  make(map[string]Region),
		policies: make(map[string]Policy),
		exits:    make(map[string]*ExitApproval),
	}
}

// mustEth unwraps eth.NewState for the fixed default options, which are
// valid by construction.
func mustEth(s *eth.State, err error) *eth.State {
	if err != nil {
		panic(err)
	}
	return s
}

// NewRegistry returns a registry with every handler of this package.
func NewRegistry() *fsm.Registry[*State] {
	r := fsm.NewRegistry[*State]()
	Register(r)
	return r
}

// Register installs this package's handlers in r.
func Register(r *fsm.Registry[*State]) {
	r.Register(commandpb.CommandType_RECORD_SIGNATURES, 1, (*State).applyRecords)
	r.Register(commandpb.CommandType_GRANT_LEASE, 1, (*State).applyGrant)
	r.Register(commandpb.CommandType_FENCE_LEASE, 1, (*State).applyFence)
	r.Register(commandpb.CommandType_ACTIVATE_LEASE, 1, (*State).applyActivate)
	r.Register(commandpb.CommandType_ADD_KEY, 1, (*State).applyAddKey)
	r.Register(commandpb.CommandType_DISABLE_KEY, 1, (*State).applyDisableKey)
	r.Register(commandpb.CommandType_IMPORT_INTERCHANGE, 1, (*State).applyImport)
	r.Register(commandpb.CommandType_PRUNE_HISTORY, 1, (*State).applyPrune)
	r.Register(commandpb.CommandType_REGISTER_REGION, 1, (*State).applyRegisterRegion)
	r.Register(commandpb.CommandType_SET_POLICY, 1, (*State).applySetPolicy)
	r.Register(commandpb.CommandType_APPROVE_EXIT, 1, (*State).applyApproveExit)
	r.Register(commandpb.CommandType_NOOP, 1, func(*State, fsm.Entry) (any, error) { return nil, nil })
}

// Lease returns the current lease.
func (s *State) Lease() Lease { return s.lease }

// Key returns the registry entry for pubkey.
func (s *State) Key(pubkey []byte) (Key, bool) {
	k, ok := s.keys[string(pubkey)]
	if !ok {
		return Key{}, false
	}
	return *k, true
}

// KeyCount returns the number of registered keys.
func (s *State) KeyCount() int { return len(s.keys) }

// Keys returns every key, sorted by public key.
func (s *State) Keys() []Key {
	out := make([]Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].Pubkey) < string(out[j].Pubkey) })
	return out
}

// Members returns the members, sorted by id.
func (s *State) Members() []Member {
	out := make([]Member, 0, len(s.members))
	for _, m := range s.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Eth gives read access to the Ethereum protection state.
func (s *State) Eth() *eth.State { return s.eth }

// Comet gives read access to the CometBFT protection state.
func (s *State) Comet() *cometbft.State { return s.comet }

// CurrentHighWater is the high-water mark of the current epoch so far.
func (s *State) CurrentHighWater() HighWater { return s.current }

// Counts returns how many records were accepted and refused since genesis.
func (s *State) Counts() (accepted, refused uint64) { return s.accepted, s.refused }

// ObserveConfiguration implements fsm.ConfigurationObserver.
func (s *State) ObserveConfiguration(_ uint64, c raft.Configuration) {
	s.members = make(map[string]Member, len(c.Servers))
	for _, srv := range c.Servers {
		s.members[string(srv.ID)] = Member{ID: string(srv.ID), Address: string(srv.Address), Voter: srv.Suffrage == raft.Voter}
	}
}

// CheckRecord evaluates one record against the state without changing it:
// the dry-run answer to "would this be signed now?". It applies the same
// key and rule checks as RecordSignatures but not the lease check.
func (s *State) CheckRecord(r *commandpb.ProtectionRecord) Outcome {
	return s.evaluate(r, false)
}

func (s *State) applyRecords(e fsm.Entry) (any, error) {
	var cmd commandpb.RecordSignatures
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	if e.Envelope.Proposer != cmd.Holder {
		// Only the holder's own region writes records under its lease
		// (a forwarded batch keeps the forwarding region as proposer).
		return nil, fmt.Errorf("%w: records for holder %s proposed by %q", ErrStaleLease, cmd.Holder, e.Envelope.Proposer)
	}
	if !s.lease.Allows(cmd.Holder, cmd.LeaseEpoch) {
		return nil, fmt.Errorf("%w: record from %s at lease epoch %d, lease is %s (holder %s, epoch %d)",
			ErrStaleLease, cmd.Holder, cmd.LeaseEpoch, s.lease.State, s.lease.Holder, s.lease.Epoch)
	}
	if len(cmd.Records) == 0 {
		return nil, ErrEmptyBatch
	}
	if len(cmd.Records) > MaxBatch {
		return nil, fmt.Errorf("%w: batch of %d records exceeds %d", ErrInvalidInput, len(cmd.Records), MaxBatch)
	}
	res := BatchResult{Index: e.Index, Holder: s.lease.Holder, LeaseEpoch: s.lease.Epoch, Outcomes: make([]Outcome, len(cmd.Records))}
	for i, r := range cmd.Records {
		o := s.evaluate(r, true)
		res.Outcomes[i] = o
		if o.Accepted() {
			s.accepted++
		} else {
			s.refused++
		}
	}
	return res, nil
}

// evaluate checks one record; when record is set and the rules accept it,
// the record joins the history and the epoch's high-water mark.
func (s *State) evaluate(r *commandpb.ProtectionRecord, record bool) Outcome {
	switch rec := r.GetRecord().(type) {
	case *commandpb.ProtectionRecord_EthBlock:
		b := rec.EthBlock
		gvr, pk, root, err := s.ethKey(b.GenesisValidatorsRoot, b.Pubkey, b.SigningRoot)
		if err != nil {
			return failed(err)
		}
		var res slashing.Result
		if record {
			res = s.eth.RecordBlock(gvr, pk, b.Slot, root)
			if res.Accepted() {
				s.current.noteBlock(gvr, b.Slot)
			}
		} else {
			res = s.eth.CheckBlock(gvr, pk, b.Slot, root)
		}
		return Outcome{Result: res}
	case *commandpb.ProtectionRecord_EthAttestation:
		a := rec.EthAttestation
		gvr, pk, root, err := s.ethKey(a.GenesisValidatorsRoot, a.Pubkey, a.SigningRoot)
		if err != nil {
			return failed(err)
		}
		var res slashing.Result
		if record {
			res = s.eth.RecordAttestation(gvr, pk, a.SourceEpoch, a.TargetEpoch, root)
			if res.Accepted() {
				s.current.noteAttestation(gvr, a.TargetEpoch)
			}
		} else {
			res = s.eth.CheckAttestation(gvr, pk, a.SourceEpoch, a.TargetEpoch, root)
		}
		return Outcome{Result: res}
	case *commandpb.ProtectionRecord_Comet:
		c := rec.Comet
		if err := s.usableKey(c.Pubkey, commandpb.Scheme_SCHEME_ED25519, c.ChainId); err != nil {
			return failed(err)
		}
		if c.Round < 0 || c.Step < 1 || c.Step > 3 {
			return failed(fmt.Errorf("%w: round %d step %d", ErrInvalidInput, c.Round, c.Step))
		}
		hrs := cometbft.HRS{Height: c.Height, Round: c.Round, Step: cometbft.Step(c.Step)}
		var out cometbft.Outcome
		if record {
			out = s.comet.Record(hex.EncodeToString(c.Pubkey), c.ChainId, hrs, c.SignBytes)
			if out.Accepted() {
				s.current.noteHeight(c.ChainId, c.Height)
			}
		} else {
			out = s.comet.Check(hex.EncodeToString(c.Pubkey), c.ChainId, hrs, c.SignBytes)
		}
		return Outcome{Result: out.Result, SignBytes: out.SignBytes, ReusedEarlier: out.ReusedEarlier, Timestamp: out.Timestamp}
	case *commandpb.ProtectionRecord_Unslashable:
		u := rec.Unslashable
		k, ok := s.keys[string(u.Pubkey)]
		switch {
		case !ok:
			return failed(fmt.Errorf("%w: %x", ErrUnknownKey, u.Pubkey))
		case k.Disabled:
			return failed(fmt.Errorf("%w: %x: %s", ErrKeyDisabled, u.Pubkey, k.DisabledReason))
		case u.Kind == "" || len(u.Kind) > 64:
			return failed(fmt.Errorf("%w: unslashable record kind %q", ErrInvalidInput, u.Kind))
		case u.Kind == KindVoluntaryExit:
			if err := s.checkExit(u.Pubkey, u.SigningRoot, record); err != nil {
				return failed(err)
			}
		}
		return Outcome{Result: slashing.Result{Decision: slashing.DecisionAccepted}}
	default:
		return failed(fmt.Errorf("%w: empty protection record", ErrInvalidInput))
	}
}

func failed(err error) Outcome {
	return Outcome{Result: slashing.Result{Decision: slashing.DecisionFailed, Reason: err.Error(), Err: err}}
}

func (s *State) ethKey(gvrB, pkB, rootB []byte) (eth.Root, eth.Pubkey, eth.Root, error) {
	gvr, err := root32(gvrB)
	if err != nil {
		return gvr, eth.Pubkey{}, eth.Root{}, err
	}
	pk, err := pubkey48(pkB)
	if err != nil {
		return gvr, pk, eth.Root{}, err
	}
	root, err := root32(rootB)
	if err != nil {
		return gvr, pk, root, err
	}
	if err := s.usableKey(pkB, commandpb.Scheme_SCHEME_BLS12381, RootHex(gvr)); err != nil {
		return gvr, pk, root, err
	}
	return gvr, pk, root, nil
}

func (s *State) usableKey(pubkey []byte, scheme commandpb.Scheme, network string) error {
	k, ok := s.keys[string(pubkey)]
	switch {
	case !ok:
		return fmt.Errorf("%w: %x", ErrUnknownKey, pubkey)
	case k.Disabled:
		return fmt.Errorf("%w: %x: %s", ErrKeyDisabled, pubkey, k.DisabledReason)
	case k.Scheme != scheme:
		return fmt.Errorf("%w: key %x is %v, record needs %v", ErrInvalidInput, pubkey, k.Scheme, scheme)
	case k.Network != network:
		return fmt.Errorf("%w: key %x belongs to network %s, record is for %s", ErrInvalidInput, pubkey, k.Network, network)
	}
	return nil
}

func (s *State) isVoter(id string) bool {
	m, ok := s.members[id]
	return ok && m.Voter
}

func (s *State) applyGrant(e fsm.Entry) (any, error) {
	var cmd commandpb.GrantLease
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	if s.lease.State != LeaseVacant || s.lease.Epoch != 0 {
		return nil, fmt.Errorf("%w: initial grant needs a vacant lease at epoch 0, lease is %s (holder %s, epoch %d)",
			ErrLeaseTransition, s.lease.State, s.lease.Holder, s.lease.Epoch)
	}
	if !s.isVoter(cmd.Holder) {
		return nil, fmt.Errorf("%w: %q is not a voter", ErrUnknownMember, cmd.Holder)
	}
	s.lease = Lease{Holder: cmd.Holder, Epoch: 1, State: LeaseActive, SinceIndex: e.Index, SinceUnixNano: e.Envelope.ProposedAtUnixNano}
	s.current = HighWater{}
	return s.lease, nil
}

// Fence moves active(holder, e) to fenced(holder, e) and fixes the epoch's
// high-water mark. Exported for the failover handlers, which fence when
// approvals reach their threshold; it must only be called from a handler.
func (s *State) Fence(e fsm.Entry, epoch uint64, reason string) error {
	if s.lease.State != LeaseActive || s.lease.Epoch != epoch {
		return fmt.Errorf("%w: fence of epoch %d, lease is %s at epoch %d", ErrLeaseTransition, epoch, s.lease.State, s.lease.Epoch)
	}
	s.lease.State = LeaseFenced
	s.lease.SinceIndex = e.Index
	s.lease.SinceUnixNano = e.Envelope.ProposedAtUnixNano
	s.lease.FenceReason = reason
	s.lease.HighWater = s.current
	s.current = HighWater{}
	return nil
}

// Activate moves fenced(_, e) to active(holder, e+1). Exported for the
// failover handlers; it must only be called from a handler.
func (s *State) Activate(e fsm.Entry, holder string, epoch uint64) error {
	if s.lease.State != LeaseFenced || epoch != s.lease.Epoch+1 {
		return fmt.Errorf("%w: activation at epoch %d, lease is %s at epoch %d", ErrLeaseTransition, epoch, s.lease.State, s.lease.Epoch)
	}
	if !s.isVoter(holder) {
		return fmt.Errorf("%w: %q is not a voter", ErrUnknownMember, holder)
	}
	s.lease = Lease{Holder: holder, Epoch: epoch, State: LeaseActive, SinceIndex: e.Index, SinceUnixNano: e.Envelope.ProposedAtUnixNano}
	s.current = HighWater{}
	return nil
}

func (s *State) applyFence(e fsm.Entry) (any, error) {
	var cmd commandpb.FenceLease
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	if err := s.Fence(e, cmd.Epoch, cmd.Reason); err != nil {
		return nil, err
	}
	return s.lease, nil
}

func (s *State) applyActivate(e fsm.Entry) (any, error) {
	var cmd commandpb.ActivateLease
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	if err := s.Activate(e, cmd.Holder, cmd.Epoch); err != nil {
		return nil, err
	}
	return s.lease, nil
}

// MaxAddKeys bounds the keys of one AddKeys entry.
const MaxAddKeys = 10000

func (s *State) applyAddKey(e fsm.Entry) (any, error) {
	var cmd commandpb.AddKeys
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	if len(cmd.Keys) == 0 || len(cmd.Keys) > MaxAddKeys {
		return nil, fmt.Errorf("%w: %d keys in one AddKeys (1..%d)", ErrInvalidKey, len(cmd.Keys), MaxAddKeys)
	}
	// Validate everything first: a refused command changes nothing.
	fresh := make(map[string]*commandpb.AddKey, len(cmd.Keys))
	for i, k := range cmd.Keys {
		if err := validateKey(k); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		for _, w := range k.Wrapped {
			r, ok := s.regions[w.Region]
			if !ok {
				return nil, fmt.Errorf("%w: key %d (%x) carries a secret for %q, which has published no wrapping key", ErrInvalidKey, i, k.Pubkey, w.Region)
			}
			if string(r.WrapKeyID) != string(w.WrapKeyId) {
				return nil, fmt.Errorf("%w: key %d (%x): secret for %q is wrapped under key %x, region's key is %x", ErrInvalidKey, i, k.Pubkey, w.Region, w.WrapKeyId, r.WrapKeyID)
			}
		}
		prev, ok := s.keys[string(k.Pubkey)]
		if !ok {
			prev2, dup := fresh[string(k.Pubkey)]
			if dup && (prev2.Scheme != k.Scheme || prev2.Network != k.Network) {
				return nil, fmt.Errorf("%w: key %d (%x) listed twice with different attributes", ErrKeyConflict, i, k.Pubkey)
			}
			fresh[string(k.Pubkey)] = k
			continue
		}
		if prev.Scheme != k.Scheme || prev.Network != k.Network {
			return nil, fmt.Errorf("%w: key %d (%x) is %v on %s", ErrKeyConflict, i, k.Pubkey, prev.Scheme, prev.Network)
		}
		if prev.Disabled && len(k.Wrapped) > 0 {
			return nil, fmt.Errorf("%w: key %d (%x) is disabled; it cannot receive secrets", ErrKeyConflict, i, k.Pubkey)
		}
	}
	added := 0
	for _, k := range cmd.Keys {
		if prev, ok := s.keys[string(k.Pubkey)]; ok {
			// A known key (registered by an interchange import, or wrapped
			// before a region existed) gains secrets for regions it lacks.
			for _, w := range k.Wrapped {
				if _, has := prev.WrappedFor(w.Region); !has {
					prev.Wrapped = append(prev.Wrapped, cloneWrapped([]*commandpb.WrappedSecret{w})...)
				}
			}
			continue
		}
		if _, ok := fresh[string(k.Pubkey)]; !ok {
			continue
		}
		delete(fresh, string(k.Pubkey))
		s.keys[string(k.Pubkey)] = &Key{Pubkey: append([]byte(nil), k.Pubkey...), Scheme: k.Scheme, Network: k.Network, Label: k.Label,
			AddedIndex: e.Index, Wrapped: cloneWrapped(k.Wrapped)}
		added++
	}
	return added, nil
}

func (s *State) applyDisableKey(e fsm.Entry) (any, error) {
	var cmd commandpb.DisableKey
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	k, ok := s.keys[string(cmd.Pubkey)]
	if !ok {
		return nil, fmt.Errorf("%w: %x", ErrUnknownKey, cmd.Pubkey)
	}
	k.Disabled, k.DisabledReason = true, cmd.Reason
	return *k, nil
}

func (s *State) applyImport(e fsm.Entry) (any, error) {
	var cmd commandpb.ImportInterchange
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	gvr, err := root32(cmd.GenesisValidatorsRoot)
	if err != nil {
		return nil, err
	}
	ic, err := eth.DecodeInterchange(cmd.InterchangeJson)
	if err != nil {
		return nil, err
	}
	// Check every key before touching anything, so a refused import
	// changes nothing.
	network := RootHex(gvr)
	var register []*Key
	pubkeys := interchangeKeys(ic)
	for _, pk := range pubkeys {
		k, ok := s.keys[string(pk[:])]
		switch {
		case !ok && cmd.RegisterKeys:
			register = append(register, &Key{Pubkey: append([]byte(nil), pk[:]...), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: network, AddedIndex: e.Index})
		case !ok:
			return nil, fmt.Errorf("%w: interchange names %x, which is not registered", ErrUnknownKey, pk)
		case k.Scheme != commandpb.Scheme_SCHEME_BLS12381 || k.Network != network:
			return nil, fmt.Errorf("%w: key %x is %v on %s, interchange is for %s", ErrInvalidInput, pk, k.Scheme, k.Network, network)
		}
	}
	if err := s.eth.Import(ic, gvr); err != nil {
		return nil, err
	}
	for _, k := range register {
		s.keys[string(k.Pubkey)] = k
	}
	return len(pubkeys), nil
}

func (s *State) applyPrune(e fsm.Entry) (any, error) {
	var cmd commandpb.PruneHistory
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	gvr, err := root32(cmd.GenesisValidatorsRoot)
	if err != nil {
		return nil, err
	}
	return s.eth.PruneChain(gvr, cmd.FinalizedEpoch), nil
}

// interchangeKeys returns the distinct public keys an interchange names,
// in the order they first appear.
func interchangeKeys(ic *eth.Interchange) []eth.Pubkey {
	seen := make(map[eth.Pubkey]bool, len(ic.Data))
	var out []eth.Pubkey
	for _, r := range ic.Data {
		if !seen[r.Pubkey] {
			seen[r.Pubkey] = true
			out = append(out, r.Pubkey)
		}
	}
	return out
}

// Snapshot sections, in the order they are written.
const (
	sectionLeader uint32 = 1
	sectionEth    uint32 = 2
	sectionComet  uint32 = 3
)

// WriteSnapshot implements fsm.State.
func (s *State) WriteSnapshot(w io.Writer) error {
	ls := &commandpb.LeaderSnapshot{
		Lease: &commandpb.LeaseSnapshot{
			Holder: s.lease.Holder, Epoch: s.lease.Epoch, State: uint32(s.lease.State),
			SinceIndex: s.lease.SinceIndex, SinceUnixNano: s.lease.SinceUnixNano,
			HighWater: s.lease.HighWater.toProto(), FenceReason: s.lease.FenceReason,
		},
		CurrentHighWater: s.current.toProto(),
		RecordsAccepted:  s.accepted,
		RecordsRefused:   s.refused,
	}
	for _, k := range s.Keys() {
		ls.Keys = append(ls.Keys, &commandpb.KeySnapshot{
			Pubkey: k.Pubkey, Scheme: k.Scheme, Network: k.Network, Label: k.Label,
			Disabled: k.Disabled, DisabledReason: k.DisabledReason, AddedIndex: k.AddedIndex, Wrapped: k.Wrapped,
		})
	}
	for _, r := range s.Regions() {
		ls.Regions = append(ls.Regions, &commandpb.RegionSnapshot{Region: r.ID, WrapPublicKey: r.WrapPublicKey, HsmToken: r.HSMToken, Index: r.Index})
	}
	for _, p := range s.Policies() {
		ls.Policies = append(ls.Policies, &commandpb.PolicySnapshot{Identity: p.Identity, KeyPatterns: p.KeyPatterns, MessageTypes: p.MessageTypes})
	}
	exits := make([]*ExitApproval, 0, len(s.exits))
	for _, a := range s.exits {
		exits = append(exits, a)
	}
	sort.Slice(exits, func(i, j int) bool { return string(exits[i].Pubkey) < string(exits[j].Pubkey) })
	for _, a := range exits {
		ls.ExitApprovals = append(ls.ExitApprovals, &commandpb.ExitApprovalSnapshot{Pubkey: a.Pubkey, Operator: a.Operator, Reason: a.Reason, Index: a.Index, UsedRoot: a.UsedRoot})
	}
	for _, m := range s.Members() {
		ls.Members = append(ls.Members, &commandpb.MemberSnapshot{Id: m.ID, Address: m.Address, Voter: m.Voter})
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ls)
	if err != nil {
		return err
	}
	if err := writeSection(w, sectionLeader, b); err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := s.eth.WriteTo(&buf); err != nil {
		return fmt.Errorf("eth section: %w", err)
	}
	if err := writeSection(w, sectionEth, buf.Bytes()); err != nil {
		return err
	}
	buf.Reset()
	if _, err := s.comet.WriteTo(&buf); err != nil {
		return fmt.Errorf("comet section: %w", err)
	}
	if err := writeSection(w, sectionComet, buf.Bytes()); err != nil {
		return err
	}
	return s.writeExtensions(w)
}

// ReadSnapshot implements fsm.State. s must be fresh from NewState.
func (s *State) ReadSnapshot(r io.Reader) error {
	for _, want := range []uint32{sectionLeader, sectionEth, sectionComet} {
		id, body, err := readSection(r)
		if err != nil {
			return err
		}
		if id != want {
			return fmt.Errorf("%w: section %d where %d was expected", ErrInvalidInput, id, want)
		}
		switch id {
		case sectionLeader:
			if err := s.readLeader(body); err != nil {
				return err
			}
		case sectionEth:
			es, err := eth.ReadState(bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("eth section: %w", err)
			}
			s.eth = es
		case sectionComet:
			cs, err := cometbft.ReadState(bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("comet section: %w", err)
			}
			s.comet = cs
		}
	}
	return s.readExtensions(r)
}

func (s *State) readLeader(body []byte) error {
	var ls commandpb.LeaderSnapshot
	if err := proto.Unmarshal(body, &ls); err != nil {
		return fmt.Errorf("%w: leader section: %v", ErrInvalidInput, err)
	}
	l := ls.GetLease()
	if l.GetState() > uint32(LeaseFenced) {
		return fmt.Errorf("%w: lease state %d", ErrInvalidInput, l.GetState())
	}
	hw, err := highWaterFromProto(l.GetHighWater())
	if err != nil {
		return err
	}
	cur, err := highWaterFromProto(ls.GetCurrentHighWater())
	if err != nil {
		return err
	}
	s.lease = Lease{Holder: l.GetHolder(), Epoch: l.GetEpoch(), State: LeaseState(l.GetState()), SinceIndex: l.GetSinceIndex(),
		SinceUnixNano: l.GetSinceUnixNano(), FenceReason: l.GetFenceReason(), HighWater: hw}
	s.current = cur
	s.accepted, s.refused = ls.RecordsAccepted, ls.RecordsRefused
	for _, k := range ls.Keys {
		add := &commandpb.AddKey{Pubkey: k.Pubkey, Scheme: k.Scheme, Network: k.Network, Label: k.Label}
		if err := validateKey(add); err != nil {
			return err
		}
		s.keys[string(k.Pubkey)] = &Key{Pubkey: k.Pubkey, Scheme: k.Scheme, Network: k.Network, Label: k.Label,
			Disabled: k.Disabled, DisabledReason: k.DisabledReason, AddedIndex: k.AddedIndex, Wrapped: k.Wrapped}
	}
	for _, r := range ls.Regions {
		id := sha256.Sum256(r.WrapPublicKey)
		s.regions[r.Region] = Region{ID: r.Region, WrapPublicKey: r.WrapPublicKey, WrapKeyID: id[:], HSMToken: r.HsmToken, Index: r.Index}
	}
	for _, p := range ls.Policies {
		s.policies[p.Identity] = Policy{Identity: p.Identity, KeyPatterns: p.KeyPatterns, MessageTypes: p.MessageTypes}
	}
	for _, a := range ls.ExitApprovals {
		s.exits[string(a.Pubkey)] = &ExitApproval{Pubkey: a.Pubkey, Operator: a.Operator, Reason: a.Reason, Index: a.Index, UsedRoot: a.UsedRoot}
	}
	for _, m := range ls.Members {
		s.members[m.Id] = Member{ID: m.Id, Address: m.Address, Voter: m.Voter}
	}
	return nil
}

// maxSection bounds one snapshot section (1 GiB) so a corrupt length
// cannot trigger a huge allocation.
const maxSection = 1 << 30

func writeSection(w io.Writer, id uint32, body []byte) error {
	var h [12]byte
	binary.BigEndian.PutUint32(h[:4], id)
	binary.BigEndian.PutUint64(h[4:], uint64(len(body)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// errEndOfSections marks a clean end of the section stream.
var errEndOfSections = errors.New("leader: end of snapshot sections")

func isEOF(err error) bool { return errors.Is(err, errEndOfSections) }

func readSection(r io.Reader) (uint32, []byte, error) {
	var h [12]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return 0, nil, errEndOfSections
		}
		return 0, nil, fmt.Errorf("%w: section header: %w", ErrInvalidInput, err)
	}
	n := binary.BigEndian.Uint64(h[4:])
	if n > maxSection {
		return 0, nil, fmt.Errorf("%w: section of %d bytes", ErrInvalidInput, n)
	}
	body := make([]byte, 0, min(n, 1<<20))
	var chunk [64 << 10]byte
	for uint64(len(body)) < n {
		want := min(n-uint64(len(body)), uint64(len(chunk)))
		if _, err := io.ReadFull(r, chunk[:want]); err != nil {
			return 0, nil, fmt.Errorf("%w: section body: %w", ErrInvalidInput, err)
		}
		body = append(body, chunk[:want]...)
	}
	return binary.BigEndian.Uint32(h[:4]), body, nil
}
