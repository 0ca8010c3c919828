package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
)

func TestHelpDocumentsExitCodes(t *testing.T) {
	c := &ctlCluster{t: t}
	out, _ := c.expect(t, 0, "--help")
	for _, want := range []string{"Exit codes", "1  usage or local error", "2  refused by the cluster", "3  cluster unavailable", "REGENTCTL_OPERATOR_ID"} {
		if !strings.Contains(out, want) {
			t.Fatalf("--help lacks %q:\n%s", want, out)
		}
	}
}

func signedFileFor(t testing.TB, signers ...string) []byte {
	t.Helper()
	b := opsig.Builder{ClusterID: "c1", OperatorID: signers[0], Now: time.Now}
	cmd, err := b.New()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Action = &failoverpb.OperatorCommand_ApproveHandover{ApproveHandover: &failoverpb.ApproveHandover{HandoverId: 7}}
	key := func(id string) ed25519.PrivateKey {
		s := sha256.Sum256([]byte(id))
		return ed25519.NewKeyFromSeed(s[:])
	}
	sc, err := opsig.SignCommand(cmd, key(signers[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range signers[1:] {
		if err := opsig.Cosign(sc, o, key(o)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := encodeSignedFile(sc, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDecodeSignedFile(t *testing.T) {
	good := signedFileFor(t, "alice", "bob")
	edit := func(fn func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		fn(m)
		b, _ := json.Marshal(m)
		return b
	}
	rows := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"written file", good, true},
		{"description is not trusted (ignored)", edit(func(m map[string]any) { m["description"] = "something harmless" }), true},
		{"garbage", []byte("hello"), false},
		{"empty", nil, false},
		{"other format", edit(func(m map[string]any) { m["format"] = "x" }), false},
		{"other version", edit(func(m map[string]any) { m["version"] = 2 }), false},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = true }), false},
		{"bad base64", edit(func(m map[string]any) { m["signed_command"] = "!!" }), false},
		{"not a signed command", edit(func(m map[string]any) { m["signed_command"] = base64.StdEncoding.EncodeToString([]byte("nope")) }), false},
		{"two objects", append(append([]byte{}, good...), good...), false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			sc, body, err := decodeSignedFile(row.in)
			if row.ok {
				if err != nil || len(sc.Signatures) != 2 || body.GetApproveHandover().GetHandoverId() != 7 {
					t.Fatalf("got %v %v %v", sc, body, err)
				}
				return
			}
			if !errors.Is(err, errSignedFile) || sc != nil || body != nil {
				t.Fatalf("got %v %v %v, want errSignedFile", sc, body, err)
			}
		})
	}
}

func FuzzDecodeSignedFile(f *testing.F) {
	f.Add(signedFileFor(f, "alice"))
	f.Add(signedFileFor(f, "alice", "bob"))
	f.Add([]byte(`{"format":"regent-signed-command","version":1,"signed_command":""}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, body, err := decodeSignedFile(b)
		if err != nil {
			if !errors.Is(err, errSignedFile) {
				t.Fatalf("error %v does not wrap errSignedFile", err)
			}
			return
		}
		// A decoded file re-encodes to one that decodes to the same command.
		again, err := encodeSignedFile(sc, body)
		if err != nil {
			t.Fatal(err)
		}
		sc2, _, err := decodeSignedFile(again)
		if err != nil || string(sc2.GetBody()) != string(sc.GetBody()) || len(sc2.Signatures) != len(sc.Signatures) {
			t.Fatalf("re-encoded file: %v", err)
		}
	})
}

func pemKey(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseOperatorKey(t *testing.T) {
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, _ := x509.MarshalPKIXPublicKey(ed.Public())
	sec1, _ := x509.MarshalECPrivateKey(p256)
	rows := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"ed25519", pemKey(t, "PRIVATE KEY", pkcs8(ed)), true},
		{"p256", pemKey(t, "PRIVATE KEY", pkcs8(p256)), true},
		{"p384", pemKey(t, "PRIVATE KEY", pkcs8(p384)), false},
		{"rsa", pemKey(t, "PRIVATE KEY", pkcs8(rsaKey)), false},
		{"public key", pemKey(t, "PUBLIC KEY", pubDER), false},
		{"SEC1 EC key", pemKey(t, "EC PRIVATE KEY", sec1), false},
		{"garbage DER", pemKey(t, "PRIVATE KEY", []byte{1, 2, 3}), false},
		{"not PEM", []byte("hello"), false},
		{"two keys", append(pemKey(t, "PRIVATE KEY", pkcs8(ed)), pemKey(t, "PRIVATE KEY", pkcs8(ed))...), false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			s, err := parseOperatorKey(row.in)
			if row.ok != (err == nil) || row.ok != (s != nil) {
				t.Fatalf("got %T, %v", s, err)
			}
			if row.ok {
				if _, err := opsig.Sign(s, []byte("body")); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestLocalErrorsAreExitOne(t *testing.T) {
	c := &ctlCluster{t: t}
	dir := t.TempDir()
	for _, row := range []struct {
		args []string
		msg  string
	}{
		{[]string{"handover", "approve", "abc"}, "handover id \"abc\""},
		{[]string{"handover", "approve", "0"}, "handover id \"0\""},
		{[]string{"operators", "keygen", "--id", "x", "--dir", dir, "--algorithm", "rsa"}, "--algorithm \"rsa\""},
		{[]string{"operators", "add", "--id", "x", "--role", "boss", "--public-key", "none"}, "role \"boss\""},
		{[]string{"submit", dir + "/missing.json"}, "no such file"},
		{[]string{"cosign", dir + "/missing.json"}, "no such file"},
		{[]string{"dr", "set", "--region", "dc3", "--silence", "1s", "--cluster-id", "x"}, "--silence 1s"},
		{[]string{"handover", "request", "--to", "dc2", "--cluster-id", "x", "--out", dir + "/f.json"}, "no operator"},
		{[]string{"handover", "request", "--to", "dc2", "--cluster-id", "x", "--operator-id", "a", "--operator-key", dir + "/none.key", "--out", dir + "/f.json"}, "operator key"},
		{[]string{"token", "issue", "--identity", "vc-1", "--ttl", "1000h", "--cluster-id", "x", "--operator-id", "a", "--operator-key", dir + "/none.key"}, "operator key"},
	} {
		_, errOut, code := c.ctl(row.args...)
		if code != 1 || !strings.Contains(errOut, row.msg) {
			t.Fatalf("regentctl %v: exit %d (want 1), stderr %q (want %q)", row.args, code, errOut, row.msg)
		}
	}
}

// The operator identity comes from REGENTCTL_OPERATOR_ID/_KEY when the
// flags are absent; flags win over the environment.
func TestOperatorFromEnvironment(t *testing.T) {
	c := &ctlCluster{t: t}
	dir := t.TempDir()
	c.expect(t, 0, "operators", "keygen", "--id", "erin", "--dir", dir)
	t.Setenv("REGENTCTL_OPERATOR_ID", "erin")
	t.Setenv("REGENTCTL_OPERATOR_KEY", dir+"/erin.key")
	out, _ := c.expect(t, 0, "-o", "json", "--cluster-id", "c1", "token", "issue", "--identity", "vc-1")
	var rep struct {
		OperatorID string `json:"operator_id"`
	}
	mustJSON(t, out, &rep)
	if rep.OperatorID != "erin" {
		t.Fatalf("token issued as %q", rep.OperatorID)
	}
	out, _ = c.expect(t, 0, "-o", "json", "--cluster-id", "c1", "--operator-id", "frank", "token", "issue", "--identity", "vc-1")
	mustJSON(t, out, &rep)
	if rep.OperatorID != "frank" {
		t.Fatalf("flag did not win: %q", rep.OperatorID)
	}
}
