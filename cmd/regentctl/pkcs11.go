package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"
	"io"

	"github.com/regent-signer/regent/signer/hsm"
)

// errHSMSigner marks a request the PKCS#11 signer cannot serve.
var errHSMSigner = errors.New("pkcs11 signer")

// hsmSigner is an operator key inside a PKCS#11 token as a crypto.Signer,
// in the shape opsig and token expect: Ed25519 signs the message itself
// (opts.HashFunc() == 0); P-256 signs a SHA-256 digest and returns ASN.1
// DER. The token verifies every signature before returning it.
type hsmSigner struct {
	ctx   context.Context
	h     *hsm.HSM
	label string
	alg   hsm.Algorithm
	pub   crypto.PublicKey
}

// newHSMSigner finds the key labelled label in h.
func newHSMSigner(ctx context.Context, h *hsm.HSM, label string) (*hsmSigner, error) {
	pk, err := h.PublicKey(ctx, label)
	if err != nil {
		return nil, fmt.Errorf("PKCS#11 key %q: %w", label, err)
	}
	s := &hsmSigner{ctx: ctx, h: h, label: label, alg: pk.Algorithm}
	switch pk.Algorithm {
	case hsm.Ed25519:
		if len(pk.Bytes) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: key %q: Ed25519 public key of %d bytes", errHSMSigner, label, len(pk.Bytes))
		}
		s.pub = ed25519.PublicKey(pk.Bytes)
	case hsm.P256:
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", errHSMSigner, label, err)
		}
		s.pub = pub
	default:
		return nil, fmt.Errorf("%w: key %q is %s; operator keys are Ed25519 or P-256", errHSMSigner, label, pk.Algorithm)
	}
	return s, nil
}

// Public implements crypto.Signer.
func (s *hsmSigner) Public() crypto.PublicKey { return s.pub }

// Sign implements crypto.Signer.
func (s *hsmSigner) Sign(_ io.Reader, data []byte, opts crypto.SignerOpts) ([]byte, error) {
	switch s.alg {
	case hsm.Ed25519:
		if opts.HashFunc() != crypto.Hash(0) {
			return nil, fmt.Errorf("%w: Ed25519 signs the message itself, got a %v digest", errHSMSigner, opts.HashFunc())
		}
		return s.h.Sign(s.ctx, s.label, data)
	case hsm.P256:
		if opts.HashFunc() != crypto.SHA256 || len(data) != 32 {
			return nil, fmt.Errorf("%w: P-256 signs SHA-256 digests, got %v over %d bytes", errHSMSigner, opts.HashFunc(), len(data))
		}
		rs, err := s.h.SignDigest(s.ctx, s.label, data)
		if err != nil {
			return nil, err
		}
		return hsm.ECDSASignatureToDER(rs)
	default:
		return nil, fmt.Errorf("%w: algorithm %s", errHSMSigner, s.alg)
	}
}
