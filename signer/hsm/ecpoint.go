package hsm

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// errECPoint is wrapped (with ErrHSM) when a token returns a public point
// that cannot be decoded.
var errECPoint = errors.New("malformed CKA_EC_POINT")

// parseECPoint decodes a CKA_EC_POINT value returned by a token. PKCS#11
// specifies a DER OCTET STRING around the point (SoftHSM2 does this); some
// modules return the bare point. The lengths never collide (32 vs 34 bytes
// for Ed25519, 65 vs 67 for uncompressed ECDSA points), so both are
// accepted. ECDSA points must be uncompressed and on the curve.
func parseECPoint(alg Algorithm, raw []byte) ([]byte, error) {
	var want int
	switch alg {
	case Ed25519:
		want = ed25519.PublicKeySize
	case Secp256k1, P256:
		want = 65
	default:
		return nil, fmt.Errorf("%w: %v", ErrAlgorithm, alg)
	}
	pt := raw
	if len(raw) != want {
		var inner []byte
		rest, err := asn1.Unmarshal(raw, &inner)
		if err != nil {
			return nil, fmt.Errorf("%w: %d bytes, neither a bare point nor an OCTET STRING: %v", errECPoint, len(raw), err)
		}
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: %d trailing bytes after the OCTET STRING", errECPoint, len(rest))
		}
		pt = inner
	}
	if len(pt) != want {
		return nil, fmt.Errorf("%w: %s point of %d bytes, want %d", errECPoint, alg, len(pt), want)
	}
	switch alg {
	case P256:
		if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt); err != nil {
			return nil, fmt.Errorf("%w: %v", errECPoint, err)
		}
	case Secp256k1:
		if pt[0] != 0x04 {
			return nil, fmt.Errorf("%w: secp256k1 point is not uncompressed", errECPoint)
		}
		if _, err := secp256k1.ParsePubKey(pt); err != nil {
			return nil, fmt.Errorf("%w: %v", errECPoint, err)
		}
	}
	return slices.Clone(pt), nil
}
