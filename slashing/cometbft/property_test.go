package cometbft

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/regent-signer/regent/slashing"
)

// refSigned is one signature the reference model released.
type refSigned struct {
	m     tm     // what the bytes describe
	bytes []byte // the bytes signed
}

// refModel is a brute-force model of the spec. It keeps every signature ever
// released per (key, chain) and decides each request by scanning that whole
// history, without any notion of "last state".
type refModel struct {
	signed map[pairKey][]refSigned
}

type refDecision struct {
	decision slashing.Decision
	rule     slashing.Rule
	bytes    []byte
	ts       Timestamp
	same     bool
	reused   bool
}

// decide applies the spec to a well-formed, honest request.
func (r *refModel) decide(key string, m tm) refDecision {
	hist := r.signed[pairKey{key, m.chain}]
	if len(hist) == 0 {
		return refDecision{decision: slashing.DecisionAccepted, bytes: m.bytes(), ts: Timestamp{m.sec, m.nanos}}
	}
	// The highest position ever signed.
	top := hist[0].m.hrs()
	for _, s := range hist[1:] {
		if refCompare(s.m.hrs(), top) > 0 {
			top = s.m.hrs()
		}
	}
	switch c := refCompare(m.hrs(), top); {
	case c > 0:
		return refDecision{decision: slashing.DecisionAccepted, bytes: m.bytes(), ts: Timestamp{m.sec, m.nanos}}
	case c < 0:
		return refDecision{decision: slashing.DecisionDenied, rule: slashing.RuleHRSRegression}
	}
	// Same position as the top: identical bytes to something signed there
	// re-sign; otherwise the first signature there that differs only in the
	// timestamp is returned; otherwise conflict.
	for _, s := range hist {
		if s.m.hrs() == top && bytes.Equal(s.bytes, m.bytes()) {
			return refDecision{decision: slashing.DecisionAccepted, bytes: s.bytes, ts: Timestamp{m.sec, m.nanos}, same: true}
		}
	}
	for _, s := range hist {
		if s.m.hrs() == top && s.m.sameButTimestamp(m) {
			return refDecision{decision: slashing.DecisionAccepted, bytes: s.bytes, ts: Timestamp{s.m.sec, s.m.nanos}, same: true, reused: true}
		}
	}
	return refDecision{decision: slashing.DecisionDenied, rule: slashing.RuleHRSConflict}
}

// refCompare orders positions by mapping each to one number: rounds and
// steps in tests are tiny, so height*1e6 + round*10 + step is an exact
// lexicographic key. Independent of HRS.Compare on purpose.
func refCompare(a, b HRS) int {
	ka := a.Height*1_000_000 + int64(a.Round)*10 + int64(a.Step)
	kb := b.Height*1_000_000 + int64(b.Round)*10 + int64(b.Step)
	switch {
	case ka < kb:
		return -1
	case ka > kb:
		return 1
	}
	return 0
}

// release records a signature the system under test handed out, as the
// message it signs.
func (r *refModel) release(key string, m tm, signed []byte) {
	k := pairKey{key, m.chain}
	r.signed[k] = append(r.signed[k], refSigned{m: m, bytes: append([]byte(nil), signed...)})
}

// genMessage draws a valid message from a small space, so that collisions
// (same position, same or different content) are frequent.
func genMessage(rng *rand.Rand) tm {
	chains := []string{"chain-a", "chain-b"}
	m := tm{
		height: 1 + rng.Int64N(4),
		round:  rng.Int32N(3),
		sec:    1_700_000_000 + rng.Int64N(3),
		nanos:  int32(rng.IntN(2)),
		chain:  chains[rng.IntN(len(chains))],
	}
	switch rng.IntN(3) {
	case 0:
		m.typ = TypeProposal
		m.block = 1 + rng.IntN(2)
		m.pol = -1 + rng.Int32N(m.round+1) // -1 ≤ pol < round
	case 1:
		m.typ = TypePrevote
		m.block = rng.IntN(3)
	default:
		m.typ = TypePrecommit
		m.block = rng.IntN(3)
	}
	return m
}

// TestPropertyAgainstReference drives random request sequences through the
// State and the reference model and requires identical decisions, identical
// bytes to sign, and, over everything released: at most one distinct sign
// bytes per (key, chain, HRS), and positions that never go backwards.
func TestPropertyAgainstReference(t *testing.T) {
	const seeds, steps = 40, 1500
	keys := []string{"key-1", "key-2"}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed*7919))
			s := NewState()
			ref := &refModel{signed: map[pairKey][]refSigned{}}
			type released struct {
				hrs   HRS
				bytes []byte
			}
			out := map[pairKey][]released{}
			var accepted, denied, failed, reused int

			for step := 0; step < steps; step++ {
				key := keys[rng.IntN(len(keys))]
				m := genMessage(rng)
				hrs, chain, b := m.hrs(), m.chain, m.bytes()
				honest := true
				switch rng.IntN(20) {
				case 0: // lie about the position
					hrs.Height += 1 + rng.Int64N(2)
					honest = false
				case 1: // lie about the step
					hrs.Step = Step(1 + (int(hrs.Step)+rng.IntN(2))%3)
					honest = false
				case 2: // corrupt the bytes
					b = append([]byte(nil), b...)
					b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
					honest = false
				case 3: // request names another chain
					chain = map[string]string{"chain-a": "chain-b", "chain-b": "chain-a"}[chain]
					honest = false
				}

				if !honest {
					// A corrupted byte can, rarely, leave a different valid
					// message at the same position (a changed hash or
					// timestamp byte). The reference cannot describe it, so
					// such a request is not sent.
					if mm, err := ParseSignBytes(b); err == nil && mm.ChainID() == chain && mm.HRS() == hrs {
						continue
					}
				}

				before := snapshotBytes(t, s)
				checked := s.Check(key, chain, hrs, b)
				if !bytes.Equal(before, snapshotBytes(t, s)) {
					t.Fatalf("step %d: Check mutated the State", step)
				}
				o := s.Record(key, chain, hrs, b)
				if !outcomesEqual(checked, o) {
					t.Fatalf("step %d: Check %+v, Record %+v", step, checked, o)
				}

				if !honest {
					if o.Decision != slashing.DecisionFailed || o.SignBytes != nil {
						t.Fatalf("step %d: dishonest request %v/%s not Failed: %+v", step, hrs, chain, o)
					}
					if !bytes.Equal(before, snapshotBytes(t, s)) {
						t.Fatalf("step %d: failed request changed the State", step)
					}
					failed++
					continue
				}

				want := ref.decide(key, m)
				if o.Decision != want.decision || o.Rule != want.rule {
					t.Fatalf("step %d: %s %v %x:\n got %v %q (%s)\nwant %v %q", step, key, hrs, b, o.Decision, o.Rule, o.Reason, want.decision, want.rule)
				}
				if !bytes.Equal(o.SignBytes, want.bytes) || o.Timestamp != want.ts || o.SameHRS != want.same || o.ReusedEarlier != want.reused {
					t.Fatalf("step %d: accepted with bytes %x ts %v same %v reused %v; reference %x %v %v %v",
						step, o.SignBytes, o.Timestamp, o.SameHRS, o.ReusedEarlier, want.bytes, want.ts, want.same, want.reused)
				}
				switch o.Decision {
				case slashing.DecisionAccepted:
					accepted++
					if o.ReusedEarlier {
						reused++
					}
					signedMsg, err := ParseSignBytes(o.SignBytes)
					if err != nil {
						t.Fatalf("step %d: released undecodable bytes: %v", step, err)
					}
					ref.release(key, m.withTS(signedMsg.Timestamp().Seconds, signedMsg.Timestamp().Nanos), o.SignBytes)
					k := pairKey{key, chain}
					out[k] = append(out[k], released{hrs, o.SignBytes})
				case slashing.DecisionDenied:
					denied++
				}

				// Every few hundred steps, continue from a snapshot round trip.
				if step%250 == 249 {
					snap := snapshotBytes(t, s)
					restored, err := ReadState(bytes.NewReader(snap))
					if err != nil {
						t.Fatalf("step %d: ReadState: %v", step, err)
					}
					if !bytes.Equal(snap, snapshotBytes(t, restored)) {
						t.Fatalf("step %d: snapshot round trip differs", step)
					}
					s = restored
				}
			}

			// Safety over everything released.
			for k, rs := range out {
				for i := 1; i < len(rs); i++ {
					if refCompare(rs[i].hrs, rs[i-1].hrs) < 0 {
						t.Fatalf("%v: released %v after %v", k, rs[i].hrs, rs[i-1].hrs)
					}
				}
				for i := range rs {
					for j := i + 1; j < len(rs); j++ {
						if rs[i].hrs == rs[j].hrs && !bytes.Equal(rs[i].bytes, rs[j].bytes) {
							t.Fatalf("%v: two different sign bytes released at %v:\n%x\n%x", k, rs[i].hrs, rs[i].bytes, rs[j].bytes)
						}
					}
				}
			}
			if accepted == 0 || denied == 0 || failed == 0 || reused == 0 {
				t.Fatalf("weak run: accepted %d denied %d failed %d reused %d", accepted, denied, failed, reused)
			}
		})
	}
}
