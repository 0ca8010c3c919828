package opsig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/failoverpb"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

func edKey(t testing.TB, seed string) ed25519.PrivateKey {
	t.Helper()
	s := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(s[:])
}

func p256Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCmd(t testing.TB, op string) *failoverpb.OperatorCommand {
	t.Helper()
	// A fixed nonce stream: fuzz workers rebuild the same seed command.
	n := sha256.Sum256([]byte("nonce " + op))
	cmd, err := Builder{ClusterID: "c1", OperatorID: op, Now: clock, Rand: bytes.NewReader(n[:])}.New()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Action = &failoverpb.OperatorCommand_RequestHandover{RequestHandover: &failoverpb.RequestHandover{To: "dc2", Reason: "r"}}
	return cmd
}

// signerOnly hides everything but crypto.Signer, as a PKCS#11 key does.
type signerOnly struct{ s crypto.Signer }

func (o signerOnly) Public() crypto.PublicKey { return o.s.Public() }
func (o signerOnly) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, d, opts)
}

func TestSignVerify(t *testing.T) {
	keys := []struct {
		name string
		s    crypto.Signer
	}{
		{"ed25519", edKey(t, "a")},
		{"p256", p256Key(t)},
		{"ed25519 behind crypto.Signer", signerOnly{edKey(t, "b")}},
		{"p256 behind crypto.Signer", signerOnly{p256Key(t)}},
	}
	for _, k := range keys {
		t.Run(k.name, func(t *testing.T) {
			sc, err := SignCommand(newCmd(t, "alice"), k.s)
			if err != nil {
				t.Fatal(err)
			}
			der, err := MarshalPublicKey(k.s.Public())
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifySignature(der, sc.Body, sc.Signatures[0].Signature); err != nil {
				t.Fatalf("verify: %v", err)
			}
			// Changed body, changed signature, other key: refused.
			body := append([]byte(nil), sc.Body...)
			body[len(body)-1] ^= 1
			if err := VerifySignature(der, body, sc.Signatures[0].Signature); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("changed body: %v", err)
			}
			sig := append([]byte(nil), sc.Signatures[0].Signature...)
			sig[len(sig)/2] ^= 1
			if err := VerifySignature(der, sc.Body, sig); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("changed signature: %v", err)
			}
			other, _ := MarshalPublicKey(edKey(t, "other").Public())
			if err := VerifySignature(other, sc.Body, sc.Signatures[0].Signature); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("other key: %v", err)
			}
		})
	}
}

// TestDomainSeparation: a signature over the bare body (or any other use
// of the key) is not an operator-command signature.
func TestDomainSeparation(t *testing.T) {
	k := edKey(t, "a")
	body, err := Marshal(newCmd(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(k.Public(), body, ed25519.Sign(k, body)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bare-body signature: %v", err)
	}
	if err := Verify(k.Public(), body, ed25519.Sign(k, Message(body))); err != nil {
		t.Fatalf("domain-separated signature: %v", err)
	}
}

func TestUnsupportedKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]crypto.Signer{"rsa": rsaKey, "p384": p384} {
		t.Run(name, func(t *testing.T) {
			if _, err := Sign(k, []byte("x")); !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("Sign: %v", err)
			}
			if _, err := MarshalPublicKey(k.Public()); !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("MarshalPublicKey: %v", err)
			}
			der, err := x509.MarshalPKIXPublicKey(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParsePublicKey(der); !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("ParsePublicKey: %v", err)
			}
			if err := VerifySignature(der, []byte("x"), []byte("y")); !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("VerifySignature: %v", err)
			}
		})
	}
	if _, err := ParsePublicKey([]byte("junk")); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("junk key: %v", err)
	}
	if _, err := Sign(nil, []byte("x")); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("nil signer: %v", err)
	}
}

// badSigner returns a signature that does not verify.
type badSigner struct{ ed25519.PrivateKey }

func (b badSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	s, err := b.PrivateKey.Sign(r, d, o)
	s[0] ^= 1
	return s, err
}

func TestSignChecksTheSigner(t *testing.T) {
	if _, err := Sign(badSigner{edKey(t, "x")}, []byte("body")); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("faulty signer: %v", err)
	}
}

func TestBuilder(t *testing.T) {
	tests := []struct {
		name string
		b    Builder
		ok   bool
	}{
		{"defaults", Builder{ClusterID: "c", OperatorID: "o", Now: clock}, true},
		{"max ttl", Builder{ClusterID: "c", OperatorID: "o", Now: clock, TTL: MaxExpiryWindow}, true},
		{"ttl too long", Builder{ClusterID: "c", OperatorID: "o", Now: clock, TTL: MaxExpiryWindow + time.Second}, false},
		{"negative ttl", Builder{ClusterID: "c", OperatorID: "o", Now: clock, TTL: -time.Second}, false},
		{"no clock", Builder{ClusterID: "c", OperatorID: "o"}, false},
		{"no cluster", Builder{OperatorID: "o", Now: clock}, false},
		{"no operator", Builder{ClusterID: "c", Now: clock}, false},
		{"long operator", Builder{ClusterID: "c", OperatorID: strings.Repeat("o", MaxID+1), Now: clock}, false},
		{"short random source", Builder{ClusterID: "c", OperatorID: "o", Now: clock, Rand: bytes.NewReader(make([]byte, 5))}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := tc.b.New()
			if tc.ok != (err == nil) {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidCommand) && !strings.Contains(err.Error(), "nonce") {
					t.Fatalf("error %v", err)
				}
				return
			}
			ttl := tc.b.TTL
			if ttl == 0 {
				ttl = DefaultTTL
			}
			if cmd.ExpiresUnixNano != t0.Add(ttl).UnixNano() || len(cmd.Nonce) != MaxNonce || cmd.ClusterId != "c" || cmd.OperatorId != "o" {
				t.Fatalf("command %+v", cmd)
			}
		})
	}
	// Nonces differ between commands.
	a, _ := Builder{ClusterID: "c", OperatorID: "o", Now: clock}.New()
	b, _ := Builder{ClusterID: "c", OperatorID: "o", Now: clock}.New()
	if bytes.Equal(a.Nonce, b.Nonce) {
		t.Fatal("two commands share a nonce")
	}
}

func TestMarshalIsCanonical(t *testing.T) {
	cmd := newCmd(t, "alice")
	a, err := Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeBody(a)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || !proto.Equal(cmd, back) {
		t.Fatal("encoding is not stable across a round trip")
	}
	cmd.Action = nil
	if _, err := Marshal(cmd); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("no action: %v", err)
	}
}

func TestDecodeBodyRejects(t *testing.T) {
	good := func(t *testing.T) *failoverpb.OperatorCommand { return newCmd(t, "alice") }
	enc := func(t *testing.T, c *failoverpb.OperatorCommand) []byte {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		body func(t *testing.T) []byte
	}{
		{"empty", func(*testing.T) []byte { return nil }},
		{"garbage", func(*testing.T) []byte { return []byte{0xff, 0xff, 0xff} }},
		{"too large", func(*testing.T) []byte { return make([]byte, MaxBody+1) }},
		{"unknown top-level field", func(t *testing.T) []byte {
			b := enc(t, good(t))
			b = protowire.AppendTag(b, 500, protowire.BytesType)
			return protowire.AppendBytes(b, []byte("x"))
		}},
		{"unknown nested field", func(t *testing.T) []byte {
			c := good(t)
			c.GetRequestHandover().ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 77, protowire.VarintType), 1))
			return enc(t, c)
		}},
		{"no cluster", func(t *testing.T) []byte { c := good(t); c.ClusterId = ""; return enc(t, c) }},
		{"short nonce", func(t *testing.T) []byte { c := good(t); c.Nonce = c.Nonce[:MinNonce-1]; return enc(t, c) }},
		{"long nonce", func(t *testing.T) []byte { c := good(t); c.Nonce = make([]byte, MaxNonce+1); return enc(t, c) }},
		{"no operator", func(t *testing.T) []byte { c := good(t); c.OperatorId = ""; return enc(t, c) }},
		{"no expiry", func(t *testing.T) []byte { c := good(t); c.ExpiresUnixNano = 0; return enc(t, c) }},
		{"no action", func(t *testing.T) []byte { c := good(t); c.Action = nil; return enc(t, c) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeBody(tc.body(t)); !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("err %v", err)
			}
		})
	}
}

func TestDecodeSignedAndCosign(t *testing.T) {
	sc, err := SignCommand(newCmd(t, "alice"), edKey(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Cosign(sc, "bob", p256Key(t)); err != nil {
		t.Fatal(err)
	}
	if err := Cosign(sc, "bob", p256Key(t)); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("second co-signature by bob: %v", err)
	}
	if err := Cosign(sc, "", edKey(t, "x")); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("anonymous co-signature: %v", err)
	}
	p, err := EncodeSigned(sc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSigned(p)
	if err != nil || len(back.Signatures) != 2 {
		t.Fatalf("decode: %v", err)
	}
	tests := []struct {
		name string
		edit func(sc *failoverpb.SignedCommand)
	}{
		{"no body", func(sc *failoverpb.SignedCommand) { sc.Body = nil }},
		{"no signatures", func(sc *failoverpb.SignedCommand) { sc.Signatures = nil }},
		{"too many signatures", func(sc *failoverpb.SignedCommand) {
			for len(sc.Signatures) <= MaxSignatures {
				sc.Signatures = append(sc.Signatures, sc.Signatures[0])
			}
		}},
		{"signature without operator", func(sc *failoverpb.SignedCommand) { sc.Signatures[0].OperatorId = "" }},
		{"empty signature", func(sc *failoverpb.SignedCommand) { sc.Signatures[1].Signature = nil }},
		{"huge signature", func(sc *failoverpb.SignedCommand) { sc.Signatures[1].Signature = make([]byte, 300) }},
		{"unknown field", func(sc *failoverpb.SignedCommand) {
			sc.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := proto.Clone(sc).(*failoverpb.SignedCommand)
			tc.edit(c)
			b, err := proto.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeSigned(b); !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("err %v", err)
			}
		})
	}
}

func FuzzDecodeBody(f *testing.F) {
	b, err := Marshal(newCmd(f, "alice"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		cmd, err := DecodeBody(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("error %v is not ErrInvalidCommand", err)
			}
			return
		}
		// Whatever decodes is well formed and re-encodes to a body that
		// decodes to the same command.
		again, err := Marshal(cmd)
		if err != nil {
			t.Fatalf("decoded command does not encode: %v", err)
		}
		back, err := DecodeBody(again)
		if err != nil || !proto.Equal(back, cmd) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeSigned(f *testing.F) {
	sc, err := SignCommand(newCmd(f, "alice"), edKey(f, "alice"))
	if err != nil {
		f.Fatal(err)
	}
	p, _ := EncodeSigned(sc)
	f.Add(p)
	f.Add([]byte{0x0a, 0x00})
	der, _ := MarshalPublicKey(edKey(f, "alice").Public())
	seedBody := sc.Body
	f.Fuzz(func(t *testing.T, payload []byte) {
		sc, err := DecodeSigned(payload)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("error %v is not ErrInvalidCommand", err)
			}
			return
		}
		if len(sc.Body) == 0 || len(sc.Signatures) == 0 || len(sc.Signatures) > MaxSignatures {
			t.Fatal("shape not enforced")
		}
		// Verification never panics and only accepts the real signer's
		// signature over the real body.
		for _, s := range sc.Signatures {
			if VerifySignature(der, sc.Body, s.Signature) == nil && !bytes.Equal(sc.Body, seedBody) {
				t.Fatal("a signature verified over a body alice never signed")
			}
		}
	})
}
