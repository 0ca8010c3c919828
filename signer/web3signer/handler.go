package web3signer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
	"github.com/regent-signer/regent/slashing/eth"
)

// Paths served by the handler.
const (
	PathSign       = "/api/v1/eth2/sign/{identifier}"
	PathCheck      = "/api/v1/eth2/check/{identifier}"
	PathPublicKeys = "/api/v1/eth2/publicKeys"
	PathUpcheck    = "/upcheck"
	PathHealth     = "/healthcheck"
)

// DefaultSignTimeout bounds one sign request's wait for its record to
// commit when Config.SignTimeout is zero.
const DefaultSignTimeout = 10 * time.Second

// ErrConfig: New was given an incomplete or invalid Config.
var ErrConfig = errors.New("web3signer: invalid configuration")

// Signer is the sign path the handler calls; *pipeline.Pipeline implements
// it. Both methods are called concurrently from handler goroutines.
//
// SignEth must return a signature only when it may leave the node (the
// record covering it committed and accepted); every error must wrap one of
// the pipeline sentinels (ErrSlashable, ErrForbidden, ErrUnknownKey,
// ErrBadRequest, ErrNotApproved, ErrCannotSign) — anything else is treated
// as a bug and answered 500. CheckEth records nothing.
type Signer interface {
	SignEth(ctx context.Context, caller pipeline.Caller, pubkey [48]byte, req *eth2.Request) ([96]byte, error)
	CheckEth(caller pipeline.Caller, pubkey [48]byte, req *eth2.Request) error
}

// HealthReporter reports this region's ability to sign, for /healthcheck.
// Health is called from handler goroutines and must not block on the
// network: report what the node already knows.
type HealthReporter interface {
	Health() HealthStatus
}

// HealthStatus is one health report.
type HealthStatus struct {
	// Region is this node's region id.
	Region string
	// LeaseHeld: this region holds the active signing lease.
	LeaseHeld bool
	// LeaseState, LeaseHolder and LeaseEpoch describe the lease as this
	// node's applied state shows it.
	LeaseState  string
	LeaseHolder string
	LeaseEpoch  uint64
	// KeysLoaded is the number of BLS keys unsealed and ready to sign;
	// KeysExpected the number of enabled keys this region should hold.
	KeysLoaded   int
	KeysExpected int
	// Quorum: the replicated log can commit (a leader is known and in
	// contact with a majority).
	Quorum bool
	// Detail is an optional human-readable note (for example why keys are
	// not loaded). It is shown to callers of /healthcheck.
	Detail string
}

// Config wires a Handler.
type Config struct {
	// Signer signs and checks requests. Required.
	Signer Signer
	// State reads the applied replicated state, for publicKeys. Required.
	State pipeline.StateView
	// Health reports lease, keys and quorum for /healthcheck. Required.
	Health HealthReporter
	// Network is the chain this cluster signs for; requests are decoded
	// for it and publicKeys lists its keys. Required (non-empty Name).
	Network eth2.Network
	// Tokens, when set, accepts "Authorization: Bearer" tokens besides
	// client certificates.
	Tokens httpauth.TokenVerifier
	// Logger receives one record per request. Nil discards.
	Logger *slog.Logger
	// SignTimeout bounds a sign request's wait for commit; zero means
	// DefaultSignTimeout. Keep it below the server's WriteTimeout.
	SignTimeout time.Duration
	// Rejected, when set, is called once for every signing request that was
	// refused before it reached the Signer (authentication, identifier,
	// body), with its outcome label; the pipeline reports the rest through
	// pipeline.Config.Observe. metrics.(*Metrics).Rejected fits.
	Rejected func(outcome string)
}

// Handler is the HTTP handler of the eth2 signing API. It is safe for
// concurrent use.
type Handler struct {
	cfg  Config
	auth httpauth.Authenticator
	mux  *http.ServeMux
	// networkHex is the registry's network string for Config.Network
	// ("" when the network has no genesis validators root).
	networkHex string
}

// New returns a Handler for cfg.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Signer == nil:
		return nil, fmt.Errorf("%w: Signer is required", ErrConfig)
	case cfg.State == nil:
		return nil, fmt.Errorf("%w: State is required", ErrConfig)
	case cfg.Health == nil:
		return nil, fmt.Errorf("%w: Health is required", ErrConfig)
	case cfg.Network.Name == "":
		return nil, fmt.Errorf("%w: Network is required", ErrConfig)
	case cfg.SignTimeout < 0:
		return nil, fmt.Errorf("%w: negative SignTimeout", ErrConfig)
	}
	if cfg.SignTimeout == 0 {
		cfg.SignTimeout = DefaultSignTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		cfg:  cfg,
		auth: httpauth.Authenticator{Tokens: cfg.Tokens, Allowed: []pki.Role{pki.RoleClient, pki.RoleOperator}},
		mux:  http.NewServeMux(),
	}
	if cfg.Network.GenesisValidatorsRoot != (eth2.Root{}) {
		h.networkHex = leader.RootHex(eth.Root(cfg.Network.GenesisValidatorsRoot))
	}
	h.mux.HandleFunc("POST "+PathSign, func(w http.ResponseWriter, r *http.Request) { h.serveEth(w, r, false) })
	h.mux.HandleFunc("POST "+PathCheck, func(w http.ResponseWriter, r *http.Request) { h.serveEth(w, r, true) })
	h.mux.HandleFunc("GET "+PathPublicKeys, h.publicKeys)
	h.mux.HandleFunc("GET "+PathUpcheck, upcheck)
	h.mux.HandleFunc("GET "+PathHealth, h.healthcheck)
	return h, nil
}

// ServeHTTP implements http.Handler. A panic below it is logged and
// answered 500 rather than tearing down the connection.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.cfg.Logger.Error("panic in eth2 API handler", "path", r.URL.Path, "panic", fmt.Sprint(p))
			writeFailure(w, r, failure{Status: http.StatusInternalServerError, Outcome: "internal", Message: msgInternal})
		}
	}()
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// upcheck answers "OK" as Web3Signer does (text/plain), or {"status":"OK"}
// to a client that prefers JSON (Nimbus asks for application/json).
func upcheck(w http.ResponseWriter, r *http.Request) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, struct {
			Status string `json:"status"`
		}{"OK"})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK"))
}

// publicKeys lists the enabled BLS keys of the configured network that the
// caller's policy covers for at least one message type. An identity
// without a policy gets an empty list.
func (h *Handler) publicKeys(w http.ResponseWriter, r *http.Request) {
	id, err := h.auth.Authenticate(r)
	if err != nil {
		f := authFailure(err)
		h.cfg.Logger.Info("eth2 public keys refused", "status", f.Status, "outcome", f.Outcome, "err", err)
		writeFailure(w, r, f)
		return
	}
	out := []string{}
	h.cfg.State.View(func(s *leader.State, _ uint64) {
		pol, ok := s.Policy(id.Name)
		if !ok {
			return
		}
		for _, k := range s.Keys() {
			if k.Scheme != commandpb.Scheme_SCHEME_BLS12381 || k.Disabled {
				continue
			}
			if h.networkHex != "" && k.Network != h.networkHex {
				continue
			}
			if coversKey(pol, k.Pubkey) {
				out = append(out, "0x"+hex.EncodeToString(k.Pubkey))
			}
		}
	})
	h.cfg.Logger.Debug("eth2 public keys", "identity", id.String(), "keys", len(out))
	writeJSON(w, http.StatusOK, out)
}

// coversKey reports whether pol allows pubkey for at least one of the
// message types it lists.
func coversKey(pol leader.Policy, pubkey []byte) bool {
	for _, t := range pol.MessageTypes {
		if pol.Allows(pubkey, t) {
			return true
		}
	}
	return false
}
