package ssz

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
)

// naiveMerkleize is the brute-force reference: materialise every leaf of the
// padded tree, then hash level by level.
func naiveMerkleize(chunks [][32]byte, limit uint64) [32]byte {
	width := uint64(1)
	for width < limit {
		width *= 2
	}
	leaves := make([][32]byte, width)
	copy(leaves, chunks)
	for len(leaves) > 1 {
		next := make([][32]byte, len(leaves)/2)
		for i := range next {
			next[i] = sha256.Sum256(append(leaves[2*i][:], leaves[2*i+1][:]...))
		}
		leaves = next
	}
	return leaves[0]
}

func mustHex32(t *testing.T, s string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hex %q", s)
	}
	return [32]byte(b)
}

func TestZeroSubtreeHashes(t *testing.T) {
	// Published zero-subtree hashes (zerohashes[1], zerohashes[2]).
	tests := []struct {
		limit uint64
		want  string
	}{
		{limit: 0, want: "0000000000000000000000000000000000000000000000000000000000000000"},
		{limit: 1, want: "0000000000000000000000000000000000000000000000000000000000000000"},
		{limit: 2, want: "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b"},
		{limit: 3, want: "db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71"},
		{limit: 4, want: "db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71"},
	}
	for _, tt := range tests {
		got, err := Merkleize(nil, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got != mustHex32(t, tt.want) {
			t.Errorf("Merkleize(nil, %d) = %x, want %s", tt.limit, got, tt.want)
		}
	}
}

func TestMerkleizeMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		limit := uint64(rng.IntN(70))
		n := 0
		if limit > 0 {
			n = rng.IntN(int(limit) + 1)
		}
		chunks := make([][32]byte, n)
		for i := range chunks {
			for j := range chunks[i] {
				chunks[i][j] = byte(rng.Uint32())
			}
		}
		orig := make([][32]byte, n)
		copy(orig, chunks)
		got, err := Merkleize(chunks, limit)
		if err != nil {
			t.Fatalf("limit %d n %d: %v", limit, n, err)
		}
		if want := naiveMerkleize(chunks, limit); got != want {
			t.Fatalf("limit %d n %d: got %x want %x", limit, n, got, want)
		}
		for i := range chunks {
			if chunks[i] != orig[i] {
				t.Fatalf("Merkleize modified its input")
			}
		}
	}
}

func TestMerkleizeRefusesOverLimit(t *testing.T) {
	_, err := Merkleize(make([][32]byte, 3), 2)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestUint64Root(t *testing.T) {
	got := Uint64Root(0x0102030405060708)
	want := [32]byte{0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}
	if got != want {
		t.Fatalf("got %x", got)
	}
}

func TestBytesRoot(t *testing.T) {
	// 48 bytes: two chunks, hashed together.
	pk := bytes.Repeat([]byte{0xab}, 48)
	var c0, c1 [32]byte
	copy(c0[:], pk[:32])
	copy(c1[:], pk[32:])
	if got, want := BytesRoot(pk), sha256.Sum256(append(c0[:], c1[:]...)); got != want {
		t.Fatalf("48-byte root %x want %x", got, want)
	}
	// 96 bytes: three chunks padded to four.
	sig := make([]byte, 96)
	for i := range sig {
		sig[i] = byte(i)
	}
	var s [4][32]byte
	copy(s[0][:], sig[0:32])
	copy(s[1][:], sig[32:64])
	copy(s[2][:], sig[64:96])
	l := sha256.Sum256(append(s[0][:], s[1][:]...))
	r := sha256.Sum256(append(s[2][:], s[3][:]...))
	if got, want := BytesRoot(sig), sha256.Sum256(append(l[:], r[:]...)); got != want {
		t.Fatalf("96-byte root %x want %x", got, want)
	}
	// 4 bytes: one chunk, right-padded.
	if got, want := BytesRoot([]byte{1, 2, 3, 4}), ([32]byte{1, 2, 3, 4}); got != want {
		t.Fatalf("4-byte root %x", got)
	}
}

// naiveBits turns a serialized bitlist into bools, the delimiter removed.
func naiveBits(b []byte) []bool {
	var out []bool
	for _, x := range b {
		for i := 0; i < 8; i++ {
			out = append(out, x&(1<<i) != 0)
		}
	}
	// drop trailing zeros and the delimiter
	for len(out) > 0 && !out[len(out)-1] {
		out = out[:len(out)-1]
	}
	return out[:len(out)-1]
}

func naivePackBits(bs []bool) [][32]byte {
	var chunks [][32]byte
	for i, v := range bs {
		if i%256 == 0 {
			chunks = append(chunks, [32]byte{})
		}
		if v {
			chunks[i/256][(i%256)/8] |= 1 << (i % 8)
		}
	}
	return chunks
}

func TestBitlistRootMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 2000; iter++ {
		limit := uint64(1 + rng.IntN(1200))
		n := rng.IntN(int(limit) + 1)
		b := make([]byte, n/8+1)
		for i := 0; i < n; i++ {
			if rng.IntN(2) == 1 {
				b[i/8] |= 1 << (i % 8)
			}
		}
		b[n/8] |= 1 << (n % 8)
		orig := bytes.Clone(b)
		got, err := BitlistRoot(b, limit)
		if err != nil {
			t.Fatalf("n %d limit %d: %v", n, limit, err)
		}
		bs := naiveBits(b)
		if len(bs) != n {
			t.Fatalf("naive length %d want %d", len(bs), n)
		}
		var lenChunk [32]byte
		binary.LittleEndian.PutUint64(lenChunk[:], uint64(n))
		inner := naiveMerkleize(naivePackBits(bs), (limit+255)/256)
		want := sha256.Sum256(append(inner[:], lenChunk[:]...))
		if got != want {
			t.Fatalf("n %d limit %d: got %x want %x", n, limit, got, want)
		}
		if !bytes.Equal(b, orig) {
			t.Fatal("BitlistRoot modified its input")
		}
	}
}

func TestBitlistRejects(t *testing.T) {
	tests := []struct {
		name  string
		bits  []byte
		limit uint64
	}{
		{name: "empty", bits: nil, limit: 8},
		{name: "no delimiter", bits: []byte{0xff, 0x00}, limit: 16},
		{name: "over limit", bits: []byte{0xff, 0x01}, limit: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := BitlistRoot(tt.bits, tt.limit); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestBitlistLen(t *testing.T) {
	tests := []struct {
		bits []byte
		want uint64
	}{
		{bits: []byte{0x01}, want: 0},
		{bits: []byte{0x0b}, want: 3},
		{bits: []byte{0xff, 0x01}, want: 8},
		{bits: []byte{0x00, 0x00, 0x80}, want: 23},
	}
	for _, tt := range tests {
		got, err := BitlistLen(tt.bits)
		if err != nil || got != tt.want {
			t.Errorf("BitlistLen(%x) = %d, %v; want %d", tt.bits, got, err, tt.want)
		}
	}
}

func TestBitvectorRoot(t *testing.T) {
	b := make([]byte, 64)
	b[0], b[63] = 0x81, 0x80
	got, err := BitvectorRoot(b, 512)
	if err != nil {
		t.Fatal(err)
	}
	var c0, c1 [32]byte
	copy(c0[:], b[:32])
	copy(c1[:], b[32:])
	if want := sha256.Sum256(append(c0[:], c1[:]...)); got != want {
		t.Fatalf("got %x want %x", got, want)
	}
	if _, err := BitvectorRoot(b[:63], 512); !errors.Is(err, ErrInvalid) {
		t.Errorf("short bitvector: err = %v", err)
	}
	if _, err := BitvectorRoot([]byte{0x10}, 4); !errors.Is(err, ErrInvalid) {
		t.Errorf("padding bit set: err = %v", err)
	}
	if _, err := BitvectorRoot([]byte{0x0f}, 4); err != nil {
		t.Errorf("Bitvector[4] 0x0f: %v", err)
	}
}

func TestUint64ListRoot(t *testing.T) {
	vals := []uint64{1, 2, 3, 4, 5}
	got, err := Uint64ListRoot(vals, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var c0, c1 [32]byte
	for i, v := range vals {
		if i < 4 {
			binary.LittleEndian.PutUint64(c0[8*i:], v)
		} else {
			binary.LittleEndian.PutUint64(c1[8*(i-4):], v)
		}
	}
	inner := naiveMerkleize([][32]byte{c0, c1}, 2048*8/32)
	var lenChunk [32]byte
	lenChunk[0] = 5
	if want := sha256.Sum256(append(inner[:], lenChunk[:]...)); got != want {
		t.Fatalf("got %x want %x", got, want)
	}
	if _, err := Uint64ListRoot(make([]uint64, 3), 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("over limit: err = %v", err)
	}
}

func TestListRoot(t *testing.T) {
	elems := [][32]byte{{1}, {2}, {3}}
	got, err := ListRoot(elems, 16)
	if err != nil {
		t.Fatal(err)
	}
	inner := naiveMerkleize(elems, 16)
	var lenChunk [32]byte
	lenChunk[0] = 3
	if want := sha256.Sum256(append(inner[:], lenChunk[:]...)); got != want {
		t.Fatalf("got %x want %x", got, want)
	}
	if _, err := ListRoot(elems, 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("over limit: err = %v", err)
	}
}

// BytesRoot doubles as the root of byte-aligned bitvectors (used for the
// fixed Bitvector[128] and Bitvector[512] fields).
func TestBytesRootIsByteAlignedBitvectorRoot(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 8, 16, 31, 32, 33, 64, 100} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want, err := BitvectorRoot(b, uint64(8*n))
		if err != nil {
			t.Fatal(err)
		}
		if got := BytesRoot(b); got != want {
			t.Errorf("%d bytes: BytesRoot %x, BitvectorRoot %x", n, got, want)
		}
	}
}

// FuzzBitlistRoot compares BitlistRoot with the brute-force reference on
// arbitrary serialized bitlists and limits.
func FuzzBitlistRoot(f *testing.F) {
	f.Add([]byte{0x01}, uint16(8))
	f.Add([]byte{0x0b}, uint16(3))
	f.Add([]byte{0xff, 0x01}, uint16(8))
	f.Add([]byte{0xff, 0x00}, uint16(16))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, limit16 uint16) {
		limit := uint64(limit16)
		orig := bytes.Clone(b)
		got, err := BitlistRoot(b, limit)
		if !bytes.Equal(b, orig) {
			t.Fatal("input modified")
		}
		valid := len(b) > 0 && b[len(b)-1] != 0
		if valid {
			valid = uint64(len(naiveBits(b))) <= limit
		}
		if !valid {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("BitlistRoot(%x, %d) = %x, %v; want ErrInvalid", b, limit, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("BitlistRoot(%x, %d): %v", b, limit, err)
		}
		bs := naiveBits(b)
		var lenChunk [32]byte
		binary.LittleEndian.PutUint64(lenChunk[:], uint64(len(bs)))
		inner := naiveMerkleize(naivePackBits(bs), (limit+255)/256)
		if want := sha256.Sum256(append(inner[:], lenChunk[:]...)); got != want {
			t.Fatalf("BitlistRoot(%x, %d) = %x, want %x", b, limit, got, want)
		}
	})
}
