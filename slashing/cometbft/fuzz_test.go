package cometbft

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/regent-signer/regent/slashing"
)

// Fuzz targets: every decoder must never panic, must bound its work, and
// must accept only canonical input — anything it accepts re-encodes to the
// very same bytes. Each target runs on its seed corpus in a plain `go test`.

func signBytesSeeds() [][]byte {
	seeds := [][]byte{
		nil, {0}, {1, 8}, {2, 8, 1},
		prevote(1, 0, 0).bytes(),
		prevote(7, 3, 1).withTS(-5, 999_999_999).bytes(),
		precommit(1<<40, 2, 2).bytes(),
		proposal(9, 4, 1).bytes(),
		func() tm { m := proposal(9, 4, 1); m.pol = 3; return m }().bytes(),
		delim(msg(voteFields()...)),
		delim(msg(proposalFields()...)),
		delim(msg(str(1, "ext"), fx(2, 3), str(4, "c"))),
	}
	flipped := append([]byte(nil), precommit(5, 0, 1).bytes()...)
	flipped[20] ^= 0x40
	return append(seeds, flipped)
}

func FuzzDecodeVoteSignBytes(f *testing.F) {
	for _, s := range signBytesSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeVoteSignBytes(b)
		if err != nil {
			if !reflect.DeepEqual(v, CanonicalVote{}) {
				t.Fatal("partial value returned with an error")
			}
			return
		}
		re, err := EncodeVoteSignBytes(v)
		if err != nil {
			t.Fatalf("decoded vote does not re-encode: %v", err)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("accepted non-canonical bytes:\n in %x\nout %x", b, re)
		}
		m, err := ParseSignBytes(b)
		if err != nil || m.Type != v.Type || !reflect.DeepEqual(m.Vote, v) {
			t.Fatalf("ParseSignBytes disagrees: %+v, %v", m, err)
		}
		if !IsConsensusSignBytes(b) {
			t.Fatal("valid vote not recognised by IsConsensusSignBytes")
		}
	})
}

func FuzzDecodeProposalSignBytes(f *testing.F) {
	for _, s := range signBytesSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProposalSignBytes(b)
		if err != nil {
			if !reflect.DeepEqual(p, CanonicalProposal{}) {
				t.Fatal("partial value returned with an error")
			}
			return
		}
		re, err := EncodeProposalSignBytes(p)
		if err != nil {
			t.Fatalf("decoded proposal does not re-encode: %v", err)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("accepted non-canonical bytes:\n in %x\nout %x", b, re)
		}
		m, err := ParseSignBytes(b)
		if err != nil || m.Type != TypeProposal || !reflect.DeepEqual(m.Proposal, p) {
			t.Fatalf("ParseSignBytes disagrees: %+v, %v", m, err)
		}
		if !IsConsensusSignBytes(b) {
			t.Fatal("valid proposal not recognised by IsConsensusSignBytes")
		}
	})
}

func FuzzDecodeVoteExtensionSignBytes(f *testing.F) {
	for _, s := range signBytesSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeVoteExtensionSignBytes(b)
		if err != nil {
			return
		}
		re, err := EncodeVoteExtensionSignBytes(e)
		if err != nil {
			t.Fatalf("decoded extension does not re-encode: %v", err)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("accepted non-canonical bytes:\n in %x\nout %x", b, re)
		}
		if IsConsensusSignBytes(b) {
			t.Fatal("vote-extension sign bytes pass as consensus sign bytes")
		}
	})
}

func FuzzOnlyTimestampDiffers(f *testing.F) {
	seeds := signBytesSeeds()
	for i := range seeds {
		f.Add(seeds[i], seeds[(i+1)%len(seeds)])
		f.Add(seeds[i], seeds[i])
	}
	f.Add(precommit(5, 0, 1).bytes(), precommit(5, 0, 1).withTS(9, 9).bytes())
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ts, ok, err := OnlyTimestampDiffers(a, b)
		if err != nil {
			return
		}
		_, okBack, err := OnlyTimestampDiffers(b, a)
		if err != nil || okBack != ok {
			t.Fatalf("not symmetric: %v then %v (%v)", ok, okBack, err)
		}
		ma, _ := ParseSignBytes(a)
		mb, _ := ParseSignBytes(b)
		if ts != ma.Timestamp() {
			t.Fatalf("returned timestamp %v, prev has %v", ts, ma.Timestamp())
		}
		// ok exactly when a, re-stamped with b's timestamp, is b.
		var restamped []byte
		if ma.Type == TypeProposal {
			p := ma.Proposal
			p.Timestamp = mb.Timestamp()
			restamped, err = EncodeProposalSignBytes(p)
		} else {
			v := ma.Vote
			v.Timestamp = mb.Timestamp()
			restamped, err = EncodeVoteSignBytes(v)
		}
		if err != nil {
			t.Fatal(err)
		}
		if ok != bytes.Equal(restamped, b) {
			t.Fatalf("ok = %v, but re-stamping prev gives equal bytes = %v", ok, !ok)
		}
	})
}

func FuzzReadState(f *testing.F) {
	f.Add(snapshotBytes(f, NewState()))
	f.Add(snapshotBytes(f, sampleState(f)))
	f.Add([]byte("RGCB"))
	f.Add(frame(1, body(1<<40)))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkReadState(t, b)
	})
}

// FuzzReadStateBody reaches the body decoder past the checksum, which random
// input almost never satisfies.
func FuzzReadStateBody(f *testing.F) {
	good := snapEntry{"k", "chain-a", 10, 0, 2, prevote(10, 0, 1).bytes()}
	f.Add(body(0))
	f.Add(body(1, good))
	f.Add(body(2, good, good))
	f.Add(body(1, snapEntry{"k", "chain-a", 5, 1, 3, nil}))
	f.Add(snapshotBytes(f, sampleState(f))[headerLen : len(snapshotBytes(f, sampleState(f)))-4])
	f.Fuzz(func(t *testing.T, b []byte) {
		checkReadState(t, frame(1, b))
	})
}

func checkReadState(t *testing.T, b []byte) {
	s, err := ReadState(bytes.NewReader(b))
	if err != nil {
		if s != nil {
			t.Fatal("State returned with an error")
		}
		return
	}
	if out := snapshotBytes(t, s); !bytes.Equal(out, b) {
		t.Fatalf("accepted a non-canonical snapshot:\n in %x\nout %x", b, out)
	}
	// Every restored entry satisfies what Record guarantees.
	for _, e := range s.Entries() {
		if err := e.HRS.Validate(); err != nil {
			t.Fatalf("restored invalid position: %v", err)
		}
		if len(e.SignBytes) > 0 {
			if _, err := validateRequest(e.KeyID, e.ChainID, e.HRS, e.SignBytes); err != nil {
				t.Fatalf("restored inconsistent sign bytes: %v", err)
			}
		}
	}
}

// FuzzRecord feeds arbitrary requests to a populated State: failures change
// nothing, and whatever is accepted is a valid message at the requested
// position and chain.
func FuzzRecord(f *testing.F) {
	for _, m := range []tm{prevote(10, 1, 1), precommit(10, 1, 2), proposal(11, 0, 1), precommit(3, 0, 0).withTS(8, 0)} {
		f.Add("key-2", m.chain, m.height, m.round, int8(m.step()), m.bytes())
		f.Add("key-1", m.chain, m.height, m.round, int8(m.step()), m.bytes())
	}
	f.Add("", "", int64(0), int32(-1), int8(9), []byte{0xff})
	f.Fuzz(func(t *testing.T, key, chain string, h int64, r int32, step int8, b []byte) {
		s := sampleState(t)
		before := snapshotBytes(t, s)
		hrs := HRS{Height: h, Round: r, Step: Step(step)}
		last, had := s.Last(key, chain)
		o := s.Record(key, chain, hrs, b)
		switch o.Decision {
		case slashing.DecisionAccepted:
			m, err := ParseSignBytes(o.SignBytes)
			if err != nil || m.HRS() != hrs || m.ChainID() != chain || m.Timestamp() != o.Timestamp {
				t.Fatalf("accepted %x as %+v (%v) for %v on %q", o.SignBytes, m, err, hrs, chain)
			}
			if had && hrs.Compare(last) < 0 {
				t.Fatalf("accepted %v below %v", hrs, last)
			}
			if !o.SameHRS && !bytes.Equal(o.SignBytes, b) {
				t.Fatal("new position signed other bytes than requested")
			}
		case slashing.DecisionDenied, slashing.DecisionFailed:
			if o.SignBytes != nil || o.Reason == "" {
				t.Fatalf("refusal with bytes or without reason: %+v", o)
			}
			if !bytes.Equal(before, snapshotBytes(t, s)) {
				t.Fatal("refusal changed the State")
			}
		default:
			t.Fatalf("decision %v", o.Decision)
		}
	})
}
