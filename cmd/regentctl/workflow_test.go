package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/token"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
	"github.com/regent-signer/regent/slashing/eth"
)

var testKey = func() eth.Pubkey {
	h := sha256.Sum256([]byte("regentctl test key"))
	var pk eth.Pubkey
	copy(pk[:], append(h[:], h[:16]...))
	return pk
}()

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON (%v): %s", err, s)
	}
}

// expect runs regentctl and fails unless it exits with want.
func (c *ctlCluster) expect(t *testing.T, want int, args ...string) (string, string) {
	t.Helper()
	out, errOut, code := c.ctl(args...)
	if code != want {
		t.Fatalf("regentctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out, errOut
}

// lastAudit returns the newest audit record as `audit show` reports it.
func (c *ctlCluster) lastAudit(t *testing.T) failover.AuditRecord {
	t.Helper()
	out, _ := c.expect(t, 0, with(c.conn(), []string{"-o", "json", "audit", "show", "--limit", "1000"})...)
	var rep struct {
		Records []failover.AuditRecord `json:"records"`
	}
	mustJSON(t, out, &rep)
	if len(rep.Records) == 0 {
		t.Fatal("empty audit chain")
	}
	return rep.Records[len(rep.Records)-1]
}

// tamperSignature flips one bit of the first signature in a signed command file.
func tamperSignature(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f signedFile
	mustJSON(t, string(b), &f)
	raw, err := base64.StdEncoding.DecodeString(f.SignedCommand)
	if err != nil {
		t.Fatal(err)
	}
	var sc failoverpb.SignedCommand
	if err := proto.Unmarshal(raw, &sc); err != nil {
		t.Fatal(err)
	}
	sc.Signatures[0].Signature[5] ^= 0x10
	raw, _ = proto.Marshal(&sc)
	f.SignedCommand = base64.StdEncoding.EncodeToString(raw)
	b, _ = json.Marshal(f)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOperatorWorkflow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-region cluster")
	}
	c := newCtlCluster(t)
	conn := c.conn()
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }

	t.Run("operators list", func(t *testing.T) {
		out, _ := c.expect(t, 0, with(conn, []string{"-o", "json", "operators", "list"})...)
		var rep struct {
			ClusterID string            `json:"cluster_id"`
			Operators []json.RawMessage `json:"operators"`
		}
		mustJSON(t, out, &rep)
		if rep.ClusterID != testClusterID || len(rep.Operators) != 3 {
			t.Fatalf("operators list: %s", out)
		}
		if fi, err := os.Stat(filepath.Join(c.keys, "alice.key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("alice.key: %v %v", fi.Mode(), err)
		}
		// keygen never overwrites a key.
		c.expect(t, 1, "operators", "keygen", "--id", "alice", "--dir", c.keys)
	})

	t.Run("interchange import registers a key", func(t *testing.T) {
		doc, err := eth.EncodeInterchange(&eth.Interchange{GenesisValidatorsRoot: testGVR, Data: []eth.InterchangeRecord{{Pubkey: testKey,
			SignedAttestations: []eth.SignedAttestation{{SourceEpoch: 0, TargetEpoch: 1, SigningRoot: eth.KnownRoot(eth.Root{1})}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file("ic.json"), doc, 0o644); err != nil {
			t.Fatal(err)
		}
		c.expect(t, 0, with(conn, []string{"interchange", "import", "--file", file("ic.json")})...)
		out, _ := c.expect(t, 0, with(conn, []string{"-o", "json", "keys", "list"})...)
		if !strings.Contains(out, base64.StdEncoding.EncodeToString(testKey[:])) {
			t.Fatalf("keys list lacks the imported key: %s", out)
		}
		if err := os.WriteFile(file("garbage.json"), []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.expect(t, 2, with(conn, []string{"interchange", "import", "--file", file("garbage.json")})...)
	})

	// Sign under epoch 1 on dc1, 75 epochs ahead of the simulated chain,
	// so the handover must wait for finality past it.
	target := c.beacon.View().Epoch + 75 // about 3s of simulated chain
	c.waitFor(t, 20*time.Second, "an attestation recorded on dc1", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		root := sha256.Sum256([]byte("att"))
		outs, _, _, err := c.nodes["dc1"].Service.Record(ctx, []*commandpb.ProtectionRecord{{Record: &commandpb.ProtectionRecord_EthAttestation{
			EthAttestation: &commandpb.EthAttestation{GenesisValidatorsRoot: testGVR[:], Pubkey: testKey[:], SourceEpoch: target - 1, TargetEpoch: target, SigningRoot: root[:]}}}})
		if err == nil && !outs[0].Accepted() {
			t.Fatalf("attestation refused: %s", outs[0].Reason)
		}
		return err
	})

	t.Run("bad signature is refused and audited", func(t *testing.T) {
		c.expect(t, 0, with(conn, c.as("alice"), []string{"handover", "request", "--to", "dc2", "--reason", "forged", "--out", file("forged.json")})...)
		tamperSignature(t, file("forged.json"))
		_, errOut := c.expect(t, 2, with(conn, []string{"submit", file("forged.json")})...)
		if !strings.Contains(errOut, "bad operator signature") {
			t.Fatalf("stderr: %s", errOut)
		}
		if r := c.lastAudit(t); r.Outcome != failover.OutcomeRejected || r.Action != "handover.request" || !strings.Contains(r.Reason, "bad operator signature") {
			t.Fatalf("last audit record %+v", r)
		}
	})

	t.Run("handover request, approvals, fence, finality, activation", func(t *testing.T) {
		out, _ := c.expect(t, 0, with(conn, c.as("alice"), []string{"-o", "json", "handover", "request", "--to", "dc2", "--reason", "maintenance"})...)
		var req struct {
			Result struct {
				Accepted   bool   `json:"accepted"`
				HandoverID string `json:"handover_id"`
			} `json:"result"`
		}
		mustJSON(t, out, &req)
		if !req.Result.Accepted || req.Result.HandoverID == "" {
			t.Fatalf("request: %s", out)
		}
		id := req.Result.HandoverID
		// Text mode prints the id too.
		if out, _ := c.expect(t, 0, with(conn, []string{"handover", "list"})...); !strings.Contains(out, "approvals: 1 of 2 (alice)") {
			t.Fatalf("handover list: %s", out)
		}

		var watchOut, watchErr syncBuffer
		done := make(chan int, 1)
		go func() {
			_, _, code := c.ctlTo(&watchOut, &watchErr, with(conn, []string{"-o", "json", "handover", "watch", id, "--timeout", "90s", "--interval", "100ms"})...)
			done <- code
		}()
		c.waitFor(t, 20*time.Second, "the watch to report the approvals", func() error {
			if !strings.Contains(watchOut.String(), `"event":"approvals"`) {
				return fmt.Errorf("watch so far: %s %s", watchOut.String(), watchErr.String())
			}
			return nil
		})

		c.expect(t, 0, with(conn, c.as("bob"), []string{"handover", "approve", id})...)
		// Approvals are taken before the fence only.
		_, errOut := c.expect(t, 2, with(conn, c.as("carol"), []string{"handover", "approve", id})...)
		if !strings.Contains(errOut, "before the fence") {
			t.Fatalf("late approval: %s", errOut)
		}
		var code int
		select {
		case code = <-done:
		case <-time.After(100 * time.Second):
			t.Fatal("watch did not return")
		}
		t.Logf("handover watch:\n%s", watchOut.String())
		events := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(watchOut.String()), "\n") {
			var ev watchEvent
			mustJSON(t, line, &ev)
			events[ev.Event] += ev.Message + "\n"
		}
		if code != 0 {
			t.Fatalf("watch exit %d\n%s\n%s", code, watchOut.String(), watchErr.String())
		}
		for ev, want := range map[string]string{
			"requested": "requested by alice: dc1 → dc2",
			"approvals": "approvals: 1 of 2 (alice)",
			"fenced":    "fenced dc1 at epoch 1",
			"finality":  fmt.Sprintf("epoch %d on chain 0x%x", target, testGVR[:4]),
			"active":    "dc2 active at epoch 2",
		} {
			if !strings.Contains(events[ev], want) {
				t.Fatalf("watch event %s = %q, want %q\nall: %s", ev, events[ev], want, watchOut.String())
			}
		}
		for _, r := range c.regions {
			c.waitFor(t, 10*time.Second, r+" to apply the activation", func() error {
				if l := c.lease(r); l.Holder != "dc2" || l.Epoch != 2 || l.State.String() != "active" {
					return fmt.Errorf("%s sees %+v", r, l)
				}
				return nil
			})
		}
		// The keeper moves Raft leadership to the new holder; let it settle
		// before the next writes (a write forwarded to a leader that is just
		// stepping down has an unknown outcome: exit 3).
		c.waitFor(t, 20*time.Second, "raft leadership on dc2, known everywhere", func() error {
			for _, r := range c.regions {
				if _, id := c.nodes[r].Raft.LeaderWithID(); id != "dc2" {
					return fmt.Errorf("%s sees leader %q", r, id)
				}
			}
			return nil
		})
		// Watching a closed handover returns at once.
		c.expect(t, 0, with(conn, []string{"handover", "watch", id, "--timeout", "10s"})...)
	})

	t.Run("multi-signature: out, cosign, submit, replay", func(t *testing.T) {
		f := file("add-dave.json")
		c.expect(t, 0, with(conn, c.as("alice"), []string{"operators", "add", "--id", "dave", "--role", "operator",
			"--public-key", filepath.Join(c.keys, "dave.pub"), "--out", f})...)
		// One signature is below the registry threshold: refused, audited.
		_, errOut := c.expect(t, 2, with(conn, []string{"submit", f})...)
		if !strings.Contains(errOut, "below threshold") {
			t.Fatalf("single signature: %s", errOut)
		}
		if r := c.lastAudit(t); r.Outcome != failover.OutcomeRejected || r.Action != "operator.add" {
			t.Fatalf("last audit %+v", r)
		}
		// bob cosigns (offline), anyone submits.
		out, _ := c.expect(t, 0, with(c.as("bob"), []string{"cosign", f})...)
		if !strings.Contains(out, "add operator dave with role operator") || !strings.Contains(out, "signed by: alice, bob") {
			t.Fatalf("cosign output: %s", out)
		}
		c.expect(t, 1, with(c.as("bob"), []string{"cosign", f})...) // bob already signed
		c.expect(t, 0, with(conn, []string{"submit", f})...)
		// The same file again is a replay.
		_, errOut = c.expect(t, 2, with(conn, []string{"submit", f})...)
		if !strings.Contains(errOut, "nonce already used") {
			t.Fatalf("replay: %s", errOut)
		}
		if r := c.lastAudit(t); r.Outcome != failover.OutcomeRejected || !strings.Contains(r.Reason, "nonce already used") {
			t.Fatalf("last audit %+v", r)
		}
		out, _ = c.expect(t, 0, with(conn, []string{"operators", "list"})...)
		if !strings.Contains(out, "dave") || !strings.Contains(out, "handover 2 of") {
			t.Fatalf("operators list: %s", out)
		}
		// dave's P-256 key now signs.
		c.expect(t, 0, with(conn, c.as("dave"), []string{"exit", "approve", "--pubkey", "0x" + fmt.Sprintf("%x", testKey[:]), "--reason", "rotation"})...)
	})

	t.Run("a cancelled handover ends its watch with exit 2", func(t *testing.T) {
		out, _ := c.expect(t, 0, with(conn, c.as("alice"), []string{"-o", "json", "handover", "request", "--to", "dc3", "--reason", "drill"})...)
		var req struct {
			Result struct {
				HandoverID string `json:"handover_id"`
			} `json:"result"`
		}
		mustJSON(t, out, &req)
		c.expect(t, 0, with(conn, c.as("carol"), []string{"handover", "cancel", req.Result.HandoverID, "--reason", "drill over"})...)
		out, errOut := c.expect(t, 2, with(conn, []string{"handover", "watch", req.Result.HandoverID, "--timeout", "10s"})...)
		if !strings.Contains(out, "cancelled by carol: drill over") || !strings.Contains(errOut, "cancelled") {
			t.Fatalf("watch: %s %s", out, errOut)
		}
		// An id that never was a handover.
		c.expect(t, 2, with(conn, []string{"handover", "watch", "3", "--timeout", "10s"})...)
	})

	t.Run("dr policy and signed legacy commands", func(t *testing.T) {
		f := file("dr.json")
		c.expect(t, 0, with(conn, c.as("alice"), []string{"dr", "set", "--region", "dc3", "--silence", "10m", "--out", f})...)
		c.expect(t, 0, with(c.as("bob"), []string{"cosign", f})...)
		c.expect(t, 0, with(conn, []string{"submit", f})...)
		out, _ := c.expect(t, 0, with(conn, []string{"-o", "json", "dr", "list"})...)
		if !strings.Contains(out, `"region": "dc3"`) || !strings.Contains(out, `"silence_seconds": 600`) {
			t.Fatalf("dr list: %s", out)
		}
		c.expect(t, 1, with(conn, c.as("alice"), []string{"dr", "set", "--region", "dc3", "--silence", "5s"})...)
		// Bootstrapped: policy set builds a signed command (policy threshold 1, admin).
		c.expect(t, 0, with(conn, c.as("alice"), []string{"policy", "set", "--identity", "vc-1", "--keys", "*", "--types", "ATTESTATION"})...)
		if r := c.lastAudit(t); r.Action != "policy.set" || r.Actor != "alice" || r.Outcome != failover.OutcomeAccepted {
			t.Fatalf("last audit %+v", r)
		}
		// carol (operator role) may not sign policy.
		c.expect(t, 2, with(conn, c.as("carol"), []string{"policy", "remove", "--identity", "vc-1"})...)
		// Without an operator key the signed form cannot be built.
		c.expect(t, 1, with(conn, []string{"keys", "disable", "--pubkey", "0x" + fmt.Sprintf("%x", testKey[:])})...)
	})

	t.Run("audit verify, export, tamper", func(t *testing.T) {
		out, _ := c.expect(t, 0, with(conn, []string{"audit", "verify"})...)
		if !strings.Contains(out, "intact") {
			t.Fatalf("verify: %s", out)
		}
		f := file("audit.jsonl")
		c.expect(t, 0, with(conn, []string{"audit", "export", "--file", f})...)
		c.expect(t, 0, "audit", "verify", "--file", f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Split(b, []byte("\n"))
		// Line 0 is the header; line 4 is the record of seq 3.
		lines[4] = bytes.Replace(lines[4], []byte(`"actor":"`), []byte(`"actor":"x`), 1)
		if err := os.WriteFile(f, bytes.Join(lines, []byte("\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut := c.expect(t, 2, "-o", "json", "audit", "verify", "--file", f)
		var rep struct {
			Intact      bool `json:"intact"`
			FirstBadSeq int  `json:"first_bad_seq"`
		}
		mustJSON(t, out, &rep)
		if rep.Intact || rep.FirstBadSeq != 3 || !strings.Contains(errOut, "broken at seq 3") {
			t.Fatalf("tampered: %s %s", out, errOut)
		}
	})

	t.Run("token issue authenticates a validator client", func(t *testing.T) {
		out, _ := c.expect(t, 0, with(conn, c.as("carol"), []string{"token", "issue", "--ttl", "24h", "--identity", "vc-1"})...)
		tok := strings.TrimSpace(out)
		// The lead has not wired the verifier into the signing APIs yet:
		// check the region's Verifier behind the APIs' authenticator.
		auth := httpauth.Authenticator{Tokens: &token.Verifier{State: c.nodes["dc3"].FSM}, Allowed: []pki.Role{pki.RoleClient}}
		r := httptest.NewRequest(http.MethodPost, "/api/v1/eth2/sign/0x00", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		id, err := auth.Authenticate(r)
		if err != nil || id.Role != pki.RoleClient || id.Name != "vc-1" || id.Via != httpauth.ViaToken {
			t.Fatalf("token: %+v %v", id, err)
		}
		c.expect(t, 1, with(conn, c.as("carol"), []string{"token", "issue", "--identity", "Not Valid"})...)
	})

	t.Run("keys import needs a signing region", func(t *testing.T) {
		if err := os.WriteFile(file("ks.json"), []byte(`{"crypto":{}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file("pw"), []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut := c.expect(t, 2, with(conn, []string{"keys", "import", "--keystore", file("ks.json"), "--password-file", file("pw")})...)
		if !strings.Contains(errOut, "signing is not configured on this region") {
			t.Fatalf("keys import: %s", errOut)
		}
	})

	t.Run("interchange export", func(t *testing.T) {
		c.expect(t, 0, with(conn, []string{"interchange", "export", "--file", file("out.json")})...)
		b, err := os.ReadFile(file("out.json"))
		if err != nil {
			t.Fatal(err)
		}
		ic, err := eth.DecodeInterchange(b)
		if err != nil || len(ic.Data) != 1 || ic.Data[0].Pubkey != testKey {
			t.Fatalf("export: %+v %v", ic, err)
		}
		found := false
		for _, a := range ic.Data[0].SignedAttestations {
			found = found || a.TargetEpoch == target
		}
		if !found {
			t.Fatalf("export lacks the attestation at target %d: %s", target, b)
		}
	})

	t.Run("members", func(t *testing.T) {
		out, _ := c.expect(t, 0, with(conn, []string{"-o", "json", "members", "list"})...)
		if strings.Count(out, `"suffrage": "voter"`) != 3 {
			t.Fatalf("members: %s", out)
		}
		c.expect(t, 0, with(conn, []string{"members", "add", "--id", "dc4", "--address", "127.0.0.1:1", "--nonvoter"})...)
		out, _ = c.expect(t, 0, with(conn, []string{"members", "list"})...)
		if !strings.Contains(out, "dc4") || !strings.Contains(out, "nonvoter") {
			t.Fatalf("after add: %s", out)
		}
		c.expect(t, 0, with(conn, []string{"members", "remove", "--id", "dc4"})...)
		out, _ = c.expect(t, 0, with(conn, []string{"members", "list"})...)
		if strings.Contains(out, "dc4") {
			t.Fatalf("after remove: %s", out)
		}
		// The lease holder cannot be removed.
		_, errOut := c.expect(t, 2, with(conn, []string{"members", "remove", "--id", "dc2"})...)
		if !strings.Contains(errOut, "holds the signing lease") {
			t.Fatalf("remove holder: %s", errOut)
		}
	})

	t.Run("unavailable cluster", func(t *testing.T) {
		dead := []string{"--endpoints", "dc1=127.0.0.1:1", "--tls-ca", filepath.Join(c.certs, "ca.crt"),
			"--tls-cert", pki.CertPath(c.certs, "regentctl"), "--tls-key", pki.KeyPath(c.certs, "regentctl"), "--timeout", "1s"}
		c.expect(t, 3, with(dead, []string{"operators", "list"})...)
		c.expect(t, 3, with(dead, c.as("alice"), []string{"handover", "request", "--to", "dc3"})...)
	})
}
