package hsm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"math/rand"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

func TestNormalizeLowS(t *testing.T) {
	// Property: the result is (r, s) or (r, n-s), and its S is at most n/2;
	// compared with a direct big-integer reference.
	rng := rand.New(rand.NewSource(1))
	for _, n := range []*big.Int{secp256k1.Params().N, elliptic.P256().Params().N} {
		half := new(big.Int).Rsh(n, 1)
		edge := []*big.Int{big.NewInt(1), half, new(big.Int).Add(half, big.NewInt(1)), new(big.Int).Sub(n, big.NewInt(1))}
		for i := range 2000 {
			var s *big.Int
			if i < len(edge) {
				s = edge[i]
			} else {
				s = new(big.Int).Rand(rng, n)
			}
			rs := make([]byte, 64)
			for j := range 32 {
				rs[j] = byte(rng.Uint32())
			}
			s.FillBytes(rs[32:])
			orig := bytes.Clone(rs)
			got := normalizeLowS(rs, n)
			if !bytes.Equal(rs, orig) {
				t.Fatalf("input modified")
			}
			want := new(big.Int).Set(s)
			if s.Cmp(half) > 0 {
				want.Sub(n, s)
			}
			if !bytes.Equal(got[:32], rs[:32]) || new(big.Int).SetBytes(got[32:]).Cmp(want) != 0 {
				t.Fatalf("s=%x: got %x, want s'=%x", s, got[32:], want)
			}
		}
	}
}

func TestECDSASignatureToDER(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	r, s, err := ecdsa.Sign(nil, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]byte, 64)
	r.FillBytes(rs[:32])
	s.FillBytes(rs[32:])
	der, err := ECDSASignatureToDER(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(&k.PublicKey, d[:], der) {
		t.Fatalf("DER signature does not verify")
	}
	for _, bad := range [][]byte{nil, make([]byte, 63), make([]byte, 64), append(make([]byte, 32), rs[32:]...)} {
		if _, err := ECDSASignatureToDER(bad); err == nil {
			t.Fatalf("accepted %x", bad)
		}
	}
}

func TestParseECPoint(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(nil)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), nil)
	p256Pt, _ := p256.PublicKey.Bytes()
	k1, _ := secp256k1.GeneratePrivateKey()
	k1Pt := k1.PubKey().SerializeUncompressed()
	der := func(b []byte) []byte { out, _ := asn1.Marshal(b); return out }
	offCurve := bytes.Clone(p256Pt)
	offCurve[64] ^= 1
	tests := []struct {
		name string
		alg  Algorithm
		raw  []byte
		want []byte // nil: error
	}{
		{"ed25519 der", Ed25519, der(edPub), edPub},
		{"ed25519 bare", Ed25519, edPub, edPub},
		{"p256 der", P256, der(p256Pt), p256Pt},
		{"p256 bare", P256, p256Pt, p256Pt},
		{"secp256k1 der", Secp256k1, der(k1Pt), k1Pt},
		{"secp256k1 bare", Secp256k1, k1Pt, k1Pt},
		{"p256 off curve", P256, der(offCurve), nil},
		{"secp256k1 compressed", Secp256k1, der(k1.PubKey().SerializeCompressed()), nil},
		{"ed25519 short", Ed25519, der(edPub[:31]), nil},
		{"trailing bytes", Ed25519, append(der(edPub), 0), nil},
		{"wrong algorithm", P256, der(k1Pt), nil},
		{"unknown algorithm", AlgorithmUnknown, edPub, nil},
		{"empty", Ed25519, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseECPoint(tc.alg, tc.raw)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("accepted %x", tc.raw)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("parseECPoint = %x, %v", got, err)
			}
		})
	}
}

func FuzzParseECPoint(f *testing.F) {
	edPub := make([]byte, 32)
	der, _ := asn1.Marshal(edPub)
	f.Add(uint8(Ed25519), der)
	f.Add(uint8(P256), append([]byte{0x04, 0x41}, make([]byte, 65)...))
	k1, _ := hex.DecodeString("0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8")
	f.Add(uint8(Secp256k1), k1)
	f.Fuzz(func(t *testing.T, alg uint8, raw []byte) {
		pt, err := parseECPoint(Algorithm(alg), raw)
		if err != nil {
			return
		}
		switch Algorithm(alg) {
		case Ed25519:
			if len(pt) != 32 {
				t.Fatalf("ed25519 point of %d bytes", len(pt))
			}
		case P256:
			if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt); err != nil {
				t.Fatalf("accepted invalid p256 point: %v", err)
			}
		case Secp256k1:
			if _, err := secp256k1.ParsePubKey(pt); err != nil || len(pt) != 65 {
				t.Fatalf("accepted invalid secp256k1 point")
			}
		default:
			t.Fatalf("accepted algorithm %d", alg)
		}
	})
}

// cometKeyJSON builds a priv_validator_key.json for seed.
func cometKeyJSON(seed []byte) []byte {
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	b, _ := json.Marshal(map[string]any{
		"address":  hex.EncodeToString(sum[:20]),
		"pub_key":  map[string]string{"type": cometPubKeyType, "value": base64.StdEncoding.EncodeToString(pub)},
		"priv_key": map[string]string{"type": cometPrivKeyType, "value": base64.StdEncoding.EncodeToString(priv)},
	})
	return b
}

func TestParseCometBFTKey(t *testing.T) {
	seed := bytes.Repeat([]byte{9}, 32)
	good := cometKeyJSON(seed)
	other := cometKeyJSON(bytes.Repeat([]byte{8}, 32))
	edit := func(mut func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		mut(m)
		b, _ := json.Marshal(m)
		return b
	}
	var o map[string]any
	_ = json.Unmarshal(other, &o)
	priv := ed25519.NewKeyFromSeed(seed)
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"valid", good, true},
		{"uppercase address", edit(func(m map[string]any) { m["address"] = strings.ToUpper(m["address"].(string)) }), true},
		{"no address", edit(func(m map[string]any) { delete(m, "address") }), true},
		{"wrong address", edit(func(m map[string]any) { m["address"] = o["address"] }), false},
		{"pub of another key", edit(func(m map[string]any) { m["pub_key"] = o["pub_key"] }), false},
		{"wrong priv type", edit(func(m map[string]any) { m["priv_key"].(map[string]any)["type"] = "tendermint/PrivKeySecp256k1" }), false},
		{"wrong pub type", edit(func(m map[string]any) { m["pub_key"].(map[string]any)["type"] = "x" }), false},
		{"seed only", edit(func(m map[string]any) {
			m["priv_key"].(map[string]any)["value"] = base64.StdEncoding.EncodeToString(seed)
		}), false},
		{"priv halves disagree", edit(func(m map[string]any) {
			bad := bytes.Clone(priv)
			bad[40] ^= 1
			m["priv_key"].(map[string]any)["value"] = base64.StdEncoding.EncodeToString(bad)
		}), false},
		{"priv not base64", edit(func(m map[string]any) { m["priv_key"].(map[string]any)["value"] = "!!" }), false},
		{"pub not base64", edit(func(m map[string]any) { m["pub_key"].(map[string]any)["value"] = "!!" }), false},
		{"pub short", edit(func(m map[string]any) { m["pub_key"].(map[string]any)["value"] = "AAAA" }), false},
		{"not json", []byte("priv_validator_key"), false},
		{"trailing data", append(bytes.Clone(good), []byte(`{}`)...), false},
		{"empty", nil, false},
		{"too large", append(bytes.Clone(good), bytes.Repeat([]byte(" "), maxCometKeyFile)...), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, pub, err := ParseCometBFTKey(tc.in)
			if !tc.ok {
				wantErr(t, err, ErrCometBFTKey)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s, seed) || !bytes.Equal(pub, priv.Public().(ed25519.PublicKey)) {
				t.Fatalf("wrong key")
			}
		})
	}
}

func TestImportCometBFTKey(t *testing.T) {
	h := newTestHSM(t, Config{})
	seed := sha256.Sum256([]byte("comet"))
	pub, err := h.ImportCometBFTKey(t.Context(), "validator", cometKeyJSON(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed[:])
	msg := []byte("vote")
	sig, err := h.Sign(t.Context(), "validator", msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub.Bytes, priv.Public().(ed25519.PublicKey)) || !bytes.Equal(sig, ed25519.Sign(priv, msg)) {
		t.Fatalf("imported CometBFT key signs differently from the file's key")
	}
}

func FuzzParseCometBFTKey(f *testing.F) {
	f.Add(cometKeyJSON(make([]byte, 32)))
	f.Add([]byte(`{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":""}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		seed, pub, err := ParseCometBFTKey(data)
		if err != nil {
			if seed != nil || pub != nil {
				t.Fatalf("partial result with error")
			}
			return
		}
		if len(seed) != 32 || !bytes.Equal(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), pub) {
			t.Fatalf("accepted an inconsistent key")
		}
	})
}
