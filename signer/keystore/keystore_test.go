package keystore

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// EIP-2335 test vectors (values transcribed from the EIP's "Test Cases").
const (
	vectorPassword        = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑"
	vectorEncodedPassword = "7465737470617373776f7264f09f9491"
	vectorSecret          = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
	vectorPubkey          = "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07"
	vectorSalt            = "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"
	vectorIV              = "264daa3f303d7259501c93d997d84fe6"
)

type vector struct {
	name     string
	kdf      string // the kdf module's function and params
	kdfSpec  KDF
	checksum string
	cipher   string
	uuid     string
	path     string
}

var vectors = []vector{
	{
		name:     "scrypt",
		kdf:      `"function": "scrypt", "params": {"dklen": 32, "n": 262144, "p": 1, "r": 8, "salt": "` + vectorSalt + `"}`,
		kdfSpec:  KDF{Function: "scrypt", N: 262144, R: 8, P: 1},
		checksum: "d2217fe5f3e9a1e34581ef8a78f7c9928e436d36dacc5e846690a5581e8ea484",
		cipher:   "06ae90d55fe0a6e9c5c3bc5b170827b2e5cce3929ed3f116c2811e6366dfe20f",
		uuid:     "1d85ae20-35c5-4611-98e8-aa14a633906f",
		path:     "m/12381/60/3141592653/589793238",
	},
	{
		name:     "pbkdf2",
		kdf:      `"function": "pbkdf2", "params": {"dklen": 32, "c": 262144, "prf": "hmac-sha256", "salt": "` + vectorSalt + `"}`,
		kdfSpec:  KDF{Function: "pbkdf2", C: 262144},
		checksum: "8a9f5d9912ed7e75ea794bc5a89bca5f193721d30868ade6f73043c6ea6febf1",
		cipher:   "cee03fde2af33149775b7223e7845e4fb2c8ae1792e5f99fe9ecf474cc8c16ad",
		uuid:     "64625def-3331-4eea-ab6f-782f3ed16a83",
		path:     "m/12381/60/0/0",
	},
}

func (v vector) json() []byte {
	return []byte(`{
  "crypto": {
    "kdf": {` + v.kdf + `, "message": ""},
    "checksum": {"function": "sha256", "params": {}, "message": "` + v.checksum + `"},
    "cipher": {"function": "aes-128-ctr", "params": {"iv": "` + vectorIV + `"}, "message": "` + v.cipher + `"}
  },
  "description": "EIP-2335 ` + v.name + ` test vector",
  "pubkey": "` + vectorPubkey + `",
  "path": "` + v.path + `",
  "uuid": "` + v.uuid + `",
  "version": 4
}`)
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEIP2335Vectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			secret, pub, err := Decrypt(v.json(), vectorPassword)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(secret, unhex(t, vectorSecret)) {
				t.Fatalf("secret %x", secret)
			}
			if !bytes.Equal(pub, unhex(t, vectorPubkey)) {
				t.Fatalf("pubkey %x", pub)
			}
			if v.kdfSpec.Function == "pbkdf2" { // the scrypt run would only repeat the same check, slowly
				_, _, err = Decrypt(v.json(), "testpassword")
				if !errors.Is(err, ErrWrongPassword) {
					t.Fatalf("wrong password: %v", err)
				}
			}
			// Encrypt with the vector's salt and IV reproduces the vector.
			random := append(append(unhex(t, vectorSalt), unhex(t, vectorIV)...), make([]byte, 16)...)
			out, err := encrypt(secret, vectorPassword, v.kdfSpec, bytes.NewReader(random))
			if err != nil {
				t.Fatal(err)
			}
			var ks Keystore
			if err := json.Unmarshal(out, &ks); err != nil {
				t.Fatal(err)
			}
			if ks.Crypto.Checksum.Message != v.checksum || ks.Crypto.Cipher.Message != v.cipher || ks.Pubkey != vectorPubkey {
				t.Fatalf("Encrypt produced checksum %s cipher %s pubkey %s", ks.Crypto.Checksum.Message, ks.Crypto.Cipher.Message, ks.Pubkey)
			}
		})
	}
}

func TestNormalizePassword(t *testing.T) {
	tests := []struct {
		name, in string
		want     []byte
		wantErr  bool
	}{
		{"eip vector", vectorPassword, unhex(t, vectorEncodedPassword), false},
		{"ascii", "correct horse", []byte("correct horse"), false},
		{"C0 stripped", "\x00a\x01b\x1fc\td\ne", []byte("abcde"), false},
		{"delete stripped", "ab\x7fc", []byte("abc"), false},
		{"C1 stripped", "a\u0080b\u0085c\u009fd", []byte("abcd"), false},
		{"U+00A0 kept as NFKD space", "a\u00a0b", []byte("a b"), false},
		{"NFKD decomposes", "\u00e9", []byte("e\u0301"), false},
		{"ligature", "\ufb01", []byte("fi"), false},
		{"vector with control codes", "\x7f" + vectorPassword + "\u0085\x00", unhex(t, vectorEncodedPassword), false},
		{"empty", "", []byte{}, false},
		{"invalid utf8", "a\xffb", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizePassword(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidPassword) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("NormalizePassword(%q) = %x, %v; want %x", tc.in, got, err, tc.want)
			}
		})
	}
}

// cheap returns a valid keystore with tiny KDF parameters.
func cheap(t testing.TB, kdf KDF, password string) ([]byte, []byte) {
	t.Helper()
	secret := unhex(t, vectorSecret)
	out, err := Encrypt(secret, password, kdf)
	if err != nil {
		t.Fatal(err)
	}
	return out, secret
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	for _, kdf := range []KDF{{Function: "scrypt", N: 16, R: 8, P: 1}, {Function: "pbkdf2", C: 16}} {
		t.Run(kdf.Function, func(t *testing.T) {
			out, secret := cheap(t, kdf, "pässwörd\u00a0")
			got, pub, err := Decrypt(out, "pässwörd\u00a0")
			if err != nil || !bytes.Equal(got, secret) || hex.EncodeToString(pub) != vectorPubkey {
				t.Fatalf("Decrypt = %x %x %v", got, pub, err)
			}
			// Same password in another normal form.
			if _, _, err := Decrypt(out, "pa\u0308sswo\u0308rd "); err != nil {
				t.Fatalf("NFKD-equivalent password refused: %v", err)
			}
			if _, _, err := Decrypt(out, "passwort"); !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("wrong password: %v", err)
			}
			var ks Keystore
			if err := json.Unmarshal(out, &ks); err != nil {
				t.Fatal(err)
			}
			if ks.Version != 4 || len(ks.UUID) != 36 || ks.UUID[14] != '4' {
				t.Fatalf("keystore header %+v", ks)
			}
			again, _ := cheap(t, kdf, "pässwörd")
			if bytes.Equal(again, out) {
				t.Fatalf("two encryptions are identical")
			}
		})
	}
}

func TestEncryptRejects(t *testing.T) {
	order := unhex(t, "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001")
	tests := []struct {
		name     string
		secret   []byte
		password string
		kdf      KDF
		want     error
	}{
		{"zero secret", make([]byte, 32), "p", KDF{Function: "pbkdf2", C: 1}, ErrInvalidSecret},
		{"secret = r", order, "p", KDF{Function: "pbkdf2", C: 1}, ErrInvalidSecret},
		{"short secret", make([]byte, 31), "p", KDF{Function: "pbkdf2", C: 1}, ErrInvalidSecret},
		{"unknown kdf", unhex(t, vectorSecret), "p", KDF{Function: "argon2"}, ErrUnsupported},
		{"scrypt n too big", unhex(t, vectorSecret), "p", KDF{Function: "scrypt", N: 1 << 19, R: 8, P: 1}, ErrUnsupported},
		{"scrypt n not power of two", unhex(t, vectorSecret), "p", KDF{Function: "scrypt", N: 100, R: 8, P: 1}, ErrMalformed},
		{"pbkdf2 c zero", unhex(t, vectorSecret), "p", KDF{Function: "pbkdf2"}, ErrMalformed},
		{"invalid password", unhex(t, vectorSecret), "\xff", KDF{Function: "pbkdf2", C: 1}, ErrInvalidPassword},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Encrypt(tc.secret, tc.password, tc.kdf)
			if out != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Encrypt = %d bytes, %v; want %v", len(out), err, tc.want)
			}
		})
	}
}

// mutate returns the cheap pbkdf2 keystore with one JSON edit applied.
func mutate(t *testing.T, base []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(base, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipHex changes the i-th hex digit of s to another hex digit.
func flipHex(s string, i int) string {
	c := []byte(s)
	if c[i] == '0' {
		c[i] = '1'
	} else {
		c[i] = '0'
	}
	return string(c)
}

func mod(m map[string]any, name string) map[string]any {
	return m["crypto"].(map[string]any)[name].(map[string]any)
}

func params(m map[string]any, name string) map[string]any {
	return mod(m, name)["params"].(map[string]any)
}

func TestDecryptRejects(t *testing.T) {
	base, _ := cheap(t, KDF{Function: "pbkdf2", C: 2}, "pw")
	scryptBase, _ := cheap(t, KDF{Function: "scrypt", N: 4, R: 1, P: 1}, "pw")
	_, otherPub := func() ([]byte, []byte) {
		s := unhex(t, vectorSecret)
		s[31] ^= 1
		p, err := publicKey(s)
		if err != nil {
			t.Fatal(err)
		}
		return s, p
	}()
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"not json", []byte("{"), ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"json array", []byte("[]"), ErrMalformed},
		{"trailing data", append(bytes.Clone(base), "{}"...), ErrMalformed},
		{"too large", append(bytes.Clone(base), bytes.Repeat([]byte(" "), maxKeystoreLen)...), ErrMalformed},
		{"version 3", mutate(t, base, func(m map[string]any) { m["version"] = 3 }), ErrUnsupported},
		{"version missing", mutate(t, base, func(m map[string]any) { delete(m, "version") }), ErrMalformed},
		{"version string", mutate(t, base, func(m map[string]any) { m["version"] = "4" }), ErrMalformed},
		{"crypto missing", mutate(t, base, func(m map[string]any) { delete(m, "crypto") }), ErrMalformed},
		{"kdf missing", mutate(t, base, func(m map[string]any) { delete(m["crypto"].(map[string]any), "kdf") }), ErrMalformed},
		{"cipher missing", mutate(t, base, func(m map[string]any) { delete(m["crypto"].(map[string]any), "cipher") }), ErrMalformed},
		{"checksum message missing", mutate(t, base, func(m map[string]any) { delete(mod(m, "checksum"), "message") }), ErrMalformed},
		{"kdf params missing", mutate(t, base, func(m map[string]any) { delete(mod(m, "kdf"), "params") }), ErrMalformed},
		{"kdf argon2", mutate(t, base, func(m map[string]any) { mod(m, "kdf")["function"] = "argon2id" }), ErrUnsupported},
		{"prf sha512", mutate(t, base, func(m map[string]any) { params(m, "kdf")["prf"] = "hmac-sha512" }), ErrUnsupported},
		{"prf missing", mutate(t, base, func(m map[string]any) { delete(params(m, "kdf"), "prf") }), ErrMalformed},
		{"c zero", mutate(t, base, func(m map[string]any) { params(m, "kdf")["c"] = 0 }), ErrMalformed},
		{"c negative", mutate(t, base, func(m map[string]any) { params(m, "kdf")["c"] = -1 }), ErrMalformed},
		{"c too big", mutate(t, base, func(m map[string]any) { params(m, "kdf")["c"] = 1<<22 + 1 }), ErrUnsupported},
		{"c float", mutate(t, base, func(m map[string]any) { params(m, "kdf")["c"] = 2.5 }), ErrMalformed},
		{"dklen 16", mutate(t, base, func(m map[string]any) { params(m, "kdf")["dklen"] = 16 }), ErrUnsupported},
		{"dklen missing", mutate(t, base, func(m map[string]any) { delete(params(m, "kdf"), "dklen") }), ErrMalformed},
		{"salt not hex", mutate(t, base, func(m map[string]any) { params(m, "kdf")["salt"] = "xyz" }), ErrMalformed},
		{"salt too long", mutate(t, base, func(m map[string]any) { params(m, "kdf")["salt"] = strings.Repeat("ab", maxSaltLen+1) }), ErrUnsupported},
		{"scrypt n too big", mutate(t, scryptBase, func(m map[string]any) { params(m, "kdf")["n"] = 1 << 19 }), ErrUnsupported},
		{"scrypt n not power of two", mutate(t, scryptBase, func(m map[string]any) { params(m, "kdf")["n"] = 6 }), ErrMalformed},
		{"scrypt n one", mutate(t, scryptBase, func(m map[string]any) { params(m, "kdf")["n"] = 1 }), ErrMalformed},
		{"scrypt memory too big", mutate(t, scryptBase, func(m map[string]any) {
			params(m, "kdf")["n"] = 1 << 18
			params(m, "kdf")["r"] = 16
		}), ErrUnsupported},
		{"scrypt cpu too big", mutate(t, scryptBase, func(m map[string]any) {
			params(m, "kdf")["n"] = 1 << 18
			params(m, "kdf")["r"] = 8
			params(m, "kdf")["p"] = 4
		}), ErrUnsupported},
		{"scrypt r zero", mutate(t, scryptBase, func(m map[string]any) { params(m, "kdf")["r"] = 0 }), ErrMalformed},
		{"scrypt p missing", mutate(t, scryptBase, func(m map[string]any) { delete(params(m, "kdf"), "p") }), ErrMalformed},
		{"scrypt p huge", mutate(t, scryptBase, func(m map[string]any) { params(m, "kdf")["p"] = 1 << 40 }), ErrUnsupported},
		{"checksum sha512", mutate(t, base, func(m map[string]any) { mod(m, "checksum")["function"] = "sha512" }), ErrUnsupported},
		{"checksum params not object", mutate(t, base, func(m map[string]any) { mod(m, "checksum")["params"] = []int{} }), ErrMalformed},
		{"checksum short", mutate(t, base, func(m map[string]any) { mod(m, "checksum")["message"] = "abcd" }), ErrMalformed},
		{"checksum flipped", mutate(t, base, func(m map[string]any) {
			mod(m, "checksum")["message"] = flipHex(mod(m, "checksum")["message"].(string), 0)
		}), ErrWrongPassword},
		{"cipher aes-256-gcm", mutate(t, base, func(m map[string]any) { mod(m, "cipher")["function"] = "aes-256-gcm" }), ErrUnsupported},
		{"iv short", mutate(t, base, func(m map[string]any) { params(m, "cipher")["iv"] = "00" }), ErrMalformed},
		{"iv missing", mutate(t, base, func(m map[string]any) { delete(params(m, "cipher"), "iv") }), ErrMalformed},
		{"cipher message short", mutate(t, base, func(m map[string]any) {
			mod(m, "cipher")["message"] = mod(m, "cipher")["message"].(string)[:62]
		}), ErrMalformed},
		{"cipher message flipped", mutate(t, base, func(m map[string]any) {
			mod(m, "cipher")["message"] = flipHex(mod(m, "cipher")["message"].(string), 5)
		}), ErrWrongPassword},
		{"pubkey short", mutate(t, base, func(m map[string]any) { m["pubkey"] = "abcd" }), ErrMalformed},
		{"pubkey not hex", mutate(t, base, func(m map[string]any) { m["pubkey"] = strings.Repeat("zz", 48) }), ErrMalformed},
		{"pubkey of another key", mutate(t, base, func(m map[string]any) { m["pubkey"] = hex.EncodeToString(otherPub) }), ErrPubkeyMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret, pub, err := Decrypt(tc.in, "pw")
			if secret != nil || pub != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Decrypt = %x %x %v; want %v", secret, pub, err, tc.want)
			}
		})
	}
	t.Run("optional fields", func(t *testing.T) {
		for _, in := range [][]byte{
			mutate(t, base, func(m map[string]any) { delete(m, "pubkey") }),
			mutate(t, base, func(m map[string]any) { m["pubkey"] = "0x" + m["pubkey"].(string) }),
			mutate(t, base, func(m map[string]any) { delete(m, "uuid"); delete(m, "path"); delete(m, "description") }),
			mutate(t, base, func(m map[string]any) { m["name"] = "extra field" }),
		} {
			if _, pub, err := Decrypt(in, "pw"); err != nil || hex.EncodeToString(pub) != vectorPubkey {
				t.Fatalf("Decrypt = %x, %v", pub, err)
			}
		}
	})
}

func TestDecryptInvalidPassword(t *testing.T) {
	base, _ := cheap(t, KDF{Function: "pbkdf2", C: 1}, "pw")
	if _, _, err := Decrypt(base, "p\xffw"); !errors.Is(err, ErrInvalidPassword) {
		t.Fatalf("err %v", err)
	}
}

func FuzzDecrypt(f *testing.F) {
	for _, kdf := range []KDF{{Function: "scrypt", N: 2, R: 1, P: 1}, {Function: "pbkdf2", C: 1}} {
		out, err := Encrypt(mustHex(vectorSecret), "pw", kdf)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(out, "pw")
		f.Add(out, "wrong")
	}
	f.Add([]byte(`{"version":4,"crypto":{}}`), "")
	f.Add([]byte(`null`), "")
	// Fuzzing uses tighter KDF bounds than Decrypt so each input stays cheap;
	// the parsing and checks are the same code.
	lim := limits{maxScryptN: 1 << 8, maxScryptR: 8, maxScryptP: 2, maxScryptNR: 1 << 10, maxScryptNRP: 1 << 11, maxPBKDF2C: 1 << 8}
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		secret, pub, err := decrypt(data, password, lim)
		if err != nil {
			if secret != nil || pub != nil {
				t.Fatalf("partial result with error")
			}
			for _, s := range []error{ErrMalformed, ErrUnsupported, ErrWrongPassword, ErrPubkeyMismatch, ErrInvalidPassword} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		want, err := publicKey(secret)
		if err != nil || !bytes.Equal(want, pub) {
			t.Fatalf("returned a secret that does not match its public key")
		}
	})
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
