package eth

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/regent-signer/regent/slashing"
)

const (
	hexGVR = "0x04700007fabc8282644aed6d1c7c9e21d38a03a0c4ba193f3afe428824b3a673"
	hexPK  = "0xb845089a1457f811bfc000588fbb4e713669be8ce060ea6be3c6ece09afc3794106c91ca73acda5e5457122d58723bed"
	hexSR  = "0x4ff6f743a43f3b4f95350831aeaf0a122a1a392922c45d804280284a69eb850b"
)

// doc builds an interchange from a metadata object and a data array.
func doc(meta, data string) string { return `{"metadata":` + meta + `,"data":` + data + `}` }

func meta(version string) string {
	return `{"interchange_format_version":` + version + `,"genesis_validators_root":"` + hexGVR + `"}`
}

func entry(blocks, atts string) string {
	return `[{"pubkey":"` + hexPK + `","signed_blocks":` + blocks + `,"signed_attestations":` + atts + `}]`
}

func TestDecodeInterchangeValid(t *testing.T) {
	in := doc(meta(`"5"`), entry(
		`[{"slot":"81952","signing_root":"`+hexSR+`"},{"slot":"81951"}]`,
		`[{"source_epoch":"2290","target_epoch":"3007","signing_root":"`+hexSR+`"},{"source_epoch":"2290","target_epoch":"3008"}]`))
	ic, err := DecodeInterchange([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	gvr, _ := ParseRoot(hexGVR)
	key, _ := ParsePubkey(hexPK)
	sr, _ := ParseRoot(hexSR)
	want := &Interchange{GenesisValidatorsRoot: gvr, Data: []InterchangeRecord{{
		Pubkey:       key,
		SignedBlocks: []SignedBlock{{Slot: 81952, SigningRoot: KnownRoot(sr)}, {Slot: 81951}},
		SignedAttestations: []SignedAttestation{
			{SourceEpoch: 2290, TargetEpoch: 3007, SigningRoot: KnownRoot(sr)},
			{SourceEpoch: 2290, TargetEpoch: 3008},
		},
	}}}
	if !reflect.DeepEqual(ic, want) {
		t.Fatalf("got %+v\nwant %+v", ic, want)
	}
	// Encode → decode gives the same value, and encoding is deterministic.
	out, err := EncodeInterchange(ic)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeInterchange(out)
	if err != nil {
		t.Fatalf("decode of encoded: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, ic) {
		t.Fatalf("round trip differs: %+v", back)
	}
	out2, _ := EncodeInterchange(back)
	if !bytes.Equal(out, out2) {
		t.Fatal("encoding is not deterministic")
	}
}

func TestDecodeInterchangeInvalid(t *testing.T) {
	goodBlocks, goodAtts := `[{"slot":"1"}]`, `[{"source_epoch":"1","target_epoch":"2"}]`
	tests := []struct {
		name string
		in   string
		err  error
		path string // substring the message must contain
	}{
		{"empty input", ``, slashing.ErrInvalidInput, "interchange"},
		{"not an object", `[]`, slashing.ErrInvalidInput, "interchange: want an object"},
		{"truncated", doc(meta(`"5"`), entry(goodBlocks, goodAtts))[:60], slashing.ErrInvalidInput, "malformed JSON"},
		{"trailing data", doc(meta(`"5"`), `[]`) + `{}`, slashing.ErrInvalidInput, "after the top-level object"},
		{"missing metadata", `{"data":[]}`, slashing.ErrInvalidInput, "interchange.metadata: required"},
		{"missing data", `{"metadata":` + meta(`"5"`) + `}`, slashing.ErrInvalidInput, "interchange.data: required"},
		{"unknown top-level field", `{"metadata":` + meta(`"5"`) + `,"data":[],"extra":1}`, slashing.ErrInvalidInput, "interchange.extra: unknown field"},
		{"duplicate field", `{"metadata":` + meta(`"5"`) + `,"data":[],"data":[]}`, slashing.ErrInvalidInput, "interchange.data: duplicate field"},
		{"version 4", doc(meta(`"4"`), `[]`), slashing.ErrUnsupportedVersion, "interchange.metadata.interchange_format_version"},
		{"version as number", doc(meta(`5`), `[]`), slashing.ErrInvalidInput, "interchange_format_version: want a string, got a number"},
		{"version missing", doc(`{"genesis_validators_root":"`+hexGVR+`"}`, `[]`), slashing.ErrInvalidInput, "interchange_format_version: required"},
		{"gvr missing", doc(`{"interchange_format_version":"5"}`, `[]`), slashing.ErrInvalidInput, "genesis_validators_root: required"},
		{"gvr short", doc(`{"interchange_format_version":"5","genesis_validators_root":"0x0470"}`, `[]`), slashing.ErrInvalidInput, "genesis_validators_root"},
		{"gvr no prefix", doc(`{"interchange_format_version":"5","genesis_validators_root":"`+hexGVR[2:]+`"}`, `[]`), slashing.ErrInvalidInput, "0x-prefixed"},
		{"gvr not hex", doc(`{"interchange_format_version":"5","genesis_validators_root":"0x`+strings.Repeat("zz", 32)+`"}`, `[]`), slashing.ErrInvalidInput, "genesis_validators_root"},
		{"metadata unknown field", doc(`{"interchange_format_version":"5","genesis_validators_root":"`+hexGVR+`","interchange_format":"complete"}`, `[]`), slashing.ErrInvalidInput, "metadata.interchange_format: unknown field"},
		{"data not array", doc(meta(`"5"`), `{}`), slashing.ErrInvalidInput, "interchange.data: want an array"},
		{"data entry not object", doc(meta(`"5"`), `[1]`), slashing.ErrInvalidInput, "data[0]: want an object"},
		{"pubkey missing", doc(meta(`"5"`), `[{"signed_blocks":[],"signed_attestations":[]}]`), slashing.ErrInvalidInput, "data[0].pubkey: required"},
		{"pubkey 32 bytes", doc(meta(`"5"`), `[{"pubkey":"`+hexGVR+`","signed_blocks":[],"signed_attestations":[]}]`), slashing.ErrInvalidInput, "data[0].pubkey"},
		{"signed_blocks missing", doc(meta(`"5"`), `[{"pubkey":"`+hexPK+`","signed_attestations":[]}]`), slashing.ErrInvalidInput, "data[0].signed_blocks: required"},
		{"signed_attestations missing", doc(meta(`"5"`), `[{"pubkey":"`+hexPK+`","signed_blocks":[]}]`), slashing.ErrInvalidInput, "data[0].signed_attestations: required"},
		{"signed_blocks null", doc(meta(`"5"`), entry(`null`, `[]`)), slashing.ErrInvalidInput, "signed_blocks: want an array, got null"},
		{"slot missing", doc(meta(`"5"`), entry(`[{"signing_root":"`+hexSR+`"}]`, `[]`)), slashing.ErrInvalidInput, "data[0].signed_blocks[0].slot: required"},
		{"slot as number", doc(meta(`"5"`), entry(`[{"slot":1}]`, `[]`)), slashing.ErrInvalidInput, "signed_blocks[0].slot: want a string, got a number"},
		{"slot negative", doc(meta(`"5"`), entry(`[{"slot":"-1"}]`, `[]`)), slashing.ErrInvalidInput, "signed_blocks[0].slot"},
		{"slot leading zero", doc(meta(`"5"`), entry(`[{"slot":"01"}]`, `[]`)), slashing.ErrInvalidInput, "leading zero"},
		{"slot empty", doc(meta(`"5"`), entry(`[{"slot":""}]`, `[]`)), slashing.ErrInvalidInput, "empty decimal"},
		{"slot overflow", doc(meta(`"5"`), entry(`[{"slot":"18446744073709551616"}]`, `[]`)), slashing.ErrInvalidInput, "64 bits"},
		{"slot hex", doc(meta(`"5"`), entry(`[{"slot":"0x10"}]`, `[]`)), slashing.ErrInvalidInput, "not a decimal"},
		{"block unknown field", doc(meta(`"5"`), entry(`[{"slot":"1","epoch":"0"}]`, `[]`)), slashing.ErrInvalidInput, "signed_blocks[0].epoch: unknown field"},
		{"signing_root null", doc(meta(`"5"`), entry(`[{"slot":"1","signing_root":null}]`, `[]`)), slashing.ErrInvalidInput, "signed_blocks[0].signing_root: want a string, got null"},
		{"signing_root short", doc(meta(`"5"`), entry(`[{"slot":"1","signing_root":"0x00"}]`, `[]`)), slashing.ErrInvalidInput, "signed_blocks[0].signing_root"},
		{"source missing", doc(meta(`"5"`), entry(`[]`, `[{"target_epoch":"2"}]`)), slashing.ErrInvalidInput, "signed_attestations[0].source_epoch: required"},
		{"target missing", doc(meta(`"5"`), entry(`[]`, `[{"source_epoch":"2"}]`)), slashing.ErrInvalidInput, "signed_attestations[0].target_epoch: required"},
		{"target as bool", doc(meta(`"5"`), entry(`[]`, `[{"source_epoch":"1","target_epoch":true}]`)), slashing.ErrInvalidInput, "target_epoch: want a string, got a boolean"},
		{"second attestation bad", doc(meta(`"5"`), entry(`[]`, goodAtts[:len(goodAtts)-1]+`,{"source_epoch":"1","target_epoch":"x"}]`)), slashing.ErrInvalidInput, "signed_attestations[1].target_epoch"},
		{"oversized", strings.Repeat(" ", MaxInterchangeBytes+1), slashing.ErrInvalidInput, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ic, err := DecodeInterchange([]byte(tt.in))
			if err == nil {
				t.Fatalf("accepted: %+v", ic)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v does not wrap %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("error %q does not mention %q", err, tt.path)
			}
		})
	}
}

func TestImportGenesisMismatch(t *testing.T) {
	s := newTestState(t, Options{})
	mustBlock(t, s, pk(1), 5, rt(1))
	before := snapshot(t, s)
	ic, err := DecodeInterchange([]byte(interchangeDoc(pk(1), `[{"slot":"9"}]`, `[]`)))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Import(ic, otherGVR)
	if !errors.Is(err, slashing.ErrGenesisMismatch) {
		t.Fatalf("got %v", err)
	}
	if !bytes.Equal(before, snapshot(t, s)) {
		t.Fatal("failed import changed the state")
	}
	if err := s.Import(nil, testGVR); !errors.Is(err, slashing.ErrInvalidInput) {
		t.Fatalf("nil interchange: %v", err)
	}
}

// TestImportSlashableIsAtomic builds interchanges whose last record is
// slashable and checks that the import fails with ErrSlashableImport, names
// the record, and leaves every key untouched, including keys imported
// earlier in the same document.
func TestImportSlashableIsAtomic(t *testing.T) {
	k1, k2 := pk(1).String(), pk(2).String()
	good := `{"pubkey":"` + k2 + `","signed_blocks":[{"slot":"500"}],"signed_attestations":[{"source_epoch":"50","target_epoch":"60"}]}`
	tests := []struct {
		name string
		data string // appended after the good entry for k2
		path string
	}{
		{"double proposal vs history", `{"pubkey":"` + k1 + `","signed_blocks":[{"slot":"10","signing_root":"` + rt(9).String() + `"}],"signed_attestations":[]}`, "data[1].signed_blocks[0]"},
		{"absent root vs history", `{"pubkey":"` + k1 + `","signed_blocks":[{"slot":"10"}],"signed_attestations":[]}`, "data[1].signed_blocks[0]"},
		{"double proposal within the file", `{"pubkey":"` + k1 + `","signed_blocks":[{"slot":"30","signing_root":"` + rt(1).String() + `"},{"slot":"30","signing_root":"` + rt(2).String() + `"}],"signed_attestations":[]}`, "data[1].signed_blocks[1]"},
		{"double vote vs history", `{"pubkey":"` + k1 + `","signed_blocks":[],"signed_attestations":[{"source_epoch":"3","target_epoch":"4","signing_root":"` + rt(9).String() + `"}]}`, "data[1].signed_attestations[0]"},
		{"surrounds history", `{"pubkey":"` + k1 + `","signed_blocks":[],"signed_attestations":[{"source_epoch":"2","target_epoch":"5"}]}`, "surrounds"},
		{"surrounded by history", `{"pubkey":"` + k1 + `","signed_blocks":[],"signed_attestations":[{"source_epoch":"6","target_epoch":"7"},{"source_epoch":"7","target_epoch":"8"}]}`, "data[1].signed_attestations[1]"},
		{"source after target", `{"pubkey":"` + k1 + `","signed_blocks":[],"signed_attestations":[{"source_epoch":"9","target_epoch":"8"}]}`, "after target"},
		{"surround within duplicate entries", `{"pubkey":"` + k1 + `","signed_blocks":[],"signed_attestations":[{"source_epoch":"20","target_epoch":"30"}]},{"pubkey":"` + k1 + `","signed_blocks":[],"signed_attestations":[{"source_epoch":"21","target_epoch":"29"}]}`, "data[2].signed_attestations[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestState(t, Options{})
			mustBlock(t, s, pk(1), 10, rt(1))
			mustAtt(t, s, pk(1), 3, 4, rt(1))
			mustAtt(t, s, pk(1), 6, 9, rt(2))
			before := snapshot(t, s)
			hw := s.ChainHighWater(testGVR)
			in := `{"metadata":{"interchange_format_version":"5","genesis_validators_root":"` + testGVR.String() + `"},"data":[` + good + `,` + tt.data + `]}`
			ic, err := DecodeInterchange([]byte(in))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			err = s.Import(ic, testGVR)
			if !errors.Is(err, slashing.ErrSlashableImport) {
				t.Fatalf("got %v, want ErrSlashableImport", err)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("error %q does not mention %q", err, tt.path)
			}
			if !bytes.Equal(before, snapshot(t, s)) {
				t.Fatal("failed import changed the state")
			}
			if s.ChainHighWater(testGVR) != hw || len(s.Keys(testGVR)) != 1 {
				t.Fatal("failed import leaked the good key")
			}
		})
	}
}

func TestImportMergesAndIsIdempotent(t *testing.T) {
	s := newTestState(t, Options{})
	k := pk(1)
	// Duplicate pubkey entries in one file merge; absent roots duplicate.
	in := `{"metadata":{"interchange_format_version":"5","genesis_validators_root":"` + testGVR.String() + `"},"data":[` +
		`{"pubkey":"` + k.String() + `","signed_blocks":[{"slot":"10"},{"slot":"11"}],"signed_attestations":[{"source_epoch":"0","target_epoch":"2"}]},` +
		`{"pubkey":"` + k.String() + `","signed_blocks":[{"slot":"13"},{"slot":"10"}],"signed_attestations":[{"source_epoch":"1","target_epoch":"3","signing_root":"` + rt(1).String() + `"}]}]}`
	mustImport(t, s, in)
	w := s.Watermarks(testGVR, k)
	if w.Blocks != 3 || w.Attestations != 2 || w.BlockFloor != 10 || w.SourceFloor != 0 || w.TargetFloor != 2 {
		t.Fatalf("watermarks %+v", w)
	}
	once := snapshot(t, s)
	mustImport(t, s, in)
	if !bytes.Equal(once, snapshot(t, s)) {
		t.Fatal("re-import of the same file changed the state")
	}
	// Rules after the merge.
	for _, c := range []struct {
		slot uint64
		ok   bool
	}{{10, false}, {12, true}, {13, false}, {9, false}, {14, true}} {
		if res := s.CheckBlock(testGVR, k, c.slot, rt(5).Value); res.Accepted() != c.ok {
			t.Fatalf("block %d: %+v", c.slot, res)
		}
	}
	if res := s.CheckAttestation(testGVR, k, 1, 3, rt(1).Value); !res.Accepted() {
		t.Fatalf("identical re-sign of imported vote: %+v", res)
	}
}

func TestImportRaisesWatermarksAcrossGaps(t *testing.T) {
	s := newTestState(t, Options{})
	k := pk(1)
	mustImport(t, s, interchangeDoc(k, `[{"slot":"40"}]`, `[{"source_epoch":"2","target_epoch":"30"}]`))
	mustImport(t, s, interchangeDoc(k, `[{"slot":"50"}]`, `[{"source_epoch":"10","target_epoch":"50"}]`))
	for slot, ok := range map[uint64]bool{41: false, 49: false, 50: false, 51: true} {
		if res := s.CheckBlock(testGVR, k, slot, rt(1).Value); res.Accepted() != ok {
			t.Fatalf("slot %d: %+v", slot, res)
		}
	}
	for _, c := range []struct {
		s, t uint64
		ok   bool
	}{{3, 31, false}, {9, 49, false}, {10, 51, true}} {
		if res := s.CheckAttestation(testGVR, k, c.s, c.t, rt(1).Value); res.Accepted() != c.ok {
			t.Fatalf("vote (%d,%d): %+v", c.s, c.t, res)
		}
	}
	// A stale import below the watermarks changes no decision.
	mustImport(t, s, interchangeDoc(k, `[{"slot":"2"}]`, `[{"source_epoch":"0","target_epoch":"1"}]`))
	if w := s.Watermarks(testGVR, k); w.BlockFloor != 50 || w.TargetFloor != 50 || w.SourceFloor != 10 {
		t.Fatalf("stale import lowered watermarks: %+v", w)
	}
}

func TestExportShape(t *testing.T) {
	s := newTestState(t, Options{})
	k := pk(1)
	mustBlock(t, s, k, 10, rt(1))
	mustBlock(t, s, k, 100, rt(2))
	mustAtt(t, s, k, 1, 2, rt(1))
	mustAtt(t, s, k, 3, 5, absent)
	s.Prune(testGVR, k, 3) // first slot 96: folds slot 10 and the vote (1,2)
	ic := s.Export(testGVR, nil)
	want := &Interchange{GenesisValidatorsRoot: testGVR, Data: []InterchangeRecord{{
		Pubkey:             k,
		SignedBlocks:       []SignedBlock{{Slot: 10}, {Slot: 100, SigningRoot: rt(2)}},
		SignedAttestations: []SignedAttestation{{SourceEpoch: 1, TargetEpoch: 2}, {SourceEpoch: 3, TargetEpoch: 5}},
	}}}
	if !reflect.DeepEqual(ic, want) {
		t.Fatalf("export %+v\nwant %+v", ic, want)
	}
	if got := s.Export(testGVR, []Pubkey{pk(9)}); len(got.Data) != 0 {
		t.Fatalf("unknown key exported: %+v", got)
	}
	if got := s.Export(otherGVR, nil); len(got.Data) != 0 || got.GenesisValidatorsRoot != otherGVR {
		t.Fatalf("unknown chain exported: %+v", got)
	}
}

// TestExportImportRoundTrip exports random states, imports the JSON into an
// empty State and checks both give the same decision for a grid of requests,
// and that exporting again gives the same document.
func TestExportImportRoundTrip(t *testing.T) {
	keys := []Pubkey{pk(1), pk(2), pk(3)}
	for seed := range uint64(150) {
		r := rand.New(rand.NewPCG(seed, 0xe4))
		opts := Options{MaxBlocks: 2 + r.IntN(20), MaxAttestations: 2 + r.IntN(20)}
		s := newTestState(t, opts)
		const span = 20
		randomHistory(t, r, s, keys, 30+r.IntN(200), span)
		raw, err := EncodeInterchange(s.Export(testGVR, nil))
		if err != nil {
			t.Fatal(err)
		}
		ic, err := DecodeInterchange(raw)
		if err != nil {
			t.Fatalf("seed %d: export does not decode: %v\n%s", seed, err, raw)
		}
		fresh := newTestState(t, opts)
		if err := fresh.Import(ic, testGVR); err != nil {
			t.Fatalf("seed %d: export does not import: %v\n%s", seed, err, raw)
		}
		raw2, _ := EncodeInterchange(fresh.Export(testGVR, nil))
		if !bytes.Equal(raw, raw2) {
			t.Fatalf("seed %d: export not stable across import:\n%s\n---\n%s", seed, raw, raw2)
		}
		for _, k := range keys {
			a, b := s.lookup(testGVR, k), fresh.lookup(testGVR, k)
			for src := uint64(0); src <= span+1; src++ {
				for tgt := src; tgt <= span+1; tgt++ {
					for _, root := range []SigningRoot{absent, rt(0), rt(3)} {
						x, _, _ := a.checkAtt(src, tgt, root)
						y, _, _ := b.checkAtt(src, tgt, root)
						if x.Accepted() != y.Accepted() {
							t.Fatalf("seed %d key %x: vote (%d,%d) %s: original %v (%s), imported %v (%s)",
								seed, k[1], src, tgt, root, x.Decision, x.Reason, y.Decision, y.Reason)
						}
					}
				}
			}
			for slot := uint64(0); slot <= 2*span+1; slot++ {
				for _, root := range []SigningRoot{absent, rt(0), rt(3)} {
					x, _, _ := a.checkBlock(slot, root)
					y, _, _ := b.checkBlock(slot, root)
					if x.Accepted() != y.Accepted() {
						t.Fatalf("seed %d key %x: block %d %s: original %v, imported %v", seed, k[1], slot, root, x.Decision, y.Decision)
					}
				}
			}
		}
		if s.ChainHighWater(testGVR) != fresh.ChainHighWater(testGVR) {
			t.Fatalf("seed %d: high water %+v vs %+v", seed, s.ChainHighWater(testGVR), fresh.ChainHighWater(testGVR))
		}
	}
}

func TestParseHexHelpers(t *testing.T) {
	if _, err := ParseRoot(hexGVR); err != nil {
		t.Fatal(err)
	}
	if r, err := ParseRoot(strings.ToUpper(hexGVR[:2]) + strings.ToUpper(hexGVR[2:])); err != nil || r.String() != hexGVR {
		t.Fatalf("upper-case: %v %s", err, r)
	}
	for _, bad := range []string{"", "0x", hexPK, "0x" + strings.Repeat("g", 64), strings.Repeat("a", 200)} {
		if _, err := ParseRoot(bad); !errors.Is(err, slashing.ErrInvalidInput) {
			t.Fatalf("ParseRoot(%q): %v", bad, err)
		}
	}
	if p, err := ParsePubkey(hexPK); err != nil || p.String() != hexPK {
		t.Fatalf("ParsePubkey: %v", err)
	}
	if _, err := ParsePubkey(hexGVR); !errors.Is(err, slashing.ErrInvalidInput) {
		t.Fatalf("32-byte pubkey: %v", err)
	}
	if _, err := EncodeInterchange(nil); !errors.Is(err, slashing.ErrInvalidInput) {
		t.Fatalf("EncodeInterchange(nil): %v", err)
	}
}
