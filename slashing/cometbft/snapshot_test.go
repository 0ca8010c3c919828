package cometbft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/regent-signer/regent/slashing"
	"google.golang.org/protobuf/encoding/protowire"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata golden files")

// sampleState builds a State with several keys and chains, a bare imported
// watermark and a timestamp-retry history.
func sampleState(t testing.TB) *State {
	t.Helper()
	s := NewState()
	onB := func(m tm) tm { m.chain = "chain-b"; return m }
	for _, r := range []req{
		{key: "key-2", m: precommit(10, 1, 1)},
		{key: "key-1", m: onB(proposal(7, 0, 2))},
		{key: "key-1", m: prevote(3, 0, 0)},
		{key: "key-1", m: precommit(3, 0, 0)},
		{key: "key-1", m: precommit(3, 0, 0).withTS(1, 1)},
	} {
		if o := s.Record(r.args()); !o.Accepted() {
			t.Fatalf("%+v: %+v", r, o.Result)
		}
	}
	if err := s.Import("key-3", "chain-a", HRS{Height: 1 << 40, Round: 7, Step: StepPrevote}, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	for name, s := range map[string]*State{"empty": NewState(), "sample": sampleState(t)} {
		t.Run(name, func(t *testing.T) {
			b := snapshotBytes(t, s)
			got, err := ReadState(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("ReadState: %v", err)
			}
			if !reflect.DeepEqual(got.Entries(), s.Entries()) {
				t.Fatalf("entries differ:\n got %+v\nwant %+v", got.Entries(), s.Entries())
			}
			if !bytes.Equal(snapshotBytes(t, got), b) {
				t.Fatal("re-encoding differs")
			}
			// The restored State decides as the original does.
			for _, m := range []tm{precommit(10, 1, 2), precommit(10, 1, 1).withTS(4, 0), prevote(10, 2, 0)} {
				a, b := s.Check("key-2", m.chain, m.hrs(), m.bytes()), got.Check("key-2", m.chain, m.hrs(), m.bytes())
				if !outcomesEqual(a, b) {
					t.Fatalf("%v: original %+v, restored %+v", m.hrs(), a, b)
				}
			}
		})
	}
}

// TestSnapshotDeterministic builds the same content in different orders (so
// map layouts differ) and requires identical bytes.
func TestSnapshotDeterministic(t *testing.T) {
	a := sampleState(t)
	b := NewState()
	entries := a.Entries()
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if err := b.Import(e.KeyID, e.ChainID, e.HRS, e.SignBytes); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
		t.Fatal("equal States wrote different snapshots")
	}
	if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, a.Clone())) {
		t.Fatal("Clone wrote a different snapshot")
	}
}

// TestSnapshotGolden pins format version 1: the file in testdata must keep
// decoding to the same content in every later build. Regenerate only when
// adding a new format version (go test -run Golden -rewrite), never for v1.
func TestSnapshotGolden(t *testing.T) {
	path := filepath.Join("testdata", "state_v1.snap")
	cur := snapshotBytes(t, sampleState(t))
	if *rewrite {
		if err := os.WriteFile(path, cur, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden snapshot: %v", err)
	}
	got, err := ReadState(bytes.NewReader(golden))
	if err != nil {
		t.Fatalf("golden snapshot no longer decodes: %v", err)
	}
	if !reflect.DeepEqual(got.Entries(), sampleState(t).Entries()) {
		t.Fatal("golden snapshot decodes to different content")
	}
	if !bytes.Equal(golden, cur) {
		t.Fatal("encoder output changed for format v1")
	}
}

// TestReadStateLeavesRestOfStream checks ReadState consumes exactly one
// snapshot, so snapshots can be embedded in a larger stream.
func TestReadStateLeavesRestOfStream(t *testing.T) {
	b := snapshotBytes(t, sampleState(t))
	r := bytes.NewReader(append(append([]byte(nil), b...), "tail"...))
	if _, err := ReadState(r); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "tail" {
		t.Fatalf("left %q in the stream, want %q", rest, "tail")
	}
}

func TestReadStateRejectsEveryTruncationAndBitFlip(t *testing.T) {
	b := snapshotBytes(t, sampleState(t))
	for n := 0; n < len(b); n++ {
		if _, err := ReadState(bytes.NewReader(b[:n])); !errors.Is(err, ErrSnapshotFormat) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		_, err := ReadState(bytes.NewReader(c))
		if err == nil {
			t.Fatalf("bit flip at %d accepted", i)
		}
		if !errors.Is(err, ErrSnapshotFormat) && !errors.Is(err, ErrSnapshotVersion) {
			t.Fatalf("bit flip at %d: err = %v", i, err)
		}
	}
}

// frame wraps a body in a valid header and checksum, so tests can reach the
// body decoder with arbitrary content.
func frame(version byte, body []byte) []byte {
	out := append([]byte(snapshotMagic), version)
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
}

type snapEntry struct {
	key, chain string
	h, r       uint64
	step       byte
	sb         []byte
}

func body(count uint64, es ...snapEntry) []byte {
	b := protowire.AppendVarint(nil, count)
	for _, e := range es {
		b = protowire.AppendBytes(b, []byte(e.key))
		b = protowire.AppendBytes(b, []byte(e.chain))
		b = protowire.AppendVarint(b, e.h)
		b = protowire.AppendVarint(b, e.r)
		b = append(b, e.step)
		b = protowire.AppendBytes(b, e.sb)
	}
	return b
}

func TestReadStateRejectsBadBodies(t *testing.T) {
	good := snapEntry{"k", "chain-a", 10, 0, 2, prevote(10, 0, 1).bytes()}
	if _, err := ReadState(bytes.NewReader(frame(1, body(1, good)))); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	with := func(f func(*snapEntry)) snapEntry { e := good; f(&e); return e }
	tests := []struct {
		name  string
		b     []byte
		errIs error
	}{
		{"version 0", frame(0, body(0)), ErrSnapshotVersion},
		{"version 2", frame(2, body(0)), ErrSnapshotVersion},
		{"bad magic", append([]byte("XXXX"), frame(1, body(0))[4:]...), ErrSnapshotFormat},
		{"body too long claim", func() []byte {
			b := frame(1, body(0))
			binary.BigEndian.PutUint64(b[5:], MaxSnapshotBodyLen+1)
			return b
		}(), ErrSnapshotFormat},
		{"huge count, no entries", frame(1, body(1<<62)), ErrSnapshotFormat},
		{"count short", frame(1, body(2, good)), ErrSnapshotFormat},
		{"count long", frame(1, append(body(0), body(1, good)[1:]...)), ErrSnapshotFormat},
		{"duplicate entry", frame(1, body(2, good, good)), ErrSnapshotFormat},
		{"unsorted keys", frame(1, body(2, with(func(e *snapEntry) { e.key = "z" }), good)), ErrSnapshotFormat},
		{"unsorted chains", frame(1, body(2, with(func(e *snapEntry) {
			e.chain = "chain-b"
			e.sb = func() tm { m := prevote(10, 0, 1); m.chain = "chain-b"; return m }().bytes()
		}), good)), ErrSnapshotFormat},
		{"empty key", frame(1, body(1, with(func(e *snapEntry) { e.key = "" }))), ErrSnapshotFormat},
		{"height 0", frame(1, body(1, with(func(e *snapEntry) { e.h = 0; e.sb = nil }))), ErrSnapshotFormat},
		{"height above int64", frame(1, body(1, with(func(e *snapEntry) { e.h = 1 << 63; e.sb = nil }))), ErrSnapshotFormat},
		{"round above int32", frame(1, body(1, with(func(e *snapEntry) { e.r = 1 << 31; e.sb = nil }))), ErrSnapshotFormat},
		{"step 0", frame(1, body(1, with(func(e *snapEntry) { e.step = 0; e.sb = nil }))), ErrSnapshotFormat},
		{"step 4", frame(1, body(1, with(func(e *snapEntry) { e.step = 4; e.sb = nil }))), ErrSnapshotFormat},
		{"sign bytes at another position", frame(1, body(1, with(func(e *snapEntry) { e.h = 11 }))), ErrSnapshotFormat},
		{"sign bytes for another chain", frame(1, body(1, with(func(e *snapEntry) { e.chain = "chain-b" }))), ErrSnapshotFormat},
		{"malformed sign bytes", frame(1, body(1, with(func(e *snapEntry) { e.sb = []byte{1, 1} }))), ErrSnapshotFormat},
		{"sign bytes over limit", frame(1, body(1, with(func(e *snapEntry) { e.sb = make([]byte, MaxSignBytesLen+1) }))), ErrSnapshotFormat},
		{"trailing body bytes", frame(1, append(body(1, good), 0)), ErrSnapshotFormat},
		{"non-minimal count", frame(1, append([]byte{0x81, 0x00}, body(1, good)[1:]...)), ErrSnapshotFormat},
		{"truncated entry", frame(1, body(1, good)[:10]), ErrSnapshotFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ReadState(bytes.NewReader(tc.b))
			if !errors.Is(err, tc.errIs) {
				t.Fatalf("err = %v, want %v", err, tc.errIs)
			}
			if s != nil {
				t.Fatal("returned a State with the error")
			}
			switch {
			case errors.Is(tc.errIs, ErrSnapshotFormat):
				if !errors.Is(err, slashing.ErrInvalidInput) {
					t.Fatalf("err %v does not wrap slashing.ErrInvalidInput", err)
				}
			case errors.Is(tc.errIs, ErrSnapshotVersion):
				if !errors.Is(err, slashing.ErrUnsupportedVersion) {
					t.Fatalf("err %v does not wrap slashing.ErrUnsupportedVersion", err)
				}
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteToReportsErrors(t *testing.T) {
	if _, err := sampleState(t).WriteTo(failingWriter{}); err == nil {
		t.Fatal("write error swallowed")
	}
}
