package keymanager

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
	"github.com/regent-signer/regent/slashing/eth"
)

// TestImportCommitsHistoryFirst: the interchange is committed, for this
// request's keys only, before the importer sees any key; the keys then
// list, and their history is in force.
func TestImportCommitsHistoryFirst(t *testing.T) {
	f := newFixture(t, newDevPKI(t), nil)
	k1, k2 := newTestKey(t, "key one", "pw1"), newTestKey(t, "key two", "pw2")
	foreign := newTestKey(t, "foreign key", "x")
	ic := history(t, f.gvr, map[bls.PublicKey][3]uint64{k1.pk: {5000, 100, 101}, foreign.pk: {7, 1, 2}})

	data := decodeImport(t, f.do(http.MethodPost, importBody(t, []testKey{k1, k2}, nil, &ic), f.operator, nil))
	if len(data) != 2 || data[0].Status != StatusImported || data[1].Status != StatusImported {
		t.Fatalf("statuses %+v", data)
	}
	if len(f.prop.calls) != 1 || !f.prop.calls[0].RegisterKeys {
		t.Fatalf("proposals %+v", f.prop.calls)
	}
	sent, err := eth.DecodeInterchange(f.prop.calls[0].InterchangeJson)
	if err != nil || len(sent.Data) != 1 || sent.Data[0].Pubkey != eth.Pubkey(k1.pk) {
		t.Fatalf("proposed interchange %+v, %v", sent, err)
	}
	if !f.imp.historyAtImport[k1.pk] {
		t.Fatal("key 1 reached the importer before its history was committed")
	}
	if !f.denies(k1.pk, 100, 101) || !f.denies(k1.pk, 99, 100) {
		t.Fatal("imported history is not in force")
	}
	if f.denies(k2.pk, 100, 101) {
		t.Fatal("key 2 got history it was not sent")
	}
	if _, ok := f.registered(foreign.pk); ok {
		t.Fatal("a key outside the request was registered")
	}

	w := f.do(http.MethodGet, nil, f.operator, nil)
	var list ListResponse
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != 200 {
		t.Fatalf("list %d %s", w.Code, w.Body)
	}
	got := []string{}
	for _, e := range list.Data {
		got = append(got, e.ValidatingPubkey)
		if e.Readonly || e.DerivationPath == "" {
			t.Fatalf("entry %+v", e)
		}
	}
	want := []string{k1.pk.String(), k2.pk.String()}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("listed %v, want %v", got, want)
	}
}

// TestImportPerKeyStatuses: each row is a request on its own region.
func TestImportPerKeyStatuses(t *testing.T) {
	p := newDevPKI(t)
	k1, k2 := newTestKey(t, "key one", "pw1"), newTestKey(t, "key two", "pw2")
	rows := []struct {
		name      string
		setup     func(f *fixture)
		keys      []testKey
		passwords []string
		history   map[bls.PublicKey][3]uint64
		want      []string
		message   []string // substrings of each message
		// untouched: the replicated state must not change at all.
		untouched bool
	}{
		{name: "duplicate", setup: func(f *fixture) {
			decodeImport(t, f.do(http.MethodPost, importBody(t, []testKey{k1}, nil, nil), f.operator, nil))
		}, keys: []testKey{k1}, want: []string{StatusDuplicate}, message: []string{"already registered"}, untouched: true},
		{name: "wrong password", keys: []testKey{k1}, passwords: []string{"nope"}, history: map[bls.PublicKey][3]uint64{k1.pk: {1, 2, 3}},
			want: []string{StatusError}, message: []string{"wrong password"}, untouched: true},
		{name: "one good one bad", keys: []testKey{k1, k2}, passwords: []string{"pw1", "bad"},
			history: map[bls.PublicKey][3]uint64{k1.pk: {1, 2, 3}, k2.pk: {1, 2, 3}},
			want:    []string{StatusImported, StatusError}, message: []string{"", "keystores[1]"}},
		{name: "not a keystore", keys: []testKey{{keystore: `{"crypto":{}}`, password: "x"}}, want: []string{StatusError}, message: []string{"keystore"}, untouched: true},
		{name: "importer failure", setup: func(f *fixture) { f.imp.importErr = errors.New("disk full") },
			keys: []testKey{k1}, want: []string{StatusError}, message: []string{"disk full"}, untouched: true},
		{name: "pending", setup: func(f *fixture) { f.imp.importErr = nil; f.h.cfg.Importer = pendingImporter{f.imp} },
			keys: []testKey{k1}, want: []string{StatusImported}, message: []string{"not installed"}},
		{name: "empty request", keys: []testKey{}, want: []string{}, untouched: true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			f := newFixture(t, p, nil)
			if row.setup != nil {
				row.setup(f)
			}
			var ic *string
			if row.history != nil {
				ic = ptr(history(t, f.gvr, row.history))
			}
			before := f.state()
			data := decodeImport(t, f.do(http.MethodPost, importBody(t, row.keys, row.passwords, ic), f.operator, nil))
			if len(data) != len(row.want) {
				t.Fatalf("statuses %+v", data)
			}
			for i := range data {
				if data[i].Status != row.want[i] || !strings.Contains(data[i].Message, row.message[i]) {
					t.Fatalf("data[%d] = %+v, want %s containing %q", i, data[i], row.want[i], row.message[i])
				}
			}
			if row.untouched && !bytes.Equal(before, f.state()) {
				t.Fatal("the replicated state changed")
			}
		})
	}
}

// pendingImporter answers ErrPending after a successful import.
type pendingImporter struct{ *fakeImporter }

func (p pendingImporter) ImportKeystore(ctx context.Context, ks []byte, pw string) (bls.PublicKey, error) {
	pk, err := p.fakeImporter.ImportKeystore(ctx, ks, pw)
	if err != nil {
		return pk, err
	}
	return pk, errors.Join(ErrPending, errors.New("sync pending"))
}

// TestOneBadKeyDropsOnlyItsHistory: the history of a keystore that fails
// to open is not imported, the other key's is.
func TestOneBadKeyDropsOnlyItsHistory(t *testing.T) {
	f := newFixture(t, newDevPKI(t), nil)
	k1, k2 := newTestKey(t, "key one", "pw1"), newTestKey(t, "key two", "pw2")
	ic := history(t, f.gvr, map[bls.PublicKey][3]uint64{k1.pk: {1, 20, 21}, k2.pk: {1, 20, 21}})
	decodeImport(t, f.do(http.MethodPost, importBody(t, []testKey{k1, k2}, []string{"pw1", "bad"}, &ic), f.operator, nil))
	if !f.denies(k1.pk, 20, 21) {
		t.Fatal("key 1's history missing")
	}
	if _, ok := f.registered(k2.pk); ok {
		t.Fatal("the key with the wrong password was registered")
	}
}

// TestImportRefusals: requests refused as a whole change nothing: the
// replicated state, the importer and (except where the proposal itself
// fails) the proposer are untouched.
func TestImportRefusals(t *testing.T) {
	p := newDevPKI(t)
	k1 := newTestKey(t, "key one", "pw1")
	gvr := eth.Root(eth2.Mainnet().GenesisValidatorsRoot)
	good := history(t, gvr, map[bls.PublicKey][3]uint64{k1.pk: {5000, 100, 101}})
	hoodi := history(t, eth.Root(eth2.Hoodi().GenesisValidatorsRoot), map[bls.PublicKey][3]uint64{k1.pk: {5000, 100, 101}})
	valid := string(importBody(t, []testKey{k1}, nil, &good))
	rows := []struct {
		name     string
		edit     func(c *Config)
		setup    func(f *fixture)
		body     string
		conn     string // "operator", "client" or ""
		hdr      map[string]string
		want     int
		message  string
		proposed bool // a proposal was attempted (and failed)
	}{
		{name: "bad JSON", body: `{"keystores":`, conn: "operator", want: 400},
		{name: "not an object", body: `[]`, conn: "operator", want: 400},
		{name: "null", body: `null`, conn: "operator", want: 400, message: "required"},
		{name: "unknown field", body: `{"keystores":[],"passwords":[],"extra":1}`, conn: "operator", want: 400, message: "extra"},
		{name: "trailing data", body: valid + `{}`, conn: "operator", want: 400},
		{name: "keystores missing", body: `{"passwords":["a"]}`, conn: "operator", want: 400, message: "required"},
		{name: "passwords missing", body: `{"keystores":["{}"]}`, conn: "operator", want: 400, message: "required"},
		{name: "length mismatch", body: string(importBody(t, []testKey{k1}, []string{"pw1", "pw2"}, nil)), conn: "operator", want: 400, message: "1 keystores but 2 passwords"},
		{name: "keystore as object", body: `{"keystores":[{}],"passwords":["a"]}`, conn: "operator", want: 400},
		{name: "interchange malformed", body: string(importBody(t, []testKey{k1}, nil, ptr(`{"metadata":{}}`))), conn: "operator", want: 400, message: "slashing_protection"},
		{name: "interchange not a string", body: `{"keystores":[],"passwords":[],"slashing_protection":{}}`, conn: "operator", want: 400},
		{name: "interchange for another network", body: string(importBody(t, []testKey{k1}, nil, &hoodi)), conn: "operator", want: 400, message: "genesis validators root"},
		{name: "too many keystores", edit: func(c *Config) { c.MaxKeys = 1 }, body: string(importBody(t, []testKey{k1, k1}, nil, nil)), conn: "operator", want: 400, message: "limit"},
		{name: "body too large", edit: func(c *Config) { c.MaxBodyBytes = 100 }, body: valid, conn: "operator", want: 413},
		{name: "history conflicts with the replicated one", setup: func(f *fixture) {
			conflicting := strings.Replace(history(t, f.gvr, map[bls.PublicKey][3]uint64{k1.pk: {5000, 100, 101}}), eth.Root{1}.String(), eth.Root{7}.String(), 1)
			if _, err := f.prop.Propose(t.Context(), commandpb.CommandType_IMPORT_INTERCHANGE, &commandpb.ImportInterchange{
				GenesisValidatorsRoot: f.gvr[:], InterchangeJson: []byte(conflicting), RegisterKeys: true}); err != nil {
				t.Fatal(err)
			}
		}, body: valid, conn: "operator", want: 400, message: "no key was imported", proposed: true},
		{name: "log unavailable", setup: func(f *fixture) { f.prop.err = leader.ErrUnavailable }, body: valid, conn: "operator", want: 503, message: "no key was imported", proposed: true},
		{name: "commit uncertain", setup: func(f *fixture) { f.prop.err = leader.ErrMaybeCommitted }, body: valid, conn: "operator", want: 503, message: "retry", proposed: true},
		{name: "no credential", body: valid, want: 401},
		{name: "client certificate", body: valid, conn: "client", want: 403},
		{name: "bad token", edit: func(c *Config) { c.Tokens = fakeTokens{} }, body: valid, hdr: map[string]string{"Authorization": "Bearer x"}, want: 403},
		{name: "client token", edit: func(c *Config) { c.Tokens = fakeTokens{"c": {Role: pki.RoleClient, Name: "vc-1"}} }, body: valid, hdr: map[string]string{"Authorization": "Bearer c"}, want: 403},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			f := newFixture(t, p, row.edit)
			if row.setup != nil {
				row.setup(f)
			}
			conn := map[string]*tls.ConnectionState{"operator": f.operator, "client": f.client}[row.conn]
			before, calls := f.state(), len(f.prop.calls)
			w := f.do(http.MethodPost, []byte(row.body), conn, row.hdr)
			if w.Code != row.want {
				t.Fatalf("status %d, want %d: %s", w.Code, row.want, w.Body)
			}
			var body errBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Code != row.want || !strings.Contains(body.Message, row.message) {
				t.Fatalf("error body %s (want message containing %q)", w.Body, row.message)
			}
			if !bytes.Equal(before, f.state()) {
				t.Fatal("the replicated state changed")
			}
			if imports, _ := f.imp.counts(); imports != 0 {
				t.Fatal("the importer was called")
			}
			if got := len(f.prop.calls) - calls; got != map[bool]int{true: 1, false: 0}[row.proposed] {
				t.Fatalf("%d proposals", got)
			}
		})
	}
}

// TestGetAuth: listing needs an operator.
func TestGetAuth(t *testing.T) {
	f := newFixture(t, newDevPKI(t), func(c *Config) {
		c.Tokens = fakeTokens{"op": {Role: pki.RoleOperator, Name: "bob"}}
	})
	for _, row := range []struct {
		conn *tls.ConnectionState
		hdr  map[string]string
		want int
	}{
		{conn: f.operator, want: 200},
		{hdr: map[string]string{"Authorization": "Bearer op"}, want: 200},
		{conn: f.client, want: 403},
		{hdr: map[string]string{"Authorization": "Bearer nope"}, want: 403},
		{conn: f.operator, hdr: map[string]string{"Authorization": "Bearer nope"}, want: 403},
		{want: 401},
	} {
		if w := f.do(http.MethodGet, nil, row.conn, row.hdr); w.Code != row.want {
			t.Errorf("%+v: %d", row.hdr, w.Code)
		}
	}
	if w := f.do(http.MethodPut, nil, f.operator, nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", w.Code)
	}
}

func TestListShowsOnlyEnabledKeysOfTheNetwork(t *testing.T) {
	f := newFixture(t, newDevPKI(t), nil)
	k1, k2 := newTestKey(t, "key one", "pw1"), newTestKey(t, "key two", "pw2")
	decodeImport(t, f.do(http.MethodPost, importBody(t, []testKey{k1, k2}, nil, nil), f.operator, nil))
	// Disable k2 behind the importer's back: the registry decides.
	if _, err := f.env.M.Apply(commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: k2.pk[:], Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	var list ListResponse
	w := f.do(http.MethodGet, nil, f.operator, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Data) != 1 || list.Data[0].ValidatingPubkey != k1.pk.String() {
		t.Fatalf("list %+v", list.Data)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	f := newFixture(t, newDevPKI(t), nil)
	good := Config{Importer: f.imp, Proposer: f.prop, State: f.env, Network: eth2.Mainnet()}
	for name, edit := range map[string]func(c *Config){
		"no importer":     func(c *Config) { c.Importer = nil },
		"no proposer":     func(c *Config) { c.Proposer = nil },
		"no state":        func(c *Config) { c.State = nil },
		"no network root": func(c *Config) { c.Network = eth2.Network{Name: "x"} },
		"negative keys":   func(c *Config) { c.MaxKeys = -1 },
		"negative body":   func(c *Config) { c.MaxBodyBytes = -1 },
		"negative time":   func(c *Config) { c.Timeout = -1 },
	} {
		c := good
		edit(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

var _ httpauth.TokenVerifier = fakeTokens{}
