package bls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/regent-signer/regent/signer/hsm"
	"github.com/supranational/blst/bindings/go"
	"golang.org/x/sys/unix"
)

func TestSecretKeyLayout(t *testing.T) {
	// keyMemory relies on blst.SecretKey being exactly its 32 scalar bytes.
	if unsafe.Sizeof(blst.SecretKey{}) != secretKeySlot || unsafe.Alignof(blst.SecretKey{}) != 1 {
		t.Fatalf("blst.SecretKey is %d bytes aligned to %d", unsafe.Sizeof(blst.SecretKey{}), unsafe.Alignof(blst.SecretKey{}))
	}
	mem, err := newKeyMemory(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, pk := newSecret(t)
	if mem.key(1).Deserialize(secret) == nil || publicOf(mem.key(1)) != pk {
		t.Fatalf("key slot does not hold the key")
	}
	if !bytes.Equal(mem.buf[:32], make([]byte, 32)) || !bytes.Equal(mem.buf[64:96], make([]byte, 32)) {
		t.Fatalf("neighbouring slots were written")
	}
	mem.free()
	if mem.buf != nil || mem.mapped || mem.locked {
		t.Fatalf("memory kept after free: %+v", mem)
	}
	// free wipes before releasing; observable with heap-backed memory (mapped
	// memory is gone after free).
	heap := &keyMemory{buf: make([]byte, 2*secretKeySlot)}
	buf := heap.buf
	if heap.key(1).Deserialize(secret) == nil {
		t.Fatal("deserialize")
	}
	if bytes.Equal(buf, make([]byte, len(buf))) {
		t.Fatal("key not written")
	}
	heap.free()
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Fatalf("key bytes left after free: %x", buf)
	}
}

// verify checks sig with blst, independently of KeySet.
func verify(t *testing.T, pk PublicKey, root [32]byte, sig [96]byte) {
	t.Helper()
	p := new(blst.P1Affine).Uncompress(pk[:])
	if p == nil {
		t.Fatalf("public key does not decompress")
	}
	if !new(blst.P2Affine).VerifyCompressed(sig[:], true, pk[:], true, root[:], []byte(DST)) {
		t.Fatalf("signature does not verify for %s", pk)
	}
}

func TestPutUnsealSign(t *testing.T) {
	sealer := hsmSealers(t, 4, "dc1")[0]
	dir := filepath.Join(t.TempDir(), "keys")
	st, err := NewStore(dir, sealer, StoreOptions{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	secrets := map[PublicKey][]byte{}
	for range 12 {
		secret, want := newSecret(t)
		pk, err := st.Put(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if pk != want {
			t.Fatalf("Put returned %s, want %s", pk, want)
		}
		secrets[pk] = secret
	}
	listed, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(secrets) || !slices.IsSortedFunc(listed, func(a, b PublicKey) int { return bytes.Compare(a[:], b[:]) }) {
		t.Fatalf("List = %d keys (sorted: %v)", len(listed), slices.IsSortedFunc(listed, func(a, b PublicKey) int { return bytes.Compare(a[:], b[:]) }))
	}
	for _, pk := range listed {
		if _, ok := secrets[pk]; !ok {
			t.Fatalf("List has unknown key %s", pk)
		}
	}
	ks, err := st.UnsealAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Zero()
	if ks.Len() != len(secrets) || !slices.Equal(ks.PublicKeys(), listed) {
		t.Fatalf("key set holds %d keys", ks.Len())
	}
	for pk, secret := range secrets {
		root := [32]byte{1, 2, 3}
		copy(root[3:], pk[:20])
		sig, err := ks.Sign(pk, root)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, pk, root, sig)
		// Deterministic, and equal to signing with the original secret.
		var sk blst.SecretKey
		sk.Deserialize(secret)
		ref := new(blst.P2Affine).Sign(&sk, root[:], []byte(DST)).Compress()
		sk.Zeroize()
		if !bytes.Equal(sig[:], ref) {
			t.Fatalf("signature differs from blst reference")
		}
		if !ks.Has(pk) {
			t.Fatalf("Has(%s) false", pk)
		}
	}
	t.Logf("memory locked: %v", ks.MemoryLocked())
}

func TestSealedFileRevealsNothing(t *testing.T) {
	sealers := hsmSealers(t, 2, "dc1", "dc2")
	dir := t.TempDir()
	st, err := NewStore(dir, sealers[0], StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	secret, _ := newSecret(t)
	pk, err := st.Put(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, fileName(pk)))
	if err != nil {
		t.Fatal(err)
	}
	reversed := slices.Clone(secret)
	slices.Reverse(reversed)
	for i := 0; i+8 <= len(secret); i++ {
		if bytes.Contains(raw, secret[i:i+8]) || bytes.Contains(raw, reversed[i:i+8]) {
			t.Fatalf("sealed file contains 8 bytes of the secret at offset %d", i)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, fileName(pk))); fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", fi.Mode().Perm())
	}
	// Another region's HSM (its own sealing key, same label) cannot open it.
	other, err := NewStore(dir, sealers[1], StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := other.UnsealAll(ctx)
	if ks != nil || !errors.Is(err, ErrUnseal) || !errors.Is(err, hsm.ErrUnseal) {
		t.Fatalf("UnsealAll with another token = %v, %v; want ErrUnseal", ks, err)
	}
	// The right HSM still can.
	ks, err = st.UnsealAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ks.Zero()
}

func TestRenamedFileDoesNotOpen(t *testing.T) {
	sealer := hsmSealers(t, 2, "dc1")[0]
	dir := t.TempDir()
	st, err := NewStore(dir, sealer, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := newSecret(t)
	pkA, err := st.Put(t.Context(), secret)
	if err != nil {
		t.Fatal(err)
	}
	_, pkB := newSecret(t)
	// Key A's sealed bytes under key B's name: the AAD no longer matches.
	if err := os.Rename(filepath.Join(dir, fileName(pkA)), filepath.Join(dir, fileName(pkB))); err != nil {
		t.Fatal(err)
	}
	ks, err := st.UnsealAll(t.Context())
	if ks != nil || !errors.Is(err, ErrUnseal) {
		t.Fatalf("UnsealAll = %v, %v; want ErrUnseal", ks, err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(pkB.String())) {
		t.Fatalf("error %q does not name the key", err)
	}
}

func TestZero(t *testing.T) {
	st, err := NewStore(t.TempDir(), newFakeSealer(t), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := newSecret(t)
	pk, err := st.Put(t.Context(), secret)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := st.UnsealAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	root := [32]byte{42}
	if _, err := ks.Sign(pk, root); err != nil {
		t.Fatal(err)
	}
	_, unknown := newSecret(t)
	if _, err := ks.Sign(unknown, root); !errors.Is(err, ErrKeyNotLoaded) {
		t.Fatalf("Sign with unknown key: %v", err)
	}
	// Sign and Zero race; every Sign either succeeds with a valid signature
	// or fails with ErrKeyNotLoaded.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				sig, err := ks.Sign(pk, root)
				if err != nil {
					if !errors.Is(err, ErrKeyNotLoaded) {
						t.Errorf("Sign: %v", err)
					}
					return
				}
				verify(t, pk, root, sig)
			}
		})
	}
	ks.Zero()
	wg.Wait()
	if !ks.Zeroed() || ks.Has(pk) {
		t.Fatalf("key set not zeroed")
	}
	if _, err := ks.Sign(pk, root); !errors.Is(err, ErrKeyNotLoaded) {
		t.Fatalf("Sign after Zero: %v", err)
	}
	if ks.mem != nil {
		t.Fatalf("memory kept after Zero")
	}
	ks.Zero() // idempotent
	if len(ks.PublicKeys()) != 1 {
		t.Fatalf("public keys lost")
	}
}

func TestPutBadInputWritesNothing(t *testing.T) {
	order := blstOrder()
	tests := []struct {
		name   string
		secret []byte
		want   error
	}{
		{"empty", nil, ErrInvalidKey},
		{"short", make([]byte, 31), ErrInvalidKey},
		{"long", make([]byte, 33), ErrInvalidKey},
		{"zero", make([]byte, 32), ErrInvalidKey},
		{"group order", order, ErrInvalidKey},
		{"all ones", bytes.Repeat([]byte{0xff}, 32), ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := NewStore(dir, newFakeSealer(t), StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Put(t.Context(), tc.secret)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Put: %v, want %v", err, tc.want)
			}
			assertDir(t, dir, nil)
		})
	}
	t.Run("existing key", func(t *testing.T) {
		dir := t.TempDir()
		st, _ := NewStore(dir, newFakeSealer(t), StoreOptions{})
		secret, _ := newSecret(t)
		pk, err := st.Put(t.Context(), secret)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(filepath.Join(dir, fileName(pk)))
		again, err := st.Put(t.Context(), secret)
		if !errors.Is(err, ErrKeyExists) || again != pk {
			t.Fatalf("second Put = %s, %v", again, err)
		}
		after, _ := os.ReadFile(filepath.Join(dir, fileName(pk)))
		if !bytes.Equal(before, after) {
			t.Fatalf("file rewritten")
		}
	})
	t.Run("sealer fails", func(t *testing.T) {
		dir := t.TempDir()
		f := newFakeSealer(t)
		f.failSeal = errors.New("hsm down")
		st, _ := NewStore(dir, f, StoreOptions{})
		secret, _ := newSecret(t)
		if _, err := st.Put(t.Context(), secret); !errors.Is(err, ErrSeal) {
			t.Fatalf("Put: %v", err)
		}
		assertDir(t, dir, nil)
	})
	t.Run("sealed key does not open again", func(t *testing.T) {
		dir := t.TempDir()
		f := newFakeSealer(t)
		f.tamper = func(pt []byte) []byte { pt[0] ^= 1; return pt }
		st, _ := NewStore(dir, f, StoreOptions{})
		secret, _ := newSecret(t)
		if _, err := st.Put(t.Context(), secret); !errors.Is(err, ErrSeal) {
			t.Fatalf("Put: %v", err)
		}
		assertDir(t, dir, nil)
	})
}

// blstOrder returns the BLS12-381 group order r, big-endian.
func blstOrder() []byte {
	b := []byte{0x73, 0xed, 0xa7, 0x53, 0x29, 0x9d, 0x7d, 0x48, 0x33, 0x39, 0xd8, 0x08, 0x09, 0xa1, 0xd8, 0x05,
		0x53, 0xbd, 0xa4, 0x02, 0xff, 0xfe, 0x5b, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01}
	return b
}

func TestGroupOrderBoundary(t *testing.T) {
	// r-1 is the largest valid key; r is refused (checked above).
	rMinus1 := blstOrder()
	rMinus1[31]--
	if _, err := secretToPublic(rMinus1); err != nil {
		t.Fatalf("r-1 refused: %v", err)
	}
	one := make([]byte, 32)
	one[31] = 1
	if _, err := secretToPublic(one); err != nil {
		t.Fatalf("1 refused: %v", err)
	}
}

// assertDir checks the directory's file names.
func assertDir(t *testing.T, dir string, want []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("directory holds %v, want %v", got, want)
	}
}

func TestCorruptStore(t *testing.T) {
	secret, pk := newSecret(t)
	_, pk2 := newSecret(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string, f *fakeSealer)
		want  error // nil: UnsealAll succeeds
	}{
		{"clean", func(*testing.T, string, *fakeSealer) {}, nil},
		{"stray files ignored", func(t *testing.T, dir string, _ *fakeSealer) {
			write(t, dir, "README", []byte("x"))
			write(t, dir, ".tmp-123", []byte("x"))
		}, nil},
		{"uppercase name", func(t *testing.T, dir string, _ *fakeSealer) {
			write(t, dir, fmt.Sprintf("%X.sealed", pk2[:]), []byte("x"))
		}, ErrCorruptStore},
		{"short name", func(t *testing.T, dir string, _ *fakeSealer) { write(t, dir, "abcd.sealed", []byte("x")) }, ErrCorruptStore},
		{"non-hex name", func(t *testing.T, dir string, _ *fakeSealer) {
			write(t, dir, string(bytes.Repeat([]byte("z"), 96))+".sealed", []byte("x"))
		}, ErrCorruptStore},
		{"directory as key", func(t *testing.T, dir string, _ *fakeSealer) {
			if err := os.Mkdir(filepath.Join(dir, fileName(pk2)), 0o700); err != nil {
				t.Fatal(err)
			}
		}, ErrCorruptStore},
		{"oversized file", func(t *testing.T, dir string, _ *fakeSealer) {
			write(t, dir, fileName(pk2), make([]byte, maxSealedFile+1))
		}, ErrCorruptStore},
		{"truncated file", func(t *testing.T, dir string, _ *fakeSealer) {
			raw, _ := os.ReadFile(filepath.Join(dir, fileName(pk)))
			write(t, dir, fileName(pk), raw[:len(raw)-1])
		}, ErrUnseal},
		{"sealed content not a key", func(t *testing.T, dir string, f *fakeSealer) {
			f.tamper = func([]byte) []byte { return make([]byte, 32) }
		}, ErrCorruptStore},
		{"sealed content of wrong length", func(t *testing.T, dir string, f *fakeSealer) {
			f.tamper = func(pt []byte) []byte { return pt[:31] }
		}, ErrCorruptStore},
		{"sealed content is another key", func(t *testing.T, dir string, f *fakeSealer) {
			other, _ := newSecret(t)
			f.tamper = func([]byte) []byte { return other }
		}, ErrCorruptStore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := newFakeSealer(t)
			st, err := NewStore(dir, f, StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Put(t.Context(), secret); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir, f)
			ks, err := st.UnsealAll(t.Context())
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if ks.Len() != 1 {
					t.Fatalf("%d keys", ks.Len())
				}
				ks.Zero()
				return
			}
			if ks != nil || !errors.Is(err, tc.want) {
				t.Fatalf("UnsealAll = %v, %v; want %v", ks, err, tc.want)
			}
		})
	}
}

func write(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUnsealAllParallelAndFailClosed(t *testing.T) {
	dir := t.TempDir()
	f := newFakeSealer(t)
	st, err := NewStore(dir, f, StoreOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	var pks []PublicKey
	for range 60 {
		secret, _ := newSecret(t)
		pk, err := st.Put(t.Context(), secret)
		if err != nil {
			t.Fatal(err)
		}
		pks = append(pks, pk)
	}
	f.peak.Store(0)
	ks, err := st.UnsealAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p := f.peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak concurrency %d, want 1..3", p)
	}
	for _, pk := range pks {
		sig, err := ks.Sign(pk, [32]byte{7})
		if err != nil {
			t.Fatal(err)
		}
		verify(t, pk, [32]byte{7}, sig)
	}
	ks.Zero()

	// One failing key fails the whole call and names the key.
	bad := pks[17]
	f.failUnseal = func(aad []byte) error {
		if bytes.Equal(aad, bad[:]) {
			return errors.New("hsm: tag mismatch")
		}
		return nil
	}
	ks, err = st.UnsealAll(t.Context())
	if ks != nil || !errors.Is(err, ErrUnseal) || !bytes.Contains([]byte(err.Error()), []byte(bad.String())) {
		t.Fatalf("UnsealAll = %v, %v", ks, err)
	}
	f.failUnseal = nil

	// A cancelled context fails too.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ks, err = st.UnsealAll(ctx)
	if ks != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("UnsealAll with cancelled context = %v, %v", ks, err)
	}
}

func TestMemoryLockFailures(t *testing.T) {
	tests := []struct {
		name    string
		lockErr error
		require bool
		wantErr error // nil: UnsealAll succeeds
		locked  bool
		warned  bool
	}{
		{"locked", nil, true, nil, true, false},
		{"EPERM tolerated", unix.EPERM, false, nil, false, true},
		{"ENOMEM tolerated", unix.ENOMEM, false, nil, false, true},
		{"EAGAIN tolerated", unix.EAGAIN, false, nil, false, true},
		{"EPERM with RequireLockedMemory", unix.EPERM, true, ErrMemoryLock, false, false},
		{"unexpected error", unix.EINVAL, false, ErrMemoryLock, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			st, err := NewStore(t.TempDir(), newFakeSealer(t), StoreOptions{
				RequireLockedMemory: tc.require,
				Logger:              slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			secret, pk := newSecret(t)
			if _, err := st.Put(t.Context(), secret); err != nil {
				t.Fatal(err)
			}
			st.mlock = func(b []byte) error {
				if tc.lockErr != nil {
					return tc.lockErr
				}
				return unix.Mlock(b)
			}
			ks, err := st.UnsealAll(t.Context())
			if tc.wantErr != nil {
				if ks != nil || !errors.Is(err, tc.wantErr) {
					t.Fatalf("UnsealAll = %v, %v; want %v", ks, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				if tc.locked && errors.Is(err, ErrMemoryLock) {
					t.Skipf("this process may not mlock: %v", err)
				}
				t.Fatal(err)
			}
			defer ks.Zero()
			if ks.MemoryLocked() != tc.locked {
				t.Fatalf("MemoryLocked = %v", ks.MemoryLocked())
			}
			if warned := strings.Contains(logs.String(), "not locked"); warned != tc.warned {
				t.Fatalf("warning logged = %v: %s", warned, logs.String())
			}
			if _, err := ks.Sign(pk, [32]byte{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDeleteAndEmptyStore(t *testing.T) {
	dir := t.TempDir()
	st, err := NewStore(dir, newFakeSealer(t), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := st.UnsealAll(t.Context())
	if err != nil || ks.Len() != 0 {
		t.Fatalf("empty store: %v, %v", ks, err)
	}
	ks.Zero()
	secret, _ := newSecret(t)
	pk, err := st.Put(t.Context(), secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(pk); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(pk); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	assertDir(t, dir, nil)
}

func TestNewStoreErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	write(t, filepath.Dir(file), "f", []byte("x"))
	tests := []struct {
		name   string
		dir    string
		sealer Sealer
		opts   StoreOptions
	}{
		{"empty dir", "", newFakeSealer(t), StoreOptions{}},
		{"nil sealer", t.TempDir(), nil, StoreOptions{}},
		{"negative workers", t.TempDir(), newFakeSealer(t), StoreOptions{Workers: -1}},
		{"dir is a file", file, newFakeSealer(t), StoreOptions{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewStore(tc.dir, tc.sealer, tc.opts); err == nil {
				t.Fatal("NewStore succeeded")
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	_, pk := newSecret(t)
	for _, s := range []string{pk.String(), pk.String()[2:]} {
		got, err := ParsePublicKey(s)
		if err != nil || got != pk {
			t.Fatalf("ParsePublicKey(%q) = %s, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "0x", pk.String()[:97], pk.String() + "00", "0x" + string(bytes.Repeat([]byte("g"), 96))} {
		if _, err := ParsePublicKey(s); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("ParsePublicKey(%q): %v", s, err)
		}
	}
}

func FuzzParseFileName(f *testing.F) {
	var pk PublicKey
	pk[0] = 0xab
	f.Add(fileName(pk))
	f.Add("README")
	f.Add(".tmp-1")
	f.Add("zz.sealed")
	f.Fuzz(func(t *testing.T, name string) {
		got, ok, err := parseFileName(name)
		if !ok {
			if err != nil {
				t.Fatalf("error for a non-key name")
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrCorruptStore) {
				t.Fatalf("error %v is not ErrCorruptStore", err)
			}
			return
		}
		if fileName(got) != name {
			t.Fatalf("%q parsed to %s which names %q", name, got, fileName(got))
		}
	})
}
