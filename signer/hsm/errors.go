package hsm

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// the "kind" sentinels below (sometimes together with ErrHSM and the
// underlying pkcs11.Error); match them with errors.Is.
var (
	// ErrConfig: the Config is invalid, or names a module, slot or token that
	// does not exist.
	ErrConfig = errors.New("hsm: invalid configuration")
	// ErrHSM: the token or module reported a failure. The pkcs11.Error is
	// wrapped too (errors.As).
	ErrHSM = errors.New("hsm: PKCS#11 operation failed")
	// ErrLogin: the token refused the PIN (incorrect, locked, expired).
	ErrLogin = errors.New("hsm: login failed")
	// ErrKeyNotFound: no object with that label and class in the token.
	ErrKeyNotFound = errors.New("hsm: key not found")
	// ErrKeyExists: an object with that label already exists.
	ErrKeyExists = errors.New("hsm: key label already in use")
	// ErrAmbiguousLabel: more than one object of the wanted class carries the
	// label; Regent refuses to guess which one to use.
	ErrAmbiguousLabel = errors.New("hsm: label matches more than one object")
	// ErrKeyPolicy: a key exists but its attributes would let it leave the
	// token or be used for another purpose (extractable, not sensitive, wrong
	// size or type).
	ErrKeyPolicy = errors.New("hsm: key attributes violate policy")
	// ErrAlgorithm: the algorithm is unknown, or the key does not support the
	// requested operation (e.g. SignDigest on an Ed25519 key).
	ErrAlgorithm = errors.New("hsm: unsupported or mismatched algorithm")
	// ErrInvalidInput: an argument was rejected before anything was sent to
	// the token. Nothing changed.
	ErrInvalidInput = errors.New("hsm: invalid input")
	// ErrSessionPoolExhausted: no session became free before the context
	// ended; the context's error is wrapped too.
	ErrSessionPoolExhausted = errors.New("hsm: no session available")
	// ErrClosed: the HSM or Module was closed.
	ErrClosed = errors.New("hsm: closed")
	// ErrModuleInUse: the PKCS#11 library is already initialised in this
	// process by another Module; share that *Module instead.
	ErrModuleInUse = errors.New("hsm: PKCS#11 module already initialised in this process")
	// ErrBusy: a Module cannot close while HSM handles opened from it are
	// still open.
	ErrBusy = errors.New("hsm: module still has open tokens")
	// ErrSealedBlob: a sealed blob is malformed (too short, too long, unknown
	// version). Nothing was sent to the token.
	ErrSealedBlob = errors.New("hsm: malformed sealed blob")
	// ErrUnseal: the token could not open a sealed blob: wrong key, wrong
	// additional data, or tampered ciphertext. Some modules (SoftHSM2) report
	// a failed GCM tag check as a general error, so this is wrapped together
	// with ErrHSM and the pkcs11.Error.
	ErrUnseal = errors.New("hsm: unseal failed")
)

// p11err wraps an error reported by the PKCS#11 library.
func p11err(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrHSM, op, err)
}

// invalid builds an ErrInvalidInput error.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// rvOf returns the PKCS#11 return value wrapped in err, if any.
func rvOf(err error) (uint, bool) {
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return uint(pe), true
	}
	return 0, false
}

// sessionBroken reports whether err means the session can no longer be used
// and must be reopened.
func sessionBroken(err error) bool {
	rv, ok := rvOf(err)
	if !ok {
		return false
	}
	switch rv {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_ERROR,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_OPERATION_ACTIVE:
		return true
	}
	return false
}

// handleStale reports whether err means a cached object handle is no longer
// valid.
func handleStale(err error) bool {
	rv, ok := rvOf(err)
	if !ok {
		return false
	}
	switch rv {
	case pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT:
		return true
	}
	return false
}
