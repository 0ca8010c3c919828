package bls

import (
	"fmt"
	"slices"
	"sync"

	"github.com/supranational/blst/bindings/go"
)

// KeySet holds unsealed secret keys in locked memory and signs with them.
// It is safe for concurrent use: Sign calls run in parallel, Zero waits for
// them and then wipes the keys.
type KeySet struct {
	dst []byte

	mu     sync.RWMutex
	mem    *keyMemory // nil once zeroed
	index  map[PublicKey]int
	pubs   []PublicKey
	locked bool
}

func newKeySet(pubs []PublicKey, mem *keyMemory) *KeySet {
	idx := make(map[PublicKey]int, len(pubs))
	for i, pk := range pubs {
		idx[pk] = i
	}
	return &KeySet{dst: []byte(DST), mem: mem, index: idx, pubs: pubs, locked: mem.locked}
}

// Sign signs the 32-byte signing root with the key of pubkey and returns the
// 96-byte compressed G2 signature. It fails with ErrKeyNotLoaded if the key
// set was zeroed or does not hold pubkey. Signing is deterministic. Sign
// does not check slashing protection: callers sign only roots whose record
// is committed (DESIGN.md I1).
func (k *KeySet) Sign(pubkey PublicKey, signingRoot [32]byte) ([SignatureSize]byte, error) {
	var out [SignatureSize]byte
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.mem == nil {
		return out, fmt.Errorf("%w: key set zeroed", ErrKeyNotLoaded)
	}
	i, ok := k.index[pubkey]
	if !ok {
		return out, fmt.Errorf("%w: %s", ErrKeyNotLoaded, pubkey)
	}
	sig := new(blst.P2Affine).Sign(k.mem.key(i), signingRoot[:], k.dst)
	copy(out[:], sig.Compress())
	return out, nil
}

// Zero wipes every secret key, unlocks and releases the memory. Sign fails
// with ErrKeyNotLoaded afterwards. Zero waits for Sign calls in progress and
// may be called any number of times.
func (k *KeySet) Zero() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mem == nil {
		return
	}
	for i := range k.pubs {
		k.mem.key(i).Zeroize()
	}
	k.mem.free()
	k.mem = nil
}

// Zeroed reports whether Zero has run.
func (k *KeySet) Zeroed() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.mem == nil
}

// Has reports whether the key set holds pubkey and has not been zeroed.
func (k *KeySet) Has(pubkey PublicKey) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.index[pubkey]
	return ok && k.mem != nil
}

// PublicKeys returns the public keys of the set, sorted (also after Zero).
func (k *KeySet) PublicKeys() []PublicKey {
	return slices.Clone(k.pubs) // sorted by Store.List
}

// Len returns the number of keys in the set.
func (k *KeySet) Len() int { return len(k.pubs) }

// MemoryLocked reports whether the keys' memory was locked against
// swapping (see StoreOptions.RequireLockedMemory).
func (k *KeySet) MemoryLocked() bool { return k.locked }
