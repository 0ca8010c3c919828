package transport

import "errors"

// Sentinel errors; every error from this package wraps one of them (match
// with errors.Is).
var (
	// ErrBadConfig: the Config is invalid. Nothing was bound.
	ErrBadConfig = errors.New("transport: invalid config")
	// ErrNotAdvertisable: no address peers could dial was given or found
	// (for example bound to 0.0.0.0 with no AdvertiseAddr). Nothing stays
	// bound.
	ErrNotAdvertisable = errors.New("transport: no advertisable address")
	// ErrDial: the TCP connection to a peer could not be opened.
	ErrDial = errors.New("transport: dial failed")
	// ErrHandshake: the TLS handshake (or the preamble that confirms it)
	// with a peer failed. The wrapped error says why.
	ErrHandshake = errors.New("transport: TLS handshake failed")
	// ErrClosed: the stream layer is closed. Also matches net.ErrClosed.
	ErrClosed = errors.New("transport: stream layer closed")
)
