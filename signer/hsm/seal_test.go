package hsm

import (
	"bytes"
	"testing"
)

func TestSealUnseal(t *testing.T) {
	m := testModule(t, "dc1", "dc2")
	dc1 := openToken(t, m, "dc1", Config{})
	dc2 := openToken(t, m, "dc2", Config{})
	ctx := t.Context()
	for _, h := range []*HSM{dc1, dc2} {
		if err := h.EnsureSealingKey(ctx, "seal"); err != nil {
			t.Fatal(err)
		}
	}
	// EnsureSealingKey is idempotent.
	if err := dc1.EnsureSealingKey(ctx, "seal"); err != nil {
		t.Fatal(err)
	}
	if n := countObjects(t, dc1, "seal"); n != 1 {
		t.Fatalf("%d sealing keys", n)
	}

	secret := bytes.Repeat([]byte{0xA5}, 32)
	aad := []byte("pubkey-0001")
	blob, err := dc1.Seal(ctx, "seal", secret, aad)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) != sealOverhead+len(secret) || blob[0] != sealVersion1 {
		t.Fatalf("blob of %d bytes, version %x", len(blob), blob[0])
	}
	if bytes.Contains(blob, secret[:8]) {
		t.Fatalf("blob contains the plaintext")
	}
	got, err := dc1.Unseal(ctx, "seal", blob, aad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal = %x, %v", got, err)
	}
	// The adapter is the same operation.
	ad := dc1.SealingKey("seal")
	if ad.Label() != "seal" {
		t.Fatal(ad.Label())
	}
	got, err = ad.Unseal(ctx, blob, aad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("SealingKey.Unseal = %x, %v", got, err)
	}
	blob2, err := ad.Seal(ctx, secret, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(blob[1:13], blob2[1:13]) {
		t.Fatalf("two seals used the same IV")
	}
	// Empty plaintext and empty AAD are fine.
	e, err := dc1.Seal(ctx, "seal", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dc1.Unseal(ctx, "seal", e, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty round trip: %x, %v", got, err)
	}

	flip := func(i int) []byte {
		b := bytes.Clone(blob)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name string
		h    *HSM
		blob []byte
		aad  []byte
		want []error
	}{
		{"wrong aad", dc1, blob, []byte("pubkey-0002"), []error{ErrUnseal}},
		{"missing aad", dc1, blob, nil, []error{ErrUnseal}},
		{"other region's key", dc2, blob, aad, []error{ErrUnseal}},
		{"flipped iv bit", dc1, flip(1), aad, []error{ErrUnseal}},
		{"flipped ciphertext bit", dc1, flip(14), aad, []error{ErrUnseal}},
		{"flipped tag bit", dc1, flip(len(blob) - 1), aad, []error{ErrUnseal}},
		{"unknown version", dc1, flip(0), aad, []error{ErrSealedBlob}},
		{"truncated", dc1, blob[:sealOverhead-1], aad, []error{ErrSealedBlob}},
		{"truncated tag", dc1, blob[:len(blob)-1], aad, []error{ErrUnseal}},
		{"empty", dc1, nil, aad, []error{ErrSealedBlob}},
		{"oversized", dc1, append(bytes.Clone(blob), make([]byte, MaxSealPlaintext)...), aad, []error{ErrSealedBlob}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := countObjects(t, tc.h, "")
			pt, err := tc.h.Unseal(ctx, "seal", tc.blob, tc.aad)
			wantErr(t, err, tc.want...)
			if pt != nil {
				t.Fatalf("plaintext returned with error")
			}
			if after := countObjects(t, tc.h, ""); after != before {
				t.Fatalf("objects %d -> %d", before, after)
			}
			// The session is still good.
			if got, err := tc.h.Unseal(ctx, "seal", blob2, aad); tc.h == dc1 && (err != nil || !bytes.Equal(got, secret)) {
				t.Fatalf("unseal after failure: %v", err)
			}
		})
	}

	inputs := []struct {
		name string
		call func() error
		want error
	}{
		{"seal without key", func() error { _, err := dc1.Seal(ctx, "absent", secret, aad); return err }, ErrKeyNotFound},
		{"unseal without key", func() error { _, err := dc1.Unseal(ctx, "absent", blob, aad); return err }, ErrKeyNotFound},
		{"seal oversized", func() error { _, err := dc1.Seal(ctx, "seal", make([]byte, MaxSealPlaintext+1), aad); return err }, ErrInvalidInput},
		{"seal oversized aad", func() error { _, err := dc1.Seal(ctx, "seal", secret, make([]byte, MaxSealAAD+1)); return err }, ErrInvalidInput},
		{"unseal oversized aad", func() error { _, err := dc1.Unseal(ctx, "seal", blob, make([]byte, MaxSealAAD+1)); return err }, ErrInvalidInput},
		{"ensure empty label", func() error { return dc1.EnsureSealingKey(ctx, "") }, ErrInvalidInput},
	}
	for _, tc := range inputs {
		t.Run(tc.name, func(t *testing.T) {
			before := countObjects(t, dc1, "")
			wantErr(t, tc.call(), tc.want)
			if after := countObjects(t, dc1, ""); after != before {
				t.Fatalf("objects %d -> %d", before, after)
			}
		})
	}
}

func TestSealingKeySurvivesReopen(t *testing.T) {
	m := testModule(t, "dc1")
	ctx := t.Context()
	h, err := m.Open(Config{TokenLabel: "dc1", PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.EnsureSealingKey(ctx, "seal"); err != nil {
		t.Fatal(err)
	}
	blob, err := h.Seal(ctx, "seal", []byte("k"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h = openToken(t, m, "dc1", Config{})
	got, err := h.Unseal(ctx, "seal", blob, []byte("a"))
	if err != nil || string(got) != "k" {
		t.Fatalf("Unseal after reopen = %q, %v", got, err)
	}
}

func FuzzParseSealedBlob(f *testing.F) {
	f.Add([]byte{})
	f.Add(append([]byte{sealVersion1}, make([]byte, sealIVSize+sealTagSize)...))
	f.Add(append([]byte{sealVersion1}, make([]byte, sealIVSize+sealTagSize+32)...))
	f.Add(append([]byte{0x02}, make([]byte, sealIVSize+sealTagSize+32)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := parseSealedBlob(b)
		if err != nil {
			if sb.iv != nil || sb.ciphertext != nil {
				t.Fatalf("partial result with error")
			}
			return
		}
		if sb.version != sealVersion1 || len(sb.iv) != sealIVSize || len(sb.ciphertext) < sealTagSize {
			t.Fatalf("accepted %x as %+v", b, sb)
		}
		rebuilt := append(append([]byte{sb.version}, sb.iv...), sb.ciphertext...)
		if !bytes.Equal(rebuilt, b) {
			t.Fatalf("parse is not lossless")
		}
	})
}
