package web3signer

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
	"github.com/regent-signer/regent/slashing"
)

// Fixed client-facing sentences for answers whose cause must not leak.
const (
	msgInternal       = "internal error; the signer's log has the details"
	msgNotHolder      = "this region cannot sign now: it does not hold the signing lease"
	msgNoQuorum       = "this region cannot sign now: the replicated log has no quorum"
	msgMaybeCommitted = "this region cannot sign now: the protection record's commit is uncertain (leadership changed or the request timed out); nothing was signed, retry"
	msgClosed         = "this region cannot sign now: it is shutting down"
	msgKeyNotLoaded   = "this region cannot sign now: the signing key is not loaded"
	msgUnavailable    = "this region cannot sign now: signing key or HSM unavailable"
)

// failure is a refused request as the client sees it.
type failure struct {
	Status  int
	Outcome string        // stable label, as pipeline.OutcomeLabel
	Rule    slashing.Rule // the refusing slashing rule, for 412
	Message string        // the reason, safe to show
}

// decodeFailure maps an error from reading or decoding the body.
func decodeFailure(err error) failure {
	switch {
	case errors.Is(err, eth2.ErrTooLarge):
		return failure{Status: http.StatusRequestEntityTooLarge, Outcome: "too_large", Message: err.Error()}
	case errors.Is(err, eth2.ErrNetworkRequired):
		// Decoding for a configured network never needs more; this is a
		// configuration bug, not the client's fault.
		return failure{Status: http.StatusInternalServerError, Outcome: "internal", Message: msgInternal}
	case errors.Is(err, errReadBody):
		return failure{Status: http.StatusBadRequest, Outcome: "bad_request", Message: "the request body could not be read"}
	case isEth2Refusal(err):
		// eth2 errors name the field and what was wrong with the client's
		// own input.
		return failure{Status: http.StatusBadRequest, Outcome: "bad_request", Message: err.Error()}
	default:
		return failure{Status: http.StatusInternalServerError, Outcome: "internal", Message: msgInternal}
	}
}

// isEth2Refusal reports whether err is one of eth2's refusals of client
// input.
func isEth2Refusal(err error) bool {
	for _, s := range []error{eth2.ErrMalformed, eth2.ErrUnknownType, eth2.ErrUnknownFork, eth2.ErrMissingForkInfo,
		eth2.ErrUnsupported, eth2.ErrSigningRootMismatch, eth2.ErrWrongNetwork} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// authFailure maps an httpauth error.
func authFailure(err error) failure {
	switch {
	case errors.Is(err, httpauth.ErrWrongRole):
		return failure{Status: http.StatusForbidden, Outcome: "forbidden", Message: "this identity's role may not use the signing API"}
	case errors.Is(err, httpauth.ErrBadToken):
		return failure{Status: http.StatusUnauthorized, Outcome: "unauthenticated", Message: "bearer token rejected"}
	default:
		return failure{Status: http.StatusUnauthorized, Outcome: "unauthenticated",
			Message: "a client certificate with a Regent identity or a bearer token is required"}
	}
}

// classify maps a pipeline error. Anything it does not recognise is a bug:
// 500 with a fixed message.
func classify(err error) failure {
	label := pipeline.OutcomeLabel(err)
	switch {
	case errors.Is(err, eth2.ErrNetworkRequired):
		return failure{Status: http.StatusInternalServerError, Outcome: "internal", Message: msgInternal}
	case errors.Is(err, pipeline.ErrSlashable):
		f := failure{Status: http.StatusPreconditionFailed, Outcome: label, Message: "refused by slashing protection"}
		var ref *pipeline.Refusal
		if errors.As(err, &ref) {
			f.Rule = ref.Rule
			f.Message += ": " + ref.Error()
		}
		return f
	case errors.Is(err, pipeline.ErrBadRequest):
		return failure{Status: http.StatusBadRequest, Outcome: label, Message: reasonOf(err)}
	case errors.Is(err, pipeline.ErrUnknownKey):
		return failure{Status: http.StatusNotFound, Outcome: label, Message: reasonOf(err)}
	case errors.Is(err, pipeline.ErrForbidden), errors.Is(err, pipeline.ErrNotApproved):
		return failure{Status: http.StatusForbidden, Outcome: label, Message: reasonOf(err)}
	case errors.Is(err, pipeline.ErrCannotSign):
		return failure{Status: http.StatusServiceUnavailable, Outcome: label, Message: unavailableReason(err)}
	default:
		return failure{Status: http.StatusInternalServerError, Outcome: "internal", Message: msgInternal}
	}
}

// reasonOf is the client-facing text of a 4xx pipeline error: the
// Refusal's reason when the state machine refused, else the error chain,
// which for these sentinels is built from the request and the policy only.
func reasonOf(err error) string {
	var ref *pipeline.Refusal
	if errors.As(err, &ref) && ref.Reason != "" {
		return ref.Error()
	}
	return err.Error()
}

// unavailableReason picks a fixed sentence for a 503 so that HSM, Raft and
// key-store internals stay in the log.
func unavailableReason(err error) string {
	switch {
	case errors.Is(err, leader.ErrNotHolder), errors.Is(err, leader.ErrStaleLease):
		return msgNotHolder
	case errors.Is(err, leader.ErrMaybeCommitted):
		return msgMaybeCommitted
	case errors.Is(err, leader.ErrNotLeader), errors.Is(err, leader.ErrUnavailable):
		return msgNoQuorum
	case errors.Is(err, leader.ErrClosed):
		return msgClosed
	case errors.Is(err, bls.ErrKeyNotLoaded):
		return msgKeyNotLoaded
	default:
		return msgUnavailable
	}
}

type errorBody struct {
	Error   string `json:"error"`
	Outcome string `json:"outcome"`
	Rule    string `json:"rule,omitempty"`
}

// writeFailure answers f as JSON or text, following the Accept header.
func writeFailure(w http.ResponseWriter, r *http.Request, f failure) {
	if wantsJSON(r) {
		writeJSON(w, f.Status, errorBody{Error: f.Message, Outcome: f.Outcome, Rule: string(f.Rule)})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(f.Status)
	_, _ = io.WriteString(w, f.Message+"\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only values of this package are encoded; they always marshal.
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error","outcome":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// wantsJSON reports whether the Accept header prefers application/json over
// text/plain. No header, */*, text/* or text/plain mean text, as in
// Web3Signer; among listed types the highest q wins, the first on a tie.
func wantsJSON(r *http.Request) bool {
	best, bestQ := false, -1.0
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			var isJSON bool
			switch mt {
			case "application/json", "application/*":
				isJSON = true
			case "text/plain", "text/*", "*/*":
				isJSON = false
			default:
				continue
			}
			if q > bestQ && q > 0 {
				best, bestQ = isJSON, q
			}
		}
	}
	return best
}
