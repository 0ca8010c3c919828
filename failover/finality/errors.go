package finality

import "errors"

// Sentinel errors. Match with errors.Is; every error this package returns
// wraps at least one of them. Errors about one endpoint (the first group)
// exclude that endpoint from the current round only; errors about a chain
// (the second group) mean the round produced no agreed finality for it.
var (
	// ErrUnreachable marks an endpoint that could not be asked: connection
	// refused, TLS failure, timeout, cancelled request, a redirect loop.
	ErrUnreachable = errors.New("finality: endpoint unreachable")
	// ErrHTTPStatus marks an answer whose HTTP status is not 200.
	ErrHTTPStatus = errors.New("finality: endpoint answered with an error status")
	// ErrResponseTooLarge marks an answer longer than Config.MaxResponseBytes.
	// The body is not read past the limit.
	ErrResponseTooLarge = errors.New("finality: response body too large")
	// ErrMalformed marks an answer that is not the JSON the API specifies:
	// invalid JSON, a duplicate or missing member, a member of the wrong
	// type, a number that is not a canonical decimal string, a root that is
	// not 32 bytes of hex, trailing data.
	ErrMalformed = errors.New("finality: malformed response")
	// ErrRPCError marks a CometBFT JSON-RPC answer carrying an error object.
	ErrRPCError = errors.New("finality: JSON-RPC error")
	// ErrWrongNetwork marks an endpoint on another network: an Ethereum
	// genesis_validators_root or a CometBFT chain id (network) other than
	// the configured one.
	ErrWrongNetwork = errors.New("finality: endpoint is on another network")
	// ErrOptimistic marks an Ethereum answer flagged execution_optimistic
	// while Config.AllowOptimistic is false.
	ErrOptimistic = errors.New("finality: endpoint answer is execution-optimistic")
	// ErrCatchingUp marks a CometBFT node that reports catching_up, or has
	// no block yet.
	ErrCatchingUp = errors.New("finality: endpoint is catching up")
	// ErrInconsistent marks an endpoint whose answers contradict each other
	// (the finalized header's root is not the finalized checkpoint's root;
	// the commit at a height names another block than the status did; the
	// commit is for another height or chain than asked).
	ErrInconsistent = errors.New("finality: endpoint answers are inconsistent")
	// ErrImplausible marks a number no honest node reports: a finalized
	// epoch whose first slot overflows 64 bits.
	ErrImplausible = errors.New("finality: implausible answer")

	// ErrNoQuorum marks a chain for which fewer than Quorum endpoints gave a
	// usable answer this round. No finality is reported for it.
	ErrNoQuorum = errors.New("finality: no quorum of endpoints")
	// ErrConflict marks a chain whose endpoints disagree about the block at
	// one epoch or height (two different finalized roots at one epoch, two
	// different block hashes at one height). It is a fault: the round
	// confirms nothing for that chain, and the disagreement is logged and
	// counted.
	ErrConflict = errors.New("finality: endpoints disagree on the same epoch or height")
	// ErrNotPast marks a chain whose agreed finality is not yet past the
	// high-water mark WaitPast waits for.
	ErrNotPast = errors.New("finality: chain not finalized past the mark")

	// ErrInvalidConfig marks a Config that Validate refuses.
	ErrInvalidConfig = errors.New("finality: invalid config")
	// ErrUnknownChain marks a HighWater naming a chain the Watcher is not
	// configured to watch: WaitPast could never confirm it, so it refuses
	// at once.
	ErrUnknownChain = errors.New("finality: chain not configured")
	// ErrInvalidTarget marks a HighWater with a negative CometBFT height.
	ErrInvalidTarget = errors.New("finality: invalid high-water mark")
)
