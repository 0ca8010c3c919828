package finality

import (
	"errors"
	"testing"
)

// Each fuzz target checks: no panic; an error always wraps ErrMalformed (or
// ErrRPCError) and comes with a zero value; a success satisfies the
// decoder's documented invariants.

func FuzzDecodeGenesis(f *testing.F) {
	f.Add([]byte(genesisJSON(gvrA, 1606824023)))
	f.Add([]byte(`{"data":{"genesis_time":"0","genesis_validators_root":"0x` + "00" + `"}}`))
	f.Add([]byte(`{"data":{"genesis_time":"1","genesis_time":"1"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := DecodeGenesis(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || g != (Genesis{}) {
				t.Fatalf("err %v with %+v", err, g)
			}
		}
	})
}

func FuzzDecodeFinalityCheckpoints(f *testing.F) {
	f.Add([]byte(checkpointsJSON(Checkpoint{Epoch: 7, Root: testRoot(0, 7)}, false)))
	f.Add([]byte(checkpointsJSON(Checkpoint{}, true)))
	f.Add([]byte(`{"data":{"finalized":{"epoch":"1","root":"0x00"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeFinalityCheckpoints(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || c != (FinalityCheckpoints{}) {
				t.Fatalf("err %v with %+v", err, c)
			}
			return
		}
		if c.Finalized.Epoch > c.CurrentJustified.Epoch || c.PreviousJustified.Epoch > c.CurrentJustified.Epoch {
			t.Fatalf("accepted out-of-order checkpoints %+v", c)
		}
	})
}

func FuzzDecodeBlockHeader(f *testing.F) {
	f.Add([]byte(headerJSON(1, testRoot(0, 1), true, false)))
	f.Add([]byte(headerJSON(0, testRoot(0, 0), false, true)))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeBlockHeader(b)
		if err != nil && (!errors.Is(err, ErrMalformed) || h != (BlockHeader{})) {
			t.Fatalf("err %v with %+v", err, h)
		}
	})
}

func FuzzDecodeCometStatus(f *testing.F) {
	f.Add([]byte(statusJSON("chain-1", 5, testRoot(0, 5), false)))
	f.Add([]byte(statusJSON("c", 0, [32]byte{}, true)))
	f.Add([]byte(`{"jsonrpc":"2.0","id":-1,"error":{"code":1,"message":"x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeCometStatus(b)
		if err != nil {
			if !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrRPCError)) || s != (CometStatus{}) {
				t.Fatalf("err %v with %+v", err, s)
			}
			return
		}
		if s.LatestHeight < 0 || s.Network == "" || len(s.Network) > maxChainIDLen {
			t.Fatalf("accepted %+v", s)
		}
	})
}

func FuzzDecodeCometCommit(f *testing.F) {
	f.Add([]byte(commitJSON("chain-1", 5, testRoot(0, 5))))
	f.Add([]byte(`{"jsonrpc":"2.0","id":-1,"error":{"code":1,"message":"x","data":"y"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCometCommit(b)
		if err != nil {
			if !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrRPCError)) || c != (CometCommit{}) {
				t.Fatalf("err %v with %+v", err, c)
			}
			return
		}
		if c.Height < 1 || c.ChainID == "" {
			t.Fatalf("accepted %+v", c)
		}
	})
}
