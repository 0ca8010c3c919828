package keymanager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
	"github.com/regent-signer/regent/slashing/eth"
)

type deleteRequest struct {
	Pubkeys *[]string `json:"pubkeys"`
}

// DeleteResponse is the body of a successful DELETE.
type DeleteResponse struct {
	Data []KeyStatus `json:"data"`
	// SlashingProtection is an EIP-3076 interchange (JSON text) holding the
	// history of every key answered deleted or not_active.
	SlashingProtection string `json:"slashing_protection"`
}

// parsePubkey accepts the spec's form: 0x followed by 96 hex digits.
func parsePubkey(s string) (bls.PublicKey, error) {
	if !strings.HasPrefix(s, "0x") {
		return bls.PublicKey{}, fmt.Errorf("%w: %q lacks the 0x prefix", errBadBody, s)
	}
	pk, err := bls.ParsePublicKey(s)
	if err != nil {
		return bls.PublicKey{}, fmt.Errorf("%w: %v", errBadBody, err)
	}
	return pk, nil
}

// registryState is what the registry says about one key.
type registryState struct {
	known, disabled, bls bool
	network              string
}

func (h *Handler) lookup(pk bls.PublicKey) registryState {
	var st registryState
	h.cfg.State.View(func(s *leader.State, _ uint64) {
		k, ok := s.Key(pk[:])
		if !ok {
			return
		}
		st = registryState{known: true, disabled: k.Disabled, bls: k.Scheme == commandpb.Scheme_SCHEME_BLS12381, network: k.Network}
	})
	return st
}

// deleteKeys disables each key, collects its history and answers the spec's
// per-key statuses with one interchange covering the deleted and inactive
// keys.
func (h *Handler) deleteKeys(w http.ResponseWriter, r *http.Request, id httpauth.Identity) {
	h.extendDeadlines(w)
	var req deleteRequest
	if status, err := h.readJSON(w, r, &req); err != nil {
		h.refuse(w, "delete", id, status, err.Error())
		return
	}
	if req.Pubkeys == nil {
		h.refuse(w, "delete", id, http.StatusBadRequest, "pubkeys is required")
		return
	}
	if len(*req.Pubkeys) > h.cfg.MaxKeys {
		h.refuse(w, "delete", id, http.StatusBadRequest, fmt.Sprintf("%d public keys exceed the limit of %d per request", len(*req.Pubkeys), h.cfg.MaxKeys))
		return
	}
	pks := make([]bls.PublicKey, len(*req.Pubkeys))
	for i, s := range *req.Pubkeys {
		pk, err := parsePubkey(s)
		if err != nil {
			h.refuse(w, "delete", id, http.StatusBadRequest, fmt.Sprintf("pubkeys[%d]: %v", i, err))
			return
		}
		pks[i] = pk
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	gvr := eth.Root(h.cfg.Network.GenesisValidatorsRoot)
	out := &eth.Interchange{GenesisValidatorsRoot: gvr, Data: []eth.InterchangeRecord{}}
	exported := map[eth.Pubkey]bool{}
	data := make([]KeyStatus, len(pks))
	for i, pk := range pks {
		st, recs := h.deleteOne(ctx, pk, gvr)
		data[i] = st
		if (st.Status == StatusDeleted || st.Status == StatusNotActive) && !exported[eth.Pubkey(pk)] {
			exported[eth.Pubkey(pk)] = true
			out.Data = append(out.Data, recs...)
		}
		h.cfg.Logger.Info("keymanager delete", "identity", id.String(), "pubkey", pk.String(), "status", st.Status, "message", st.Message)
	}
	doc, err := eth.EncodeInterchange(out)
	if err != nil {
		// Keys may have been disabled already; their history stays in the
		// replicated state and a repeated DELETE returns it.
		h.cfg.Logger.Error("keymanager delete: cannot encode the interchange", "err", err.Error())
		writeError(w, http.StatusInternalServerError, "cannot encode the slashing protection interchange; repeat the request to obtain it")
		return
	}
	writeJSON(w, http.StatusOK, DeleteResponse{Data: data, SlashingProtection: string(doc)})
}

// deleteOne deletes one key and returns its status and, for deleted and
// not_active, its interchange records.
func (h *Handler) deleteOne(ctx context.Context, pk bls.PublicKey, gvr eth.Root) (KeyStatus, []eth.InterchangeRecord) {
	before := h.lookup(pk)
	if !before.known {
		return KeyStatus{Status: StatusNotFound}, nil
	}
	if !before.bls || before.network != leader.RootHex(gvr) {
		return KeyStatus{Status: StatusError, Message: fmt.Sprintf("%s is not a BLS key of %s", pk, h.cfg.Network.Name)}, nil
	}
	doc, err := h.cfg.Importer.DeleteKey(ctx, pk)
	switch {
	case errors.Is(err, ErrNotFound):
		// The importer never held it (registered by an interchange only).
		// Nothing can sign with it; its history is still returned.
		return KeyStatus{Status: StatusNotActive}, h.exportLocal(pk, gvr)
	case err != nil:
		return KeyStatus{Status: StatusError, Message: err.Error()}, nil
	}
	var recs []eth.InterchangeRecord
	if len(doc) == 0 {
		recs = h.exportLocal(pk, gvr)
	} else {
		recs, err = recordsOf(doc, pk, gvr)
	}
	if err != nil {
		h.cfg.Logger.Error("keymanager delete: key disabled but its history could not be exported", "pubkey", pk.String(), "err", err.Error())
		return KeyStatus{Status: StatusError, Message: fmt.Sprintf("%s is disabled but its slashing protection could not be exported (%v); do not use it elsewhere until a repeated DELETE returns it", pk, err)}, nil
	}
	if before.disabled {
		return KeyStatus{Status: StatusNotActive}, recs
	}
	return KeyStatus{Status: StatusDeleted}, recs
}

// recordsOf decodes an interchange from the importer and keeps pk's
// records; it must be for gvr.
func recordsOf(doc []byte, pk bls.PublicKey, gvr eth.Root) ([]eth.InterchangeRecord, error) {
	ic, err := eth.DecodeInterchange(doc)
	if err != nil {
		return nil, err
	}
	if ic.GenesisValidatorsRoot != gvr {
		return nil, fmt.Errorf("exported history is for genesis validators root %s, not %s", ic.GenesisValidatorsRoot, gvr)
	}
	var out []eth.InterchangeRecord
	for _, rec := range ic.Data {
		if rec.Pubkey == eth.Pubkey(pk) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// exportLocal exports pk's history from this node's applied state. It is
// complete only once pk is disabled there (or never signable), which the
// callers ensure.
func (h *Handler) exportLocal(pk bls.PublicKey, gvr eth.Root) []eth.InterchangeRecord {
	var recs []eth.InterchangeRecord
	var usable bool
	h.cfg.State.View(func(s *leader.State, _ uint64) {
		k, ok := s.Key(pk[:])
		usable = ok && !k.Disabled
		recs = s.Eth().Export(gvr, []eth.Pubkey{eth.Pubkey(pk)}).Data
	})
	if usable {
		h.cfg.Logger.Warn("keymanager delete: exporting the history of a key that is not disabled", "pubkey", pk.String())
	}
	return recs
}
