package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/raft/commandpb"
)

// kv is a tiny State for testing the dispatcher alone.
type kv struct{ m map[string]string }

func newKV() *kv { return &kv{m: map[string]string{}} }

func (s *kv) WriteSnapshot(w io.Writer) error {
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := writeString(w, k); err != nil {
			return err
		}
		if err := writeString(w, s.m[k]); err != nil {
			return err
		}
	}
	return nil
}

func writeString(w io.Writer, s string) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	_, err := io.WriteString(w, s)
	return err
}

func (s *kv) ReadSnapshot(r io.Reader) error {
	for {
		var n [4]byte
		if _, err := io.ReadFull(r, n[:]); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		k := make([]byte, binary.BigEndian.Uint32(n[:]))
		if _, err := io.ReadFull(r, k); err != nil {
			return err
		}
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return err
		}
		v := make([]byte, binary.BigEndian.Uint32(n[:]))
		if _, err := io.ReadFull(r, v); err != nil {
			return err
		}
		s.m[string(k)] = string(v)
	}
}

var errRejected = errors.New("rejected")

// kvRegistry: NOOP sets note=proposer; GRANT_LEASE sets holder (rejects empty).
func kvRegistry() *Registry[*kv] {
	r := NewRegistry[*kv]()
	r.Register(commandpb.CommandType_NOOP, 1, func(s *kv, e Entry) (any, error) {
		var n commandpb.Noop
		if err := Decode(e, &n); err != nil {
			return nil, err
		}
		s.m["note:"+fmt.Sprint(e.Index)] = n.Note
		return n.Note, nil
	})
	r.Register(commandpb.CommandType_GRANT_LEASE, 2, func(s *kv, e Entry) (any, error) {
		var g commandpb.GrantLease
		if err := Decode(e, &g); err != nil {
			return nil, err
		}
		if g.Holder == "" {
			return nil, errRejected
		}
		s.m["holder"] = g.Holder
		return nil, nil
	})
	return r
}

type fatalRecorder struct{ errs []error }

func (f *fatalRecorder) fatal(err error) { f.errs = append(f.errs, err) }

func newTestFSM(t *testing.T) (*FSM[*kv], *fatalRecorder) {
	t.Helper()
	rec := &fatalRecorder{}
	f, err := New(Config[*kv]{New: newKV, Registry: kvRegistry(), Fatal: rec.fatal})
	if err != nil {
		t.Fatal(err)
	}
	return f, rec
}

func entry(t *testing.T, index uint64, ct commandpb.CommandType, version uint32, ignorable bool, msg proto.Message) *raft.Log {
	t.Helper()
	p, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&commandpb.Envelope{Type: ct, Version: version, Ignorable: ignorable, Payload: p, ProposedAtUnixNano: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b}
}

func snapshotBytes(t *testing.T, f *FSM[*kv]) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestApplyDispatch(t *testing.T) {
	tests := []struct {
		name       string
		log        func(t *testing.T) *raft.Log
		wantErr    error
		wantFatal  bool
		wantChange bool
	}{
		{"known command", func(t *testing.T) *raft.Log {
			return entry(t, 5, commandpb.CommandType_NOOP, 1, false, &commandpb.Noop{Note: "x"})
		}, nil, false, true},
		{"handler rejects", func(t *testing.T) *raft.Log {
			return entry(t, 5, commandpb.CommandType_GRANT_LEASE, 1, false, &commandpb.GrantLease{})
		}, errRejected, false, false},
		{"unknown type stops the node", func(t *testing.T) *raft.Log {
			return entry(t, 5, commandpb.CommandType(999), 1, false, &commandpb.Noop{})
		}, ErrUnknownCommand, true, false},
		{"unknown ignorable type is skipped", func(t *testing.T) *raft.Log {
			return entry(t, 5, commandpb.CommandType(999), 1, true, &commandpb.Noop{})
		}, ErrUnknownCommand, false, false},
		{"newer version stops the node", func(t *testing.T) *raft.Log {
			return entry(t, 5, commandpb.CommandType_NOOP, 2, false, &commandpb.Noop{Note: "x"})
		}, ErrUnsupportedVersion, true, false},
		{"version zero stops the node", func(t *testing.T) *raft.Log {
			return entry(t, 5, commandpb.CommandType_NOOP, 0, false, &commandpb.Noop{Note: "x"})
		}, ErrUnsupportedVersion, true, false},
		{"second version accepted where registered", func(t *testing.T) *raft.Log {
			return entry(t, 5, commandpb.CommandType_GRANT_LEASE, 2, false, &commandpb.GrantLease{Holder: "dc1"})
		}, nil, false, true},
		{"truncated envelope", func(t *testing.T) *raft.Log {
			l := entry(t, 5, commandpb.CommandType_NOOP, 1, false, &commandpb.Noop{Note: "hello"})
			l.Data = l.Data[:len(l.Data)-3]
			return l
		}, ErrMalformedEntry, false, false},
		{"garbage payload", func(t *testing.T) *raft.Log {
			b, _ := proto.Marshal(&commandpb.Envelope{Type: commandpb.CommandType_GRANT_LEASE, Version: 1, Payload: []byte{0xff, 0xff, 0xff}})
			return &raft.Log{Index: 5, Type: raft.LogCommand, Data: b}
		}, ErrMalformedEntry, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, rec := newTestFSM(t)
			resp, ok := f.Apply(tc.log(t)).(Response)
			if !ok {
				t.Fatalf("Apply returned %T", resp)
			}
			if tc.wantErr == nil && resp.Err != nil || tc.wantErr != nil && !errors.Is(resp.Err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", resp.Err, tc.wantErr)
			}
			if got := len(rec.errs) > 0; got != tc.wantFatal {
				t.Fatalf("fatal = %v (%v), want %v", got, rec.errs, tc.wantFatal)
			}
			if got := (f.Halted() != nil); got != tc.wantFatal {
				t.Fatalf("halted = %v, want %v", got, tc.wantFatal)
			}
			var changed bool
			f.View(func(s *kv, _ uint64) { changed = len(s.m) > 0 })
			if changed != tc.wantChange {
				t.Fatalf("state changed = %v, want %v", changed, tc.wantChange)
			}
		})
	}
}

func TestHaltedFSMRefusesLaterEntries(t *testing.T) {
	f, _ := newTestFSM(t)
	f.Apply(entry(t, 1, commandpb.CommandType(77), 1, false, &commandpb.Noop{}))
	resp := f.Apply(entry(t, 2, commandpb.CommandType_NOOP, 1, false, &commandpb.Noop{Note: "after"})).(Response)
	if !errors.Is(resp.Err, ErrHalted) {
		t.Fatalf("err = %v, want ErrHalted", resp.Err)
	}
	f.View(func(s *kv, _ uint64) {
		if len(s.m) != 0 {
			t.Fatalf("halted FSM applied an entry: %v", s.m)
		}
	})
}

func TestFatalDefaultPanics(t *testing.T) {
	f, err := New(Config[*kv]{New: newKV, Registry: kvRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrUnknownCommand) {
			t.Fatalf("recover() = %v, want panic with ErrUnknownCommand", r)
		}
	}()
	f.Apply(entry(t, 1, commandpb.CommandType(77), 1, false, &commandpb.Noop{}))
}

func TestApplyBatchMatchesApply(t *testing.T) {
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		switch i % 3 {
		case 0:
			logs = append(logs, entry(t, i, commandpb.CommandType_NOOP, 1, false, &commandpb.Noop{Note: fmt.Sprint(i)}))
		case 1:
			logs = append(logs, entry(t, i, commandpb.CommandType_GRANT_LEASE, 1, false, &commandpb.GrantLease{Holder: fmt.Sprint("dc", i)}))
		default:
			logs = append(logs, &raft.Log{Index: i, Type: raft.LogNoop})
		}
	}
	one, _ := newTestFSM(t)
	for _, l := range logs {
		one.Apply(l)
	}
	batch, _ := newTestFSM(t)
	if got := batch.ApplyBatch(logs); len(got) != len(logs) {
		t.Fatalf("ApplyBatch returned %d responses for %d logs", len(got), len(logs))
	}
	if a, b := snapshotBytes(t, one), snapshotBytes(t, batch); !bytes.Equal(a, b) {
		t.Fatal("batch apply and single apply diverged")
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	f, _ := newTestFSM(t)
	f.Apply(entry(t, 1, commandpb.CommandType_NOOP, 1, false, &commandpb.Noop{Note: "a"}))
	f.Apply(entry(t, 2, commandpb.CommandType_GRANT_LEASE, 1, false, &commandpb.GrantLease{Holder: "dc2"}))
	snap := snapshotBytes(t, f)

	g, _ := newTestFSM(t)
	g.Apply(entry(t, 1, commandpb.CommandType_NOOP, 1, false, &commandpb.Noop{Note: "other"}))
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, g), snap) {
		t.Fatal("restored state differs")
	}
	g.View(func(_ *kv, applied uint64) {
		if applied != 2 {
			t.Fatalf("lastApplied = %d, want 2", applied)
		}
	})
}

func TestRestoreRejectsBadSnapshotAndKeepsState(t *testing.T) {
	good := func(t *testing.T) []byte {
		f, _ := newTestFSM(t)
		f.Apply(entry(t, 1, commandpb.CommandType_NOOP, 1, false, &commandpb.Noop{Note: "a"}))
		return snapshotBytes(t, f)
	}
	tests := []struct {
		name   string
		mangle func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"wrong magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"future format", func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:12], SnapshotFormat+1); return b }},
		{"format zero", func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:12], 0); return b }},
		{"truncated body", func(b []byte) []byte { return b[:len(b)-2] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newTestFSM(t)
			f.Apply(entry(t, 7, commandpb.CommandType_GRANT_LEASE, 1, false, &commandpb.GrantLease{Holder: "keep"}))
			before := snapshotBytes(t, f)
			err := f.Restore(io.NopCloser(bytes.NewReader(tc.mangle(good(t)))))
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("err = %v, want ErrBadSnapshot", err)
			}
			if !bytes.Equal(snapshotBytes(t, f), before) {
				t.Fatal("failed restore changed the state")
			}
		})
	}
}

// FuzzApplyEnvelope: no entry bytes may panic the dispatcher; anything
// that is not a registered, well-formed command leaves the state alone.
func FuzzApplyEnvelope(f *testing.F) {
	seed := func(ct commandpb.CommandType, v uint32, msg proto.Message) {
		p, _ := proto.Marshal(msg)
		b, _ := proto.Marshal(&commandpb.Envelope{Type: ct, Version: v, Payload: p})
		f.Add(b)
	}
	seed(commandpb.CommandType_NOOP, 1, &commandpb.Noop{Note: "n"})
	seed(commandpb.CommandType_GRANT_LEASE, 1, &commandpb.GrantLease{Holder: "dc1"})
	seed(commandpb.CommandType(3000), 1, &commandpb.Noop{})
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		rec := &fatalRecorder{}
		m, err := New(Config[*kv]{New: newKV, Registry: kvRegistry(), Fatal: rec.fatal})
		if err != nil {
			t.Fatal(err)
		}
		resp := m.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(Response)
		var n int
		m.View(func(s *kv, _ uint64) { n = len(s.m) })
		if resp.Err != nil && n != 0 {
			t.Fatalf("rejected entry changed state: %v", resp.Err)
		}
		if len(rec.errs) > 0 && m.Halted() == nil {
			t.Fatal("fatal without halt")
		}
	})
}
