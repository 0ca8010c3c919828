package secretconn

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// scriptedConn is a net.Conn whose peer is a fixed byte string; writes are
// discarded.
type scriptedConn struct{ r *bytes.Reader }

func (c scriptedConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c scriptedConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c scriptedConn) Close() error                     { return nil }
func (c scriptedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c scriptedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c scriptedConn) SetDeadline(time.Time) error      { return nil }
func (c scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (c scriptedConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzHandshakePeer: whatever a peer sends, Handshake returns an error
// (a scripted peer cannot know this session's keys, so it can never
// authenticate) and never panics.
func FuzzHandshakePeer(f *testing.F) {
	f.Add(append([]byte{34, 0x0a, 32}, bytes.Repeat([]byte{9}, 32)...))
	f.Add(append(append([]byte{34, 0x0a, 32}, bytes.Repeat([]byte{9}, 32)...), make([]byte, sealedFrameSize)...))
	f.Add([]byte{})
	f.Add([]byte{0xff})
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	f.Fuzz(func(t *testing.T, peer []byte) {
		c, err := Handshake(scriptedConn{bytes.NewReader(peer)}, key)
		if err == nil || c != nil {
			t.Fatal("a scripted peer completed the handshake")
		}
		if !errors.Is(err, ErrHandshake) && !errors.Is(err, ErrAuth) && !errors.Is(err, io.EOF) && !errors.Is(err, ErrFrame) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
