package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/cometbft"
)

// Sentinel errors. Match with errors.Is; map to API statuses at the edge.
var (
	// ErrSlashable: the slashing rules refused the record (HTTP 412). The
	// error is a *Refusal carrying the rule and the values compared.
	ErrSlashable = errors.New("pipeline: refused by slashing protection")
	// ErrForbidden: the caller's policy does not cover this key or type.
	ErrForbidden = errors.New("pipeline: not permitted by policy")
	// ErrUnknownKey: the key is not in the registry (HTTP 404).
	ErrUnknownKey = errors.New("pipeline: unknown key")
	// ErrBadRequest: the request cannot be evaluated (HTTP 400).
	ErrBadRequest = errors.New("pipeline: bad request")
	// ErrNotApproved: a fund-moving or exit message lacks a committed
	// operator approval.
	ErrNotApproved = errors.New("pipeline: operator approval required")
	// ErrCannotSign: this region cannot sign now — not the lease holder, no
	// quorum, write fate unknown, keys not unsealed, HSM failure (HTTP 503).
	ErrCannotSign = errors.New("pipeline: this region cannot sign now")
)

// Refusal details a refused record.
type Refusal struct {
	Decision slashing.Decision
	Rule     slashing.Rule
	Reason   string
	base     error
}

func (r *Refusal) Error() string {
	if r.Rule != "" {
		return fmt.Sprintf("%s: %s", r.Rule, r.Reason)
	}
	return r.Reason
}

func (r *Refusal) Unwrap() error { return r.base }

// Recorder group-commits protection records (leader.Service).
type Recorder interface {
	Record(ctx context.Context, records []*commandpb.ProtectionRecord) (outcomes []leader.Outcome, index, epoch uint64, err error)
}

// StateView reads the locally applied replicated state (fsm.FSM.View).
type StateView interface {
	View(fn func(s *leader.State, lastApplied uint64))
}

// BLSKeys signs with unsealed BLS keys (KeyGuard).
type BLSKeys interface {
	SignBLS(pk bls.PublicKey, root [32]byte) ([96]byte, error)
}

// blsReadiness is optionally implemented by a BLSKeys: can it sign with pk
// now? When it says no, the request is refused before its record is
// written, so a region missing a key does not record duties it cannot sign.
type blsReadiness interface {
	CanSignBLS(pk bls.PublicKey) error
}

// EdSigner signs with an Ed25519 key held in this region's HSM.
type EdSigner interface {
	SignEd25519(ctx context.Context, pubkey []byte, msg []byte) ([]byte, error)
}

// Config wires a Pipeline.
type Config struct {
	Recorder Recorder
	State    StateView
	BLS      BLSKeys
	Ed25519  EdSigner
	// Network binds Ethereum requests to one chain.
	Network eth2.Network
	Logger  *slog.Logger
	// Observe, when set, is called once per request with the message type,
	// the outcome label (signed, slashable, forbidden, ...), the rule that
	// refused it, and timings.
	Observe func(Observation)
}

// Observation is what Observe receives.
type Observation struct {
	Type      string
	Outcome   string
	Rule      slashing.Rule
	Total     time.Duration
	Commit    time.Duration
	Sign      time.Duration
	HSMFailed bool
}

// Pipeline signs requests. It is safe for concurrent use.
type Pipeline struct{ cfg Config }

// New returns a Pipeline.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Recorder == nil || cfg.State == nil {
		return nil, errors.New("pipeline: Recorder and State are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{cfg: cfg}, nil
}

// Caller is an authenticated client identity (mTLS certificate or token).
type Caller struct {
	Name string
}

// EthRecord builds the protection record for an Ethereum request. It does
// not sign or record; Sign and Check use it.
func EthRecord(pubkey [48]byte, req *eth2.Request) (*commandpb.ProtectionRecord, [32]byte, error) {
	root, _, err := req.SigningRoot()
	if err != nil {
		return nil, root, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	p := req.Protection()
	switch p.Kind {
	case eth2.ProtectionBlock:
		return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthBlock{EthBlock: &commandpb.EthBlock{
			GenesisValidatorsRoot: p.GenesisValidatorsRoot[:], Pubkey: pubkey[:], Slot: p.Slot, SigningRoot: root[:]}}}, root, nil
	case eth2.ProtectionAttestation:
		return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
			GenesisValidatorsRoot: p.GenesisValidatorsRoot[:], Pubkey: pubkey[:], SourceEpoch: p.SourceEpoch, TargetEpoch: p.TargetEpoch, SigningRoot: root[:]}}}, root, nil
	case eth2.ProtectionNone:
		kind := string(req.Type)
		if req.IsExit() {
			kind = leader.KindVoluntaryExit
		}
		return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_Unslashable{Unslashable: &commandpb.Unslashable{
			Pubkey: pubkey[:], Kind: kind, SigningRoot: root[:]}}}, root, nil
	default:
		// ProtectionUnknown: fail closed.
		return nil, root, fmt.Errorf("%w: no protection rule for %s", ErrBadRequest, req.Type)
	}
}

// precheck refuses early what the replicated state already rules out:
// unknown key and policy. The FSM re-checks the key at apply time.
func (p *Pipeline) precheck(caller Caller, pubkey []byte, msgType string) error {
	var err error
	p.cfg.State.View(func(s *leader.State, _ uint64) {
		k, ok := s.Key(pubkey)
		if !ok {
			err = fmt.Errorf("%w: %x", ErrUnknownKey, pubkey)
			return
		}
		if k.Disabled {
			err = fmt.Errorf("%w: key %x is disabled: %s", ErrForbidden, pubkey, k.DisabledReason)
			return
		}
		pol, ok := s.Policy(caller.Name)
		if !ok {
			err = fmt.Errorf("%w: identity %q has no policy", ErrForbidden, caller.Name)
			return
		}
		if !pol.Allows(pubkey, msgType) {
			err = fmt.Errorf("%w: identity %q may not sign %s with %x", ErrForbidden, caller.Name, msgType, pubkey)
		}
	})
	return err
}

// SignEth validates, records and signs an Ethereum request for pubkey.
func (p *Pipeline) SignEth(ctx context.Context, caller Caller, pubkey [48]byte, req *eth2.Request) (sig [96]byte, err error) {
	obs := Observation{Type: string(req.Type)}
	start := time.Now()
	defer func() { p.observe(&obs, start, err) }()
	if err := p.precheck(caller, pubkey[:], string(req.Type)); err != nil {
		return sig, err
	}
	rec, root, err := EthRecord(pubkey, req)
	if err != nil {
		return sig, err
	}
	var ready func() error
	if r, ok := p.cfg.BLS.(blsReadiness); ok {
		ready = func() error { return r.CanSignBLS(bls.PublicKey(pubkey)) }
	}
	if _, err := p.commit(ctx, rec, &obs, ready); err != nil {
		return sig, err
	}
	t := time.Now()
	sig, err = p.cfg.BLS.SignBLS(bls.PublicKey(pubkey), root)
	obs.Sign = time.Since(t)
	if err != nil {
		obs.HSMFailed = true
		return sig, fmt.Errorf("%w: record committed, signing failed: %w", ErrCannotSign, err)
	}
	return sig, nil
}

// CheckEth answers whether SignEth would be allowed now, without
// recording anything: the dry run operators ask for. A nil error means
// the rules and policy allow it against this region's applied state; the
// lease and quorum are not exercised.
func (p *Pipeline) CheckEth(caller Caller, pubkey [48]byte, req *eth2.Request) error {
	if err := p.precheck(caller, pubkey[:], string(req.Type)); err != nil {
		return err
	}
	rec, _, err := EthRecord(pubkey, req)
	if err != nil {
		return err
	}
	var o leader.Outcome
	p.cfg.State.View(func(s *leader.State, _ uint64) { o = s.CheckRecord(rec) })
	return outcomeError(o)
}

// CometRequest is a CometBFT vote or proposal to sign.
type CometRequest struct {
	Pubkey    []byte // Ed25519, 32 bytes
	ChainID   string
	HRS       cometbft.HRS
	SignBytes []byte
	Type      string // VOTE or PROPOSAL, for policy and metrics
}

// CometResult is what the privval answer needs: the signature over
// SignBytes, which are the request's own or, on a timestamp-only retry, the
// earlier ones; Timestamp goes into the returned message.
type CometResult struct {
	Signature     []byte
	SignBytes     []byte
	Timestamp     cometbft.Timestamp
	ReusedEarlier bool
}

// SignComet records and signs a CometBFT vote or proposal.
func (p *Pipeline) SignComet(ctx context.Context, caller Caller, req CometRequest) (res CometResult, err error) {
	obs := Observation{Type: req.Type}
	start := time.Now()
	defer func() { p.observe(&obs, start, err) }()
	if err := p.precheck(caller, req.Pubkey, req.Type); err != nil {
		return res, err
	}
	rec := &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_Comet{Comet: &commandpb.CometSign{
		Pubkey: req.Pubkey, ChainId: req.ChainID, Height: req.HRS.Height, Round: req.HRS.Round, Step: int32(req.HRS.Step), SignBytes: req.SignBytes}}}
	o, err := p.commit(ctx, rec, &obs, nil)
	if err != nil {
		return res, err
	}
	if len(o.SignBytes) == 0 {
		return res, fmt.Errorf("%w: accepted CometBFT record carries no sign bytes", ErrCannotSign)
	}
	t := time.Now()
	sig, err := p.cfg.Ed25519.SignEd25519(ctx, req.Pubkey, o.SignBytes)
	obs.Sign = time.Since(t)
	if err != nil {
		obs.HSMFailed = true
		return res, fmt.Errorf("%w: record committed, HSM signing failed: %w", ErrCannotSign, err)
	}
	return CometResult{Signature: sig, SignBytes: o.SignBytes, Timestamp: o.Timestamp, ReusedEarlier: o.ReusedEarlier}, nil
}

// SignUnslashable records and signs a CometBFT message no HRS rule covers
// (a vote extension): still committed under the lease first (I1).
func (p *Pipeline) SignUnslashable(ctx context.Context, caller Caller, pubkey []byte, kind string, msg []byte) (sig []byte, err error) {
	obs := Observation{Type: kind}
	start := time.Now()
	defer func() { p.observe(&obs, start, err) }()
	if err := p.precheck(caller, pubkey, kind); err != nil {
		return nil, err
	}
	if cometbft.IsConsensusSignBytes(msg) {
		return nil, fmt.Errorf("%w: bytes look like a consensus vote or proposal; refusing to sign them outside HRS protection", ErrBadRequest)
	}
	digest := sha256.Sum256(msg)
	rec := &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_Unslashable{Unslashable: &commandpb.Unslashable{Pubkey: pubkey, Kind: kind, SigningRoot: digest[:]}}}
	if _, err := p.commit(ctx, rec, &obs, nil); err != nil {
		return nil, err
	}
	t := time.Now()
	sig, err = p.cfg.Ed25519.SignEd25519(ctx, pubkey, msg)
	obs.Sign = time.Since(t)
	if err != nil {
		obs.HSMFailed = true
		return nil, fmt.Errorf("%w: HSM signing failed: %w", ErrCannotSign, err)
	}
	return sig, nil
}

// commit records rec and returns its outcome when accepted. It first
// evaluates rec against this region's applied state, so a slashable or
// invalid request is refused with its reason on any region, holder or not,
// without a write; the state machine evaluates it again at apply time.
//
// ready, when set, is asked after the local check and before the write: a
// region that could not sign the record once committed refuses instead.
func (p *Pipeline) commit(ctx context.Context, rec *commandpb.ProtectionRecord, obs *Observation, ready func() error) (leader.Outcome, error) {
	var pre leader.Outcome
	p.cfg.State.View(func(s *leader.State, _ uint64) { pre = s.CheckRecord(rec) })
	if pre.Decision != slashing.DecisionAccepted {
		return pre, outcomeError(pre)
	}
	if ready != nil {
		if err := ready(); err != nil {
			return pre, fmt.Errorf("%w: nothing recorded: %w", ErrCannotSign, err)
		}
	}
	t := time.Now()
	outs, index, epoch, err := p.cfg.Recorder.Record(ctx, []*commandpb.ProtectionRecord{rec})
	obs.Commit = time.Since(t)
	if err != nil {
		return leader.Outcome{}, fmt.Errorf("%w: %w", ErrCannotSign, err)
	}
	if len(outs) != 1 {
		return leader.Outcome{}, fmt.Errorf("%w: %d outcomes for one record", ErrCannotSign, len(outs))
	}
	o := outs[0]
	if err := outcomeError(o); err != nil {
		p.cfg.Logger.Info("record refused", "index", index, "lease_epoch", epoch, "rule", string(o.Rule), "reason", o.Reason)
		return o, err
	}
	return o, nil
}

// outcomeError maps an FSM outcome to nil (accepted) or a sentinel.
func outcomeError(o leader.Outcome) error {
	switch o.Decision {
	case slashing.DecisionAccepted:
		return nil
	case slashing.DecisionDenied:
		return &Refusal{Decision: o.Decision, Rule: o.Rule, Reason: o.Reason, base: ErrSlashable}
	case slashing.DecisionFailed:
		switch {
		case errors.Is(o.Err, leader.ErrUnknownKey):
			return &Refusal{Decision: o.Decision, Reason: o.Reason, base: ErrUnknownKey}
		case errors.Is(o.Err, leader.ErrExitNotApproved):
			return &Refusal{Decision: o.Decision, Reason: o.Reason, base: ErrNotApproved}
		case errors.Is(o.Err, leader.ErrKeyDisabled):
			return &Refusal{Decision: o.Decision, Reason: o.Reason, base: ErrForbidden}
		}
		return &Refusal{Decision: o.Decision, Reason: o.Reason, base: ErrBadRequest}
	default:
		return &Refusal{Decision: o.Decision, Reason: "no decision (fail closed)", base: ErrCannotSign}
	}
}

func (p *Pipeline) observe(o *Observation, start time.Time, err error) {
	o.Total = time.Since(start)
	o.Outcome = OutcomeLabel(err)
	var r *Refusal
	if errors.As(err, &r) {
		o.Rule = r.Rule
	}
	if p.cfg.Observe != nil {
		p.cfg.Observe(*o)
	}
}

// OutcomeLabel is the stable metric/log label for a pipeline result.
func OutcomeLabel(err error) string {
	switch {
	case err == nil:
		return "signed"
	case errors.Is(err, ErrSlashable):
		return "slashable"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, ErrNotApproved):
		return "not_approved"
	case errors.Is(err, ErrBadRequest):
		return "bad_request"
	case errors.Is(err, leader.ErrNotHolder):
		return "not_lease_holder"
	case errors.Is(err, leader.ErrMaybeCommitted):
		return "maybe_committed"
	case errors.Is(err, leader.ErrNotLeader), errors.Is(err, leader.ErrUnavailable):
		return "no_quorum"
	default:
		return "unavailable"
	}
}
