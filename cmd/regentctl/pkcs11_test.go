package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/failover/token"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/hsm"
	"github.com/regent-signer/regent/signer/hsm/hsmtest"
)

// Operator keys inside a PKCS#11 token (SoftHSM2) sign commands and
// tokens through --pkcs11-*: Ed25519 signs the message, P-256 a SHA-256
// digest returned as DER — what the cluster verifies.
func TestPKCS11OperatorKeys(t *testing.T) {
	env := hsmtest.New(t)
	env.InitToken(t, "operators", "4321")
	ctx := context.Background()
	mod, err := hsm.LoadModule(env.Module)
	if err != nil {
		t.Fatal(err)
	}
	h, err := mod.Open(hsm.Config{Module: env.Module, TokenLabel: "operators", PIN: "4321"})
	if err != nil {
		t.Fatal(err)
	}
	edPub, err := h.GenerateKey(ctx, "alice-ed", hsm.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	p256Pub, err := h.GenerateKey(ctx, "bob-p256", hsm.P256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.GenerateKey(ctx, "k1", hsm.Secp256k1); err != nil {
		t.Fatal(err)
	}
	// The signer rejects what opsig never asks for.
	ed, err := newHSMSigner(ctx, h, "alice-ed")
	if err != nil {
		t.Fatal(err)
	}
	p256, err := newHSMSigner(ctx, h, "bob-p256")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	for _, c := range []struct {
		name string
		s    crypto.Signer
		data []byte
		opts crypto.SignerOpts
	}{
		{"ed25519 with a digest", ed, d[:], crypto.SHA256},
		{"p256 without hash", p256, []byte("message"), crypto.Hash(0)},
		{"p256 short digest", p256, d[:16], crypto.SHA256},
		{"p256 sha512", p256, d[:], crypto.SHA512},
	} {
		if sig, err := c.s.Sign(nil, c.data, c.opts); !errors.Is(err, errHSMSigner) || sig != nil {
			t.Fatalf("%s: %x, %v", c.name, sig, err)
		}
	}
	if _, err := newHSMSigner(ctx, h, "k1"); !errors.Is(err, errHSMSigner) {
		t.Fatalf("secp256k1 key accepted: %v", err)
	}
	if _, err := newHSMSigner(ctx, h, "missing"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mod.Close(); err != nil {
		t.Fatal(err)
	}

	alicePub := ed25519.PublicKey(edPub.Bytes)
	bobPub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), p256Pub.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pin := filepath.Join(dir, "pin")
	if err := os.WriteFile(pin, []byte("4321\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p11 := func(id, label string) []string {
		return []string{"--cluster-id", "hsm-cluster", "--operator-id", id, "--pkcs11-module", env.Module,
			"--pkcs11-token", "operators", "--pkcs11-label", label, "--pkcs11-pin-file", pin}
	}
	c := &ctlCluster{t: t}

	// A registry holding both HSM keys, registry threshold 2.
	m, err := failover.NewMachine(failover.MachineConfig{Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	boot := &failoverpb.BootstrapOperators{ClusterId: "hsm-cluster", FinalityQuorum: 1}
	for _, o := range []struct {
		id  string
		pub crypto.PublicKey
	}{{"alice", alicePub}, {"bob", bobPub}} {
		der, err := opsig.MarshalPublicKey(o.pub)
		if err != nil {
			t.Fatal(err)
		}
		boot.Operators = append(boot.Operators, &failoverpb.Operator{Id: o.id, PublicKey: der, Role: failoverpb.Role_ROLE_ADMIN})
	}
	for _, a := range failover.Actions() {
		boot.Thresholds = append(boot.Thresholds, &failoverpb.Threshold{Action: a, Required: 2})
	}
	if v, err := m.Apply("dc1", commandpb.CommandType_BOOTSTRAP_OPERATORS, boot); err != nil || !v.(failover.Result).Accepted {
		t.Fatalf("bootstrap: %v %v", v, err)
	}

	// alice (Ed25519 in the token) writes a signed command offline; bob
	// (P-256 in the token) cosigns it; the state machine accepts both.
	f := filepath.Join(dir, "threshold.json")
	c.expect(t, 0, with(p11("alice", "alice-ed"), []string{"operators", "threshold", "--action", "exit", "--required", "1", "--out", f})...)
	c.expect(t, 0, with(p11("bob", "bob-p256"), []string{"cosign", f})...)
	sc, _, err := readSignedFile(f)
	if err != nil {
		t.Fatal(err)
	}
	v, err := m.Apply("dc1", commandpb.CommandType_OPERATOR_COMMAND, sc)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.(failover.Result); !r.Accepted || r.Action != "threshold.set" {
		t.Fatalf("result %+v", r)
	}
	m.View(func(_ *leader.State, s *failover.State) {
		if got := s.Threshold(failoverpb.Action_ACTION_EXIT); got != 1 {
			t.Fatalf("exit threshold %d after the HSM-signed command", got)
		}
	})

	// A token signed in the token verifies against the registry.
	out, _ := c.expect(t, 0, with(p11("alice", "alice-ed"), []string{"token", "issue", "--identity", "vc-1", "--ttl", "1h"})...)
	v2 := &token.Verifier{State: m.FSM}
	id, err := v2.VerifyToken(ctx, strings.TrimSpace(out))
	if err != nil || id.Role != pki.RoleClient || id.Name != "vc-1" {
		t.Fatalf("hsm token: %+v %v", id, err)
	}
	out, _ = c.expect(t, 0, with(p11("bob", "bob-p256"), []string{"token", "issue", "--identity", "vc-2"})...)
	if id, err := v2.VerifyToken(ctx, strings.TrimSpace(out)); err != nil || id.Name != "vc-2" {
		t.Fatalf("hsm p256 token: %+v %v", id, err)
	}

	// Bad PKCS#11 settings are local errors.
	c.expect(t, 1, with(p11("alice", "nope"), []string{"token", "issue", "--identity", "vc-1"})...)
	c.expect(t, 1, "--cluster-id", "x", "--operator-id", "alice", "--pkcs11-module", env.Module, "token", "issue", "--identity", "vc-1")
}
