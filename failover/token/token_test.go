package token

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
)

const cluster = "regent-token-test"

// t0 is the issue time of the tests' tokens.
var t0 = time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)

type op struct {
	id     string
	role   failoverpb.Role
	signer crypto.Signer
}

func edKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("token test " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func p256Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// registry returns a replica bootstrapped with ops (thresholds 1) in
// cluster id; an empty id leaves it not bootstrapped.
func registry(t testing.TB, id string, ops ...op) *failover.Machine {
	t.Helper()
	m, err := failover.NewMachine(failover.MachineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		return m
	}
	boot := &failoverpb.BootstrapOperators{ClusterId: id, FinalityQuorum: 1}
	for _, o := range ops {
		der, err := opsig.MarshalPublicKey(o.signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		boot.Operators = append(boot.Operators, &failoverpb.Operator{Id: o.id, PublicKey: der, Role: o.role})
	}
	for _, a := range failover.Actions() {
		boot.Thresholds = append(boot.Thresholds, &failoverpb.Threshold{Action: a, Required: 1})
	}
	v, err := m.Apply("dc1", commandpb.CommandType_BOOTSTRAP_OPERATORS, boot)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.(failover.Result); !r.Accepted {
		t.Fatalf("bootstrap refused: %v", r.Err)
	}
	return m
}

// removeOperator has admin remove id through a signed command.
func removeOperator(t testing.TB, m *failover.Machine, admin op, id string) {
	t.Helper()
	b := opsig.Builder{ClusterID: cluster, OperatorID: admin.id, Now: m.Now}
	cmd, err := b.New()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Action = &failoverpb.OperatorCommand_RemoveOperator{RemoveOperator: &failoverpb.RemoveOperator{Id: id}}
	sc, err := opsig.SignCommand(cmd, admin.signer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := m.Apply("dc1", commandpb.CommandType_OPERATOR_COMMAND, sc)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.(failover.Result); !r.Accepted {
		t.Fatalf("remove %s refused: %v", id, r.Err)
	}
}

func mustIssue(t testing.TB, s crypto.Signer, opID, clusterID, identity string, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, err := Issue(s, opID, clusterID, identity, ttl, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// resign replaces a token's payload with edit(payload), canonically
// encoded, keeping the signature (a tampered token).
func tamper(t testing.TB, tok string, edit func(*Payload)) string {
	t.Helper()
	pt, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	p := pt.Payload
	edit(&p)
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return encode(raw, pt.Signature)
}

func TestVerifier(t *testing.T) {
	alice := op{"alice", failoverpb.Role_ROLE_ADMIN, edKey("alice")}
	carol := op{"carol", failoverpb.Role_ROLE_OPERATOR, edKey("carol")}
	erin := op{"erin", failoverpb.Role_ROLE_AUDITOR, edKey("erin")}
	bob := op{"bob", failoverpb.Role_ROLE_OPERATOR, p256Key(t)}
	mallory := edKey("mallory")
	rows := []struct {
		name string
		// setup returns the replica and the token to verify.
		setup func(t *testing.T) (*failover.Machine, string)
		now   time.Time
		err   error
	}{
		{name: "ed25519 admin", now: t0.Add(time.Hour), setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice), mustIssue(t, alice.signer, "alice", cluster, "vc-1", 24*time.Hour, t0)
		}},
		{name: "p256 operator", now: t0.Add(time.Hour), setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice, bob), mustIssue(t, bob.signer, "bob", cluster, "vc-1", 24*time.Hour, t0)
		}},
		{name: "within skew after expiry", now: t0.Add(time.Hour + DefaultSkew - time.Second), setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice), mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
		}},
		{name: "expired", now: t0.Add(time.Hour + DefaultSkew), err: ErrExpired, setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice), mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
		}},
		{name: "issued in the future", now: t0.Add(-DefaultSkew - time.Second), err: ErrNotYetValid, setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice), mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
		}},
		{name: "wrong cluster", now: t0, err: ErrWrongCluster, setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice), mustIssue(t, alice.signer, "alice", "other-cluster", "vc-1", time.Hour, t0)
		}},
		{name: "not bootstrapped", now: t0, err: ErrNotBootstrapped, setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, ""), mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
		}},
		{name: "unknown operator", now: t0, err: ErrUnknownOperator, setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice), mustIssue(t, mallory, "mallory", cluster, "vc-1", time.Hour, t0)
		}},
		{name: "removed operator", now: t0, err: ErrUnknownOperator, setup: func(t *testing.T) (*failover.Machine, string) {
			m := registry(t, cluster, alice, carol)
			tok := mustIssue(t, carol.signer, "carol", cluster, "vc-1", time.Hour, t0)
			removeOperator(t, m, alice, "carol")
			return m, tok
		}},
		{name: "auditor may not issue", now: t0, err: ErrNotPermitted, setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice, erin), mustIssue(t, erin.signer, "erin", cluster, "vc-1", time.Hour, t0)
		}},
		{name: "bad signature (another key claims alice)", now: t0, err: ErrBadSignature, setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice), mustIssue(t, mallory, "alice", cluster, "vc-1", time.Hour, t0)
		}},
		{name: "bad signature p256", now: t0, err: ErrBadSignature, setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice, bob), mustIssue(t, p256Key(t), "bob", cluster, "vc-1", time.Hour, t0)
		}},
		{name: "tampered identity", now: t0, err: ErrBadSignature, setup: func(t *testing.T) (*failover.Machine, string) {
			tok := mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
			return registry(t, cluster, alice), tamper(t, tok, func(p *Payload) { p.Identity = "vc-2" })
		}},
		{name: "tampered expiry", now: t0.Add(3 * time.Hour), err: ErrBadSignature, setup: func(t *testing.T) (*failover.Machine, string) {
			tok := mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
			return registry(t, cluster, alice), tamper(t, tok, func(p *Payload) { p.ExpiresAt += 3 * 3600 })
		}},
		{name: "garbage", now: t0, err: ErrMalformed, setup: func(t *testing.T) (*failover.Machine, string) {
			return registry(t, cluster, alice), "not a token"
		}},
		{name: "other version", now: t0, err: ErrMalformed, setup: func(t *testing.T) (*failover.Machine, string) {
			tok := mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
			return registry(t, cluster, alice), "regent2" + strings.TrimPrefix(tok, Prefix)
		}},
		{name: "padded base64", now: t0, err: ErrMalformed, setup: func(t *testing.T) (*failover.Machine, string) {
			tok := mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
			return registry(t, cluster, alice), tok + "=="
		}},
		{name: "non-canonical payload", now: t0, err: ErrMalformed, setup: func(t *testing.T) (*failover.Machine, string) {
			tok := mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
			pt, _ := Parse(tok)
			spaced := bytes.Replace(pt.Raw, []byte(`,"identity"`), []byte(`, "identity"`), 1)
			return registry(t, cluster, alice), encode(spaced, pt.Signature)
		}},
		{name: "unknown payload field", now: t0, err: ErrMalformed, setup: func(t *testing.T) (*failover.Machine, string) {
			tok := mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
			pt, _ := Parse(tok)
			extra := append(bytes.TrimSuffix(pt.Raw, []byte("}")), []byte(`,"role":"operator"}`)...)
			return registry(t, cluster, alice), encode(extra, pt.Signature)
		}},
		{name: "lifetime beyond MaxTTL", now: t0, err: ErrMalformed, setup: func(t *testing.T) (*failover.Machine, string) {
			tok := mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0)
			return registry(t, cluster, alice), tamper(t, tok, func(p *Payload) { p.ExpiresAt = p.IssuedAt + int64(MaxTTL/time.Second) + 1 })
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			m, tok := row.setup(t)
			before, err := m.StateBytes()
			if err != nil {
				t.Fatal(err)
			}
			v := &Verifier{State: m.FSM, Now: func() time.Time { return row.now }}
			id, err := v.VerifyToken(context.Background(), tok)
			if row.err == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.Role != pki.RoleClient || id.Name != "vc-1" || id.Via != httpauth.ViaToken {
					t.Fatalf("identity %+v", id)
				}
			} else if !errors.Is(err, row.err) {
				t.Fatalf("error %v, want %v", err, row.err)
			} else if id != (httpauth.Identity{}) {
				t.Fatalf("refusal returned identity %+v", id)
			}
			after, _ := m.StateBytes()
			if !bytes.Equal(before, after) {
				t.Fatal("verifying changed the replica")
			}
		})
	}
}

func TestIssueRefusesBadArguments(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := edKey("alice")
	rows := []struct {
		name     string
		signer   crypto.Signer
		op, cl   string
		identity string
		ttl      time.Duration
		err      error
	}{
		{"no signer", nil, "alice", cluster, "vc-1", time.Hour, ErrInvalidArgument},
		{"zero ttl", ed, "alice", cluster, "vc-1", 0, ErrInvalidArgument},
		{"ttl beyond max", ed, "alice", cluster, "vc-1", MaxTTL + time.Second, ErrInvalidArgument},
		{"bad identity", ed, "alice", cluster, "Validator One", time.Hour, ErrInvalidArgument},
		{"empty operator", ed, "", cluster, "vc-1", time.Hour, ErrInvalidArgument},
		{"bad cluster", ed, "alice", "a cluster", "vc-1", time.Hour, ErrInvalidArgument},
		{"rsa key", rsaKey, "alice", cluster, "vc-1", time.Hour, ErrUnsupportedKey},
		{"p384 key", p384, "alice", cluster, "vc-1", time.Hour, ErrUnsupportedKey},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			tok, err := Issue(row.signer, row.op, row.cl, row.identity, row.ttl, t0)
			if !errors.Is(err, row.err) || tok != "" {
				t.Fatalf("got %q, %v; want %v", tok, err, row.err)
			}
		})
	}
}

func TestIssueFormat(t *testing.T) {
	tok := mustIssue(t, edKey("alice"), "alice", cluster, "vc-1", 24*time.Hour, t0)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != "regent1" {
		t.Fatalf("token %q", tok)
	}
	pt, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := Payload{ClusterID: cluster, Identity: "vc-1", OperatorID: "alice", IssuedAt: t0.Unix(), ExpiresAt: t0.Add(24 * time.Hour).Unix(), Nonce: pt.Payload.Nonce}
	if pt.Payload != want {
		t.Fatalf("payload %+v, want %+v", pt.Payload, want)
	}
	if !strings.HasPrefix(string(pt.Raw), `{"cluster_id":"regent-token-test","identity":"vc-1","operator_id":"alice","issued_at":`) {
		t.Fatalf("payload bytes %s", pt.Raw)
	}
	// The signature covers the domain-separated payload.
	if !ed25519.Verify(edKey("alice").Public().(ed25519.PublicKey), Message(pt.Raw), pt.Signature) {
		t.Fatal("signature does not cover the domain and payload")
	}
	// Nonces differ: two tokens for the same claims are distinct.
	if again := mustIssue(t, edKey("alice"), "alice", cluster, "vc-1", 24*time.Hour, t0); again == tok {
		t.Fatal("two tokens coincide")
	}
	// An operator-command signature over the same bytes is not a token
	// signature (domain separation).
	sig, err := opsig.Sign(edKey("alice"), pt.Raw)
	if err != nil {
		t.Fatal(err)
	}
	m := registry(t, cluster, op{"alice", failoverpb.Role_ROLE_ADMIN, edKey("alice")})
	v := &Verifier{State: m.FSM, Now: func() time.Time { return t0 }}
	if _, err := v.VerifyToken(context.Background(), encode(pt.Raw, sig)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("cross-domain signature: %v", err)
	}
}

// The verifier plugs into the client APIs' authenticator.
func TestAuthenticatorAcceptsToken(t *testing.T) {
	alice := op{"alice", failoverpb.Role_ROLE_ADMIN, edKey("alice")}
	m := registry(t, cluster, alice)
	v := &Verifier{State: m.FSM, Now: func() time.Time { return t0.Add(time.Minute) }}
	auth := httpauth.Authenticator{Tokens: v, Allowed: []pki.Role{pki.RoleClient}}
	for _, c := range []struct {
		tok string
		ok  bool
	}{
		{mustIssue(t, alice.signer, "alice", cluster, "vc-1", time.Hour, t0), true},
		{mustIssue(t, edKey("mallory"), "alice", cluster, "vc-1", time.Hour, t0), false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+c.tok)
		id, err := auth.Authenticate(r)
		if c.ok != (err == nil) {
			t.Fatalf("authenticate: %+v, %v (want ok=%v)", id, err, c.ok)
		}
		if c.ok && (id.Role != pki.RoleClient || id.Name != "vc-1" || id.Via != httpauth.ViaToken) {
			t.Fatalf("identity %+v", id)
		}
		if !c.ok && !errors.Is(err, httpauth.ErrBadToken) {
			t.Fatalf("error %v, want ErrBadToken", err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(mustIssue(f, edKey("alice"), "alice", cluster, "vc-1", time.Hour, t0))
	f.Add(mustIssue(f, p256Key(f), "bob", cluster, "vc-2", MaxTTL, t0))
	f.Add("regent1..")
	f.Add("regent1.e30.AA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// A parsed token has exactly one spelling.
		if got := encode(tok.Raw, tok.Signature); got != s {
			t.Fatalf("re-encoded %q, input %q", got, s)
		}
		if err := tok.Payload.check(); err != nil {
			t.Fatalf("parsed payload fails its check: %v", err)
		}
	})
}
