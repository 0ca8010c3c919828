package pki

import (
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"dc1", true},
		{"vc-1", true},
		{"a", true},
		{"0", true},
		{"node.eu-west.example", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-a", false},
		{"a-", false},
		{".a", false},
		{"a.", false},
		{"a..b", false},
		{"DC1", false},
		{"a_b", false},
		{"a/b", false},
		{"a b", false},
		{"é", false},
		{"..", false},
	}
	for _, tc := range tests {
		if got := ValidName(tc.name); got != tc.want {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// validNameReference is a brute-force restatement of the name rule.
func validNameReference(s string) bool {
	if len(s) < 1 || len(s) > 63 || strings.Contains(s, "..") {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	for i := 0; i < len(s); i++ {
		if !alnum(s[i]) && s[i] != '-' && s[i] != '.' {
			return false
		}
	}
	return alnum(s[0]) && alnum(s[len(s)-1])
}

func TestValidNameAgainstReference(t *testing.T) {
	// Every string of length 0..3 over an alphabet covering each class.
	alphabet := []byte{'a', 'z', '0', '9', '-', '.', 'A', '_', '/', 0xff}
	var walk func(prefix []byte, depth int)
	walk = func(prefix []byte, depth int) {
		s := string(prefix)
		if got, want := ValidName(s), validNameReference(s); got != want {
			t.Errorf("ValidName(%q) = %v, reference says %v", s, got, want)
		}
		if depth == 0 {
			return
		}
		for _, c := range alphabet {
			walk(append(prefix, c), depth-1)
		}
	}
	walk(nil, 3)
}

func TestParseIdentityURI(t *testing.T) {
	tests := []struct {
		in       string
		wantRole Role
		wantName string
		wantErr  error
	}{
		{in: "regent://node/dc1", wantRole: RoleNode, wantName: "dc1"},
		{in: "regent://operator/alice", wantRole: RoleOperator, wantName: "alice"},
		{in: "regent://client/vc-1", wantRole: RoleClient, wantName: "vc-1"},
		{in: "REGENT://node/dc1", wantRole: RoleNode, wantName: "dc1"},
		{in: "https://node/dc1", wantErr: ErrNoIdentity},
		{in: "spiffe://cluster/ns/x", wantErr: ErrNoIdentity},
		{in: "", wantErr: ErrNoIdentity},
		{in: "regent://Node/dc1", wantErr: ErrBadIdentity},
		{in: "regent://admin/dc1", wantErr: ErrBadIdentity},
		{in: "regent://unknown/dc1", wantErr: ErrBadIdentity},
		{in: "regent:///dc1", wantErr: ErrBadIdentity},
		{in: "regent://node/", wantErr: ErrBadIdentity},
		{in: "regent://node", wantErr: ErrBadIdentity},
		{in: "regent://node/dc1/", wantErr: ErrBadIdentity},
		{in: "regent://node/dc1/x", wantErr: ErrBadIdentity},
		{in: "regent://node/DC1", wantErr: ErrBadIdentity},
		{in: "regent://node:443/dc1", wantErr: ErrBadIdentity},
		{in: "regent://bob@node/dc1", wantErr: ErrBadIdentity},
		{in: "regent://node/dc1?x=1", wantErr: ErrBadIdentity},
		{in: "regent://node/dc1?", wantErr: ErrBadIdentity},
		{in: "regent://node/dc1#f", wantErr: ErrBadIdentity},
		{in: "regent://node/dc%31", wantErr: ErrBadIdentity},
		{in: "regent://node/d%2Fc", wantErr: ErrBadIdentity},
		{in: "regent:node/dc1", wantErr: ErrBadIdentity},
		{in: "regent://node/dc 1", wantErr: ErrBadIdentity},
		{in: "regent://node/%zz", wantErr: ErrBadIdentity},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			role, name, err := ParseIdentityURI(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ParseIdentityURI(%q) error = %v, want %v", tc.in, err, tc.wantErr)
				}
				if role != RoleUnknown || name != "" {
					t.Fatalf("ParseIdentityURI(%q) returned %v/%q with an error", tc.in, role, name)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIdentityURI(%q): %v", tc.in, err)
			}
			if role != tc.wantRole || name != tc.wantName {
				t.Fatalf("ParseIdentityURI(%q) = %v/%q, want %v/%q", tc.in, role, name, tc.wantRole, tc.wantName)
			}
		})
	}
}

func TestIdentityURI(t *testing.T) {
	tests := []struct {
		role    Role
		name    string
		want    string
		wantErr error
	}{
		{role: RoleNode, name: "dc1", want: "regent://node/dc1"},
		{role: RoleOperator, name: "alice", want: "regent://operator/alice"},
		{role: RoleClient, name: "vc-1", want: "regent://client/vc-1"},
		{role: RoleUnknown, name: "dc1", wantErr: ErrBadIdentity},
		{role: Role(42), name: "dc1", wantErr: ErrBadIdentity},
		{role: RoleNode, name: "", wantErr: ErrBadIdentity},
		{role: RoleNode, name: "a/b", wantErr: ErrBadIdentity},
	}
	for _, tc := range tests {
		u, err := IdentityURI(tc.role, tc.name)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) || u != nil {
				t.Errorf("IdentityURI(%v, %q) = %v, %v; want error %v", tc.role, tc.name, u, err, tc.wantErr)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("IdentityURI(%v, %q) = %v, %v; want %s", tc.role, tc.name, u, err, tc.want)
			continue
		}
		role, name, err := ParseIdentityURI(u.String())
		if err != nil || role != tc.role || name != tc.name {
			t.Errorf("round trip of %s = %v/%q, %v", u, role, name, err)
		}
	}
}

func TestRoleStringAndParse(t *testing.T) {
	for _, r := range []Role{RoleNode, RoleOperator, RoleClient} {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", r.String(), got, err, r)
		}
	}
	if RoleUnknown.String() != "unknown" || Role(9).String() != "unknown" {
		t.Errorf("unknown roles print as %q and %q", RoleUnknown, Role(9))
	}
	for _, s := range []string{"unknown", "", "Node", "nodes"} {
		if r, err := ParseRole(s); !errors.Is(err, ErrBadIdentity) || r != RoleUnknown {
			t.Errorf("ParseRole(%q) = %v, %v; want ErrBadIdentity", s, r, err)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestIdentity(t *testing.T) {
	tests := []struct {
		name     string
		uris     []string
		nilCert  bool
		wantRole Role
		wantName string
		wantErr  error
	}{
		{name: "node", uris: []string{"regent://node/dc1"}, wantRole: RoleNode, wantName: "dc1"},
		{name: "operator", uris: []string{"regent://operator/alice"}, wantRole: RoleOperator, wantName: "alice"},
		{name: "client", uris: []string{"regent://client/vc-1"}, wantRole: RoleClient, wantName: "vc-1"},
		{name: "other URIs ignored", uris: []string{"spiffe://x/y", "regent://client/vc-1", "https://example.com"}, wantRole: RoleClient, wantName: "vc-1"},
		{name: "nil certificate", nilCert: true, wantErr: ErrNoIdentity},
		{name: "no URIs", wantErr: ErrNoIdentity},
		{name: "only foreign URIs", uris: []string{"spiffe://x/y"}, wantErr: ErrNoIdentity},
		{name: "two identities", uris: []string{"regent://node/dc1", "regent://node/dc2"}, wantErr: ErrBadIdentity},
		{name: "same identity twice", uris: []string{"regent://node/dc1", "regent://node/dc1"}, wantErr: ErrBadIdentity},
		{name: "unknown role", uris: []string{"regent://root/dc1"}, wantErr: ErrBadIdentity},
		{name: "bad name", uris: []string{"regent://node/Dc1"}, wantErr: ErrBadIdentity},
		{name: "malformed plus valid", uris: []string{"regent://node/dc1", "regent://x/"}, wantErr: ErrBadIdentity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cert *x509.Certificate
			if !tc.nilCert {
				cert = &x509.Certificate{}
				for _, s := range tc.uris {
					cert.URIs = append(cert.URIs, mustURL(t, s))
				}
			}
			role, name, err := Identity(cert)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || role != RoleUnknown || name != "" {
					t.Fatalf("Identity = %v/%q, %v; want error %v", role, name, err, tc.wantErr)
				}
				return
			}
			if err != nil || role != tc.wantRole || name != tc.wantName {
				t.Fatalf("Identity = %v/%q, %v; want %v/%q", role, name, err, tc.wantRole, tc.wantName)
			}
		})
	}
}

// FuzzParseIdentityURI checks that the parser never panics, that every
// accepted URI has a valid role and name, that it round-trips through the
// canonical form, and that every refusal wraps a sentinel.
func FuzzParseIdentityURI(f *testing.F) {
	for _, s := range []string{
		"regent://node/dc1", "regent://operator/alice", "regent://client/vc-1",
		"REGENT://node/a.b-c", "regent://node:1/dc1", "regent://u@node/x", "regent://node/x?y#z",
		"regent://node/%41", "regent:opaque", "http://node/dc1", "", "%", "regent://%6eode/dc1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		role, name, err := ParseIdentityURI(s)
		if err != nil {
			if !errors.Is(err, ErrBadIdentity) && !errors.Is(err, ErrNoIdentity) {
				t.Fatalf("ParseIdentityURI(%q) error %v wraps no sentinel", s, err)
			}
			if role != RoleUnknown || name != "" {
				t.Fatalf("ParseIdentityURI(%q) returned %v/%q with an error", s, role, name)
			}
			return
		}
		if !role.valid() || !ValidName(name) {
			t.Fatalf("ParseIdentityURI(%q) accepted invalid %v/%q", s, role, name)
		}
		u, err := IdentityURI(role, name)
		if err != nil {
			t.Fatalf("IdentityURI(%v, %q): %v", role, name, err)
		}
		r2, n2, err := ParseIdentityURI(u.String())
		if err != nil || r2 != role || n2 != name {
			t.Fatalf("canonical %s of %q parses as %v/%q, %v", u, s, r2, n2, err)
		}
	})
}
