package eth2

// MaxBodyBytes bounds a request body. The largest legitimate request, a
// full phase0/Altair block at every list limit, is well under it.
const MaxBodyBytes = 1 << 20

// Request is one decoded, validated signing request. The public key it is
// for comes from the URL, not the body, and is not part of it.
//
// Exactly one payload field is set, chosen by Type:
//
//	AGGREGATION_SLOT                       AggregationSlot
//	AGGREGATE_AND_PROOF(_V2)               AggregateAndProof
//	ATTESTATION                            Attestation
//	BLOCK                                  Block (phase0)
//	BLOCK_V2                               Block (PHASE0/ALTAIR full form) or BlockHeader
//	DEPOSIT                                Deposit
//	RANDAO_REVEAL                          RandaoReveal
//	VOLUNTARY_EXIT                         VoluntaryExit
//	SYNC_COMMITTEE_MESSAGE                 SyncCommitteeMessage
//	SYNC_COMMITTEE_SELECTION_PROOF         SyncAggregatorSelectionData
//	SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF  ContributionAndProof
//	VALIDATOR_REGISTRATION                 ValidatorRegistration
//
// A Request is a value: nothing in it refers to the body it was decoded
// from, and its methods do not modify it. It is safe for concurrent reads.
type Request struct {
	Type Type
	// ForkInfo is the request's fork_info; nil only for DEPOSIT and
	// VALIDATOR_REGISTRATION requests that did not send one.
	ForkInfo *ForkInfo
	// ClientSigningRoot is the signingRoot (or signing_root) the client
	// sent, nil if it sent none. SigningRoot refuses a mismatch.
	ClientSigningRoot *Root
	// Version is the fork named by a BLOCK_V2 request, or by an
	// AGGREGATE_AND_PROOF_V2 request in the {version, data} form; empty
	// otherwise.
	Version ForkName

	AggregationSlot             *AggregationSlot
	AggregateAndProof           *AggregateAndProof
	Attestation                 *AttestationData
	Block                       *BeaconBlock
	BlockHeader                 *BeaconBlockHeader
	Deposit                     *DepositMessage
	RandaoReveal                *RandaoReveal
	VoluntaryExit               *VoluntaryExit
	SyncCommitteeMessage        *SyncCommitteeMessage
	SyncAggregatorSelectionData *SyncAggregatorSelectionData
	ContributionAndProof        *ContributionAndProof
	ValidatorRegistration       *ValidatorRegistration

	// network is the network the request was decoded for (nil: none).
	network *Network
}

// AggregationSlot is the AGGREGATION_SLOT request's object: the slot whose
// selection proof is signed.
type AggregationSlot struct {
	Slot uint64
}

// RandaoReveal is the RANDAO_REVEAL request's object: the epoch signed.
type RandaoReveal struct {
	Epoch uint64
}

// Network returns the network the request was decoded for, if any.
func (r *Request) Network() (Network, bool) {
	if r.network == nil {
		return Network{}, false
	}
	return *r.network, true
}

// IsExit reports whether the request is a VOLUNTARY_EXIT. Exits end the
// validator: the pipeline must hold a committed operator approval before
// signing one.
func (r *Request) IsExit() bool { return r.Type == TypeVoluntaryExit }

// RequiresApproval reports whether signing needs a committed operator
// approval (DESIGN.md §6): true for voluntary exits.
func (r *Request) RequiresApproval() bool { return r.IsExit() }

// ProtectionKind says which slashing-protection record a request needs.
//
// The zero value is ProtectionUnknown, which callers must treat as "do not
// sign": a forgotten assignment never skips protection.
type ProtectionKind uint8

const (
	// ProtectionUnknown: no decision. Refuse to sign.
	ProtectionUnknown ProtectionKind = iota
	// ProtectionNone: the message is not slashable; no record is needed.
	ProtectionNone
	// ProtectionBlock: a block proposal; record Slot.
	ProtectionBlock
	// ProtectionAttestation: an attestation; record SourceEpoch and
	// TargetEpoch.
	ProtectionAttestation
)

// String returns the lower-case name used in logs and metrics.
func (k ProtectionKind) String() string {
	switch k {
	case ProtectionNone:
		return "none"
	case ProtectionBlock:
		return "block"
	case ProtectionAttestation:
		return "attestation"
	default:
		return "unknown"
	}
}

// Protection is what slashing protection must record before a signature
// for the request may leave the node (DESIGN.md I1). The signing root to
// record comes from SigningRoot.
type Protection struct {
	Kind ProtectionKind
	// Slot is the block's slot (ProtectionBlock).
	Slot uint64
	// SourceEpoch and TargetEpoch are the attestation's checkpoints
	// (ProtectionAttestation).
	SourceEpoch uint64
	TargetEpoch uint64
	// GenesisValidatorsRoot keys the protection history (EIP-3076); set
	// for ProtectionBlock and ProtectionAttestation.
	GenesisValidatorsRoot Root
}

// Protection returns the slashing-protection record the request needs.
// Only BLOCK, BLOCK_V2 and ATTESTATION are slashable; every other type
// answers ProtectionNone. A Request not produced by Decode that lacks its
// payload answers ProtectionUnknown.
func (r *Request) Protection() Protection {
	switch r.Type {
	case TypeBlock, TypeBlockV2:
		if r.ForkInfo == nil {
			return Protection{}
		}
		switch {
		case r.Block != nil:
			return Protection{Kind: ProtectionBlock, Slot: r.Block.Slot, GenesisValidatorsRoot: r.ForkInfo.GenesisValidatorsRoot}
		case r.BlockHeader != nil:
			return Protection{Kind: ProtectionBlock, Slot: r.BlockHeader.Slot, GenesisValidatorsRoot: r.ForkInfo.GenesisValidatorsRoot}
		}
		return Protection{}
	case TypeAttestation:
		if r.ForkInfo == nil || r.Attestation == nil {
			return Protection{}
		}
		return Protection{
			Kind:                  ProtectionAttestation,
			SourceEpoch:           r.Attestation.Source.Epoch,
			TargetEpoch:           r.Attestation.Target.Epoch,
			GenesisValidatorsRoot: r.ForkInfo.GenesisValidatorsRoot,
		}
	}
	if r.Type.Valid() {
		return Protection{Kind: ProtectionNone}
	}
	return Protection{}
}

// Epoch returns the message epoch the domain is chosen by (the attestation's
// target epoch, the epoch of a block's or sync message's slot, a RANDAO or
// exit epoch, ...). ok is false for DEPOSIT and VALIDATOR_REGISTRATION,
// whose domains do not depend on an epoch, and for a Request without its
// payload. Use it for logs (key "epoch") and per-epoch policies.
func (r *Request) Epoch() (epoch uint64, ok bool) {
	_, epoch, ok, err := r.messageEpoch()
	if err != nil {
		return 0, false
	}
	return epoch, ok
}
