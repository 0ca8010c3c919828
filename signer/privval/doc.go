// Package privval makes Regent a remote signer for CometBFT validators: it
// dials a node's priv_validator_laddr, speaks the privval protocol of
// CometBFT v0.38 and v1.x, and answers every signing request through the
// Regent sign pipeline (record under the lease, commit, then sign).
//
// # What it owns
//
//   - The connection: Signer dials tcp://host:port (secured with CometBFT's
//     SecretConnection, package secretconn) or unix:///path (plain, as
//     CometBFT itself does), keeps one connection, reconnects with jittered
//     exponential backoff, and serves requests one at a time.
//   - Who it serves: over tcp the node's SecretConnection key must be in
//     Config.AllowedNodeKeys, or the connection is closed before any
//     request (ErrNodeNotAllowed). Stock CometBFT generates that key afresh
//     whenever the node starts (privval.NewSignerListener: "TODO: persist
//     this key"), so an allowlist only works with a node that persists it;
//     otherwise Config.AcceptAnyNodeKey must be set explicitly, and the
//     signer's reachability restricted by the network. The signer's own key
//     (Config.ConnKey, LoadConnKey) is not the validator key, and the signer
//     refuses to run if they are equal.
//   - The requests (handler.go): PubKey returns the validator key through
//     the Backend. SignVote and SignProposal rebuild the canonical sign bytes
//     exactly as CometBFT does (signbytes.go), cross-check them with
//     slashing/cometbft's independent strict codec, and call
//     Backend.SignComet with the position's height/round/step (proposal → 1,
//     prevote → 2, precommit → 3). The answer carries the signature and the
//     timestamp of the bytes actually signed: on a timestamp-only re-sign
//     (ReusedEarlier) the vote or proposal takes the earlier timestamp, so
//     message and signature match; before release the signer re-encodes the
//     message and checks it equals the signed bytes and that the signature
//     verifies. A non-nil precommit's vote extension is signed through
//     Backend.SignUnslashable only after the precommit was accepted, and
//     never when a v1 node sets skip_extension_signing; an extension on a
//     prevote or nil precommit is refused, as FilePV refuses it. v1's
//     SignBytes is served only when Config.AllowSignBytes is set and the
//     caller's policy allows KindSignBytes, and never for bytes that
//     cometbft.IsConsensusSignBytes reports or that decode as vote-extension
//     sign bytes. Ping answers Pong.
//   - Refusals: every refusal (other chain id, bad request, slashable,
//     forbidden, not lease holder, no quorum, unavailable...) goes back as a
//     RemoteSignerError with a code (Code* constants) and a description
//     naming the reason; the connection stays open. The one exception is
//     deliberate and configurable: after Config.YieldAfter consecutive "this
//     region cannot sign now" refusals the signer closes the connection and
//     stays away for Config.YieldFor, because a CometBFT node uses a single
//     signer connection and would otherwise keep asking a region that cannot
//     sign while the lease holder's signer waits in its accept queue.
//     Slashing, policy and bad-request refusals never trigger it.
//   - Standing by (Config.Ready, recommended for every region of a Regent
//     cluster): while the region cannot sign (it does not hold the lease)
//     the signer does not dial at all, so the node's one connection is
//     always the lease holder's; when the region stops being able to sign
//     while connected, the signer closes the connection and leaves any sign
//     request in hand unanswered, so the node retries it with the new
//     holder rather than taking a refusal that is final for the round.
//     Without Ready a standby region's signer can be the connection the
//     node takes and refuse its votes: observed with a real v0.38 node and
//     three regions, the first connection was a standby's, which refused
//     the height-1 proposal and prevote, and the single-validator chain
//     never reached height 1.
//
// # How CometBFT treats the answers (observed with a real node)
//
//   - A RemoteSignerError is final: CometBFT's RetrySignerClient retries
//     only transport errors (50 × 100 ms), and consensus never re-asks for
//     a refused vote in the same round. A refused proposal costs
//     timeout_propose; a refused prevote or precommit is a missed vote —
//     and on a single-validator chain the round then waits forever, since
//     rounds advance only on +2/3 of votes. YieldAfter bounds how many
//     votes a region that cannot sign costs before the node moves to
//     another signer's connection.
//   - The node uses one connection and accepts the next only when it needs
//     one (its ping fails or a request breaks). A signer in reserve sits in
//     the accept queue with its handshake pending, hence the long default
//     HandshakeTimeout.
//   - A signer that is stopping leaves an in-flight request unanswered
//     rather than refusing it, so that the node retries it elsewhere.
//   - An unanswered request is retried up to 50 times, 100 ms apart; the
//     broken connection is replaced at the next ping (within about 3.3 s),
//     and from then on, when no signer is queued, each retry waits up to
//     3 s for one to connect (CometBFT v0.38 RetrySignerClient and
//     SignerListenerEndpoint). A node whose signer went away therefore
//     waits some tens of seconds for the next lease holder's signer before
//     it gives up on that vote — time for a handover.
//
// # What it guarantees
//
//   - Nothing is signed outside the pipeline: every signature it returns
//     comes from Backend.SignComet or Backend.SignUnslashable, whose records
//     are committed before signing (I1), and it checks each one verifies.
//   - A request that fails validation changes nothing: it is refused before
//     the Backend is called.
//   - Requests are answered sequentially per connection, in order; a
//     request never waits longer than Config.RequestTimeout for the Backend.
//   - Decoding untrusted frames never panics and allocates with the bytes
//     received, bounded by Config.MaxMessageSize (package wire).
//
// # Why hand-written protocol code instead of importing cometbft
//
// The brief allowed depending on github.com/cometbft/cometbft v0.38 for the
// generated protobuf types and p2p/conn.SecretConnection. We did not:
//
//   - Weight and reach: p2p/conn and the proto packages pull in gogoproto,
//     go-kit logging, cometbft's libs and crypto trees, curve25519-voi and
//     more, into a process that holds the signing lease. What we actually
//     need is ten small messages and a ~300-line handshake.
//   - Version coverage: v0.38's types do not know v1's shape (PubKeyResponse
//     fields 3/4, skip_extension_signing, SignBytes), so importing them
//     would still mean decoding v1's differences by hand. One codec that
//     knows both (package wire) is simpler than two half-codecs.
//   - Control of untrusted input: the wire decoder refuses unknown and
//     duplicate fields (a signer must not echo back a vote it only partly
//     understood) and never allocates on a declared length; gogoproto's
//     generated code is lenient and allocates what the prefix says.
//   - Independence: sign bytes built here are cross-checked against
//     slashing/cometbft's separately written strict codec before anything
//     is recorded, which only means something if the two are independent.
//
// The cost is owning a cryptographic handshake. It is checked by
// known-answer tests of the Merlin transcript (including one from the
// Merlin specification), a property test of Keccak-f[1600] against
// crypto/sha3, golden privval and sign-bytes encodings produced by
// CometBFT's own generated types, and end to end by the real CometBFT node
// in package cometbfttest.
package privval
