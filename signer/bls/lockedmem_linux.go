package bls

import "golang.org/x/sys/unix"

// excludeFromCoreDump keeps buf out of core dumps (best effort).
func excludeFromCoreDump(buf []byte) { _ = unix.Madvise(buf, unix.MADV_DONTDUMP) }
