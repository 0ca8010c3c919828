// Package pipelinetest provides an in-process pipeline over the real
// replicated state machine (leader.LocalMachine, no Raft) and in-memory
// keys, for tests of the APIs built on package pipeline. It is not for
// production: its keys are plain memory.
package pipelinetest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"

	blst "github.com/supranational/blst/bindings/go"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
)

// Env is a lease holder with its state machine, keys and pipeline.
type Env struct {
	mu       sync.Mutex
	M        *leader.LocalMachine
	Pipeline *pipeline.Pipeline
	bls      map[bls.PublicKey]*blst.SecretKey
	ed       map[string]ed25519.PrivateKey
	// Holding toggles whether Record succeeds (false simulates "not lease holder").
	Holding bool
}

// New returns an Env whose region "dc1" holds the lease on net.
func New(net eth2.Network) (*Env, error) {
	m, err := leader.NewLocalMachine("dc1")
	if err != nil {
		return nil, err
	}
	e := &Env{M: m, bls: map[bls.PublicKey]*blst.SecretKey{}, ed: map[string]ed25519.PrivateKey{}, Holding: true}
	e.Pipeline, err = pipeline.New(pipeline.Config{Recorder: e, State: e, BLS: e, Ed25519: e, Network: net})
	return e, err
}

// View implements pipeline.StateView.
func (e *Env) View(fn func(*leader.State, uint64)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.M.FSM.View(fn)
}

// Record implements pipeline.Recorder through a RecordSignatures entry.
func (e *Env) Record(_ context.Context, recs []*commandpb.ProtectionRecord) ([]leader.Outcome, uint64, uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.Holding {
		return nil, 0, 0, fmt.Errorf("%w: test env not holding", leader.ErrNotHolder)
	}
	outs, err := e.M.Record(recs...)
	return outs, 0, 1, err
}

// AddBLSKey creates a BLS key from ikm, registers it on gvr and returns
// its public key.
func (e *Env) AddBLSKey(ikm []byte, gvr [32]byte) (bls.PublicKey, error) {
	sk := blst.KeyGen(ikm)
	if sk == nil {
		return bls.PublicKey{}, errors.New("keygen failed")
	}
	var pk bls.PublicKey
	copy(pk[:], new(blst.P1Affine).From(sk).Compress())
	e.mu.Lock()
	defer e.mu.Unlock()
	e.bls[pk] = sk
	_, err := e.M.Apply(commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: []*commandpb.AddKey{{
		Pubkey: pk[:], Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: leader.RootHex(gvr)}}})
	return pk, err
}

// AddEd25519Key registers an Ed25519 key for chainID.
func (e *Env) AddEd25519Key(seed []byte, chainID string) (ed25519.PublicKey, error) {
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ed[string(pub)] = priv
	_, err := e.M.Apply(commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: []*commandpb.AddKey{{
		Pubkey: pub, Scheme: commandpb.Scheme_SCHEME_ED25519, Network: chainID}}})
	return pub, err
}

// Allow sets a policy for identity.
func (e *Env) Allow(identity string, keyPatterns, types []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.M.Apply(commandpb.CommandType_SET_POLICY, &commandpb.SetPolicy{Identity: identity, KeyPatterns: keyPatterns, MessageTypes: types})
	return err
}

// ApproveExit commits an exit approval for pk.
func (e *Env) ApproveExit(pk []byte, operator string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.M.Apply(commandpb.CommandType_APPROVE_EXIT, &commandpb.ApproveExit{Pubkey: pk, Operator: operator})
	return err
}

// SignBLS implements pipeline.BLSKeys.
func (e *Env) SignBLS(pk bls.PublicKey, root [32]byte) ([96]byte, error) {
	e.mu.Lock()
	sk, ok := e.bls[pk]
	e.mu.Unlock()
	var out [96]byte
	if !ok {
		return out, bls.ErrKeyNotLoaded
	}
	copy(out[:], new(blst.P2Affine).Sign(sk, root[:], []byte(bls.DST)).Compress())
	return out, nil
}

// SignEd25519 implements pipeline.EdSigner.
func (e *Env) SignEd25519(_ context.Context, pub, msg []byte) ([]byte, error) {
	e.mu.Lock()
	priv, ok := e.ed[string(pub)]
	e.mu.Unlock()
	if !ok {
		return nil, errors.New("pipelinetest: no such Ed25519 key")
	}
	return ed25519.Sign(priv, msg), nil
}
