//go:build unix && !linux

package bls

func excludeFromCoreDump([]byte) {}
