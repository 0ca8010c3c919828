package finality

import (
	"errors"
	"testing"

	"github.com/regent-signer/regent/slashing/eth"
)

func TestEvidenceCovers(t *testing.T) {
	goodEth := func() EthFinality {
		return EthFinality{
			Chain: "x", GenesisValidatorsRoot: gvrA, Epoch: 10, Root: testRoot(0, 10),
			FirstSlot: 320, SlotsPerEpoch: 32, Quorum: 2, Endpoints: 3,
			Agreeing: []EthAnswer{ans("a", 10, 0), ans("b", 11, 0)},
		}
	}
	goodComet := func() CometFinality {
		return CometFinality{ChainID: "chain-1", Height: 100, BlockHash: testRoot(0, 100), Quorum: 1, Endpoints: 1,
			Agreeing: []CometAnswer{cans("a", 100, 0)}}
	}
	cases := []struct {
		name string
		ev   func() Evidence
		mark HighWater
		want error // nil: covered
	}{
		{"covered", func() Evidence { return Evidence{Eth: []EthFinality{goodEth()}, Comet: []CometFinality{goodComet()}} },
			HighWater{Eth: map[eth.Root]EthMark{gvrA: {MaxBlockSlot: 319, HasBlock: true}}, Comet: map[string]int64{"chain-1": 99}}, nil},
		{"extra chains are fine", func() Evidence { return Evidence{Eth: []EthFinality{goodEth()}, Comet: []CometFinality{goodComet()}} },
			HighWater{Comet: map[string]int64{"chain-1": 0}}, nil},
		{"empty mark", func() Evidence { return Evidence{} }, HighWater{}, nil},
		{"missing network", func() Evidence { return Evidence{Eth: []EthFinality{goodEth()}} },
			HighWater{Eth: map[eth.Root]EthMark{gvrB: {}}}, ErrUnknownChain},
		{"missing chain", func() Evidence { return Evidence{Eth: []EthFinality{goodEth()}} },
			HighWater{Comet: map[string]int64{"chain-1": 1}}, ErrUnknownChain},
		{"eth not past", func() Evidence { return Evidence{Eth: []EthFinality{goodEth()}} },
			HighWater{Eth: map[eth.Root]EthMark{gvrA: {MaxTargetEpoch: 10, HasAttestation: true}}}, ErrNotPast},
		{"comet not past", func() Evidence { return Evidence{Comet: []CometFinality{goodComet()}} },
			HighWater{Comet: map[string]int64{"chain-1": 100}}, ErrNotPast},
		{"first slot forged", func() Evidence { f := goodEth(); f.FirstSlot = 10_000; return Evidence{Eth: []EthFinality{f}} },
			HighWater{Eth: map[eth.Root]EthMark{gvrA: {MaxBlockSlot: 9_999, HasBlock: true}}}, ErrInvalidTarget},
		{"first slot overflows", func() Evidence {
			f := goodEth()
			f.Epoch, f.FirstSlot = 1<<62, 0
			return Evidence{Eth: []EthFinality{f}}
		}, HighWater{Eth: map[eth.Root]EthMark{gvrA: {}}}, ErrInvalidTarget},
		{"zero slots per epoch", func() Evidence {
			f := goodEth()
			f.SlotsPerEpoch, f.FirstSlot = 0, 0
			return Evidence{Eth: []EthFinality{f}}
		},
			HighWater{Eth: map[eth.Root]EthMark{gvrA: {}}}, ErrInvalidTarget},
		{"eth below quorum", func() Evidence { f := goodEth(); f.Agreeing = f.Agreeing[:1]; return Evidence{Eth: []EthFinality{f}} },
			HighWater{Eth: map[eth.Root]EthMark{gvrA: {}}}, ErrInvalidTarget},
		{"comet zero quorum", func() Evidence { c := goodComet(); c.Quorum = 0; return Evidence{Comet: []CometFinality{c}} },
			HighWater{Comet: map[string]int64{"chain-1": 1}}, ErrInvalidTarget},
		{"negative height", func() Evidence { return Evidence{Comet: []CometFinality{goodComet()}} },
			HighWater{Comet: map[string]int64{"chain-1": -5}}, ErrInvalidTarget},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ev().Covers(tc.mark)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Covers = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Covers = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHighWaterString(t *testing.T) {
	h := HighWater{
		Eth:   map[eth.Root]EthMark{gvrB: {MaxBlockSlot: 5, HasBlock: true}, gvrA: {MaxTargetEpoch: 3, HasAttestation: true}},
		Comet: map[string]int64{"z": 2, "a": 1},
	}
	want := "eth a1010000: target 3; eth b2020000: slot 5; a: height 1; z: height 2"
	if got := h.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got := (HighWater{}).String(); got != "none" {
		t.Fatalf("empty: %q", got)
	}
}
