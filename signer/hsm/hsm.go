package hsm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// TokenIdentity describes the token an HSM handle is bound to, as reported by
// the token at Open. It is what a region publishes as its "HSM identity".
type TokenIdentity struct {
	Slot         uint
	Label        string
	Serial       string
	Manufacturer string
	Model        string
}

func tokenIdentity(ti pkcs11.TokenInfo) TokenIdentity {
	trim := func(s string) string { return strings.TrimRight(s, " \x00") }
	return TokenIdentity{
		Label:        trim(ti.Label),
		Serial:       trim(ti.SerialNumber),
		Manufacturer: trim(ti.ManufacturerID),
		Model:        trim(ti.Model),
	}
}

// HSM is an open, logged-in token with a bounded pool of sessions. All
// methods are safe for concurrent use; at most Config.MaxSessions PKCS#11
// operations run at once and further callers wait for a free session until
// their context ends.
type HSM struct {
	mod        *Module
	p          *pkcs11.Ctx
	slot       uint
	pin        string
	id         TokenIdentity
	lowSP256   bool
	onError    func(op string, err error)
	log        *slog.Logger
	ownsModule bool

	pool   chan *session
	size   int
	done   chan struct{} // closed by Close
	closed atomic.Bool

	// createMu serialises object creation so that two callers in this
	// process cannot create two objects with one label.
	createMu sync.Mutex

	cacheMu  sync.RWMutex
	keys     map[string]*signingKey         // label -> private key + public key
	sealKeys map[string]pkcs11.ObjectHandle // label -> AES key
}

type session struct {
	h    pkcs11.SessionHandle
	open bool
}

func newHSM(m *Module, cfg Config, slot uint, pin string, id TokenIdentity, log *slog.Logger) *HSM {
	id.Slot = slot
	n := cfg.sessions()
	h := &HSM{
		mod:      m,
		p:        m.ctx,
		slot:     slot,
		pin:      pin,
		id:       id,
		lowSP256: cfg.LowSP256,
		onError:  cfg.OnError,
		log:      log.With("hsm_token", id.Label, "hsm_serial", id.Serial),
		pool:     make(chan *session, n),
		size:     n,
		done:     make(chan struct{}),
		keys:     make(map[string]*signingKey),
		sealKeys: make(map[string]pkcs11.ObjectHandle),
	}
	for range n {
		h.pool <- &session{}
	}
	return h
}

// Token returns the identity of the token this handle is bound to.
func (h *HSM) Token() TokenIdentity { return h.id }

// MaxSessions returns the size of the session pool.
func (h *HSM) MaxSessions() int { return h.size }

// Close waits for operations in flight to finish, closes every session and,
// if the HSM was opened with Open, finalises the module. Callers waiting for a
// session get ErrClosed. Calling Close again is a no-op.
func (h *HSM) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(h.done)
	var errs []error
	for range h.size {
		s := <-h.pool
		if s.open {
			if err := h.p.CloseSession(s.h); err != nil {
				errs = append(errs, p11err("C_CloseSession", err))
			}
		}
	}
	h.cacheMu.Lock()
	clear(h.keys)
	clear(h.sealKeys)
	h.cacheMu.Unlock()
	h.mod.release()
	if h.ownsModule {
		errs = append(errs, h.mod.Close())
	}
	return errors.Join(errs...)
}

// acquire takes a session from the pool, opening and logging it in if
// needed. It waits until a session is free, ctx ends or the HSM closes.
func (h *HSM) acquire(ctx context.Context) (*session, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSessionPoolExhausted, err)
	}
	var s *session
	select {
	case s = <-h.pool:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waited for one of %d sessions: %w", ErrSessionPoolExhausted, h.size, ctx.Err())
	case <-h.done:
		return nil, ErrClosed
	}
	if h.closed.Load() {
		h.pool <- s
		return nil, ErrClosed
	}
	if !s.open {
		if err := h.openSession(s); err != nil {
			h.pool <- s
			return nil, err
		}
	}
	return s, nil
}

// openSession opens a read-write session and logs the user in. A login
// already in effect for the application (CKR_USER_ALREADY_LOGGED_IN) counts as
// success: PKCS#11 login state is shared by all sessions of a token.
func (h *HSM) openSession(s *session) error {
	sh, err := h.p.OpenSession(h.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return p11err("C_OpenSession", err)
	}
	err = h.p.Login(sh, pkcs11.CKU_USER, h.pin)
	rv, _ := rvOf(err)
	switch {
	case err == nil:
		// A fresh login means the token was logged out (all sessions had
		// closed): object handles from before may no longer be valid.
		h.dropCache()
	case rv == pkcs11.CKR_USER_ALREADY_LOGGED_IN:
	default:
		_ = h.p.CloseSession(sh)
		switch rv {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_PIN_EXPIRED,
			pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE:
			return fmt.Errorf("%w: token %q refused the user PIN: %w", ErrLogin, h.id.Label, err)
		}
		return p11err("C_Login", err)
	}
	s.h, s.open = sh, true
	return nil
}

// release returns s to the pool. If err shows the session is broken, the
// session is closed and will be reopened by the next acquire.
func (h *HSM) release(s *session, err error) {
	if err != nil && sessionBroken(err) {
		h.log.Warn("hsm session broken; it will be reopened", "err", err)
		_ = h.p.CloseSession(s.h)
		s.h, s.open = 0, false
		h.dropCache()
	}
	h.pool <- s
}

// do runs fn with a pooled session and reports any failure to OnError.
func (h *HSM) do(ctx context.Context, op string, fn func(sh pkcs11.SessionHandle) error) error {
	s, err := h.acquire(ctx)
	if err == nil {
		err = fn(s.h)
		h.release(s, err)
		if err != nil && handleStale(err) {
			h.dropCache()
		}
	}
	if err != nil {
		h.report(op, err)
	}
	return err
}

func (h *HSM) report(op string, err error) {
	if h.onError == nil || errors.Is(err, ErrInvalidInput) {
		return
	}
	h.onError(op, err)
}

func (h *HSM) dropCache() {
	h.cacheMu.Lock()
	clear(h.keys)
	clear(h.sealKeys)
	h.cacheMu.Unlock()
}

// findObjects returns the handles of all objects matching tmpl.
func (h *HSM) findObjects(sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := h.p.FindObjectsInit(sh, tmpl); err != nil {
		return nil, p11err("C_FindObjectsInit", err)
	}
	var all []pkcs11.ObjectHandle
	for {
		objs, _, err := h.p.FindObjects(sh, 64)
		if err != nil {
			_ = h.p.FindObjectsFinal(sh)
			return nil, p11err("C_FindObjects", err)
		}
		if len(objs) == 0 {
			break
		}
		all = append(all, objs...)
	}
	if err := h.p.FindObjectsFinal(sh); err != nil {
		return nil, p11err("C_FindObjectsFinal", err)
	}
	return all, nil
}

// findOne returns the single object matching tmpl; what names it in errors.
func (h *HSM) findOne(sh pkcs11.SessionHandle, what string, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	objs, err := h.findObjects(sh, tmpl)
	if err != nil {
		return 0, err
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("%w: %s", ErrKeyNotFound, what)
	case 1:
		return objs[0], nil
	default:
		return 0, fmt.Errorf("%w: %s: %d objects", ErrAmbiguousLabel, what, len(objs))
	}
}

// attrs reads the given attribute types of o.
func (h *HSM) attrs(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		tmpl[i] = pkcs11.NewAttribute(t, nil)
	}
	got, err := h.p.GetAttributeValue(sh, o, tmpl)
	if err != nil {
		return nil, p11err("C_GetAttributeValue", err)
	}
	out := make(map[uint][]byte, len(got))
	for _, a := range got {
		out[a.Type] = a.Value
	}
	return out, nil
}

// attrBool decodes a CK_BBOOL attribute value.
func attrBool(v []byte) (bool, bool) {
	if len(v) != 1 {
		return false, false
	}
	return v[0] != 0, true
}

// attrUlong decodes a CK_ULONG attribute value (native byte order).
func attrUlong(v []byte) (uint64, bool) {
	switch len(v) {
	case 4:
		return uint64(binary.NativeEndian.Uint32(v)), true
	case 8:
		return binary.NativeEndian.Uint64(v), true
	}
	return 0, false
}

// random returns n bytes from the token's RNG.
func (h *HSM) random(sh pkcs11.SessionHandle, n int) ([]byte, error) {
	b, err := h.p.GenerateRandom(sh, n)
	if err != nil {
		return nil, p11err("C_GenerateRandom", err)
	}
	if len(b) != n {
		return nil, fmt.Errorf("%w: C_GenerateRandom returned %d bytes, want %d", ErrHSM, len(b), n)
	}
	return b, nil
}

func zero(b []byte) { clear(b) }
