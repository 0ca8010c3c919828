package bls

import (
	"unsafe"

	"github.com/supranational/blst/bindings/go"
)

// secretKeySlot is the size of one key in a keyMemory: blst's SecretKey is
// its 32-byte scalar and nothing else (checked by a test).
const secretKeySlot = SecretKeySize

// keyMemory is a block of memory outside the Go heap (where the platform
// allows) holding n blst secret keys, locked against swapping when
// permitted. It is not safe for concurrent use; KeySet serialises access.
type keyMemory struct {
	buf     []byte
	mapped  bool // buf came from mmap and must be unmapped
	locked  bool // buf is mlocked
	lockErr error
}

// key returns the i-th key slot, aliasing the block.
func (m *keyMemory) key(i int) *blst.SecretKey {
	slot := (*[secretKeySlot]byte)(m.buf[i*secretKeySlot : (i+1)*secretKeySlot])
	return (*blst.SecretKey)(unsafe.Pointer(slot))
}

// free zeroes the block, unlocks and releases it. The block is unusable
// afterwards.
func (m *keyMemory) free() {
	if m.buf == nil {
		return
	}
	clear(m.buf)
	m.release()
	m.buf = nil
}
