package eth

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/regent-signer/regent/slashing"
)

// FuzzDecodeInterchange: any input either decodes or fails with an error
// wrapping ErrInvalidInput/ErrUnsupportedVersion; never a panic. Whatever
// decodes re-encodes to a document that decodes to the same value, and
// importing it into an empty State either succeeds or is refused as
// slashable, leaving the State unchanged.
func FuzzDecodeInterchange(f *testing.F) {
	f.Add([]byte(doc(meta(`"5"`), entry(`[{"slot":"81952","signing_root":"`+hexSR+`"},{"slot":"81951"}]`,
		`[{"source_epoch":"2290","target_epoch":"3007","signing_root":"`+hexSR+`"},{"source_epoch":"2290","target_epoch":"3008"}]`))))
	f.Add([]byte(doc(meta(`"5"`), `[]`)))
	f.Add([]byte(doc(meta(`"4"`), `[]`)))
	f.Add([]byte(doc(meta(`"5"`), entry(`[{"slot":"1"},{"slot":"1"}]`, `[{"source_epoch":"5","target_epoch":"2"}]`))))
	f.Add([]byte(`{"metadata":{},"data":[{}]}`))
	f.Add([]byte(`{"data":[],"data":[]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ic, err := DecodeInterchange(data)
		if err != nil {
			if !errors.Is(err, slashing.ErrInvalidInput) && !errors.Is(err, slashing.ErrUnsupportedVersion) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		out, err := EncodeInterchange(ic)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeInterchange(out)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalize(ic), normalize(back)) {
			t.Fatalf("round trip differs")
		}
		s := newTestState(t, Options{MaxBlocks: 16, MaxAttestations: 16})
		empty := snapshot(t, s)
		if err := s.Import(ic, ic.GenesisValidatorsRoot); err != nil {
			if !errors.Is(err, slashing.ErrSlashableImport) {
				t.Fatalf("import error %v", err)
			}
			if !bytes.Equal(empty, snapshot(t, s)) {
				t.Fatal("refused import changed the state")
			}
			return
		}
		assertInvariants(t, s)
	})
}

// normalize maps nil and empty slices to the same value for comparison.
func normalize(ic *Interchange) *Interchange {
	c := *ic
	if len(c.Data) == 0 {
		c.Data = nil
	}
	c.Data = append([]InterchangeRecord(nil), c.Data...)
	for i := range c.Data {
		if len(c.Data[i].SignedBlocks) == 0 {
			c.Data[i].SignedBlocks = nil
		}
		if len(c.Data[i].SignedAttestations) == 0 {
			c.Data[i].SignedAttestations = nil
		}
	}
	return &c
}

// FuzzReadState: garbage gives an error wrapping a snapshot sentinel, never a
// panic; whatever decodes satisfies every invariant and re-encodes to bytes
// that decode to the same state.
func FuzzReadState(f *testing.F) {
	s, _ := NewState(Options{MaxBlocks: 4, MaxAttestations: 4})
	s.recordBlock(testGVR, pk(1), 10, rt(1))
	s.recordBlock(testGVR, pk(1), 12, absent)
	s.recordAtt(testGVR, pk(1), 1, 2, rt(1))
	s.recordAtt(testGVR, pk(2), 2, 3, absent)
	s.RecordBlock(otherGVR, pk(3), 7, Root{})
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	empty, _ := NewState(Options{})
	buf.Reset()
	if _, err := empty.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{SnapshotVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ReadState(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) && !errors.Is(err, ErrSnapshotVersion) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		assertInvariants(t, st)
		again, err := ReadState(bytes.NewReader(snapshot(t, st)))
		if err != nil || !stateEqual(st, again) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
