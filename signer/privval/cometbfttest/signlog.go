package cometbfttest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/privval"
	"github.com/regent-signer/regent/slashing/cometbft"
)

// SignLog wraps Backends and records every signature they release, so a
// test can prove what the chain holds was signed through Regent and that no
// two different messages were ever signed at one height/round/step. It is
// safe for concurrent use and may wrap several backends (several signer
// instances, several regions) at once.
type SignLog struct {
	mu     sync.Mutex
	byHRS  map[hrsKey][][]byte // distinct sign bytes signed at each position
	sigs   map[string]bool     // every signature released
	events []Signed
	// extHeights are the heights of vote extensions signed.
	extHeights []int64
}

type hrsKey struct {
	chain string
	hrs   cometbft.HRS
}

// Signed is one released consensus signature.
type Signed struct {
	ChainID       string
	HRS           cometbft.HRS
	SignBytes     []byte
	Signature     []byte
	ReusedEarlier bool
	At            time.Time
}

// NewSignLog returns an empty log.
func NewSignLog() *SignLog {
	return &SignLog{byHRS: map[hrsKey][][]byte{}, sigs: map[string]bool{}}
}

// Wrap returns a Backend that behaves as b and logs what it signs.
func (l *SignLog) Wrap(b privval.Backend) privval.Backend { return logged{b: b, l: l} }

type logged struct {
	b privval.Backend
	l *SignLog
}

func (g logged) PubKey(ctx context.Context, chainID string) (ed25519.PublicKey, error) {
	return g.b.PubKey(ctx, chainID)
}

func (g logged) SignComet(ctx context.Context, c pipeline.Caller, req pipeline.CometRequest) (pipeline.CometResult, error) {
	res, err := g.b.SignComet(ctx, c, req)
	if err == nil {
		g.l.add(Signed{ChainID: req.ChainID, HRS: req.HRS, SignBytes: res.SignBytes, Signature: res.Signature, ReusedEarlier: res.ReusedEarlier, At: time.Now()})
	}
	return res, err
}

func (g logged) SignUnslashable(ctx context.Context, c pipeline.Caller, pk []byte, kind string, msg []byte) ([]byte, error) {
	sig, err := g.b.SignUnslashable(ctx, c, pk, kind, msg)
	if err == nil {
		g.l.mu.Lock()
		g.l.sigs[string(sig)] = true
		if kind == privval.KindVoteExtension {
			if e, derr := cometbft.DecodeVoteExtensionSignBytes(msg); derr == nil {
				g.l.extHeights = append(g.l.extHeights, e.Height)
			}
		}
		g.l.mu.Unlock()
	}
	return sig, err
}

// ExtensionHeights returns the heights of the vote extensions signed, in
// order.
func (l *SignLog) ExtensionHeights() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.extHeights...)
}

func (l *SignLog) add(s Signed) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := hrsKey{s.ChainID, s.HRS}
	seen := false
	for _, b := range l.byHRS[k] {
		seen = seen || bytes.Equal(b, s.SignBytes)
	}
	if !seen {
		l.byHRS[k] = append(l.byHRS[k], append([]byte(nil), s.SignBytes...))
	}
	l.sigs[string(s.Signature)] = true
	l.events = append(l.events, s)
}

// Released reports whether sig was released by a logged backend.
func (l *SignLog) Released(sig []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sigs[string(sig)]
}

// Events returns a copy of every consensus signature released, in order.
func (l *SignLog) Events() []Signed {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Signed(nil), l.events...)
}

// CheckNoDoubleSign returns an error naming the first position at which two
// different sign bytes were signed. This is the definition of a CometBFT
// double sign (equivocation), checked on what was released rather than on
// what the chain happened to notice.
func (l *SignLog) CheckNoDoubleSign() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, all := range l.byHRS {
		if len(all) > 1 {
			return fmt.Errorf("double sign on %s at %s: %d different messages signed (%x / %x)", k.chain, k.hrs, len(all), all[0], all[1])
		}
	}
	return nil
}
