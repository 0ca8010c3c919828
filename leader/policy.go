package leader

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

// More sentinel errors. Match with errors.Is.
var (
	// ErrInvalidPolicy: a SetPolicy command is malformed.
	ErrInvalidPolicy = errors.New("leader: invalid policy")
	// ErrInvalidRegion: a RegisterRegion command is malformed or not from
	// the region it names.
	ErrInvalidRegion = errors.New("leader: invalid region registration")
	// ErrExitNotApproved: a voluntary exit without a committed approval, or
	// with a different signing root than the approved exit already signed.
	ErrExitNotApproved = errors.New("leader: voluntary exit not approved")
)

// KindVoluntaryExit is the Unslashable kind that needs an ApproveExit.
const KindVoluntaryExit = "VOLUNTARY_EXIT"

// Region is a region's published HSM identity.
type Region struct {
	ID            string
	WrapPublicKey []byte // PKIX DER, RSA
	WrapKeyID     []byte // SHA-256 of WrapPublicKey
	HSMToken      string
	Index         uint64
}

// Policy is what one client identity may sign.
type Policy struct {
	Identity     string
	KeyPatterns  []string
	MessageTypes []string
}

// Allows reports whether the policy covers pubkey and message type.
func (p Policy) Allows(pubkey []byte, msgType string) bool {
	return p.allowsKey(pubkey) && p.allowsType(msgType)
}

func (p Policy) allowsKey(pubkey []byte) bool {
	h := "0x" + hex.EncodeToString(pubkey)
	for _, pat := range p.KeyPatterns {
		if pat == "*" || pat == h {
			return true
		}
		if prefix, ok := strings.CutSuffix(pat, "*"); ok && strings.HasPrefix(h, prefix) {
			return true
		}
	}
	return false
}

func (p Policy) allowsType(t string) bool {
	for _, m := range p.MessageTypes {
		if m == "*" || m == t {
			return true
		}
	}
	return false
}

// ExitApproval is a committed operator approval for one voluntary exit.
type ExitApproval struct {
	Pubkey   []byte
	Operator string
	Reason   string
	Index    uint64
	// UsedRoot is the signing root of the exit signed under this approval;
	// only an identical retry may be signed again.
	UsedRoot []byte
}

// Policy returns the policy of a client identity.
func (s *State) Policy(identity string) (Policy, bool) {
	p, ok := s.policies[identity]
	return p, ok
}

// Policies returns every policy, sorted by identity.
func (s *State) Policies() []Policy {
	out := make([]Policy, 0, len(s.policies))
	for _, p := range s.policies {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identity < out[j].Identity })
	return out
}

// Region returns a region's published HSM identity.
func (s *State) Region(id string) (Region, bool) {
	r, ok := s.regions[id]
	return r, ok
}

// Regions returns every registered region, sorted by id.
func (s *State) Regions() []Region {
	out := make([]Region, 0, len(s.regions))
	for _, r := range s.regions {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ExitApproval returns the approval for pubkey.
func (s *State) ExitApproval(pubkey []byte) (ExitApproval, bool) {
	a, ok := s.exits[string(pubkey)]
	if !ok {
		return ExitApproval{}, false
	}
	return *a, true
}

func validPattern(p string) bool {
	if p == "*" {
		return true
	}
	body, _ := strings.CutSuffix(p, "*")
	h, ok := strings.CutPrefix(body, "0x")
	if !ok || len(h) > 96 || (len(h) == 0 && body == p) {
		return false
	}
	_, err := hex.DecodeString(h + strings.Repeat("0", len(h)%2))
	return err == nil && strings.ToLower(h) == h
}

func validType(t string) bool {
	if t == "*" {
		return true
	}
	if t == "" || len(t) > 64 {
		return false
	}
	for _, c := range t {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (s *State) applySetPolicy(e fsm.Entry) (any, error) {
	var cmd commandpb.SetPolicy
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	if cmd.Identity == "" || len(cmd.Identity) > 63 {
		return nil, fmt.Errorf("%w: identity %q", ErrInvalidPolicy, cmd.Identity)
	}
	if cmd.Remove {
		if _, ok := s.policies[cmd.Identity]; !ok {
			return nil, fmt.Errorf("%w: no policy for %q", ErrInvalidPolicy, cmd.Identity)
		}
		delete(s.policies, cmd.Identity)
		return nil, nil
	}
	if len(cmd.KeyPatterns) == 0 || len(cmd.MessageTypes) == 0 || len(cmd.KeyPatterns) > 1000 || len(cmd.MessageTypes) > 64 {
		return nil, fmt.Errorf("%w: %q needs 1..1000 key patterns and 1..64 message types", ErrInvalidPolicy, cmd.Identity)
	}
	for _, p := range cmd.KeyPatterns {
		if !validPattern(p) {
			return nil, fmt.Errorf("%w: key pattern %q (want *, 0x<lower-case hex> or 0x<hex prefix>*)", ErrInvalidPolicy, p)
		}
	}
	for _, t := range cmd.MessageTypes {
		if !validType(t) {
			return nil, fmt.Errorf("%w: message type %q", ErrInvalidPolicy, t)
		}
	}
	p := Policy{Identity: cmd.Identity, KeyPatterns: append([]string(nil), cmd.KeyPatterns...), MessageTypes: append([]string(nil), cmd.MessageTypes...)}
	s.policies[cmd.Identity] = p
	return p, nil
}

func (s *State) applyRegisterRegion(e fsm.Entry) (any, error) {
	var cmd commandpb.RegisterRegion
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	if _, ok := s.members[cmd.Region]; !ok {
		return nil, fmt.Errorf("%w: %q is not a member", ErrInvalidRegion, cmd.Region)
	}
	if e.Envelope.Proposer != cmd.Region {
		return nil, fmt.Errorf("%w: %q registered by %q; a region registers itself", ErrInvalidRegion, cmd.Region, e.Envelope.Proposer)
	}
	pub, err := x509.ParsePKIXPublicKey(cmd.WrapPublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: wrap public key: %v", ErrInvalidRegion, err)
	}
	if err := checkWrapKey(pub); err != nil {
		return nil, err
	}
	id := sha256.Sum256(cmd.WrapPublicKey)
	r := Region{ID: cmd.Region, WrapPublicKey: append([]byte(nil), cmd.WrapPublicKey...), WrapKeyID: id[:], HSMToken: cmd.HsmToken, Index: e.Index}
	s.regions[cmd.Region] = r
	return r, nil
}

func (s *State) applyApproveExit(e fsm.Entry) (any, error) {
	var cmd commandpb.ApproveExit
	if err := fsm.Decode(e, &cmd); err != nil {
		return nil, err
	}
	k, ok := s.keys[string(cmd.Pubkey)]
	if !ok {
		return nil, fmt.Errorf("%w: %x", ErrUnknownKey, cmd.Pubkey)
	}
	if k.Scheme != commandpb.Scheme_SCHEME_BLS12381 {
		return nil, fmt.Errorf("%w: exits are for Ethereum validator keys", ErrInvalidInput)
	}
	if cmd.Operator == "" {
		return nil, fmt.Errorf("%w: an exit approval names its operator", ErrInvalidInput)
	}
	if _, ok := s.exits[string(cmd.Pubkey)]; ok {
		return nil, fmt.Errorf("%w: an exit for %x is already approved", ErrInvalidInput, cmd.Pubkey)
	}
	a := &ExitApproval{Pubkey: append([]byte(nil), cmd.Pubkey...), Operator: cmd.Operator, Reason: cmd.Reason, Index: e.Index}
	s.exits[string(cmd.Pubkey)] = a
	return *a, nil
}

// checkExit decides an exit record; when record is set, the approval is
// bound to the signing root.
func (s *State) checkExit(pubkey, root []byte, record bool) error {
	a, ok := s.exits[string(pubkey)]
	switch {
	case !ok:
		return fmt.Errorf("%w: no committed operator approval for %x", ErrExitNotApproved, pubkey)
	case a.UsedRoot != nil && string(a.UsedRoot) != string(root):
		return fmt.Errorf("%w: the approved exit for %x was signed with root %x, requested %x", ErrExitNotApproved, pubkey, a.UsedRoot, root)
	}
	if record && a.UsedRoot == nil {
		a.UsedRoot = append([]byte(nil), root...)
	}
	return nil
}
