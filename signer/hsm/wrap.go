package hsm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// Key wrapping: every region's token holds one RSA key pair whose private
// half never leaves it. Other regions encrypt a validator secret to the
// public half (RSA-OAEP, SHA-256, MGF1-SHA-256, empty label) and publish the
// ciphertext in the replicated log; only this token can open it.
const (
	// DefaultWrapKeyLabel is the label Regent gives a region's wrapping key.
	DefaultWrapKeyLabel = "regent-wrap"
	// WrapKeyBits is the modulus size EnsureWrapKey generates.
	WrapKeyBits = 3072
	// MinWrapKeyBits is the smallest wrapping key EnsureWrapKey accepts when
	// it finds one already in the token.
	MinWrapKeyBits = 3072
	// MaxWrapPlaintext bounds what WrapSecret encrypts: wrapping is for keys.
	MaxWrapPlaintext   = 64
	wrapPublicExponent = 65537
	oaepHashLen        = sha256.Size
)

// ErrUnwrap: the token could not open a wrapped secret: it was made for
// another key, or it was modified. Nothing was returned.
var ErrUnwrap = errors.New("hsm: unwrap failed")

// WrapKeyID is the identifier of a wrapping public key as the replicated
// log records it: SHA-256 of its PKIX DER encoding.
func WrapKeyID(pkixDER []byte) [32]byte { return sha256.Sum256(pkixDER) }

// ParseWrapPublicKey decodes a PKIX DER wrapping public key. It must be RSA
// with at least minBits bits and a public exponent of 3 or more.
func ParseWrapPublicKey(pkixDER []byte, minBits int) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(pkixDER)
	if err != nil {
		return nil, invalid("wrap public key: %v", err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, invalid("wrap public key is %T, want RSA", k)
	}
	if pub.N.BitLen() < minBits {
		return nil, invalid("wrap public key has %d bits, want at least %d", pub.N.BitLen(), minBits)
	}
	if pub.E < 3 {
		return nil, invalid("wrap public key has exponent %d", pub.E)
	}
	return pub, nil
}

// WrapSecret encrypts secret (1 to MaxWrapPlaintext bytes) to the wrapping
// public key pkixDER with RSA-OAEP (SHA-256, MGF1-SHA-256, empty label), the
// format Unwrap opens. It runs in this process, not in a token: the public
// key may be another region's. The key must have at least 2048 bits (the
// floor the replicated registry enforces).
func WrapSecret(pkixDER, secret []byte) ([]byte, error) {
	if len(secret) == 0 || len(secret) > MaxWrapPlaintext {
		return nil, invalid("secret of %d bytes (want 1 to %d)", len(secret), MaxWrapPlaintext)
	}
	pub, err := ParseWrapPublicKey(pkixDER, 2048)
	if err != nil {
		return nil, err
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, secret, nil)
	if err != nil {
		return nil, invalid("RSA-OAEP: %v", err)
	}
	return ct, nil
}

// ckULONGs encodes mechanism types as a CK_MECHANISM_TYPE array in the
// module's native CK_ULONG layout.
func ckULONGs(vs ...uint) []byte {
	var out []byte
	for _, v := range vs {
		out = append(out, pkcs11.NewAttribute(0, v).Value...)
	}
	return out
}

// wrapMechanisms are the only mechanisms the private wrapping key allows:
// RSA-OAEP, and raw RSA for tokens whose OAEP lacks SHA-256 (see Unwrap).
// PKCS#1 v1.5 decryption (a padding oracle) and signing are excluded.
var wrapMechanisms = []uint{pkcs11.CKM_RSA_PKCS_OAEP, pkcs11.CKM_RSA_X_509}

func wrapPublicTemplate(label string, id []byte) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY_RECOVER, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, WrapKeyBits),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(wrapPublicExponent).Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
}

func wrapPrivateTemplate(label string, id []byte, restrict bool) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN_RECOVER, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	if restrict {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ALLOWED_MECHANISMS, ckULONGs(wrapMechanisms...)))
	}
	return t
}

func wrapKeyQuery(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// EnsureWrapKey makes sure the token holds an RSA wrapping key pair labelled
// label, generating one (WrapKeyBits bits, exponent 65537) inside the token
// if there is none, and returns its public key as PKIX DER (what a region
// publishes in RegisterRegion).
//
// The private key is a token object with CKA_SENSITIVE=true,
// CKA_EXTRACTABLE=false and CKA_DECRYPT=true, and cannot sign, unwrap or
// derive; where the token supports CKA_ALLOWED_MECHANISMS it is limited to
// RSA-OAEP and raw RSA. An existing key is checked against this policy (RSA,
// at least MinWrapKeyBits, sensitive, non-extractable, decrypt only) and
// refused with ErrKeyPolicy otherwise (so is a private key of another type
// under the label); any other object carrying the label fails with
// ErrKeyExists, two private keys with ErrAmbiguousLabel.
//
// Before returning, a random secret is wrapped to the public key in this
// process and unwrapped by the token; a key pair that fails this self-test
// is an error (and, if just generated, destroyed). Like EnsureSealingKey,
// run it from one place per token (region start-up).
func (h *HSM) EnsureWrapKey(ctx context.Context, label string) ([]byte, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	h.createMu.Lock()
	defer h.createMu.Unlock()
	var (
		der      []byte
		created  bool
		priv     pkcs11.ObjectHandle
		pubH     pkcs11.ObjectHandle
		restrict = true
	)
	err := h.do(ctx, "ensure_wrap_key", func(sh pkcs11.SessionHandle) error {
		objs, err := h.findObjects(sh, wrapKeyQuery(label))
		if err != nil {
			return err
		}
		switch len(objs) {
		case 0:
		case 1:
			priv = objs[0]
			der, err = h.wrapPublic(sh, priv)
			if err != nil {
				return fmt.Errorf("wrap key %q: %w", label, err)
			}
			return nil
		default:
			return fmt.Errorf("%w: wrap key %q: %d private keys", ErrAmbiguousLabel, label, len(objs))
		}
		if err := h.labelInUse(sh, label); err != nil {
			return err
		}
		id, err := h.random(sh, 16)
		if err != nil {
			return err
		}
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
		pubH, priv, err = h.p.GenerateKeyPair(sh, mech, wrapPublicTemplate(label, id), wrapPrivateTemplate(label, id, true))
		if rv, _ := rvOf(err); rv == pkcs11.CKR_ATTRIBUTE_TYPE_INVALID || rv == pkcs11.CKR_ATTRIBUTE_VALUE_INVALID {
			// The token does not know CKA_ALLOWED_MECHANISMS: the key is
			// still decrypt-only, but the mechanism is not pinned.
			restrict = false
			pubH, priv, err = h.p.GenerateKeyPair(sh, mech, wrapPublicTemplate(label, id), wrapPrivateTemplate(label, id, false))
		}
		if err != nil {
			return p11err("C_GenerateKeyPair RSA", err)
		}
		created = true
		der, err = h.wrapPublic(sh, priv)
		if err != nil {
			return errors.Join(err, h.destroy(sh, priv, pubH))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := h.wrapSelfTest(ctx, label, der); err != nil {
		if created {
			derr := h.do(ctx, "ensure_wrap_key", func(sh pkcs11.SessionHandle) error { return h.destroy(sh, priv, pubH) })
			err = errors.Join(err, derr)
		}
		h.report("ensure_wrap_key", err)
		return nil, fmt.Errorf("wrap key %q failed its self-test: %w", label, err)
	}
	if created {
		h.log.Info("hsm wrapping key generated", "label", label, "bits", WrapKeyBits, "mechanisms_pinned", restrict)
	}
	return der, nil
}

// wrapPublic checks the private wrapping key o against the policy and
// returns its public key as PKIX DER, built from the private key object's
// own modulus and public exponent.
func (h *HSM) wrapPublic(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle) ([]byte, error) {
	kt, err := h.attrs(sh, o, pkcs11.CKA_KEY_TYPE)
	if err != nil {
		return nil, err
	}
	if v, ok := attrUlong(kt[pkcs11.CKA_KEY_TYPE]); !ok || v != pkcs11.CKK_RSA {
		return nil, fmt.Errorf("%w: key type %x is not RSA", ErrKeyPolicy, kt[pkcs11.CKA_KEY_TYPE])
	}
	a, err := h.attrs(sh, o, pkcs11.CKA_TOKEN, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE,
		pkcs11.CKA_DECRYPT, pkcs11.CKA_SIGN, pkcs11.CKA_SIGN_RECOVER, pkcs11.CKA_UNWRAP, pkcs11.CKA_DERIVE,
		pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
	if err != nil {
		return nil, err
	}
	want := map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_DECRYPT: true,
		pkcs11.CKA_SIGN: false, pkcs11.CKA_SIGN_RECOVER: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false,
	}
	for t, w := range want {
		if v, ok := attrBool(a[t]); !ok || v != w {
			return nil, fmt.Errorf("%w: attribute 0x%x is %v, want %v", ErrKeyPolicy, t, a[t], w)
		}
	}
	n := new(big.Int).SetBytes(a[pkcs11.CKA_MODULUS])
	if n.BitLen() < MinWrapKeyBits {
		return nil, fmt.Errorf("%w: RSA modulus of %d bits, want at least %d", ErrKeyPolicy, n.BitLen(), MinWrapKeyBits)
	}
	e := new(big.Int).SetBytes(a[pkcs11.CKA_PUBLIC_EXPONENT])
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("%w: RSA public exponent %v", ErrKeyPolicy, e)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: int(e.Int64())})
	if err != nil {
		return nil, fmt.Errorf("%w: encode wrap public key: %w", ErrHSM, err)
	}
	return der, nil
}

// wrapSelfTest wraps a random secret to der and unwraps it with the token.
func (h *HSM) wrapSelfTest(ctx context.Context, label string, der []byte) error {
	probe := make([]byte, 32)
	if _, err := rand.Read(probe); err != nil {
		return fmt.Errorf("%w: random probe: %w", ErrHSM, err)
	}
	ct, err := WrapSecret(der, probe)
	if err != nil {
		return err
	}
	got, err := h.Unwrap(ctx, label, ct)
	if err != nil {
		return err
	}
	same := bytes.Equal(got, probe)
	zero(got)
	if !same {
		return fmt.Errorf("%w: wrapping key returned other bytes than were wrapped", ErrHSM)
	}
	return nil
}

// wrapKey finds the private wrapping key labelled label, checked against the
// policy, and returns it with its modulus size in bytes.
func (h *HSM) wrapKey(sh pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, int, error) {
	o, err := h.findOne(sh, fmt.Sprintf("wrap key %q", label), wrapKeyQuery(label))
	if err != nil {
		return 0, 0, err
	}
	der, err := h.wrapPublic(sh, o)
	if err != nil {
		return 0, 0, fmt.Errorf("wrap key %q: %w", label, err)
	}
	pub, err := ParseWrapPublicKey(der, MinWrapKeyBits)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: wrap key %q: %w", ErrHSM, label, err)
	}
	return o, pub.Size(), nil
}

// Unwrap opens a secret wrapped by WrapSecret to the public key of the
// wrapping key labelled label (RSA-OAEP, SHA-256, MGF1-SHA-256, empty label).
//
// The decryption runs in the token with CKM_RSA_PKCS_OAEP. Tokens whose OAEP
// only knows SHA-1 (SoftHSM 2.6, which refuses the SHA-256 parameters with
// CKR_ARGUMENTS_BAD) are handled by a raw RSA decryption (CKM_RSA_X_509) in
// the token followed by the OAEP decoding in this process, in constant time;
// either way the private key stays in the token and the result is the same.
//
// A ciphertext made for another key, or modified, fails with ErrUnwrap
// without saying which check failed. The caller owns the returned plaintext
// and should zero it after use.
func (h *HSM) Unwrap(ctx context.Context, label string, ciphertext []byte) ([]byte, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	if len(ciphertext) == 0 || len(ciphertext) > 1024 {
		return nil, invalid("wrapped secret of %d bytes (want 1 to 1024)", len(ciphertext))
	}
	var pt []byte
	err := h.do(ctx, "unwrap", func(sh pkcs11.SessionHandle) error {
		k, size, err := h.wrapKey(sh, label)
		if err != nil {
			return err
		}
		if len(ciphertext) != size {
			return fmt.Errorf("%w: ciphertext of %d bytes, the wrap key's modulus has %d", ErrUnwrap, len(ciphertext), size)
		}
		params := pkcs11.NewOAEPParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, nil)
		err = h.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, params)}, k)
		if err == nil {
			out, err := h.p.Decrypt(sh, ciphertext)
			if err != nil {
				if sessionBroken(err) || handleStale(err) {
					return p11err("C_Decrypt RSA-OAEP", err)
				}
				return fmt.Errorf("%w: %w", ErrUnwrap, p11err("C_Decrypt RSA-OAEP", err))
			}
			pt = out
			return nil
		}
		if !oaepParamsUnsupported(err) {
			return p11err("C_DecryptInit RSA-OAEP", err)
		}
		h.log.Debug("token refuses RSA-OAEP with SHA-256; decoding OAEP outside the token", "label", label, "err", err)
		if err := h.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil)}, k); err != nil {
			return p11err("C_DecryptInit RSA raw", err)
		}
		em, err := h.p.Decrypt(sh, ciphertext)
		if err != nil {
			if sessionBroken(err) || handleStale(err) {
				return p11err("C_Decrypt RSA raw", err)
			}
			return fmt.Errorf("%w: %w", ErrUnwrap, p11err("C_Decrypt RSA raw", err))
		}
		defer zero(em)
		if len(em) > size {
			return fmt.Errorf("%w: raw RSA returned %d bytes for a %d-byte modulus", ErrHSM, len(em), size)
		}
		full := make([]byte, size)
		defer zero(full)
		copy(full[size-len(em):], em)
		out, ok := oaepDecodeSHA256(full)
		if !ok {
			return fmt.Errorf("%w: OAEP decoding failed", ErrUnwrap)
		}
		pt = out
		return nil
	})
	return pt, err
}

// oaepParamsUnsupported reports whether a C_DecryptInit error means the
// token does not do RSA-OAEP with these parameters (as opposed to a key or
// session problem).
func oaepParamsUnsupported(err error) bool {
	rv, ok := rvOf(err)
	if !ok {
		return false
	}
	switch rv {
	case pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_MECHANISM_INVALID:
		return true
	}
	return false
}

// oaepDecodeSHA256 is EME-OAEP decoding (RFC 8017 §7.1.2, step 3) with
// SHA-256, MGF1-SHA-256 and the empty label, of an encoded message em whose
// length is the modulus size. It reports failure without revealing, through
// its result or its timing, which check failed (Manger's attack). The
// returned message is a fresh slice.
func oaepDecodeSHA256(em []byte) ([]byte, bool) {
	const hLen = oaepHashLen
	if len(em) < 2*hLen+2 {
		return nil, false
	}
	lHash := sha256.Sum256(nil)
	maskedSeed, maskedDB := em[1:1+hLen], em[1+hLen:]
	seed := make([]byte, hLen)
	defer zero(seed)
	mgf1XOR(seed, maskedSeed, maskedDB)
	db := make([]byte, len(maskedDB))
	defer zero(db)
	mgf1XOR(db, maskedDB, seed)

	good := subtle.ConstantTimeByteEq(em[0], 0) & subtle.ConstantTimeCompare(db[:hLen], lHash[:])
	// After lHash: zero or more 0x00 bytes, one 0x01, then the message.
	rest := db[hLen:]
	looking, index, bad := 1, 0, 0
	for i, b := range rest {
		isZero, isOne := subtle.ConstantTimeByteEq(b, 0), subtle.ConstantTimeByteEq(b, 1)
		bad |= looking & (isZero ^ 1) & (isOne ^ 1)
		index = subtle.ConstantTimeSelect(looking&isOne, i, index)
		looking &= isOne ^ 1
	}
	if good&(bad^1)&(looking^1) != 1 {
		return nil, false
	}
	return bytes.Clone(rest[index+1:]), true
}

// mgf1XOR sets out = in XOR MGF1-SHA-256(seed, len(in)).
func mgf1XOR(out, in, seed []byte) {
	var counter [4]byte
	var block [sha256.Size]byte
	defer zero(block[:])
	for done := 0; done < len(in); {
		h := sha256.New()
		h.Write(seed)
		h.Write(counter[:])
		h.Sum(block[:0])
		for i := 0; i < len(block) && done < len(in); i++ {
			out[done] = in[done] ^ block[i]
			done++
		}
		for i := 3; i >= 0; i-- {
			counter[i]++
			if counter[i] != 0 {
				break
			}
		}
	}
}
