package keymanager

import (
	"net/http"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
	"github.com/regent-signer/regent/slashing/eth"
)

// ListEntry is one key of a GET response.
type ListEntry struct {
	ValidatingPubkey string `json:"validating_pubkey"`
	DerivationPath   string `json:"derivation_path,omitempty"`
	Readonly         bool   `json:"readonly"`
}

// ListResponse is the body of a GET.
type ListResponse struct {
	Data []ListEntry `json:"data"`
}

// list answers the KeyImporter's keys that the registry holds as enabled
// BLS keys of the configured network, in the importer's order.
func (h *Handler) list(w http.ResponseWriter, _ *http.Request, _ httpauth.Identity) {
	network := leader.RootHex(eth.Root(h.cfg.Network.GenesisValidatorsRoot))
	enabled := map[bls.PublicKey]bool{}
	h.cfg.State.View(func(s *leader.State, _ uint64) {
		for _, k := range s.Keys() {
			if k.Scheme == commandpb.Scheme_SCHEME_BLS12381 && !k.Disabled && k.Network == network {
				enabled[bls.PublicKey(k.Pubkey)] = true
			}
		}
	})
	out := ListResponse{Data: []ListEntry{}}
	for _, k := range h.cfg.Importer.List() {
		if enabled[k.Pubkey] {
			out.Data = append(out.Data, ListEntry{ValidatingPubkey: k.Pubkey.String(), DerivationPath: k.DerivationPath, Readonly: k.Readonly})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
