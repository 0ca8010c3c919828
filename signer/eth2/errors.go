package eth2

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them; match with errors.Is, never with the message text.
var (
	// ErrMalformed: the body is not a well-formed request of its type — bad
	// JSON, trailing data, a duplicate or unknown field, a missing field, a
	// JSON value of the wrong kind, bad hex, a number that is not a decimal
	// string, a list or bitlist over its limit, or fields that contradict
	// each other.
	ErrMalformed = errors.New("eth2: malformed signing request")
	// ErrTooLarge: the body exceeds MaxBodyBytes.
	ErrTooLarge = errors.New("eth2: signing request body too large")
	// ErrUnknownType: the "type" field names no signing type this package
	// supports.
	ErrUnknownType = errors.New("eth2: unknown signing type")
	// ErrUnknownFork: a fork "version" name is not one this package knows.
	ErrUnknownFork = errors.New("eth2: unknown fork version name")
	// ErrMissingForkInfo: the type needs fork_info and the body has none.
	ErrMissingForkInfo = errors.New("eth2: fork_info is required for this signing type")
	// ErrUnsupported: the request is well formed but uses a form this
	// package deliberately refuses (for example a full Bellatrix+ block in
	// BLOCK_V2; send block_header instead).
	ErrUnsupported = errors.New("eth2: unsupported request form")
	// ErrSigningRootMismatch: the client sent a signing root that differs
	// from the one computed from the object.
	ErrSigningRootMismatch = errors.New("eth2: signing root mismatch")
	// ErrNetworkRequired: computing the signing root needs network
	// parameters (genesis fork version, Capella fork version, Deneb fork
	// epoch) and the request was decoded without a Network.
	ErrNetworkRequired = errors.New("eth2: network parameters required")
	// ErrWrongNetwork: the request names a genesis validators root or
	// genesis fork version that is not the configured network's.
	ErrWrongNetwork = errors.New("eth2: request is for another network")
)

// FieldError reports which field of a request was refused and why. Err is
// the sentinel it wraps.
type FieldError struct {
	// Field is the JSON path of the offending field, dot separated, with
	// list indexes in brackets, e.g. "block.body.attestations[3].data.slot".
	// Empty for errors about the body as a whole.
	Field string
	// Reason says what was wrong, in words an operator understands.
	Reason string
	// Err is the sentinel error.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%v: %s", e.Err, e.Reason)
	}
	return fmt.Sprintf("%v: field %q: %s", e.Err, e.Field, e.Reason)
}

// Unwrap returns the sentinel.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(sentinel error, field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

func malformed(field, format string, args ...any) error {
	return fieldErr(ErrMalformed, field, format, args...)
}
