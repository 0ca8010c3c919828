package bls

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/supranational/blst/bindings/go"
)

const (
	fileSuffix = ".sealed"
	tempPrefix = ".tmp-"
	// maxSealedFile bounds how much of a key file is read: a sealed 32-byte
	// key is well under 100 bytes whatever the Sealer's format.
	maxSealedFile = 4096
	// DefaultWorkers is the default UnsealAll parallelism.
	DefaultWorkers = 4
)

// StoreOptions tunes a Store.
type StoreOptions struct {
	// Workers bounds concurrent Sealer calls in UnsealAll; set it to the
	// HSM's session pool size. Zero means DefaultWorkers.
	Workers int
	// RequireLockedMemory makes UnsealAll fail with ErrMemoryLock when the
	// key memory cannot be mlocked, instead of logging a warning.
	RequireLockedMemory bool
	// Logger receives warnings (unlocked memory, stray files). Nil discards.
	Logger *slog.Logger
}

// Store is a directory of sealed BLS secret keys, one file per public key.
// It is safe for concurrent use by one process; two processes must not write
// the same directory.
type Store struct {
	dir    string
	sealer Sealer
	opts   StoreOptions
	log    *slog.Logger
	mlock  func([]byte) error // nil: the platform's mlock; replaced in tests
}

// NewStore opens (creating it with mode 0700 if absent) the key directory
// dir, sealing with sealer.
func NewStore(dir string, sealer Sealer, opts StoreOptions) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty store directory", ErrIO)
	}
	if sealer == nil {
		return nil, errors.New("bls: nil Sealer")
	}
	if opts.Workers < 0 {
		return nil, fmt.Errorf("bls: Workers %d is negative", opts.Workers)
	}
	if opts.Workers == 0 {
		opts.Workers = DefaultWorkers
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIO, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIO, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrIO, dir)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{dir: dir, sealer: sealer, opts: opts, log: log}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func fileName(pk PublicKey) string { return hex.EncodeToString(pk[:]) + fileSuffix }

// parseFileName returns the public key a key file is named after. ok is false
// for names that are not key files at all (no ".sealed" suffix, or temporary
// files); err is set for names that claim to be key files but are malformed.
func parseFileName(name string) (pk PublicKey, ok bool, err error) {
	if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, fileSuffix) {
		return PublicKey{}, false, nil
	}
	h := strings.TrimSuffix(name, fileSuffix)
	if len(h) != 2*PublicKeySize || strings.ToLower(h) != h {
		return PublicKey{}, true, fmt.Errorf("%w: file %q: name must be 96 lowercase hex digits + %q", ErrCorruptStore, name, fileSuffix)
	}
	if _, err := hex.Decode(pk[:], []byte(h)); err != nil {
		return PublicKey{}, true, fmt.Errorf("%w: file %q: %v", ErrCorruptStore, name, err)
	}
	return pk, true, nil
}

// secretToPublic validates a secret key and returns its public key.
func secretToPublic(secret []byte) (PublicKey, error) {
	if len(secret) != SecretKeySize {
		return PublicKey{}, fmt.Errorf("%w: secret key of %d bytes, want %d", ErrInvalidKey, len(secret), SecretKeySize)
	}
	var sk blst.SecretKey
	defer sk.Zeroize()
	if sk.Deserialize(secret) == nil {
		return PublicKey{}, fmt.Errorf("%w: secret key is zero or not below the group order", ErrInvalidKey)
	}
	return publicOf(&sk), nil
}

func publicOf(sk *blst.SecretKey) PublicKey {
	var pk PublicKey
	copy(pk[:], new(blst.P1Affine).From(sk).Compress())
	return pk
}

// Put seals secret (a 32-byte big-endian BLS secret key) with its public key
// as additional data, checks that the sealed blob opens again to the same
// key, and writes it atomically to the store. It returns the public key. If
// the key is already stored it returns the public key and ErrKeyExists and
// writes nothing; on any other error nothing is written either. The caller
// keeps ownership of secret and should zero it.
func (s *Store) Put(ctx context.Context, secret []byte) (PublicKey, error) {
	pk, err := secretToPublic(secret)
	if err != nil {
		return PublicKey{}, err
	}
	path := filepath.Join(s.dir, fileName(pk))
	switch _, err := os.Lstat(path); {
	case err == nil:
		return pk, fmt.Errorf("%w: %s", ErrKeyExists, pk)
	case !errors.Is(err, fs.ErrNotExist):
		return PublicKey{}, fmt.Errorf("%w: %w", ErrIO, err)
	}
	blob, err := s.sealer.Seal(ctx, secret, pk[:])
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %s: %w", ErrSeal, pk, err)
	}
	back, err := s.sealer.Unseal(ctx, blob, pk[:])
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %s: sealed key does not open again: %w", ErrSeal, pk, err)
	}
	same := bytes.Equal(back, secret)
	clear(back)
	if !same {
		return PublicKey{}, fmt.Errorf("%w: %s: sealed key opens to different bytes", ErrSeal, pk)
	}
	if len(blob) > maxSealedFile {
		return PublicKey{}, fmt.Errorf("%w: %s: sealed blob of %d bytes exceeds %d", ErrSeal, pk, len(blob), maxSealedFile)
	}
	if err := writeFileAtomic(s.dir, fileName(pk), blob); err != nil {
		return PublicKey{}, fmt.Errorf("%w: %s: %w", ErrIO, pk, err)
	}
	return pk, nil
}

// writeFileAtomic writes data to dir/name so that the file either does not
// exist or is complete, also across a crash: temporary file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// List returns the public keys in the store, sorted, read from the file
// names alone (nothing is unsealed). Files whose names do not end in
// ".sealed", and left-over temporary files (".tmp-*") from an interrupted
// Put, are ignored. A ".sealed" name that is not a lowercase hex public key
// fails the call with ErrCorruptStore.
func (s *Store) List() ([]PublicKey, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIO, err)
	}
	var out []PublicKey
	for _, e := range entries {
		pk, ok, err := parseFileName(e.Name())
		if !ok {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorruptStore, e.Name())
		}
		out = append(out, pk)
	}
	slices.SortFunc(out, func(a, b PublicKey) int { return bytes.Compare(a[:], b[:]) })
	return out, nil
}

// Delete removes the sealed key pk from the store (ErrKeyNotFound if
// absent). It does not touch KeySets already unsealed.
func (s *Store) Delete(pk PublicKey) error {
	err := os.Remove(filepath.Join(s.dir, fileName(pk)))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrKeyNotFound, pk)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	return nil
}

// readSealed reads a key file, refusing oversized or non-regular files.
func (s *Store) readSealed(pk PublicKey) ([]byte, error) {
	f, err := os.Open(filepath.Join(s.dir, fileName(pk)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrIO, pk, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrIO, pk, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s: not a regular file", ErrCorruptStore, pk)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSealedFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrIO, pk, err)
	}
	if len(b) > maxSealedFile {
		return nil, fmt.Errorf("%w: %s: file larger than %d bytes", ErrCorruptStore, pk, maxSealedFile)
	}
	return b, nil
}

// UnsealAll opens every key in the store into a new KeySet, running up to
// StoreOptions.Workers Sealer calls at once. Each key is checked: it must
// unseal with its public key as additional data, be a valid secret key, and
// derive the public key its file is named after. If any key fails, or ctx
// ends, UnsealAll zeroes what it opened and returns an error naming the
// failing keys (the first ten) and how many failed; no KeySet is returned.
func (s *Store) UnsealAll(ctx context.Context) (*KeySet, error) {
	pks, err := s.List()
	if err != nil {
		return nil, err
	}
	mem, err := newKeyMemory(len(pks), s.mlock)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMemoryLock, err)
	}
	if !mem.locked {
		if s.opts.RequireLockedMemory {
			mem.free()
			return nil, fmt.Errorf("%w: %v (raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK)", ErrMemoryLock, mem.lockErr)
		}
		s.log.Warn("bls key memory is not locked and may be swapped to disk", "err", mem.lockErr, "keys", len(pks))
	}
	ks := newKeySet(pks, mem)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	jobs := make(chan int)
	for range min(s.opts.Workers, max(len(pks), 1)) {
		wg.Go(func() {
			for i := range jobs {
				if err := s.unsealInto(ctx, pks[i], mem.key(i)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				}
			}
		})
	}
feed:
	for i := range pks {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		ks.Zero()
		return nil, summarize(errs)
	}
	return ks, nil
}

// unsealInto opens pk's file into slot.
func (s *Store) unsealInto(ctx context.Context, pk PublicKey, slot *blst.SecretKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	blob, err := s.readSealed(pk)
	if err != nil {
		return err
	}
	pt, err := s.sealer.Unseal(ctx, blob, pk[:])
	defer clear(pt)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnseal, pk, err)
	}
	if len(pt) != SecretKeySize || slot.Deserialize(pt) == nil {
		slot.Zeroize()
		return fmt.Errorf("%w: %s: sealed content is not a valid secret key", ErrCorruptStore, pk)
	}
	if publicOf(slot) != pk {
		slot.Zeroize()
		return fmt.Errorf("%w: %s: sealed key belongs to another public key", ErrCorruptStore, pk)
	}
	return nil
}

// summarize joins up to ten errors and counts the rest. Errors that only
// report the cancellation following the first failure are left out.
func summarize(errs []error) error {
	var primary []error
	for _, e := range errs {
		if !errors.Is(e, context.Canceled) {
			primary = append(primary, e)
		}
	}
	if len(primary) == 0 {
		primary = errs[:1]
	}
	shown := primary[:min(len(primary), 10)]
	err := errors.Join(shown...)
	if n := len(primary) - len(shown); n > 0 {
		err = fmt.Errorf("%w\n(and %d more)", err, n)
	}
	return fmt.Errorf("bls: unseal failed for %d key(s): %w", len(primary), err)
}
