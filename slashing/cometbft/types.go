package cometbft

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Limits. They mirror CometBFT's own validity rules where one exists, and
// otherwise bound what a decoder will look at.
const (
	// MaxChainIDLen is CometBFT's limit on a chain id, in bytes
	// (types.MaxChainIDLen).
	MaxChainIDLen = 50
	// HashSize is the only non-empty hash length CometBFT accepts in a
	// BlockID (tmhash.Size).
	HashSize = 32
	// MaxSignBytesLen bounds vote and proposal sign bytes. The largest valid
	// canonical proposal is under 200 bytes.
	MaxSignBytesLen = 512
	// MaxVoteExtensionLen is CometBFT's limit on a vote extension
	// (types.MaxVoteExtensionSize).
	MaxVoteExtensionLen = 1 << 20
	// MaxVoteExtensionSignBytesLen bounds vote-extension sign bytes.
	MaxVoteExtensionSignBytesLen = MaxVoteExtensionLen + 128
	// MaxKeyIDLen bounds the key id a State is indexed by, in bytes.
	MaxKeyIDLen = 256
)

// Valid range of a google.protobuf.Timestamp: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999999Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// SignedMsgType is CometBFT's SignedMsgType enum (types.proto): the value of
// field 1 of canonical votes and proposals.
type SignedMsgType int32

// The message types that carry a height/round/step.
const (
	TypePrevote   SignedMsgType = 1
	TypePrecommit SignedMsgType = 2
	TypeProposal  SignedMsgType = 32
)

// String returns the lower-case name used in reasons and logs.
func (t SignedMsgType) String() string {
	switch t {
	case TypePrevote:
		return "prevote"
	case TypePrecommit:
		return "precommit"
	case TypeProposal:
		return "proposal"
	default:
		return fmt.Sprintf("type(%d)", int32(t))
	}
}

// Step is the consensus step within a round, as CometBFT's FilePV numbers
// it: propose < prevote < precommit.
type Step int8

// The steps. 0 is "nothing signed yet" and is never a valid request.
const (
	StepPropose   Step = 1
	StepPrevote   Step = 2
	StepPrecommit Step = 3
)

// String returns the lower-case name used in reasons and logs.
func (s Step) String() string {
	switch s {
	case StepPropose:
		return "propose"
	case StepPrevote:
		return "prevote"
	case StepPrecommit:
		return "precommit"
	default:
		return fmt.Sprintf("step(%d)", int8(s))
	}
}

// StepOf maps a message type to its step: proposal → propose (1),
// prevote → prevote (2), precommit → precommit (3). It reports false for any
// other type.
func StepOf(t SignedMsgType) (Step, bool) {
	switch t {
	case TypeProposal:
		return StepPropose, true
	case TypePrevote:
		return StepPrevote, true
	case TypePrecommit:
		return StepPrecommit, true
	default:
		return 0, false
	}
}

// HRS is a consensus position: height, round and step. Positions are totally
// ordered, height first, then round, then step.
type HRS struct {
	Height int64
	Round  int32
	Step   Step
}

// Compare returns -1, 0 or +1 as h is below, equal to or above o.
func (h HRS) Compare(o HRS) int {
	switch {
	case h.Height != o.Height:
		return cmp3(h.Height < o.Height)
	case h.Round != o.Round:
		return cmp3(h.Round < o.Round)
	case h.Step != o.Step:
		return cmp3(h.Step < o.Step)
	default:
		return 0
	}
}

func cmp3(less bool) int {
	if less {
		return -1
	}
	return 1
}

// String renders the position for reasons and logs, e.g.
// "height 10 round 0 step prevote".
func (h HRS) String() string {
	return fmt.Sprintf("height %d round %d step %s", h.Height, h.Round, h.Step)
}

// Validate reports whether h can be signed at all: height ≥ 1, round ≥ 0 and
// a known step. The error wraps ErrInvalidRequest.
func (h HRS) Validate() error {
	if h.Height < 1 {
		return fmt.Errorf("%w: height %d is not positive", ErrInvalidRequest, h.Height)
	}
	if h.Round < 0 {
		return fmt.Errorf("%w: round %d is negative", ErrInvalidRequest, h.Round)
	}
	if h.Step < StepPropose || h.Step > StepPrecommit {
		return fmt.Errorf("%w: step %d is not propose(1), prevote(2) or precommit(3)", ErrInvalidRequest, h.Step)
	}
	return nil
}

// Timestamp is a google.protobuf.Timestamp: seconds and nanoseconds since
// the Unix epoch, UTC. A valid Timestamp has 0 ≤ Nanos < 1e9 and lies
// between years 1 and 9999.
type Timestamp struct {
	Seconds int64
	Nanos   int32
}

// Time converts t to a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.Unix(t.Seconds, int64(t.Nanos)).UTC() }

// String renders t in RFC 3339 with nanoseconds.
func (t Timestamp) String() string { return t.Time().Format(time.RFC3339Nano) }

// validate reports whether t is a valid protobuf Timestamp.
func (t Timestamp) validate() error {
	if t.Nanos < 0 || t.Nanos >= 1e9 {
		return malformed("timestamp nanos %d out of [0, 1e9)", t.Nanos)
	}
	if t.Seconds < minTimestampSeconds || t.Seconds > maxTimestampSeconds {
		return malformed("timestamp seconds %d outside years 1..9999", t.Seconds)
	}
	return nil
}

// PartSetHeader is CometBFT's CanonicalPartSetHeader.
type PartSetHeader struct {
	Total uint32
	Hash  []byte
}

// BlockID is CometBFT's CanonicalBlockID. In sign bytes a BlockID is always
// complete: a 32-byte hash and a part-set header with Total > 0 and a
// 32-byte hash (CometBFT leaves a nil BlockID out of the sign bytes and
// rejects incomplete ones).
type BlockID struct {
	Hash          []byte
	PartSetHeader PartSetHeader
}

func (b BlockID) validate() error {
	if len(b.Hash) != HashSize {
		return malformed("block_id hash is %d bytes, want %d", len(b.Hash), HashSize)
	}
	if b.PartSetHeader.Total == 0 {
		return malformed("block_id part_set_header total is 0")
	}
	if len(b.PartSetHeader.Hash) != HashSize {
		return malformed("block_id part_set_header hash is %d bytes, want %d", len(b.PartSetHeader.Hash), HashSize)
	}
	return nil
}

func (b BlockID) equal(o BlockID) bool {
	return string(b.Hash) == string(o.Hash) &&
		b.PartSetHeader.Total == o.PartSetHeader.Total &&
		string(b.PartSetHeader.Hash) == string(o.PartSetHeader.Hash)
}

// CanonicalVote is the content of a vote's sign bytes (CometBFT's
// CanonicalVote: type=1, height=2 sfixed64, round=3 sfixed64, block_id=4,
// timestamp=5, chain_id=6).
type CanonicalVote struct {
	Type      SignedMsgType // TypePrevote or TypePrecommit
	Height    int64         // ≥ 1
	Round     int32         // ≥ 0
	BlockID   *BlockID      // nil for a vote for nil
	Timestamp Timestamp
	ChainID   string // 1..MaxChainIDLen bytes of UTF-8
}

// HRS returns the position the vote occupies.
func (v CanonicalVote) HRS() HRS {
	s, _ := StepOf(v.Type)
	return HRS{Height: v.Height, Round: v.Round, Step: s}
}

// Validate reports whether v satisfies CometBFT's validity rules for what
// goes into vote sign bytes. The error wraps ErrMalformedSignBytes.
func (v CanonicalVote) Validate() error {
	if v.Type != TypePrevote && v.Type != TypePrecommit {
		return malformed("vote type %d is not prevote(1) or precommit(2)", int32(v.Type))
	}
	if v.Height < 1 {
		return malformed("vote height %d is not positive", v.Height)
	}
	if v.Round < 0 {
		return malformed("vote round %d is negative", v.Round)
	}
	if v.BlockID != nil {
		if err := v.BlockID.validate(); err != nil {
			return err
		}
	}
	if err := v.Timestamp.validate(); err != nil {
		return err
	}
	return validateChainID(v.ChainID)
}

// CanonicalProposal is the content of a proposal's sign bytes (CometBFT's
// CanonicalProposal: type=1 (always 32), height=2 sfixed64, round=3
// sfixed64, pol_round=4 int64, block_id=5, timestamp=6, chain_id=7).
type CanonicalProposal struct {
	Height    int64 // ≥ 1
	Round     int32 // ≥ 0
	POLRound  int32 // -1 (no proof-of-lock) ≤ POLRound < Round
	BlockID   BlockID
	Timestamp Timestamp
	ChainID   string // 1..MaxChainIDLen bytes of UTF-8
}

// HRS returns the position the proposal occupies (step propose).
func (p CanonicalProposal) HRS() HRS {
	return HRS{Height: p.Height, Round: p.Round, Step: StepPropose}
}

// Validate reports whether p satisfies CometBFT's validity rules for what
// goes into proposal sign bytes. The error wraps ErrMalformedSignBytes.
func (p CanonicalProposal) Validate() error {
	if p.Height < 1 {
		return malformed("proposal height %d is not positive", p.Height)
	}
	if p.Round < 0 {
		return malformed("proposal round %d is negative", p.Round)
	}
	if p.POLRound < -1 || p.POLRound >= p.Round {
		return malformed("proposal pol_round %d outside [-1, round %d)", p.POLRound, p.Round)
	}
	if err := p.BlockID.validate(); err != nil {
		return err
	}
	if err := p.Timestamp.validate(); err != nil {
		return err
	}
	return validateChainID(p.ChainID)
}

// CanonicalVoteExtension is the content of a vote extension's sign bytes
// (CometBFT ≥ v0.38: extension=1, height=2 sfixed64, round=3 sfixed64,
// chain_id=4). Vote extensions are not slashable; see the package doc.
type CanonicalVoteExtension struct {
	Extension []byte // at most MaxVoteExtensionLen bytes; may be empty
	Height    int64  // ≥ 1
	Round     int32  // ≥ 0
	ChainID   string // 1..MaxChainIDLen bytes of UTF-8
}

// Validate reports whether e is a valid vote extension to sign. The error
// wraps ErrMalformedSignBytes.
func (e CanonicalVoteExtension) Validate() error {
	if len(e.Extension) > MaxVoteExtensionLen {
		return malformed("vote extension is %d bytes, limit %d", len(e.Extension), MaxVoteExtensionLen)
	}
	if e.Height < 1 {
		return malformed("vote extension height %d is not positive", e.Height)
	}
	if e.Round < 0 {
		return malformed("vote extension round %d is negative", e.Round)
	}
	return validateChainID(e.ChainID)
}

func validateChainID(id string) error {
	if id == "" {
		return malformed("chain_id is empty")
	}
	if len(id) > MaxChainIDLen {
		return malformed("chain_id is %d bytes, limit %d", len(id), MaxChainIDLen)
	}
	if !utf8.ValidString(id) {
		return malformed("chain_id is not valid UTF-8")
	}
	return nil
}

// Message is decoded consensus sign bytes: a vote or a proposal.
type Message struct {
	// Type selects which of Vote and Proposal is meaningful.
	Type     SignedMsgType
	Vote     CanonicalVote     // when Type is TypePrevote or TypePrecommit
	Proposal CanonicalProposal // when Type is TypeProposal
}

// HRS returns the position the message occupies.
func (m Message) HRS() HRS {
	if m.Type == TypeProposal {
		return m.Proposal.HRS()
	}
	return m.Vote.HRS()
}

// ChainID returns the chain id inside the message.
func (m Message) ChainID() string {
	if m.Type == TypeProposal {
		return m.Proposal.ChainID
	}
	return m.Vote.ChainID
}

// Timestamp returns the timestamp inside the message.
func (m Message) Timestamp() Timestamp {
	if m.Type == TypeProposal {
		return m.Proposal.Timestamp
	}
	return m.Vote.Timestamp
}

// diffExceptTimestamp lists, in field order, the proto field names in which
// a and b differ, leaving the timestamp out. nil means they are equal except
// perhaps for the timestamp.
func diffExceptTimestamp(a, b Message) []string {
	if a.Type != b.Type {
		return []string{"type"}
	}
	var d []string
	add := func(differs bool, name string) {
		if differs {
			d = append(d, name)
		}
	}
	if a.Type == TypeProposal {
		p, q := a.Proposal, b.Proposal
		add(p.Height != q.Height, "height")
		add(p.Round != q.Round, "round")
		add(p.POLRound != q.POLRound, "pol_round")
		add(!p.BlockID.equal(q.BlockID), "block_id")
		add(p.ChainID != q.ChainID, "chain_id")
		return d
	}
	v, w := a.Vote, b.Vote
	add(v.Height != w.Height, "height")
	add(v.Round != w.Round, "round")
	add(!blockIDPtrEqual(v.BlockID, w.BlockID), "block_id")
	add(v.ChainID != w.ChainID, "chain_id")
	return d
}

func blockIDPtrEqual(a, b *BlockID) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.equal(*b)
}

// int64FitsInt32 reports whether v is a valid int32.
func int64FitsInt32(v int64) bool { return v >= math.MinInt32 && v <= math.MaxInt32 }
