package bls

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Sizes of the min-pk scheme.
const (
	SecretKeySize = 32
	PublicKeySize = 48
	SignatureSize = 96
)

// DST is the domain separation tag of the proof-of-possession ciphersuite
// Ethereum uses.
const DST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"

// Sentinel errors; match with errors.Is.
var (
	// ErrInvalidKey: a secret key is not 32 bytes in [1, r-1], or a public key
	// is not a well-formed hex string of 48 bytes.
	ErrInvalidKey = errors.New("bls: invalid key")
	// ErrKeyExists: the store already holds this key. Nothing was written.
	ErrKeyExists = errors.New("bls: key already in store")
	// ErrKeyNotFound: the store has no file for this public key.
	ErrKeyNotFound = errors.New("bls: key not in store")
	// ErrKeyNotLoaded: the key set was zeroed, or never held this key.
	ErrKeyNotLoaded = errors.New("bls: key not loaded")
	// ErrCorruptStore: a file in the store is malformed: bad name, bad size,
	// or its content does not belong to the public key it is named after.
	ErrCorruptStore = errors.New("bls: corrupt key store")
	// ErrUnseal: the Sealer could not open a sealed key (wrong HSM, wrong
	// additional data, tampered file, HSM failure). The Sealer's error is
	// wrapped too.
	ErrUnseal = errors.New("bls: cannot unseal key")
	// ErrSeal: the Sealer could not seal a key, or the sealed key did not
	// open again. Nothing was written.
	ErrSeal = errors.New("bls: cannot seal key")
	// ErrIO: reading or writing the store directory failed.
	ErrIO = errors.New("bls: key store I/O failed")
	// ErrMemoryLock: memory for the key set could not be locked and the
	// store was configured to require it.
	ErrMemoryLock = errors.New("bls: cannot lock key memory")
)

// Sealer encrypts and decrypts small secrets under a key that never leaves
// the region's HSM (signer/hsm.SealingKey implements it).
//
// Store calls it from several goroutines at once (up to
// StoreOptions.Workers). Seal must bind aad so that Unseal with different aad
// fails; Unseal must fail, not return garbage, for a blob sealed under a
// different key or modified in any way. The returned plaintext belongs to the
// caller, which zeroes it.
type Sealer interface {
	Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Unseal(ctx context.Context, blob, aad []byte) ([]byte, error)
}

// PublicKey is a compressed G1 public key. Values of type [48]byte convert
// implicitly.
type PublicKey [PublicKeySize]byte

// String returns the 0x-prefixed lowercase hex form used by the Ethereum
// APIs.
func (p PublicKey) String() string { return "0x" + hex.EncodeToString(p[:]) }

// ParsePublicKey decodes a 96-digit hex public key, with or without the 0x
// prefix. It checks the length and hex only, not that the bytes are a valid
// G1 point.
func ParsePublicKey(s string) (PublicKey, error) {
	var p PublicKey
	h := strings.TrimPrefix(s, "0x")
	if len(h) != 2*PublicKeySize {
		return p, fmt.Errorf("%w: public key %q: want %d hex digits", ErrInvalidKey, s, 2*PublicKeySize)
	}
	if _, err := hex.Decode(p[:], []byte(h)); err != nil {
		return PublicKey{}, fmt.Errorf("%w: public key %q: %v", ErrInvalidKey, s, err)
	}
	return p, nil
}
