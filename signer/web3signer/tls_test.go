package web3signer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/regent-signer/regent/raft/pki"
)

// TestSignOverMutualTLS runs the handler in the server NewServer builds,
// over real TCP and TLS 1.3 with certificates from the development PKI:
// the validator client's certificate is its identity.
func TestSignOverMutualTLS(t *testing.T) {
	p := newDevPKI(t)
	f := newFixture(t, p)
	serverTLS, err := p.material(t, "dc1").ServerConfig(pki.RoleClient, pki.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), serverTLS, f.h)
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
	})
	base := "https://" + ln.Addr().String()
	client := func(name string) *http.Client {
		cfg, err := p.material(t, name).ClientConfig("localhost")
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	vc := client("vc-1")

	body := attestation(70, 71, 3)
	req, _ := http.NewRequest(http.MethodPost, base+f.signPath(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := vc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("sign: %d %q", resp.StatusCode, raw)
	}
	var out struct{ Signature string }
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	verify(t, f.pk, body, out.Signature)

	resp, err = vc.Get(base + "/api/v1/eth2/publicKeys")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := json.NewDecoder(resp.Body).Decode(&keys); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(keys) != 1 || keys[0] != f.pk.String() {
		t.Fatalf("publicKeys %v", keys)
	}

	// A region's node certificate is not a signing client: the TLS layer
	// refuses it before any handler runs.
	if resp, err := client("dc2").Get(base + "/upcheck"); err == nil {
		resp.Body.Close()
		t.Fatalf("node certificate accepted: %d", resp.StatusCode)
	}
	if f.keys.count() != 1 {
		t.Fatalf("%d signatures, want 1", f.keys.count())
	}
}

func TestNewServerTimeouts(t *testing.T) {
	srv := NewServer("127.0.0.1:0", nil, http.NotFoundHandler())
	if srv.ReadHeaderTimeout != ServerReadHeaderTimeout || srv.ReadTimeout != ServerReadTimeout ||
		srv.WriteTimeout != ServerWriteTimeout || srv.IdleTimeout != ServerIdleTimeout || srv.MaxHeaderBytes != ServerMaxHeaderBytes {
		t.Fatalf("server limits not set: %+v", srv)
	}
	if ServerWriteTimeout <= DefaultSignTimeout {
		t.Fatal("the write timeout must exceed the sign timeout")
	}
}
