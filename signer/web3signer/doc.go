// Package web3signer serves Regent's Ethereum signing API over HTTP in the
// shape of Web3Signer's eth2 API, so that Lighthouse, Teku, Prysm, Nimbus,
// Lodestar and Vouch use Regent unchanged as their remote signer.
//
// # What it owns
//
//   - POST /api/v1/eth2/sign/{identifier}: decode the body
//     (eth2.DecodeForNetwork), sign through the pipeline (check → commit →
//     sign), answer the signature as application/json {"signature":"0x…"}
//     when the client's Accept header prefers JSON, otherwise as the bare
//     0x-hex string in text/plain (as Web3Signer does for text/plain, */*
//     or no Accept header).
//   - POST /api/v1/eth2/check/{identifier} (Regent extension, same body):
//     the dry run (pipeline.CheckEth) — 200 {"allowed":true} or the status
//     the sign endpoint would answer; it records and signs nothing.
//   - GET /api/v1/eth2/publicKeys: the enabled BLS keys of the configured
//     network that the caller's policy covers, as a JSON array of 0x-hex.
//   - GET /upcheck: 200 "OK" (text/plain) while the process serves HTTP;
//     {"status":"OK"} to a client that asks for JSON (Nimbus does).
//   - GET /healthcheck: a Web3Signer-shaped JSON health report (status,
//     checks, outcome) built from a HealthReporter: lease, keys, quorum.
//   - NewServer: an *http.Server with read, write and idle timeouts.
//
// # Status codes
//
//	200  signed (or, for check, allowed)
//	400  malformed request: bad identifier or body hex, unknown type or fork,
//	     missing fork_info, JSON of the wrong kind, signing root mismatch,
//	     another network, a record the state machine cannot evaluate
//	401  no identity: no verified client certificate and no valid token
//	403  authenticated but not permitted: the caller's role may not sign,
//	     its policy does not cover this key or message type, the key is
//	     disabled, or a voluntary exit lacks its committed operator approval
//	404  the key is not in the registry
//	412  slashing protection refused; the body names the rule and the
//	     values compared
//	413  body larger than eth2.MaxBodyBytes
//	503  this region cannot sign now: not the lease holder, no quorum, the
//	     record's commit is uncertain, key not loaded, HSM failure; the body
//	     says which
//	500  only a bug (an error this package does not classify)
//
// Web3Signer documents 400, 404, 412 and 500 for the sign endpoint. 403 and
// 503 are Regent's: every listed client treats any non-200 answer as a
// failed signature and does not retry it as if it were slashable, which is
// what both mean. 403 was chosen over 412 for policy and exit approval
// because nothing about the request is slashable — a client or operator
// reading "412" would look for a protection conflict that does not exist —
// and over 401 because the caller is authenticated. 503 tells a load
// balancer or client with several signer URLs to try another region.
//
// Error bodies follow the same content negotiation as signatures: JSON
// {"error","outcome","rule"?} or one line of text. They carry the reason
// only: decoding and policy messages (derived from the request), the
// refusing rule and compared values, or a fixed sentence for 503 and 500;
// internal error chains (HSM, Raft) go to the log, never to the client.
//
// # Authentication
//
// Every endpoint except /upcheck and /healthcheck needs an identity (see
// package httpauth): the verified mutual-TLS client certificate of a
// client or operator (regent://client/<name>, regent://operator/<name>),
// or, when Config.Tokens is set, a bearer token. The identity's name is the
// pipeline.Caller whose replicated policy decides which keys and message
// types it may sign. With tokens, the server's tls.Config must not require
// a client certificate (pki.Material.ServerConfig does require one).
//
// # Guarantees
//
//   - A 200 from the sign endpoint carries the signature the pipeline
//     returned, which it returns only after the protection record was
//     committed and accepted (DESIGN.md I1). Every other answer carries no
//     signature.
//   - Every body is read through http.MaxBytesReader(eth2.MaxBodyBytes).
//   - The handler never answers 500 or panics on any client input (fuzzed);
//     a panic in a dependency is recovered, logged and answered 500.
//   - Every request to the signing endpoints is logged once with the stable
//     keys pubkey, type, outcome, rule, slot, source, target (and epoch,
//     status, identity, duration where they apply).
//
// The handler holds no mutable package-level state and is safe for
// concurrent use.
package web3signer
