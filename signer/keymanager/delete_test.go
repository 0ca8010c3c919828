package keymanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/slashing/eth"
)

// imported returns a region holding k with the history {slot, source,
// target}, imported through the API.
func imported(t *testing.T, p devPKI, k testKey, rec [3]uint64) *fixture {
	t.Helper()
	f := newFixture(t, p, nil)
	ic := history(t, f.gvr, map[bls.PublicKey][3]uint64{k.pk: rec})
	data := decodeImport(t, f.do(http.MethodPost, importBody(t, []testKey{k}, nil, &ic), f.operator, nil))
	if data[0].Status != StatusImported {
		t.Fatalf("setup import: %+v", data)
	}
	return f
}

// hasHistory reports whether ic holds pk's block at slot and vote at
// (source, target).
func hasHistory(ic *eth.Interchange, pk bls.PublicKey, rec [3]uint64) bool {
	var block, vote bool
	for _, r := range ic.Data {
		if r.Pubkey != eth.Pubkey(pk) {
			continue
		}
		for _, b := range r.SignedBlocks {
			block = block || b.Slot == rec[0]
		}
		for _, a := range r.SignedAttestations {
			vote = vote || a.SourceEpoch == rec[1] && a.TargetEpoch == rec[2]
		}
	}
	return block && vote
}

func TestDelete(t *testing.T) {
	p := newDevPKI(t)
	k1, k2 := newTestKey(t, "key one", "pw1"), newTestKey(t, "key two", "pw2")
	rec := [3]uint64{5000, 100, 101}
	unknown := newTestKey(t, "never imported", "x").pk
	rows := []struct {
		name    string
		setup   func(f *fixture)
		pubkeys []string
		want    []string
		history []bls.PublicKey // keys whose history the answer must carry
		absent  []bls.PublicKey // keys whose history it must not carry
	}{
		{name: "deleted and not found", pubkeys: []string{k1.pk.String(), unknown.String()},
			want: []string{StatusDeleted, StatusNotFound}, history: []bls.PublicKey{k1.pk}, absent: []bls.PublicKey{unknown}},
		{name: "already deleted is not_active with history", setup: func(f *fixture) {
			decodeDelete(t, f.do(http.MethodDelete, deleteBody(t, k1.pk.String()), f.operator, nil))
		}, pubkeys: []string{k1.pk.String()}, want: []string{StatusNotActive}, history: []bls.PublicKey{k1.pk}},
		{name: "same key twice", pubkeys: []string{k1.pk.String(), k1.pk.String()},
			want: []string{StatusDeleted, StatusNotActive}, history: []bls.PublicKey{k1.pk}},
		{name: "registered by history only", setup: func(f *fixture) {
			ic := history(t, f.gvr, map[bls.PublicKey][3]uint64{k2.pk: rec})
			if _, err := f.prop.Propose(t.Context(), commandpb.CommandType_IMPORT_INTERCHANGE, &commandpb.ImportInterchange{
				GenesisValidatorsRoot: f.gvr[:], InterchangeJson: []byte(ic), RegisterKeys: true}); err != nil {
				t.Fatal(err)
			}
		}, pubkeys: []string{k2.pk.String()}, want: []string{StatusNotActive}, history: []bls.PublicKey{k2.pk}},
		{name: "importer fails", setup: func(f *fixture) { f.imp.deleteErr = errors.New("no quorum") },
			pubkeys: []string{k1.pk.String()}, want: []string{StatusError}, absent: []bls.PublicKey{k1.pk}},
		{name: "importer leaves export to us", setup: func(f *fixture) { f.imp.deleteNil = true },
			pubkeys: []string{k1.pk.String()}, want: []string{StatusDeleted}, history: []bls.PublicKey{k1.pk}},
		{name: "key of another network", setup: func(f *fixture) {
			if _, err := f.env.AddBLSKey(bytes.Repeat([]byte{3}, 32), eth2.Hoodi().GenesisValidatorsRoot); err != nil {
				t.Fatal(err)
			}
		}, pubkeys: []string{hoodiKey(t).String()}, want: []string{StatusError}},
		{name: "empty list", pubkeys: []string{}, want: []string{}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			f := imported(t, p, k1, rec)
			if row.setup != nil {
				row.setup(f)
			}
			data, ic := decodeDelete(t, f.do(http.MethodDelete, deleteBody(t, row.pubkeys...), f.operator, nil))
			if len(data) != len(row.want) {
				t.Fatalf("statuses %+v", data)
			}
			for i := range data {
				if data[i].Status != row.want[i] {
					t.Fatalf("data[%d] = %+v, want %s", i, data[i], row.want[i])
				}
			}
			if ic.GenesisValidatorsRoot != f.gvr {
				t.Fatalf("interchange for %s", ic.GenesisValidatorsRoot)
			}
			seen := map[eth.Pubkey]int{}
			for _, r := range ic.Data {
				seen[r.Pubkey]++
			}
			for _, pk := range row.history {
				if !hasHistory(ic, pk, rec) || seen[eth.Pubkey(pk)] != 1 {
					t.Fatalf("history of %s missing or repeated: %+v", pk, ic.Data)
				}
			}
			for _, pk := range row.absent {
				if seen[eth.Pubkey(pk)] != 0 {
					t.Fatalf("history of %s returned", pk)
				}
			}
		})
	}
}

func hoodiKey(t *testing.T) bls.PublicKey {
	t.Helper()
	_, pk := keyPair(bytes.Repeat([]byte{3}, 32))
	return pk
}

// TestDeletedKeyCannotSign: after deletion the replicated rules refuse
// every record for the key, the key no longer lists, and a re-import is a
// duplicate.
func TestDeletedKeyCannotSign(t *testing.T) {
	k1 := newTestKey(t, "key one", "pw1")
	f := imported(t, newDevPKI(t), k1, [3]uint64{5000, 100, 101})
	decodeDelete(t, f.do(http.MethodDelete, deleteBody(t, k1.pk.String()), f.operator, nil))
	if k, ok := f.registered(k1.pk); !ok || !k.Disabled {
		t.Fatal("key not disabled")
	}
	if !f.denies(k1.pk, 200, 201) {
		t.Fatal("a deleted key's record would be accepted")
	}
	var list ListResponse
	if err := json.Unmarshal(f.do(http.MethodGet, nil, f.operator, nil).Body.Bytes(), &list); err != nil || len(list.Data) != 0 {
		t.Fatalf("list after delete: %+v %v", list, err)
	}
	data := decodeImport(t, f.do(http.MethodPost, importBody(t, []testKey{k1}, nil, nil), f.operator, nil))
	if data[0].Status != StatusDuplicate {
		t.Fatalf("re-import: %+v", data)
	}
}

func TestDeleteRefusals(t *testing.T) {
	p := newDevPKI(t)
	k1 := newTestKey(t, "key one", "pw1")
	hexKey := strings.TrimPrefix(k1.pk.String(), "0x")
	rows := []struct {
		name string
		body string
		edit func(c *Config)
		want int
	}{
		{name: "bad JSON", body: `{"pubkeys":[`, want: 400},
		{name: "missing pubkeys", body: `{}`, want: 400},
		{name: "unknown field", body: `{"pubkeys":[],"force":true}`, want: 400},
		{name: "no 0x", body: `{"pubkeys":["` + hexKey + `"]}`, want: 400},
		{name: "short key", body: `{"pubkeys":["0xabcd"]}`, want: 400},
		{name: "bad hex", body: `{"pubkeys":["0x` + strings.Repeat("zz", 48) + `"]}`, want: 400},
		{name: "one bad among good", body: `{"pubkeys":["` + k1.pk.String() + `","0x12"]}`, want: 400},
		{name: "number", body: `{"pubkeys":[1]}`, want: 400},
		{name: "too many", body: `{"pubkeys":["` + k1.pk.String() + `","` + k1.pk.String() + `"]}`, edit: func(c *Config) { c.MaxKeys = 1 }, want: 400},
		{name: "too large", body: `{"pubkeys":["` + k1.pk.String() + `"]}` + strings.Repeat(" ", 5000), edit: func(c *Config) { c.MaxBodyBytes = 4096 }, want: 413},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			f := newFixture(t, p, row.edit)
			decodeImport(t, f.do(http.MethodPost, importBody(t, []testKey{k1}, nil, nil), f.operator, nil))
			before := f.state()
			w := f.do(http.MethodDelete, []byte(row.body), f.operator, nil)
			if w.Code != row.want {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if _, deletes := f.imp.counts(); deletes != 0 || !bytes.Equal(before, f.state()) {
				t.Fatal("a refused delete changed something")
			}
		})
	}
	f := newFixture(t, p, nil)
	if w := f.do(http.MethodDelete, deleteBody(t, k1.pk.String()), f.client, nil); w.Code != 403 {
		t.Fatalf("client delete: %d", w.Code)
	}
}
