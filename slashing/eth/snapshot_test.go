package eth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

var updateGolden = flag.Bool("golden", false, "rewrite testdata/snapshot-v1.bin")

func TestSnapshotRoundTrip(t *testing.T) {
	keys := []Pubkey{pk(1), pk(2), pk(3)}
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 0x5a))
		s := newTestState(t, Options{MaxBlocks: 1 + r.IntN(30), MaxAttestations: 1 + r.IntN(30), SlotsPerEpoch: 1 + r.Uint64N(64)})
		randomHistory(t, r, s, keys, r.IntN(300), 30)
		// A second chain, so chain ordering is exercised.
		if r.IntN(2) == 0 {
			s.RecordBlock(otherGVR, pk(4), r.Uint64N(100), Root{1})
		}
		raw := snapshot(t, s)
		back, err := ReadState(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !bytes.Equal(raw, snapshot(t, back)) {
			t.Fatalf("seed %d: re-encoding differs", seed)
		}
		if !stateEqual(s, back) {
			t.Fatalf("seed %d: decoded state differs", seed)
		}
		assertInvariants(t, back)
		// Writing twice gives the same bytes (map order never leaks).
		if !bytes.Equal(raw, snapshot(t, s)) {
			t.Fatalf("seed %d: WriteTo is not deterministic", seed)
		}
	}
}

// stateEqual compares two States field by field.
func stateEqual(a, b *State) bool {
	if a.opts != b.opts || len(a.chains) != len(b.chains) {
		return false
	}
	for gvr, ca := range a.chains {
		cb := b.chains[gvr]
		if cb == nil || ca.hw != cb.hw || len(ca.keys) != len(cb.keys) {
			return false
		}
		for key, ka := range ca.keys {
			kb := cb.keys[key]
			if kb == nil || ka.flags != kb.flags || ka.blockFloor != kb.blockFloor ||
				ka.srcFloor != kb.srcFloor || ka.tgtFloor != kb.tgtFloor ||
				!equalSlices(ka.blocks, kb.blocks) || !equalSlices(ka.atts, kb.atts) {
				return false
			}
		}
	}
	return true
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSnapshotEmptyAndCount(t *testing.T) {
	s := newTestState(t, Options{})
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("n=%d len=%d err=%v", n, buf.Len(), err)
	}
	if buf.Bytes()[0] != SnapshotVersion {
		t.Fatalf("first byte %d, want version %d", buf.Bytes()[0], SnapshotVersion)
	}
	back, err := ReadState(&buf)
	if err != nil || back.KeyCount() != 0 || back.Options() != s.Options() {
		t.Fatalf("empty round trip: %v", err)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, io.ErrClosedPipe
	}
	f.after--
	return len(p), nil
}

func TestSnapshotWriteError(t *testing.T) {
	s := newTestState(t, Options{})
	for i := range uint64(5000) {
		mustBlock(t, s, pk(byte(i%200)), i, rt(1))
	}
	if _, err := s.WriteTo(&failWriter{after: 1}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("got %v", err)
	}
}

// reseal recomputes the trailing checksum so a test can corrupt the body and
// reach the invariant checks behind the checksum.
func reseal(body []byte) []byte {
	out := bytes.Clone(body)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
}

func TestReadStateRejectsGarbage(t *testing.T) {
	s := newTestState(t, Options{})
	mustBlock(t, s, pk(1), 10, rt(1))
	mustBlock(t, s, pk(1), 12, absent)
	mustAtt(t, s, pk(1), 1, 2, rt(1))
	mustAtt(t, s, pk(1), 2, 3, rt(2))
	good := snapshot(t, s)
	body := good[:len(good)-4]

	// Offsets inside the body of this particular snapshot: version, magic,
	// MaxBlocks 1024 (2 varint bytes), MaxAttestations 4096 (2), SlotsPerEpoch 32 (1).
	hdr := 1 + 4 + 2 + 2 + 1
	flagsAt := hdr + 1 + 32 + 1 + 48        // chain count, gvr, key count, pubkey
	blockCountAt := flagsAt + 1 + 1 + 1 + 1 // flags, block floor 10, source floor 1, target floor 2

	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(body)
		f(b)
		return reseal(b)
	}
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"empty", nil, ErrBadSnapshot},
		{"version 2", append([]byte{2}, good[1:]...), ErrSnapshotVersion},
		{"bad magic", mutate(func(b []byte) { b[1] = 'X' }), ErrBadSnapshot},
		{"truncated", good[:len(good)/2], ErrBadSnapshot},
		{"missing checksum", body, ErrBadSnapshot},
		{"flipped bit", func() []byte { b := bytes.Clone(good); b[len(b)/2] ^= 1; return b }(), ErrBadSnapshot},
		{"trailing byte", append(bytes.Clone(good), 0), ErrBadSnapshot},
		{"unknown flag", mutate(func(b []byte) { b[flagsAt] |= 0x80 }), ErrBadSnapshot},
		{"no flags", mutate(func(b []byte) { b[flagsAt] = 0 }), ErrBadSnapshot},
		{"corrupt block count", mutate(func(b []byte) { b[blockCountAt] = 0x7f }), ErrBadSnapshot},
		{"zero keys in chain", reseal(append(bytes.Clone(body[:hdr+1+32]), 0)), ErrBadSnapshot},
		{"huge chain count", reseal(append(bytes.Clone(body[:hdr]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), ErrBadSnapshot},
		{"varint overflow", reseal(append(bytes.Clone(body[:hdr]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), ErrBadSnapshot},
		{"zero option", reseal([]byte{SnapshotVersion, 'R', 'E', 'S', 'P', 0, 1, 1, 0}), ErrBadSnapshot},
		{"option over limit", reseal([]byte{SnapshotVersion, 'R', 'E', 'S', 'P', 0xff, 0xff, 0xff, 0x7f, 1, 1, 0}), ErrBadSnapshot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ReadState(bytes.NewReader(tt.in))
			if err == nil {
				t.Fatalf("accepted garbage: %d keys", st.KeyCount())
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v does not wrap %v", err, tt.err)
			}
		})
	}
}

// TestReadStateRejectsBrokenInvariants hand-builds snapshots that are well
// formed but describe histories the engine could never hold.
func TestReadStateRejectsBrokenInvariants(t *testing.T) {
	build := func(key func(e *encoder)) []byte {
		var buf bytes.Buffer
		e := &encoder{w: &buf}
		e.bytes([]byte{SnapshotVersion})
		e.bytes(snapshotMagic[:])
		e.uvarint(4)
		e.uvarint(4)
		e.uvarint(32)
		e.uvarint(1)
		e.bytes(testGVR[:])
		e.uvarint(1)
		k := pk(1)
		e.bytes(k[:])
		key(e)
		return reseal(buf.Bytes())
	}
	tests := []struct {
		name string
		key  func(e *encoder)
	}{
		{"blocks without floor", func(e *encoder) {
			e.bytes([]byte{flagAttFloor})
			e.uvarint(0)
			e.uvarint(0)
			e.uvarint(1) // one block
			e.uvarint(0)
			e.root(absent)
			e.uvarint(0)
		}},
		{"source floor above target floor", func(e *encoder) {
			e.bytes([]byte{flagAttFloor})
			e.uvarint(5)
			e.uvarint(4)
			e.uvarint(0)
			e.uvarint(0)
		}},
		{"vote with source after target", func(e *encoder) {
			e.bytes([]byte{flagAttFloor})
			e.uvarint(0)
			e.uvarint(0)
			e.uvarint(0)
			e.uvarint(1)
			e.uvarint(1) // target 1
			e.uvarint(2) // source 2
			e.root(absent)
		}},
		{"block count over cap", func(e *encoder) {
			e.bytes([]byte{flagBlockFloor})
			e.uvarint(0)
			e.uvarint(5) // cap is 4
		}},
		{"attestations without floors", func(e *encoder) {
			e.bytes([]byte{flagBlockFloor})
			e.uvarint(0)
			e.uvarint(0)
			e.uvarint(1)
			e.uvarint(0)
			e.uvarint(0)
			e.root(absent)
		}},
		{"bad root marker", func(e *encoder) {
			e.bytes([]byte{flagBlockFloor})
			e.uvarint(0)
			e.uvarint(1)
			e.uvarint(0)
			e.bytes([]byte{7})
		}},
		{"slot overflow", func(e *encoder) {
			e.bytes([]byte{flagBlockFloor})
			e.uvarint(1 << 63)
			e.uvarint(2)
			e.uvarint(1 << 62)
			e.root(absent)
			e.uvarint(1 << 62)
			e.root(absent)
			e.uvarint(0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadState(bytes.NewReader(build(tt.key))); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("got %v", err)
			}
		})
	}
	// The builder itself makes valid snapshots.
	ok := build(func(e *encoder) {
		e.bytes([]byte{flagBlockFloor | flagAttFloor})
		e.uvarint(10)
		e.uvarint(1)
		e.uvarint(2)
		e.uvarint(1)
		e.uvarint(0)
		e.root(rt(1))
		e.uvarint(1)
		e.uvarint(0)
		e.uvarint(0)
		e.root(absent)
	})
	s, err := ReadState(bytes.NewReader(ok))
	if err != nil {
		t.Fatalf("valid hand-built snapshot: %v", err)
	}
	if w := s.Watermarks(testGVR, pk(1)); w.Blocks != 1 || w.Attestations != 1 || w.BlockFloor != 10 {
		t.Fatalf("watermarks %+v", w)
	}
}

// TestSnapshotGoldenV1 decodes a version-1 snapshot kept in testdata, so a
// format change that breaks old snapshots fails here. Regenerate only for a
// deliberate format bump (and keep the old file): go test -run Golden -args -golden
func TestSnapshotGoldenV1(t *testing.T) {
	s := newTestState(t, Options{MaxBlocks: 8, MaxAttestations: 8, SlotsPerEpoch: 8})
	mustBlock(t, s, pk(1), 10, rt(1))
	mustBlock(t, s, pk(1), 12, absent)
	mustAtt(t, s, pk(1), 1, 2, rt(1))
	mustAtt(t, s, pk(2), 2, 3, rt(2))
	s.RecordBlock(otherGVR, pk(3), 99, Root{7})
	want := snapshot(t, s)
	path := filepath.Join("testdata", "snapshot-v1.bin")
	if *updateGolden {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := ReadState(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("golden v1 snapshot no longer decodes: %v", err)
	}
	if !stateEqual(old, s) {
		t.Fatal("golden v1 snapshot decodes to a different state")
	}
	if !bytes.Equal(raw, want) {
		t.Fatal("encoding of the golden state changed; bump SnapshotVersion and keep the old file")
	}
}

func TestCloneIsIndependent(t *testing.T) {
	s := newTestState(t, Options{})
	mustBlock(t, s, pk(1), 10, rt(1))
	mustAtt(t, s, pk(1), 1, 2, rt(1))
	c := s.Clone()
	if !stateEqual(s, c) || !bytes.Equal(snapshot(t, s), snapshot(t, c)) {
		t.Fatal("clone differs")
	}
	before := snapshot(t, c)
	mustBlock(t, s, pk(1), 11, rt(2))
	mustAtt(t, s, pk(1), 2, 3, rt(2))
	mustBlock(t, s, pk(2), 1, rt(1))
	s.Prune(testGVR, pk(1), 1)
	if !bytes.Equal(before, snapshot(t, c)) {
		t.Fatal("changing the original changed the clone")
	}
	mustBlock(t, c, pk(1), 12, rt(3))
	if res := s.CheckBlock(testGVR, pk(1), 12, rt(4).Value); !res.Accepted() {
		t.Fatal("changing the clone changed the original")
	}
}
