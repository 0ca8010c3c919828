package httpauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/regent-signer/regent/raft/pki"
)

type tokens map[string]Identity

func (m tokens) VerifyToken(_ context.Context, tok string) (Identity, error) {
	id, ok := m[tok]
	if !ok {
		return Identity{}, errors.New("unknown token")
	}
	return id, nil
}

// certs returns verified connection states for the dev PKI's identities.
func certs(t *testing.T) map[string]*tls.ConnectionState {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Init(dir, pki.Options{Clients: []string{"vc-1"}}); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	out := map[string]*tls.ConnectionState{}
	for _, name := range []string{"vc-1", "dc1", "regentctl"} {
		m, err := pki.LoadTLS(filepath.Join(dir, pki.CACertFile), pki.CertPath(dir, name), pki.KeyPath(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		chains, err := m.Leaf().Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{m.Leaf()}, VerifiedChains: chains}
	}
	unverified := *out["vc-1"]
	unverified.VerifiedChains = nil
	out["unverified"] = &unverified
	return out
}

func TestAuthenticate(t *testing.T) {
	cs := certs(t)
	toks := tokens{
		"op":       {Role: pki.RoleOperator, Name: "alice", Via: ViaCertificate},
		"cl":       {Role: pki.RoleClient, Name: "vc-9"},
		"norole":   {Name: "x"},
		"badname":  {Role: pki.RoleClient, Name: "Bad Name"},
		"nodetok":  {Role: pki.RoleNode, Name: "dc3"},
		"longname": {Role: pki.RoleClient, Name: string(make([]byte, 64))},
	}
	clientsOnly := []pki.Role{pki.RoleClient}
	both := []pki.Role{pki.RoleClient, pki.RoleOperator}
	rows := []struct {
		name    string
		auth    Authenticator
		cert    string
		headers []string
		want    Identity
		err     error
	}{
		{name: "client certificate", auth: Authenticator{Allowed: both}, cert: "vc-1", want: Identity{pki.RoleClient, "vc-1", ViaCertificate}},
		{name: "operator certificate", auth: Authenticator{Allowed: both}, cert: "regentctl", want: Identity{pki.RoleOperator, "regentctl", ViaCertificate}},
		{name: "node certificate refused", auth: Authenticator{Allowed: both}, cert: "dc1", err: ErrWrongRole},
		{name: "operator refused where only clients", auth: Authenticator{Allowed: clientsOnly}, cert: "regentctl", err: ErrWrongRole},
		{name: "zero value allows nobody", auth: Authenticator{}, cert: "vc-1", err: ErrWrongRole},
		{name: "no TLS", auth: Authenticator{Allowed: both}, err: ErrNoIdentity},
		{name: "unverified chain", auth: Authenticator{Allowed: both}, cert: "unverified", err: ErrNoIdentity},
		{name: "header ignored without verifier", auth: Authenticator{Allowed: both}, cert: "vc-1", headers: []string{"Bearer op"}, want: Identity{pki.RoleClient, "vc-1", ViaCertificate}},
		{name: "token", auth: Authenticator{Tokens: toks, Allowed: both}, headers: []string{"Bearer op"}, want: Identity{pki.RoleOperator, "alice", ViaToken}},
		{name: "token scheme case-insensitive", auth: Authenticator{Tokens: toks, Allowed: both}, headers: []string{"bearer  cl "}, want: Identity{pki.RoleClient, "vc-9", ViaToken}},
		{name: "token wins over certificate", auth: Authenticator{Tokens: toks, Allowed: both}, cert: "vc-1", headers: []string{"Bearer op"}, want: Identity{pki.RoleOperator, "alice", ViaToken}},
		{name: "bad token beside certificate", auth: Authenticator{Tokens: toks, Allowed: both}, cert: "vc-1", headers: []string{"Bearer nope"}, err: ErrBadToken},
		{name: "basic auth", auth: Authenticator{Tokens: toks, Allowed: both}, headers: []string{"Basic b3A="}, err: ErrBadToken},
		{name: "empty bearer", auth: Authenticator{Tokens: toks, Allowed: both}, headers: []string{"Bearer "}, err: ErrBadToken},
		{name: "two headers", auth: Authenticator{Tokens: toks, Allowed: both}, headers: []string{"Bearer op", "Bearer cl"}, err: ErrBadToken},
		{name: "token without role", auth: Authenticator{Tokens: toks, Allowed: both}, headers: []string{"Bearer norole"}, err: ErrBadToken},
		{name: "token with bad name", auth: Authenticator{Tokens: toks, Allowed: both}, headers: []string{"Bearer badname"}, err: ErrBadToken},
		{name: "token with long name", auth: Authenticator{Tokens: toks, Allowed: both}, headers: []string{"Bearer longname"}, err: ErrBadToken},
		{name: "node token refused", auth: Authenticator{Tokens: toks, Allowed: both}, headers: []string{"Bearer nodetok"}, err: ErrWrongRole},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if row.cert != "" {
				r.TLS = cs[row.cert]
			}
			for _, h := range row.headers {
				r.Header.Add("Authorization", h)
			}
			id, err := row.auth.Authenticate(r)
			if row.err != nil {
				if !errors.Is(err, row.err) {
					t.Fatalf("err %v, want %v", err, row.err)
				}
				return
			}
			if err != nil || id != row.want {
				t.Fatalf("got %+v, %v; want %+v", id, err, row.want)
			}
		})
	}
}
