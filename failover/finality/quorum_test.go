package finality

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/regent-signer/regent/slashing/eth"
)

func ans(ep string, epoch uint64, fork byte) EthAnswer {
	return EthAnswer{Endpoint: ep, Finalized: Checkpoint{Epoch: epoch, Root: testRoot(fork, epoch)}}
}

func TestAgreeEth(t *testing.T) {
	cases := []struct {
		name      string
		answers   []EthAnswer
		quorum    int
		wantEpoch uint64
		wantErr   error
		wantN     int // agreeing answers
	}{
		{"all equal", []EthAnswer{ans("a", 10, 0), ans("b", 10, 0), ans("c", 10, 0)}, 2, 10, nil, 3},
		{"one behind", []EthAnswer{ans("a", 10, 0), ans("b", 10, 0), ans("c", 9, 0)}, 2, 10, nil, 2},
		{"liar far ahead", []EthAnswer{ans("a", 1_000_000, 0), ans("b", 10, 0), ans("c", 9, 0)}, 2, 10, nil, 2},
		{"spread", []EthAnswer{ans("a", 12, 0), ans("b", 11, 0), ans("c", 10, 0)}, 2, 11, nil, 2},
		{"unanimity", []EthAnswer{ans("a", 12, 0), ans("b", 11, 0), ans("c", 10, 0)}, 3, 10, nil, 3},
		{"too few", []EthAnswer{ans("a", 10, 0)}, 2, 0, ErrNoQuorum, 0},
		{"none", nil, 1, 0, ErrNoQuorum, 0},
		{"conflict at agreed epoch", []EthAnswer{ans("a", 10, 0), ans("b", 10, 1), ans("c", 10, 0)}, 2, 0, ErrConflict, 0},
		{"conflict above agreed epoch", []EthAnswer{ans("a", 11, 0), ans("b", 11, 1), ans("c", 9, 0), ans("d", 9, 0), ans("e", 9, 0)}, 3, 0, ErrConflict, 0},
		{"conflict even without quorum", []EthAnswer{ans("a", 5, 0), ans("b", 5, 1)}, 3, 0, ErrConflict, 0},
		{"different forks at different epochs are no conflict", []EthAnswer{ans("a", 11, 1), ans("b", 10, 0), ans("c", 10, 0)}, 2, 10, nil, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, root, agreeing, err := agreeEth(tc.answers, tc.quorum)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if agreeing != nil || e != 0 || root != (eth.Root{}) {
					t.Fatalf("result alongside error: %d %x %v", e, root, agreeing)
				}
				return
			}
			if e != tc.wantEpoch || root != testRoot(0, tc.wantEpoch) || len(agreeing) != tc.wantN {
				t.Fatalf("got epoch %d root %x with %d agreeing; want epoch %d with %d", e, root, len(agreeing), tc.wantEpoch, tc.wantN)
			}
		})
	}
}

// bruteEth is the reference: try every candidate epoch, keep the largest
// that at least quorum answers reach; any same-epoch root disagreement is a
// conflict.
func bruteEth(answers []EthAnswer, quorum int) (uint64, eth.Root, int, error) {
	for i := range answers {
		for j := range answers {
			if answers[i].Finalized.Epoch == answers[j].Finalized.Epoch && answers[i].Finalized.Root != answers[j].Finalized.Root {
				return 0, eth.Root{}, 0, ErrConflict
			}
		}
	}
	best, found := uint64(0), false
	for _, cand := range answers {
		n := 0
		for _, a := range answers {
			if a.Finalized.Epoch >= cand.Finalized.Epoch {
				n++
			}
		}
		if n >= quorum && (!found || cand.Finalized.Epoch > best) {
			best, found = cand.Finalized.Epoch, true
		}
	}
	if !found {
		return 0, eth.Root{}, 0, ErrNoQuorum
	}
	var root eth.Root
	n := 0
	for _, a := range answers {
		if a.Finalized.Epoch == best {
			root = a.Finalized.Root
		}
		if a.Finalized.Epoch >= best {
			n++
		}
	}
	return best, root, n, nil
}

func TestAgreeEthMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 20000; iter++ {
		n := rng.IntN(7)
		q := 1 + rng.IntN(5)
		answers := make([]EthAnswer, n)
		for i := range answers {
			fork := byte(0)
			if rng.IntN(10) == 0 {
				fork = 1
			}
			answers[i] = ans(fmt.Sprint("ep", i), uint64(rng.IntN(6)), fork)
		}
		e, root, agreeing, err := agreeEth(answers, q)
		be, broot, bn, berr := bruteEth(answers, q)
		if !errors.Is(err, berr) || (err == nil) != (berr == nil) {
			t.Fatalf("iter %d: %v q=%d: err %v, reference %v", iter, answers, q, err, berr)
		}
		if err == nil && (e != be || root != broot || len(agreeing) != bn) {
			t.Fatalf("iter %d: q=%d: got (%d, %x, %d), reference (%d, %x, %d)", iter, q, e, root, len(agreeing), be, broot, bn)
		}
	}
}

func cans(ep string, h int64, fork byte) CometAnswer {
	return CometAnswer{Endpoint: ep, LatestHeight: h, LatestHash: testRoot(fork, uint64(h)), CommitHash: testRoot(fork, 100)}
}

func TestCometHeight(t *testing.T) {
	cases := []struct {
		name    string
		answers []CometAnswer
		quorum  int
		want    int64
		wantErr error
	}{
		{"spread", []CometAnswer{cans("a", 103, 0), cans("b", 101, 0), cans("c", 100, 0)}, 2, 101, nil},
		{"liar far ahead", []CometAnswer{cans("a", 1<<40, 0), cans("b", 101, 0), cans("c", 100, 0)}, 2, 101, nil},
		{"too few", []CometAnswer{cans("a", 100, 0)}, 2, 0, ErrNoQuorum},
		{"same height, different block", []CometAnswer{cans("a", 100, 0), cans("b", 100, 1), cans("c", 99, 0)}, 2, 0, ErrConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := cometHeight(tc.answers, tc.quorum)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) || h != tc.want {
				t.Fatalf("got %d, %v; want %d, %v", h, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCometAgree(t *testing.T) {
	cases := []struct {
		name    string
		answers []CometAnswer
		quorum  int
		wantErr error
	}{
		{"agree", []CometAnswer{cans("b", 101, 0), cans("a", 100, 0)}, 2, nil},
		{"differ", []CometAnswer{cans("a", 101, 0), cans("b", 100, 1)}, 2, ErrConflict},
		{"differ below quorum", []CometAnswer{cans("a", 101, 0), cans("b", 100, 1)}, 3, ErrConflict},
		{"too few", []CometAnswer{cans("a", 101, 0)}, 2, ErrNoQuorum},
		{"none", nil, 1, ErrNoQuorum},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hash, agreeing, err := cometAgree(tc.answers, 100, tc.quorum)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && (hash != testRoot(0, 100) || len(agreeing) != len(tc.answers) || agreeing[0].Endpoint != "a") {
				t.Fatalf("got %X, %v", hash, agreeing)
			}
		})
	}
}
