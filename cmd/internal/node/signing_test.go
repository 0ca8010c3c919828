package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	blst "github.com/supranational/blst/bindings/go"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/hsm"
	"github.com/regent-signer/regent/signer/hsm/hsmtest"
	"github.com/regent-signer/regent/signer/keystore"
	"github.com/regent-signer/regent/signer/pipeline"
)

// crashSwitch makes the next BLS signature on its region fail after the
// record committed, and stops the region: the crash window between commit
// and sign.
type crashSwitch struct {
	armed atomic.Bool
	node  *Node         // the region to stop; set before arming
	done  chan struct{} // closed once the region stopped
}

func (c *crashSwitch) crash() {
	c.node.Close()
	close(c.done)
}

type crashingBLS struct {
	inner pipeline.BLSKeys
	sw    *crashSwitch
}

func (c crashingBLS) SignBLS(pk bls.PublicKey, root [32]byte) ([96]byte, error) {
	if c.sw.armed.CompareAndSwap(true, false) {
		go c.sw.crash()
		return [96]byte{}, errors.New("test: region crashed after commit")
	}
	return c.inner.SignBLS(pk, root)
}

type signingCluster struct {
	*testCluster
	crash  map[string]*crashSwitch
	client *http.Client // validator client vc-1
	admin  *http.Client // operator (Keymanager API)
}

// newSigningCluster starts dc1..dc3, each with its own SoftHSM2 token (one
// PKCS#11 module for the process) and the signing API on mainnet.
func newSigningCluster(t *testing.T) *signingCluster {
	t.Helper()
	env := hsmtest.New(t)
	pinDir := t.TempDir()
	for _, r := range []string{"dc1", "dc2", "dc3"} {
		env.InitToken(t, "regent-"+r, "1234")
		if err := os.WriteFile(filepath.Join(pinDir, r), []byte("1234\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	module, err := hsm.LoadModule(env.Module)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = module.Close() }) // after the regions close (cleanups run last-in first-out)
	sc := &signingCluster{crash: map[string]*crashSwitch{}}
	for _, r := range []string{"dc1", "dc2", "dc3"} {
		sc.crash[r] = &crashSwitch{}
	}
	sc.testCluster = newTestClusterFull(t, &testCluster{
		configure: func(r string, c *Config) {
			c.HSM.Module, c.HSM.TokenLabel, c.HSM.PINFile = env.Module, "regent-"+r, filepath.Join(pinDir, r)
			c.Network = "mainnet"
			c.Signing.HTTP = freeAddr(t)
		},
		opts: func(r string, o *Options) {
			o.HSMModule = module
			sw := sc.crash[r]
			o.WrapBLS = func(in pipeline.BLSKeys) pipeline.BLSKeys { return crashingBLS{inner: in, sw: sw} }
		},
	})
	sc.client = sc.httpClient("vc-1")
	sc.admin = sc.httpClient("regentctl")
	sc.waitFor(20*time.Second, "every region to publish its HSM wrapping key", func() error {
		var n int
		sc.nodes["dc1"].FSM.View(func(s *leader.State, _ uint64) { n = len(s.Regions()) })
		if n != 3 {
			return fmt.Errorf("%d regions registered", n)
		}
		return nil
	})
	return sc
}

func (sc *signingCluster) httpClient(identity string) *http.Client {
	sc.t.Helper()
	mat, err := pki.LoadTLS(filepath.Join(sc.certs, "ca.crt"), filepath.Join(sc.certs, identity+".crt"), filepath.Join(sc.certs, identity+".key"))
	if err != nil {
		sc.t.Fatal(err)
	}
	tc, err := mat.ClientConfig("127.0.0.1")
	if err != nil {
		sc.t.Fatal(err)
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: false, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
}

func (sc *signingCluster) url(region, path string) string {
	return "https://" + sc.cfgs[region].Signing.HTTP + path
}

// importKey imports a fresh BLS key through dc1's Keymanager API and waits
// until every region sealed it.
func (sc *signingCluster) importKey(seed string) (*blst.SecretKey, bls.PublicKey) {
	sc.t.Helper()
	ikm := sha256.Sum256([]byte(seed))
	sk := blst.KeyGen(ikm[:])
	var pk bls.PublicKey
	copy(pk[:], new(blst.P1Affine).From(sk).Compress())
	ks, err := keystore.Encrypt(sk.Serialize(), "pw", keystore.KDF{Function: "pbkdf2", C: 1 << 10})
	if err != nil {
		sc.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"keystores": []string{string(ks)}, "passwords": []string{"pw"}})
	resp, err := sc.admin.Post(sc.url("dc1", "/eth/v1/keystores"), "application/json", bytes.NewReader(body))
	if err != nil {
		sc.t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(out), `"imported"`) {
		sc.t.Fatalf("keystore import: %d %s", resp.StatusCode, out)
	}
	for _, r := range sc.regions {
		sc.waitFor(20*time.Second, r+" to seal the key", func() error {
			if _, err := os.Stat(filepath.Join(sc.cfgs[r].DataDir, "keys")); err != nil {
				return err
			}
			for _, k := range sc.nodes[r].signing.manager.List() {
				if bytes.Equal(k.Pubkey, pk[:]) && k.Local {
					return nil
				}
			}
			return errors.New("not yet")
		})
	}
	return sk, pk
}

func (sc *signingCluster) allow(identity string) {
	sc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sc.nodes["dc1"].Service.Propose(ctx, commandpb.CommandType_SET_POLICY,
		&commandpb.SetPolicy{Identity: identity, KeyPatterns: []string{"*"}, MessageTypes: []string{"*"}}); err != nil {
		sc.t.Fatal(err)
	}
}

// sign posts body to region and returns the status and the response text.
func (sc *signingCluster) sign(region string, pk bls.PublicKey, body []byte) (int, string) {
	sc.t.Helper()
	req, _ := http.NewRequest("POST", sc.url(region, "/api/v1/eth2/sign/0x"+hex.EncodeToString(pk[:])), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/plain")
	resp, err := sc.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out))
}

func attestationBody(t *testing.T, source, target uint64, blockRoot string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../../signer/eth2/testdata/requests/attestation.json")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, `"signingRoot"`)
	j := strings.Index(s[i:], "\n")
	s = s[:i] + s[i+j+1:]
	s = strings.Replace(s, `"epoch": "364166"`, fmt.Sprintf(`"epoch": "%d"`, source), 1)
	s = strings.Replace(s, `"epoch": "364167"`, fmt.Sprintf(`"epoch": "%d"`, target), 1)
	s = strings.Replace(s, "0x76de63474a287ee7a299d38303a30942f2ca6f6470367a13da15ef169d0e5640", blockRoot, 1)
	return []byte(s)
}

func blockRoot(n int) string { return "0x" + strings.Repeat(fmt.Sprintf("%02x", n), 32) }

// expectSig checks sig is sk's signature over the request's signing root.
func expectSig(t *testing.T, sk *blst.SecretKey, body []byte, sig string) {
	t.Helper()
	req, err := eth2.DecodeForNetwork(body, eth2.Mainnet())
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := req.SigningRoot()
	if err != nil {
		t.Fatal(err)
	}
	want := "0x" + hex.EncodeToString(new(blst.P2Affine).Sign(sk, root[:], []byte(bls.DST)).Compress())
	if sig != want {
		t.Fatalf("signature %s, want %s", sig, want)
	}
}

func TestSigningAcrossRegions(t *testing.T) {
	sc := newSigningCluster(t)
	sk, pk := sc.importKey("signing test key")
	sc.allow("vc-1")
	sc.waitFor(20*time.Second, "dc1 to unseal the key", func() error {
		if n, holding := sc.nodes["dc1"].signing.guard.Loaded(); n < 1 || !holding {
			return fmt.Errorf("dc1 guard: %d keys, holding %v", n, holding)
		}
		return nil
	})

	first := attestationBody(t, 100, 101, blockRoot(1))
	code, sig := sc.sign("dc1", pk, first)
	if code != 200 {
		t.Fatalf("sign on dc1: %d %s", code, sig)
	}
	expectSig(t, sk, first, sig)
	if code, again := sc.sign("dc1", pk, first); code != 200 || again != sig {
		t.Fatalf("identical retry: %d %s", code, again)
	}

	// The same duty with another root is refused as slashable on every region.
	conflict := attestationBody(t, 100, 101, blockRoot(2))
	for _, r := range sc.regions {
		sc.waitFor(10*time.Second, r+" to refuse the double vote with 412", func() error {
			if code, msg := sc.sign(r, pk, conflict); code != 412 || !strings.Contains(msg, "attestation_double_vote") {
				return fmt.Errorf("%s: %d %s", r, code, msg)
			}
			return nil
		})
	}

	// A standby region cannot sign: 503, and nothing is recorded.
	next := attestationBody(t, 101, 102, blockRoot(3))
	if code, msg := sc.sign("dc2", pk, next); code != 503 {
		t.Fatalf("sign on dc2 while dc1 holds the lease: %d %s", code, msg)
	}
	if code, sig := sc.sign("dc1", pk, attestationBody(t, 101, 102, blockRoot(4))); code != 200 {
		t.Fatalf("dc2's refused request was recorded: dc1 now refuses a different vote at that target: %d %s", code, sig)
	}

	// Concurrent conflicting requests for one duty, spread over the regions:
	// exactly one signature.
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		signed []string
	)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := sc.regions[i%3]
			if code, sig := sc.sign(r, pk, attestationBody(t, 102, 103, blockRoot(10+i))); code == 200 {
				mu.Lock()
				signed = append(signed, sig)
				mu.Unlock()
			} else if code != 412 && code != 503 {
				t.Errorf("%s: unexpected %d %s", r, code, sig)
			}
		}()
	}
	wg.Wait()
	if len(signed) != 1 {
		t.Fatalf("%d conflicting votes were signed, want exactly 1", len(signed))
	}

	// dc1 dies after its record committed and before it signed: no
	// signature leaves; after a handover dc2 returns the same signature the
	// record covers.
	crashBody := attestationBody(t, 103, 104, blockRoot(5))
	sw := sc.crash["dc1"]
	sw.node, sw.done = sc.nodes["dc1"], make(chan struct{})
	sw.armed.Store(true)
	if code, msg := sc.sign("dc1", pk, crashBody); code == 200 {
		t.Fatalf("a crashed region returned a signature: %s", msg)
	}
	<-sw.done
	delete(sc.nodes, "dc1")
	for _, r := range []string{"dc2", "dc3"} {
		sc.waitFor(10*time.Second, r+" to hold the committed record", func() error {
			if code, msg := sc.sign(r, pk, attestationBody(t, 103, 104, blockRoot(6))); code != 412 {
				return fmt.Errorf("%d %s", code, msg)
			}
			return nil
		})
	}
	l := sc.waitLeader("dc2", "dc3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sc.nodes[l].Service.Propose(ctx, commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1, Reason: "dc1 lost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.nodes[l].Service.Propose(ctx, commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	var retry string
	sc.waitFor(20*time.Second, "dc2 to sign the retried duty", func() error {
		code, msg := sc.sign("dc2", pk, crashBody)
		if code != 200 {
			return fmt.Errorf("%d %s", code, msg)
		}
		retry = msg
		return nil
	})
	expectSig(t, sk, crashBody, retry)
	if code, msg := sc.sign("dc3", pk, crashBody); code != 503 {
		t.Fatalf("dc3 signs while dc2 holds the lease: %d %s", code, msg)
	}
}
