package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	blst "github.com/supranational/blst/bindings/go"

	"github.com/regent-signer/regent/raft/commandpb"
)

// demoGVR is the simulated chain's genesis validators root.
var demoGVR = sha256.Sum256([]byte("regent demo chain"))

type validator struct{ pubkey []byte }

type validatorSet []validator

// newValidatorSet derives n real BLS12-381 public keys from fixed seeds.
func newValidatorSet(n int) (validatorSet, error) {
	set := make(validatorSet, n)
	for i := range set {
		ikm := sha256.Sum256([]byte(fmt.Sprintf("regent demo validator %d", i)))
		sk := blst.KeyGen(ikm[:])
		if sk == nil {
			return nil, fmt.Errorf("keygen %d failed", i)
		}
		set[i].pubkey = new(blst.P1Affine).From(sk).Compress()
		sk.Zeroize()
	}
	return set, nil
}

type recordKind int

const (
	kindAttestation recordKind = iota
	kindBlock
)

func root(parts ...uint64) []byte {
	h := sha256.New()
	for _, p := range parts {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], p)
		h.Write(b[:])
	}
	return h.Sum(nil)
}

// duties returns the records of one epoch: an attestation per validator
// (source e-1, target e) and one block proposal per slot.
func (s validatorSet) duties(epoch uint64) []*commandpb.ProtectionRecord {
	var out []*commandpb.ProtectionRecord
	for i, v := range s {
		src := uint64(0)
		if epoch > 0 {
			src = epoch - 1
		}
		out = append(out, &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
			GenesisValidatorsRoot: demoGVR[:], Pubkey: v.pubkey, SourceEpoch: src, TargetEpoch: epoch, SigningRoot: root(1, uint64(i), epoch),
		}}})
	}
	for slot := epoch * 32; slot < (epoch+1)*32; slot++ {
		i := int(slot) % len(s)
		out = append(out, &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthBlock{EthBlock: &commandpb.EthBlock{
			GenesisValidatorsRoot: demoGVR[:], Pubkey: s[i].pubkey, Slot: slot, SigningRoot: root(2, slot),
		}}})
	}
	return out
}

func kindOf(r *commandpb.ProtectionRecord) recordKind {
	if r.GetEthBlock() != nil {
		return kindBlock
	}
	return kindAttestation
}

func countKind(rs []*commandpb.ProtectionRecord, k recordKind) int {
	n := 0
	for _, r := range rs {
		if kindOf(r) == k {
			n++
		}
	}
	return n
}

// conflicting returns a record that slashes together with r: same duty,
// different signing root.
func conflicting(r *commandpb.ProtectionRecord) *commandpb.ProtectionRecord {
	if b := r.GetEthBlock(); b != nil {
		c := &commandpb.EthBlock{GenesisValidatorsRoot: b.GenesisValidatorsRoot, Pubkey: b.Pubkey, Slot: b.Slot, SigningRoot: root(99, b.Slot)}
		return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthBlock{EthBlock: c}}
	}
	a := r.GetEthAttestation()
	c := &commandpb.EthAttestation{GenesisValidatorsRoot: a.GenesisValidatorsRoot, Pubkey: a.Pubkey, SourceEpoch: a.SourceEpoch,
		TargetEpoch: a.TargetEpoch, SigningRoot: root(99, a.TargetEpoch)}
	return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: c}}
}
