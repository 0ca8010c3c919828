package cometbft

import (
	"errors"
	"fmt"

	"github.com/regent-signer/regent/slashing"
)

// Sentinel errors. Match with errors.Is; every error this package returns
// wraps exactly one of them (and, through it, a slashing sentinel where one
// applies).
var (
	// ErrMalformedSignBytes marks sign bytes that are not the exact canonical
	// CometBFT encoding of a valid vote, proposal or vote extension.
	// It wraps slashing.ErrInvalidInput.
	ErrMalformedSignBytes = fmt.Errorf("cometbft: malformed sign bytes: %w", slashing.ErrInvalidInput)

	// ErrInvalidRequest marks a request whose key id, chain id or
	// height/round/step is out of range. It wraps slashing.ErrInvalidInput.
	ErrInvalidRequest = fmt.Errorf("cometbft: invalid request: %w", slashing.ErrInvalidInput)

	// ErrRequestMismatch marks a request whose stated chain id or
	// height/round/step disagrees with what its sign bytes say. A request
	// that lies about what it signs is never evaluated. It wraps
	// slashing.ErrInvalidInput.
	ErrRequestMismatch = fmt.Errorf("cometbft: request does not match its sign bytes: %w", slashing.ErrInvalidInput)

	// ErrImportConflict marks an imported last-sign state that names, at the
	// height/round/step already recorded, sign bytes that conflict with the
	// recorded ones: evidence that two different messages were signed there.
	// It wraps slashing.ErrSlashableImport.
	ErrImportConflict = fmt.Errorf("cometbft: imported sign state conflicts with the recorded one: %w", slashing.ErrSlashableImport)

	// ErrSnapshotFormat marks a snapshot stream that is truncated, corrupt
	// (checksum), non-canonical or holds an invalid entry. It wraps
	// slashing.ErrInvalidInput.
	ErrSnapshotFormat = fmt.Errorf("cometbft: malformed snapshot: %w", slashing.ErrInvalidInput)

	// ErrSnapshotVersion marks a snapshot written in a format version this
	// build does not read. It wraps slashing.ErrUnsupportedVersion.
	ErrSnapshotVersion = fmt.Errorf("cometbft: snapshot format: %w", slashing.ErrUnsupportedVersion)

	// ErrCorruptState marks protection state that no longer satisfies its own
	// invariants (for example stored sign bytes that do not decode). It is
	// never expected; a caller that sees it must refuse to sign and stop.
	ErrCorruptState = errors.New("cometbft: corrupt protection state")
)

// malformed returns an error wrapping ErrMalformedSignBytes.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedSignBytes, fmt.Sprintf(format, args...))
}
