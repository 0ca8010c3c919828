package hsm

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/miekg/pkcs11"
)

// PKCS#11 3.0 identifiers that miekg/pkcs11 does not define.
const (
	ckkECEdwards           = 0x40   // CKK_EC_EDWARDS
	ckmECEdwardsKeyPairGen = 0x1055 // CKM_EC_EDWARDS_KEY_PAIR_GEN
	ckmEdDSA               = 0x1057 // CKM_EDDSA
)

// Algorithm is a signing key type. The zero value is AlgorithmUnknown.
type Algorithm int

// Supported algorithms.
const (
	AlgorithmUnknown Algorithm = iota
	// Ed25519 (RFC 8032, pure): CometBFT validator keys.
	Ed25519
	// Secp256k1 ECDSA.
	Secp256k1
	// P256 ECDSA (NIST P-256, secp256r1).
	P256
)

// String returns the stable name used in configuration and logs.
func (a Algorithm) String() string {
	switch a {
	case Ed25519:
		return "ed25519"
	case Secp256k1:
		return "secp256k1"
	case P256:
		return "p256"
	}
	return "unknown"
}

// ParseAlgorithm is the inverse of Algorithm.String.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range []Algorithm{Ed25519, Secp256k1, P256} {
		if a.String() == s {
			return a, nil
		}
	}
	return AlgorithmUnknown, fmt.Errorf("%w: %q (want ed25519, secp256k1 or p256)", ErrAlgorithm, s)
}

// DER-encoded CKA_EC_PARAMS values.
const (
	oidEd25519   = "\x06\x03\x2b\x65\x70"                     // 1.3.101.112
	oidSecp256k1 = "\x06\x05\x2b\x81\x04\x00\x0a"             // 1.3.132.0.10
	oidP256      = "\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07" // 1.2.840.10045.3.1.7
	// Some modules describe Ed25519 by curve name (PrintableString).
	nameEd25519 = "\x13\x0cedwards25519"
)

// ecParams returns CKA_EC_PARAMS for a (a fresh copy).
func (a Algorithm) ecParams() []byte {
	switch a {
	case Ed25519:
		return []byte(oidEd25519)
	case Secp256k1:
		return []byte(oidSecp256k1)
	case P256:
		return []byte(oidP256)
	}
	return nil
}

func (a Algorithm) valid() bool { return a == Ed25519 || a == Secp256k1 || a == P256 }

func (a Algorithm) keyType() uint {
	if a == Ed25519 {
		return ckkECEdwards
	}
	return pkcs11.CKK_EC
}

// algorithmOf maps a key's CKA_KEY_TYPE and CKA_EC_PARAMS to an Algorithm.
func algorithmOf(keyType uint64, params []byte) Algorithm {
	p := string(params)
	switch {
	case keyType == ckkECEdwards && (p == oidEd25519 || p == nameEd25519):
		return Ed25519
	case keyType == pkcs11.CKK_EC && p == oidSecp256k1:
		return Secp256k1
	case keyType == pkcs11.CKK_EC && p == oidP256:
		return P256
	}
	return AlgorithmUnknown
}

// PublicKey is the public half of a token key.
type PublicKey struct {
	Algorithm Algorithm
	// Bytes is the 32-byte Ed25519 key, or the 65-byte uncompressed SEC1
	// point (0x04 || X || Y) for ECDSA keys.
	Bytes []byte
}

// Compressed returns the 33-byte compressed SEC1 point of an ECDSA key, and
// the 32 key bytes of an Ed25519 key (which is compressed by definition).
func (p PublicKey) Compressed() ([]byte, error) {
	switch p.Algorithm {
	case Ed25519:
		if len(p.Bytes) != ed25519.PublicKeySize {
			return nil, invalid("ed25519 public key of %d bytes", len(p.Bytes))
		}
		return slices.Clone(p.Bytes), nil
	case Secp256k1, P256:
		if len(p.Bytes) != 65 || p.Bytes[0] != 0x04 {
			return nil, invalid("%s public key is not a 65-byte uncompressed point", p.Algorithm)
		}
		out := make([]byte, 33)
		out[0] = 0x02 | (p.Bytes[64] & 1)
		copy(out[1:], p.Bytes[1:33])
		return out, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrAlgorithm, p.Algorithm)
}

// signingKey is a cached private key handle with its public key.
type signingKey struct {
	priv pkcs11.ObjectHandle
	pub  PublicKey
}

// Label rules: 1..64 bytes of printable UTF-8 without control characters.
const maxLabel = 64

func checkLabel(label string) error {
	if label == "" || len(label) > maxLabel {
		return invalid("label must be 1 to %d bytes, got %d", maxLabel, len(label))
	}
	if !utf8.ValidString(label) {
		return invalid("label is not valid UTF-8")
	}
	for _, r := range label {
		if !unicode.IsPrint(r) {
			return invalid("label %q contains a non-printable character", label)
		}
	}
	return nil
}

func privateTemplate(label string, id []byte) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN_RECOVER, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
}

func publicTemplate(label string, id []byte, alg Algorithm) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, alg.ecParams()),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
}

// labelInUse reports whether any object carries label.
func (h *HSM) labelInUse(sh pkcs11.SessionHandle, label string) error {
	objs, err := h.findObjects(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)})
	if err != nil {
		return err
	}
	if len(objs) > 0 {
		return fmt.Errorf("%w: %q (%d objects)", ErrKeyExists, label, len(objs))
	}
	return nil
}

// GenerateKey creates a key pair of the given algorithm inside the token: the
// private key is a sensitive, non-extractable token object usable only for
// signing, labelled label (the public key object carries the same label).
// It fails with ErrKeyExists if any object already has that label; on any
// failure after creation the objects are destroyed again.
func (h *HSM) GenerateKey(ctx context.Context, label string, alg Algorithm) (PublicKey, error) {
	if err := checkLabel(label); err != nil {
		return PublicKey{}, err
	}
	if !alg.valid() {
		return PublicKey{}, fmt.Errorf("%w: %v", ErrAlgorithm, alg)
	}
	h.createMu.Lock()
	defer h.createMu.Unlock()
	var pub PublicKey
	err := h.do(ctx, "generate", func(sh pkcs11.SessionHandle) error {
		if err := h.labelInUse(sh, label); err != nil {
			return err
		}
		id, err := h.random(sh, 16)
		if err != nil {
			return err
		}
		mech := uint(pkcs11.CKM_EC_KEY_PAIR_GEN)
		if alg == Ed25519 {
			mech = ckmECEdwardsKeyPairGen
		}
		pubH, privH, err := h.p.GenerateKeyPair(sh,
			[]*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)},
			publicTemplate(label, id, alg), privateTemplate(label, id))
		if err != nil {
			return p11err("C_GenerateKeyPair "+alg.String(), err)
		}
		pub, err = h.readPublic(sh, pubH, alg)
		if err == nil {
			err = h.checkPrivatePolicy(sh, privH, alg)
		}
		if err != nil {
			return errors.Join(err, h.destroy(sh, privH, pubH))
		}
		h.cacheKey(label, &signingKey{priv: privH, pub: pub})
		return nil
	})
	return pub, err
}

// ImportKey stores an existing private key in the token as a sensitive,
// non-extractable signing key labelled label, together with its public key.
// secret is the 32-byte Ed25519 seed (RFC 8032 private key) or the 32-byte
// big-endian ECDSA scalar. Before returning, the token signs a probe message
// and the signature is checked against the public key derived from secret;
// if anything fails, the created objects are destroyed and the token is left
// as it was. The caller should zero secret afterwards.
//
// Imported keys have CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE false:
// the token knows the key existed outside it.
func (h *HSM) ImportKey(ctx context.Context, label string, alg Algorithm, secret []byte) (PublicKey, error) {
	if err := checkLabel(label); err != nil {
		return PublicKey{}, err
	}
	pub, err := publicFromSecret(alg, secret)
	if err != nil {
		return PublicKey{}, err
	}
	value := slices.Clone(secret)
	defer zero(value)
	h.createMu.Lock()
	defer h.createMu.Unlock()
	err = h.do(ctx, "import", func(sh pkcs11.SessionHandle) error {
		if err := h.labelInUse(sh, label); err != nil {
			return err
		}
		id, err := h.random(sh, 16)
		if err != nil {
			return err
		}
		priv := append(privateTemplate(label, id),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, alg.keyType()),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, alg.ecParams()),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
		)
		privH, err := h.p.CreateObject(sh, priv)
		if err != nil {
			return p11err("C_CreateObject private "+alg.String(), err)
		}
		point, err := asn1.Marshal(pub.Bytes)
		if err != nil {
			return errors.Join(fmt.Errorf("%w: encode EC point: %w", ErrHSM, err), h.destroy(sh, privH))
		}
		pubT := append(publicTemplate(label, id, alg),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, alg.keyType()),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
		)
		pubH, err := h.p.CreateObject(sh, pubT)
		if err != nil {
			return errors.Join(p11err("C_CreateObject public "+alg.String(), err), h.destroy(sh, privH))
		}
		k := &signingKey{priv: privH, pub: pub}
		err = h.checkPrivatePolicy(sh, privH, alg)
		if err == nil {
			_, err = h.signWith(sh, k, []byte("regent hsm import self-test "+label), false)
		}
		if err != nil {
			return errors.Join(err, h.destroy(sh, privH, pubH))
		}
		h.cacheKey(label, k)
		return nil
	})
	if err != nil {
		return PublicKey{}, err
	}
	return pub, nil
}

// publicFromSecret validates secret for alg and returns its public key.
func publicFromSecret(alg Algorithm, secret []byte) (PublicKey, error) {
	switch alg {
	case Ed25519:
		if len(secret) != ed25519.SeedSize {
			return PublicKey{}, invalid("ed25519 secret must be the %d-byte seed, got %d bytes", ed25519.SeedSize, len(secret))
		}
		priv := ed25519.NewKeyFromSeed(secret)
		defer zero(priv)
		return PublicKey{Algorithm: Ed25519, Bytes: slices.Clone(priv[32:])}, nil
	case P256:
		if len(secret) != 32 {
			return PublicKey{}, invalid("p256 secret must be 32 bytes, got %d", len(secret))
		}
		k, err := ecdh.P256().NewPrivateKey(secret)
		if err != nil {
			return PublicKey{}, invalid("p256 secret is not a valid scalar: %v", err)
		}
		return PublicKey{Algorithm: P256, Bytes: k.PublicKey().Bytes()}, nil
	case Secp256k1:
		if len(secret) != 32 {
			return PublicKey{}, invalid("secp256k1 secret must be 32 bytes, got %d", len(secret))
		}
		var d secp256k1.ModNScalar
		overflow := d.SetByteSlice(secret)
		defer d.Zero()
		if overflow || d.IsZero() {
			return PublicKey{}, invalid("secp256k1 secret is not in [1, n-1]")
		}
		k := secp256k1.NewPrivateKey(&d)
		defer k.Zero()
		return PublicKey{Algorithm: Secp256k1, Bytes: k.PubKey().SerializeUncompressed()}, nil
	}
	return PublicKey{}, fmt.Errorf("%w: %v", ErrAlgorithm, alg)
}

// readPublic reads and validates the public point of a public key object.
func (h *HSM) readPublic(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, alg Algorithm) (PublicKey, error) {
	a, err := h.attrs(sh, o, pkcs11.CKA_EC_POINT)
	if err != nil {
		return PublicKey{}, err
	}
	pt, err := parseECPoint(alg, a[pkcs11.CKA_EC_POINT])
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %w", ErrHSM, err)
	}
	return PublicKey{Algorithm: alg, Bytes: pt}, nil
}

// checkPrivatePolicy refuses private keys that could leave the token or be
// used for anything but signing.
func (h *HSM) checkPrivatePolicy(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, alg Algorithm) error {
	a, err := h.attrs(sh, o, pkcs11.CKA_TOKEN, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE,
		pkcs11.CKA_SIGN, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_EC_PARAMS)
	if err != nil {
		return err
	}
	want := map[uint]bool{pkcs11.CKA_TOKEN: true, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_SIGN: true}
	for t, w := range want {
		if v, ok := attrBool(a[t]); !ok || v != w {
			return fmt.Errorf("%w: attribute 0x%x is %v, want %v", ErrKeyPolicy, t, a[t], w)
		}
	}
	kt, _ := attrUlong(a[pkcs11.CKA_KEY_TYPE])
	if got := algorithmOf(kt, a[pkcs11.CKA_EC_PARAMS]); got != alg {
		return fmt.Errorf("%w: key is %v, want %v", ErrKeyPolicy, got, alg)
	}
	return nil
}

// destroy removes objects created by a failed operation.
func (h *HSM) destroy(sh pkcs11.SessionHandle, objs ...pkcs11.ObjectHandle) error {
	var errs []error
	for _, o := range objs {
		if err := h.p.DestroyObject(sh, o); err != nil {
			errs = append(errs, p11err("C_DestroyObject (rollback)", err))
		}
	}
	return errors.Join(errs...)
}

func (h *HSM) cacheKey(label string, k *signingKey) {
	h.cacheMu.Lock()
	h.keys[label] = k
	h.cacheMu.Unlock()
}

// signingKey returns the private key labelled label with its public key,
// from the cache or the token. The private key must satisfy the key policy.
func (h *HSM) signingKey(sh pkcs11.SessionHandle, label string) (*signingKey, error) {
	h.cacheMu.RLock()
	k := h.keys[label]
	h.cacheMu.RUnlock()
	if k != nil {
		return k, nil
	}
	privH, err := h.findOne(sh, fmt.Sprintf("private key %q", label), []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	})
	if err != nil {
		return nil, err
	}
	a, err := h.attrs(sh, privH, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_EC_PARAMS)
	if err != nil {
		return nil, err
	}
	kt, _ := attrUlong(a[pkcs11.CKA_KEY_TYPE])
	alg := algorithmOf(kt, a[pkcs11.CKA_EC_PARAMS])
	if alg == AlgorithmUnknown {
		return nil, fmt.Errorf("%w: key %q has key type 0x%x and EC params %x", ErrAlgorithm, label, kt, a[pkcs11.CKA_EC_PARAMS])
	}
	if err := h.checkPrivatePolicy(sh, privH, alg); err != nil {
		return nil, fmt.Errorf("key %q: %w", label, err)
	}
	pubH, err := h.findOne(sh, fmt.Sprintf("public key %q", label), []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	})
	if err != nil {
		return nil, err
	}
	pub, err := h.readPublic(sh, pubH, alg)
	if err != nil {
		return nil, err
	}
	k = &signingKey{priv: privH, pub: pub}
	h.cacheKey(label, k)
	return k, nil
}

// PublicKey returns the public key of the signing key labelled label
// (ErrKeyNotFound if there is none).
func (h *HSM) PublicKey(ctx context.Context, label string) (PublicKey, error) {
	if err := checkLabel(label); err != nil {
		return PublicKey{}, err
	}
	var pub PublicKey
	err := h.do(ctx, "public_key", func(sh pkcs11.SessionHandle) error {
		k, err := h.signingKey(sh, label)
		if err != nil {
			return err
		}
		pub = PublicKey{Algorithm: k.pub.Algorithm, Bytes: slices.Clone(k.pub.Bytes)}
		return nil
	})
	return pub, err
}

// KeyInfo describes a private key in the token.
type KeyInfo struct {
	Label     string
	Algorithm Algorithm // AlgorithmUnknown for key types Regent does not use
}

// Keys lists the private keys in the token, sorted by label. Keys of types
// Regent does not use are listed with AlgorithmUnknown.
func (h *HSM) Keys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := h.do(ctx, "keys", func(sh pkcs11.SessionHandle) error {
		objs, err := h.findObjects(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)})
		if err != nil {
			return err
		}
		for _, o := range objs {
			a, err := h.attrs(sh, o, pkcs11.CKA_LABEL, pkcs11.CKA_KEY_TYPE)
			if err != nil {
				return err
			}
			kt, _ := attrUlong(a[pkcs11.CKA_KEY_TYPE])
			var params []byte
			if kt == pkcs11.CKK_EC || kt == ckkECEdwards {
				p, err := h.attrs(sh, o, pkcs11.CKA_EC_PARAMS)
				if err != nil {
					return err
				}
				params = p[pkcs11.CKA_EC_PARAMS]
			}
			out = append(out, KeyInfo{Label: string(a[pkcs11.CKA_LABEL]), Algorithm: algorithmOf(kt, params)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return strings.Compare(a.Label, b.Label) })
	return out, nil
}

// DeleteKey destroys the private and public key objects labelled label. It
// fails with ErrKeyNotFound if there is no private key with that label.
// This destroys key material irrevocably; callers gate it on an operator
// decision.
func (h *HSM) DeleteKey(ctx context.Context, label string) error {
	if err := checkLabel(label); err != nil {
		return err
	}
	h.createMu.Lock()
	defer h.createMu.Unlock()
	return h.do(ctx, "delete", func(sh pkcs11.SessionHandle) error {
		privH, err := h.findOne(sh, fmt.Sprintf("private key %q", label), []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return err
		}
		pubs, err := h.findObjects(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return err
		}
		h.cacheMu.Lock()
		delete(h.keys, label)
		h.cacheMu.Unlock()
		if err := h.p.DestroyObject(sh, privH); err != nil {
			return p11err("C_DestroyObject", err)
		}
		for _, o := range pubs {
			if err := h.p.DestroyObject(sh, o); err != nil {
				return p11err("C_DestroyObject", err)
			}
		}
		return nil
	})
}
