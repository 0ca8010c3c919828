package keymanager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	blst "github.com/supranational/blst/bindings/go"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/keystore"
	"github.com/regent-signer/regent/signer/pipeline/pipelinetest"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
	"github.com/regent-signer/regent/slashing/eth"
)

// fakeProposer applies commands to the test state machine.
type fakeProposer struct {
	mu    sync.Mutex
	env   *pipelinetest.Env
	err   error // returned instead of applying
	calls []*commandpb.ImportInterchange
}

func (p *fakeProposer) Propose(_ context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ic, ok := msg.(*commandpb.ImportInterchange); ok {
		p.calls = append(p.calls, proto.Clone(ic).(*commandpb.ImportInterchange))
	}
	if p.err != nil {
		return fsm.Response{}, p.err
	}
	v, err := p.env.M.Apply(t, msg)
	return fsm.Response{Value: v, Err: err}, err
}

// fakeImporter models the KeyImporter contract over the test state
// machine, as signer/keysync is meant to behave.
type fakeImporter struct {
	mu  sync.Mutex
	env *pipelinetest.Env
	gvr eth.Root
	// held: keys whose secrets the importer holds.
	held map[bls.PublicKey]bool
	// historyAtImport records, per imported key, whether the replicated
	// state already held protection history for it when ImportKeystore ran.
	historyAtImport map[bls.PublicKey]bool
	importErr       error
	deleteErr       error
	deleteNil       bool // DeleteKey returns no interchange
	imports         int
	deletes         int
}

func (f *fakeImporter) registry(pk bls.PublicKey) (leader.Key, bool, bool) {
	var k leader.Key
	var ok, history bool
	f.env.View(func(s *leader.State, _ uint64) {
		k, ok = s.Key(pk[:])
		history = len(s.Eth().Export(f.gvr, []eth.Pubkey{eth.Pubkey(pk)}).Data) > 0
	})
	return k, ok, history
}

func (f *fakeImporter) ImportKeystore(_ context.Context, keystoreJSON []byte, password string) (bls.PublicKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imports++
	if f.importErr != nil {
		return bls.PublicKey{}, f.importErr
	}
	secret, pub, err := keystore.Decrypt(keystoreJSON, password)
	clear(secret)
	if err != nil {
		return bls.PublicKey{}, err
	}
	pk := bls.PublicKey(pub)
	k, registered, history := f.registry(pk)
	if f.held[pk] || (registered && k.Disabled) {
		return pk, fmt.Errorf("fake: %w", ErrDuplicate)
	}
	f.historyAtImport[pk] = history
	if !registered {
		if _, err := f.env.M.Apply(commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: []*commandpb.AddKey{{
			Pubkey: pk[:], Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: leader.RootHex(f.gvr)}}}); err != nil {
			return pk, err
		}
	}
	f.held[pk] = true
	return pk, nil
}

func (f *fakeImporter) DeleteKey(_ context.Context, pk bls.PublicKey) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	if f.deleteErr != nil {
		return nil, f.deleteErr
	}
	k, registered, _ := f.registry(pk)
	if !registered || !f.held[pk] && !k.Disabled {
		return nil, fmt.Errorf("fake: %w", ErrNotFound)
	}
	if !k.Disabled {
		if _, err := f.env.M.Apply(commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: pk[:], Reason: "deleted"}); err != nil {
			return nil, err
		}
	}
	delete(f.held, pk)
	if f.deleteNil {
		return nil, nil
	}
	var doc []byte
	var err error
	f.env.View(func(s *leader.State, _ uint64) {
		doc, err = eth.EncodeInterchange(s.Eth().Export(f.gvr, []eth.Pubkey{eth.Pubkey(pk)}))
	})
	return doc, err
}

func (f *fakeImporter) List() []ListedKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ListedKey
	for pk := range f.held {
		out = append(out, ListedKey{Pubkey: pk, DerivationPath: "m/12381/3600/0/0/0"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pubkey.String() < out[j].Pubkey.String() })
	return out
}

func (f *fakeImporter) counts() (imports, deletes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.imports, f.deletes
}

type fakeTokens map[string]httpauth.Identity

func (f fakeTokens) VerifyToken(_ context.Context, tok string) (httpauth.Identity, error) {
	id, ok := f[tok]
	if !ok {
		return httpauth.Identity{}, errors.New("unknown token")
	}
	return id, nil
}

// testKey is a BLS key with a cheap keystore.
type testKey struct {
	pk       bls.PublicKey
	keystore string
	password string
}

func newTestKey(t testing.TB, seed, password string) testKey {
	t.Helper()
	ikm := sha256.Sum256([]byte(seed))
	sk, pk := keyPair(ikm[:])
	ks, err := keystore.Encrypt(sk.Serialize(), password, keystore.KDF{Function: "pbkdf2", C: 2})
	if err != nil {
		t.Fatal(err)
	}
	return testKey{pk: pk, keystore: string(ks), password: password}
}

// keyPair derives a BLS key from ikm as pipelinetest.Env.AddBLSKey does.
func keyPair(ikm []byte) (*blst.SecretKey, bls.PublicKey) {
	sk := blst.KeyGen(ikm)
	var pk bls.PublicKey
	copy(pk[:], new(blst.P1Affine).From(sk).Compress())
	return sk, pk
}

// history is an interchange document for mainnet with one block at slot
// and one attestation (source, target) per key.
func history(t testing.TB, gvr eth.Root, recs map[bls.PublicKey][3]uint64) string {
	t.Helper()
	ic := &eth.Interchange{GenesisValidatorsRoot: gvr}
	keys := make([]bls.PublicKey, 0, len(recs))
	for pk := range recs {
		keys = append(keys, pk)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, pk := range keys {
		r := recs[pk]
		ic.Data = append(ic.Data, eth.InterchangeRecord{
			Pubkey:             eth.Pubkey(pk),
			SignedBlocks:       []eth.SignedBlock{{Slot: r[0], SigningRoot: eth.KnownRoot(eth.Root{1})}},
			SignedAttestations: []eth.SignedAttestation{{SourceEpoch: r[1], TargetEpoch: r[2], SigningRoot: eth.KnownRoot(eth.Root{2})}},
		})
	}
	b, err := eth.EncodeInterchange(ic)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type devPKI struct{ dir string }

func newDevPKI(t testing.TB) devPKI {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Init(dir, pki.Options{Clients: []string{"vc-1"}, OperatorName: "alice"}); err != nil {
		t.Fatal(err)
	}
	return devPKI{dir: dir}
}

func (p devPKI) connState(t testing.TB, name string) *tls.ConnectionState {
	t.Helper()
	m, err := pki.LoadTLS(filepath.Join(p.dir, pki.CACertFile), pki.CertPath(p.dir, name), pki.KeyPath(p.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(p.dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	chains, err := m.Leaf().Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{m.Leaf()}, VerifiedChains: chains}
}

// fixture is a region's replicated state with the fakes and the handler.
type fixture struct {
	t        testing.TB
	env      *pipelinetest.Env
	prop     *fakeProposer
	imp      *fakeImporter
	h        *Handler
	gvr      eth.Root
	operator *tls.ConnectionState
	client   *tls.ConnectionState
}

func newFixture(t testing.TB, p devPKI, edit func(c *Config)) *fixture {
	t.Helper()
	env, err := pipelinetest.New(eth2.Mainnet())
	if err != nil {
		t.Fatal(err)
	}
	gvr := eth.Root(eth2.Mainnet().GenesisValidatorsRoot)
	f := &fixture{t: t, env: env, gvr: gvr,
		prop:     &fakeProposer{env: env},
		imp:      &fakeImporter{env: env, gvr: gvr, held: map[bls.PublicKey]bool{}, historyAtImport: map[bls.PublicKey]bool{}},
		operator: p.connState(t, pki.OperatorFileBase),
		client:   p.connState(t, "vc-1"),
	}
	cfg := Config{Importer: f.imp, Proposer: f.prop, State: env, Network: eth2.Mainnet()}
	if edit != nil {
		edit(&cfg)
	}
	if f.h, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// state is the leader state's snapshot (without the FSM's applied index).
func (f *fixture) state() []byte { return f.stateOf(f.t) }

// stateOf is state reporting failures to t (inside fuzz targets).
func (f *fixture) stateOf(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	f.env.View(func(s *leader.State, _ uint64) { err = s.WriteSnapshot(&b) })
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// do sends a request as the operator (conn nil: no certificate).
func (f *fixture) do(method string, body []byte, conn *tls.ConnectionState, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, PathKeystores, bytes.NewReader(body))
	r.TLS = conn
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func importBody(t testing.TB, keys []testKey, passwords []string, protection *string) []byte {
	t.Helper()
	req := map[string]any{}
	ks := []string{}
	for _, k := range keys {
		ks = append(ks, k.keystore)
	}
	req["keystores"] = ks
	if passwords == nil {
		passwords = []string{}
		for _, k := range keys {
			passwords = append(passwords, k.password)
		}
	}
	req["passwords"] = passwords
	if protection != nil {
		req["slashing_protection"] = *protection
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func deleteBody(t testing.TB, pubkeys ...string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"pubkeys": pubkeys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeImport(t testing.TB, w *httptest.ResponseRecorder) []KeyStatus {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp ImportResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Data
}

func decodeDelete(t testing.TB, w *httptest.ResponseRecorder) ([]KeyStatus, *eth.Interchange) {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp DeleteResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	ic, err := eth.DecodeInterchange([]byte(resp.SlashingProtection))
	if err != nil {
		t.Fatalf("slashing_protection is not an interchange: %v", err)
	}
	return resp.Data, ic
}

// denies reports whether the replicated rules refuse an attestation
// (source, target) with a fresh root for pk: its history is in force.
func (f *fixture) denies(pk bls.PublicKey, source, target uint64) bool {
	var o leader.Outcome
	f.env.View(func(s *leader.State, _ uint64) {
		o = s.CheckRecord(&commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
			GenesisValidatorsRoot: f.gvr[:], Pubkey: pk[:], SourceEpoch: source, TargetEpoch: target, SigningRoot: bytes.Repeat([]byte{9}, 32)}}})
	})
	return !o.Accepted()
}

func (f *fixture) registered(pk bls.PublicKey) (leader.Key, bool) {
	var k leader.Key
	var ok bool
	f.env.View(func(s *leader.State, _ uint64) { k, ok = s.Key(pk[:]) })
	return k, ok
}

func ptr(s string) *string { return &s }
