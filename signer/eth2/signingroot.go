package eth2

import (
	"crypto/sha256"
	"fmt"

	"github.com/regent-signer/regent/signer/eth2/ssz"
)

// ComputeForkDataRoot returns compute_fork_data_root(version, gvr): the
// hash_tree_root of ForkData{current_version, genesis_validators_root}.
func ComputeForkDataRoot(version Version, genesisValidatorsRoot Root) Root {
	return ssz.ContainerRoot(ssz.BytesRoot(version[:]), genesisValidatorsRoot)
}

// ComputeDomain returns compute_domain(domainType, forkVersion,
// genesisValidatorsRoot): the domain type followed by the first 28 bytes of
// the fork data root.
func ComputeDomain(domainType DomainType, forkVersion Version, genesisValidatorsRoot Root) [32]byte {
	var d [32]byte
	dt := domainType.Bytes()
	copy(d[:4], dt[:])
	fdr := ComputeForkDataRoot(forkVersion, genesisValidatorsRoot)
	copy(d[4:], fdr[:28])
	return d
}

// ComputeSigningRoot returns compute_signing_root: hash_tree_root of
// SigningData{object_root, domain}.
func ComputeSigningRoot(objectRoot Root, domain [32]byte) [32]byte {
	var buf [64]byte
	copy(buf[:32], objectRoot[:])
	copy(buf[32:], domain[:])
	return sha256.Sum256(buf[:])
}

// epochAtSlot is compute_epoch_at_slot under the mainnet preset.
func epochAtSlot(slot uint64) uint64 { return slot / SlotsPerEpoch }

// domainChoice records how a request's domain was derived, for Explain.
type domainChoice struct {
	domainType DomainType
	// epoch is the message epoch get_domain is called with; valid when
	// hasEpoch.
	epoch    uint64
	hasEpoch bool
	version  Version
	gvr      Root
	// versionSource says where version came from, in words.
	versionSource string
	domain        [32]byte
}

// messageEpoch returns the domain type of r's message and the epoch the
// spec passes to get_domain for it (hasEpoch false for the fixed-domain
// types DEPOSIT and VALIDATOR_REGISTRATION).
func (r *Request) messageEpoch() (dt DomainType, epoch uint64, hasEpoch bool, err error) {
	missing := func() (DomainType, uint64, bool, error) {
		return 0, 0, false, malformed(payloadField(r.Type), "%s request has no %s object", r.Type, payloadField(r.Type))
	}
	switch r.Type {
	case TypeAggregationSlot:
		if r.AggregationSlot == nil {
			return missing()
		}
		return DomainSelectionProof, epochAtSlot(r.AggregationSlot.Slot), true, nil
	case TypeAggregateAndProof, TypeAggregateAndProofV2:
		if r.AggregateAndProof == nil {
			return missing()
		}
		return DomainAggregateAndProof, epochAtSlot(r.AggregateAndProof.Aggregate.Data.Slot), true, nil
	case TypeAttestation:
		if r.Attestation == nil {
			return missing()
		}
		return DomainBeaconAttester, r.Attestation.Target.Epoch, true, nil
	case TypeBlock, TypeBlockV2:
		switch {
		case r.Block != nil && r.BlockHeader == nil:
			return DomainBeaconProposer, epochAtSlot(r.Block.Slot), true, nil
		case r.BlockHeader != nil && r.Block == nil && r.Type == TypeBlockV2:
			return DomainBeaconProposer, epochAtSlot(r.BlockHeader.Slot), true, nil
		}
		return missing()
	case TypeDeposit:
		if r.Deposit == nil {
			return missing()
		}
		return DomainDeposit, 0, false, nil
	case TypeRandaoReveal:
		if r.RandaoReveal == nil {
			return missing()
		}
		return DomainRandao, r.RandaoReveal.Epoch, true, nil
	case TypeVoluntaryExit:
		if r.VoluntaryExit == nil {
			return missing()
		}
		return DomainVoluntaryExit, r.VoluntaryExit.Epoch, true, nil
	case TypeSyncCommitteeMessage:
		if r.SyncCommitteeMessage == nil {
			return missing()
		}
		return DomainSyncCommittee, epochAtSlot(r.SyncCommitteeMessage.Slot), true, nil
	case TypeSyncCommitteeSelectionProof:
		if r.SyncAggregatorSelectionData == nil {
			return missing()
		}
		return DomainSyncCommitteeSelectionProof, epochAtSlot(r.SyncAggregatorSelectionData.Slot), true, nil
	case TypeSyncCommitteeContributionAndProof:
		if r.ContributionAndProof == nil {
			return missing()
		}
		return DomainContributionAndProof, epochAtSlot(r.ContributionAndProof.Contribution.Slot), true, nil
	case TypeValidatorRegistration:
		if r.ValidatorRegistration == nil {
			return missing()
		}
		return DomainApplicationBuilder, 0, false, nil
	}
	return 0, 0, false, fieldErr(ErrUnknownType, "type", "%q is not a supported signing type", r.Type)
}

// chooseDomain derives r's signing domain.
func (r *Request) chooseDomain() (domainChoice, error) {
	dt, epoch, hasEpoch, err := r.messageEpoch()
	if err != nil {
		return domainChoice{}, err
	}
	c := domainChoice{domainType: dt, epoch: epoch, hasEpoch: hasEpoch}
	switch r.Type {
	case TypeDeposit:
		// compute_domain(DOMAIN_DEPOSIT, genesis fork version, zero root).
		c.version = r.Deposit.GenesisForkVersion
		c.versionSource = "deposit.genesis_fork_version (genesis validators root is zero for deposits)"
	case TypeValidatorRegistration:
		// Builder specs: compute_domain(DOMAIN_APPLICATION_BUILDER) with
		// GENESIS_FORK_VERSION and a zero genesis validators root.
		if r.network == nil {
			return domainChoice{}, fieldErr(ErrNetworkRequired, "", "VALIDATOR_REGISTRATION signs under the network's genesis fork version; decode with DecodeForNetwork")
		}
		c.version = r.network.GenesisForkVersion
		c.versionSource = fmt.Sprintf("%s genesis fork version (builder domain; genesis validators root is zero)", r.network.Name)
	default:
		if r.ForkInfo == nil {
			return domainChoice{}, fieldErr(ErrMissingForkInfo, "fork_info", "%s requests must carry fork_info", r.Type)
		}
		c.gvr = r.ForkInfo.GenesisValidatorsRoot
		if r.Type == TypeVoluntaryExit {
			if err := r.exitVersion(&c); err != nil {
				return domainChoice{}, err
			}
			break
		}
		c.version, c.versionSource = r.ForkInfo.versionFor(epoch)
	}
	c.domain = ComputeDomain(c.domainType, c.version, c.gvr)
	return c, nil
}

// versionFor is get_domain's fork version choice, with an explanation.
func (f ForkInfo) versionFor(epoch uint64) (Version, string) {
	v := f.VersionAt(epoch)
	if epoch < f.Fork.Epoch {
		return v, fmt.Sprintf("fork_info.fork.previous_version (message epoch %d < fork epoch %d)", epoch, f.Fork.Epoch)
	}
	return v, fmt.Sprintf("fork_info.fork.current_version (message epoch %d >= fork epoch %d)", epoch, f.Fork.Epoch)
}

// exitVersion applies EIP-7044: once the chain is at Deneb or later, a
// voluntary exit is signed under CAPELLA_FORK_VERSION whatever its epoch.
// The chain is known to be at Deneb or later when the exit's epoch or the
// activation epoch of fork_info's current fork is at or past the network's
// DENEB_FORK_EPOCH. Before Deneb the ordinary get_domain rule applies.
func (r *Request) exitVersion(c *domainChoice) error {
	if r.network == nil {
		return fieldErr(ErrNetworkRequired, "", "VOLUNTARY_EXIT domains depend on the network's Capella fork version and Deneb fork epoch (EIP-7044); decode with DecodeForNetwork")
	}
	n := r.network
	if c.epoch >= n.DenebForkEpoch || r.ForkInfo.Fork.Epoch >= n.DenebForkEpoch {
		c.version = n.CapellaForkVersion
		c.versionSource = fmt.Sprintf("%s CAPELLA_FORK_VERSION (EIP-7044: chain is at Deneb or later, Deneb fork epoch %d)", n.Name, n.DenebForkEpoch)
		return nil
	}
	c.version, c.versionSource = r.ForkInfo.versionFor(c.epoch)
	return nil
}

// ObjectRoot returns the hash_tree_root of the object the request signs
// (for SYNC_COMMITTEE_MESSAGE the beacon block root itself; for
// AGGREGATION_SLOT and RANDAO_REVEAL the uint64 slot or epoch).
func (r *Request) ObjectRoot() (Root, error) {
	if _, _, _, err := r.messageEpoch(); err != nil {
		return Root{}, err
	}
	switch r.Type {
	case TypeAggregationSlot:
		return ssz.Uint64Root(r.AggregationSlot.Slot), nil
	case TypeAggregateAndProof, TypeAggregateAndProofV2:
		if r.Version != "" && r.AggregateAndProof.Aggregate.IsElectra() != r.Version.AtLeast(ForkElectra) {
			return Root{}, malformed("aggregate_and_proof.data.aggregate", "attestation shape does not match version %s", r.Version)
		}
		return r.AggregateAndProof.HashTreeRoot()
	case TypeAttestation:
		return r.Attestation.HashTreeRoot(), nil
	case TypeBlock, TypeBlockV2:
		if r.Block != nil {
			if r.Type == TypeBlock && r.Block.Body.SyncAggregate != nil {
				return Root{}, malformed("block.body.sync_aggregate", "BLOCK carries phase0 blocks only")
			}
			return r.Block.HashTreeRoot()
		}
		return r.BlockHeader.HashTreeRoot(), nil
	case TypeDeposit:
		return r.Deposit.HashTreeRoot(), nil
	case TypeRandaoReveal:
		return ssz.Uint64Root(r.RandaoReveal.Epoch), nil
	case TypeVoluntaryExit:
		return r.VoluntaryExit.HashTreeRoot(), nil
	case TypeSyncCommitteeMessage:
		return r.SyncCommitteeMessage.BeaconBlockRoot, nil
	case TypeSyncCommitteeSelectionProof:
		return r.SyncAggregatorSelectionData.HashTreeRoot(), nil
	case TypeSyncCommitteeContributionAndProof:
		return r.ContributionAndProof.HashTreeRoot(), nil
	case TypeValidatorRegistration:
		return r.ValidatorRegistration.HashTreeRoot(), nil
	}
	return Root{}, fieldErr(ErrUnknownType, "type", "%q is not a supported signing type", r.Type)
}

// SigningRoot returns the root a BLS signature for this request must sign
// and the domain mixed into it, per compute_domain / compute_signing_root of
// the consensus specs (builder specs for VALIDATOR_REGISTRATION).
//
// The domain's fork version is chosen as the specs' get_domain does: from
// fork_info, previous_version if the message's epoch is before fork.epoch
// and current_version otherwise — except DEPOSIT (the request's
// genesis_fork_version, zero genesis validators root), VALIDATOR_REGISTRATION
// (the network's genesis fork version, zero root) and, from Deneb on,
// VOLUNTARY_EXIT (the network's Capella fork version, EIP-7044).
//
// If the client sent a signing root, SigningRoot compares it with the
// computed one and returns ErrSigningRootMismatch (naming both) on any
// difference. On every error both returned values are zero.
func (r *Request) SigningRoot() (root [32]byte, domain [32]byte, err error) {
	c, err := r.chooseDomain()
	if err != nil {
		return [32]byte{}, [32]byte{}, err
	}
	obj, err := r.ObjectRoot()
	if err != nil {
		return [32]byte{}, [32]byte{}, err
	}
	root = ComputeSigningRoot(obj, c.domain)
	if r.ClientSigningRoot != nil && Root(root) != *r.ClientSigningRoot {
		return [32]byte{}, [32]byte{}, fieldErr(ErrSigningRootMismatch, "signingRoot",
			"client sent %s, computed %s from the %s object", *r.ClientSigningRoot, Root(root), r.Type)
	}
	return root, c.domain, nil
}

// Verify checks that the request's signing root can be computed and, if the
// client sent one, that it matches. It is SigningRoot without the results.
func (r *Request) Verify() error {
	_, _, err := r.SigningRoot()
	return err
}
