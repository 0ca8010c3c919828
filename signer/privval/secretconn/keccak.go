package secretconn

import (
	"encoding/binary"
	"math/bits"
)

// keccakF1600 applies the Keccak-f[1600] permutation (FIPS 202, 24 rounds)
// to a 200-byte state whose lanes are stored little-endian, as STROBE
// lays them out. It is only used by the handshake transcript, so it favours
// clarity over speed. property_test.go checks it against crypto/sha3.
func keccakF1600(st *[200]byte) {
	// Round constants of the ι step.
	rc := [24]uint64{
		0x0000000000000001, 0x0000000000008082, 0x800000000000808a, 0x8000000080008000,
		0x000000000000808b, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
		0x000000000000008a, 0x0000000000000088, 0x0000000080008009, 0x000000008000000a,
		0x000000008000808b, 0x800000000000008b, 0x8000000000008089, 0x8000000000008003,
		0x8000000000008002, 0x8000000000000080, 0x000000000000800a, 0x800000008000000a,
		0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
	}
	// Rotation offsets of the ρ step, indexed x + 5y.
	rho := [25]int{
		0, 1, 62, 28, 27,
		36, 44, 6, 55, 20,
		3, 10, 43, 25, 39,
		41, 45, 15, 21, 8,
		18, 2, 61, 56, 14,
	}
	var a [25]uint64
	for i := range a {
		a[i] = binary.LittleEndian.Uint64(st[8*i:])
	}
	for round := 0; round < 24; round++ {
		// θ
		var c [5]uint64
		for x := 0; x < 5; x++ {
			c[x] = a[x] ^ a[x+5] ^ a[x+10] ^ a[x+15] ^ a[x+20]
		}
		for x := 0; x < 5; x++ {
			d := c[(x+4)%5] ^ bits.RotateLeft64(c[(x+1)%5], 1)
			for y := 0; y < 25; y += 5 {
				a[x+y] ^= d
			}
		}
		// ρ and π: lane (x, y) moves to (y, 2x+3y).
		var b [25]uint64
		for x := 0; x < 5; x++ {
			for y := 0; y < 5; y++ {
				b[y+5*((2*x+3*y)%5)] = bits.RotateLeft64(a[x+5*y], rho[x+5*y])
			}
		}
		// χ
		for y := 0; y < 25; y += 5 {
			for x := 0; x < 5; x++ {
				a[x+y] = b[x+y] ^ (^b[(x+1)%5+y] & b[(x+2)%5+y])
			}
		}
		// ι
		a[0] ^= rc[round]
	}
	for i := range a {
		binary.LittleEndian.PutUint64(st[8*i:], a[i])
	}
}
