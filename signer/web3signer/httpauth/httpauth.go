package httpauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/regent-signer/regent/raft/pki"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrNoIdentity: the request carries no credential: no verified client
	// certificate with a Regent identity and no bearer token (HTTP 401).
	ErrNoIdentity = errors.New("httpauth: no caller identity")
	// ErrBadToken: an Authorization header was presented and refused —
	// not a bearer token, or the TokenVerifier rejected it, or it named an
	// invalid identity (HTTP 401, or 403 where the API's spec says so).
	ErrBadToken = errors.New("httpauth: bearer token rejected")
	// ErrWrongRole: the caller is authenticated but its role may not use
	// this API (HTTP 403).
	ErrWrongRole = errors.New("httpauth: caller role not allowed")
)

// Via says how an identity was established.
type Via string

// The ways an identity is established.
const (
	ViaCertificate Via = "mtls"
	ViaToken       Via = "token"
)

// Identity is an authenticated caller.
type Identity struct {
	Role pki.Role
	Name string
	Via  Via
}

// String renders the identity as role/name.
func (id Identity) String() string { return id.Role.String() + "/" + id.Name }

// TokenVerifier checks bearer tokens. The token format (for example a
// short-lived token signed by an operator key, DESIGN.md §6) belongs to the
// implementation.
//
// VerifyToken is called from HTTP handler goroutines, concurrently; it must
// not block for long (ctx is the request's context) and must return an
// error for any token it does not fully accept — malformed, expired, signed
// by an unknown key. The returned Identity's Role and Name must follow the
// pki identity scheme; Via is ignored and set to ViaToken.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (Identity, error)
}

// Authenticator authenticates requests for one API. The zero value accepts
// no role; set Allowed.
type Authenticator struct {
	// Tokens, when set, verifies "Authorization: Bearer" headers. When nil,
	// Authorization headers are ignored and only client certificates count.
	Tokens TokenVerifier
	// Allowed lists the roles that may use the API.
	Allowed []pki.Role
}

// Authenticate returns the caller of r. See the package documentation for
// the rules; a nil error means the identity is valid and its role allowed.
func (a Authenticator) Authenticate(r *http.Request) (Identity, error) {
	id, err := a.identify(r)
	if err != nil {
		return Identity{}, err
	}
	if !slices.Contains(a.Allowed, id.Role) {
		return id, fmt.Errorf("%w: %s may not use this API (allowed: %v)", ErrWrongRole, id, a.Allowed)
	}
	return id, nil
}

func (a Authenticator) identify(r *http.Request) (Identity, error) {
	if a.Tokens != nil {
		if hdr := r.Header.Values("Authorization"); len(hdr) > 0 {
			return a.fromToken(r.Context(), hdr)
		}
	}
	if r.TLS == nil {
		return Identity{}, fmt.Errorf("%w: no TLS client certificate and no bearer token", ErrNoIdentity)
	}
	role, name, err := pki.PeerIdentity(*r.TLS)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrNoIdentity, err)
	}
	return Identity{Role: role, Name: name, Via: ViaCertificate}, nil
}

func (a Authenticator) fromToken(ctx context.Context, hdr []string) (Identity, error) {
	if len(hdr) != 1 {
		return Identity{}, fmt.Errorf("%w: %d Authorization headers", ErrBadToken, len(hdr))
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(hdr[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Identity{}, fmt.Errorf("%w: Authorization is not \"Bearer <token>\"", ErrBadToken)
	}
	id, err := a.Tokens.VerifyToken(ctx, token)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if id.Role != pki.RoleNode && id.Role != pki.RoleOperator && id.Role != pki.RoleClient {
		return Identity{}, fmt.Errorf("%w: token names no valid role", ErrBadToken)
	}
	if !pki.ValidName(id.Name) {
		return Identity{}, fmt.Errorf("%w: token names invalid identity %q", ErrBadToken, id.Name)
	}
	id.Via = ViaToken
	return id, nil
}
