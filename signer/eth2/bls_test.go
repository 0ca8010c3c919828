package eth2_test

import (
	"crypto/sha256"
	"testing"

	blst "github.com/supranational/blst/bindings/go"

	"github.com/regent-signer/regent/signer/eth2"
)

// TestSignatureDST pins the ciphersuite: changing it breaks every validator.
func TestSignatureDST(t *testing.T) {
	if eth2.SignatureDST != "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_" {
		t.Fatalf("SignatureDST = %q", eth2.SignatureDST)
	}
}

// TestBLSSignAndVerify signs every vector's signing root with blst (min-pk,
// Ethereum's POP ciphersuite) and verifies it from the compressed wire
// forms, as a beacon node would. It also shows that the wrong root, the
// wrong domain or the wrong ciphersuite does not verify, and that signing is
// deterministic (DESIGN.md: a retried request returns the same signature).
func TestBLSSignAndVerify(t *testing.T) {
	ikm := sha256.Sum256([]byte("regent signer/eth2 bls test key"))
	sk := blst.KeyGen(ikm[:])
	if sk == nil {
		t.Fatal("KeyGen failed")
	}
	pkBytes := new(blst.P1Affine).From(sk).Compress()
	if len(pkBytes) != 48 {
		t.Fatalf("public key is %d bytes, want 48 (min-pk)", len(pkBytes))
	}
	pk := new(blst.P1Affine).Uncompress(pkBytes)
	if pk == nil {
		t.Fatal("public key does not decompress")
	}
	dst := []byte(eth2.SignatureDST)
	otherDST := []byte("BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_")

	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			req, err := eth2.DecodeForNetwork(readRequest(t, v.File), network(t, *v.Network))
			if err != nil {
				t.Fatal(err)
			}
			root, domain, err := req.SigningRoot()
			if err != nil {
				t.Fatal(err)
			}
			sigBytes := new(blst.P2Affine).Sign(sk, root[:], dst).Compress()
			if len(sigBytes) != 96 {
				t.Fatalf("signature is %d bytes, want 96", len(sigBytes))
			}
			again := new(blst.P2Affine).Sign(sk, root[:], dst).Compress()
			if string(again) != string(sigBytes) {
				t.Fatal("signing is not deterministic")
			}
			sig := new(blst.P2Affine).Uncompress(sigBytes)
			if sig == nil {
				t.Fatal("signature does not decompress")
			}
			if !sig.Verify(true, pk, true, root[:], dst) {
				t.Fatal("signature over the signing root does not verify")
			}
			// The independently computed root verifies too.
			want := hex32(t, v.SigningRoot)
			if !sig.Verify(true, pk, true, want[:], dst) {
				t.Fatal("signature does not verify against the vector's signing root")
			}
			flipped := root
			flipped[31] ^= 1
			if sig.Verify(true, pk, true, flipped[:], dst) {
				t.Fatal("signature verifies over a different root")
			}
			if sig.Verify(true, pk, true, root[:], otherDST) {
				t.Fatal("signature verifies under another ciphersuite")
			}
			// Same object, another domain (flip one domain byte): another root.
			obj, err := req.ObjectRoot()
			if err != nil {
				t.Fatal(err)
			}
			domain[5] ^= 0xff
			other := eth2.ComputeSigningRoot(obj, domain)
			if sig.Verify(true, pk, true, other[:], dst) {
				t.Fatal("signature verifies under another domain")
			}
		})
	}
}
