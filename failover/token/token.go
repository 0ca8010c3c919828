package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/raft/pki"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrMalformed: not a token of this format (or not canonical).
	ErrMalformed = errors.New("token: malformed token")
	// ErrInvalidArgument: Issue was given an unusable argument.
	ErrInvalidArgument = errors.New("token: invalid argument")
	// ErrUnsupportedKey: the signer's key is neither Ed25519 nor P-256.
	ErrUnsupportedKey = errors.New("token: unsupported key")
	// ErrNotBootstrapped: the replica has no operator registry yet.
	ErrNotBootstrapped = errors.New("token: operator registry not bootstrapped")
	// ErrWrongCluster: the token names another cluster.
	ErrWrongCluster = errors.New("token: token for another cluster")
	// ErrExpired: expires_at (plus skew) has passed.
	ErrExpired = errors.New("token: expired")
	// ErrNotYetValid: issued_at lies in the future (beyond skew).
	ErrNotYetValid = errors.New("token: issued in the future")
	// ErrUnknownOperator: the issuing operator is not registered.
	ErrUnknownOperator = errors.New("token: unknown operator")
	// ErrNotPermitted: the issuing operator's role may not issue tokens.
	ErrNotPermitted = errors.New("token: operator role may not issue tokens")
	// ErrBadSignature: the signature does not verify.
	ErrBadSignature = errors.New("token: bad signature")
)

// Limits of the format.
const (
	// Prefix is the format tag and version.
	Prefix = "regent1"
	// MaxTTL bounds expires_at − issued_at.
	MaxTTL = 7 * 24 * time.Hour
	// MaxLen bounds an encoded token.
	MaxLen = 2048
	// NonceSize is the nonce length in bytes.
	NonceSize = 16
	// maxID bounds cluster and operator ids (as in the failover registry).
	maxID = 64
	// maxSig bounds a signature (Ed25519 64, P-256 DER at most 72).
	maxSig = 80
)

// domain separates token signatures from every other use of an operator key.
const domain = "regent/client-token/v1\x00"

var b64 = base64.RawURLEncoding.Strict()

// Payload is what a token states. Its JSON encoding, in this field order,
// is the canonical payload.
type Payload struct {
	ClusterID  string `json:"cluster_id"`
	Identity   string `json:"identity"`
	OperatorID string `json:"operator_id"`
	IssuedAt   int64  `json:"issued_at"`
	ExpiresAt  int64  `json:"expires_at"`
	Nonce      string `json:"nonce"`
}

// Token is a parsed token.
type Token struct {
	Payload Payload
	// Raw is the payload bytes the signature covers.
	Raw       []byte
	Signature []byte
}

// Message returns the bytes an operator signs for a payload.
func Message(payload []byte) []byte {
	m := make([]byte, 0, len(domain)+len(payload))
	return append(append(m, domain...), payload...)
}

// check validates the payload's fields (not time, not signature).
func (p Payload) check() error {
	switch {
	case !validID(p.ClusterID):
		return fmt.Errorf("cluster_id %q", p.ClusterID)
	case !pki.ValidName(p.Identity):
		return fmt.Errorf("identity %q is not a valid client name", p.Identity)
	case !validID(p.OperatorID):
		return fmt.Errorf("operator_id %q", p.OperatorID)
	case p.IssuedAt <= 0 || p.ExpiresAt <= p.IssuedAt:
		return fmt.Errorf("issued_at %d, expires_at %d: want 0 < issued_at < expires_at", p.IssuedAt, p.ExpiresAt)
	case p.ExpiresAt-p.IssuedAt > int64(MaxTTL/time.Second):
		return fmt.Errorf("lifetime %ds exceeds %v", p.ExpiresAt-p.IssuedAt, MaxTTL)
	}
	if n, err := b64.DecodeString(p.Nonce); err != nil || len(n) != NonceSize {
		return fmt.Errorf("nonce %q: want %d bytes, base64url", p.Nonce, NonceSize)
	}
	return nil
}

// validID is the failover registry's id alphabet: 1..64 of [A-Za-z0-9._:@-].
func validID(id string) bool {
	if id == "" || len(id) > maxID {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:@-", c) >= 0) {
			return false
		}
	}
	return true
}

// Parse decodes a token and checks its shape: prefix, canonical
// base64url, canonical JSON payload with valid fields, a signature of
// plausible length. It checks neither time nor signature (Verifier does).
// Every error wraps ErrMalformed.
func Parse(tok string) (Token, error) {
	if len(tok) > MaxLen {
		return Token{}, fmt.Errorf("%w: %d bytes (at most %d)", ErrMalformed, len(tok), MaxLen)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != Prefix {
		return Token{}, fmt.Errorf("%w: want %s.<payload>.<signature>", ErrMalformed, Prefix)
	}
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		return Token{}, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return Token{}, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	if len(sig) == 0 || len(sig) > maxSig {
		return Token{}, fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(sig))
	}
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Token{}, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	canon, err := json.Marshal(p)
	if err != nil || !bytes.Equal(canon, raw) {
		return Token{}, fmt.Errorf("%w: payload is not canonical JSON", ErrMalformed)
	}
	if err := p.check(); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return Token{Payload: p, Raw: raw, Signature: sig}, nil
}

// encode renders a token from its payload bytes and signature.
func encode(raw, sig []byte) string {
	return Prefix + "." + b64.EncodeToString(raw) + "." + b64.EncodeToString(sig)
}

// Issue returns a token for identity in cluster clusterID, valid from now
// for ttl (0 < ttl ≤ MaxTTL, whole seconds), signed as operatorID by
// signer (Ed25519 or P-256, e.g. a PKCS#11 key). The signature is verified
// against signer's public key before the token is returned. Issue does not
// check the registry: a token of an operator the cluster does not know is
// refused by Verifier.
func Issue(signer crypto.Signer, operatorID, clusterID, identity string, ttl time.Duration, now time.Time) (string, error) {
	return issue(rand.Reader, signer, operatorID, clusterID, identity, ttl, now)
}

func issue(rnd io.Reader, signer crypto.Signer, operatorID, clusterID, identity string, ttl time.Duration, now time.Time) (string, error) {
	if signer == nil {
		return "", fmt.Errorf("%w: no signer", ErrInvalidArgument)
	}
	if ttl < time.Second || ttl > MaxTTL {
		return "", fmt.Errorf("%w: ttl %v (1s..%v)", ErrInvalidArgument, ttl, MaxTTL)
	}
	nonce := make([]byte, NonceSize)
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return "", fmt.Errorf("token: nonce: %w", err)
	}
	p := Payload{ClusterID: clusterID, Identity: identity, OperatorID: operatorID, IssuedAt: now.Unix(),
		ExpiresAt: now.Add(ttl).Unix(), Nonce: b64.EncodeToString(nonce)}
	if err := p.check(); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	pub := signer.Public()
	msg := Message(raw)
	var sig []byte
	switch pub.(type) {
	case ed25519.PublicKey:
		sig, err = signer.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		if _, err := opsig.MarshalPublicKey(pub); err != nil {
			return "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
		}
		d := sha256.Sum256(msg)
		sig, err = signer.Sign(rand.Reader, d[:], crypto.SHA256)
	default:
		return "", fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	if err := verify(pub, raw, sig); err != nil {
		return "", fmt.Errorf("token: the signer produced a signature that does not verify: %w", err)
	}
	return encode(raw, sig), nil
}

// verify checks sig over Message(raw) against pub.
func verify(pub crypto.PublicKey, raw, sig []byte) error {
	msg := Message(raw)
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, msg, sig) {
			return fmt.Errorf("%w: ed25519", ErrBadSignature)
		}
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k, d[:], sig) {
			return fmt.Errorf("%w: ecdsa p-256", ErrBadSignature)
		}
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	return nil
}
