package bls

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/regent-signer/regent/signer/hsm"
	"github.com/regent-signer/regent/signer/hsm/hsmtest"
	"github.com/supranational/blst/bindings/go"
)

var _ Sealer = hsm.SealingKey{}

const sealLabel = "regent-bls-seal"

// hsmSealers starts SoftHSM2 with one token per label, each with a sealing
// key, and returns a Sealer per token. Everything is closed when the test
// ends.
func hsmSealers(t testing.TB, sessions int, tokens ...string) []hsm.SealingKey {
	t.Helper()
	env := hsmtest.New(t)
	for _, tok := range tokens {
		env.InitToken(t, tok, "1234")
	}
	m, err := hsm.LoadModule(env.Module)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("module close: %v", err)
		}
	})
	var out []hsm.SealingKey
	for _, tok := range tokens {
		h, err := m.Open(hsm.Config{TokenLabel: tok, PIN: "1234", MaxSessions: sessions})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := h.Close(); err != nil {
				t.Errorf("hsm close: %v", err)
			}
		})
		if err := h.EnsureSealingKey(context.Background(), sealLabel); err != nil {
			t.Fatal(err)
		}
		out = append(out, h.SealingKey(sealLabel))
	}
	return out
}

// newSecret returns a random valid secret key and its public key.
func newSecret(t testing.TB) ([]byte, PublicKey) {
	t.Helper()
	ikm := make([]byte, 32)
	if _, err := rand.Read(ikm); err != nil {
		t.Fatal(err)
	}
	sk := blst.KeyGen(ikm)
	defer sk.Zeroize()
	return sk.Serialize(), publicOf(sk)
}

// fakeSealer is AES-GCM in process, for tests of the Store's own logic; it
// records the peak number of concurrent calls and can be told to fail.
type fakeSealer struct {
	aead       cipher.AEAD
	inFlight   atomic.Int64
	peak       atomic.Int64
	mu         sync.Mutex
	failSeal   error
	failUnseal func(aad []byte) error
	tamper     func(pt []byte) []byte // applied to Unseal's output
}

func newFakeSealer(t testing.TB) *fakeSealer {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	b, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(b)
	return &fakeSealer{aead: g}
}

func (f *fakeSealer) enter() func() {
	n := f.inFlight.Add(1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return func() { f.inFlight.Add(-1) }
}

func (f *fakeSealer) Seal(ctx context.Context, pt, aad []byte) ([]byte, error) {
	defer f.enter()()
	f.mu.Lock()
	fail := f.failSeal
	f.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	nonce := make([]byte, f.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return f.aead.Seal(nonce, nonce, pt, aad), nil
}

func (f *fakeSealer) Unseal(ctx context.Context, blob, aad []byte) ([]byte, error) {
	defer f.enter()()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	fail, tamper := f.failUnseal, f.tamper
	f.mu.Unlock()
	if fail != nil {
		if err := fail(aad); err != nil {
			return nil, err
		}
	}
	n := f.aead.NonceSize()
	if len(blob) < n {
		return nil, errors.New("fake: short blob")
	}
	pt, err := f.aead.Open(nil, blob[:n], blob[n:], aad)
	if err != nil {
		return nil, err
	}
	if tamper != nil {
		pt = tamper(pt)
	}
	return pt, nil
}
