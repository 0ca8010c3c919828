package hsm

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestWrapKeyRoundTrip(t *testing.T) {
	m := testModule(t, "dc1", "dc2")
	var reported []string
	dc1 := openToken(t, m, "dc1", Config{OnError: func(op string, _ error) { reported = append(reported, op) }})
	dc2 := openToken(t, m, "dc2", Config{})
	ctx := t.Context()

	der1, err := dc1.EnsureWrapKey(ctx, DefaultWrapKeyLabel)
	if err != nil {
		t.Fatalf("EnsureWrapKey: %v", err)
	}
	pub, err := ParseWrapPublicKey(der1, MinWrapKeyBits)
	if err != nil || pub.N.BitLen() != WrapKeyBits || pub.E != 65537 {
		t.Fatalf("wrap public key: %v (bits %d)", err, pub.N.BitLen())
	}
	again, err := dc1.EnsureWrapKey(ctx, DefaultWrapKeyLabel)
	if err != nil || !bytes.Equal(again, der1) {
		t.Fatalf("second EnsureWrapKey = %v; want the same key", err)
	}
	if n := countObjects(t, dc1, DefaultWrapKeyLabel); n != 2 {
		t.Fatalf("%d objects labelled %q, want a private and a public key", n, DefaultWrapKeyLabel)
	}
	der2, err := dc2.EnsureWrapKey(ctx, DefaultWrapKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(der1, der2) {
		t.Fatalf("two tokens generated the same wrapping key")
	}
	if WrapKeyID(der1) != sha256.Sum256(der1) {
		t.Fatalf("WrapKeyID is not SHA-256 of the DER")
	}

	for _, n := range []int{1, 32, MaxWrapPlaintext} {
		secret := bytes.Repeat([]byte{byte(n)}, n)
		ct, err := WrapSecret(der1, secret)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ct, secret) && n > 1 {
			t.Fatalf("ciphertext contains the plaintext")
		}
		got, err := dc1.Unwrap(ctx, DefaultWrapKeyLabel, ct)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Unwrap(%d bytes) = %x, %v", n, got, err)
		}
		// Go's own OAEP decryption would need the private key; the token
		// agreeing with rsa.EncryptOAEP's format is what the round trip shows.
	}

	secret := bytes.Repeat([]byte{0x5A}, 32)
	ct, err := WrapSecret(der1, secret)
	if err != nil {
		t.Fatal(err)
	}
	reported = nil
	tests := []struct {
		name    string
		h       *HSM
		label   string
		ct      func() []byte
		wantErr []error
	}{
		{"other region's token", dc2, DefaultWrapKeyLabel, func() []byte { return bytes.Clone(ct) }, []error{ErrUnwrap}},
		{"flipped first byte", dc1, DefaultWrapKeyLabel, func() []byte { c := bytes.Clone(ct); c[0] ^= 1; return c }, []error{ErrUnwrap}},
		{"flipped last byte", dc1, DefaultWrapKeyLabel, func() []byte { c := bytes.Clone(ct); c[len(c)-1] ^= 0x80; return c }, []error{ErrUnwrap}},
		{"truncated", dc1, DefaultWrapKeyLabel, func() []byte { return bytes.Clone(ct[1:]) }, []error{ErrUnwrap}},
		{"all ones (not below the modulus)", dc1, DefaultWrapKeyLabel, func() []byte { return bytes.Repeat([]byte{0xff}, len(ct)) }, []error{ErrUnwrap}},
		{"empty", dc1, DefaultWrapKeyLabel, func() []byte { return nil }, []error{ErrInvalidInput}},
		{"too long", dc1, DefaultWrapKeyLabel, func() []byte { return make([]byte, 1025) }, []error{ErrInvalidInput}},
		{"unknown label", dc1, "no-such-wrap-key", func() []byte { return bytes.Clone(ct) }, []error{ErrKeyNotFound}},
		{"bad label", dc1, "", func() []byte { return bytes.Clone(ct) }, []error{ErrInvalidInput}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.h.Unwrap(ctx, tc.label, tc.ct())
			if got != nil {
				t.Fatalf("returned %x with the error", got)
			}
			wantErr(t, err, tc.wantErr...)
		})
	}
	// Tampered ciphertexts are reported to OnError (damaged input from the
	// log), argument errors are not.
	for _, op := range reported {
		if op != "unwrap" {
			t.Fatalf("reported op %q", op)
		}
	}
	if len(reported) != 5 { // three tampered + truncated + unknown label on dc1
		t.Fatalf("OnError called %d times (%v), want 5", len(reported), reported)
	}
	// The original still opens: failures changed nothing.
	got, err := dc1.Unwrap(ctx, DefaultWrapKeyLabel, ct)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unwrap after failures = %x, %v", got, err)
	}
}

func TestWrapSecretRefusesBadInput(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	good, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	goodDER, _ := x509.MarshalPKIXPublicKey(&good.PublicKey)
	edDER := []byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}
	edDER = append(edDER, make([]byte, 32)...)
	tests := []struct {
		name   string
		der    []byte
		secret []byte
	}{
		{"empty secret", goodDER, nil},
		{"secret too long", goodDER, make([]byte, MaxWrapPlaintext+1)},
		{"not DER", []byte("not a key"), make([]byte, 32)},
		{"ed25519 key", edDER, make([]byte, 32)},
		{"1024-bit RSA", smallDER, make([]byte, 32)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := WrapSecret(tc.der, tc.secret)
			if ct != nil {
				t.Fatalf("ciphertext returned with error")
			}
			wantErr(t, err, ErrInvalidInput)
		})
	}
	// The good key works and Go's decryption agrees with the format.
	ct, err := WrapSecret(goodDER, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, good, ct, nil)
	if err != nil || string(pt) != "k" {
		t.Fatalf("rsa.DecryptOAEP = %q, %v", pt, err)
	}
}

func TestWrapKeyStaysInsideTheToken(t *testing.T) {
	h := newTestHSM(t, Config{})
	ctx := t.Context()
	if _, err := h.EnsureWrapKey(ctx, "wrap"); err != nil {
		t.Fatal(err)
	}
	want := map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false,
		pkcs11.CKA_ALWAYS_SENSITIVE: true, pkcs11.CKA_NEVER_EXTRACTABLE: true, pkcs11.CKA_DECRYPT: true,
		pkcs11.CKA_SIGN: false, pkcs11.CKA_SIGN_RECOVER: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false,
	}
	var types []uint
	for typ := range want {
		types = append(types, typ)
	}
	a := objectAttrs(t, h, pkcs11.CKO_PRIVATE_KEY, "wrap", types...)
	for typ, w := range want {
		if v, ok := attrBool(a[typ]); !ok || v != w {
			t.Errorf("attribute 0x%x = %v, want %v", typ, a[typ], w)
		}
	}
	// The private exponent cannot be read.
	err := h.do(ctx, "test", func(sh pkcs11.SessionHandle) error {
		o, err := h.findOne(sh, "wrap", wrapKeyQuery("wrap"))
		if err != nil {
			return err
		}
		_, err = h.attrs(sh, o, pkcs11.CKA_PRIVATE_EXPONENT)
		return err
	})
	if rv, _ := rvOf(err); rv != pkcs11.CKR_ATTRIBUTE_SENSITIVE {
		t.Fatalf("read CKA_PRIVATE_EXPONENT: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}
	// PKCS#1 v1.5 decryption (a padding oracle) and signing are refused.
	for _, mech := range []uint{pkcs11.CKM_RSA_PKCS, pkcs11.CKM_SHA256_RSA_PKCS} {
		err := h.do(ctx, "test", func(sh pkcs11.SessionHandle) error {
			o, err := h.findOne(sh, "wrap", wrapKeyQuery("wrap"))
			if err != nil {
				return err
			}
			if mech == pkcs11.CKM_RSA_PKCS {
				return h.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, o)
			}
			return h.p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, o)
		})
		if err == nil {
			t.Fatalf("mechanism 0x%x accepted by the wrapping key", mech)
		}
	}
}

func TestEnsureWrapKeyRefusesKeysOutsidePolicy(t *testing.T) {
	// Each row makes its own token objects on a fresh token.
	rsaPair := func(label string, bits int, extractable, sign bool) func(t *testing.T, h *HSM) {
		return func(t *testing.T, h *HSM) {
			err := h.do(t.Context(), "test", func(sh pkcs11.SessionHandle) error {
				_, _, err := h.p.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
					[]*pkcs11.Attribute{
						pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
						pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, bits), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
					},
					[]*pkcs11.Attribute{
						pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
						pkcs11.NewAttribute(pkcs11.CKA_SIGN, sign),
						pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, !extractable), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, extractable),
						pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
					})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, h *HSM)
		wantErr error
	}{
		{"extractable RSA key", rsaPair("wrap", 3072, true, false), ErrKeyPolicy},
		{"2048-bit RSA key", rsaPair("wrap", 2048, false, false), ErrKeyPolicy},
		{"RSA key that can sign", rsaPair("wrap", 3072, false, true), ErrKeyPolicy},
		{"label of a sealing key", func(t *testing.T, h *HSM) {
			if err := h.EnsureSealingKey(t.Context(), "wrap"); err != nil {
				t.Fatal(err)
			}
		}, ErrKeyExists},
		{"label of a signing key", func(t *testing.T, h *HSM) {
			if _, err := h.GenerateKey(t.Context(), "wrap", Ed25519); err != nil {
				t.Fatal(err)
			}
		}, ErrKeyPolicy},
		{"two RSA keys under one label", func(t *testing.T, h *HSM) {
			rsaPair("wrap", 3072, false, false)(t, h)
			rsaPair("wrap", 3072, false, false)(t, h)
		}, ErrAmbiguousLabel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHSM(t, Config{})
			tc.setup(t, h)
			before := countObjects(t, h, "")
			der, err := h.EnsureWrapKey(t.Context(), "wrap")
			if der != nil {
				t.Fatalf("key returned with error")
			}
			wantErr(t, err, tc.wantErr)
			if after := countObjects(t, h, ""); after != before {
				t.Fatalf("token held %d objects, now %d", before, after)
			}
			_, err = h.Unwrap(t.Context(), "wrap", make([]byte, 384))
			if err == nil {
				t.Fatalf("Unwrap with a key outside the policy succeeded")
			}
		})
	}
}

func TestWrapKeySurvivesReopen(t *testing.T) {
	m := testModule(t, "dc1")
	ctx := t.Context()
	h, err := m.Open(Config{TokenLabel: "dc1", PIN: testPIN})
	if err != nil {
		t.Fatal(err)
	}
	der, err := h.EnsureWrapKey(ctx, DefaultWrapKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := WrapSecret(der, []byte("validator secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h = openToken(t, m, "dc1", Config{})
	again, err := h.EnsureWrapKey(ctx, DefaultWrapKeyLabel)
	if err != nil || !bytes.Equal(again, der) {
		t.Fatalf("EnsureWrapKey after reopen: %v (same key: %v)", err, bytes.Equal(again, der))
	}
	got, err := h.Unwrap(ctx, DefaultWrapKeyLabel, ct)
	if err != nil || string(got) != "validator secret" {
		t.Fatalf("Unwrap after reopen = %q, %v", got, err)
	}
}

func TestOAEPParamsUnsupported(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{pkcs11.Error(pkcs11.CKR_ARGUMENTS_BAD), true},
		{pkcs11.Error(pkcs11.CKR_MECHANISM_PARAM_INVALID), true},
		{pkcs11.Error(pkcs11.CKR_MECHANISM_INVALID), true},
		{p11err("C_DecryptInit", pkcs11.Error(pkcs11.CKR_MECHANISM_PARAM_INVALID)), true},
		{pkcs11.Error(pkcs11.CKR_KEY_HANDLE_INVALID), false},
		{pkcs11.Error(pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED), false},
		{errors.New("other"), false},
	}
	for _, tc := range tests {
		if got := oaepParamsUnsupported(tc.err); got != tc.want {
			t.Errorf("oaepParamsUnsupported(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// rawDecrypt is textbook RSA decryption: the encoded message, left-padded to
// the modulus size.
func rawDecrypt(k *rsa.PrivateKey, ct []byte) []byte {
	m := new(big.Int).Exp(new(big.Int).SetBytes(ct), k.D, k.N)
	return m.FillBytes(make([]byte, k.Size()))
}

// rawEncrypt is textbook RSA encryption of an encoded message em < n.
func rawEncrypt(k *rsa.PublicKey, em []byte) ([]byte, bool) {
	m := new(big.Int).SetBytes(em)
	if m.Cmp(k.N) >= 0 {
		return nil, false
	}
	return new(big.Int).Exp(m, big.NewInt(int64(k.E)), k.N).FillBytes(make([]byte, k.Size())), true
}

// TestOAEPDecodeMatchesGo checks the OAEP decoding used after a raw RSA
// decryption against Go's crypto/rsa, on valid encodings of every message
// length and on random and corrupted encoded messages.
func TestOAEPDecodeMatchesGo(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	maxMsg := k.Size() - 2*oaepHashLen - 2
	for n := 0; n <= maxMsg; n += 1 + n/8 {
		msg := make([]byte, n)
		_, _ = rand.Read(msg)
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		em := rawDecrypt(k, ct)
		got, ok := oaepDecodeSHA256(em)
		if !ok || !bytes.Equal(got, msg) {
			t.Fatalf("message of %d bytes: decode = %x, %v", n, got, ok)
		}
		// Corrupt each region of the encoded message.
		for _, pos := range []int{0, 1, oaepHashLen, oaepHashLen + 1, 2*oaepHashLen + 1, len(em) - n - 1, len(em) - 1} {
			bad := bytes.Clone(em)
			bad[pos] ^= 0x01
			checkAgainstGo(t, k, bad)
		}
	}
	for range 200 {
		em := make([]byte, k.Size())
		_, _ = rand.Read(em)
		em[0] = 0
		checkAgainstGo(t, k, em)
	}
}

// checkAgainstGo compares oaepDecodeSHA256(em) with rsa.DecryptOAEP of the
// ciphertext whose raw decryption is em.
func checkAgainstGo(t *testing.T, k *rsa.PrivateKey, em []byte) {
	t.Helper()
	ct, ok := rawEncrypt(&k.PublicKey, em)
	if !ok {
		return
	}
	want, werr := rsa.DecryptOAEP(sha256.New(), nil, k, ct, nil)
	got, gok := oaepDecodeSHA256(em)
	if (werr == nil) != gok || (gok && !bytes.Equal(got, want)) {
		t.Fatalf("em %x: decode = %x, %v; crypto/rsa = %x, %v", em, got, gok, want, werr)
	}
}

func FuzzOAEPDecode(f *testing.F) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	for _, msg := range [][]byte{nil, []byte("a"), bytes.Repeat([]byte{1}, 32), make([]byte, k.Size()-2*oaepHashLen-2)} {
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, msg, nil)
		if err != nil {
			f.Fatal(err)
		}
		em := rawDecrypt(k, ct)
		f.Add(em)
		bad := bytes.Clone(em)
		bad[len(bad)-len(msg)-1] = 2 // the 0x01 separator
		f.Add(bad)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 2*oaepHashLen+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != k.Size() {
			// Any length: must not panic, and only full-size inputs can be
			// valid encodings for this key.
			if got, ok := oaepDecodeSHA256(b); ok && len(b) < 2*oaepHashLen+2 {
				t.Fatalf("decoded %x from a %d-byte input", got, len(b))
			}
			return
		}
		checkAgainstGo(t, k, b)
	})
}

func FuzzParseWrapPublicKey(f *testing.F) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	f.Add(der)
	f.Add(der[:len(der)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := ParseWrapPublicKey(b, 2048)
		if err != nil {
			if pub != nil || !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("err %v with key %v", err, pub)
			}
			return
		}
		if pub.N.BitLen() < 2048 || pub.E < 3 {
			t.Fatalf("accepted a weak key: %d bits, e=%d", pub.N.BitLen(), pub.E)
		}
		again, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseWrapPublicKey(again, 2048); err != nil {
			t.Fatalf("re-encoded key does not parse: %v", err)
		}
	})
}
