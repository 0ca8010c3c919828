package hsm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// Module is a loaded and initialised PKCS#11 library.
//
// C_Initialize and C_Finalize act on the whole process, so a process loads
// each library once and opens every token it needs from the same *Module
// (for example three in-process regions on three SoftHSM2 tokens). A Module
// is safe for concurrent use.
type Module struct {
	path string
	ctx  *pkcs11.Ctx

	mu     sync.Mutex
	open   int
	closed bool
}

// LoadModule loads the PKCS#11 library at path and initialises it for
// multi-threaded use. It fails with ErrModuleInUse if the library is already
// initialised in this process (by another Module or other code).
func LoadModule(path string) (*Module, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: module path is empty", ErrConfig)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: module: %w", ErrConfig, err)
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("%w: module %s: cannot load the library or it lacks C_GetFunctionList", ErrConfig, path)
	}
	if err := ctx.Initialize(); err != nil {
		ctx.Destroy()
		if rv, _ := rvOf(err); rv == pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			return nil, fmt.Errorf("%w: %s: load it once with LoadModule and open every token from that *Module: %w", ErrModuleInUse, path, err)
		}
		return nil, p11err("C_Initialize "+path, err)
	}
	return &Module{path: path, ctx: ctx}, nil
}

// Path returns the library path the Module was loaded from.
func (m *Module) Path() string { return m.path }

// Close finalises and unloads the library. It fails with ErrBusy while HSM
// handles opened from this Module are still open, and is a no-op when the
// Module is already closed.
func (m *Module) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	if m.open > 0 {
		return fmt.Errorf("%w: %d open", ErrBusy, m.open)
	}
	m.closed = true
	err := m.ctx.Finalize()
	m.ctx.Destroy()
	if err != nil {
		return p11err("C_Finalize", err)
	}
	return nil
}

// Open opens the token selected by cfg from this Module, logs in and returns
// a handle with a session pool of cfg.MaxSessions. cfg.Module may be empty;
// if set it must equal m.Path(). A wrong PIN fails with ErrLogin and leaves no
// session open.
func (m *Module) Open(cfg Config) (*HSM, error) {
	h, err := m.open1(cfg)
	if err != nil && cfg.OnError != nil {
		cfg.OnError("open", err)
	}
	return h, err
}

func (m *Module) open1(cfg Config) (*HSM, error) {
	if cfg.Module == "" {
		cfg.Module = m.path
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Module != m.path {
		return nil, fmt.Errorf("%w: module %s does not match the loaded module %s", ErrConfig, cfg.Module, m.path)
	}
	log := cfg.logger()
	pin, err := cfg.readPIN(log)
	if err != nil {
		return nil, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("%w: module %s", ErrClosed, m.path)
	}
	slot, info, err := m.findSlot(cfg)
	if err != nil {
		return nil, err
	}
	if info.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0 {
		return nil, fmt.Errorf("%w: token %q: user PIN is locked", ErrLogin, info.Label)
	}
	if info.Flags&pkcs11.CKF_USER_PIN_INITIALIZED == 0 {
		return nil, fmt.Errorf("%w: token %q: user PIN is not initialised", ErrConfig, info.Label)
	}
	h := newHSM(m, cfg, slot, pin, tokenIdentity(info), log)
	// Open and log in one session now so a wrong PIN or an unusable token is
	// reported by Open, not by the first signature.
	s, err := h.acquire(context.Background())
	if err != nil {
		return nil, err
	}
	h.release(s, nil)
	m.open++
	return h, nil
}

// findSlot returns the slot holding the configured token.
func (m *Module) findSlot(cfg Config) (uint, pkcs11.TokenInfo, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, p11err("C_GetSlotList", err)
	}
	if cfg.Slot != nil {
		for _, s := range slots {
			if s == *cfg.Slot {
				info, err := m.ctx.GetTokenInfo(s)
				if err != nil {
					return 0, pkcs11.TokenInfo{}, p11err("C_GetTokenInfo", err)
				}
				return s, info, nil
			}
		}
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("%w: slot %d: no token present (slots with tokens: %v)", ErrConfig, *cfg.Slot, slots)
	}
	var (
		found  []uint
		info   pkcs11.TokenInfo
		labels []string
	)
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err != nil {
			return 0, pkcs11.TokenInfo{}, p11err("C_GetTokenInfo", err)
		}
		label := strings.TrimRight(ti.Label, " \x00")
		labels = append(labels, fmt.Sprintf("%q", label))
		if label == cfg.TokenLabel {
			found = append(found, s)
			info = ti
		}
	}
	switch len(found) {
	case 0:
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("%w: no token labelled %q (tokens: %s)", ErrConfig, cfg.TokenLabel, strings.Join(labels, ", "))
	case 1:
		return found[0], info, nil
	default:
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("%w: %d tokens labelled %q (slots %v); select one by slot", ErrConfig, len(found), cfg.TokenLabel, found)
	}
}

// release is called by HSM.Close.
func (m *Module) release() {
	m.mu.Lock()
	m.open--
	m.mu.Unlock()
}

// Open loads cfg.Module, opens the token and returns an HSM that owns the
// module: HSM.Close also finalises the library. Use LoadModule and
// Module.Open instead when the process opens more than one token.
func Open(cfg Config) (*HSM, error) {
	if err := cfg.Validate(); err != nil {
		if cfg.OnError != nil {
			cfg.OnError("open", err)
		}
		return nil, err
	}
	m, err := LoadModule(cfg.Module)
	if err != nil {
		if cfg.OnError != nil {
			cfg.OnError("open", err)
		}
		return nil, err
	}
	h, err := m.Open(cfg)
	if err != nil {
		return nil, errors.Join(err, m.Close())
	}
	h.ownsModule = true
	return h, nil
}
