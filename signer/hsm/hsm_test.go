package hsm

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/miekg/pkcs11"
	"github.com/regent-signer/regent/signer/hsm/hsmtest"
)

// verifyIndependently checks sig with Go's (or decred's) verifier, without
// this package's PublicKey.Verify. msgOrDigest is the message for Ed25519 and
// the 32-byte digest for ECDSA.
func verifyIndependently(t *testing.T, pub PublicKey, msgOrDigest, sig []byte) {
	t.Helper()
	switch pub.Algorithm {
	case Ed25519:
		if len(pub.Bytes) != 32 || !ed25519.Verify(ed25519.PublicKey(pub.Bytes), msgOrDigest, sig) {
			t.Fatalf("ed25519 signature does not verify")
		}
	case P256:
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.Verify(k, msgOrDigest, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatalf("p256 signature does not verify")
		}
	case Secp256k1:
		k, err := secp256k1.ParsePubKey(pub.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		der, err := ECDSASignatureToDER(sig)
		if err != nil {
			t.Fatal(err)
		}
		s, err := secpecdsa.ParseDERSignature(der)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Verify(msgOrDigest, k) {
			t.Fatalf("secp256k1 signature does not verify")
		}
	default:
		t.Fatalf("algorithm %v", pub.Algorithm)
	}
}

func isLowS(sig []byte, n *big.Int) bool {
	s := new(big.Int).SetBytes(sig[32:])
	return s.Cmp(new(big.Int).Rsh(n, 1)) <= 0
}

func TestGenerateSignVerify(t *testing.T) {
	h := newTestHSM(t, Config{LowSP256: true})
	ctx := t.Context()
	for _, alg := range []Algorithm{Ed25519, Secp256k1, P256} {
		t.Run(alg.String(), func(t *testing.T) {
			label := "gen-" + alg.String()
			pub, err := h.GenerateKey(ctx, label, alg)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			if pub.Algorithm != alg {
				t.Fatalf("algorithm %v", pub.Algorithm)
			}
			again, err := h.PublicKey(ctx, label)
			if err != nil || !bytes.Equal(again.Bytes, pub.Bytes) {
				t.Fatalf("PublicKey = %x, %v; want %x", again.Bytes, err, pub.Bytes)
			}
			// A fresh handle (no cache) finds the same key.
			h.dropCache()
			again, err = h.PublicKey(ctx, label)
			if err != nil || !bytes.Equal(again.Bytes, pub.Bytes) {
				t.Fatalf("PublicKey after cache drop = %x, %v", again.Bytes, err)
			}
			for i := range 8 {
				msg := []byte(fmt.Sprintf("duty %d for %s", i, label))
				sig, err := h.Sign(ctx, label, msg)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if len(sig) != 64 {
					t.Fatalf("signature of %d bytes", len(sig))
				}
				switch alg {
				case Ed25519:
					verifyIndependently(t, pub, msg, sig)
				case Secp256k1, P256:
					d := sha256.Sum256(msg)
					verifyIndependently(t, pub, d[:], sig)
					n := secp256k1.Params().N
					if alg == P256 {
						n = elliptic.P256().Params().N
					}
					if !isLowS(sig, n) {
						t.Fatalf("high-S signature %x", sig)
					}
					// SignDigest over a caller's digest (e.g. Keccak-256).
					digest := sha256.Sum256(append([]byte("other hash "), msg...))
					sig2, err := h.SignDigest(ctx, label, digest[:])
					if err != nil {
						t.Fatalf("SignDigest: %v", err)
					}
					verifyIndependently(t, pub, digest[:], sig2)
					if !pub.VerifyDigest(digest[:], sig2) || pub.VerifyDigest(d[:], sig2) {
						t.Fatalf("PublicKey.VerifyDigest disagrees")
					}
				}
				if !pub.Verify(msg, sig) || pub.Verify(append(msg, 0), sig) {
					t.Fatalf("PublicKey.Verify disagrees")
				}
			}
			comp, err := pub.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			switch alg {
			case Ed25519:
				if !bytes.Equal(comp, pub.Bytes) {
					t.Fatalf("ed25519 compressed form differs")
				}
			case Secp256k1:
				k, err := secp256k1.ParsePubKey(comp)
				if err != nil || !bytes.Equal(k.SerializeUncompressed(), pub.Bytes) {
					t.Fatalf("compressed secp256k1 point does not decompress to the key: %v", err)
				}
			case P256:
				x, y := elliptic.UnmarshalCompressed(elliptic.P256(), comp)
				if x == nil || !bytes.Equal(x.FillBytes(make([]byte, 32)), pub.Bytes[1:33]) || !bytes.Equal(y.FillBytes(make([]byte, 32)), pub.Bytes[33:]) {
					t.Fatalf("compressed p256 point does not decompress to the key")
				}
			}
		})
	}
	t.Run("sign digest with ed25519 key", func(t *testing.T) {
		d := sha256.Sum256([]byte("x"))
		_, err := h.SignDigest(ctx, "gen-ed25519", d[:])
		wantErr(t, err, ErrAlgorithm)
	})
	t.Run("keys listed", func(t *testing.T) {
		keys, err := h.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []KeyInfo{{"gen-ed25519", Ed25519}, {"gen-p256", P256}, {"gen-secp256k1", Secp256k1}}
		if fmt.Sprint(keys) != fmt.Sprint(want) {
			t.Fatalf("Keys = %v, want %v", keys, want)
		}
	})
}

func TestKeysStayInsideTheToken(t *testing.T) {
	h := newTestHSM(t, Config{})
	ctx := t.Context()
	for _, alg := range []Algorithm{Ed25519, Secp256k1, P256} {
		if _, err := h.GenerateKey(ctx, "gen-"+alg.String(), alg); err != nil {
			t.Fatal(err)
		}
	}
	seed := bytes.Repeat([]byte{7}, 32)
	if _, err := h.ImportKey(ctx, "imported", Ed25519, seed); err != nil {
		t.Fatal(err)
	}
	if err := h.EnsureSealingKey(ctx, "seal"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		label     string
		class     uint
		generated bool
	}{
		{"gen-ed25519", pkcs11.CKO_PRIVATE_KEY, true},
		{"gen-secp256k1", pkcs11.CKO_PRIVATE_KEY, true},
		{"gen-p256", pkcs11.CKO_PRIVATE_KEY, true},
		{"imported", pkcs11.CKO_PRIVATE_KEY, false},
		{"seal", pkcs11.CKO_SECRET_KEY, true},
	}
	for _, tc := range tests {
		t.Run(tc.label, func(t *testing.T) {
			want := map[uint]bool{
				pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_TOKEN: true,
				pkcs11.CKA_PRIVATE: true, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false,
				pkcs11.CKA_NEVER_EXTRACTABLE: tc.generated, pkcs11.CKA_ALWAYS_SENSITIVE: tc.generated,
			}
			if tc.class == pkcs11.CKO_SECRET_KEY {
				want[pkcs11.CKA_WRAP] = false
			}
			var types []uint
			for typ := range want {
				types = append(types, typ)
			}
			a := objectAttrs(t, h, tc.class, tc.label, types...)
			for typ, w := range want {
				if v, ok := attrBool(a[typ]); !ok || v != w {
					t.Errorf("attribute 0x%x = %v, want %v", typ, a[typ], w)
				}
			}
			if tc.class == pkcs11.CKO_PRIVATE_KEY {
				d := objectAttrs(t, h, tc.class, tc.label, pkcs11.CKA_DECRYPT, pkcs11.CKA_SIGN)
				if v, _ := attrBool(d[pkcs11.CKA_DECRYPT]); v {
					t.Errorf("private key can decrypt")
				}
				if v, _ := attrBool(d[pkcs11.CKA_SIGN]); !v {
					t.Errorf("private key cannot sign")
				}
			}
			v, err := readValue(t, h, tc.class, tc.label)
			if err == nil {
				t.Fatalf("read CKA_VALUE of %q: got %d bytes, want a refusal", tc.label, len(v))
			}
			if rv, _ := rvOf(err); rv != pkcs11.CKR_ATTRIBUTE_SENSITIVE {
				t.Fatalf("read CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
			}
		})
	}
}

func TestImportEd25519IsDeterministic(t *testing.T) {
	h := newTestHSM(t, Config{})
	ctx := t.Context()
	seed := sha256.Sum256([]byte("validator seed"))
	want := ed25519.NewKeyFromSeed(seed[:])
	pub, err := h.ImportKey(ctx, "cometbft", Ed25519, seed[:])
	if err != nil {
		t.Fatalf("ImportKey: %v", err)
	}
	if !bytes.Equal(pub.Bytes, want.Public().(ed25519.PublicKey)) {
		t.Fatalf("public key %x, want %x", pub.Bytes, want.Public())
	}
	msg := []byte("height=10 round=0 step=prevote")
	sig1, err := h.Sign(ctx, "cometbft", msg)
	if err != nil {
		t.Fatal(err)
	}
	sig2, err := h.Sign(ctx, "cometbft", msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sig1, sig2) {
		t.Fatalf("same message, different signatures:\n%x\n%x", sig1, sig2)
	}
	// RFC 8032 signatures are a function of key and message: the token must
	// produce exactly what Go's implementation produces.
	if ref := ed25519.Sign(want, msg); !bytes.Equal(sig1, ref) {
		t.Fatalf("token signature %x differs from RFC 8032 reference %x", sig1, ref)
	}
}

func TestImportECDSA(t *testing.T) {
	h := newTestHSM(t, Config{})
	ctx := t.Context()
	t.Run("p256", func(t *testing.T) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), nil)
		if err != nil {
			t.Fatal(err)
		}
		secret, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := h.ImportKey(ctx, "p256", P256, secret)
		if err != nil {
			t.Fatalf("ImportKey: %v", err)
		}
		wantPub, _ := k.PublicKey.Bytes()
		if !bytes.Equal(pub.Bytes, wantPub) {
			t.Fatalf("public key %x, want %x", pub.Bytes, wantPub)
		}
		d := sha256.Sum256([]byte("tx"))
		sig, err := h.SignDigest(ctx, "p256", d[:])
		if err != nil {
			t.Fatal(err)
		}
		verifyIndependently(t, pub, d[:], sig)
	})
	t.Run("secp256k1", func(t *testing.T) {
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := h.ImportKey(ctx, "k1", Secp256k1, k.Serialize())
		if err != nil {
			t.Fatalf("ImportKey: %v", err)
		}
		if !bytes.Equal(pub.Bytes, k.PubKey().SerializeUncompressed()) {
			t.Fatalf("public key mismatch")
		}
		d := sha256.Sum256([]byte("tx"))
		sig, err := h.SignDigest(ctx, "k1", d[:])
		if err != nil {
			t.Fatal(err)
		}
		verifyIndependently(t, pub, d[:], sig)
		if !isLowS(sig, secp256k1.Params().N) {
			t.Fatalf("high-S secp256k1 signature")
		}
	})
}

func TestBadKeyInputChangesNothing(t *testing.T) {
	h := newTestHSM(t, Config{})
	ctx := t.Context()
	if _, err := h.GenerateKey(ctx, "taken", Ed25519); err != nil {
		t.Fatal(err)
	}
	n := secp256k1.Params().N.FillBytes(make([]byte, 32))
	p256n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
	tests := []struct {
		name string
		call func() error
		want []error
	}{
		{"generate existing label", func() error { _, err := h.GenerateKey(ctx, "taken", P256); return err }, []error{ErrKeyExists}},
		{"import existing label", func() error {
			_, err := h.ImportKey(ctx, "taken", Ed25519, make([]byte, 32))
			return err
		}, []error{ErrKeyExists}},
		{"generate unknown algorithm", func() error { _, err := h.GenerateKey(ctx, "new", AlgorithmUnknown); return err }, []error{ErrAlgorithm}},
		{"generate empty label", func() error { _, err := h.GenerateKey(ctx, "", Ed25519); return err }, []error{ErrInvalidInput}},
		{"generate control char label", func() error { _, err := h.GenerateKey(ctx, "a\nb", Ed25519); return err }, []error{ErrInvalidInput}},
		{"import short ed25519 seed", func() error { _, err := h.ImportKey(ctx, "new", Ed25519, make([]byte, 31)); return err }, []error{ErrInvalidInput}},
		{"import 64-byte ed25519 key", func() error { _, err := h.ImportKey(ctx, "new", Ed25519, make([]byte, 64)); return err }, []error{ErrInvalidInput}},
		{"import zero secp256k1", func() error { _, err := h.ImportKey(ctx, "new", Secp256k1, make([]byte, 32)); return err }, []error{ErrInvalidInput}},
		{"import secp256k1 = n", func() error { _, err := h.ImportKey(ctx, "new", Secp256k1, n); return err }, []error{ErrInvalidInput}},
		{"import p256 = n", func() error { _, err := h.ImportKey(ctx, "new", P256, p256n); return err }, []error{ErrInvalidInput}},
		{"import p256 short", func() error { _, err := h.ImportKey(ctx, "new", P256, []byte{1}); return err }, []error{ErrInvalidInput}},
		{"import unknown algorithm", func() error { _, err := h.ImportKey(ctx, "new", Algorithm(99), make([]byte, 32)); return err }, []error{ErrAlgorithm}},
		{"cometbft garbage", func() error { _, err := h.ImportCometBFTKey(ctx, "new", []byte("{")); return err }, []error{ErrCometBFTKey}},
		{"sign missing key", func() error { _, err := h.Sign(ctx, "missing", []byte("m")); return err }, []error{ErrKeyNotFound}},
		{"sign oversized message", func() error { _, err := h.Sign(ctx, "taken", make([]byte, MaxMessageSize+1)); return err }, []error{ErrInvalidInput}},
		{"sign digest wrong length", func() error { _, err := h.SignDigest(ctx, "taken", make([]byte, 31)); return err }, []error{ErrInvalidInput}},
		{"public key missing", func() error { _, err := h.PublicKey(ctx, "missing"); return err }, []error{ErrKeyNotFound}},
		{"delete missing", func() error { return h.DeleteKey(ctx, "missing") }, []error{ErrKeyNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := countObjects(t, h, "")
			wantErr(t, tc.call(), tc.want...)
			if after := countObjects(t, h, ""); after != before {
				t.Fatalf("token held %d objects before, %d after", before, after)
			}
		})
	}
}

func TestDeleteKey(t *testing.T) {
	h := newTestHSM(t, Config{})
	ctx := t.Context()
	if _, err := h.GenerateKey(ctx, "gone", Secp256k1); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Sign(ctx, "gone", []byte("m")); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteKey(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if n := countObjects(t, h, "gone"); n != 0 {
		t.Fatalf("%d objects left", n)
	}
	_, err := h.Sign(ctx, "gone", []byte("m"))
	wantErr(t, err, ErrKeyNotFound)
}

func TestRefusesKeysOutsidePolicy(t *testing.T) {
	h := newTestHSM(t, Config{})
	ctx := t.Context()
	// Objects made by other tooling: an extractable signing key and an
	// extractable AES key.
	err := h.do(ctx, "test", func(sh pkcs11.SessionHandle) error {
		_, _, err := h.p.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, P256.ecParams()),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, "loose"),
			},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, "loose"),
			})
		if err != nil {
			return err
		}
		_, err = h.p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "loose-aes"),
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Sign(ctx, "loose", []byte("m"))
	wantErr(t, err, ErrKeyPolicy)
	_, err = h.PublicKey(ctx, "loose")
	wantErr(t, err, ErrKeyPolicy)
	wantErr(t, h.EnsureSealingKey(ctx, "loose-aes"), ErrKeyPolicy)
	_, err = h.Seal(ctx, "loose-aes", []byte("secret"), nil)
	wantErr(t, err, ErrKeyPolicy)
	// A signing key's label cannot become a sealing key.
	if _, err := h.GenerateKey(ctx, "signer", Ed25519); err != nil {
		t.Fatal(err)
	}
	wantErr(t, h.EnsureSealingKey(ctx, "signer"), ErrKeyExists)
}

func TestWrongPIN(t *testing.T) {
	m := testModule(t, "dc1")
	var reported []error
	cfg := Config{TokenLabel: "dc1", PIN: "0000", OnError: func(op string, err error) {
		if op != "open" {
			t.Errorf("op %q", op)
		}
		reported = append(reported, err)
	}}
	_, err := m.Open(cfg)
	wantErr(t, err, ErrLogin)
	var pe pkcs11.Error
	if !errors.As(err, &pe) || pe != pkcs11.CKR_PIN_INCORRECT {
		t.Fatalf("error %v does not carry CKR_PIN_INCORRECT", err)
	}
	if len(reported) != 1 || !errors.Is(reported[0], ErrLogin) {
		t.Fatalf("OnError got %v", reported)
	}
	// The module is still usable and the right PIN works.
	h := openToken(t, m, "dc1", Config{})
	if _, err := h.GenerateKey(t.Context(), "k", Ed25519); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	m := testModule(t, "dc1")
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(testPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	slot := uint(987654)
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"unknown token", Config{TokenLabel: "nope", PIN: testPIN}, ErrConfig},
		{"unknown slot", Config{Slot: &slot, PIN: testPIN}, ErrConfig},
		{"other module path", Config{Module: "/other.so", TokenLabel: "dc1", PIN: testPIN}, ErrConfig},
		{"missing pin file", Config{TokenLabel: "dc1", PINFile: pinFile + ".missing"}, ErrConfig},
		{"invalid config", Config{TokenLabel: "dc1"}, ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Open(tc.cfg)
			wantErr(t, err, tc.want)
		})
	}
	t.Run("pin file and slot", func(t *testing.T) {
		first := openToken(t, m, "dc1", Config{PINFile: pinFile})
		s := first.Token().Slot
		h, err := m.Open(Config{Slot: &s, PINFile: pinFile})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if h.Token().Label != "dc1" || h.Token().Serial == "" {
			t.Fatalf("token identity %+v", h.Token())
		}
	})
}

func TestModuleLifecycle(t *testing.T) {
	env := hsmtest.New(t)
	env.InitToken(t, "dc1", testPIN)
	m, err := LoadModule(env.Module)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadModule(env.Module)
	wantErr(t, err, ErrModuleInUse)
	_, err = Open(Config{Module: env.Module, TokenLabel: "dc1", PIN: testPIN})
	wantErr(t, err, ErrModuleInUse)

	h, err := m.Open(Config{TokenLabel: "dc1", PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, m.Close(), ErrBusy)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = h.Sign(t.Context(), "k", []byte("m"))
	wantErr(t, err, ErrClosed)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = m.Open(Config{TokenLabel: "dc1", PIN: testPIN})
	wantErr(t, err, ErrClosed)

	// Open owns its module: after Close the library can be loaded again.
	h, err = Open(Config{Module: env.Module, TokenLabel: "dc1", PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	m, err = LoadModule(env.Module)
	if err != nil {
		t.Fatalf("LoadModule after Open/Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// A failed Open releases the module too.
	_, err = Open(Config{Module: env.Module, TokenLabel: "dc1", PIN: "0000"})
	wantErr(t, err, ErrLogin)
	m, err = LoadModule(env.Module)
	if err != nil {
		t.Fatalf("LoadModule after failed Open: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentSigning(t *testing.T) {
	var errs atomic.Int64
	h := newTestHSM(t, Config{MaxSessions: 2, OnError: func(string, error) { errs.Add(1) }})
	ctx := t.Context()
	pubs := map[string]PublicKey{}
	for _, alg := range []Algorithm{Ed25519, Secp256k1, P256} {
		pub, err := h.GenerateKey(ctx, alg.String(), alg)
		if err != nil {
			t.Fatal(err)
		}
		pubs[alg.String()] = pub
	}
	const workers, perWorker = 16, 15
	var wg sync.WaitGroup
	results := make([][]byte, workers*perWorker)
	failures := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				idx := w*perWorker + i
				label := []string{"ed25519", "secp256k1", "p256"}[idx%3]
				// Ed25519 messages repeat across workers: equal signatures expected.
				msg := []byte(fmt.Sprintf("msg %d", i))
				sig, err := h.Sign(ctx, label, msg)
				if err != nil {
					failures <- err
					continue
				}
				pub := pubs[label]
				if !pub.Verify(msg, sig) {
					failures <- fmt.Errorf("%s signature %d does not verify", label, idx)
				}
				results[idx] = sig
			}
		})
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	if errs.Load() != 0 {
		t.Fatalf("%d errors reported", errs.Load())
	}
	byMsg := map[string][]byte{}
	for idx, sig := range results {
		if idx%3 != 0 {
			continue
		}
		key := fmt.Sprint(idx % perWorker)
		if prev, ok := byMsg[key]; ok && !bytes.Equal(prev, sig) {
			t.Fatalf("ed25519 signatures of one message differ")
		}
		byMsg[key] = sig
	}
	if len(h.pool) != 2 {
		t.Fatalf("%d sessions back in the pool, want 2", len(h.pool))
	}
}

func TestSessionPoolExhausted(t *testing.T) {
	var reported atomic.Int64
	h := newTestHSM(t, Config{MaxSessions: 2, OnError: func(op string, err error) {
		if errors.Is(err, ErrSessionPoolExhausted) {
			reported.Add(1)
		}
	}})
	ctx := t.Context()
	if _, err := h.GenerateKey(ctx, "k", Ed25519); err != nil {
		t.Fatal(err)
	}
	s1, err := h.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := h.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = h.Sign(short, "k", []byte("m"))
	wantErr(t, err, ErrSessionPoolExhausted, context.DeadlineExceeded)
	if reported.Load() != 1 {
		t.Fatalf("reported %d pool errors", reported.Load())
	}
	// A cancelled context fails at once even with free sessions.
	h.release(s1, nil)
	cancelled, cancel2 := context.WithCancel(ctx)
	cancel2()
	_, err = h.Sign(cancelled, "k", []byte("m"))
	wantErr(t, err, ErrSessionPoolExhausted, context.Canceled)
	// A waiter is served as soon as a session comes back.
	h2, err := h.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Sign(ctx, "k", []byte("m"))
		done <- err
	}()
	h.release(s2, nil)
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	h.release(h2, nil)
}

func TestCloseWakesWaiters(t *testing.T) {
	m := testModule(t, "dc1")
	h, err := m.Open(Config{TokenLabel: "dc1", PIN: testPIN, MaxSessions: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := h.acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Sign(t.Context(), "k", []byte("m"))
		done <- err
	}()
	closed := make(chan error, 1)
	go func() { closed <- h.Close() }()
	// The waiter is woken with ErrClosed; Close itself waits for s.
	wantErr(t, <-done, ErrClosed)
	h.release(s, nil)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

func TestBrokenSessionIsReopened(t *testing.T) {
	h := newTestHSM(t, Config{MaxSessions: 1})
	ctx := t.Context()
	if _, err := h.GenerateKey(ctx, "k", Ed25519); err != nil {
		t.Fatal(err)
	}
	// Close the pooled session behind the pool's back (as a token reset
	// would).
	s, err := h.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.p.CloseSession(s.h); err != nil {
		t.Fatal(err)
	}
	h.release(s, nil)
	_, err = h.Sign(ctx, "k", []byte("m"))
	wantErr(t, err, ErrHSM)
	// The failed operation retired the session; the next one reopens and
	// logs in again.
	if _, err := h.Sign(ctx, "k", []byte("m")); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestOnErrorSkipsInvalidInput(t *testing.T) {
	var ops []string
	h := newTestHSM(t, Config{OnError: func(op string, err error) { ops = append(ops, op) }})
	ctx := t.Context()
	_, _ = h.Sign(ctx, "", []byte("m"))
	_, _ = h.SignDigest(ctx, "k", []byte{1})
	if len(ops) != 0 {
		t.Fatalf("invalid input reported: %v", ops)
	}
	_, _ = h.Sign(ctx, "missing", []byte("m"))
	_, _ = h.Unseal(ctx, "seal", []byte{1, 2, 3}, nil)
	if fmt.Sprint(ops) != "[sign unseal]" {
		t.Fatalf("reported ops %v", ops)
	}
}
