package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// KDF selects the key derivation for Encrypt.
type KDF struct {
	// Function is "scrypt" or "pbkdf2".
	Function string
	// N, R, P are the scrypt parameters.
	N, R, P int
	// C is the PBKDF2-HMAC-SHA256 iteration count.
	C int
}

// ScryptKDF returns the standard scrypt parameters (n=2^18, r=8, p=1), as
// used by staking-deposit-cli.
func ScryptKDF() KDF { return KDF{Function: "scrypt", N: 1 << 18, R: 8, P: 1} }

// PBKDF2KDF returns the standard PBKDF2 parameters (c=2^18, HMAC-SHA256).
func PBKDF2KDF() KDF { return KDF{Function: "pbkdf2", C: 1 << 18} }

// Encrypt returns an EIP-2335 keystore (JSON) protecting secret, a 32-byte
// BLS secret key, with password. Salt (32 bytes), IV and UUID (v4) are
// random; path and description are empty. KDF parameters must lie within the
// bounds Decrypt accepts (ErrUnsupported / ErrMalformed otherwise); there is
// no lower bound, so tests may use cheap parameters, but keystores that leave
// the process should use ScryptKDF or PBKDF2KDF.
func Encrypt(secret []byte, password string, kdf KDF) ([]byte, error) {
	return encrypt(secret, password, kdf, rand.Reader)
}

func encrypt(secret []byte, password string, kdf KDF, rnd io.Reader) ([]byte, error) {
	pub, err := publicKey(secret)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSecret, err)
	}
	pw, err := NormalizePassword(password)
	if err != nil {
		return nil, err
	}
	defer clear(pw)
	random := make([]byte, 32+ivLen+16)
	if _, err := io.ReadFull(rnd, random); err != nil {
		return nil, fmt.Errorf("keystore: random source: %w", err)
	}
	salt, iv, id := random[:32], random[32:32+ivLen], random[32+ivLen:]
	spec := kdfSpec{function: kdf.Function, n: kdf.N, r: kdf.R, p: kdf.P, c: kdf.C, salt: salt}
	if err := spec.check(defaultLimits()); err != nil {
		return nil, err
	}
	var params any
	switch kdf.Function {
	case "scrypt":
		params = map[string]any{"dklen": dkLen, "n": kdf.N, "r": kdf.R, "p": kdf.P, "salt": hex.EncodeToString(salt)}
	case "pbkdf2":
		params = map[string]any{"dklen": dkLen, "c": kdf.C, "prf": "hmac-sha256", "salt": hex.EncodeToString(salt)}
	}
	dk, err := spec.derive(pw)
	if err != nil {
		return nil, fmt.Errorf("%w: kdf: %v", ErrUnsupported, err)
	}
	defer clear(dk)
	ct := make([]byte, len(secret))
	if err := aesCTR(dk[:16], iv, ct, secret); err != nil {
		return nil, err
	}
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	// RFC 4122 version 4 UUID.
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	ks := Keystore{
		Crypto: Crypto{
			KDF:      Module{Function: kdf.Function, Params: raw(params), Message: ""},
			Checksum: Module{Function: "sha256", Params: json.RawMessage(`{}`), Message: hex.EncodeToString(checksum(dk, ct))},
			Cipher:   Module{Function: "aes-128-ctr", Params: raw(map[string]string{"iv": hex.EncodeToString(iv)}), Message: hex.EncodeToString(ct)},
		},
		Pubkey:  hex.EncodeToString(pub),
		Path:    "",
		UUID:    fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16]),
		Version: Version,
	}
	return json.MarshalIndent(ks, "", "  ")
}
