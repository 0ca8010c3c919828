package pki

import "errors"

// Sentinel errors. Every error returned by this package wraps one of them
// (match with errors.Is); the message adds the file, field or value concerned.
var (
	// ErrNoIdentity: the certificate carries no regent:// URI SAN (or there
	// is no certificate at all).
	ErrNoIdentity = errors.New("pki: certificate carries no regent identity")
	// ErrBadIdentity: a regent:// URI is malformed, names an unknown role or
	// an invalid name, or a certificate carries more than one.
	ErrBadIdentity = errors.New("pki: malformed regent identity")
	// ErrWrongRole: the peer's identity is valid but its role is not one the
	// connection accepts.
	ErrWrongRole = errors.New("pki: peer role not allowed")
	// ErrBadOptions: an argument or option is invalid. Nothing was written.
	ErrBadOptions = errors.New("pki: invalid options")
	// ErrExists: Init would overwrite an existing file and Options.Force is
	// not set. Nothing was written.
	ErrExists = errors.New("pki: refusing to overwrite existing file (set Force to replace)")
	// ErrMissingFile: a TLS file does not exist (or no path was given).
	ErrMissingFile = errors.New("pki: TLS file missing")
	// ErrUnreadable: a TLS file exists but cannot be read (permissions, a
	// directory, too large, I/O error).
	ErrUnreadable = errors.New("pki: TLS file unreadable")
	// ErrBadPEM: a file's content is not the PEM it should be: no block,
	// an unexpected block type, trailing garbage, or an undecodable
	// certificate or key.
	ErrBadPEM = errors.New("pki: malformed PEM")
	// ErrNotCA: the CA bundle contains a certificate that is not a CA.
	ErrNotCA = errors.New("pki: CA bundle contains a non-CA certificate")
	// ErrKeyMismatch: the private key does not belong to the certificate.
	ErrKeyMismatch = errors.New("pki: private key does not match certificate")
	// ErrUntrusted: the certificate does not verify against the CA bundle
	// (other issuer, expired, not yet valid, wrong key usage...).
	ErrUntrusted = errors.New("pki: certificate does not verify against the CA")
)
