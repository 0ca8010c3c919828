package keymanager

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/regent-signer/regent/signer/bls"
)

// FuzzRequests feeds arbitrary bodies to POST and DELETE. Properties: no
// panic and never 500; a refused request (not 200) changes neither the
// replicated state nor the importer; an import none of whose keys was
// imported or duplicate changes nothing either.
func FuzzRequests(f *testing.F) {
	p := newDevPKI(f)
	k1, k2 := newTestKey(f, "key one", "pw1"), newTestKey(f, "key two", "pw2")
	fx := newFixture(f, p, nil)
	ic := history(f, fx.gvr, map[bls.PublicKey][3]uint64{k1.pk: {5000, 100, 101}})
	f.Add(false, importBody(f, []testKey{k2}, nil, &ic))
	f.Add(false, importBody(f, []testKey{k1}, []string{"wrong"}, &ic))
	f.Add(false, []byte(`{"keystores":[],"passwords":[],"slashing_protection":""}`))
	f.Add(false, []byte(`{"keystores":["{}"],"passwords":["x"],"slashing_protection":"{}"}`))
	f.Add(true, deleteBody(f, k1.pk.String()))
	f.Add(true, deleteBody(f, "0x00"))
	f.Add(true, []byte(`{"pubkeys":null}`))
	f.Add(false, []byte("\xff{"))
	if data := decodeImport(f, fx.do(http.MethodPost, importBody(f, []testKey{k1}, nil, &ic), fx.operator, nil)); data[0].Status != StatusImported {
		f.Fatalf("setup: %+v", data)
	}

	f.Fuzz(func(t *testing.T, del bool, body []byte) {
		method := http.MethodPost
		if del {
			method = http.MethodDelete
		}
		before := fx.stateOf(t)
		imports, deletes := fx.imp.counts()
		w := fx.do(method, body, fx.operator, nil)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		nowImports, nowDeletes := fx.imp.counts()
		if w.Code != http.StatusOK {
			if !bytes.Equal(before, fx.stateOf(t)) || nowImports != imports || nowDeletes != deletes {
				t.Fatalf("refused %s changed something: %q", method, body)
			}
			return
		}
		if del {
			return
		}
		var resp ImportResponse
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		for _, s := range resp.Data {
			if s.Status != StatusError {
				return
			}
		}
		if !bytes.Equal(before, fx.stateOf(t)) {
			t.Fatalf("an import without any usable keystore changed the state: %q", body)
		}
	})
}
