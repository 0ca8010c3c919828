package keysync

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	blst "github.com/supranational/blst/bindings/go"
)

// FuzzBLSPublic feeds arbitrary unwrapped plaintexts to the check that runs
// before a secret is sealed: it must never panic, must refuse everything
// that is not a 32-byte scalar in [1, r-1], and must agree with blst.
func FuzzBLSPublic(f *testing.F) {
	good, _ := blsKey("fuzz")
	f.Add(good)
	f.Add(make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Add(good[:31])
	f.Add(append(bytes.Clone(good), 0))
	f.Fuzz(func(t *testing.T, secret []byte) {
		pk, err := blsPublic(secret)
		var sk blst.SecretKey
		valid := len(secret) == 32 && sk.Deserialize(secret) != nil
		if !valid {
			if err == nil || !errors.Is(err, ErrWrappedMismatch) {
				t.Fatalf("accepted %x: %v", secret, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused a valid secret: %v", err)
		}
		if want := new(blst.P1Affine).From(&sk).Compress(); !bytes.Equal(pk[:], want) {
			t.Fatalf("public key %x, blst says %x", pk, want)
		}
	})
}

// FuzzEdLabel checks that isEdLabel accepts exactly the labels EdLabel
// produces.
func FuzzEdLabel(f *testing.F) {
	f.Add(EdLabel(make([]byte, 32)))
	f.Add("regent-wrap")
	f.Add(EdLabel(bytes.Repeat([]byte{0xab}, 32))[:63] + "G")
	f.Fuzz(func(t *testing.T, label string) {
		b, err := hex.DecodeString(label)
		want := err == nil && len(b) == 32 && EdLabel(b) == label
		if got := isEdLabel(label); got != want {
			t.Fatalf("isEdLabel(%q) = %v, want %v", label, got, want)
		}
	})
}
