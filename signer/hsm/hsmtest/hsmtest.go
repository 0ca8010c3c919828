// Package hsmtest gives tests a private SoftHSM2 instance: a configuration
// file and token directory under t.TempDir(), selected through SOFTHSM2_CONF,
// with tokens initialised by softhsm2-util.
//
// SoftHSM2 reads SOFTHSM2_CONF when the library is initialised, so a test
// creates its Env before loading the module, loads the module once
// (hsm.LoadModule or hsm.Open) and closes it before the test ends. Tests using
// an Env cannot run in parallel (t.Setenv).
package hsmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// DefaultModule is where Debian and Ubuntu install SoftHSM2.
const DefaultModule = "/usr/lib/softhsm/libsofthsm2.so"

// ModulePath returns $REGENT_TEST_PKCS11_MODULE, or DefaultModule.
func ModulePath() string {
	if p := os.Getenv("REGENT_TEST_PKCS11_MODULE"); p != "" {
		return p
	}
	return DefaultModule
}

// Env is one test's private SoftHSM2 configuration.
type Env struct {
	// Module is the path of the SoftHSM2 library.
	Module string
	// Conf is the SoftHSM2 configuration file (also in SOFTHSM2_CONF).
	Conf string
	// TokenDir holds the tokens' files.
	TokenDir string
}

// New creates the configuration and points SOFTHSM2_CONF at it for the rest
// of the test. It skips the test, saying why, when the SoftHSM2 library is
// not installed; any other problem fails the test.
func New(t testing.TB) *Env {
	t.Helper()
	mod := ModulePath()
	if _, err := os.Stat(mod); err != nil {
		t.Skipf("SoftHSM2 is not installed (%s: %v); install softhsm2 to run the PKCS#11 tests", mod, err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	return &Env{Module: mod, Conf: conf, TokenDir: tokens}
}

// InitToken initialises a new token labelled label with the given user PIN
// and SO PIN "5678". Tokens must be initialised before the module is loaded:
// SoftHSM2 scans the token directory at initialisation.
func (e *Env) InitToken(t testing.TB, label, userPIN string) {
	t.Helper()
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", userPIN, "--so-pin", "5678")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+e.Conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token %s: %v\n%s", label, err, out)
	}
}
