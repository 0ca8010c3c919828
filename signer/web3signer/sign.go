package web3signer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
)

// requestLog gathers what one signing request logs.
type requestLog struct {
	start    time.Time
	dryRun   bool
	identity string
	pubkey   string
	req      *eth2.Request
	status   int
	outcome  string
	rule     string
	err      error
}

func (l *requestLog) emit(lg *slog.Logger) {
	if l.status == 0 {
		// The handler did not finish: a panic, answered 500 by ServeHTTP.
		l.status, l.outcome = http.StatusInternalServerError, "internal"
	}
	attrs := []any{
		"status", l.status,
		"outcome", l.outcome,
		"pubkey", l.pubkey,
		"identity", l.identity,
		"duration", time.Since(l.start),
	}
	if l.dryRun {
		attrs = append(attrs, "check", true)
	}
	if l.rule != "" {
		attrs = append(attrs, "rule", l.rule)
	}
	if l.req != nil {
		attrs = append(attrs, "type", string(l.req.Type))
		p := l.req.Protection()
		switch p.Kind {
		case eth2.ProtectionBlock:
			attrs = append(attrs, "slot", p.Slot)
		case eth2.ProtectionAttestation:
			attrs = append(attrs, "source", p.SourceEpoch, "target", p.TargetEpoch)
		default:
			if ep, ok := l.req.Epoch(); ok {
				attrs = append(attrs, "epoch", ep)
			}
		}
	}
	level := slog.LevelInfo
	switch {
	case l.status >= 500:
		level = slog.LevelError
	case l.status != http.StatusOK:
		level = slog.LevelWarn
	}
	if l.err != nil {
		attrs = append(attrs, "err", l.err.Error())
	}
	msg := "eth2 sign"
	if l.dryRun {
		msg = "eth2 check"
	}
	lg.Log(context.Background(), level, msg, attrs...)
}

// serveEth handles the sign endpoint, or the check endpoint when dryRun.
func (h *Handler) serveEth(w http.ResponseWriter, r *http.Request, dryRun bool) {
	lg := &requestLog{start: time.Now(), dryRun: dryRun}
	defer lg.emit(h.cfg.Logger)
	fail := func(f failure, err error, beforePipeline bool) {
		lg.status, lg.outcome, lg.rule, lg.err = f.Status, f.Outcome, string(f.Rule), err
		if beforePipeline && !dryRun && h.cfg.Rejected != nil {
			h.cfg.Rejected(f.Outcome)
		}
		writeFailure(w, r, f)
	}

	id, err := h.auth.Authenticate(r)
	if err != nil {
		fail(authFailure(err), err, true)
		return
	}
	lg.identity = id.String()

	pk, err := bls.ParsePublicKey(r.PathValue("identifier"))
	if err != nil {
		fail(failure{Status: http.StatusBadRequest, Outcome: "bad_request",
			Message: "identifier is not a 0x-prefixed hex BLS public key of 48 bytes"}, err, true)
		return
	}
	lg.pubkey = pk.String()

	body, err := readBody(w, r)
	if err != nil {
		fail(decodeFailure(err), err, true)
		return
	}
	req, err := eth2.DecodeForNetwork(body, h.cfg.Network)
	if err != nil {
		fail(decodeFailure(err), err, true)
		return
	}
	lg.req = req
	caller := pipeline.Caller{Name: id.Name}

	if dryRun {
		if err := h.cfg.Signer.CheckEth(caller, pk, req); err != nil {
			fail(classify(err), err, false)
			return
		}
		lg.status, lg.outcome = http.StatusOK, "allowed"
		writeJSON(w, http.StatusOK, struct {
			Allowed bool `json:"allowed"`
		}{true})
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.SignTimeout)
	defer cancel()
	sig, err := h.cfg.Signer.SignEth(ctx, caller, pk, req)
	if err != nil {
		fail(classify(err), err, false)
		return
	}
	lg.status, lg.outcome = http.StatusOK, pipeline.OutcomeLabel(nil)
	writeSignature(w, r, sig)
}

// readBody reads the request body, at most eth2.MaxBodyBytes. A larger body
// gives an error wrapping eth2.ErrTooLarge.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, eth2.MaxBodyBytes)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("%w: body exceeds %d bytes", eth2.ErrTooLarge, tooBig.Limit)
		}
		return nil, fmt.Errorf("%w: reading the body: %v", errReadBody, err)
	}
	return body, nil
}

// errReadBody: the body could not be read (client went away, bad chunking).
var errReadBody = errors.New("web3signer: cannot read request body")

func writeSignature(w http.ResponseWriter, r *http.Request, sig [96]byte) {
	s := "0x" + hex.EncodeToString(sig[:])
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, struct {
			Signature string `json:"signature"`
		}{s})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, s)
}
