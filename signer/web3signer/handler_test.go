package web3signer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
)

// fakeSigner answers every request with err, or panics.
type fakeSigner struct {
	err   error
	panic bool
}

func (s fakeSigner) SignEth(context.Context, pipeline.Caller, [48]byte, *eth2.Request) ([96]byte, error) {
	if s.panic {
		panic("fake signer panics")
	}
	return [96]byte{}, s.err
}

func (s fakeSigner) CheckEth(pipeline.Caller, [48]byte, *eth2.Request) error { return s.err }

// signFirst signs body through the pipeline as vc-1, as an earlier duty.
func signFirst(f *fixture, body []byte) {
	f.t.Helper()
	req, err := eth2.DecodeForNetwork(body, eth2.Mainnet())
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.pipe.SignEth(context.Background(), pipeline.Caller{Name: "vc-1"}, f.pk, req); err != nil {
		f.t.Fatal(err)
	}
}

// TestSignStatuses drives every status code of the sign endpoint. Each row
// builds its own region; rows that are refused before the pipeline must
// leave the state machine's snapshot byte-for-byte unchanged, and only rows
// that answer 200 may sign.
func TestSignStatuses(t *testing.T) {
	p := newDevPKI(t)
	att := attestation(10, 11, 1)
	hoodiAtt := bytes.Replace(att, []byte(mainnetGVR), []byte("0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f"), 1)
	other := func() string { _, pk := keyFromSeed("not registered"); return pk.String() }()
	tokens := fakeTokens{"good": {Role: pki.RoleClient, Name: "vc-1"}}
	mismatch := readTestdata(t, "attestation.json")
	mismatch = bytes.Replace(mismatch, []byte(`"signingRoot": "0x09`), []byte(`"signingRoot": "0x19`), 1)

	rows := []struct {
		name     string
		setup    func(f *fixture) http.Handler // nil: the fixture's handler
		path     string                        // "" sign path of the fixture key; else path + key appended when it ends in "/"
		body     []byte
		identity string
		hdr      map[string]string
		want     int
		outcome  string
		rule     string
		json     bool // answer is JSON (200 only)
		signed   bool
		// unchanged: the snapshot must not change (refused before commit).
		unchanged bool
	}{
		{name: "json", body: att, identity: "vc-1", hdr: map[string]string{"Accept": "application/json"}, want: 200, outcome: "signed", json: true, signed: true},
		{name: "text/plain", body: att, identity: "vc-1", hdr: map[string]string{"Accept": "text/plain"}, want: 200, outcome: "signed", signed: true},
		{name: "*/*", body: att, identity: "vc-1", hdr: map[string]string{"Accept": "*/*"}, want: 200, outcome: "signed", signed: true},
		{name: "no Accept", body: att, identity: "vc-1", want: 200, outcome: "signed", signed: true},
		{name: "json preferred by q", body: att, identity: "vc-1", hdr: map[string]string{"Accept": "text/plain;q=0.4, application/json"}, want: 200, outcome: "signed", json: true, signed: true},
		{name: "block", body: block(12_000_000, 5), identity: "vc-1", want: 200, outcome: "signed", signed: true},
		{name: "randao testdata", body: readTestdata(t, "randao_reveal.json"), identity: "vc-1", want: 200, outcome: "signed", signed: true},
		{name: "operator identity with policy", setup: func(f *fixture) http.Handler {
			if err := f.env.Allow("regentctl", []string{"*"}, []string{"*"}); err != nil {
				t.Fatal(err)
			}
			return nil
		}, body: att, identity: "regentctl", want: 200, outcome: "signed", signed: true},
		{name: "bearer token", setup: func(f *fixture) http.Handler { return f.handler(Config{Tokens: tokens}) },
			body: att, hdr: map[string]string{"Authorization": "Bearer good"}, want: 200, outcome: "signed", signed: true},

		{name: "identifier not hex", path: "/api/v1/eth2/sign/0x" + strings.Repeat("zz", 48), body: att, identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "identifier too short", path: "/api/v1/eth2/sign/0xabcd", body: att, identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "body bad hex", body: bytes.Replace(att, []byte(hex32(1)), []byte("0xzz"+strings.Repeat("11", 31)), 1), identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "unknown type", body: bytes.Replace(att, []byte(`"ATTESTATION"`), []byte(`"ATTESTATION_V9"`), 1), identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "missing fork_info", body: bytes.Replace(att, []byte(forkElectra+","), nil, 1), identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "number instead of string", body: bytes.Replace(att, []byte(`"index":"0"`), []byte(`"index":0`), 1), identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "unknown fork name", body: bytes.Replace(block(12_000_000, 5), []byte(`"ELECTRA"`), []byte(`"GLOAS"`), 1), identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "signing root mismatch", body: mismatch, identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "other network", body: hoodiAtt, identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "empty body", body: nil, identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "trailing data", body: append(bytes.Clone(att), []byte(`{}`)...), identity: "vc-1", want: 400, outcome: "bad_request", unchanged: true},
		{name: "too large", body: bytes.Repeat([]byte(" "), eth2.MaxBodyBytes+1), identity: "vc-1", want: 413, outcome: "too_large", unchanged: true},
		{name: "unknown key", path: "/api/v1/eth2/sign/" + other, body: att, identity: "vc-1", want: 404, outcome: "unknown_key", unchanged: true},
		{name: "no identity", body: att, want: 401, outcome: "unauthenticated", unchanged: true},
		{name: "bad token", setup: func(f *fixture) http.Handler { return f.handler(Config{Tokens: tokens}) },
			body: att, hdr: map[string]string{"Authorization": "Bearer forged"}, want: 401, outcome: "unauthenticated", unchanged: true},
		{name: "bad token beside a valid certificate", setup: func(f *fixture) http.Handler { return f.handler(Config{Tokens: tokens}) },
			body: att, identity: "vc-1", hdr: map[string]string{"Authorization": "Bearer forged"}, want: 401, outcome: "unauthenticated", unchanged: true},
		{name: "node role", body: att, identity: "dc2", want: 403, outcome: "forbidden", unchanged: true},
		{name: "identity without policy", body: att, identity: "regentctl", want: 403, outcome: "forbidden", unchanged: true},
		{name: "type outside policy", body: block(12_000_000, 5), identity: "vc-2", want: 403, outcome: "forbidden", unchanged: true},
		{name: "disabled key", setup: func(f *fixture) http.Handler {
			f.apply(commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: f.pk[:], Reason: "moved"})
			return nil
		}, body: att, identity: "vc-1", want: 403, outcome: "forbidden", unchanged: true},
		{name: "exit without approval", body: readTestdata(t, "voluntary_exit.json"), identity: "vc-1", want: 403, outcome: "not_approved"},
		{name: "exit with approval", setup: func(f *fixture) http.Handler {
			if err := f.env.ApproveExit(f.pk[:], "alice"); err != nil {
				t.Fatal(err)
			}
			return nil
		}, body: readTestdata(t, "voluntary_exit.json"), identity: "vc-1", want: 200, outcome: "signed", signed: true},
		{name: "double vote", setup: func(f *fixture) http.Handler { signFirst(f, attestation(10, 11, 9)); return nil },
			body: att, identity: "vc-1", want: 412, outcome: "slashable", rule: "attestation_double_vote"},
		{name: "double proposal", setup: func(f *fixture) http.Handler { signFirst(f, block(12_000_000, 6)); return nil },
			body: block(12_000_000, 5), identity: "vc-1", want: 412, outcome: "slashable", rule: "block_double_proposal"},
		{name: "target below watermark", setup: func(f *fixture) http.Handler { signFirst(f, attestation(20, 21, 1)); return nil },
			body: att, identity: "vc-1", want: 412, outcome: "slashable", rule: "attestation_target_below_watermark"},
		{name: "not lease holder", setup: func(f *fixture) http.Handler { f.env.Holding = false; return nil },
			body: att, identity: "vc-1", want: 503, outcome: "not_lease_holder", unchanged: true},
		{name: "key not loaded", setup: func(f *fixture) http.Handler { f.keys.fail = bls.ErrKeyNotLoaded; return nil },
			body: att, identity: "vc-1", want: 503, outcome: "unavailable"},
		{name: "unclassified error is a bug", setup: func(f *fixture) http.Handler {
			return f.handler(Config{Signer: fakeSigner{err: errors.New("boom: secret internals")}})
		}, body: att, identity: "vc-1", want: 500, outcome: "internal", unchanged: true},
		{name: "panic is recovered", setup: func(f *fixture) http.Handler { return f.handler(Config{Signer: fakeSigner{panic: true}}) },
			body: att, identity: "vc-1", want: 500, outcome: "internal", unchanged: true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			f := newFixture(t, p)
			var h http.Handler = f.h
			if row.setup != nil {
				if custom := row.setup(f); custom != nil {
					h = custom
				}
			}
			path := row.path
			if path == "" {
				path = f.signPath()
			}
			before, signedBefore, acceptedBefore := f.snapshot(), f.keys.count(), f.accepted()
			w := f.do(h, http.MethodPost, path, row.body, row.identity, row.hdr)
			if w.Code != row.want {
				t.Fatalf("status %d, want %d; body %q", w.Code, row.want, w.Body.String())
			}
			signed := f.keys.count() - signedBefore
			if row.signed != (signed == 1) || signed > 1 {
				t.Fatalf("%d signatures made, want signed=%v", signed, row.signed)
			}
			if row.unchanged && !bytes.Equal(before, f.snapshot()) {
				t.Fatal("the state machine changed for a request refused before commit")
			}
			// Only a signed request, or one whose signing failed after its
			// record committed, leaves an accepted record.
			if accepts := row.signed || row.outcome == "unavailable"; accepts != (f.accepted() > acceptedBefore) {
				t.Fatalf("accepted records %d -> %d (signed=%v)", acceptedBefore, f.accepted(), row.signed)
			}
			if !strings.Contains(f.logs.String(), `"outcome":"`+row.outcome+`"`) {
				t.Fatalf("log lacks outcome %q: %s", row.outcome, f.logs.String())
			}
			if row.want == 200 {
				sig := w.Body.String()
				if row.json {
					if ct := w.Header().Get("Content-Type"); ct != "application/json" {
						t.Fatalf("Content-Type %q", ct)
					}
					var out struct{ Signature string }
					if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
						t.Fatal(err)
					}
					sig = out.Signature
				} else if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Fatalf("Content-Type %q", ct)
				}
				verify(t, f.pk, row.body, sig)
				return
			}
			if strings.Contains(w.Body.String(), "secret internals") || strings.Contains(w.Body.String(), "fake signer") {
				t.Fatalf("internal error leaked: %q", w.Body.String())
			}
			if row.rule != "" && !strings.Contains(w.Body.String(), row.rule) {
				t.Fatalf("body %q does not name rule %s", w.Body.String(), row.rule)
			}
		})
	}
}

// TestErrorBodies checks the content of refusals in both encodings: 412
// names the rule and the values compared, 503 says why without internals.
func TestErrorBodies(t *testing.T) {
	p := newDevPKI(t)
	t.Run("412 json", func(t *testing.T) {
		f := newFixture(t, p)
		signFirst(f, attestation(10, 11, 9))
		w := f.do(f.h, http.MethodPost, f.signPath(), attestation(10, 11, 1), "vc-1", map[string]string{"Accept": "application/json"})
		var body errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: %q", err, w.Body.String())
		}
		if w.Code != 412 || body.Rule != "attestation_double_vote" || body.Outcome != "slashable" ||
			!strings.Contains(body.Error, "target epoch 11 already signed") {
			t.Fatalf("status %d body %+v", w.Code, body)
		}
	})
	t.Run("412 text", func(t *testing.T) {
		f := newFixture(t, p)
		signFirst(f, block(12_000_000, 6))
		w := f.do(f.h, http.MethodPost, f.signPath(), block(12_000_000, 5), "vc-1", nil)
		if w.Code != 412 || !strings.Contains(w.Body.String(), "block_double_proposal") || !strings.Contains(w.Body.String(), "slot 12000000") {
			t.Fatalf("status %d body %q", w.Code, w.Body.String())
		}
	})
	t.Run("503 not holder", func(t *testing.T) {
		f := newFixture(t, p)
		f.env.Holding = false
		w := f.do(f.h, http.MethodPost, f.signPath(), attestation(10, 11, 1), "vc-1", nil)
		if w.Code != 503 || strings.TrimSpace(w.Body.String()) != msgNotHolder {
			t.Fatalf("status %d body %q", w.Code, w.Body.String())
		}
	})
	t.Run("503 key not loaded", func(t *testing.T) {
		f := newFixture(t, p)
		f.keys.fail = errors.Join(bls.ErrKeyNotLoaded, errors.New("pkcs11: CKR_DEVICE_ERROR slot 3"))
		w := f.do(f.h, http.MethodPost, f.signPath(), attestation(10, 11, 1), "vc-1", nil)
		if w.Code != 503 || strings.TrimSpace(w.Body.String()) != msgKeyNotLoaded {
			t.Fatalf("status %d body %q", w.Code, w.Body.String())
		}
	})
}

// TestRetryReturnsSameSignature: an identical retry is accepted and BLS is
// deterministic, so the client gets the same signature (DESIGN.md §2).
func TestRetryReturnsSameSignature(t *testing.T) {
	f := newFixture(t, newDevPKI(t))
	for _, body := range [][]byte{attestation(30, 31, 4), block(13_000_000, 8)} {
		a := f.do(f.h, http.MethodPost, f.signPath(), body, "vc-1", nil)
		b := f.do(f.h, http.MethodPost, f.signPath(), body, "vc-1", nil)
		if a.Code != 200 || b.Code != 200 || a.Body.String() != b.Body.String() {
			t.Fatalf("retry: %d %q / %d %q", a.Code, a.Body, b.Code, b.Body)
		}
		verify(t, f.pk, body, a.Body.String())
	}
}

// TestConflictSignsNothing: after a conflicting request is refused with
// 412, no signature was produced for it and the accepted history still
// holds only the first vote.
func TestConflictSignsNothing(t *testing.T) {
	f := newFixture(t, newDevPKI(t))
	first := f.do(f.h, http.MethodPost, f.signPath(), attestation(40, 41, 1), "vc-1", nil)
	if first.Code != 200 {
		t.Fatalf("first vote: %d %q", first.Code, first.Body)
	}
	n, acc := f.keys.count(), f.accepted()
	second := f.do(f.h, http.MethodPost, f.signPath(), attestation(40, 41, 2), "vc-1", map[string]string{"Accept": "application/json"})
	if second.Code != 412 || !strings.Contains(second.Body.String(), `"rule":"attestation_double_vote"`) {
		t.Fatalf("conflict: %d %q", second.Code, second.Body)
	}
	if strings.Contains(second.Body.String(), "signature") {
		t.Fatalf("a refusal carries a signature field: %q", second.Body)
	}
	if f.keys.count() != n || f.accepted() != acc {
		t.Fatal("a refused conflict signed or was accepted")
	}
}

// TestCheckEndpoint: the dry run answers like sign would but records and
// signs nothing: the snapshot is unchanged, even for allowed requests.
func TestCheckEndpoint(t *testing.T) {
	p := newDevPKI(t)
	rows := []struct {
		name     string
		setup    func(f *fixture)
		body     []byte
		identity string
		want     int
	}{
		{name: "allowed", body: attestation(50, 51, 1), identity: "vc-1", want: 200},
		{name: "slashable", setup: func(f *fixture) { signFirst(f, attestation(50, 51, 2)) }, body: attestation(50, 51, 1), identity: "vc-1", want: 412},
		{name: "identical to signed is allowed", setup: func(f *fixture) { signFirst(f, attestation(50, 51, 1)) }, body: attestation(50, 51, 1), identity: "vc-1", want: 200},
		{name: "bad body", body: []byte(`{"type":"ATTESTATION"}`), identity: "vc-1", want: 400},
		{name: "forbidden", body: block(12_000_000, 1), identity: "vc-2", want: 403},
		{name: "exit not approved", body: readTestdata(t, "voluntary_exit.json"), identity: "vc-1", want: 403},
		{name: "no identity", body: attestation(50, 51, 1), want: 401},
		{name: "not holder still answers rules", setup: func(f *fixture) { f.env.Holding = false }, body: attestation(50, 51, 1), identity: "vc-1", want: 200},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			f := newFixture(t, p)
			if row.setup != nil {
				row.setup(f)
			}
			before, n := f.snapshot(), f.keys.count()
			w := f.do(f.h, http.MethodPost, f.checkPath(), row.body, row.identity, nil)
			if w.Code != row.want {
				t.Fatalf("status %d, want %d: %q", w.Code, row.want, w.Body)
			}
			if row.want == 200 && strings.TrimSpace(w.Body.String()) != `{"allowed":true}` {
				t.Fatalf("body %q", w.Body)
			}
			if !bytes.Equal(before, f.snapshot()) || f.keys.count() != n {
				t.Fatal("check recorded or signed something")
			}
		})
	}
}

// TestSignLogs: one record per request with the stable keys.
func TestSignLogs(t *testing.T) {
	f := newFixture(t, newDevPKI(t))
	signFirst(f, attestation(60, 61, 1))
	f.do(f.h, http.MethodPost, f.signPath(), attestation(60, 61, 2), "vc-1", nil)
	f.do(f.h, http.MethodPost, f.signPath(), block(14_000_000, 1), "vc-1", nil)
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log records, want 2: %s", len(lines), f.logs)
	}
	var att, blk map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &att); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &blk); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"pubkey": f.pk.String(), "type": "ATTESTATION", "outcome": "slashable",
		"rule": "attestation_double_vote", "source": 60.0, "target": 61.0, "status": 412.0, "identity": "client/vc-1"}
	for k, v := range want {
		if att[k] != v {
			t.Errorf("attestation log %s = %v, want %v", k, att[k], v)
		}
	}
	if blk["slot"] != 14_000_000.0 || blk["outcome"] != "signed" || blk["type"] != "BLOCK_V2" {
		t.Errorf("block log %v", blk)
	}
}

// TestRejectedHook: requests refused before the pipeline are reported to
// Config.Rejected (the pipeline observes the rest).
func TestRejectedHook(t *testing.T) {
	f := newFixture(t, newDevPKI(t))
	var got []string
	h := f.handler(Config{Rejected: func(o string) { got = append(got, o) }})
	f.do(h, http.MethodPost, f.signPath(), []byte(`{`), "vc-1", nil)
	f.do(h, http.MethodPost, f.signPath(), attestation(1, 2, 1), "", nil)
	f.do(h, http.MethodPost, f.signPath(), attestation(1, 2, 1), "vc-1", nil)
	f.do(h, http.MethodPost, f.checkPath(), []byte(`{`), "vc-1", nil)
	if strings.Join(got, ",") != "bad_request,unauthenticated" {
		t.Fatalf("Rejected saw %v", got)
	}
}

func TestPublicKeys(t *testing.T) {
	p := newDevPKI(t)
	f := newFixture(t, p)
	// A second mainnet key, a disabled one and one on Hoodi.
	seed2 := []byte("second key seed, 32 bytes at least....")
	pk2, err := f.env.AddBLSKey(seed2, eth2.Mainnet().GenesisValidatorsRoot)
	if err != nil {
		t.Fatal(err)
	}
	pk3, err := f.env.AddBLSKey([]byte("third key seed, 32 bytes at least....."), eth2.Mainnet().GenesisValidatorsRoot)
	if err != nil {
		t.Fatal(err)
	}
	f.apply(commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: pk3[:], Reason: "gone"})
	if _, err := f.env.AddBLSKey([]byte("hoodi key seed, 32 bytes at least....."), eth2.Hoodi().GenesisValidatorsRoot); err != nil {
		t.Fatal(err)
	}
	if err := f.env.Allow("vc-narrow", []string{pk2.String()}, []string{"ATTESTATION"}); err != nil {
		t.Fatal(err)
	}
	all := []string{f.pk.String(), pk2.String()}
	if all[0] > all[1] {
		all[0], all[1] = all[1], all[0]
	}
	rows := []struct {
		name     string
		identity string
		tokens   fakeTokens
		hdr      map[string]string
		want     int
		keys     []string
	}{
		{name: "everything", identity: "vc-1", want: 200, keys: all},
		{name: "no policy", identity: "regentctl", want: 200, keys: []string{}},
		{name: "narrow policy via token", tokens: fakeTokens{"t": {Role: pki.RoleClient, Name: "vc-narrow"}}, hdr: map[string]string{"Authorization": "Bearer t"}, want: 200, keys: []string{pk2.String()}},
		{name: "no identity", want: 401},
		{name: "node role", identity: "dc1", want: 403},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			h := f.handler(Config{Tokens: row.tokens})
			w := f.do(h, http.MethodGet, "/api/v1/eth2/publicKeys", nil, row.identity, row.hdr)
			if w.Code != row.want {
				t.Fatalf("status %d: %q", w.Code, w.Body)
			}
			if row.want != 200 {
				return
			}
			var got []string
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(row.keys, ",") || got == nil {
				t.Fatalf("keys %v, want %v", got, row.keys)
			}
		})
	}
}

func TestUpcheckAndHealthcheck(t *testing.T) {
	f := newFixture(t, newDevPKI(t))
	w := f.do(f.h, http.MethodGet, "/upcheck", nil, "", nil)
	if w.Code != 200 || w.Body.String() != "OK" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("upcheck %d %q", w.Code, w.Body)
	}
	w = f.do(f.h, http.MethodGet, "/upcheck", nil, "", map[string]string{"Accept": "application/json"})
	if w.Code != 200 || w.Body.String() != `{"status":"OK"}` {
		t.Fatalf("upcheck json %d %q", w.Code, w.Body)
	}
	rows := []struct {
		name   string
		s      HealthStatus
		want   int
		status map[string]string
	}{
		{name: "holder ready", s: HealthStatus{Region: "dc1", LeaseHeld: true, LeaseState: "active", LeaseHolder: "dc1", LeaseEpoch: 3, KeysLoaded: 2, KeysExpected: 2, Quorum: true},
			want: 200, status: map[string]string{"lease": "UP", "keys-check": "UP", "quorum": "UP"}},
		{name: "standby", s: HealthStatus{Region: "dc2", LeaseState: "active", LeaseHolder: "dc1", LeaseEpoch: 3, KeysExpected: 2, Quorum: true},
			want: 503, status: map[string]string{"lease": "DOWN", "keys-check": "DOWN", "quorum": "UP"}},
		{name: "keys missing", s: HealthStatus{Region: "dc1", LeaseHeld: true, KeysLoaded: 1, KeysExpected: 2, Quorum: true, Detail: "unseal failed"},
			want: 503, status: map[string]string{"lease": "UP", "keys-check": "DOWN", "quorum": "UP"}},
		{name: "no quorum", s: HealthStatus{Region: "dc1", LeaseHeld: true, KeysLoaded: 2, KeysExpected: 2},
			want: 503, status: map[string]string{"lease": "UP", "keys-check": "UP", "quorum": "DOWN"}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			f.health.s = row.s
			w := f.do(f.h, http.MethodGet, "/healthcheck", nil, "", nil)
			if w.Code != row.want {
				t.Fatalf("status %d", w.Code)
			}
			var rep HealthReport
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			wantAll := map[bool]string{true: "UP", false: "DOWN"}[row.want == 200]
			if rep.Status != wantAll || rep.Outcome != wantAll || len(rep.Checks) != 3 {
				t.Fatalf("report %+v", rep)
			}
			for _, c := range rep.Checks {
				if row.status[c.ID] != c.Status {
					t.Errorf("check %s = %s, want %s", c.ID, c.Status, row.status[c.ID])
				}
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	f := newFixture(t, newDevPKI(t))
	for _, row := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, f.signPath(), 405},
		{http.MethodPost, "/api/v1/eth2/publicKeys", 405},
		{http.MethodGet, "/api/v1/eth2/unknown", 404},
		{http.MethodPost, "/api/v1/eth2/sign/", 404},
	} {
		if w := f.do(f.h, row.method, row.path, nil, "vc-1", nil); w.Code != row.want {
			t.Errorf("%s %s: %d, want %d", row.method, row.path, w.Code, row.want)
		}
	}
}

func TestWantsJSON(t *testing.T) {
	for _, row := range []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"application/json"}, true},
		{[]string{"text/plain"}, false},
		{[]string{"*/*"}, false},
		{[]string{"application/*"}, true},
		{[]string{"application/json, text/plain"}, true},
		{[]string{"text/plain, application/json"}, false},
		{[]string{"text/plain;q=0.2, application/json;q=0.9"}, true},
		{[]string{"application/json;q=0"}, false},
		{[]string{"application/xml"}, false},
		{[]string{"garbage;;;", "application/json"}, true},
		{[]string{"application/json;q=abc"}, false},
		{[]string{"text/html", "application/json; charset=utf-8"}, true},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		for _, a := range row.accept {
			r.Header.Add("Accept", a)
		}
		if got := wantsJSON(r); got != row.want {
			t.Errorf("Accept %q: %v, want %v", row.accept, got, row.want)
		}
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	f := newFixture(t, newDevPKI(t))
	good := Config{Signer: f.pipe, State: f.env, Health: f.health, Network: eth2.Mainnet()}
	for _, row := range []struct {
		name string
		edit func(c *Config)
	}{
		{"no signer", func(c *Config) { c.Signer = nil }},
		{"no state", func(c *Config) { c.State = nil }},
		{"no health", func(c *Config) { c.Health = nil }},
		{"no network", func(c *Config) { c.Network = eth2.Network{} }},
		{"negative timeout", func(c *Config) { c.SignTimeout = -1 }},
	} {
		c := good
		row.edit(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", row.name, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}

func TestAuthFailureMapping(t *testing.T) {
	for _, row := range []struct {
		err  error
		want int
	}{
		{httpauth.ErrNoIdentity, 401},
		{httpauth.ErrBadToken, 401},
		{httpauth.ErrWrongRole, 403},
	} {
		if got := authFailure(row.err).Status; got != row.want {
			t.Errorf("%v: %d, want %d", row.err, got, row.want)
		}
	}
}
