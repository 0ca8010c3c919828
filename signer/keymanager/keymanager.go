package keymanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/keystore"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
)

// PathKeystores is the Keymanager API's local keystores endpoint.
const PathKeystores = "/eth/v1/keystores"

// Defaults of Config.
const (
	// DefaultMaxBodyBytes bounds a request body: an interchange of up to
	// eth.MaxInterchangeBytes escaped into a JSON string, plus keystores.
	DefaultMaxBodyBytes = 96 << 20
	// DefaultMaxKeys bounds the keystores of one import and the public keys
	// of one delete.
	DefaultMaxKeys = 512
	// DefaultTimeout bounds one import or delete, from the end of the
	// request headers: opening a standard scrypt keystore takes about a
	// second and is done twice per key (check, then import).
	DefaultTimeout = 15 * time.Minute
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrConfig: New was given an incomplete or invalid Config.
	ErrConfig = errors.New("keymanager: invalid configuration")
	// ErrDuplicate: KeyImporter.ImportKeystore found the key already
	// registered; nothing was imported ("duplicate").
	ErrDuplicate = errors.New("keymanager: key already registered")
	// ErrPending: KeyImporter.ImportKeystore registered the key but this
	// region has not installed it yet ("imported", with a message).
	ErrPending = errors.New("keymanager: key registered, not yet installed in this region")
	// ErrNotFound: KeyImporter.DeleteKey does not know the key.
	ErrNotFound = errors.New("keymanager: key not found")
	// ErrRejected: the state machine refused a proposed command (as
	// opposed to the log being unavailable). A Proposer that cannot pass
	// the FSM's own error through (a forwarded write) wraps this.
	ErrRejected = errors.New("keymanager: command refused by the state machine")
)

// ListedKey is one key as the Keymanager API lists it.
type ListedKey struct {
	Pubkey bls.PublicKey
	// DerivationPath is the keystore's path, if known.
	DerivationPath string
	// Readonly keys cannot be deleted through the API.
	Readonly bool
}

// KeyImporter imports and deletes validator keys (signer/keysync's
// Manager, through a small adapter). Its methods are called from HTTP
// handler goroutines, possibly concurrently.
type KeyImporter interface {
	// ImportKeystore opens an EIP-2335 keystore with password and registers
	// its key so that every region can sign with it. It must refuse a
	// keystore whose "pubkey" field does not match its secret. A key the
	// registry already holds with its secrets fails with an error wrapping
	// ErrDuplicate and changes nothing. A key the registry holds only
	// because this package's ImportInterchange registered it (no wrapped
	// secrets, not disabled) is NOT a duplicate: the importer must attach
	// the secrets to it. A key registered but not yet installed here may
	// return its public key with an error wrapping ErrPending.
	ImportKeystore(ctx context.Context, keystoreJSON []byte, password string) (bls.PublicKey, error)
	// DeleteKey disables pk in the replicated registry, waits until this
	// node has applied that, and returns pk's complete EIP-3076 interchange
	// (for the configured network) exported from the applied state; nil
	// means "export it yourself from State". An already disabled key is
	// exported without a new write. An unknown key wraps ErrNotFound.
	DeleteKey(ctx context.Context, pk bls.PublicKey) (interchangeJSON []byte, err error)
	// List returns the keys whose secrets the cluster holds.
	List() []ListedKey
}

// Proposer writes one command to the replicated log and waits until it is
// applied on this node, forwarding to the Raft leader when needed (the
// shape of keysync.Proposer; leader.Service.Propose plus forwarding). A nil
// error means committed and applied without error. An error from the
// state machine's handler (refused command) must keep its sentinel
// (slashing.ErrSlashableImport, leader.ErrInvalidInput, ...) or wrap
// ErrRejected; any other error is read as "the log is unavailable or the
// write's fate is unknown".
type Proposer interface {
	Propose(ctx context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error)
}

// Config wires a Handler.
type Config struct {
	Importer KeyImporter
	Proposer Proposer
	// State reads this node's applied replicated state: registry checks and
	// the history of keys that are not active. Required.
	State pipeline.StateView
	// Network is the chain the cluster's keys belong to; its genesis
	// validators root must be set. Required.
	Network eth2.Network
	// Tokens, when set, accepts bearer tokens naming an operator.
	Tokens httpauth.TokenVerifier
	Logger *slog.Logger
	// MaxBodyBytes, MaxKeys and Timeout: zero means the defaults.
	MaxBodyBytes int64
	MaxKeys      int
	Timeout      time.Duration
	// VerifyKeystore opens a keystore to check its password before anything
	// is written and returns its public key. Nil means keystore.Decrypt
	// (the secret is zeroed at once).
	VerifyKeystore func(keystoreJSON []byte, password string) (bls.PublicKey, error)
}

// Handler serves the Keymanager API. It is safe for concurrent use.
type Handler struct {
	cfg  Config
	auth httpauth.Authenticator
	mux  *http.ServeMux
}

// New returns a Handler for cfg.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Importer == nil || cfg.Proposer == nil || cfg.State == nil:
		return nil, fmt.Errorf("%w: Importer, Proposer and State are required", ErrConfig)
	case cfg.Network.GenesisValidatorsRoot == (eth2.Root{}):
		return nil, fmt.Errorf("%w: Network with a genesis validators root is required", ErrConfig)
	case cfg.MaxBodyBytes < 0 || cfg.MaxKeys < 0 || cfg.Timeout < 0:
		return nil, fmt.Errorf("%w: negative limit", ErrConfig)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.VerifyKeystore == nil {
		cfg.VerifyKeystore = decryptKeystore
	}
	h := &Handler{
		cfg:  cfg,
		auth: httpauth.Authenticator{Tokens: cfg.Tokens, Allowed: []pki.Role{pki.RoleOperator}},
		mux:  http.NewServeMux(),
	}
	h.mux.HandleFunc("GET "+PathKeystores, h.withAuth(h.list))
	h.mux.HandleFunc("POST "+PathKeystores, h.withAuth(h.importKeys))
	h.mux.HandleFunc("DELETE "+PathKeystores, h.withAuth(h.deleteKeys))
	return h, nil
}

// decryptKeystore is the default VerifyKeystore.
func decryptKeystore(keystoreJSON []byte, password string) (bls.PublicKey, error) {
	secret, pub, err := keystore.Decrypt(keystoreJSON, password)
	clear(secret)
	if err != nil {
		return bls.PublicKey{}, err
	}
	return bls.PublicKey(pub), nil
}

// ServeHTTP implements http.Handler. A panic below it is logged and
// answered 500.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.cfg.Logger.Error("panic in Keymanager API handler", "method", r.Method, "panic", fmt.Sprint(p))
			writeError(w, http.StatusInternalServerError, "internal error; the node's log has the details")
		}
	}()
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// withAuth authenticates an operator before next runs.
func (h *Handler) withAuth(next func(w http.ResponseWriter, r *http.Request, id httpauth.Identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := h.auth.Authenticate(r)
		if err != nil {
			status := http.StatusForbidden
			msg := "the Keymanager API is for operators"
			switch {
			case errors.Is(err, httpauth.ErrNoIdentity):
				status, msg = http.StatusUnauthorized, "an operator certificate or bearer token is required"
			case errors.Is(err, httpauth.ErrBadToken):
				msg = "bearer token rejected"
			}
			h.cfg.Logger.Warn("keymanager request refused", "method", r.Method, "status", status, "err", err.Error())
			writeError(w, status, msg)
			return
		}
		next(w, r, id)
	}
}

// errBody is the spec's error response.
type errBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errBody{Code: status, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":500,"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errBadBody marks a request body this package refuses (400).
var errBadBody = errors.New("keymanager: bad request body")

// readJSON reads r's body, at most cfg.MaxBodyBytes, into v strictly: one
// JSON object, no unknown fields, nothing after it. It returns the status
// to answer on error (400 or 413).
func (h *Handler) readJSON(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("%w: body exceeds %d bytes", errBadBody, tooBig.Limit)
		}
		return http.StatusBadRequest, fmt.Errorf("%w: reading the body: %v", errBadBody, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, fmt.Errorf("%w: %v", errBadBody, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return http.StatusBadRequest, fmt.Errorf("%w: data after the JSON object", errBadBody)
	}
	return 0, nil
}

// extendDeadlines gives a long import or delete room beyond the server's
// default timeouts; servers without deadline support ignore it.
func (h *Handler) extendDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(h.cfg.Timeout)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}
