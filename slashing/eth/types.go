package eth

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/regent-signer/regent/slashing"
)

// Root is a 32-byte SSZ root: a genesis_validators_root or a signing root.
type Root [32]byte

// Pubkey is a 48-byte compressed BLS12-381 public key. It is not checked to
// be a valid curve point; it is an identifier here.
type Pubkey [48]byte

// String returns the 0x-prefixed lower-case hex form.
func (r Root) String() string { return "0x" + hex.EncodeToString(r[:]) }

// String returns the 0x-prefixed lower-case hex form.
func (p Pubkey) String() string { return "0x" + hex.EncodeToString(p[:]) }

// ParseRoot parses a 0x-prefixed hex string of exactly 32 bytes. Errors wrap
// slashing.ErrInvalidInput.
func ParseRoot(s string) (Root, error) {
	var r Root
	err := parseHex(s, r[:])
	return r, err
}

// ParsePubkey parses a 0x-prefixed hex string of exactly 48 bytes. Errors
// wrap slashing.ErrInvalidInput.
func ParsePubkey(s string) (Pubkey, error) {
	var p Pubkey
	err := parseHex(s, p[:])
	return p, err
}

// parseHex decodes "0x" + 2*len(dst) hex digits into dst.
func parseHex(s string, dst []byte) error {
	if len(s) < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return fmt.Errorf("%w: %q: want 0x-prefixed hex", slashing.ErrInvalidInput, clip(s))
	}
	body := s[2:]
	if len(body) != 2*len(dst) {
		return fmt.Errorf("%w: %q: want %d bytes of hex, got %d hex digits",
			slashing.ErrInvalidInput, clip(s), len(dst), len(body))
	}
	if _, err := hex.Decode(dst, []byte(body)); err != nil {
		return fmt.Errorf("%w: %q: %v", slashing.ErrInvalidInput, clip(s), err)
	}
	return nil
}

// clip shortens attacker-controlled strings quoted in error messages.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// SigningRoot is a signing root that may be absent: the interchange format
// lets an exporter omit signing_root. An absent root is never equal to any
// root, present or absent, so a record with an absent root refuses every
// later request at its slot or target.
//
// The zero value is absent.
type SigningRoot struct {
	Value   Root
	Present bool
}

// KnownRoot returns a present SigningRoot holding r.
func KnownRoot(r Root) SigningRoot { return SigningRoot{Value: r, Present: true} }

// Matches reports whether both roots are present and equal. It is the only
// test under which a request counts as a repeat of a signed record.
func (s SigningRoot) Matches(o SigningRoot) bool {
	return s.Present && o.Present && s.Value == o.Value
}

// sameRecord reports whether two roots describe the same record for merging:
// both present and equal, or both absent.
func (s SigningRoot) sameRecord(o SigningRoot) bool {
	if s.Present != o.Present {
		return false
	}
	return !s.Present || s.Value == o.Value
}

// String returns the hex root, or "(absent)".
func (s SigningRoot) String() string {
	if !s.Present {
		return "(absent)"
	}
	return s.Value.String()
}

// Options bound the memory a State uses per key and fix the chain constant
// Prune needs. Options are part of the replicated state: every replica must
// use the same values (ReadState restores the values the snapshot was written
// with). The zero value of a field means its default.
type Options struct {
	// MaxBlocks is the most block records kept per key; beyond it the oldest
	// fold into the block floor. Default 1024.
	MaxBlocks int
	// MaxAttestations is the most attestation records kept per key; beyond
	// it the oldest fold into the source/target floors. Default 4096.
	MaxAttestations int
	// SlotsPerEpoch converts a finalized epoch to its first slot in Prune.
	// Default 32 (mainnet).
	SlotsPerEpoch uint64
}

// Limits on Options, so a snapshot header cannot ask for absurd sizes.
const (
	DefaultMaxBlocks       = 1024
	DefaultMaxAttestations = 4096
	DefaultSlotsPerEpoch   = 32
	// MaxRecordsLimit is the largest MaxBlocks or MaxAttestations accepted.
	MaxRecordsLimit = 1 << 20
)

// ErrInvalidOptions marks Options outside their limits.
var ErrInvalidOptions = errors.New("eth: invalid options")

// DefaultOptions returns the defaults: 1024 blocks, 4096 attestations per key,
// 32 slots per epoch.
func DefaultOptions() Options {
	return Options{
		MaxBlocks:       DefaultMaxBlocks,
		MaxAttestations: DefaultMaxAttestations,
		SlotsPerEpoch:   DefaultSlotsPerEpoch,
	}
}

// withDefaults fills zero fields with their defaults.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.MaxBlocks == 0 {
		o.MaxBlocks = d.MaxBlocks
	}
	if o.MaxAttestations == 0 {
		o.MaxAttestations = d.MaxAttestations
	}
	if o.SlotsPerEpoch == 0 {
		o.SlotsPerEpoch = d.SlotsPerEpoch
	}
	return o
}

// Validate checks the options after defaults are applied: both caps in
// [1, MaxRecordsLimit], SlotsPerEpoch in [1, 1<<20]. Errors wrap
// ErrInvalidOptions.
func (o Options) Validate() error {
	o = o.withDefaults()
	if o.MaxBlocks < 1 || o.MaxBlocks > MaxRecordsLimit {
		return fmt.Errorf("%w: MaxBlocks %d not in [1, %d]", ErrInvalidOptions, o.MaxBlocks, MaxRecordsLimit)
	}
	if o.MaxAttestations < 1 || o.MaxAttestations > MaxRecordsLimit {
		return fmt.Errorf("%w: MaxAttestations %d not in [1, %d]", ErrInvalidOptions, o.MaxAttestations, MaxRecordsLimit)
	}
	if o.SlotsPerEpoch < 1 || o.SlotsPerEpoch > 1<<20 {
		return fmt.Errorf("%w: SlotsPerEpoch %d not in [1, %d]", ErrInvalidOptions, o.SlotsPerEpoch, 1<<20)
	}
	return nil
}

// HighWater is the highest block slot and attestation target a key (or a
// whole chain) has recorded, including values folded into watermarks. It
// never decreases. The failover protocol fences the lease at this mark.
type HighWater struct {
	// Slot is meaningful only when HasBlock.
	Slot     uint64
	HasBlock bool
	// Target is meaningful only when HasAttestation.
	Target         uint64
	HasAttestation bool
}

// merge returns the component-wise maximum of h and o.
func (h HighWater) merge(o HighWater) HighWater {
	if o.HasBlock && (!h.HasBlock || o.Slot > h.Slot) {
		h.Slot, h.HasBlock = o.Slot, true
	}
	if o.HasAttestation && (!h.HasAttestation || o.Target > h.Target) {
		h.Target, h.HasAttestation = o.Target, true
	}
	return h
}

// Watermarks are a key's floors and retained record counts, for status pages,
// metrics and tests.
type Watermarks struct {
	// BlockFloor: a block at a slot <= BlockFloor is refused unless it is an
	// identical re-sign of a retained record. Meaningful when HasBlockFloor.
	BlockFloor    uint64
	HasBlockFloor bool
	// SourceFloor/TargetFloor: an attestation with source < SourceFloor or
	// target <= TargetFloor is refused unless it is an identical re-sign.
	// Meaningful when HasAttestationFloor.
	SourceFloor         uint64
	TargetFloor         uint64
	HasAttestationFloor bool
	// Blocks and Attestations count the retained records.
	Blocks       int
	Attestations int
}
