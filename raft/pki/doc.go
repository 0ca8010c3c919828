// Package pki owns Regent's development public-key infrastructure and the
// mutual-TLS configuration every Regent connection uses.
//
// # What it owns
//
//   - Init writes a development cluster CA (ECDSA P-256) and, signed by it,
//     one certificate per region (usable as TLS server and client, because
//     Raft peers dial each other), one operator-tooling client certificate
//     (regentctl.crt) and one client certificate per validator client.
//     `regentctl pki init` calls it. It is for development and demos: a
//     production deployment brings its own CA and only needs to follow the
//     identity scheme below.
//   - LoadTLS / NewMaterial read and check a CA bundle, a certificate and its
//     key, and Material builds TLS 1.3-only, mutually authenticated
//     tls.Config values for servers (ServerConfig) and clients
//     (ClientConfig).
//   - Identity reads the role and name a certificate is issued to.
//
// # The identity scheme
//
// A certificate names its holder with exactly one URI subject alternative
// name of the form
//
//	regent://<role>/<name>
//
// where <role> is one of
//
//	node      a Regent region node (Raft peer and API server), e.g. regent://node/dc1
//	operator  operator tooling such as regentctl,              e.g. regent://operator/alice
//	client    a signing client such as a validator client,     e.g. regent://client/vc-1
//
// and <name> is 1 to 63 characters of lowercase ASCII letters, digits, '-'
// and '.', starting and ending with a letter or digit, with no "..". The
// scheme is matched case-insensitively (as RFC 3986 says); role and name are
// matched exactly. No user info, port, query or fragment is allowed. A
// certificate with no such URI has no identity (ErrNoIdentity); one with two
// or more, or a malformed one, is refused (ErrBadIdentity). Other URI SANs
// are ignored.
//
// # What it guarantees
//
//   - Every tls.Config built here speaks TLS 1.3 only, requires a peer
//     certificate that chains to the loaded CA bundle, and, after the chain
//     is verified, checks the peer's role: a server built with
//     ServerConfig(RoleNode) completes no handshake with an operator or
//     client certificate, and a client built with ClientConfig talks only to
//     a server whose certificate carries role node. A refusal by the role
//     check wraps ErrWrongRole, ErrNoIdentity or ErrBadIdentity.
//   - A Material is checked when it is built: the key matches the
//     certificate, the certificate verifies against the CA bundle at load
//     time, and it carries a valid identity. Each failure wraps its own
//     sentinel error. A Material is immutable and safe for concurrent use.
//   - Init validates all options before it touches the file system, writes
//     private keys with mode 0600 and certificates with mode 0644, refuses to
//     overwrite any existing file unless Options.Force is set, and writes
//     through temporary files renamed into place, so a failed Init leaves no
//     partially written file behind.
//
// The package holds no mutable package-level state and does no logging.
package pki
