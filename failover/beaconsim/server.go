package beaconsim

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/regent-signer/regent/slashing/eth"
)

// Wire shapes (ethereum/beacon-APIs). Numbers are decimal strings, roots
// 0x-prefixed lower-case hex.

type errorMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type genesisData struct {
	GenesisTime           string `json:"genesis_time"`
	GenesisValidatorsRoot string `json:"genesis_validators_root"`
	GenesisForkVersion    string `json:"genesis_fork_version"`
}

type checkpointJSON struct {
	Epoch string `json:"epoch"`
	Root  string `json:"root"`
}

type finalityData struct {
	PreviousJustified checkpointJSON `json:"previous_justified"`
	CurrentJustified  checkpointJSON `json:"current_justified"`
	Finalized         checkpointJSON `json:"finalized"`
}

type finalityResponse struct {
	ExecutionOptimistic bool         `json:"execution_optimistic"`
	Finalized           bool         `json:"finalized"`
	Data                finalityData `json:"data"`
}

type headerMessage struct {
	Slot          string `json:"slot"`
	ProposerIndex string `json:"proposer_index"`
	ParentRoot    string `json:"parent_root"`
	StateRoot     string `json:"state_root"`
	BodyRoot      string `json:"body_root"`
}

type signedHeader struct {
	Message   headerMessage `json:"message"`
	Signature string        `json:"signature"`
}

type headerData struct {
	Root      string       `json:"root"`
	Canonical bool         `json:"canonical"`
	Header    signedHeader `json:"header"`
}

type headerResponse struct {
	ExecutionOptimistic bool       `json:"execution_optimistic"`
	Finalized           bool       `json:"finalized"`
	Data                headerData `json:"data"`
}

type syncingData struct {
	HeadSlot     string `json:"head_slot"`
	SyncDistance string `json:"sync_distance"`
	IsSyncing    bool   `json:"is_syncing"`
	IsOptimistic bool   `json:"is_optimistic"`
	ElOffline    bool   `json:"el_offline"`
}

type dataEnvelope[T any] struct {
	Data T `json:"data"`
}

// Knobs is the body of the control API (GET and POST /beaconsim/v1/knobs).
// In a POST, absent members are left unchanged.
type Knobs struct {
	Finalizing *bool   `json:"finalizing,omitempty"`
	LieEpochs  *uint64 `json:"lie_epochs,omitempty"`
	Fork       *uint64 `json:"fork,omitempty"`
	Syncing    *bool   `json:"syncing,omitempty"`
	Available  *bool   `json:"available,omitempty"`
}

const maxKnobsBody = 4096

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }
func dec(v uint64) string   { return strconv.FormatUint(v, 10) }

// State and block ids the spec allows but the simulator does not serve
// answer 404; anything else is not a valid id and answers 400.
var validID = regexp.MustCompile(`^(head|genesis|finalized|justified|[0-9]{1,20}|0x[0-9a-fA-F]{64})$`)

// Handler returns the node's HTTP API:
//
//	GET /eth/v1/beacon/genesis
//	GET /eth/v1/beacon/states/head/finality_checkpoints
//	GET /eth/v1/beacon/headers/{head|finalized|genesis}
//	GET /eth/v1/node/syncing
//	GET /eth/v1/node/health[?syncing_status=NNN]
//
// and, when Config.ControlAPI is set, GET and POST /beaconsim/v1/knobs
// (body: Knobs). Other state or block ids answer 404 ("not served") or 400
// (not a valid id) with the spec's {"code","message"} body; a wrong method
// answers 405. While the node is unavailable every beacon endpoint answers
// 503.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/eth/v1/beacon/genesis", get(n.available(n.serveGenesis)))
	mux.HandleFunc("/eth/v1/beacon/states/{state_id}/finality_checkpoints", get(n.available(n.serveFinality)))
	mux.HandleFunc("/eth/v1/beacon/headers/{block_id}", get(n.available(n.serveHeader)))
	mux.HandleFunc("/eth/v1/node/syncing", get(n.available(n.serveSyncing)))
	mux.HandleFunc("/eth/v1/node/health", get(n.available(n.serveHealth)))
	if n.cfg.ControlAPI {
		mux.HandleFunc("/beaconsim/v1/knobs", func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet, http.MethodHead:
				n.serveKnobsGet(w, r)
			case http.MethodPost:
				n.serveKnobsPost(w, r)
			default:
				w.Header().Set("Allow", "GET, HEAD, POST")
				writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			}
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // the wire types always marshal
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorMessage{Code: status, Message: msg})
}

// get answers 405 to anything but GET and HEAD.
func get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		h(w, r)
	}
}

func (n *Node) available(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		down := n.k.unavailable
		n.mu.Unlock()
		if down {
			writeError(w, http.StatusServiceUnavailable, "beaconsim: unavailable")
			return
		}
		h(w, r)
	}
}

func (n *Node) serveGenesis(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, dataEnvelope[genesisData]{Data: genesisData{
		GenesisTime:           dec(uint64(n.genesis.Unix())),
		GenesisValidatorsRoot: hex0x(n.cfg.GenesisValidatorsRoot[:]),
		GenesisForkVersion:    hex0x(n.cfg.GenesisForkVersion[:]),
	}})
}

func cp(c Checkpoint) checkpointJSON {
	return checkpointJSON{Epoch: dec(c.Epoch), Root: hex0x(c.Root[:])}
}

func (n *Node) serveFinality(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("state_id")
	if id != "head" {
		notServed(w, "state", id)
		return
	}
	v := n.View()
	writeJSON(w, http.StatusOK, finalityResponse{
		Finalized: false,
		Data:      finalityData{PreviousJustified: cp(v.PreviousJustified), CurrentJustified: cp(v.CurrentJustified), Finalized: cp(v.Finalized)},
	})
}

func notServed(w http.ResponseWriter, kind, id string) {
	if validID.MatchString(id) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s not found: beaconsim serves %s head only", kind, kind))
		return
	}
	writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid %s ID: %.80q", kind, id))
}

func (n *Node) serveHeader(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("block_id")
	n.mu.Lock()
	v := n.viewLocked(n.clock.Now())
	var slot uint64
	switch id {
	case "head":
		slot = v.Slot
	case "finalized":
		slot = v.FinalizedBlockSlot
	case "genesis":
		slot = 0
	default:
		n.mu.Unlock()
		if validID.MatchString(id) {
			writeError(w, http.StatusNotFound, "Block not found: beaconsim serves head, finalized and genesis only")
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid block ID: %.80q", id))
		return
	}
	resp := headerResponse{
		Finalized: slot <= v.FinalizedBlockSlot,
		Data: headerData{
			Root:      hex0x(n.headerRoot(v, id, slot)),
			Canonical: true,
			Header: signedHeader{
				Message: headerMessage{
					Slot:          dec(slot),
					ProposerIndex: dec(slot % 1000),
					ParentRoot:    hex0x(n.parentRoot(slot)),
					StateRoot:     hex0x(rootBytes(n.derive("beaconsim/state", slot))),
					BodyRoot:      hex0x(rootBytes(n.derive("beaconsim/body", slot))),
				},
				Signature: hex0x(n.signature(slot)),
			},
		},
	}
	n.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func rootBytes(r eth.Root) []byte { return r[:] }

// headerRoot is the root of the served header. For "finalized" it is the
// view's finalized block root, which a lying node makes consistent with
// its claimed checkpoint.
func (n *Node) headerRoot(v View, id string, slot uint64) []byte {
	if id == "finalized" {
		return rootBytes(v.FinalizedBlockRoot)
	}
	return rootBytes(n.blockRoot(slot))
}

func (n *Node) parentRoot(slot uint64) []byte {
	if slot == 0 {
		return make([]byte, 32)
	}
	return rootBytes(n.blockRoot(slot - 1))
}

func (n *Node) signature(slot uint64) []byte {
	out := make([]byte, 0, 96)
	for i := range uint64(3) {
		r := n.derive("beaconsim/signature", slot*3+i)
		out = append(out, r[:]...)
	}
	return out
}

func (n *Node) serveSyncing(w http.ResponseWriter, _ *http.Request) {
	v := n.View()
	d := syncingData{HeadSlot: dec(v.Slot), SyncDistance: "0"}
	if v.Syncing {
		behind := min(v.Slot, n.cfg.SlotsPerEpoch)
		d = syncingData{HeadSlot: dec(v.Slot - behind), SyncDistance: dec(behind), IsSyncing: true}
	}
	writeJSON(w, http.StatusOK, dataEnvelope[syncingData]{Data: d})
}

func (n *Node) serveHealth(w http.ResponseWriter, r *http.Request) {
	syncing := http.StatusPartialContent
	if s := r.URL.Query().Get("syncing_status"); s != "" {
		code, err := strconv.Atoi(s)
		if err != nil || code < 100 || code > 599 {
			writeError(w, http.StatusBadRequest, "Invalid syncing status code")
			return
		}
		syncing = code
	}
	if n.View().Syncing {
		w.WriteHeader(syncing)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (n *Node) knobs() Knobs {
	v := n.View()
	avail := !v.Unavailable
	return Knobs{Finalizing: &v.Finalizing, LieEpochs: &v.LieEpochs, Fork: &v.Fork, Syncing: &v.Syncing, Available: &avail}
}

func (n *Node) serveKnobsGet(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.knobs())
}

// serveKnobsPost applies a Knobs body. The body is checked whole before
// anything changes: an invalid body changes nothing.
func (n *Node) serveKnobsPost(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxKnobsBody+1))
	if err != nil || len(body) > maxKnobsBody {
		writeError(w, http.StatusBadRequest, "knobs: body unreadable or too large")
		return
	}
	var k Knobs
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&k); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("knobs: %v", err))
		return
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "knobs: data after the JSON object")
		return
	}
	if k.LieEpochs != nil && *k.LieEpochs > MaxLieEpochs {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("knobs: lie_epochs above %d", uint64(MaxLieEpochs)))
		return
	}
	if k.Finalizing != nil {
		n.SetFinalizing(*k.Finalizing)
	}
	if k.LieEpochs != nil {
		_ = n.SetLie(*k.LieEpochs) // checked above
	}
	if k.Fork != nil {
		n.SetFork(*k.Fork)
	}
	if k.Syncing != nil {
		n.SetSyncing(*k.Syncing)
	}
	if k.Available != nil {
		n.SetAvailable(*k.Available)
	}
	writeJSON(w, http.StatusOK, n.knobs())
}

// Serve serves the node's Handler on ln until ctx ends, then shuts the
// server down (waiting up to five seconds for requests in flight) and
// returns nil; or returns the error that stopped serving.
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("beaconsim: serving: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("beaconsim: shutting down: %w", err)
	}
	return nil
}

// Run builds a node from cfg, listens on addr (host:port; port 0 picks a
// free one, which is logged) and serves until ctx ends. It is the entry
// point for a beaconsim command or the demo:
//
//	cfg := beaconsim.DefaultConfig()
//	cfg.GenesisValidatorsRoot = gvr
//	cfg.GenesisTime = start          // the same for every instance
//	cfg.SlotDuration = 100 * time.Millisecond
//	cfg.SlotsPerEpoch = 4
//	err := beaconsim.Run(ctx, "127.0.0.1:5052", cfg)
//
// It returns nil after a clean shutdown, an error wrapping
// ErrInvalidConfig for a bad cfg, or the listen/serve error.
func Run(ctx context.Context, addr string, cfg Config) error {
	n, err := New(cfg)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("beaconsim: listen %s: %w", addr, err)
	}
	n.log.Info("beaconsim listening", "addr", ln.Addr().String(),
		"genesis_validators_root", hex0x(n.cfg.GenesisValidatorsRoot[:]),
		"slot_duration", n.cfg.SlotDuration, "slots_per_epoch", n.cfg.SlotsPerEpoch)
	return n.Serve(ctx, ln)
}
