package leader

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/slashing/eth"
)

// Key is one entry of the replicated key registry.
type Key struct {
	Pubkey         []byte
	Scheme         commandpb.Scheme
	Network        string // Ethereum: 0x-hex genesis validators root; CometBFT: chain id
	Label          string
	Disabled       bool
	DisabledReason string
	AddedIndex     uint64
	// Wrapped holds the secret encrypted for each region's HSM wrapping key;
	// each region unwraps its own copy and seals it locally.
	Wrapped []*commandpb.WrappedSecret
}

// WrappedFor returns the ciphertext for region, if any.
func (k Key) WrappedFor(region string) (*commandpb.WrappedSecret, bool) {
	for _, w := range k.Wrapped {
		if w.Region == region {
			return w, true
		}
	}
	return nil, false
}

func cloneWrapped(in []*commandpb.WrappedSecret) []*commandpb.WrappedSecret {
	out := make([]*commandpb.WrappedSecret, 0, len(in))
	for _, w := range in {
		out = append(out, &commandpb.WrappedSecret{Region: w.Region, Ciphertext: append([]byte(nil), w.Ciphertext...), WrapKeyId: append([]byte(nil), w.WrapKeyId...)})
	}
	return out
}

// pubkeyLen is the encoded public key length of each scheme.
func pubkeyLen(s commandpb.Scheme) (int, bool) {
	switch s {
	case commandpb.Scheme_SCHEME_BLS12381:
		return 48, true
	case commandpb.Scheme_SCHEME_ED25519:
		return 32, true
	case commandpb.Scheme_SCHEME_SECP256K1, commandpb.Scheme_SCHEME_P256:
		return 33, true // compressed SEC1 point
	default:
		return 0, false
	}
}

// validateKey checks an AddKey command without touching state.
func validateKey(k *commandpb.AddKey) error {
	n, ok := pubkeyLen(k.Scheme)
	if !ok {
		return fmt.Errorf("%w: unknown scheme %v", ErrInvalidKey, k.Scheme)
	}
	if len(k.Pubkey) != n {
		return fmt.Errorf("%w: %v public key must be %d bytes, got %d", ErrInvalidKey, k.Scheme, n, len(k.Pubkey))
	}
	if k.Network == "" {
		return fmt.Errorf("%w: network is required (genesis validators root or chain id)", ErrInvalidKey)
	}
	if k.Scheme == commandpb.Scheme_SCHEME_BLS12381 {
		if _, err := ParseRoot(k.Network); err != nil {
			return fmt.Errorf("%w: BLS key network must be a 0x-hex genesis validators root: %w", ErrInvalidKey, err)
		}
	}
	if len(k.Label) > 256 || len(k.Network) > 256 {
		return fmt.Errorf("%w: label and network are limited to 256 bytes", ErrInvalidKey)
	}
	seen := map[string]bool{}
	for _, w := range k.Wrapped {
		if w.Region == "" || seen[w.Region] || len(w.Ciphertext) == 0 || len(w.Ciphertext) > 1024 || len(w.WrapKeyId) != 32 {
			return fmt.Errorf("%w: wrapped secret for region %q is malformed or repeated", ErrInvalidKey, w.Region)
		}
		seen[w.Region] = true
	}
	return nil
}

// ParseRoot decodes a 0x-prefixed 32-byte hex root.
func ParseRoot(s string) (eth.Root, error) {
	var r eth.Root
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return r, fmt.Errorf("%w: %q lacks the 0x prefix", ErrInvalidInput, s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return r, fmt.Errorf("%w: %q is not 32 bytes of hex", ErrInvalidInput, s)
	}
	copy(r[:], b)
	return r, nil
}

// RootHex renders a root as 0x-hex, the form used in the registry.
func RootHex(r eth.Root) string { return "0x" + hex.EncodeToString(r[:]) }

func root32(b []byte) (eth.Root, error) {
	var r eth.Root
	if len(b) != 32 {
		return r, fmt.Errorf("%w: root must be 32 bytes, got %d", ErrInvalidInput, len(b))
	}
	copy(r[:], b)
	return r, nil
}

func pubkey48(b []byte) (eth.Pubkey, error) {
	var p eth.Pubkey
	if len(b) != 48 {
		return p, fmt.Errorf("%w: BLS public key must be 48 bytes, got %d", ErrInvalidInput, len(b))
	}
	copy(p[:], b)
	return p, nil
}
