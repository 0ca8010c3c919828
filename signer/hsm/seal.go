package hsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Sealed blob format, version 1:
//
//	version (1 byte, 0x01) | IV (12 bytes) | ciphertext | GCM tag (16 bytes)
//
// AES-256-GCM under the token's sealing key, IV from the token's RNG (or, for
// modules that choose their own IV, the IV the module reports), 128-bit tag.
// The GCM additional data is the version byte followed by the caller's AAD,
// so a blob cannot be reinterpreted under another format version.
const (
	sealVersion1 = 0x01
	sealIVSize   = 12
	sealTagSize  = 16
	sealOverhead = 1 + sealIVSize + sealTagSize
	sealKeyLen   = 32
	// MaxSealPlaintext bounds what Seal accepts: sealing is for keys, not
	// bulk data.
	MaxSealPlaintext = 64 << 10
	// MaxSealAAD bounds the additional authenticated data.
	MaxSealAAD = 4 << 10
)

// sealedBlob is a decoded sealed blob.
type sealedBlob struct {
	version    byte
	iv         []byte
	ciphertext []byte // including the tag
}

// parseSealedBlob decodes a sealed blob without any cryptography.
func parseSealedBlob(b []byte) (sealedBlob, error) {
	if len(b) < sealOverhead {
		return sealedBlob{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte minimum", ErrSealedBlob, len(b), sealOverhead)
	}
	if len(b) > sealOverhead+MaxSealPlaintext {
		return sealedBlob{}, fmt.Errorf("%w: %d bytes, longer than the %d-byte maximum", ErrSealedBlob, len(b), sealOverhead+MaxSealPlaintext)
	}
	if b[0] != sealVersion1 {
		return sealedBlob{}, fmt.Errorf("%w: unknown version 0x%02x", ErrSealedBlob, b[0])
	}
	return sealedBlob{version: b[0], iv: b[1 : 1+sealIVSize], ciphertext: b[1+sealIVSize:]}, nil
}

func sealAAD(version byte, aad []byte) []byte {
	out := make([]byte, 0, 1+len(aad))
	out = append(out, version)
	return append(out, aad...)
}

// sealingKeyTemplate is the AES key Regent seals with: a 256-bit token
// object that can only encrypt and decrypt and never leaves the token.
func sealingKeyTemplate(label string, id []byte) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, sealKeyLen),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
}

func sealKeyQuery(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// EnsureSealingKey makes sure the token holds an AES-256 sealing key
// labelled label, generating it inside the token if there is none. An
// existing key is checked against the sealing-key policy (AES, 256 bits,
// sensitive, non-extractable, encrypt and decrypt allowed) and refused with
// ErrKeyPolicy if it does not satisfy it. Generation is serialised within the
// process; two processes creating the same label concurrently would make it
// ambiguous (ErrAmbiguousLabel on use), so run it from one place (region
// bootstrap).
func (h *HSM) EnsureSealingKey(ctx context.Context, label string) error {
	if err := checkLabel(label); err != nil {
		return err
	}
	h.createMu.Lock()
	defer h.createMu.Unlock()
	return h.do(ctx, "ensure_sealing_key", func(sh pkcs11.SessionHandle) error {
		objs, err := h.findObjects(sh, sealKeyQuery(label))
		if err != nil {
			return err
		}
		switch len(objs) {
		case 0:
		case 1:
			if err := h.checkSealPolicy(sh, objs[0]); err != nil {
				return fmt.Errorf("sealing key %q: %w", label, err)
			}
			h.cacheSealKey(label, objs[0])
			return nil
		default:
			return fmt.Errorf("%w: sealing key %q: %d objects", ErrAmbiguousLabel, label, len(objs))
		}
		if err := h.labelInUse(sh, label); err != nil {
			return err
		}
		id, err := h.random(sh, 16)
		if err != nil {
			return err
		}
		k, err := h.p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, sealingKeyTemplate(label, id))
		if err != nil {
			return p11err("C_GenerateKey AES-256", err)
		}
		if err := h.checkSealPolicy(sh, k); err != nil {
			return errors.Join(err, h.destroy(sh, k))
		}
		h.cacheSealKey(label, k)
		h.log.Info("hsm sealing key generated", "label", label)
		return nil
	})
}

func (h *HSM) checkSealPolicy(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle) error {
	a, err := h.attrs(sh, o, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_VALUE_LEN, pkcs11.CKA_TOKEN,
		pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT)
	if err != nil {
		return err
	}
	if kt, ok := attrUlong(a[pkcs11.CKA_KEY_TYPE]); !ok || kt != pkcs11.CKK_AES {
		return fmt.Errorf("%w: key type %x is not AES", ErrKeyPolicy, a[pkcs11.CKA_KEY_TYPE])
	}
	if n, ok := attrUlong(a[pkcs11.CKA_VALUE_LEN]); !ok || n != sealKeyLen {
		return fmt.Errorf("%w: AES key of %d bytes, want %d", ErrKeyPolicy, n, sealKeyLen)
	}
	want := map[uint]bool{pkcs11.CKA_TOKEN: true, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false,
		pkcs11.CKA_ENCRYPT: true, pkcs11.CKA_DECRYPT: true}
	for t, w := range want {
		if v, ok := attrBool(a[t]); !ok || v != w {
			return fmt.Errorf("%w: attribute 0x%x is %v, want %v", ErrKeyPolicy, t, a[t], w)
		}
	}
	return nil
}

func (h *HSM) cacheSealKey(label string, o pkcs11.ObjectHandle) {
	h.cacheMu.Lock()
	h.sealKeys[label] = o
	h.cacheMu.Unlock()
}

// sealKey returns the sealing key labelled label, checked against the policy.
func (h *HSM) sealKey(sh pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, error) {
	h.cacheMu.RLock()
	o, ok := h.sealKeys[label]
	h.cacheMu.RUnlock()
	if ok {
		return o, nil
	}
	o, err := h.findOne(sh, fmt.Sprintf("sealing key %q", label), sealKeyQuery(label))
	if err != nil {
		return 0, err
	}
	if err := h.checkSealPolicy(sh, o); err != nil {
		return 0, fmt.Errorf("sealing key %q: %w", label, err)
	}
	h.cacheSealKey(label, o)
	return o, nil
}

// Seal encrypts plaintext (at most MaxSealPlaintext bytes) under the sealing
// key labelled label with AES-256-GCM, binding aad (at most MaxSealAAD
// bytes), and returns a versioned blob (see the format above). The IV comes
// from the token's RNG. Only a token holding the same key can open the blob,
// and only with the same aad.
func (h *HSM) Seal(ctx context.Context, label string, plaintext, aad []byte) ([]byte, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	if len(plaintext) > MaxSealPlaintext {
		return nil, invalid("plaintext of %d bytes exceeds %d", len(plaintext), MaxSealPlaintext)
	}
	if len(aad) > MaxSealAAD {
		return nil, invalid("additional data of %d bytes exceeds %d", len(aad), MaxSealAAD)
	}
	var blob []byte
	err := h.do(ctx, "seal", func(sh pkcs11.SessionHandle) error {
		k, err := h.sealKey(sh, label)
		if err != nil {
			return err
		}
		iv, err := h.random(sh, sealIVSize)
		if err != nil {
			return err
		}
		params := pkcs11.NewGCMParams(iv, sealAAD(sealVersion1, aad), sealTagSize*8)
		defer params.Free()
		if err := h.p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, k); err != nil {
			return p11err("C_EncryptInit AES-GCM", err)
		}
		ct, err := h.p.Encrypt(sh, plaintext)
		if err != nil {
			return p11err("C_Encrypt AES-GCM", err)
		}
		if len(ct) != len(plaintext)+sealTagSize {
			return fmt.Errorf("%w: AES-GCM returned %d bytes for %d bytes of plaintext", ErrHSM, len(ct), len(plaintext))
		}
		// Some modules ignore the IV passed in and write their own.
		used := params.IV()
		if len(used) != sealIVSize {
			return fmt.Errorf("%w: AES-GCM used an IV of %d bytes, want %d", ErrHSM, len(used), sealIVSize)
		}
		blob = make([]byte, 0, 1+sealIVSize+len(ct))
		blob = append(blob, sealVersion1)
		blob = append(blob, used...)
		blob = append(blob, ct...)
		return nil
	})
	return blob, err
}

// Unseal opens a blob made by Seal under the sealing key labelled label with
// the same aad. A malformed blob fails with ErrSealedBlob before the token is
// involved; a wrong key, wrong aad or modified blob fails with ErrUnseal. The
// caller owns the returned plaintext and should zero it after use.
func (h *HSM) Unseal(ctx context.Context, label string, blob, aad []byte) ([]byte, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	if len(aad) > MaxSealAAD {
		return nil, invalid("additional data of %d bytes exceeds %d", len(aad), MaxSealAAD)
	}
	sb, err := parseSealedBlob(blob)
	if err != nil {
		h.report("unseal", err)
		return nil, err
	}
	var pt []byte
	err = h.do(ctx, "unseal", func(sh pkcs11.SessionHandle) error {
		k, err := h.sealKey(sh, label)
		if err != nil {
			return err
		}
		params := pkcs11.NewGCMParams(sb.iv, sealAAD(sb.version, aad), sealTagSize*8)
		defer params.Free()
		if err := h.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, k); err != nil {
			return p11err("C_DecryptInit AES-GCM", err)
		}
		out, err := h.p.Decrypt(sh, sb.ciphertext)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnseal, p11err("C_Decrypt AES-GCM", err))
		}
		if len(out) != len(sb.ciphertext)-sealTagSize {
			zero(out)
			return fmt.Errorf("%w: AES-GCM returned %d bytes for %d bytes of ciphertext", ErrHSM, len(out), len(sb.ciphertext))
		}
		pt = out
		return nil
	})
	return pt, err
}

// SealingKey binds an HSM to one sealing-key label. It satisfies the
// signer/bls Sealer interface.
type SealingKey struct {
	hsm   *HSM
	label string
}

// SealingKey returns the adapter sealing under the key labelled label. The
// key must exist (see EnsureSealingKey) by the time Seal or Unseal is called.
func (h *HSM) SealingKey(label string) SealingKey { return SealingKey{hsm: h, label: label} }

// Label returns the sealing key's label.
func (k SealingKey) Label() string { return k.label }

// Seal is HSM.Seal under the bound label.
func (k SealingKey) Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	return k.hsm.Seal(ctx, k.label, plaintext, aad)
}

// Unseal is HSM.Unseal under the bound label.
func (k SealingKey) Unseal(ctx context.Context, blob, aad []byte) ([]byte, error) {
	return k.hsm.Unseal(ctx, k.label, blob, aad)
}
