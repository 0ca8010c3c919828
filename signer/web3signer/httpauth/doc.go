// Package httpauth authenticates the callers of Regent's client-facing HTTP
// APIs (the Web3Signer-compatible eth2 signing API and the Keymanager API).
//
// What it owns: turning an *http.Request into an Identity — a role and a
// name in the identity scheme of raft/pki (regent://<role>/<name>) — from
// either the verified mutual-TLS client certificate or, when a
// TokenVerifier is configured, an "Authorization: Bearer <token>" header;
// and checking that the identity's role is one the API accepts.
//
// What it guarantees:
//   - An Identity is returned only with a nil error, and it always carries
//     a valid role (never pki.RoleUnknown) and a valid name (pki.ValidName).
//   - A certificate counts only if the TLS layer verified its chain
//     (pki.PeerIdentity insists on VerifiedChains).
//   - When a TokenVerifier is configured and the request carries an
//     Authorization header, the token alone decides: a bad token is refused
//     (ErrBadToken) even if a valid certificate is also present, so a
//     presented credential is never silently ignored.
//   - Every refusal wraps exactly one of ErrNoIdentity, ErrBadToken or
//     ErrWrongRole; the wrapped detail is for logs, not for clients.
//
// It holds no mutable package-level state and does no I/O beyond calling
// the TokenVerifier.
package httpauth
