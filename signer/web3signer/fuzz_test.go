package web3signer

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
)

// recordingSigner remembers what the real pipeline answered last.
type recordingSigner struct {
	inner   Signer
	calls   int
	lastErr error
	lastSig [96]byte
}

func (r *recordingSigner) SignEth(ctx context.Context, c pipeline.Caller, pk [48]byte, req *eth2.Request) ([96]byte, error) {
	r.calls++
	r.lastSig, r.lastErr = r.inner.SignEth(ctx, c, pk, req)
	return r.lastSig, r.lastErr
}

func (r *recordingSigner) CheckEth(c pipeline.Caller, pk [48]byte, req *eth2.Request) error {
	r.calls++
	r.lastSig, r.lastErr = [96]byte{}, r.inner.CheckEth(c, pk, req)
	return r.lastErr
}

// FuzzSignHandler feeds arbitrary bodies to the sign and check endpoints
// of a handler over the real pipeline and state machine. Properties: no
// panic and never 500; a 200 from sign carries exactly the signature the
// pipeline returned after accepting; any other answer made no signature and
// added no accepted record; check never signs or records.
func FuzzSignHandler(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "eth2", "testdata", "requests", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed requests: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b[:len(b)/2], false)
	}
	for _, b := range [][]byte{attestation(5, 6, 1), attestation(5, 6, 2), attestation(7, 6, 1), block(12_000_000, 1), block(12_000_000, 2), block(11_000_000, 1)} {
		f.Add(b, false)
		f.Add(b, true)
	}
	for _, s := range []string{"", "{}", "null", "[]", `{"type":"ATTESTATION"}`, "\x00\xff"} {
		f.Add([]byte(s), false)
	}

	fx := newFixture(f, newDevPKI(f))
	rec := &recordingSigner{inner: fx.pipe}
	h := fx.handler(Config{Signer: rec})
	conn := fx.pki.connState(f, "vc-1")
	signPath, checkPath := fx.signPath(), fx.checkPath()

	f.Fuzz(func(t *testing.T, body []byte, check bool) {
		path := signPath
		if check {
			path = checkPath
		}
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		r.TLS = conn
		w := httptest.NewRecorder()
		calls, signed, accepted := rec.calls, fx.keys.count(), fx.accepted()
		h.ServeHTTP(w, r)

		if w.Code == http.StatusInternalServerError {
			t.Fatalf("500 for body %q: %q", body, w.Body)
		}
		called := rec.calls > calls
		if w.Code == http.StatusOK && (!called || rec.lastErr != nil) {
			t.Fatalf("200 without an accepting pipeline call: %v", rec.lastErr)
		}
		if w.Code != http.StatusOK && called && rec.lastErr == nil {
			t.Fatalf("status %d although the pipeline accepted", w.Code)
		}
		if check || w.Code != http.StatusOK {
			if fx.keys.count() != signed || fx.accepted() != accepted {
				t.Fatalf("status %d (check=%v) signed or recorded", w.Code, check)
			}
			return
		}
		if fx.keys.count() != signed+1 {
			t.Fatalf("200 with %d signatures", fx.keys.count()-signed)
		}
		if got := strings.TrimSpace(w.Body.String()); got != "0x"+hex.EncodeToString(rec.lastSig[:]) {
			t.Fatalf("answered %q, pipeline signed %x", got, rec.lastSig)
		}
	})
}
