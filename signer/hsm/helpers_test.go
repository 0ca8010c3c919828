package hsm

import (
	"errors"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/regent-signer/regent/signer/hsm/hsmtest"
)

const testPIN = "1234"

// testToken starts a private SoftHSM2 with the given token labels (user PIN
// testPIN), loads the module and returns it; the module is closed when the
// test ends (after every HSM opened from it, which tests close themselves
// through openToken's cleanup).
func testModule(t *testing.T, labels ...string) *Module {
	t.Helper()
	env := hsmtest.New(t)
	for _, l := range labels {
		env.InitToken(t, l, testPIN)
	}
	m, err := LoadModule(env.Module)
	if err != nil {
		t.Fatalf("LoadModule: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Module.Close: %v", err)
		}
	})
	return m
}

// openToken opens the token labelled label from m with cfg's other fields.
func openToken(t *testing.T, m *Module, label string, cfg Config) *HSM {
	t.Helper()
	cfg.TokenLabel = label
	if cfg.PIN == "" && cfg.PINFile == "" {
		cfg.PIN = testPIN
	}
	h, err := m.Open(cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", label, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("HSM.Close: %v", err)
		}
	})
	return h
}

// newTestHSM is a one-token setup.
func newTestHSM(t *testing.T, cfg Config) *HSM {
	t.Helper()
	m := testModule(t, "regent-test")
	return openToken(t, m, "regent-test", cfg)
}

// countObjects returns how many objects the token holds, optionally only
// those labelled label.
func countObjects(t *testing.T, h *HSM, label string) int {
	t.Helper()
	var tmpl []*pkcs11.Attribute
	if label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	n := 0
	err := h.do(t.Context(), "test", func(sh pkcs11.SessionHandle) error {
		objs, err := h.findObjects(sh, tmpl)
		n = len(objs)
		return err
	})
	if err != nil {
		t.Fatalf("count objects: %v", err)
	}
	return n
}

// objectAttrs reads attributes of the single object of class labelled label.
func objectAttrs(t *testing.T, h *HSM, class uint, label string, types ...uint) map[uint][]byte {
	t.Helper()
	var out map[uint][]byte
	err := h.do(t.Context(), "test", func(sh pkcs11.SessionHandle) error {
		o, err := h.findOne(sh, label, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return err
		}
		out, err = h.attrs(sh, o, types...)
		return err
	})
	if err != nil {
		t.Fatalf("attributes of %q: %v", label, err)
	}
	return out
}

// readValue tries to read CKA_VALUE of the single object of class labelled
// label and returns the token's answer.
func readValue(t *testing.T, h *HSM, class uint, label string) ([]byte, error) {
	t.Helper()
	var v []byte
	err := h.do(t.Context(), "test", func(sh pkcs11.SessionHandle) error {
		o, err := h.findOne(sh, label, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return err
		}
		a, err := h.attrs(sh, o, pkcs11.CKA_VALUE)
		v = a[pkcs11.CKA_VALUE]
		return err
	})
	return v, err
}

func wantErr(t *testing.T, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("error %q does not match %v", err, target)
		}
	}
}
