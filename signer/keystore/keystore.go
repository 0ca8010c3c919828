package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/supranational/blst/bindings/go"
	"golang.org/x/crypto/pbkdf2"
	"golang.org/x/crypto/scrypt"
	"golang.org/x/text/unicode/norm"
)

// Sentinel errors; match with errors.Is.
var (
	// ErrWrongPassword: the password's checksum does not match.
	ErrWrongPassword = errors.New("keystore: wrong password")
	// ErrMalformed: the file is not a well-formed EIP-2335 keystore holding
	// a BLS secret key.
	ErrMalformed = errors.New("keystore: malformed keystore")
	// ErrUnsupported: a well-formed keystore this package does not handle:
	// another version, KDF, PRF, checksum or cipher, or KDF parameters
	// beyond the documented bounds.
	ErrUnsupported = errors.New("keystore: unsupported keystore")
	// ErrPubkeyMismatch: the decrypted secret's public key differs from the
	// keystore's "pubkey" field.
	ErrPubkeyMismatch = errors.New("keystore: secret does not match pubkey")
	// ErrInvalidPassword: the password is not valid UTF-8.
	ErrInvalidPassword = errors.New("keystore: password is not valid UTF-8")
	// ErrInvalidSecret: Encrypt was given something that is not a BLS secret
	// key.
	ErrInvalidSecret = errors.New("keystore: invalid secret key")
)

// Format constants.
const (
	Version        = 4
	SecretKeySize  = 32
	PublicKeySize  = 48
	dkLen          = 32
	ivLen          = 16
	maxSaltLen     = 1024
	maxKeystoreLen = 64 << 10
)

// limits bounds the KDF parameters Decrypt accepts.
type limits struct {
	maxScryptN, maxScryptR, maxScryptP int
	maxScryptNR, maxScryptNRP          int
	maxPBKDF2C                         int
}

// defaultLimits are the documented bounds (see the package documentation).
func defaultLimits() limits {
	return limits{
		maxScryptN: 1 << 18, maxScryptR: 32, maxScryptP: 16,
		maxScryptNR: 1 << 21, maxScryptNRP: 1 << 22,
		maxPBKDF2C: 1 << 22,
	}
}

// Keystore is the JSON form of an EIP-2335 keystore.
type Keystore struct {
	Crypto      Crypto `json:"crypto"`
	Description string `json:"description"`
	Pubkey      string `json:"pubkey"`
	Path        string `json:"path"`
	UUID        string `json:"uuid"`
	Version     int    `json:"version"`
}

// Crypto holds the three modules of a keystore.
type Crypto struct {
	KDF      Module `json:"kdf"`
	Checksum Module `json:"checksum"`
	Cipher   Module `json:"cipher"`
}

// Module is an EIP-2335 module: a function, its parameters and its message.
type Module struct {
	Function string          `json:"function"`
	Params   json.RawMessage `json:"params"`
	Message  string          `json:"message"`
}

// The decoding structs use pointers so that missing fields are detected.
type rawKeystore struct {
	Crypto  *rawCrypto `json:"crypto"`
	Pubkey  *string    `json:"pubkey"`
	Version *int       `json:"version"`
}

type rawCrypto struct {
	KDF      *rawModule `json:"kdf"`
	Checksum *rawModule `json:"checksum"`
	Cipher   *rawModule `json:"cipher"`
}

type rawModule struct {
	Function *string         `json:"function"`
	Params   json.RawMessage `json:"params"`
	Message  *string         `json:"message"`
}

type scryptParams struct {
	DKLen *int    `json:"dklen"`
	N     *int    `json:"n"`
	R     *int    `json:"r"`
	P     *int    `json:"p"`
	Salt  *string `json:"salt"`
}

type pbkdf2Params struct {
	DKLen *int    `json:"dklen"`
	C     *int    `json:"c"`
	PRF   *string `json:"prf"`
	Salt  *string `json:"salt"`
}

type cipherParams struct {
	IV *string `json:"iv"`
}

// kdfSpec is a validated KDF: function and parameters.
type kdfSpec struct {
	function string // "scrypt" or "pbkdf2"
	n, r, p  int
	c        int
	salt     []byte
}

// derive runs the KDF.
func (k kdfSpec) derive(password []byte) ([]byte, error) {
	switch k.function {
	case "scrypt":
		return scrypt.Key(password, k.salt, k.n, k.r, k.p, dkLen)
	case "pbkdf2":
		return pbkdf2.Key(password, k.salt, k.c, dkLen, sha256.New), nil
	}
	return nil, fmt.Errorf("%w: kdf %q", ErrUnsupported, k.function)
}

// check applies the bounds to k.
func (k kdfSpec) check(lim limits) error {
	if len(k.salt) > maxSaltLen {
		return fmt.Errorf("%w: kdf salt of %d bytes exceeds %d", ErrUnsupported, len(k.salt), maxSaltLen)
	}
	switch k.function {
	case "scrypt":
		if k.n < 2 || k.n&(k.n-1) != 0 {
			return fmt.Errorf("%w: scrypt n=%d is not a power of two greater than 1", ErrMalformed, k.n)
		}
		if k.r < 1 || k.p < 1 {
			return fmt.Errorf("%w: scrypt r=%d p=%d must be positive", ErrMalformed, k.r, k.p)
		}
		if k.n > lim.maxScryptN || k.r > lim.maxScryptR || k.p > lim.maxScryptP ||
			k.n*k.r > lim.maxScryptNR || k.n*k.r*k.p > lim.maxScryptNRP {
			return fmt.Errorf("%w: scrypt n=%d r=%d p=%d exceeds the bounds (n ≤ %d, r ≤ %d, p ≤ %d, n·r ≤ %d, n·r·p ≤ %d)",
				ErrUnsupported, k.n, k.r, k.p, lim.maxScryptN, lim.maxScryptR, lim.maxScryptP, lim.maxScryptNR, lim.maxScryptNRP)
		}
	case "pbkdf2":
		if k.c < 1 {
			return fmt.Errorf("%w: pbkdf2 c=%d must be positive", ErrMalformed, k.c)
		}
		if k.c > lim.maxPBKDF2C {
			return fmt.Errorf("%w: pbkdf2 c=%d exceeds %d", ErrUnsupported, k.c, lim.maxPBKDF2C)
		}
	default:
		return fmt.Errorf("%w: kdf %q (want scrypt or pbkdf2)", ErrUnsupported, k.function)
	}
	return nil
}

// parsed is a fully validated keystore, ready for key derivation.
type parsed struct {
	kdf      kdfSpec
	checksum []byte
	iv       []byte
	cipher   []byte
	pubkey   []byte // nil when the keystore has none
}

// decodeHex decodes a hex field (an optional 0x prefix is accepted).
func decodeHex(field, s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not hex: %v", ErrMalformed, field, err)
	}
	return b, nil
}

// strictUnmarshal decodes a JSON value into v; trailing data is an error.
func strictUnmarshal(field string, data []byte, v any) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: %s is missing", ErrMalformed, field)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, field, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: %s: trailing data", ErrMalformed, field)
	}
	return nil
}

// parse decodes and validates a keystore without any expensive work.
func parse(data []byte, lim limits) (*parsed, error) {
	if len(data) > maxKeystoreLen {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(data), maxKeystoreLen)
	}
	var ks rawKeystore
	if err := strictUnmarshal("keystore", data, &ks); err != nil {
		return nil, err
	}
	if ks.Version == nil {
		return nil, fmt.Errorf("%w: version is missing", ErrMalformed)
	}
	if *ks.Version != Version {
		return nil, fmt.Errorf("%w: version %d (want %d)", ErrUnsupported, *ks.Version, Version)
	}
	if ks.Crypto == nil || ks.Crypto.KDF == nil || ks.Crypto.Checksum == nil || ks.Crypto.Cipher == nil {
		return nil, fmt.Errorf("%w: crypto.kdf, crypto.checksum and crypto.cipher are required", ErrMalformed)
	}
	for _, m := range []struct {
		name string
		mod  *rawModule
	}{{"kdf", ks.Crypto.KDF}, {"checksum", ks.Crypto.Checksum}, {"cipher", ks.Crypto.Cipher}} {
		if m.mod.Function == nil || m.mod.Message == nil || len(m.mod.Params) == 0 {
			return nil, fmt.Errorf("%w: crypto.%s needs function, params and message", ErrMalformed, m.name)
		}
	}
	var p parsed
	var err error
	if p.kdf, err = parseKDF(ks.Crypto.KDF); err != nil {
		return nil, err
	}
	if err := p.kdf.check(lim); err != nil {
		return nil, err
	}

	cs := ks.Crypto.Checksum
	if *cs.Function != "sha256" {
		return nil, fmt.Errorf("%w: checksum function %q (want sha256)", ErrUnsupported, *cs.Function)
	}
	var empty map[string]json.RawMessage
	if err := strictUnmarshal("checksum.params", cs.Params, &empty); err != nil || empty == nil {
		return nil, fmt.Errorf("%w: checksum.params must be an object", ErrMalformed)
	}
	if p.checksum, err = decodeHex("checksum.message", *cs.Message); err != nil {
		return nil, err
	}
	if len(p.checksum) != sha256.Size {
		return nil, fmt.Errorf("%w: checksum.message is %d bytes, want %d", ErrMalformed, len(p.checksum), sha256.Size)
	}

	ci := ks.Crypto.Cipher
	if *ci.Function != "aes-128-ctr" {
		return nil, fmt.Errorf("%w: cipher %q (want aes-128-ctr)", ErrUnsupported, *ci.Function)
	}
	var cp cipherParams
	if err := strictUnmarshal("cipher.params", ci.Params, &cp); err != nil {
		return nil, err
	}
	if cp.IV == nil {
		return nil, fmt.Errorf("%w: cipher.params.iv is missing", ErrMalformed)
	}
	if p.iv, err = decodeHex("cipher.params.iv", *cp.IV); err != nil {
		return nil, err
	}
	if len(p.iv) != ivLen {
		return nil, fmt.Errorf("%w: cipher.params.iv is %d bytes, want %d", ErrMalformed, len(p.iv), ivLen)
	}
	if p.cipher, err = decodeHex("cipher.message", *ci.Message); err != nil {
		return nil, err
	}
	if len(p.cipher) != SecretKeySize {
		return nil, fmt.Errorf("%w: cipher.message is %d bytes; a BLS secret key is %d", ErrMalformed, len(p.cipher), SecretKeySize)
	}

	if ks.Pubkey != nil && *ks.Pubkey != "" {
		if p.pubkey, err = decodeHex("pubkey", *ks.Pubkey); err != nil {
			return nil, err
		}
		if len(p.pubkey) != PublicKeySize {
			return nil, fmt.Errorf("%w: pubkey is %d bytes, want %d", ErrMalformed, len(p.pubkey), PublicKeySize)
		}
	}
	return &p, nil
}

func parseKDF(m *rawModule) (kdfSpec, error) {
	k := kdfSpec{function: *m.Function}
	var (
		dk   *int
		salt *string
	)
	switch k.function {
	case "scrypt":
		var sp scryptParams
		if err := strictUnmarshal("kdf.params", m.Params, &sp); err != nil {
			return k, err
		}
		if sp.N == nil || sp.R == nil || sp.P == nil {
			return k, fmt.Errorf("%w: scrypt needs n, r and p", ErrMalformed)
		}
		k.n, k.r, k.p = *sp.N, *sp.R, *sp.P
		dk, salt = sp.DKLen, sp.Salt
	case "pbkdf2":
		var pp pbkdf2Params
		if err := strictUnmarshal("kdf.params", m.Params, &pp); err != nil {
			return k, err
		}
		if pp.C == nil || pp.PRF == nil {
			return k, fmt.Errorf("%w: pbkdf2 needs c and prf", ErrMalformed)
		}
		if *pp.PRF != "hmac-sha256" {
			return k, fmt.Errorf("%w: pbkdf2 prf %q (want hmac-sha256)", ErrUnsupported, *pp.PRF)
		}
		k.c = *pp.C
		dk, salt = pp.DKLen, pp.Salt
	default:
		return k, fmt.Errorf("%w: kdf %q (want scrypt or pbkdf2)", ErrUnsupported, k.function)
	}
	if dk == nil || salt == nil {
		return k, fmt.Errorf("%w: kdf needs dklen and salt", ErrMalformed)
	}
	if *dk != dkLen {
		return k, fmt.Errorf("%w: kdf dklen %d (want %d)", ErrUnsupported, *dk, dkLen)
	}
	var err error
	k.salt, err = decodeHex("kdf.params.salt", *salt)
	return k, err
}

// NormalizePassword applies EIP-2335 password processing: NFKD
// normalisation, removal of the C0 (U+0000–U+001F), Delete (U+007F) and C1
// (U+0080–U+009F) control codes, UTF-8 encoding. Space is kept.
func NormalizePassword(password string) ([]byte, error) {
	if !utf8.ValidString(password) {
		return nil, ErrInvalidPassword
	}
	out := make([]byte, 0, len(password))
	for _, r := range norm.NFKD.String(password) {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) {
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	return out, nil
}

// Decrypt opens an EIP-2335 keystore with password and returns the 32-byte
// BLS secret key and its 48-byte compressed public key. Everything is
// validated before the key derivation runs (see the package documentation
// for the bounds). The caller owns secret and should zero it after use.
func Decrypt(keystoreJSON []byte, password string) (secret, pubkey []byte, err error) {
	return decrypt(keystoreJSON, password, defaultLimits())
}

func decrypt(data []byte, password string, lim limits) (secret, pubkey []byte, err error) {
	p, err := parse(data, lim)
	if err != nil {
		return nil, nil, err
	}
	pw, err := NormalizePassword(password)
	if err != nil {
		return nil, nil, err
	}
	defer clear(pw)
	dk, err := p.kdf.derive(pw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: kdf: %v", ErrMalformed, err)
	}
	defer clear(dk)
	if subtle.ConstantTimeCompare(checksum(dk, p.cipher), p.checksum) != 1 {
		return nil, nil, ErrWrongPassword
	}
	secret = make([]byte, SecretKeySize)
	if err := aesCTR(dk[:16], p.iv, secret, p.cipher); err != nil {
		return nil, nil, fmt.Errorf("%w: aes-128-ctr: %v", ErrMalformed, err)
	}
	pub, err := publicKey(secret)
	if err != nil {
		clear(secret)
		return nil, nil, fmt.Errorf("%w: decrypted secret: %v", ErrMalformed, err)
	}
	if p.pubkey != nil && !bytes.Equal(pub, p.pubkey) {
		clear(secret)
		return nil, nil, fmt.Errorf("%w: keystore pubkey %x, secret's public key %x", ErrPubkeyMismatch, p.pubkey, pub)
	}
	return secret, pub, nil
}

// checksum is SHA-256(dk[16:32] || cipher message), compared by the caller in
// constant time.
func checksum(dk, msg []byte) []byte {
	h := sha256.New()
	h.Write(dk[16:32])
	h.Write(msg)
	return h.Sum(nil)
}

func aesCTR(key, iv, dst, src []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	cipher.NewCTR(block, iv).XORKeyStream(dst, src)
	return nil
}

// publicKey validates a secret key and returns its compressed public key.
func publicKey(secret []byte) ([]byte, error) {
	var sk blst.SecretKey
	defer sk.Zeroize()
	if len(secret) != SecretKeySize || sk.Deserialize(secret) == nil {
		return nil, errors.New("not a BLS12-381 secret key in [1, r-1]")
	}
	return new(blst.P1Affine).From(&sk).Compress(), nil
}
