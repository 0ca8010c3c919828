package hsm

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/miekg/pkcs11"
)

// MaxMessageSize bounds the message passed to Sign.
const MaxMessageSize = 1 << 20

// Sign signs msg with the key labelled label.
//
//   - Ed25519: pure Ed25519 (CKM_EDDSA) over msg; 64-byte signature. The
//     same key and message always give the same signature.
//   - secp256k1 and P-256: ECDSA (CKM_ECDSA) over SHA-256(msg); 64-byte
//     r||s, low-S as described in the package documentation. Callers that
//     hash differently (e.g. Keccak-256) use SignDigest.
//
// The signature is verified against the token's public key before it is
// returned; a signature that does not verify is an ErrHSM error.
func (h *HSM) Sign(ctx context.Context, label string, msg []byte) ([]byte, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	if len(msg) > MaxMessageSize {
		return nil, invalid("message of %d bytes exceeds %d", len(msg), MaxMessageSize)
	}
	var sig []byte
	err := h.do(ctx, "sign", func(sh pkcs11.SessionHandle) error {
		k, err := h.signingKey(sh, label)
		if err != nil {
			return err
		}
		sig, err = h.signWith(sh, k, msg, false)
		return err
	})
	return sig, err
}

// SignDigest signs a 32-byte digest with the ECDSA key labelled label and
// returns 64-byte r||s (low-S as described in the package documentation).
// It fails with ErrAlgorithm for Ed25519 keys, which sign messages, not
// digests. The signature is verified before it is returned.
func (h *HSM) SignDigest(ctx context.Context, label string, digest []byte) ([]byte, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	if len(digest) != 32 {
		return nil, invalid("digest must be 32 bytes, got %d", len(digest))
	}
	var sig []byte
	err := h.do(ctx, "sign_digest", func(sh pkcs11.SessionHandle) error {
		k, err := h.signingKey(sh, label)
		if err != nil {
			return err
		}
		sig, err = h.signWith(sh, k, digest, true)
		return err
	})
	return sig, err
}

// signWith signs data (a message, or a digest if isDigest) with k and checks
// the signature.
func (h *HSM) signWith(sh pkcs11.SessionHandle, k *signingKey, data []byte, isDigest bool) ([]byte, error) {
	alg := k.pub.Algorithm
	var mech uint
	switch alg {
	case Ed25519:
		if isDigest {
			return nil, fmt.Errorf("%w: SignDigest needs an ECDSA key, this one is ed25519", ErrAlgorithm)
		}
		mech = ckmEdDSA
	case Secp256k1, P256:
		mech = pkcs11.CKM_ECDSA
		if !isDigest {
			d := sha256.Sum256(data)
			data = d[:]
		}
	default:
		return nil, fmt.Errorf("%w: %v", ErrAlgorithm, alg)
	}
	if err := h.p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, k.priv); err != nil {
		return nil, p11err("C_SignInit "+alg.String(), err)
	}
	sig, err := h.p.Sign(sh, data)
	if err != nil {
		return nil, p11err("C_Sign "+alg.String(), err)
	}
	if len(sig) != 64 {
		return nil, fmt.Errorf("%w: %s signature of %d bytes, want 64", ErrHSM, alg, len(sig))
	}
	var ok bool
	switch alg {
	case Ed25519:
		ok = k.pub.Verify(data, sig)
	case Secp256k1:
		sig = normalizeLowS(sig, secp256k1.Params().N)
		ok = k.pub.VerifyDigest(data, sig)
	case P256:
		if h.lowSP256 {
			sig = normalizeLowS(sig, elliptic.P256().Params().N)
		}
		ok = k.pub.VerifyDigest(data, sig)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s signature from the token does not verify against its public key", ErrHSM, alg)
	}
	return sig, nil
}

// normalizeLowS returns r||s with s replaced by n-s when s > n/2. Both
// (r, s) and (r, n-s) are valid ECDSA signatures; chains that refuse
// malleable signatures accept only the low one.
func normalizeLowS(rs []byte, n *big.Int) []byte {
	s := new(big.Int).SetBytes(rs[32:])
	half := new(big.Int).Rsh(n, 1)
	if s.Cmp(half) <= 0 {
		return rs
	}
	s.Sub(n, s)
	out := make([]byte, 64)
	copy(out, rs[:32])
	s.FillBytes(out[32:])
	return out
}

// Verify reports whether sig is a valid signature of msg under p, with the
// conventions of HSM.Sign (Ed25519 over msg; ECDSA r||s over SHA-256(msg),
// any S).
func (p PublicKey) Verify(msg, sig []byte) bool {
	if p.Algorithm == Ed25519 {
		return len(p.Bytes) == ed25519.PublicKeySize && ed25519.Verify(p.Bytes, msg, sig)
	}
	d := sha256.Sum256(msg)
	return p.VerifyDigest(d[:], sig)
}

// VerifyDigest reports whether sig (64-byte r||s) is a valid ECDSA signature
// of the 32-byte digest under p. It is false for Ed25519 keys.
func (p PublicKey) VerifyDigest(digest, sig []byte) bool {
	if len(sig) != 64 || len(digest) != 32 {
		return false
	}
	switch p.Algorithm {
	case P256:
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), p.Bytes)
		if err != nil {
			return false
		}
		return ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case Secp256k1:
		pub, err := secp256k1.ParsePubKey(p.Bytes)
		if err != nil {
			return false
		}
		var r, s secp256k1.ModNScalar
		if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) || r.IsZero() || s.IsZero() {
			return false
		}
		return secpecdsa.NewSignature(&r, &s).Verify(digest, pub)
	}
	return false
}

// ECDSASignatureToDER converts a 64-byte r||s signature to the ASN.1 DER
// SEQUENCE { r INTEGER, s INTEGER } used by X.509 and Bitcoin-style APIs.
func ECDSASignatureToDER(rs []byte) ([]byte, error) {
	if len(rs) != 64 {
		return nil, invalid("r||s signature must be 64 bytes, got %d", len(rs))
	}
	r, s := new(big.Int).SetBytes(rs[:32]), new(big.Int).SetBytes(rs[32:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, invalid("r and s must be non-zero")
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}
