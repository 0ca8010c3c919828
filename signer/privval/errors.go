package privval

import (
	"errors"
	"fmt"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/signer/pipeline"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrConfig: the configuration is unusable.
	ErrConfig = errors.New("privval: invalid configuration")
	// ErrKeyFile: the connection-key file is missing, unreadable, too open
	// or not an Ed25519 key.
	ErrKeyFile = errors.New("privval: bad connection key file")
	// ErrNodeNotAllowed: the node's SecretConnection key is not in
	// AllowedNodeKeys. The connection was closed before any request.
	ErrNodeNotAllowed = errors.New("privval: node key not allowed")
	// ErrWrongChain: a request names a chain id other than the configured one.
	ErrWrongChain = errors.New("privval: request for another chain")
	// ErrBadRequest: a request is not something CometBFT would send for a
	// valid vote or proposal (wrong type, negative height, an extension on a
	// prevote, sign bytes CometBFT's own rules reject...). Nothing was
	// recorded.
	ErrBadRequest = errors.New("privval: bad request")
	// ErrSignBytesRefused: a v1 SignBytes request was refused — disabled by
	// configuration, or the bytes could be consensus or vote-extension sign
	// bytes.
	ErrSignBytesRefused = errors.New("privval: sign-bytes request refused")
	// ErrInconsistent: the backend returned something that does not match
	// the request (sign bytes for another message, a signature that does
	// not verify, a wrong-length key, the connection key as validator key).
	// Nothing is released; it indicates a fault to investigate.
	ErrInconsistent = errors.New("privval: backend result inconsistent with the request")
	// ErrStandby: Config.Ready says this region cannot sign now, so the
	// signer does not dial (Status.LastError while it stands by).
	ErrStandby = errors.New("privval: standing by: this region cannot sign now")
	// errReleased ends a session, leaving any request in hand unanswered,
	// because Config.Ready started refusing.
	errReleased = errors.New("privval: released the connection: this region can no longer sign")
	// errYield ends a session so that another signer can serve the node.
	errYield = errors.New("privval: yielding the connection")
)

// RemoteSignerError codes this signer sends. CometBFT logs the code and
// description and treats every refusal alike; the codes are for operators
// and tests. They start at 100 to stay clear of CometBFT's own Errors enum
// (0–5).
const (
	CodeUnknown        int32 = 100
	CodeWrongChain     int32 = 101
	CodeBadRequest     int32 = 102
	CodeSlashable      int32 = 103
	CodeForbidden      int32 = 104
	CodeUnknownKey     int32 = 105
	CodeNotLeaseHolder int32 = 106
	CodeNoQuorum       int32 = 107
	CodeMaybeCommitted int32 = 108
	CodeUnavailable    int32 = 109
	CodeSignBytes      int32 = 110
	CodeInconsistent   int32 = 111
	CodeNotApproved    int32 = 112
	CodeUnknownRequest int32 = 113
)

// Outcome labels (metrics label "outcome").
const (
	OutcomeOK             = "ok"
	OutcomeWrongChain     = "wrong_chain"
	OutcomeBadRequest     = "bad_request"
	OutcomeSlashable      = "slashable"
	OutcomeForbidden      = "forbidden"
	OutcomeUnknownKey     = "unknown_key"
	OutcomeNotLeaseHolder = "not_lease_holder"
	OutcomeNoQuorum       = "no_quorum"
	OutcomeMaybeCommitted = "maybe_committed"
	OutcomeUnavailable    = "unavailable"
	OutcomeSignBytes      = "sign_bytes_refused"
	OutcomeInconsistent   = "inconsistent"
	OutcomeNotApproved    = "not_approved"
	OutcomeUnknownRequest = "unknown_request"
	// OutcomeReleased: the request was left unanswered and the connection
	// closed because the region can no longer sign (Config.Ready), so that
	// the node retries it with the lease holder.
	OutcomeReleased = "released"
)

// classify maps an error to its outcome label and refusal code.
func classify(err error) (outcome string, code int32) {
	switch {
	case err == nil:
		return OutcomeOK, 0
	case errors.Is(err, ErrWrongChain):
		return OutcomeWrongChain, CodeWrongChain
	case errors.Is(err, ErrBadRequest), errors.Is(err, pipeline.ErrBadRequest):
		return OutcomeBadRequest, CodeBadRequest
	case errors.Is(err, ErrSignBytesRefused):
		return OutcomeSignBytes, CodeSignBytes
	case errors.Is(err, ErrInconsistent):
		return OutcomeInconsistent, CodeInconsistent
	case errors.Is(err, pipeline.ErrSlashable):
		return OutcomeSlashable, CodeSlashable
	case errors.Is(err, pipeline.ErrForbidden):
		return OutcomeForbidden, CodeForbidden
	case errors.Is(err, pipeline.ErrUnknownKey):
		return OutcomeUnknownKey, CodeUnknownKey
	case errors.Is(err, pipeline.ErrNotApproved):
		return OutcomeNotApproved, CodeNotApproved
	case errors.Is(err, leader.ErrNotHolder):
		return OutcomeNotLeaseHolder, CodeNotLeaseHolder
	case errors.Is(err, leader.ErrMaybeCommitted):
		return OutcomeMaybeCommitted, CodeMaybeCommitted
	case errors.Is(err, leader.ErrNotLeader), errors.Is(err, leader.ErrUnavailable):
		return OutcomeNoQuorum, CodeNoQuorum
	default:
		// pipeline.ErrCannotSign without a more precise cause, context
		// deadlines, backend failures: fail closed as unavailable.
		return OutcomeUnavailable, CodeUnavailable
	}
}

// cannotSignNow reports whether an outcome means "this region cannot sign
// now" — the refusals after which yielding the connection may help.
func cannotSignNow(outcome string) bool {
	switch outcome {
	case OutcomeNotLeaseHolder, OutcomeNoQuorum, OutcomeMaybeCommitted, OutcomeUnavailable:
		return true
	}
	return false
}

// refusal builds the RemoteSignerError for err.
func refusal(what string, err error) *remoteErr {
	outcome, code := classify(err)
	return &remoteErr{code: code, outcome: outcome, description: fmt.Sprintf("regent refused %s (%s): %v", what, outcome, err), err: err}
}

type remoteErr struct {
	code        int32
	outcome     string
	description string
	err         error
}
