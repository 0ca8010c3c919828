package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	blst "github.com/supranational/blst/bindings/go"

	"github.com/regent-signer/regent/failover/beaconsim"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/keystore"
	"github.com/regent-signer/regent/slashing/eth"
)

// The simulated chain: mainnet's genesis validators root (so requests use
// mainnet domains), a fast clock and mainnet's 32 slots per epoch.
const (
	slotDuration  = 50 * time.Millisecond
	slotsPerEpoch = 32
)

// chain runs three simulated beacon nodes of one chain, as independent
// endpoints a region's finality watcher polls.
type chain struct {
	genesis   time.Time
	endpoints []string
	cancel    context.CancelFunc
}

func startChain() (*chain, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &chain{genesis: time.Now().Add(-10 * slotsPerEpoch * slotDuration), cancel: cancel}
	for range 3 {
		addr := freePort()
		cfg := beaconsim.DefaultConfig()
		cfg.GenesisValidatorsRoot = eth.Root(eth2.Mainnet().GenesisValidatorsRoot)
		cfg.GenesisTime = c.genesis
		cfg.SlotDuration = slotDuration
		cfg.SlotsPerEpoch = slotsPerEpoch
		errc := make(chan error, 1)
		go func() { errc <- beaconsim.Run(ctx, addr, cfg) }()
		c.endpoints = append(c.endpoints, "http://"+addr)
		select {
		case err := <-errc:
			cancel()
			return nil, fmt.Errorf("beacon simulator: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return c, nil
}

// epoch is the chain's current epoch.
func (c *chain) epoch() uint64 {
	return uint64(time.Since(c.genesis)/slotDuration) / slotsPerEpoch
}

func (c *chain) stop() { c.cancel() }

// validatorClient signs duties through the regions' Web3Signer API with
// the vc-1 client certificate, as a validator client would.
type validatorClient struct {
	http  *http.Client
	keys  []*blst.SecretKey
	pubs  []string // 0x-hex
	mu    sync.Mutex
	acked []ackedDuty
}

type ackedDuty struct {
	pub            string
	source, target uint64
}

func newValidatorClient(certs string, n int) (*validatorClient, error) {
	mat, err := pki.LoadTLS(filepath.Join(certs, "ca.crt"), filepath.Join(certs, "vc-1.crt"), filepath.Join(certs, "vc-1.key"))
	if err != nil {
		return nil, err
	}
	tc, err := mat.ClientConfig("127.0.0.1")
	if err != nil {
		return nil, err
	}
	vc := &validatorClient{http: httpClient(tc)}
	for i := range n {
		ikm := sha256.Sum256([]byte(fmt.Sprintf("regent demo validator %d", i)))
		sk := blst.KeyGen(ikm[:])
		vc.keys = append(vc.keys, sk)
		vc.pubs = append(vc.pubs, "0x"+hex.EncodeToString(new(blst.P1Affine).From(sk).Compress()))
	}
	return vc, nil
}

func httpClient(tc *tls.Config) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 64}}
}

// keystores returns EIP-2335 keystores of the validator keys (cheap KDF:
// the demo's keys are throwaway).
func (vc *validatorClient) keystores() ([]string, error) {
	var out []string
	for _, sk := range vc.keys {
		ks, err := keystore.Encrypt(sk.Serialize(), "demo-password", keystore.KDF{Function: "pbkdf2", C: 1 << 10})
		if err != nil {
			return nil, err
		}
		out = append(out, string(ks))
	}
	return out, nil
}

const forkInfo = `"fork_info":{"fork":{"previous_version":"0x04000000","current_version":"0x05000000","epoch":"364032"},"genesis_validators_root":"0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"}`

func attestationBody(slot, source, target uint64, blockRoot string) []byte {
	return []byte(fmt.Sprintf(`{"type":"ATTESTATION",%s,"attestation":{"slot":"%d","index":"0","beacon_block_root":"%s","source":{"epoch":"%d","root":"0x%064x"},"target":{"epoch":"%d","root":"0x%064x"}}}`,
		forkInfo, slot, blockRoot, source, source, target, target))
}

func blockRootFor(epoch uint64, salt string) string {
	h := sha256.Sum256([]byte(fmt.Sprint("block", epoch, salt)))
	return "0x" + hex.EncodeToString(h[:])
}

// sign posts one request to a region's signing API.
func (vc *validatorClient) sign(addr, pub string, body []byte, check bool) (int, string) {
	path := "/api/v1/eth2/sign/"
	if check {
		path = "/api/v1/eth2/check/"
	}
	req, _ := http.NewRequest("POST", "https://"+addr+path+pub, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := vc.http.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// attestEpoch has every validator attest (source e-1, target e) through
// the region at addr; it returns how many were signed and refused.
func (vc *validatorClient) attestEpoch(addr string, e uint64) (signed int, refusals map[int]int) {
	refusals = map[int]int{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, pub := range vc.pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := vc.sign(addr, pub, attestationBody(e*slotsPerEpoch+uint64(i%slotsPerEpoch), e-1, e, blockRootFor(e, "")), false)
			mu.Lock()
			defer mu.Unlock()
			if code == 200 {
				signed++
				vc.acked = append(vc.acked, ackedDuty{pub: pub, source: e - 1, target: e})
			} else {
				refusals[code]++
			}
		}()
	}
	wg.Wait()
	return signed, refusals
}

// holds counts acknowledged attestations a region's state protects: a
// conflicting vote for each is refused (412) by its dry-run endpoint.
func (vc *validatorClient) holds(addr string) (held, total int) {
	vc.mu.Lock()
	acked := append([]ackedDuty(nil), vc.acked...)
	vc.mu.Unlock()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		sem = make(chan struct{}, 16)
	)
	for _, a := range acked {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			code, _ := vc.sign(addr, a.pub, attestationBody(a.target*slotsPerEpoch, a.source, a.target, blockRootFor(a.target, "conflict")), true)
			if code == 412 {
				mu.Lock()
				held++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return held, len(acked)
}
