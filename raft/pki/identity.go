package pki

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// Role is what a certificate's holder is allowed to be. The zero value,
// RoleUnknown, is never accepted by any check in this package.
type Role uint8

const (
	// RoleUnknown is the zero value: no role. It is never allowed.
	RoleUnknown Role = iota
	// RoleNode is a Regent region node: a Raft peer and an API server.
	RoleNode
	// RoleOperator is operator tooling such as regentctl.
	RoleOperator
	// RoleClient is a signing client such as a validator client.
	RoleClient
)

// IdentityScheme is the URI scheme of Regent identities.
const IdentityScheme = "regent"

// maxNameLen bounds an identity name (one DNS label's worth).
const maxNameLen = 63

// String returns the role's name as written in identity URIs ("node",
// "operator", "client"), or "unknown".
func (r Role) String() string {
	switch r {
	case RoleNode:
		return "node"
	case RoleOperator:
		return "operator"
	case RoleClient:
		return "client"
	default:
		return "unknown"
	}
}

// valid reports whether r is one of the defined, non-zero roles.
func (r Role) valid() bool {
	return r == RoleNode || r == RoleOperator || r == RoleClient
}

// ParseRole maps "node", "operator" or "client" (exactly, lowercase) to its
// Role. Anything else returns RoleUnknown and an error wrapping
// ErrBadIdentity.
func ParseRole(s string) (Role, error) {
	switch s {
	case "node":
		return RoleNode, nil
	case "operator":
		return RoleOperator, nil
	case "client":
		return RoleClient, nil
	}
	return RoleUnknown, fmt.Errorf("%w: unknown role %q", ErrBadIdentity, s)
}

// ValidName reports whether name is a valid identity name: 1 to 63 of
// [a-z0-9.-], starting and ending with a letter or digit, no "..".
// Identity names double as file names in Init and as DNS names in node
// certificates, which is why the alphabet is this small.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		switch {
		case alnum:
		case c == '-' || c == '.':
			if i == 0 || i == len(name)-1 {
				return false
			}
			if c == '.' && name[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// IdentityURI returns the canonical identity URI regent://<role>/<name>.
// It fails with ErrBadIdentity for RoleUnknown or an invalid name.
func IdentityURI(role Role, name string) (*url.URL, error) {
	if !role.valid() {
		return nil, fmt.Errorf("%w: role %d is not a valid role", ErrBadIdentity, role)
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: invalid name %q", ErrBadIdentity, name)
	}
	return &url.URL{Scheme: IdentityScheme, Host: role.String(), Path: "/" + name}, nil
}

// ParseIdentityURI parses an identity URI of the form regent://<role>/<name>
// (see the package documentation for the exact rules). A URI of another
// scheme returns ErrNoIdentity; a regent URI that breaks a rule returns
// ErrBadIdentity.
func ParseIdentityURI(s string) (Role, string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return RoleUnknown, "", fmt.Errorf("%w: %q: %w", ErrBadIdentity, s, err)
	}
	if !isRegentURI(u) {
		return RoleUnknown, "", fmt.Errorf("%w: %q is not a %s:// URI", ErrNoIdentity, s, IdentityScheme)
	}
	return identityFromURL(u)
}

// Identity returns the role and name of the regent:// URI SAN of cert.
// A nil certificate or one without a regent URI returns ErrNoIdentity; two or
// more regent URIs, or a malformed one, return ErrBadIdentity. Identity only
// reads the certificate: it does not verify it (the TLS layer does that
// before the hooks built by Material call Identity).
func Identity(cert *x509.Certificate) (Role, string, error) {
	if cert == nil {
		return RoleUnknown, "", fmt.Errorf("%w: no certificate", ErrNoIdentity)
	}
	var found *url.URL
	for _, u := range cert.URIs {
		if u == nil || !isRegentURI(u) {
			continue
		}
		if found != nil {
			return RoleUnknown, "", fmt.Errorf("%w: certificate %q carries more than one %s:// URI (%q, %q)",
				ErrBadIdentity, cert.Subject.CommonName, IdentityScheme, found.String(), u.String())
		}
		found = u
	}
	if found == nil {
		return RoleUnknown, "", fmt.Errorf("%w: certificate %q has no %s:// URI SAN",
			ErrNoIdentity, cert.Subject.CommonName, IdentityScheme)
	}
	return identityFromURL(found)
}

func isRegentURI(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, IdentityScheme)
}

// identityFromURL checks every rule of the scheme on an already parsed URL
// whose scheme is regent.
func identityFromURL(u *url.URL) (Role, string, error) {
	s := u.String()
	switch {
	case u.Opaque != "":
		return RoleUnknown, "", fmt.Errorf("%w: %q: expected %s://<role>/<name>", ErrBadIdentity, s, IdentityScheme)
	case u.User != nil:
		return RoleUnknown, "", fmt.Errorf("%w: %q: user info not allowed", ErrBadIdentity, s)
	case u.RawQuery != "" || u.ForceQuery:
		return RoleUnknown, "", fmt.Errorf("%w: %q: query not allowed", ErrBadIdentity, s)
	case u.Fragment != "" || u.RawFragment != "":
		return RoleUnknown, "", fmt.Errorf("%w: %q: fragment not allowed", ErrBadIdentity, s)
	case u.RawPath != "":
		return RoleUnknown, "", fmt.Errorf("%w: %q: escaped characters not allowed", ErrBadIdentity, s)
	}
	role, err := ParseRole(u.Host)
	if err != nil {
		return RoleUnknown, "", fmt.Errorf("%w (in %q)", err, s)
	}
	name, ok := strings.CutPrefix(u.Path, "/")
	if !ok || !ValidName(name) {
		return RoleUnknown, "", fmt.Errorf("%w: %q: invalid name %q", ErrBadIdentity, s, name)
	}
	return role, name, nil
}
