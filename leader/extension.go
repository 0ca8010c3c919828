package leader

import (
	"bytes"
	"fmt"
	"io"
)

// Extension is replicated state owned by another package (failover: operators,
// approvals, handovers, the audit chain). It lives inside State so it is
// driven by the same FSM, under the same lock, and snapshotted with it.
// Its handlers are registered on the same fsm.Registry and reach it with
// State.Extension; like every handler they must be deterministic and change
// nothing when they return an error.
type Extension interface {
	// Name identifies the extension's snapshot section; stable forever.
	Name() string
	WriteSnapshot(w io.Writer) error
	// ReadSnapshot fills a fresh extension.
	ReadSnapshot(r io.Reader) error
}

// NewStateWith returns a constructor of States carrying fresh extensions,
// for fsm.Config.New.
func NewStateWith(exts ...func() Extension) func() *State {
	return func() *State {
		s := NewState()
		for _, mk := range exts {
			e := mk()
			s.exts = append(s.exts, e)
		}
		return s
	}
}

// Extension returns the extension named name, or nil.
func (s *State) Extension(name string) Extension {
	for _, e := range s.exts {
		if e.Name() == name {
			return e
		}
	}
	return nil
}

// sectionExtension is the section id of every extension; the name follows
// in the body. sectionEnd closes every snapshot: a stream without it is
// truncated, even if it ends on a section boundary.
const (
	sectionExtension uint32 = 100
	sectionEnd       uint32 = 0xFFFFFFFF
)

func (s *State) writeExtensions(w io.Writer) error {
	for _, e := range s.exts {
		var buf bytes.Buffer
		name := e.Name()
		buf.WriteByte(byte(len(name)))
		buf.WriteString(name)
		if err := e.WriteSnapshot(&buf); err != nil {
			return fmt.Errorf("extension %s: %w", name, err)
		}
		if err := writeSection(w, sectionExtension, buf.Bytes()); err != nil {
			return err
		}
	}
	return writeSection(w, sectionEnd, nil)
}

// readExtensions reads extension sections up to the end section. A
// snapshot written before an extension existed leaves it fresh; a section
// for an extension this node does not have is an error (it would be state
// this node cannot keep).
func (s *State) readExtensions(r io.Reader) error {
	for {
		id, body, err := readSection(r)
		if err != nil {
			if isEOF(err) {
				return fmt.Errorf("%w: snapshot ends without its end section (truncated)", ErrInvalidInput)
			}
			return err
		}
		if id == sectionEnd && len(body) == 0 {
			return nil
		}
		if id != sectionExtension || len(body) == 0 || int(body[0])+1 > len(body) {
			return fmt.Errorf("%w: malformed extension section %d", ErrInvalidInput, id)
		}
		name := string(body[1 : 1+int(body[0])])
		e := s.Extension(name)
		if e == nil {
			return fmt.Errorf("%w: snapshot holds extension %q this node does not know", ErrInvalidInput, name)
		}
		if err := e.ReadSnapshot(bytes.NewReader(body[1+int(body[0]):])); err != nil {
			return fmt.Errorf("extension %s: %w", name, err)
		}
	}
}
