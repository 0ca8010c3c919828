package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/regent-signer/regent/raft/pki"
)

const validators = 200

// initHSM gives a region its own SoftHSM2 token directory and token.
func (d *demo) initHSM(r *region) error {
	dir := d.path("hsm", r.name)
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		return err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + filepath.Join(dir, "tokens") + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "regent-"+r.name, "--pin", "1234", "--so-pin", "5678")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("softhsm2-util for %s: %v: %s", r.name, err, out)
	}
	r.env = []string{"SOFTHSM2_CONF=" + conf}
	return os.WriteFile(filepath.Join(dir, "pin"), []byte("1234\n"), 0o600)
}

func (d *demo) run() error {
	abs, err := filepath.Abs(d.bin)
	if err != nil {
		return err
	}
	d.bin = abs
	fmt.Fprintf(d.out, "Regent demo: three regions, one signing lease, audited handover and disaster recovery.\nWorking directory: %s\n", d.dir)
	ctx := context.Background()

	d.chapter("Setup: certificates, three operators, one HSM per region, a simulated chain")
	if err := d.regentctl(io.Discard, "pki", "init", "--dir", d.path("certs")); err != nil {
		return err
	}
	d.say("mutual-TLS certificates for dc1, dc2, dc3, the operator tool and validator client vc-1")
	opsFile, err := d.writeOperators()
	if err != nil {
		return err
	}
	d.say("operators alice (admin), bob and carol; handovers and registry changes need 2 of 3 signatures")
	for _, name := range []string{"dc1", "dc2", "dc3"} {
		d.regions = append(d.regions, &region{name: name, raftAddr: freePort(), grpcAdr: freePort(), httpAddr: freePort(), signAddr: freePort()})
	}
	for _, r := range d.regions {
		if err := d.initHSM(r); err != nil {
			return err
		}
	}
	d.say("a SoftHSM2 token per region (PKCS#11): each region's keys are sealed by its own HSM")
	chain, err := startChain()
	if err != nil {
		return err
	}
	defer chain.stop()
	d.chain = chain
	d.say("three simulated beacon nodes of one chain (a slot every %v, finality two epochs behind): %s", slotDuration, strings.Join(chain.endpoints, ", "))

	d.chapter("Three regions start: Raft over mutual TLS, bolt files on disk, the lease granted to dc1")
	for _, r := range d.regions {
		if err := d.writeConfig(r, opsFile); err != nil {
			return err
		}
		if err := d.start(r); err != nil {
			return err
		}
		d.say("%s: raft %s, operator API %s, signing API https://%s (log %s)", r.name, r.raftAddr, r.grpcAdr, r.signAddr, d.path(r.name+".log"))
	}
	c, err := newClient(d.path("certs"), d.regions)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.waitFor(ctx, 60*time.Second, "lease active on dc1 at epoch 1, Raft leadership on dc1", func() error {
		if err := c.expectLease("dc1", 1, "active", d.regions...); err != nil {
			return err
		}
		l, err := c.leaderAmong(ctx, "dc1", "dc2", "dc3")
		if err == nil && l != "dc1" {
			return fmt.Errorf("leader is %s", l)
		}
		return err
	}); err != nil {
		return err
	}
	if err := c.waitFor(ctx, 30*time.Second, "the operator registry", func() error {
		st, err := c.status(ctx, "dc1")
		if err != nil {
			return err
		}
		if st.ClusterId != clusterID || st.Operators != 3 {
			return fmt.Errorf("cluster %q with %d operators", st.ClusterId, st.Operators)
		}
		return nil
	}); err != nil {
		return err
	}
	d.say("the state machine granted the lease to dc1 at epoch 1; the first leader bootstrapped the operator registry from %s", opsFile)
	d.status()

	d.chapter(fmt.Sprintf("%d validator keys imported once, reaching every region's HSM", validators))
	vc, err := newValidatorClient(d.path("certs"), validators)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := d.importKeys(vc); err != nil {
		return err
	}
	for _, r := range d.regions {
		if err := c.waitFor(ctx, 60*time.Second, r.name+" to seal every key", func() error { return d.localKeys(r, validators) }); err != nil {
			return err
		}
	}
	d.say("Keymanager API on dc1: %d EIP-2335 keystores; each secret was wrapped for every region's HSM key and sealed there (%v)", validators, time.Since(start).Round(time.Millisecond))
	if _, err := d.ctl("alice", "policy", "set", "--identity", "vc-1", "--keys", "*", "--types", "ATTESTATION,BLOCK_V2,AGGREGATE_AND_PROOF_V2,RANDAO_REVEAL"); err != nil {
		return err
	}
	d.say("alice signed the client policy (policy changes need 1 signature); the state machine verified it against the operator registry")

	d.chapter("dc1 signs the validators' duties")
	e, err := d.attest(ctx, c, vc, d.region("dc1"), 3)
	if err != nil {
		return err
	}
	code, body := vc.sign(d.region("dc2").signAddr, vc.pubs[0], attestationBody(e*slotsPerEpoch, e-1, e, blockRootFor(e, "other")), false)
	d.say("a faulty client asks standby dc2 for a different vote at target epoch %d: %d %s", e, code, shorten(body, 110))
	if code != 412 {
		return fmt.Errorf("double vote at dc2: %d, want 412", code)
	}
	code, body = vc.sign(d.region("dc2").signAddr, vc.pubs[0], attestationBody((e+50)*slotsPerEpoch, e+49, e+50, blockRootFor(e+50, "")), false)
	d.say("and for a fresh duty: %d %s", code, shorten(body, 110))
	if code != 503 {
		return fmt.Errorf("fresh duty at standby dc2: %d, want 503", code)
	}

	d.chapter("Planned handover dc1 → dc2: request, two approvals, fence, finality, activation")
	out, err := d.ctl("alice", "handover", "request", "--to", "dc2", "--reason", "planned maintenance of dc1")
	if err != nil {
		return err
	}
	var hid string
	if _, err := fmt.Sscanf(out, "handover %s requested", &hid); err != nil {
		return fmt.Errorf("handover id in %q: %w", out, err)
	}
	if err := c.expectLease("dc1", 1, "active", d.region("dc1")); err != nil {
		return fmt.Errorf("one approval fenced the lease: %w", err)
	}
	d.say("1 of 2 approvals (alice's request counts as hers); dc1 still signs")
	fenceAt := time.Now()
	if _, err := d.ctl("bob", "handover", "approve", hid); err != nil {
		return err
	}
	if _, err := d.ctl("bob", "handover", "watch", hid, "--timeout", "90s"); err != nil {
		return err
	}
	if err := c.waitFor(ctx, 30*time.Second, "dc2 active at epoch 2 everywhere", func() error {
		return c.expectLease("dc2", 2, "active", d.region("dc1"), d.region("dc2"), d.region("dc3"))
	}); err != nil {
		return err
	}
	d.say("the lease was fenced in bob's approval entry; dc2's watcher saw 2 of 3 beacon nodes finalize past the fenced high-water mark and confirmed it; dc2 holds the lease at epoch 2 (%v after the fence)", time.Since(fenceAt).Round(100*time.Millisecond))
	d.status()
	if _, err := d.attest(ctx, c, vc, d.region("dc2"), 1); err != nil {
		return err
	}
	if code, _ := vc.sign(d.region("dc1").signAddr, vc.pubs[0], attestationBody(0, 900, 901, blockRootFor(901, "")), false); code != 503 {
		return fmt.Errorf("old holder dc1 answered %d, want 503", code)
	}
	d.say("dc1 no longer signs (503): its keys were zeroed when it applied the fence")

	d.chapter("A standing DR policy: dc3 may take over after 30 s without a heartbeat")
	drFile := d.path("operators", "dr-policy.cmd")
	if _, err := d.ctl("alice", "dr", "set", "--region", "dc3", "--silence", "30s", "--out", drFile); err != nil {
		return err
	}
	if _, err := d.ctl("bob", "cosign", drFile); err != nil {
		return err
	}
	if _, err := d.ctl("bob", "submit", drFile); err != nil {
		return err
	}
	d.say("alice signed the policy into a file, bob co-signed it (registry changes need 2 of 3 admins), bob submitted it")

	d.chapter("Disaster: dc2's process is killed with SIGKILL")
	if err := d.kill(d.region("dc2")); err != nil {
		return err
	}
	killedAt := time.Now()
	d.say("dc2 is gone; dc1 and dc3 are a majority; dc3 watches for the holder's heartbeats")
	if err := c.waitFor(ctx, 120*time.Second, "dc3 active at epoch 3", func() error {
		return c.expectLease("dc3", 3, "active", d.region("dc1"), d.region("dc3"))
	}); err != nil {
		return err
	}
	d.say("after 30 s of silence dc3 claimed the lease under the DR policy (fence), waited for finality and activated at epoch 3 (%v after the kill)", time.Since(killedAt).Round(100*time.Millisecond))
	d.status()
	if _, err := d.attest(ctx, c, vc, d.region("dc3"), 1); err != nil {
		return err
	}
	for _, name := range []string{"dc1", "dc3"} {
		held, total := vc.holds(d.region(name).signAddr)
		d.say("%s protects %d of %d acknowledged attestations (a conflicting vote for each is refused)", name, held, total)
		if held != total {
			return fmt.Errorf("%s protects %d of %d acknowledged attestations", name, held, total)
		}
	}

	d.chapter("dc2 comes back")
	if err := d.start(d.region("dc2")); err != nil {
		return err
	}
	if err := c.waitFor(ctx, 60*time.Second, "dc2 to catch up", func() error { return c.caughtUp(ctx, "dc2") }); err != nil {
		return err
	}
	if code, _ := vc.sign(d.region("dc2").signAddr, vc.pubs[1], attestationBody(0, 900, 901, blockRootFor(901, "")), false); code != 503 {
		return fmt.Errorf("returning dc2 answered %d, want 503", code)
	}
	d.say("dc2 replayed the log, sees dc3 holding epoch 3, and refuses to sign under its old epoch (503)")

	d.chapter("The audit chain")
	if err := d.audit(); err != nil {
		return err
	}

	if d.keep {
		return d.leaveRunning()
	}
	d.chapter("Shutting down")
	d.stopAll()
	d.say("all regions stopped cleanly. Data, configs and logs are in %s", d.dir)
	fmt.Fprintln(d.out, "\nDEMO OK")
	return nil
}

// attest has every validator attest for n consecutive epochs through r,
// starting at the chain's current epoch; it returns the last epoch.
func (d *demo) attest(ctx context.Context, c *demoClient, vc *validatorClient, r *region, n int) (uint64, error) {
	var e uint64
	for i := range n {
		e = d.chain.epoch() + 1
		var signed int
		var refused map[int]int
		if err := c.waitFor(ctx, 30*time.Second, fmt.Sprintf("%s to sign epoch %d", r.name, e), func() error {
			signed, refused = vc.attestEpoch(r.signAddr, e)
			if signed == 0 {
				return fmt.Errorf("refusals %v", refused)
			}
			return nil
		}); err != nil {
			return 0, err
		}
		if signed != len(vc.pubs) {
			return 0, fmt.Errorf("%s signed %d of %d attestations for epoch %d (refusals %v)", r.name, signed, len(vc.pubs), e, refused)
		}
		if i == n-1 || i == 0 {
			d.say("%s signed %d attestations for target epoch %d (the chain is at epoch %d)", r.name, signed, e, d.chain.epoch())
		}
		for d.chain.epoch() < e {
			time.Sleep(slotDuration) // the next duty starts with the next epoch
		}
	}
	return e, nil
}

// importKeys posts every keystore to dc1's Keymanager API as an operator.
func (d *demo) importKeys(vc *validatorClient) error {
	ks, err := vc.keystores()
	if err != nil {
		return err
	}
	pw := make([]string, len(ks))
	for i := range pw {
		pw[i] = "demo-password"
	}
	body, _ := json.Marshal(map[string]any{"keystores": ks, "passwords": pw})
	hc, err := d.operatorHTTP()
	if err != nil {
		return err
	}
	resp, err := hc.Post("https://"+d.region("dc1").signAddr+"/eth/v1/keystores", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.Count(string(out), `"imported"`) != len(ks) {
		return fmt.Errorf("keystore import: %d %s", resp.StatusCode, shorten(string(out), 300))
	}
	return nil
}

// localKeys checks a region lists n keys in its Keymanager API.
func (d *demo) localKeys(r *region, n int) error {
	hc, err := d.operatorHTTP()
	if err != nil {
		return err
	}
	resp, err := hc.Get("https://" + r.signAddr + "/eth/v1/keystores")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if len(out.Data) != n {
		return fmt.Errorf("%s lists %d keys", r.name, len(out.Data))
	}
	return nil
}

func (d *demo) operatorHTTP() (*http.Client, error) {
	certs := d.path("certs")
	mat, err := pki.LoadTLS(filepath.Join(certs, "ca.crt"), filepath.Join(certs, "regentctl.crt"), filepath.Join(certs, "regentctl.key"))
	if err != nil {
		return nil, err
	}
	tc, err := mat.ClientConfig("127.0.0.1")
	if err != nil {
		return nil, err
	}
	return httpClient(tc), nil
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// audit prints the audit chain and verifies it, as an operator would.
func (d *demo) audit() error {
	fmt.Fprintf(d.out, "\n  $ regentctl audit show --since N\n")
	var b strings.Builder
	var head strings.Builder
	if err := d.regentctl(&head, "audit", "verify", "--endpoints", d.endpoints(), "--output", "json"); err != nil {
		return fmt.Errorf("audit verify: %w: %s", err, head.String())
	}
	var v struct {
		Records uint64 `json:"records"`
	}
	_ = json.Unmarshal([]byte(head.String()), &v)
	since := "0"
	if v.Records > 14 {
		since = fmt.Sprint(v.Records - 14)
	}
	fmt.Fprintf(d.out, "  (the last records; %d in all)\n", v.Records)
	if err := d.regentctl(&b, "audit", "show", "--since", since, "--endpoints", d.endpoints()); err != nil {
		return fmt.Errorf("audit show: %w: %s", err, b.String())
	}
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		fmt.Fprintf(d.out, "  | %s\n", line)
	}
	fmt.Fprintf(d.out, "\n  $ regentctl audit verify\n")
	b.Reset()
	if err := d.regentctl(&b, "audit", "verify", "--endpoints", d.endpoints()); err != nil {
		return fmt.Errorf("audit verify: %w: %s", err, b.String())
	}
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		fmt.Fprintf(d.out, "  | %s\n", line)
	}
	return nil
}

func (d *demo) endpoints() string {
	var eps []string
	for _, r := range d.regions {
		eps = append(eps, r.name+"="+r.grpcAdr)
	}
	return strings.Join(eps, ",")
}

// ctl runs regentctl as operator who (key in operators/<who>.key) against
// every region, printing the command line and its output as an operator
// would see them. It returns the output.
func (d *demo) ctl(who string, args ...string) (string, error) {
	if who != "" {
		fmt.Fprintf(d.out, "\n  $ REGENTCTL_OPERATOR_ID=%s regentctl %s\n", who, strings.Join(args, " "))
	} else {
		fmt.Fprintf(d.out, "\n  $ regentctl %s\n", strings.Join(args, " "))
	}
	certs := d.path("certs")
	cmd := exec.Command(filepath.Join(d.bin, "regentctl"), args...)
	cmd.Env = append(os.Environ(),
		"REGENTCTL_TLS_CA="+certs+"/ca.crt", "REGENTCTL_TLS_CERT="+certs+"/regentctl.crt", "REGENTCTL_TLS_KEY="+certs+"/regentctl.key",
		"REGENTCTL_ENDPOINTS="+d.endpoints(), "REGENTCTL_OPERATOR_ID="+who, "REGENTCTL_OPERATOR_KEY="+d.path("operators", who+".key"))
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		fmt.Fprintf(d.out, "  | %s\n", line)
	}
	if err != nil {
		return b.String(), fmt.Errorf("regentctl %s: %w", strings.Join(args, " "), err)
	}
	return b.String(), nil
}
