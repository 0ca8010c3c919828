package ssz

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// ErrInvalid is wrapped by every error of this package: the value does not
// fit the SSZ type it was hashed as.
var ErrInvalid = errors.New("ssz: invalid value")

// BytesPerChunk is the size of an SSZ chunk.
const BytesPerChunk = 32

// maxDepth bounds tree depth so that 1<<depth never overflows.
const maxDepth = 62

// Hash returns sha256(a || b), the spec's hash of two sibling nodes.
func Hash(a, b [32]byte) [32]byte {
	var buf [64]byte
	copy(buf[:32], a[:])
	copy(buf[32:], b[:])
	return sha256.Sum256(buf[:])
}

// Uint64Root returns hash_tree_root(uint64(v)): v little-endian, zero padded
// to one chunk.
func Uint64Root(v uint64) [32]byte {
	var c [32]byte
	binary.LittleEndian.PutUint64(c[:8], v)
	return c
}

// depthFor returns ceil(log2(limit)), i.e. the depth of a tree with
// next_pow_of_two(limit) leaves. depthFor(0) == depthFor(1) == 0.
func depthFor(limit uint64) int {
	if limit <= 1 {
		return 0
	}
	return bits.Len64(limit - 1)
}

// Merkleize returns merkleize(chunks, limit) as defined by the spec: the
// chunks padded with zero chunks to next_pow_of_two(limit) leaves, hashed
// pairwise up to a single root. limit must be at least len(chunks); a limit
// of 0 with no chunks yields the zero chunk.
func Merkleize(chunks [][32]byte, limit uint64) ([32]byte, error) {
	n := uint64(len(chunks))
	if n > limit {
		return [32]byte{}, fmt.Errorf("%w: %d chunks exceed limit %d", ErrInvalid, n, limit)
	}
	depth := depthFor(limit)
	if depth > maxDepth {
		return [32]byte{}, fmt.Errorf("%w: limit %d too large", ErrInvalid, limit)
	}
	return merkle(chunks, depth), nil
}

// merkle hashes chunks as the leftmost leaves of a tree of the given depth
// whose other leaves are zero. The caller guarantees len(chunks) <=
// 1<<depth. chunks is not modified.
func merkle(chunks [][32]byte, depth int) [32]byte {
	layer := make([][32]byte, len(chunks), len(chunks)+1)
	copy(layer, chunks)
	var zero [32]byte // zero-subtree hash at the current level
	for d := 0; d < depth; d++ {
		if len(layer)%2 == 1 {
			layer = append(layer, zero)
		}
		next := layer[:len(layer)/2]
		for i := range next {
			next[i] = Hash(layer[2*i], layer[2*i+1])
		}
		layer = next
		zero = Hash(zero, zero)
	}
	if len(layer) == 0 {
		return zero
	}
	return layer[0]
}

// merkleAll merkleizes chunks with a limit equal to their count, which
// cannot fail.
func merkleAll(chunks [][32]byte) [32]byte {
	return merkle(chunks, depthFor(uint64(len(chunks))))
}

// MixInLength returns mix_in_length(root, length): hash(root, uint64 chunk).
func MixInLength(root [32]byte, length uint64) [32]byte {
	return Hash(root, Uint64Root(length))
}

// pack splits b into chunks, right-padding the last one with zeros. An empty
// b yields no chunks.
func pack(b []byte) [][32]byte {
	chunks := make([][32]byte, (len(b)+BytesPerChunk-1)/BytesPerChunk)
	for i := range chunks {
		copy(chunks[i][:], b[i*BytesPerChunk:])
	}
	return chunks
}

// chunkCount returns how many chunks n bytes occupy.
func chunkCount(n uint64) uint64 { return (n + BytesPerChunk - 1) / BytesPerChunk }

// BytesRoot returns hash_tree_root of a ByteVector[len(b)] (for example a
// BLS public key, signature, or a 4- or 20-byte value): the bytes packed into
// chunks and merkleized with limit equal to their chunk count.
//
// For a byte-aligned Bitvector[8*len(b)] this is also its hash_tree_root:
// both pack the bytes and merkleize with a limit of ceil(len(b)/32) chunks.
func BytesRoot(b []byte) [32]byte {
	return merkleAll(pack(b))
}

// ContainerRoot returns hash_tree_root of a container whose fields have the
// given roots, in declaration order.
func ContainerRoot(fieldRoots ...[32]byte) [32]byte {
	return merkleAll(fieldRoots)
}

// VectorRoot returns hash_tree_root of a Vector of composite elements whose
// roots are given (for example Vector[Bytes32, 33]).
func VectorRoot(elemRoots [][32]byte) [32]byte {
	return ContainerRoot(elemRoots...)
}

// ListRoot returns hash_tree_root of a List[T, limit] of composite elements
// whose roots are given.
func ListRoot(elemRoots [][32]byte, limit uint64) ([32]byte, error) {
	root, err := Merkleize(elemRoots, limit)
	if err != nil {
		return [32]byte{}, fmt.Errorf("list: %w", err)
	}
	return MixInLength(root, uint64(len(elemRoots))), nil
}

// Uint64ListRoot returns hash_tree_root of a List[uint64, limit].
func Uint64ListRoot(vals []uint64, limit uint64) ([32]byte, error) {
	if uint64(len(vals)) > limit {
		return [32]byte{}, fmt.Errorf("%w: list of %d uint64 exceeds limit %d", ErrInvalid, len(vals), limit)
	}
	buf := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(buf[8*i:], v)
	}
	root, err := Merkleize(pack(buf), chunkCount(8*limit))
	if err != nil {
		return [32]byte{}, err
	}
	return MixInLength(root, uint64(len(vals))), nil
}

// BitlistLen returns the number of bits in an SSZ-serialized bitlist (the
// bits before the delimiter). It fails if b is empty or its last byte is
// zero (no delimiter).
func BitlistLen(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("%w: empty bitlist has no delimiter bit", ErrInvalid)
	}
	last := b[len(b)-1]
	if last == 0 {
		return 0, fmt.Errorf("%w: bitlist's last byte is zero (no delimiter bit)", ErrInvalid)
	}
	return uint64(len(b)-1)*8 + uint64(bits.Len8(last)) - 1, nil
}

// BitlistRoot returns hash_tree_root of a Bitlist[limit] given in its SSZ
// serialization (bits little-endian within bytes, followed by a single
// delimiter bit).
func BitlistRoot(b []byte, limit uint64) ([32]byte, error) {
	n, err := BitlistLen(b)
	if err != nil {
		return [32]byte{}, err
	}
	if n > limit {
		return [32]byte{}, fmt.Errorf("%w: bitlist of %d bits exceeds limit %d", ErrInvalid, n, limit)
	}
	data := make([]byte, (n+7)/8)
	copy(data, b)
	if n%8 != 0 {
		// The delimiter sits in the last data byte: clear it.
		data[len(data)-1] &^= 1 << (n % 8)
	}
	// When n is a multiple of 8 the delimiter is alone in the extra byte,
	// which data does not include.
	root, err := Merkleize(pack(data), (limit+255)/256)
	if err != nil {
		return [32]byte{}, err
	}
	return MixInLength(root, n), nil
}

// BitvectorRoot returns hash_tree_root of a Bitvector[n] given in its SSZ
// serialization. b must be exactly ceil(n/8) bytes with the padding bits
// beyond n clear.
func BitvectorRoot(b []byte, n uint64) ([32]byte, error) {
	if n == 0 {
		return [32]byte{}, fmt.Errorf("%w: Bitvector[0] is not a legal type", ErrInvalid)
	}
	if uint64(len(b)) != (n+7)/8 {
		return [32]byte{}, fmt.Errorf("%w: Bitvector[%d] needs %d bytes, got %d", ErrInvalid, n, (n+7)/8, len(b))
	}
	if n%8 != 0 && b[len(b)-1]>>(n%8) != 0 {
		return [32]byte{}, fmt.Errorf("%w: Bitvector[%d] has bits set beyond its length", ErrInvalid, n)
	}
	return Merkleize(pack(b), (n+255)/256)
}
