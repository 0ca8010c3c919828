package secretconn

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// sha3Sponge is SHA3-256 built on keccakF1600 (rate 136, domain 0x06), the
// brute-force reference path for the permutation.
func sha3Sponge(msg []byte) [32]byte {
	const rate = 136
	var st [200]byte
	padded := append(append([]byte(nil), msg...), 0x06)
	for len(padded)%rate != 0 {
		padded = append(padded, 0)
	}
	padded[len(padded)-1] |= 0x80
	for off := 0; off < len(padded); off += rate {
		for i := 0; i < rate; i++ {
			st[i] ^= padded[off+i]
		}
		keccakF1600(&st)
	}
	var out [32]byte
	copy(out[:], st[:32])
	return out
}

// The permutation is checked against the standard library's SHA3-256 on
// random messages of every length class (empty, under, at and over one
// block).
func TestKeccakMatchesSHA3(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		msg := make([]byte, r.IntN(700))
		for j := range msg {
			msg[j] = byte(r.Uint32())
		}
		if got, want := sha3Sponge(msg), sha3.Sum256(msg); got != want {
			t.Fatalf("len %d: sponge %x, crypto/sha3 %x", len(msg), got, want)
		}
	}
}

// Known answers of Merlin transcripts. The first is the Merlin
// specification's "simple transcript" example; the other two were computed
// with an independent Merlin implementation (oasisprotocol/curve25519-voi,
// the one CometBFT links) for the SecretConnection labels and for input and
// output spanning several STROBE blocks.
func TestTranscriptKnownAnswers(t *testing.T) {
	seq := func(n int, f func(i int) byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = f(i)
		}
		return b
	}
	tests := []struct {
		name string
		run  func() []byte
		want string // hex of the last 32 bytes extracted
	}{
		{"merlin simple transcript", func() []byte {
			tr := newTranscript("test protocol")
			tr.appendMessage("some label", []byte("some data"))
			out := make([]byte, 32)
			tr.challenge("challenge", out)
			return out
		}, "d5a21972d0d5fe320c0d263fac7fffb8145aa640af6e9bca177c03c7efcf0615"},
		{"secret connection labels", func() []byte {
			tr := newTranscript(transcriptLabel)
			tr.appendMessage(labelLowerEph, seq(32, func(i int) byte { return byte(i) }))
			tr.appendMessage(labelUpperEph, seq(32, func(i int) byte { return byte(0x80 + i) }))
			tr.appendMessage(labelDHSecret, seq(32, func(i int) byte { return byte(0xff - i) }))
			out := make([]byte, 32)
			tr.challenge(labelChallenge, out)
			return out
		}, "ac36b0a67e16aac0ee5221ada5fc883853ffef005cab3be4c8abe26f7476c5c8"},
		{"multi-block input and output", func() []byte {
			tr := newTranscript("long")
			tr.appendMessage("m", seq(1000, func(i int) byte { return byte(i * 7) }))
			out := make([]byte, 400)
			tr.challenge("o", out)
			return out[len(out)-32:]
		}, "658b3d0310a653d9be1da166fff6bf0c3f39cdfc76cd88e4743a1367f8b1116c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hex.EncodeToString(tc.run()); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tcpPair returns two ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { a.Close(); r.c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	_ = a.SetDeadline(deadline)
	_ = r.c.SetDeadline(deadline)
	return a, r.c
}

// handshakePair runs both sides of the handshake and returns the results.
func handshakePair(t *testing.T, a, b net.Conn, ka, kb ed25519.PrivateKey) (*Conn, *Conn, error, error) {
	t.Helper()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := Handshake(b, kb); ch <- res{c, err} }()
	ca, errA := Handshake(a, ka)
	if errA != nil {
		a.Close() // unblock the other side
	}
	r := <-ch
	if r.err != nil && errA == nil {
		ca.Close()
	}
	return ca, r.c, errA, r.err
}

func TestHandshakeAuthenticatesBothSidesAndCarriesData(t *testing.T) {
	for _, transport := range []string{"tcp", "pipe"} {
		t.Run(transport, func(t *testing.T) {
			var a, b net.Conn
			if transport == "tcp" {
				a, b = tcpPair(t)
			} else {
				a, b = net.Pipe()
				t.Cleanup(func() { a.Close(); b.Close() })
			}
			ka, kb := newKey(t), newKey(t)
			ca, cb, errA, errB := handshakePair(t, a, b, ka, kb)
			if errA != nil || errB != nil {
				t.Fatalf("handshake: %v / %v", errA, errB)
			}
			if !ca.RemotePubKey().Equal(kb.Public()) || !cb.RemotePubKey().Equal(ka.Public()) {
				t.Fatal("remote keys do not match the peers' identities")
			}
			// Messages of every size class, both directions, crossing frame
			// boundaries.
			for _, n := range []int{1, dataMaxSize - 1, dataMaxSize, dataMaxSize + 1, 5*dataMaxSize + 17} {
				msg := make([]byte, n)
				_, _ = rand.Read(msg)
				got := make([]byte, n)
				err := parallel(func() error { _, err := ca.Write(msg); return err },
					func() error { _, err := io.ReadFull(cb, got); return err })
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("a→b %d bytes: err %v, equal %v", n, err, bytes.Equal(got, msg))
				}
				err = parallel(func() error { _, err := cb.Write(msg); return err },
					func() error { _, err := io.ReadFull(ca, got); return err })
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("b→a %d bytes: err %v", n, err)
				}
			}
		})
	}
}

// A peer that replays another session's authentication cannot pass: the
// challenge is bound to the ephemeral keys, so a signature from a different
// session does not verify.
func TestHandshakeRejectsForeignChallengeSignature(t *testing.T) {
	a, b := tcpPair(t)
	ka, kb := newKey(t), newKey(t)
	errc := make(chan error, 1)
	go func() {
		// A hand-rolled peer that runs the key exchange honestly but signs
		// a wrong challenge.
		errc <- evilPeer(b, kb, func(challenge []byte) []byte {
			wrong := append([]byte(nil), challenge...)
			wrong[0] ^= 1
			return ed25519.Sign(kb, wrong)
		}, nil)
	}()
	_, err := Handshake(a, ka)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("handshake with a bad challenge signature: %v, want ErrAuth", err)
	}
	a.Close()
	<-errc
}

func TestHandshakeRejectsMalformedPeers(t *testing.T) {
	tests := []struct {
		name string
		// peer misbehaves on b.
		peer func(b net.Conn, kb ed25519.PrivateKey) error
		want error
	}{
		{"ephemeral message of the wrong length", func(b net.Conn, _ ed25519.PrivateKey) error {
			_, err := b.Write(append([]byte{33, 0x0a, 31}, make([]byte, 31)...))
			return err
		}, ErrHandshake},
		{"ephemeral message with the wrong field", func(b net.Conn, _ ed25519.PrivateKey) error {
			_, err := b.Write(append([]byte{34, 0x12, 32}, make([]byte, 32)...))
			return err
		}, ErrHandshake},
		{"low-order ephemeral key (zero point)", func(b net.Conn, _ ed25519.PrivateKey) error {
			_, err := b.Write(append([]byte{34, 0x0a, 32}, make([]byte, 32)...))
			return err
		}, ErrHandshake},
		{"peer hangs up", func(b net.Conn, _ ed25519.PrivateKey) error {
			return b.Close()
		}, ErrHandshake},
		{"auth message with a secp256k1 key", func(b net.Conn, kb ed25519.PrivateKey) error {
			return evilPeer(b, kb, nil, func(pub ed25519.PublicKey, sig []byte) []byte {
				m := encodeAuthSig(pub, sig)
				// Re-tag the inner key as field 2 (secp256k1): body[0] is
				// the outer length, then 0x0a len, then the inner tag.
				m[3] = 0x12
				return m
			})
		}, ErrAuth},
		{"auth message with a short signature", func(b net.Conn, kb ed25519.PrivateKey) error {
			return evilPeer(b, kb, nil, func(pub ed25519.PublicKey, sig []byte) []byte {
				return encodeAuthSig(pub, sig[:63])
			})
		}, ErrAuth},
		{"auth message of absurd length", func(b net.Conn, kb ed25519.PrivateKey) error {
			return evilPeer(b, kb, nil, func(ed25519.PublicKey, []byte) []byte {
				return []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
			})
		}, ErrHandshake},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tcpPair(t)
			done := make(chan struct{})
			go func() { defer close(done); _ = tc.peer(b, newKey(t)) }()
			_ = a.SetDeadline(time.Now().Add(3 * time.Second))
			c, err := Handshake(a, newKey(t))
			a.Close()
			b.Close()
			<-done
			if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("got conn %v, err %v; want %v", c != nil, err, tc.want)
			}
		})
	}
}

// evilPeer runs the handshake by hand on conn. sign (when set) replaces the
// challenge signature; auth (when set) replaces the encoded auth message.
func evilPeer(conn net.Conn, key ed25519.PrivateKey, sign func(challenge []byte) []byte, auth func(ed25519.PublicKey, []byte) []byte) error {
	c, challenge, err := keyAgreement(conn)
	if err != nil {
		return err
	}
	sig := ed25519.Sign(key, challenge)
	if sign != nil {
		sig = sign(challenge)
	}
	msg := encodeAuthSig(key.Public().(ed25519.PublicKey), sig)
	if auth != nil {
		msg = auth(key.Public().(ed25519.PublicKey), sig)
	}
	_, err = c.Write(msg)
	return err
}

func TestTamperedFramePoisonsTheStream(t *testing.T) {
	a, b := tcpPair(t)
	ka, kb := newKey(t), newKey(t)
	ca, cb, errA, errB := handshakePair(t, a, b, ka, kb)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	// Write a valid frame's worth of garbage directly on the raw socket:
	// b must refuse it and stay refused.
	if _, err := a.Write(make([]byte, sealedFrameSize)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := cb.Read(buf); !errors.Is(err, ErrFrame) {
		t.Fatalf("read of a forged frame: %v, want ErrFrame", err)
	}
	// A genuine frame afterwards is still refused: the stream is poisoned.
	go func() { _, _ = ca.Write([]byte("hello")) }()
	if _, err := cb.Read(buf); !errors.Is(err, ErrFrame) {
		t.Fatalf("read after a forged frame: %v, want sticky ErrFrame", err)
	}
}

func TestNonceExhaustionIsAnErrorNotAPanic(t *testing.T) {
	var n [chacha20poly1305.NonceSize]byte
	for i := 4; i < len(n); i++ {
		n[i] = 0xff
	}
	if err := incrNonce(&n); !errors.Is(err, ErrNonceExhausted) {
		t.Fatalf("incrNonce at MaxUint64: %v", err)
	}
	var m [chacha20poly1305.NonceSize]byte
	m[4] = 0xff
	if err := incrNonce(&m); err != nil || m[4] != 0 || m[5] != 1 {
		t.Fatalf("carry: %v %x", err, m)
	}
}

// FuzzDecodeAuthSig: arbitrary auth-message bodies never panic, and an
// accepted one always yields a 32-byte key and a 64-byte signature.
func FuzzDecodeAuthSig(f *testing.F) {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	good := encodeAuthSig(k.Public().(ed25519.PublicKey), make([]byte, 64))
	f.Add(good[1:])
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		key, sig, err := decodeAuthSig(body)
		if err != nil {
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("error %v does not wrap ErrAuth", err)
			}
			return
		}
		if len(key) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			t.Fatalf("accepted key %d bytes, sig %d bytes", len(key), len(sig))
		}
	})
}
