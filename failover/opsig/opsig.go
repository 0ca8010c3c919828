package opsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/regent-signer/regent/failover/failoverpb"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrInvalidCommand: a body or signed command is malformed or exceeds
	// a limit.
	ErrInvalidCommand = errors.New("opsig: invalid command")
	// ErrUnsupportedKey: a key is neither Ed25519 nor ECDSA P-256.
	ErrUnsupportedKey = errors.New("opsig: unsupported key")
	// ErrBadSignature: a signature does not verify.
	ErrBadSignature = errors.New("opsig: bad signature")
)

// Limits of the format.
const (
	// MaxExpiryWindow is how far ahead of the proposer's time an expiry may
	// lie. The state machine keeps each used nonce until its expiry, so this
	// bounds how long nonces are kept.
	MaxExpiryWindow = 24 * time.Hour
	// DefaultTTL is the validity Builder gives a command when TTL is zero.
	DefaultTTL = time.Hour
	// MinNonce and MaxNonce bound the nonce length in bytes.
	MinNonce = 16
	MaxNonce = 32
	// MaxBody bounds an encoded OperatorCommand (AddKeys with wrapped
	// secrets for many keys is the largest).
	MaxBody = 8 << 20
	// MaxSignatures bounds the signatures of one SignedCommand.
	MaxSignatures = 32
	// MaxID bounds operator and cluster ids.
	MaxID = 64
)

// domain separates operator-command signatures from any other use of an
// operator key.
const domain = "regent/failover/operator-command/v1\x00"

// Message returns the bytes an operator signs for body.
func Message(body []byte) []byte {
	m := make([]byte, 0, len(domain)+len(body))
	m = append(m, domain...)
	return append(m, body...)
}

// ParsePublicKey parses a PKIX DER public key and accepts only Ed25519
// and ECDSA P-256.
func ParsePublicKey(der []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: ed25519 key of %d bytes", ErrUnsupportedKey, len(k))
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ECDSA curve %s (want P-256)", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		return nil
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
}

// MarshalPublicKey returns the PKIX DER encoding of an Ed25519 or P-256
// public key (what AddOperator and BootstrapOperators carry).
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// VerifySignature checks sig over Message(body) against a PKIX DER public
// key. It is deterministic and reads nothing but its arguments.
func VerifySignature(publicKeyDER, body, sig []byte) error {
	pub, err := ParsePublicKey(publicKeyDER)
	if err != nil {
		return err
	}
	return Verify(pub, body, sig)
}

// Verify checks sig over Message(body) against pub.
func Verify(pub crypto.PublicKey, body, sig []byte) error {
	msg := Message(body)
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, msg, sig) {
			return fmt.Errorf("%w: ed25519", ErrBadSignature)
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k, d[:], sig) {
			return fmt.Errorf("%w: ecdsa p-256", ErrBadSignature)
		}
		return nil
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
}

// Sign signs Message(body) with signer (Ed25519 or P-256; a PKCS#11 key
// through crypto.Signer works) and verifies the result against the
// signer's public key before returning it, so a faulty HSM cannot hand out
// a signature the cluster would refuse.
func Sign(signer crypto.Signer, body []byte) ([]byte, error) {
	if signer == nil {
		return nil, fmt.Errorf("%w: no signer", ErrUnsupportedKey)
	}
	pub := signer.Public()
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	msg := Message(body)
	var sig []byte
	var err error
	switch pub.(type) {
	case ed25519.PublicKey:
		sig, err = signer.Sign(rand.Reader, msg, crypto.Hash(0))
	default:
		d := sha256.Sum256(msg)
		sig, err = signer.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("opsig: sign: %w", err)
	}
	if err := Verify(pub, body, sig); err != nil {
		return nil, fmt.Errorf("opsig: the signer produced a signature that does not verify: %w", err)
	}
	return sig, nil
}

// Builder makes OperatorCommands for one operator of one cluster.
type Builder struct {
	ClusterID  string
	OperatorID string
	// Now stamps the expiry. Required: the caller owns the clock.
	Now func() time.Time
	// TTL is how long the command stays valid; zero means DefaultTTL.
	// It must not exceed MaxExpiryWindow.
	TTL time.Duration
	// Rand supplies the nonce; nil means crypto/rand.Reader.
	Rand io.Reader
}

// New returns a command with cluster id, operator id, a fresh 32-byte
// nonce and an expiry of Now()+TTL. The caller sets its Action.
func (b Builder) New() (*failoverpb.OperatorCommand, error) {
	if b.ClusterID == "" || len(b.ClusterID) > MaxID || b.OperatorID == "" || len(b.OperatorID) > MaxID {
		return nil, fmt.Errorf("%w: cluster id %q and operator id %q must be 1..%d bytes", ErrInvalidCommand, b.ClusterID, b.OperatorID, MaxID)
	}
	if b.Now == nil {
		return nil, fmt.Errorf("%w: Builder.Now is required", ErrInvalidCommand)
	}
	ttl := b.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < 0 || ttl > MaxExpiryWindow {
		return nil, fmt.Errorf("%w: ttl %v (0 < ttl <= %v)", ErrInvalidCommand, ttl, MaxExpiryWindow)
	}
	r := b.Rand
	if r == nil {
		r = rand.Reader
	}
	nonce := make([]byte, MaxNonce)
	if _, err := io.ReadFull(r, nonce); err != nil {
		return nil, fmt.Errorf("opsig: nonce: %w", err)
	}
	return &failoverpb.OperatorCommand{
		ClusterId:       b.ClusterID,
		Nonce:           nonce,
		ExpiresUnixNano: b.Now().Add(ttl).UnixNano(),
		OperatorId:      b.OperatorID,
	}, nil
}

// Marshal returns the canonical (deterministic) encoding of cmd after
// checking it is well formed.
func Marshal(cmd *failoverpb.OperatorCommand) ([]byte, error) {
	if err := checkBody(cmd); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	if len(b) > MaxBody {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrInvalidCommand, len(b), MaxBody)
	}
	return b, nil
}

// SignCommand encodes cmd and signs it as cmd.OperatorId with signer.
func SignCommand(cmd *failoverpb.OperatorCommand, signer crypto.Signer) (*failoverpb.SignedCommand, error) {
	body, err := Marshal(cmd)
	if err != nil {
		return nil, err
	}
	sig, err := Sign(signer, body)
	if err != nil {
		return nil, err
	}
	return &failoverpb.SignedCommand{Body: body, Signatures: []*failoverpb.OperatorSignature{{OperatorId: cmd.OperatorId, Signature: sig}}}, nil
}

// Cosign adds operatorID's signature to sc. Every co-signer counts toward
// the action's threshold; an operator signs a command at most once.
func Cosign(sc *failoverpb.SignedCommand, operatorID string, signer crypto.Signer) error {
	if operatorID == "" || len(operatorID) > MaxID {
		return fmt.Errorf("%w: operator id %q", ErrInvalidCommand, operatorID)
	}
	if _, err := DecodeBody(sc.GetBody()); err != nil {
		return err
	}
	if len(sc.Signatures) >= MaxSignatures {
		return fmt.Errorf("%w: already %d signatures", ErrInvalidCommand, len(sc.Signatures))
	}
	for _, s := range sc.Signatures {
		if s.GetOperatorId() == operatorID {
			return fmt.Errorf("%w: %q already signed", ErrInvalidCommand, operatorID)
		}
	}
	sig, err := Sign(signer, sc.Body)
	if err != nil {
		return err
	}
	sc.Signatures = append(sc.Signatures, &failoverpb.OperatorSignature{OperatorId: operatorID, Signature: sig})
	return nil
}

// EncodeSigned returns the OPERATOR_COMMAND payload for sc.
func EncodeSigned(sc *failoverpb.SignedCommand) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(sc)
}

// DecodeSigned decodes an OPERATOR_COMMAND payload and checks its shape
// (body size, 1..MaxSignatures signatures with ids); it verifies nothing.
func DecodeSigned(payload []byte) (*failoverpb.SignedCommand, error) {
	if len(payload) > MaxBody+MaxSignatures*(MaxID+256)+64 {
		return nil, fmt.Errorf("%w: payload of %d bytes", ErrInvalidCommand, len(payload))
	}
	var sc failoverpb.SignedCommand
	if err := proto.Unmarshal(payload, &sc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	if hasUnknown(sc.ProtoReflect()) {
		return nil, fmt.Errorf("%w: signed command holds fields this node does not know", ErrInvalidCommand)
	}
	if len(sc.Body) == 0 || len(sc.Body) > MaxBody {
		return nil, fmt.Errorf("%w: body of %d bytes (1..%d)", ErrInvalidCommand, len(sc.Body), MaxBody)
	}
	if len(sc.Signatures) == 0 || len(sc.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("%w: %d signatures (1..%d)", ErrInvalidCommand, len(sc.Signatures), MaxSignatures)
	}
	for i, s := range sc.Signatures {
		if s.GetOperatorId() == "" || len(s.GetOperatorId()) > MaxID || len(s.GetSignature()) == 0 || len(s.GetSignature()) > 256 {
			return nil, fmt.Errorf("%w: signature %d: operator id %q, %d signature bytes", ErrInvalidCommand, i, s.GetOperatorId(), len(s.GetSignature()))
		}
	}
	return &sc, nil
}

// DecodeBody decodes a signed body. It refuses bodies holding fields this
// build does not know (their meaning was signed but cannot be checked),
// and bodies without cluster id, nonce of MinNonce..MaxNonce bytes,
// operator id or action.
func DecodeBody(body []byte) (*failoverpb.OperatorCommand, error) {
	if len(body) == 0 || len(body) > MaxBody {
		return nil, fmt.Errorf("%w: body of %d bytes (1..%d)", ErrInvalidCommand, len(body), MaxBody)
	}
	var cmd failoverpb.OperatorCommand
	if err := proto.Unmarshal(body, &cmd); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	if hasUnknown(cmd.ProtoReflect()) {
		return nil, fmt.Errorf("%w: body holds fields this node does not know", ErrInvalidCommand)
	}
	if err := checkBody(&cmd); err != nil {
		return nil, err
	}
	return &cmd, nil
}

func checkBody(cmd *failoverpb.OperatorCommand) error {
	switch {
	case cmd.ClusterId == "" || len(cmd.ClusterId) > MaxID:
		return fmt.Errorf("%w: cluster id %q", ErrInvalidCommand, cmd.ClusterId)
	case len(cmd.Nonce) < MinNonce || len(cmd.Nonce) > MaxNonce:
		return fmt.Errorf("%w: nonce of %d bytes (%d..%d)", ErrInvalidCommand, len(cmd.Nonce), MinNonce, MaxNonce)
	case cmd.OperatorId == "" || len(cmd.OperatorId) > MaxID:
		return fmt.Errorf("%w: operator id %q", ErrInvalidCommand, cmd.OperatorId)
	case cmd.ExpiresUnixNano <= 0:
		return fmt.Errorf("%w: expiry %d", ErrInvalidCommand, cmd.ExpiresUnixNano)
	case cmd.Action == nil:
		return fmt.Errorf("%w: no action", ErrInvalidCommand)
	}
	return nil
}

// hasUnknown reports whether m or any message below it carries unknown
// fields. It depends only on the message, not on encoding order.
func hasUnknown(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if hasUnknown(l.Get(i).Message()) {
					found = true
					return false
				}
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					if hasUnknown(mv.Message()) {
						found = true
					}
					return !found
				})
			}
		case fd.Message() != nil:
			if hasUnknown(v.Message()) {
				found = true
			}
		}
		return !found
	})
	return found
}
