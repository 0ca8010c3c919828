package eth

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"
)

// SnapshotVersion is the format version byte WriteTo writes first.
const SnapshotVersion byte = 1

// snapshotMagic follows the version byte and tells a protection snapshot
// from other data.
var snapshotMagic = [4]byte{'R', 'E', 'S', 'P'}

// Sentinel errors of the snapshot decoder. Match with errors.Is.
var (
	// ErrBadSnapshot marks a snapshot that is truncated, corrupt (checksum),
	// or breaks an invariant of the history.
	ErrBadSnapshot = errors.New("eth: unreadable protection snapshot")
	// ErrSnapshotVersion marks a snapshot format version this build does not
	// read.
	ErrSnapshotVersion = errors.New("eth: unsupported protection snapshot version")
)

// Snapshot layout, version 1 (uvarint = encoding/binary unsigned varint):
//
//	version byte (1) | magic "RESP"
//	uvarint MaxBlocks | uvarint MaxAttestations | uvarint SlotsPerEpoch
//	uvarint #chains, then per chain in ascending root order:
//	  root [32] | uvarint #keys, then per key in ascending pubkey order:
//	    pubkey [48] | flags byte (1 block floor, 2 attestation floors)
//	    [uvarint block floor] [uvarint source floor | uvarint target floor]
//	    uvarint #blocks, per block: uvarint gap | root
//	      (first slot = block floor + gap, next = previous + 1 + gap)
//	    uvarint #attestations, per vote: uvarint target gap | uvarint source gap | root
//	      (first target = target floor + gap, next = previous + 1 + gap;
//	       first source = source floor + gap, next = previous + gap)
//	  root = byte 0 (absent) | byte 1 followed by 32 bytes
//	CRC-32C (Castagnoli) of every byte before it, big-endian uint32.
//
// The output is a deterministic function of the State's contents.

// WriteTo writes the State's snapshot to w. The output is deterministic:
// chains and keys are written in sorted order. It implements io.WriterTo.
func (s *State) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	e := &encoder{w: io.MultiWriter(bw, crc)}
	e.bytes([]byte{SnapshotVersion})
	e.bytes(snapshotMagic[:])
	e.uvarint(uint64(s.opts.MaxBlocks))
	e.uvarint(uint64(s.opts.MaxAttestations))
	e.uvarint(s.opts.SlotsPerEpoch)
	chains := s.Chains()
	e.uvarint(uint64(len(chains)))
	for _, gvr := range chains {
		e.bytes(gvr[:])
		keys := s.Keys(gvr)
		e.uvarint(uint64(len(keys)))
		for _, pk := range keys {
			e.bytes(pk[:])
			e.key(s.chains[gvr].keys[pk])
		}
	}
	if e.err == nil {
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc.Sum32())
		_, e.err = bw.Write(sum[:])
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	return cw.n, e.err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes primitives, remembering the first error.
type encoder struct {
	w   io.Writer
	err error
	buf [binary.MaxVarintLen64]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) uvarint(v uint64) { e.bytes(e.buf[:binary.PutUvarint(e.buf[:], v)]) }

func (e *encoder) root(r SigningRoot) {
	if !r.Present {
		e.bytes([]byte{0})
		return
	}
	e.bytes([]byte{1})
	e.bytes(r.Value[:])
}

func (e *encoder) key(ks *keyState) {
	e.bytes([]byte{ks.flags})
	if ks.flags&flagBlockFloor != 0 {
		e.uvarint(ks.blockFloor)
	}
	if ks.flags&flagAttFloor != 0 {
		e.uvarint(ks.srcFloor)
		e.uvarint(ks.tgtFloor)
	}
	e.uvarint(uint64(len(ks.blocks)))
	prev := ks.blockFloor
	for i, b := range ks.blocks {
		if i == 0 {
			e.uvarint(b.slot - prev)
		} else {
			e.uvarint(b.slot - prev - 1)
		}
		prev = b.slot
		e.root(b.root)
	}
	e.uvarint(uint64(len(ks.atts)))
	prevT, prevS := ks.tgtFloor, ks.srcFloor
	for i, a := range ks.atts {
		if i == 0 {
			e.uvarint(a.target - prevT)
		} else {
			e.uvarint(a.target - prevT - 1)
		}
		e.uvarint(a.source - prevS)
		prevT, prevS = a.target, a.source
		e.root(a.root)
	}
}

// ReadState decodes a snapshot written by WriteTo. r must hold exactly one
// snapshot (embed it in a larger stream length-delimited, e.g. behind an
// io.LimitReader). It checks the checksum and every invariant of the history,
// so a State it returns behaves exactly like the one that was written.
// Garbage gives an error wrapping ErrBadSnapshot or ErrSnapshotVersion; memory
// use grows only with the bytes actually read.
func ReadState(r io.Reader) (*State, error) {
	d := &decoder{r: bufio.NewReaderSize(r, 64<<10), crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	s, err := d.state()
	if err != nil {
		return nil, err
	}
	want := d.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(d.r, sum[:]); err != nil {
		return nil, fmt.Errorf("%w: checksum: %v", ErrBadSnapshot, err)
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return nil, fmt.Errorf("%w: checksum mismatch (stored %08x, computed %08x)", ErrBadSnapshot, got, want)
	}
	if _, err := d.r.ReadByte(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after checksum", ErrBadSnapshot)
	}
	return s, nil
}

// decoder reads primitives, feeding every byte read to the checksum.
type decoder struct {
	r   *bufio.Reader
	crc hash.Hash32
	one [1]byte
}

func (d *decoder) ReadByte() (byte, error) {
	b, err := d.r.ReadByte()
	if err == nil {
		d.one[0] = b
		d.crc.Write(d.one[:])
	}
	return b, err
}

func (d *decoder) read(p []byte, what string) error {
	if _, err := io.ReadFull(d.r, p); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadSnapshot, what, err)
	}
	d.crc.Write(p)
	return nil
}

func (d *decoder) uvarint(what string) (uint64, error) {
	v, err := binary.ReadUvarint(d)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrBadSnapshot, what, err)
	}
	return v, nil
}

// count reads a uvarint count and checks it against limit.
func (d *decoder) count(what string, limit uint64) (int, error) {
	v, err := d.uvarint(what)
	if err != nil {
		return 0, err
	}
	if v > limit {
		return 0, fmt.Errorf("%w: %s: %d exceeds %d", ErrBadSnapshot, what, v, limit)
	}
	return int(v), nil
}

func (d *decoder) root(what string) (SigningRoot, error) {
	var r SigningRoot
	b, err := d.ReadByte()
	if err != nil {
		return r, fmt.Errorf("%w: %s: %v", ErrBadSnapshot, what, err)
	}
	switch b {
	case 0:
		return r, nil
	case 1:
		r.Present = true
		return r, d.read(r.Value[:], what)
	}
	return r, fmt.Errorf("%w: %s: root marker %d", ErrBadSnapshot, what, b)
}

// add returns a+b, failing on overflow.
func add(a, b uint64, what string) (uint64, error) {
	if a+b < a {
		return 0, fmt.Errorf("%w: %s overflows", ErrBadSnapshot, what)
	}
	return a + b, nil
}

func (d *decoder) state() (*State, error) {
	var hdr [5]byte
	if err := d.read(hdr[:1], "version"); err != nil {
		return nil, err
	}
	if hdr[0] != SnapshotVersion {
		return nil, fmt.Errorf("%w: version %d (this build reads %d)", ErrSnapshotVersion, hdr[0], SnapshotVersion)
	}
	if err := d.read(hdr[1:], "magic"); err != nil {
		return nil, err
	}
	if !bytes.Equal(hdr[1:], snapshotMagic[:]) {
		return nil, fmt.Errorf("%w: not a protection snapshot (magic %q)", ErrBadSnapshot, hdr[1:])
	}
	var opts Options
	for _, f := range []struct {
		dst  *int
		what string
	}{{&opts.MaxBlocks, "MaxBlocks"}, {&opts.MaxAttestations, "MaxAttestations"}} {
		v, err := d.count(f.what, MaxRecordsLimit)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	spe, err := d.uvarint("SlotsPerEpoch")
	if err != nil {
		return nil, err
	}
	opts.SlotsPerEpoch = spe
	if opts.MaxBlocks == 0 || opts.MaxAttestations == 0 || opts.SlotsPerEpoch == 0 {
		return nil, fmt.Errorf("%w: zero option in header", ErrBadSnapshot)
	}
	s, err := NewState(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	nChains, err := d.uvarint("chain count")
	if err != nil {
		return nil, err
	}
	var prevGVR Root
	for ci := uint64(0); ci < nChains; ci++ {
		var gvr Root
		if err := d.read(gvr[:], "genesis validators root"); err != nil {
			return nil, err
		}
		if ci > 0 && bytes.Compare(gvr[:], prevGVR[:]) <= 0 {
			return nil, fmt.Errorf("%w: chains not in ascending order", ErrBadSnapshot)
		}
		prevGVR = gvr
		nKeys, err := d.uvarint("key count")
		if err != nil {
			return nil, err
		}
		if nKeys == 0 {
			return nil, fmt.Errorf("%w: chain %s has no keys", ErrBadSnapshot, gvr)
		}
		c := &chainState{keys: make(map[Pubkey]*keyState)}
		s.chains[gvr] = c
		var prevPK Pubkey
		for ki := uint64(0); ki < nKeys; ki++ {
			var pk Pubkey
			if err := d.read(pk[:], "pubkey"); err != nil {
				return nil, err
			}
			if ki > 0 && bytes.Compare(pk[:], prevPK[:]) <= 0 {
				return nil, fmt.Errorf("%w: keys not in ascending order", ErrBadSnapshot)
			}
			prevPK = pk
			ks, err := d.key(s.opts)
			if err != nil {
				return nil, fmt.Errorf("%w (key %s)", err, pk)
			}
			c.keys[pk] = ks
			c.hw = c.hw.merge(ks.highWater())
		}
	}
	return s, nil
}

func (d *decoder) key(opts Options) (*keyState, error) {
	ks := &keyState{}
	flags, err := d.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("%w: key flags: %v", ErrBadSnapshot, err)
	}
	if flags&^(flagBlockFloor|flagAttFloor) != 0 || flags == 0 {
		return nil, fmt.Errorf("%w: key flags %#x", ErrBadSnapshot, flags)
	}
	ks.flags = flags
	if flags&flagBlockFloor != 0 {
		if ks.blockFloor, err = d.uvarint("block floor"); err != nil {
			return nil, err
		}
	}
	if flags&flagAttFloor != 0 {
		if ks.srcFloor, err = d.uvarint("source floor"); err != nil {
			return nil, err
		}
		if ks.tgtFloor, err = d.uvarint("target floor"); err != nil {
			return nil, err
		}
		if ks.srcFloor > ks.tgtFloor {
			return nil, fmt.Errorf("%w: source floor %d above target floor %d", ErrBadSnapshot, ks.srcFloor, ks.tgtFloor)
		}
	}
	nb, err := d.count("block count", uint64(opts.MaxBlocks))
	if err != nil {
		return nil, err
	}
	if nb > 0 && flags&flagBlockFloor == 0 {
		return nil, fmt.Errorf("%w: blocks without a block floor", ErrBadSnapshot)
	}
	slot := ks.blockFloor
	for i := 0; i < nb; i++ {
		gap, err := d.uvarint("block slot")
		if err != nil {
			return nil, err
		}
		if i > 0 {
			if slot, err = add(slot, 1, "block slot"); err != nil {
				return nil, err
			}
		}
		if slot, err = add(slot, gap, "block slot"); err != nil {
			return nil, err
		}
		root, err := d.root("block root")
		if err != nil {
			return nil, err
		}
		ks.blocks = append(ks.blocks, blockRec{slot: slot, root: root})
	}
	na, err := d.count("attestation count", uint64(opts.MaxAttestations))
	if err != nil {
		return nil, err
	}
	if na > 0 && flags&flagAttFloor == 0 {
		return nil, fmt.Errorf("%w: attestations without floors", ErrBadSnapshot)
	}
	target, source := ks.tgtFloor, ks.srcFloor
	for i := 0; i < na; i++ {
		tgap, err := d.uvarint("attestation target")
		if err != nil {
			return nil, err
		}
		sgap, err := d.uvarint("attestation source")
		if err != nil {
			return nil, err
		}
		if i > 0 {
			if target, err = add(target, 1, "attestation target"); err != nil {
				return nil, err
			}
		}
		if target, err = add(target, tgap, "attestation target"); err != nil {
			return nil, err
		}
		if source, err = add(source, sgap, "attestation source"); err != nil {
			return nil, err
		}
		if source > target {
			return nil, fmt.Errorf("%w: attestation source %d after target %d", ErrBadSnapshot, source, target)
		}
		root, err := d.root("attestation root")
		if err != nil {
			return nil, err
		}
		ks.atts = append(ks.atts, attRec{source: source, target: target, root: root})
	}
	ks.blocks = slices.Clip(ks.blocks)
	ks.atts = slices.Clip(ks.atts)
	return ks, nil
}
