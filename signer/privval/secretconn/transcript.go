package secretconn

import "encoding/binary"

// This file implements the subset of STROBE-128 (strobe.sourceforge.io,
// v1.0.2) that a Merlin transcript (merlin.cool, "Merlin v1.0") needs:
// meta-AD, AD and PRF. CometBFT's SecretConnection binds its handshake to
// such a transcript; the challenge both sides sign is extracted from it.

const (
	// strobeRate is STROBE's rate R for 128-bit security: 200 - 128/4 - 2.
	strobeRate = 166

	flagI = 1 << 0
	flagA = 1 << 1
	flagC = 1 << 2
	flagM = 1 << 4
	flagK = 1 << 5
)

// strobe is a STROBE-128 duplex over Keccak-f[1600].
type strobe struct {
	st       [200]byte
	pos      int
	posBegin int
	curFlags byte
}

func newStrobe(protocol string) *strobe {
	s := &strobe{}
	copy(s.st[:], []byte{1, strobeRate + 2, 1, 0, 1, 96})
	copy(s.st[6:], "STROBEv1.0.2")
	keccakF1600(&s.st)
	s.metaAD([]byte(protocol), false)
	return s
}

func (s *strobe) runF() {
	s.st[s.pos] ^= byte(s.posBegin)
	s.st[s.pos+1] ^= 0x04
	s.st[strobeRate+1] ^= 0x80
	keccakF1600(&s.st)
	s.pos, s.posBegin = 0, 0
}

func (s *strobe) absorb(data []byte) {
	for _, b := range data {
		s.st[s.pos] ^= b
		s.pos++
		if s.pos == strobeRate {
			s.runF()
		}
	}
}

func (s *strobe) squeeze(out []byte) {
	for i := range out {
		out[i] = s.st[s.pos]
		s.st[s.pos] = 0
		s.pos++
		if s.pos == strobeRate {
			s.runF()
		}
	}
}

// beginOp starts an operation with flags, or continues the current one when
// more is set (the caller guarantees the flags are the same).
func (s *strobe) beginOp(flags byte, more bool) {
	if more {
		return
	}
	oldBegin := s.posBegin
	s.posBegin = s.pos + 1
	s.curFlags = flags
	s.absorb([]byte{byte(oldBegin), flags})
	if flags&(flagC|flagK) != 0 && s.pos != 0 {
		s.runF()
	}
}

func (s *strobe) metaAD(data []byte, more bool) {
	s.beginOp(flagM|flagA, more)
	s.absorb(data)
}

func (s *strobe) ad(data []byte, more bool) {
	s.beginOp(flagA, more)
	s.absorb(data)
}

func (s *strobe) prf(out []byte, more bool) {
	s.beginOp(flagI|flagA|flagC, more)
	s.squeeze(out)
}

// transcript is a Merlin transcript.
type transcript struct{ s *strobe }

func newTranscript(label string) *transcript {
	t := &transcript{s: newStrobe("Merlin v1.0")}
	t.appendMessage("dom-sep", []byte(label))
	return t
}

// appendMessage absorbs AD[label || le32(len(msg))](msg).
func (t *transcript) appendMessage(label string, msg []byte) {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(msg)))
	t.s.metaAD([]byte(label), false)
	t.s.metaAD(n[:], true)
	t.s.ad(msg, false)
}

// challenge fills out with challenge bytes bound to everything appended.
func (t *transcript) challenge(label string, out []byte) {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(out)))
	t.s.metaAD([]byte(label), false)
	t.s.metaAD(n[:], true)
	t.s.prf(out, false)
}
