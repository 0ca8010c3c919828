package web3signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	blst "github.com/supranational/blst/bindings/go"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/pipeline/pipelinetest"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
)

// mainnetGVR is mainnet's genesis validators root in the registry's form.
const mainnetGVR = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"

// devPKI is a development PKI written by pki.Init: CA, dc1..dc3,
// regentctl (operator) and the clients vc-1, vc-2.
type devPKI struct {
	dir string
}

func newDevPKI(t testing.TB) devPKI {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Init(dir, pki.Options{Clients: []string{"vc-1", "vc-2"}}); err != nil {
		t.Fatal(err)
	}
	return devPKI{dir: dir}
}

func (p devPKI) material(t testing.TB, name string) *pki.Material {
	t.Helper()
	m, err := pki.LoadTLS(filepath.Join(p.dir, pki.CACertFile), pki.CertPath(p.dir, name), pki.KeyPath(p.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// connState is what crypto/tls reports after verifying name's certificate.
func (p devPKI) connState(t testing.TB, name string) *tls.ConnectionState {
	t.Helper()
	leaf := p.material(t, name).Leaf()
	caPEM, err := os.ReadFile(filepath.Join(p.dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: chains}
}

// countingBLS wraps the test environment's keys: it counts signatures and
// can be told to fail.
type countingBLS struct {
	mu    sync.Mutex
	inner pipeline.BLSKeys
	n     int
	fail  error
}

func (c *countingBLS) SignBLS(pk bls.PublicKey, root [32]byte) ([96]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return [96]byte{}, c.fail
	}
	c.n++
	return c.inner.SignBLS(pk, root)
}

func (c *countingBLS) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type fakeHealth struct{ s HealthStatus }

func (f *fakeHealth) Health() HealthStatus { return f.s }

// fakeTokens accepts the tokens in its map.
type fakeTokens map[string]httpauth.Identity

func (f fakeTokens) VerifyToken(_ context.Context, tok string) (httpauth.Identity, error) {
	id, ok := f[tok]
	if !ok {
		return httpauth.Identity{}, errors.New("unknown token")
	}
	return id, nil
}

// fixture is a lease-holding region with one registered BLS key, policies
// for vc-1 (everything) and vc-2 (attestations only), and the handler.
type fixture struct {
	t      testing.TB
	env    *pipelinetest.Env
	keys   *countingBLS
	pipe   *pipeline.Pipeline
	pk     bls.PublicKey
	sk     *blst.SecretKey
	health *fakeHealth
	h      *Handler
	pki    devPKI
	logs   *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the handler's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func keyFromSeed(seed string) (*blst.SecretKey, bls.PublicKey) {
	ikm := sha256.Sum256([]byte(seed))
	sk := blst.KeyGen(ikm[:])
	var pk bls.PublicKey
	copy(pk[:], new(blst.P1Affine).From(sk).Compress())
	return sk, pk
}

func newFixture(t testing.TB, p devPKI) *fixture {
	t.Helper()
	env, err := pipelinetest.New(eth2.Mainnet())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, env: env, pki: p, health: &fakeHealth{}, logs: &syncBuffer{}}
	f.keys = &countingBLS{inner: env}
	seed := sha256.Sum256([]byte("web3signer test key"))
	f.sk, _ = keyFromSeed("web3signer test key")
	if f.pk, err = env.AddBLSKey(seed[:], eth2.Mainnet().GenesisValidatorsRoot); err != nil {
		t.Fatal(err)
	}
	if err := env.Allow("vc-1", []string{"*"}, []string{"*"}); err != nil {
		t.Fatal(err)
	}
	if err := env.Allow("vc-2", []string{"*"}, []string{"ATTESTATION"}); err != nil {
		t.Fatal(err)
	}
	f.pipe, err = pipeline.New(pipeline.Config{Recorder: env, State: env, BLS: f.keys, Network: eth2.Mainnet()})
	if err != nil {
		t.Fatal(err)
	}
	f.h = f.handler(Config{Signer: f.pipe})
	return f
}

// handler builds a Handler over the fixture, filling what cfg leaves out.
func (f *fixture) handler(cfg Config) *Handler {
	f.t.Helper()
	if cfg.Signer == nil {
		cfg.Signer = f.pipe
	}
	if cfg.State == nil {
		cfg.State = f.env
	}
	if cfg.Health == nil {
		cfg.Health = f.health
	}
	if cfg.Network.Name == "" {
		cfg.Network = eth2.Mainnet()
	}
	if cfg.Logger == nil {
		cfg.Logger = newJSONLogger(f.logs)
	}
	h, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

// snapshot is the state machine's snapshot bytes.
func (f *fixture) snapshot() []byte {
	f.t.Helper()
	var b bytes.Buffer
	if err := f.env.M.FSM.WriteSnapshot(&b); err != nil {
		f.t.Fatal(err)
	}
	return b.Bytes()
}

func (f *fixture) accepted() uint64 {
	var n uint64
	f.env.View(func(s *leader.State, _ uint64) { n, _ = s.Counts() })
	return n
}

func (f *fixture) apply(t commandpb.CommandType, msg proto.Message) {
	f.t.Helper()
	if _, err := f.env.M.Apply(t, msg); err != nil {
		f.t.Fatal(err)
	}
}

// do sends one request through the handler as identity (a certificate
// name from the dev PKI; "" for none).
func (f *fixture) do(h http.Handler, method, path string, body []byte, identity string, hdr map[string]string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if identity != "" {
		r.TLS = f.pki.connState(f.t, identity)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func (f *fixture) signPath() string { return "/api/v1/eth2/sign/" + f.pk.String() }

func (f *fixture) checkPath() string { return "/api/v1/eth2/check/" + f.pk.String() }

// verify checks that sigHex is pk's signature over the signing root eth2
// computes for body.
func verify(t testing.TB, pk bls.PublicKey, body []byte, sigHex string) {
	t.Helper()
	req, err := eth2.DecodeForNetwork(body, eth2.Mainnet())
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := req.SigningRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(sigHex, "0x"))
	if err != nil || len(raw) != 96 {
		t.Fatalf("signature %q is not 96 bytes of hex", sigHex)
	}
	sig := new(blst.P2Affine).Uncompress(raw)
	pub := new(blst.P1Affine).Uncompress(pk[:])
	if sig == nil || pub == nil {
		t.Fatal("signature or public key does not decompress")
	}
	if !sig.Verify(true, pub, true, root[:], []byte(bls.DST)) {
		t.Fatalf("signature does not verify against %s over %x", pk, root)
	}
}

const forkElectra = `"fork_info":{"fork":{"previous_version":"0x04000000","current_version":"0x05000000","epoch":"364032"},"genesis_validators_root":"` + mainnetGVR + `"}`

func hex32(b byte) string { return "0x" + strings.Repeat(fmt.Sprintf("%02x", b), 32) }

// attestation is an ATTESTATION request body; vote varies the block root.
func attestation(source, target uint64, vote byte) []byte {
	return fmt.Appendf(nil, `{"type":"ATTESTATION",%s,"attestation":{"slot":"%d","index":"0","beacon_block_root":"%s","source":{"epoch":"%d","root":"%s"},"target":{"epoch":"%d","root":"%s"}}}`,
		forkElectra, target*32, hex32(vote), source, hex32(1), target, hex32(2))
}

// block is a BLOCK_V2 (Electra header) request body; body varies the body root.
func block(slot uint64, body byte) []byte {
	return fmt.Appendf(nil, `{"type":"BLOCK_V2",%s,"beacon_block":{"version":"ELECTRA","block_header":{"slot":"%d","proposer_index":"7","parent_root":"%s","state_root":"%s","body_root":"%s"}}}`,
		forkElectra, slot, hex32(3), hex32(4), hex32(body))
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "eth2", "testdata", "requests", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
