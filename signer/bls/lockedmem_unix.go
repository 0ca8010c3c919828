//go:build unix

package bls

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// newKeyMemory allocates room for n keys with anonymous private mmap,
// excludes it from core dumps (Linux) and tries to mlock it. Failing to lock
// (EPERM without CAP_IPC_LOCK, ENOMEM or EAGAIN over RLIMIT_MEMLOCK) is not
// an error here: locked stays false and lockErr says why. Failing to map
// falls back to the Go heap (never swapped-protected, never unmapped). Any
// other mlock error is returned. lock replaces unix.Mlock in tests.
func newKeyMemory(n int, lock func([]byte) error) (*keyMemory, error) {
	if lock == nil {
		lock = unix.Mlock
	}
	size := max(n, 1) * secretKeySlot
	page := os.Getpagesize()
	size = (size + page - 1) / page * page
	buf, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return &keyMemory{buf: make([]byte, size), lockErr: err}, nil
	}
	m := &keyMemory{buf: buf, mapped: true}
	excludeFromCoreDump(buf)
	switch err := lock(buf); {
	case err == nil:
		m.locked = true
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOMEM), errors.Is(err, unix.EAGAIN):
		m.lockErr = err
	default:
		_ = unix.Munmap(buf)
		return nil, err
	}
	return m, nil
}

func (m *keyMemory) release() {
	if m.locked {
		_ = unix.Munlock(m.buf)
		m.locked = false
	}
	if m.mapped {
		_ = unix.Munmap(m.buf)
		m.mapped = false
	}
}
