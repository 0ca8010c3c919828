package fsm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/raft/commandpb"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrMalformedEntry marks a log entry whose envelope does not decode.
	ErrMalformedEntry = errors.New("fsm: malformed log entry")
	// ErrUnknownCommand marks an envelope whose type has no handler.
	ErrUnknownCommand = errors.New("fsm: unknown command type")
	// ErrUnsupportedVersion marks an envelope version newer than its handler.
	ErrUnsupportedVersion = errors.New("fsm: unsupported command version")
	// ErrBadSnapshot marks a snapshot stream that cannot be restored.
	ErrBadSnapshot = errors.New("fsm: bad snapshot")
	// ErrHalted marks an FSM that stopped on a fatal entry.
	ErrHalted = errors.New("fsm: halted")
)

// SnapshotFormat is the version written in every snapshot header. Restore
// accepts formats up to this one.
const SnapshotFormat uint32 = 1

var snapshotMagic = [8]byte{'R', 'E', 'G', 'E', 'N', 'T', 'S', 'N'}

// State is the replicated state driven by the FSM. The FSM serialises every
// call; implementations need no locking of their own.
type State interface {
	// WriteSnapshot writes the full state. It runs with applies paused, so it
	// sees one consistent point of the log.
	WriteSnapshot(w io.Writer) error
	// ReadSnapshot fills a fresh, empty state from r.
	ReadSnapshot(r io.Reader) error
}

// ConfigurationObserver is implemented by states that track Raft
// membership. It is called, in log order, for every committed configuration
// entry, so membership is part of the replicated, snapshotted state.
type ConfigurationObserver interface {
	ObserveConfiguration(index uint64, c raft.Configuration)
}

// Entry is what a handler gets besides the state: where the command sits in
// the log and what the proposer stamped on it.
type Entry struct {
	Index    uint64
	Term     uint64
	Envelope *commandpb.Envelope
}

// Handler applies one command payload to the state. It must be deterministic
// and must leave the state unchanged when it returns an error. The returned
// value is handed to the proposer as the apply response.
type Handler[S State] func(s S, e Entry) (any, error)

type registration[S State] struct {
	maxVersion uint32
	handle     Handler[S]
}

// Registry maps command types to handlers. Build it once, before the FSM
// starts; it is read-only afterwards.
type Registry[S State] struct {
	handlers map[commandpb.CommandType]registration[S]
}

// NewRegistry returns an empty registry.
func NewRegistry[S State]() *Registry[S] {
	return &Registry[S]{handlers: make(map[commandpb.CommandType]registration[S])}
}

// Register installs h for type t, accepting envelope versions 1..maxVersion.
// Registering a type twice panics: it is a programming error found at start.
func (r *Registry[S]) Register(t commandpb.CommandType, maxVersion uint32, h Handler[S]) {
	if _, dup := r.handlers[t]; dup {
		panic(fmt.Sprintf("fsm: handler for %v registered twice", t))
	}
	r.handlers[t] = registration[S]{maxVersion: maxVersion, handle: h}
}

// Response is the value every Apply returns (see raft.ApplyFuture.Response).
type Response struct {
	Index uint64
	Value any
	Err   error
}

// Config configures an FSM.
type Config[S State] struct {
	// New returns a fresh, empty state. Required.
	New func() S
	// Registry holds the handlers. Required.
	Registry *Registry[S]
	// Fatal is called when an entry cannot be applied without diverging from
	// peers (unknown type or version). After it returns, the FSM refuses all
	// further entries. Nil means panic, which stops the node.
	Fatal func(error)
	// Applied, when set, is called after every command entry with its
	// index, type and response (for metrics, logs and local result
	// lookups). It runs inside Apply: it must not block or call back into
	// the FSM.
	Applied func(index uint64, t commandpb.CommandType, resp Response)
}

// FSM implements raft.FSM and raft.BatchingFSM.
type FSM[S State] struct {
	cfg Config[S]

	mu          sync.RWMutex
	state       S
	lastApplied uint64
	halted      error
}

// New returns an FSM over a fresh state.
func New[S State](cfg Config[S]) (*FSM[S], error) {
	if cfg.New == nil || cfg.Registry == nil {
		return nil, errors.New("fsm: Config.New and Config.Registry are required")
	}
	if cfg.Fatal == nil {
		cfg.Fatal = func(err error) { panic(err) }
	}
	return &FSM[S]{cfg: cfg, state: cfg.New()}, nil
}

// View runs fn with read access to the state. fn must not keep references
// to the state past its return, nor mutate it.
func (f *FSM[S]) View(fn func(s S, lastApplied uint64)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state, f.lastApplied)
}

// Halted returns the fatal error that stopped the FSM, or nil.
func (f *FSM[S]) Halted() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.halted
}

// Apply implements raft.FSM.
func (f *FSM[S]) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applyLocked(l)
}

// ApplyBatch implements raft.BatchingFSM: one lock for the whole batch.
func (f *FSM[S]) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.applyLocked(l)
	}
	return out
}

func (f *FSM[S]) applyLocked(l *raft.Log) any {
	if l.Type == raft.LogConfiguration {
		if obs, ok := any(f.state).(ConfigurationObserver); ok {
			obs.ObserveConfiguration(l.Index, raft.DecodeConfiguration(l.Data))
		}
	}
	if l.Type != raft.LogCommand {
		f.lastApplied = l.Index
		return Response{Index: l.Index}
	}
	if f.halted != nil {
		return Response{Index: l.Index, Err: fmt.Errorf("%w: %v", ErrHalted, f.halted)}
	}
	resp := f.dispatch(l)
	f.lastApplied = l.Index
	return resp
}

func (f *FSM[S]) dispatch(l *raft.Log) Response {
	env := &commandpb.Envelope{}
	if err := proto.Unmarshal(l.Data, env); err != nil {
		resp := Response{Index: l.Index, Err: fmt.Errorf("%w at index %d: %v", ErrMalformedEntry, l.Index, err)}
		f.notify(commandpb.CommandType_COMMAND_TYPE_UNSPECIFIED, resp)
		return resp
	}
	reg, ok := f.cfg.Registry.handlers[env.Type]
	var fatal error
	switch {
	case !ok:
		fatal = fmt.Errorf("%w: %v (%d) at index %d", ErrUnknownCommand, env.Type, int32(env.Type), l.Index)
	case env.Version == 0 || env.Version > reg.maxVersion:
		fatal = fmt.Errorf("%w: %v version %d at index %d (this node reads up to %d)",
			ErrUnsupportedVersion, env.Type, env.Version, l.Index, reg.maxVersion)
	}
	if fatal != nil {
		resp := Response{Index: l.Index, Err: fatal}
		if !env.Ignorable {
			f.halted = fatal
		}
		f.notify(env.Type, resp)
		if !env.Ignorable {
			f.cfg.Fatal(fatal)
		}
		return resp
	}
	v, err := reg.handle(f.state, Entry{Index: l.Index, Term: l.Term, Envelope: env})
	resp := Response{Index: l.Index, Value: v, Err: err}
	f.notify(env.Type, resp)
	return resp
}

func (f *FSM[S]) notify(t commandpb.CommandType, resp Response) {
	if f.cfg.Applied != nil {
		f.cfg.Applied(resp.Index, t, resp)
	}
}

// Snapshot implements raft.FSM. The state is serialised here, with applies
// paused, so the returned snapshot is a consistent point in the log and
// Persist does no further reads of live state.
func (f *FSM[S]) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var buf bytes.Buffer
	if err := writeHeader(&buf, f.lastApplied); err != nil {
		return nil, err
	}
	if err := f.state.WriteSnapshot(&buf); err != nil {
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	return &snapshot{data: buf.Bytes()}, nil
}

// Restore implements raft.FSM: it decodes rc into a fresh state and swaps it
// in only if the whole stream decoded.
func (f *FSM[S]) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	fresh := f.cfg.New()
	br := bufio.NewReader(rc)
	last, err := readHeader(br)
	if err != nil {
		return err
	}
	if err := fresh.ReadSnapshot(br); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = fresh
	f.lastApplied = last
	return nil
}

// WriteSnapshot writes a full snapshot (header and state) of the current
// state to w. It is what Snapshot+Persist write; tests and tools use it.
func (f *FSM[S]) WriteSnapshot(w io.Writer) error {
	s, err := f.Snapshot()
	if err != nil {
		return err
	}
	_, err = w.Write(s.(*snapshot).data)
	return err
}

func writeHeader(w io.Writer, lastApplied uint64) error {
	var h [8 + 4 + 8]byte
	copy(h[:8], snapshotMagic[:])
	binary.BigEndian.PutUint32(h[8:12], SnapshotFormat)
	binary.BigEndian.PutUint64(h[12:], lastApplied)
	_, err := w.Write(h[:])
	return err
}

func readHeader(r io.Reader) (lastApplied uint64, err error) {
	var h [8 + 4 + 8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, fmt.Errorf("%w: header: %w", ErrBadSnapshot, err)
	}
	if !bytes.Equal(h[:8], snapshotMagic[:]) {
		return 0, fmt.Errorf("%w: not a Regent snapshot (magic %q)", ErrBadSnapshot, h[:8])
	}
	if v := binary.BigEndian.Uint32(h[8:12]); v == 0 || v > SnapshotFormat {
		return 0, fmt.Errorf("%w: format %d, this node reads up to %d", ErrBadSnapshot, v, SnapshotFormat)
	}
	return binary.BigEndian.Uint64(h[12:]), nil
}

type snapshot struct{ data []byte }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// Encode builds the log entry bytes for a command. The proposer stamps the
// wall-clock time and its own node id.
func Encode(t commandpb.CommandType, payload proto.Message, proposer string, nowUnixNano int64) ([]byte, error) {
	p, err := proto.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("fsm: encode %v: %w", t, err)
	}
	return EncodeRaw(t, p, proposer, nowUnixNano)
}

// EncodeRaw is Encode for an already marshalled payload.
func EncodeRaw(t commandpb.CommandType, p []byte, proposer string, nowUnixNano int64) ([]byte, error) {
	return proto.Marshal(&commandpb.Envelope{
		Type:               t,
		Version:            1,
		Payload:            p,
		ProposedAtUnixNano: nowUnixNano,
		Proposer:           proposer,
	})
}

// Decode unmarshals an envelope payload into m, wrapping errors with
// ErrMalformedEntry. Handlers use it for their payloads.
func Decode(e Entry, m proto.Message) error {
	if err := proto.Unmarshal(e.Envelope.Payload, m); err != nil {
		return fmt.Errorf("%w: %v payload at index %d: %v", ErrMalformedEntry, e.Envelope.Type, e.Index, err)
	}
	return nil
}
