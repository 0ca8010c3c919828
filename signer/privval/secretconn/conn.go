package secretconn

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/encoding/protowire"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrHandshake: the peer did not complete the handshake as CometBFT's
	// SecretConnection specifies (I/O failure, malformed message, a
	// low-order ephemeral key). Nothing was authenticated.
	ErrHandshake = errors.New("secretconn: handshake failed")
	// ErrAuth: the peer's signature over the handshake challenge does not
	// verify under the Ed25519 key it presented, or it presented another
	// kind of key.
	ErrAuth = errors.New("secretconn: peer authentication failed")
	// ErrFrame: a sealed frame failed to open (tampering, a wrong key, a
	// desynchronised stream) or declares an impossible length. The
	// connection is unusable afterwards.
	ErrFrame = errors.New("secretconn: bad frame")
	// ErrNonceExhausted: 2^64 frames were sent or received on one
	// connection; it must be replaced.
	ErrNonceExhausted = errors.New("secretconn: nonce space exhausted")
)

// Wire constants of CometBFT's SecretConnection (p2p/conn).
const (
	dataLenSize     = 4
	dataMaxSize     = 1024
	frameSize       = dataLenSize + dataMaxSize
	sealedFrameSize = frameSize + chacha20poly1305.Overhead

	// ephMsgLen is the delimited google.protobuf.BytesValue carrying a
	// 32-byte X25519 key: 0x0a 0x20 key.
	ephMsgLen = 2 + 32
	// maxAuthMsgLen bounds the AuthSigMessage; an Ed25519 one is 102 bytes.
	maxAuthMsgLen = 1024

	transcriptLabel = "TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH"
	labelLowerEph   = "EPHEMERAL_LOWER_PUBLIC_KEY"
	labelUpperEph   = "EPHEMERAL_UPPER_PUBLIC_KEY"
	labelDHSecret   = "DH_SECRET"
	labelChallenge  = "SECRET_CONNECTION_MAC"
	hkdfInfo        = "TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN"
)

// Conn is an authenticated, encrypted connection. It implements net.Conn.
// Reads and writes may run concurrently with each other; concurrent Reads
// (or concurrent Writes) are serialised.
type Conn struct {
	conn   net.Conn
	remote ed25519.PublicKey

	recvMu     sync.Mutex
	recvAEAD   cipher.AEAD
	recvNonce  [chacha20poly1305.NonceSize]byte
	recvSealed []byte
	recvFrame  []byte
	recvBuf    []byte // plaintext of the last frame not yet returned
	recvErr    error  // sticky: a failed frame poisons the stream

	sendMu     sync.Mutex
	sendAEAD   cipher.AEAD
	sendNonce  [chacha20poly1305.NonceSize]byte
	sendFrame  []byte
	sendSealed []byte
	sendErr    error
}

var _ net.Conn = (*Conn)(nil)

// Handshake runs CometBFT's SecretConnection handshake over conn as either
// side (the protocol is symmetric) and returns the secured connection. The
// peer is authenticated as the holder of the Ed25519 key RemotePubKey
// returns; deciding whether that key is acceptable is the caller's job.
//
// The caller should set a deadline on conn first: the handshake blocks on
// the peer. On error conn is left open for the caller to close, and the
// error wraps ErrHandshake or ErrAuth.
func Handshake(conn net.Conn, local ed25519.PrivateKey) (*Conn, error) {
	if len(local) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: local key is %d bytes, want %d", ErrHandshake, len(local), ed25519.PrivateKeySize)
	}
	c, challenge, err := keyAgreement(conn)
	if err != nil {
		return nil, err
	}
	// Exchange identities and challenge signatures under encryption.
	authMsg := encodeAuthSig(local.Public().(ed25519.PublicKey), ed25519.Sign(local, challenge))
	var remKey ed25519.PublicKey
	var remSig []byte
	err = parallel(
		func() error { _, err := c.Write(authMsg); return err },
		func() error {
			var err error
			remKey, remSig, err = readAuthSig(c)
			return err
		})
	if err != nil {
		if errors.Is(err, ErrAuth) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: exchanging identities: %w", ErrHandshake, err)
	}
	if !ed25519.Verify(remKey, challenge, remSig) {
		return nil, fmt.Errorf("%w: challenge signature does not verify under %x", ErrAuth, []byte(remKey))
	}
	c.remote = remKey
	return c, nil
}

// keyAgreement runs the unauthenticated half of the handshake: ephemeral
// X25519 exchange, transcript, key schedule. It returns the encrypted
// connection (no identity yet) and the challenge to sign.
func keyAgreement(conn net.Conn) (*Conn, []byte, error) {
	ephPriv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ephemeral key: %w", ErrHandshake, err)
	}
	locEph := ephPriv.PublicKey().Bytes()

	// Both sides send their ephemeral key, then read the other's.
	ephMsg := make([]byte, 0, 1+ephMsgLen)
	ephMsg = protowire.AppendVarint(ephMsg, ephMsgLen)
	ephMsg = protowire.AppendTag(ephMsg, 1, protowire.BytesType)
	ephMsg = protowire.AppendBytes(ephMsg, locEph)
	var remEph []byte
	err = parallel(
		func() error { _, err := conn.Write(ephMsg); return err },
		func() error {
			var err error
			remEph, err = readEphemeral(conn)
			return err
		})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: exchanging ephemeral keys: %w", ErrHandshake, err)
	}
	remPub, err := ecdh.X25519().NewPublicKey(remEph)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: peer ephemeral key: %w", ErrHandshake, err)
	}
	// ECDH refuses low-order points (an all-zero shared secret).
	dh, err := ephPriv.ECDH(remPub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}

	lo, hi := locEph, remEph
	if bytes.Compare(locEph, remEph) > 0 {
		lo, hi = remEph, locEph
	}
	locIsLeast := bytes.Equal(lo, locEph)
	t := newTranscript(transcriptLabel)
	t.appendMessage(labelLowerEph, lo)
	t.appendMessage(labelUpperEph, hi)
	t.appendMessage(labelDHSecret, dh)

	// The lexicographically lower side receives with the first key.
	keys, err := hkdf.Key(sha256.New, dh, nil, hkdfInfo, 2*chacha20poly1305.KeySize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: hkdf: %w", ErrHandshake, err)
	}
	first, second := keys[:chacha20poly1305.KeySize], keys[chacha20poly1305.KeySize:]
	recvKey, sendKey := second, first
	if locIsLeast {
		recvKey, sendKey = first, second
	}
	challenge := make([]byte, 32)
	t.challenge(labelChallenge, challenge)

	c := &Conn{
		conn:       conn,
		recvSealed: make([]byte, sealedFrameSize),
		recvFrame:  make([]byte, frameSize),
		sendFrame:  make([]byte, frameSize),
		sendSealed: make([]byte, sealedFrameSize),
	}
	if c.recvAEAD, err = chacha20poly1305.New(recvKey); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if c.sendAEAD, err = chacha20poly1305.New(sendKey); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return c, challenge, nil
}

// parallel runs a and b concurrently and returns the first error. Both
// have returned when it returns.
func parallel(a, b func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- a() }()
	errB := b()
	errA := <-errc
	if errA != nil {
		return errA
	}
	return errB
}

// readEphemeral reads the peer's delimited BytesValue holding its X25519
// key, without reading a byte beyond it.
func readEphemeral(r io.Reader) ([]byte, error) {
	var buf [1 + ephMsgLen]byte
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return nil, err
	}
	if buf[0] != ephMsgLen {
		return nil, fmt.Errorf("ephemeral key message is %d bytes, want %d", buf[0], ephMsgLen)
	}
	if _, err := io.ReadFull(r, buf[1:]); err != nil {
		return nil, err
	}
	if buf[1] != 0x0a || buf[2] != 32 {
		return nil, errors.New("ephemeral key message is not a 32-byte BytesValue")
	}
	return append([]byte(nil), buf[3:]...), nil
}

// encodeAuthSig returns the delimited tendermint.p2p.AuthSigMessage
// {pub_key: PublicKey{ed25519: pub}, sig: sig}.
func encodeAuthSig(pub ed25519.PublicKey, sig []byte) []byte {
	var pk []byte
	pk = protowire.AppendTag(pk, 1, protowire.BytesType)
	pk = protowire.AppendBytes(pk, pub)
	var body []byte
	body = protowire.AppendTag(body, 1, protowire.BytesType)
	body = protowire.AppendBytes(body, pk)
	body = protowire.AppendTag(body, 2, protowire.BytesType)
	body = protowire.AppendBytes(body, sig)
	return protowire.AppendBytes(nil, body)
}

// readAuthSig reads and decodes the peer's AuthSigMessage. Only an Ed25519
// key is acceptable (as in CometBFT).
func readAuthSig(r io.Reader) (ed25519.PublicKey, []byte, error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, nil, err
	}
	if n == 0 || n > maxAuthMsgLen {
		return nil, nil, fmt.Errorf("auth message length %d outside 1..%d", n, maxAuthMsgLen)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, nil, err
	}
	return decodeAuthSig(body)
}

func decodeAuthSig(body []byte) (ed25519.PublicKey, []byte, error) {
	var pkMsg, sig []byte
	var sawPK, sawSig bool
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 || typ != protowire.BytesType || (num != 1 && num != 2) {
			return nil, nil, fmt.Errorf("%w: malformed auth message", ErrAuth)
		}
		body = body[n:]
		v, m := protowire.ConsumeBytes(body)
		if m < 0 {
			return nil, nil, fmt.Errorf("%w: malformed auth message", ErrAuth)
		}
		body = body[m:]
		switch {
		case num == 1 && !sawPK:
			pkMsg, sawPK = v, true
		case num == 2 && !sawSig:
			sig, sawSig = v, true
		default:
			return nil, nil, fmt.Errorf("%w: duplicate field %d in auth message", ErrAuth, num)
		}
	}
	num, typ, n := protowire.ConsumeTag(pkMsg)
	if n < 0 || num != 1 || typ != protowire.BytesType {
		return nil, nil, fmt.Errorf("%w: peer key is not Ed25519", ErrAuth)
	}
	key, m := protowire.ConsumeBytes(pkMsg[n:])
	if m < 0 || n+m != len(pkMsg) || len(key) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("%w: peer key is not a 32-byte Ed25519 key", ErrAuth)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, nil, fmt.Errorf("%w: challenge signature is %d bytes, want %d", ErrAuth, len(sig), ed25519.SignatureSize)
	}
	return append(ed25519.PublicKey(nil), key...), append([]byte(nil), sig...), nil
}

func readUvarint(r io.Reader) (uint64, error) {
	var x uint64
	var b [1]byte
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		x |= uint64(b[0]&0x7f) << (7 * i)
		if b[0] < 0x80 {
			return x, nil
		}
	}
	return 0, errors.New("varint overflows 64 bits")
}

// RemotePubKey returns the peer's authenticated Ed25519 identity key.
func (c *Conn) RemotePubKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), c.remote...)
}

// Write seals data into frames of at most 1024 plaintext bytes. A Write of
// at most 1024 bytes is atomic on the wire.
func (c *Conn) Write(data []byte) (int, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sendErr != nil {
		return 0, c.sendErr
	}
	n := 0
	for len(data) > 0 {
		chunk := data
		if len(chunk) > dataMaxSize {
			chunk = chunk[:dataMaxSize]
		}
		data = data[len(chunk):]
		clear(c.sendFrame)
		binary.LittleEndian.PutUint32(c.sendFrame, uint32(len(chunk)))
		copy(c.sendFrame[dataLenSize:], chunk)
		sealed := c.sendAEAD.Seal(c.sendSealed[:0], c.sendNonce[:], c.sendFrame, nil)
		if err := incrNonce(&c.sendNonce); err != nil {
			c.sendErr = err
			return n, err
		}
		if _, err := c.conn.Write(sealed); err != nil {
			// A partial frame on the wire desynchronises the peer.
			c.sendErr = err
			return n, err
		}
		n += len(chunk)
	}
	return n, nil
}

// Read returns plaintext from the next frame (or what is left of the
// current one). An authentication failure is permanent.
func (c *Conn) Read(data []byte) (int, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if len(c.recvBuf) > 0 {
		n := copy(data, c.recvBuf)
		c.recvBuf = c.recvBuf[n:]
		return n, nil
	}
	if c.recvErr != nil {
		return 0, c.recvErr
	}
	if n, err := io.ReadFull(c.conn, c.recvSealed); err != nil {
		// An error before the frame started (a read deadline while idle)
		// leaves the stream intact; one mid-frame desynchronises it.
		if n > 0 {
			c.recvErr = fmt.Errorf("%w: stream broke mid-frame: %w", ErrFrame, err)
		}
		return 0, err
	}
	frame, err := c.recvAEAD.Open(c.recvFrame[:0], c.recvNonce[:], c.recvSealed, nil)
	if err != nil {
		c.recvErr = fmt.Errorf("%w: %w", ErrFrame, err)
		return 0, c.recvErr
	}
	if err := incrNonce(&c.recvNonce); err != nil {
		c.recvErr = err
		return 0, err
	}
	l := binary.LittleEndian.Uint32(frame)
	if l > dataMaxSize {
		c.recvErr = fmt.Errorf("%w: frame declares %d bytes, limit %d", ErrFrame, l, dataMaxSize)
		return 0, c.recvErr
	}
	chunk := frame[dataLenSize : dataLenSize+l]
	n := copy(data, chunk)
	c.recvBuf = chunk[n:]
	return n, nil
}

// incrNonce increments the 64-bit little-endian counter in nonce[4:].
func incrNonce(nonce *[chacha20poly1305.NonceSize]byte) error {
	ctr := binary.LittleEndian.Uint64(nonce[4:])
	if ctr == math.MaxUint64 {
		return ErrNonceExhausted
	}
	binary.LittleEndian.PutUint64(nonce[4:], ctr+1)
	return nil
}

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.conn.Close() }

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
