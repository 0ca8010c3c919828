package hsm

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"unicode/utf8"
)

const (
	// DefaultMaxSessions is the session pool size used when
	// Config.MaxSessions is zero.
	DefaultMaxSessions = 4
	// MaxMaxSessions bounds Config.MaxSessions.
	MaxMaxSessions = 256
	// maxPINFileSize bounds how much of a PIN file is read.
	maxPINFileSize = 1024
	// maxTokenLabel is the size of CK_TOKEN_INFO.label.
	maxTokenLabel = 32
)

// Config says which PKCS#11 module and token to use and how.
//
// Exactly one of TokenLabel and Slot selects the token; exactly one of PIN and
// PINFile supplies the user PIN. Production deployments use PINFile (a file
// readable only by the service user, its content the PIN, one trailing
// newline ignored); PIN is for tests and demos.
type Config struct {
	// Module is the path of the PKCS#11 shared library, e.g.
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string `yaml:"module"`
	// TokenLabel selects the token whose label equals it (at most 32 bytes).
	TokenLabel string `yaml:"token_label"`
	// Slot selects the token by slot ID instead of label.
	Slot *uint `yaml:"slot"`
	// PIN is the user PIN (tests and demos only). The HSM keeps the PIN in
	// memory for as long as it is open, to log in again after the token
	// drops its sessions.
	PIN string `yaml:"pin"`
	// PINFile is the path of a file holding the user PIN.
	PINFile string `yaml:"pin_file"`
	// MaxSessions bounds the number of PKCS#11 sessions, hence the number of
	// operations in flight. Zero means DefaultMaxSessions.
	MaxSessions int `yaml:"max_sessions"`
	// LowSP256 makes P-256 signatures low-S as well (secp256k1 signatures are
	// always low-S).
	LowSP256 bool `yaml:"low_s_p256"`

	// OnError, when set, is called once for every failed operation with the
	// operation name (stable: "open", "generate", "import", "sign",
	// "sign_digest", "public_key", "keys", "ensure_sealing_key", "seal",
	// "unseal", "delete", "ensure_wrap_key", "unwrap") and the error returned to the caller. Rejections
	// of the caller's arguments (ErrInvalidInput, ErrCometBFTKey) are not
	// reported; malformed sealed blobs (ErrSealedBlob) are, since they mean a
	// damaged store. It may be
	// called from many goroutines at once and must not block; it is the hook
	// for a Prometheus counter.
	OnError func(op string, err error) `yaml:"-"`
	// Logger receives warnings (e.g. a PIN file readable by others) and
	// session recoveries. Nil discards them.
	Logger *slog.Logger `yaml:"-"`
}

// Validate checks the configuration without touching the filesystem or the
// module. Every error wraps ErrConfig and names the offending field.
func (c Config) Validate() error {
	if c.Module == "" {
		return fmt.Errorf("%w: module: path of the PKCS#11 library is required", ErrConfig)
	}
	switch {
	case c.TokenLabel == "" && c.Slot == nil:
		return fmt.Errorf("%w: token_label or slot is required", ErrConfig)
	case c.TokenLabel != "" && c.Slot != nil:
		return fmt.Errorf("%w: token_label and slot are mutually exclusive", ErrConfig)
	case len(c.TokenLabel) > maxTokenLabel:
		return fmt.Errorf("%w: token_label: %d bytes, PKCS#11 labels hold at most %d", ErrConfig, len(c.TokenLabel), maxTokenLabel)
	case c.TokenLabel != "" && !utf8.ValidString(c.TokenLabel):
		return fmt.Errorf("%w: token_label is not valid UTF-8", ErrConfig)
	}
	switch {
	case c.PIN == "" && c.PINFile == "":
		return fmt.Errorf("%w: pin_file (or pin, for tests) is required", ErrConfig)
	case c.PIN != "" && c.PINFile != "":
		return fmt.Errorf("%w: pin and pin_file are mutually exclusive", ErrConfig)
	}
	if c.MaxSessions < 0 || c.MaxSessions > MaxMaxSessions {
		return fmt.Errorf("%w: max_sessions %d: must be between 0 (default %d) and %d", ErrConfig, c.MaxSessions, DefaultMaxSessions, MaxMaxSessions)
	}
	return nil
}

func (c Config) sessions() int {
	if c.MaxSessions == 0 {
		return DefaultMaxSessions
	}
	return c.MaxSessions
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// readPIN returns the PIN from Config.PIN or Config.PINFile.
func (c Config) readPIN(log *slog.Logger) (string, error) {
	if c.PINFile == "" {
		return c.PIN, nil
	}
	f, err := os.Open(c.PINFile)
	if err != nil {
		return "", fmt.Errorf("%w: pin_file: %w", ErrConfig, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%w: pin_file: %w", ErrConfig, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: pin_file %s: not a regular file", ErrConfig, c.PINFile)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("hsm PIN file is accessible to group or others", "path", c.PINFile, "mode", st.Mode().Perm().String())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPINFileSize+1))
	if err != nil {
		return "", fmt.Errorf("%w: pin_file: %w", ErrConfig, err)
	}
	if len(b) > maxPINFileSize {
		return "", fmt.Errorf("%w: pin_file %s: larger than %d bytes", ErrConfig, c.PINFile, maxPINFileSize)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", fmt.Errorf("%w: pin_file %s is empty", ErrConfig, c.PINFile)
	}
	if bytes.ContainsAny(b, "\r\n") {
		return "", fmt.Errorf("%w: pin_file %s: the PIN must be a single line", ErrConfig, c.PINFile)
	}
	return string(b), nil
}
