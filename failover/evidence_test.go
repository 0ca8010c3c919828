package failover

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/slashing/eth"
)

func TestCheckEvidence(t *testing.T) {
	mark := leader.HighWater{
		Eth:   map[eth.Root]leader.EthMark{testGVR: {MaxBlockSlot: 64, HasBlock: true, MaxTargetEpoch: 1, HasAttestation: true}},
		Comet: map[string]int64{testChain: 10},
	}
	blockOnly := leader.HighWater{Eth: map[eth.Root]leader.EthMark{testGVR: {MaxBlockSlot: 64, HasBlock: true}}}
	ev := func(mut func(*failoverpb.ConfirmFinality)) *failoverpb.ConfirmFinality {
		cf := &failoverpb.ConfirmFinality{Eth: []*failoverpb.EthFinality{ethEv(testGVR, 3, 2)}, Comet: []*failoverpb.CometFinality{cometEv(testChain, 11, 2)}}
		if mut != nil {
			mut(cf)
		}
		return cf
	}
	tests := []struct {
		name   string
		hw     leader.HighWater
		cf     *failoverpb.ConfirmFinality
		quorum int
		want   error
	}{
		{"past every mark", mark, ev(nil), 2, nil},
		{"empty mark, empty evidence", leader.HighWater{}, &failoverpb.ConfirmFinality{}, 2, nil},
		{"epoch 2 starts at slot 64: not above", mark, ev(func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].FinalizedEpoch = 2 }), 2, ErrFinalityShort},
		{"block-only mark: epoch 2 not enough", blockOnly, ev(func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].FinalizedEpoch = 2 }), 2, ErrFinalityShort},
		{"block-only mark: epoch 3 passes", blockOnly, ev(nil), 2, nil},
		{"overflowing first slot passes", blockOnly, ev(func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].FinalizedEpoch = math.MaxUint64 / 2 }), 2, nil},
		{"slots per epoch too large", mark, ev(func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].SlotsPerEpoch = MaxSlotsPerEpoch + 1 }), 2, ErrMalformed},
		{"quorum 3 of 2 endpoints", mark, ev(nil), 3, ErrFinalityShort},
		{"too many endpoints", mark, ev(func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].Endpoints = endpoints("b", MaxEndpoints+1) }), 2, ErrMalformed},
		{"empty endpoint name", mark, ev(func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].Endpoints[0] = "" }), 2, ErrMalformed},
		{"chain id too long", mark, ev(func(cf *failoverpb.ConfirmFinality) { cf.Comet[0].ChainId = strings.Repeat("c", 51) }), 2, ErrMalformed},
		{"comet height zero", mark, ev(func(cf *failoverpb.ConfirmFinality) { cf.Comet[0].Height = 0 }), 2, ErrMalformed},
		{"too many chains", leader.HighWater{}, ev(func(cf *failoverpb.ConfirmFinality) {
			for i := 0; i < MaxEvidenceChains; i++ {
				cf.Comet = append(cf.Comet, cometEv(strings.Repeat("x", 1+i%40)+string(rune('a'+i%26)), 1, 2))
			}
		}), 2, ErrMalformed},
		{"gvr short", mark, ev(func(cf *failoverpb.ConfirmFinality) { cf.Eth[0].GenesisValidatorsRoot = []byte{1} }), 2, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEvidence(tc.hw, tc.cf, tc.quorum)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCheckEvidenceAgainstReference compares CheckEvidence with the
// brute-force reference of the property test on random marks and
// evidence.
func TestCheckEvidenceAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		ref := newRefMark()
		hw := leader.HighWater{Eth: map[eth.Root]leader.EthMark{}, Comet: map[string]int64{}}
		for _, g := range []eth.Root{testGVR, otherGVR} {
			var m leader.EthMark
			if rng.IntN(2) == 0 {
				m.MaxTargetEpoch, m.HasAttestation = uint64(rng.IntN(8)), true
				ref.target[g], ref.hasT[g] = m.MaxTargetEpoch, true
			}
			if rng.IntN(2) == 0 {
				m.MaxBlockSlot, m.HasBlock = uint64(rng.IntN(300)), true
				ref.slot[g], ref.hasS[g] = m.MaxBlockSlot, true
			}
			if m.HasAttestation || m.HasBlock {
				hw.Eth[g] = m
			}
		}
		if rng.IntN(2) == 0 {
			h := int64(rng.IntN(20))
			hw.Comet[testChain], ref.height[testChain] = h, h
		}
		cf := &failoverpb.ConfirmFinality{}
		for _, g := range []eth.Root{testGVR, otherGVR} {
			if rng.IntN(5) != 0 {
				e := ethEv(g, uint64(rng.IntN(12)), 1)
				e.SlotsPerEpoch = uint32(rng.IntN(40))
				cf.Eth = append(cf.Eth, e)
			}
		}
		if rng.IntN(5) != 0 {
			cf.Comet = append(cf.Comet, cometEv(testChain, 1+int64(rng.IntN(22)), 1))
		}
		got := CheckEvidence(hw, cf, 1) == nil
		if want := ref.covered(cf); got != want {
			t.Fatalf("case %d: CheckEvidence says %v, reference %v (mark %s, evidence %s)", i, got, want, hw, evidenceString(cf))
		}
	}
}
