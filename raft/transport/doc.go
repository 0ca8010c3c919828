// Package transport owns Regent's Raft network layer: a hashicorp/raft
// StreamLayer over TCP with mutual TLS 1.3, and New, which wraps it in a
// raft.NetworkTransport.
//
// # What it guarantees
//
//   - Both ends of every Raft connection authenticate with certificates
//     that chain to the cluster CA of the node's pki.Material and carry role
//     node (Material.ServerConfig(pki.RoleNode) on the listening side,
//     Material.ClientConfig on the dialling side, which also checks the dialled
//     address's host against the server certificate's SANs). A peer with a
//     certificate from another CA, or with an operator or client
//     certificate, completes no connection that Raft ever sees.
//   - Handshakes are eager. Accept hands Raft only connections whose
//     handshake succeeded and whose stream preamble was sent; each inbound
//     handshake runs in its own goroutine under HandshakeTimeout, so a slow
//     or hostile client cannot block Accept for others. At most
//     MaxPendingHandshakes inbound handshakes run at once; further
//     connections are closed at once and counted (reason "overload").
//     Dial returns only after the handshake completed and the server
//     confirmed it accepted this node (see the preamble below), so a peer
//     that refuses us makes Dial fail, not the first RPC.
//   - Every failed handshake, inbound or outbound, is counted in
//     regent_raft_tls_handshake_failures_total{direction, reason} (see
//     Metrics) and logged with slog at Warn with stable keys.
//   - The address advertised to Raft peers may differ from the bind address
//     (bind 0.0.0.0:7000, advertise dc1:7000); an unspecified address is
//     never advertised.
//
// # Stream preamble
//
// After a successful TLS handshake, the server writes one byte, 0x01
// (preambleAccepted), before any Raft traffic; the dialler reads and checks
// it inside Dial. In TLS 1.3 a client's handshake returns before the server
// has verified the client's certificate; the preamble is how the dialler
// learns that the server accepted it. Both ends of a Regent Raft connection
// must therefore use this package.
//
// The package holds no package-level mutable state.
package transport
