package keymanager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/eth"
)

// Per-key statuses of the spec.
const (
	StatusImported  = "imported"
	StatusDuplicate = "duplicate"
	StatusError     = "error"
	StatusDeleted   = "deleted"
	StatusNotActive = "not_active"
	StatusNotFound  = "not_found"
)

// KeyStatus is one entry of an import or delete response's data.
type KeyStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

type importRequest struct {
	Keystores          *[]string `json:"keystores"`
	Passwords          *[]string `json:"passwords"`
	SlashingProtection *string   `json:"slashing_protection"`
}

// ImportResponse is the body of a successful POST.
type ImportResponse struct {
	Data []KeyStatus `json:"data"`
}

// importKeys: validate everything, open every keystore, commit the
// interchange for the keys that opened, then import them one by one.
func (h *Handler) importKeys(w http.ResponseWriter, r *http.Request, id httpauth.Identity) {
	h.extendDeadlines(w)
	var req importRequest
	if status, err := h.readJSON(w, r, &req); err != nil {
		h.refuse(w, "import", id, status, err.Error())
		return
	}
	switch {
	case req.Keystores == nil || req.Passwords == nil:
		h.refuse(w, "import", id, http.StatusBadRequest, "keystores and passwords are required")
		return
	case len(*req.Keystores) != len(*req.Passwords):
		h.refuse(w, "import", id, http.StatusBadRequest,
			fmt.Sprintf("%d keystores but %d passwords: passwords[i] must unlock keystores[i]", len(*req.Keystores), len(*req.Passwords)))
		return
	case len(*req.Keystores) > h.cfg.MaxKeys:
		h.refuse(w, "import", id, http.StatusBadRequest, fmt.Sprintf("%d keystores exceed the limit of %d per request", len(*req.Keystores), h.cfg.MaxKeys))
		return
	}
	keystores, passwords := *req.Keystores, *req.Passwords

	var ic *eth.Interchange
	if req.SlashingProtection != nil && strings.TrimSpace(*req.SlashingProtection) != "" {
		var err error
		ic, err = eth.DecodeInterchange([]byte(*req.SlashingProtection))
		if err != nil {
			h.refuse(w, "import", id, http.StatusBadRequest, "slashing_protection: "+err.Error())
			return
		}
		if want := eth.Root(h.cfg.Network.GenesisValidatorsRoot); ic.GenesisValidatorsRoot != want {
			h.refuse(w, "import", id, http.StatusBadRequest, fmt.Sprintf("slashing_protection is for genesis validators root %s, this cluster signs for %s (%s)",
				ic.GenesisValidatorsRoot, want, h.cfg.Network.Name))
			return
		}
	}

	// Open every keystore before anything is written.
	data := make([]KeyStatus, len(keystores))
	pubkeys := make([]bls.PublicKey, len(keystores))
	opened := map[eth.Pubkey]bool{}
	for i := range keystores {
		pk, err := h.cfg.VerifyKeystore([]byte(keystores[i]), passwords[i])
		if err != nil {
			data[i] = KeyStatus{Status: StatusError, Message: fmt.Sprintf("keystores[%d]: %v", i, err)}
			continue
		}
		pubkeys[i] = pk
		opened[eth.Pubkey(pk)] = true
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	if ic == nil && len(opened) > 0 {
		h.cfg.Logger.Warn("keymanager import without slashing protection: the keys start with an empty history", "identity", id.String(), "keys", len(opened))
	}
	if ic != nil {
		if status, msg := h.importHistory(ctx, ic, opened); status != 0 {
			h.refuse(w, "import", id, status, msg)
			return
		}
	}

	for i := range keystores {
		if data[i].Status == StatusError {
			h.cfg.Logger.Warn("keymanager import", "identity", id.String(), "index", i, "status", StatusError, "err", data[i].Message)
			continue
		}
		data[i] = h.importOne(ctx, i, []byte(keystores[i]), passwords[i], pubkeys[i])
		h.cfg.Logger.Info("keymanager import", "identity", id.String(), "pubkey", pubkeys[i].String(), "status", data[i].Status, "message", data[i].Message)
	}
	writeJSON(w, http.StatusOK, ImportResponse{Data: data})
}

// importHistory commits ic's records for the opened keys as one
// ImportInterchange command, registering keys the registry lacks. It
// returns 0 on success, else the status and message to refuse the whole
// request with (nothing of it was imported).
func (h *Handler) importHistory(ctx context.Context, ic *eth.Interchange, opened map[eth.Pubkey]bool) (int, string) {
	kept := &eth.Interchange{GenesisValidatorsRoot: ic.GenesisValidatorsRoot}
	dropped := 0
	for _, rec := range ic.Data {
		if opened[rec.Pubkey] {
			kept.Data = append(kept.Data, rec)
		} else {
			dropped++
		}
	}
	if dropped > 0 {
		h.cfg.Logger.Info("keymanager import: interchange records for keys not imported by this request dropped", "entries", dropped)
	}
	if len(kept.Data) == 0 {
		return 0, ""
	}
	doc, err := eth.EncodeInterchange(kept)
	if err != nil {
		return http.StatusInternalServerError, "cannot re-encode the slashing protection interchange"
	}
	gvr := kept.GenesisValidatorsRoot
	_, err = h.cfg.Proposer.Propose(ctx, commandpb.CommandType_IMPORT_INTERCHANGE, &commandpb.ImportInterchange{
		GenesisValidatorsRoot: gvr[:], InterchangeJson: doc, RegisterKeys: true,
	})
	if err == nil {
		h.cfg.Logger.Info("keymanager import: slashing protection committed", "entries", len(kept.Data))
		return 0, ""
	}
	h.cfg.Logger.Warn("keymanager import: slashing protection not committed; no key imported", "err", err.Error())
	if rejected(err) {
		return http.StatusBadRequest, "slashing_protection refused: " + err.Error() + "; no key was imported"
	}
	if errors.Is(err, leader.ErrMaybeCommitted) {
		return http.StatusServiceUnavailable, "the slashing protection import may or may not have committed; no key was imported, retry the request"
	}
	return http.StatusServiceUnavailable, "the replicated log cannot commit the slashing protection now; no key was imported"
}

// rejected reports whether a Proposer error is the state machine refusing
// the command, as opposed to the log being unavailable.
func rejected(err error) bool {
	for _, s := range []error{ErrRejected, slashing.ErrInvalidInput, slashing.ErrSlashableImport, slashing.ErrGenesisMismatch,
		slashing.ErrUnsupportedVersion, leader.ErrInvalidInput, leader.ErrUnknownKey, leader.ErrInvalidKey, leader.ErrKeyConflict,
		fsm.ErrMalformedEntry} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// importOne hands one opened keystore to the KeyImporter.
func (h *Handler) importOne(ctx context.Context, i int, keystoreJSON []byte, password string, want bls.PublicKey) KeyStatus {
	pk, err := h.cfg.Importer.ImportKeystore(ctx, keystoreJSON, password)
	switch {
	case errors.Is(err, ErrDuplicate):
		return KeyStatus{Status: StatusDuplicate, Message: fmt.Sprintf("%s is already registered", want)}
	case errors.Is(err, ErrPending) && pk == want:
		return KeyStatus{Status: StatusImported, Message: fmt.Sprintf("%s is registered; this region has not installed it yet", want)}
	case err != nil:
		return KeyStatus{Status: StatusError, Message: fmt.Sprintf("keystores[%d]: %v", i, err)}
	case pk != want:
		// The importer broke its contract: the key it registered is not the
		// one whose history was imported. Take it out again.
		h.cfg.Logger.Error("keymanager import: importer registered another key than the keystore's", "pubkey", pk.String(), "expected", want.String())
		if _, derr := h.cfg.Importer.DeleteKey(ctx, pk); derr != nil {
			h.cfg.Logger.Error("keymanager import: could not disable the unexpected key", "pubkey", pk.String(), "err", derr.Error())
		}
		return KeyStatus{Status: StatusError, Message: fmt.Sprintf("keystores[%d]: imported key %s is not the keystore's key %s; it was disabled", i, pk, want)}
	}
	return KeyStatus{Status: StatusImported}
}

// refuse answers a whole request with an error and logs it.
func (h *Handler) refuse(w http.ResponseWriter, op string, id httpauth.Identity, status int, msg string) {
	h.cfg.Logger.Warn("keymanager "+op+" refused", "identity", id.String(), "status", status, "err", msg)
	writeError(w, status, msg)
}
