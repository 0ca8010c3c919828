package failover

import (
	"fmt"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

const maxExpiryWindow = opsig.MaxExpiryWindow

// Register installs the failover handlers (OPERATOR_COMMAND,
// CONFIRM_FINALITY, LEASE_HEARTBEAT, DR_TAKEOVER, BOOTSTRAP_OPERATORS) in
// r, which may also hold leader.Register's handlers (tests do that; the
// unsigned lease commands then stay reachable). The states r drives must
// carry the failover extension (NewLeaderState); without it every failover
// command fails with ErrNotEnabled.
func Register(r *fsm.Registry[*leader.State]) {
	register(r, &delegate{reg: leader.NewRegistry()})
}

// NewRegistry returns the production registry of a region running
// failover: the failover handlers, plus every leader command delegated to
// leader's own handlers, except that once operators are bootstrapped the
// unsigned FENCE_LEASE, ACTIVATE_LEASE, ADD_KEY, DISABLE_KEY, SET_POLICY
// and APPROVE_EXIT are refused with ErrUnsigned (their signed forms go
// through OPERATOR_COMMAND). Before bootstrap they behave as in leader, so
// a log written before failover was enabled replays identically. Accepted
// lease changes and control-plane commands among them are audited.
func NewRegistry() *fsm.Registry[*leader.State] {
	d := &delegate{reg: leader.NewRegistry()}
	r := fsm.NewRegistry[*leader.State]()
	register(r, d)
	for _, c := range leaderCommands() {
		r.Register(c.t, c.maxVersion, d.handler(c))
	}
	return r
}

// FSMConfig returns the state constructor and registry of a region
// running failover; the caller adds Fatal and Applied.
func FSMConfig() fsm.Config[*leader.State] {
	return fsm.Config[*leader.State]{New: NewLeaderState, Registry: NewRegistry()}
}

func register(r *fsm.Registry[*leader.State], d *delegate) {
	r.Register(commandpb.CommandType_OPERATOR_COMMAND, 1, with(func(s *State, ls *leader.State, e fsm.Entry) (any, error) {
		return s.applyOperator(ls, e, d)
	}))
	r.Register(commandpb.CommandType_CONFIRM_FINALITY, 1, with((*State).applyConfirmFinality))
	r.Register(commandpb.CommandType_LEASE_HEARTBEAT, 1, with((*State).applyHeartbeat))
	r.Register(commandpb.CommandType_DR_TAKEOVER, 1, with((*State).applyDRTakeover))
	r.Register(commandpb.CommandType_BOOTSTRAP_OPERATORS, 1, with((*State).applyBootstrap))
}

func with(fn func(*State, *leader.State, fsm.Entry) (any, error)) fsm.Handler[*leader.State] {
	return func(ls *leader.State, e fsm.Entry) (any, error) {
		s := From(ls)
		if s == nil {
			return nil, ErrNotEnabled
		}
		return fn(s, ls, e)
	}
}

// leaderCommand is one leader command NewRegistry delegates.
type leaderCommand struct {
	t          commandpb.CommandType
	maxVersion uint32
	// unsignedGated: refused once operators are bootstrapped.
	unsignedGated bool
	// audit is the audit action of an accepted entry ("" = not audited).
	audit string
}

// leaderCommands lists every command leader.Register installs (a test
// checks the list against leader.NewRegistry).
func leaderCommands() []leaderCommand {
	return []leaderCommand{
		{commandpb.CommandType_RECORD_SIGNATURES, 1, false, ""},
		{commandpb.CommandType_GRANT_LEASE, 1, false, "lease.grant"},
		{commandpb.CommandType_FENCE_LEASE, 1, true, "lease.fence"},
		{commandpb.CommandType_ACTIVATE_LEASE, 1, true, "lease.activate"},
		// Key registry changes stay open to regions after bootstrap: the
		// Keymanager API authenticates operators by certificate at the
		// region and proposes them unsigned, and neither can create a
		// slashing risk (a new key starts from its imported history; a
		// disabled key only stops signing). They are audited with the
		// proposing region; signed forms exist too (ACTION_KEYS).
		{commandpb.CommandType_ADD_KEY, 1, false, "keys.add"},
		{commandpb.CommandType_DISABLE_KEY, 1, false, "keys.disable"},
		{commandpb.CommandType_IMPORT_INTERCHANGE, 1, false, "interchange.import"},
		{commandpb.CommandType_PRUNE_HISTORY, 1, false, ""},
		{commandpb.CommandType_REGISTER_REGION, 1, false, "region.register"},
		{commandpb.CommandType_SET_POLICY, 1, true, "policy.set"},
		{commandpb.CommandType_APPROVE_EXIT, 1, true, "exit.approve"},
		{commandpb.CommandType_NOOP, 1, false, ""},
	}
}

// delegate runs leader's own handlers on a state. leader keeps its
// handlers unexported behind fsm.Registry, so the delegate applies the
// entry through a throw-away fsm.FSM whose state is the live one: the
// exact code path a plain leader registry would run, with leader's
// guarantee that a refused command changes nothing.
type delegate struct {
	reg *fsm.Registry[*leader.State]
}

// run applies env to ls at e's position with leader's handlers.
func (d *delegate) run(ls *leader.State, e fsm.Entry, env *commandpb.Envelope) (any, error) {
	data, err := proto.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("%w: re-encode %v: %v", ErrMalformed, env.GetType(), err)
	}
	f, err := fsm.New(fsm.Config[*leader.State]{New: func() *leader.State { return ls }, Registry: d.reg, Fatal: func(error) {}})
	if err != nil {
		return nil, err
	}
	resp, ok := f.Apply(&raft.Log{Index: e.Index, Term: e.Term, Type: raft.LogCommand, Data: data}).(fsm.Response)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected response from leader handler", ErrMalformed)
	}
	return resp.Value, resp.Err
}

// call applies one leader command built by this package (the signed forms
// of exit approval, policy and key commands) at e, stamped like e.
func (d *delegate) call(ls *leader.State, e fsm.Entry, t commandpb.CommandType, msg proto.Message) error {
	p, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	env := &commandpb.Envelope{Type: t, Version: 1, Payload: p,
		ProposedAtUnixNano: e.Envelope.GetProposedAtUnixNano(), Proposer: e.Envelope.GetProposer()}
	if _, err := d.run(ls, e, env); err != nil {
		return fmt.Errorf("%w: %w", ErrLeaderRefused, err)
	}
	return nil
}

// handler delegates one leader command type, gating and auditing it.
func (d *delegate) handler(c leaderCommand) fsm.Handler[*leader.State] {
	return func(ls *leader.State, e fsm.Entry) (any, error) {
		s := From(ls)
		if s == nil {
			return nil, ErrNotEnabled
		}
		if c.unsignedGated && s.Bootstrapped() {
			return nil, fmt.Errorf("%w: %v proposed by %q", ErrUnsigned, c.t, e.Envelope.GetProposer())
		}
		v, err := d.run(ls, e, e.Envelope)
		if err != nil || c.audit == "" {
			return v, err
		}
		s.appendAudit(ls, e, note{actor: e.Envelope.GetProposer(), action: c.audit, digest: payloadDigest(e),
			detail: fmt.Sprintf("unsigned %v (leader command)", c.t)}, OutcomeAccepted)
		return v, nil
	}
}

// opsig adapters: map opsig's errors onto this package's sentinels.

func opsigDecodeSigned(payload []byte) (*failoverpb.SignedCommand, error) {
	sc, err := opsig.DecodeSigned(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return sc, nil
}

func opsigDecodeBody(body []byte) (*failoverpb.OperatorCommand, error) {
	cmd, err := opsig.DecodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return cmd, nil
}

func opsigVerify(der, body, sig []byte) error { return opsig.VerifySignature(der, body, sig) }

// normalizeKey parses an operator key and returns its canonical PKIX DER.
func normalizeKey(der []byte) ([]byte, error) {
	pub, err := opsig.ParsePublicKey(der)
	if err != nil {
		return nil, err
	}
	return opsig.MarshalPublicKey(pub)
}
