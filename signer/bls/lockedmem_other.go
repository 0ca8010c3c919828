//go:build !unix

package bls

import "errors"

// newKeyMemory on platforms without mmap/mlock: Go heap, never locked.
func newKeyMemory(n int, _ func([]byte) error) (*keyMemory, error) {
	return &keyMemory{buf: make([]byte, max(n, 1)*secretKeySlot), lockErr: errors.ErrUnsupported}, nil
}

func (m *keyMemory) release() {}
