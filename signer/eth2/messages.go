package eth2

import (
	"fmt"

	"github.com/regent-signer/regent/signer/eth2/ssz"
)

// The message types below mirror the consensus-specs containers field for
// field, in declaration order. Their HashTreeRoot methods compute the SSZ
// hash_tree_root with the mainnet preset's limits. A value built by hand
// (not by Decode) may violate a limit; HashTreeRoot then returns an error
// wrapping ErrMalformed rather than a root.

func u64(v uint64) [32]byte { return ssz.Uint64Root(v) }

func sszErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
}

// Fork is the consensus Fork container as carried in fork_info.
type Fork struct {
	PreviousVersion Version
	CurrentVersion  Version
	Epoch           uint64
}

// ForkInfo is a request's fork_info: the fork and the chain's genesis
// validators root.
type ForkInfo struct {
	Fork                  Fork
	GenesisValidatorsRoot Root
}

// VersionAt returns the fork version the spec's get_domain uses for epoch:
// previous_version before fork.epoch, current_version from it on.
func (f ForkInfo) VersionAt(epoch uint64) Version {
	if epoch < f.Fork.Epoch {
		return f.Fork.PreviousVersion
	}
	return f.Fork.CurrentVersion
}

// Checkpoint is the consensus Checkpoint container.
type Checkpoint struct {
	Epoch uint64
	Root  Root
}

// HashTreeRoot returns hash_tree_root(c).
func (c Checkpoint) HashTreeRoot() Root {
	return ssz.ContainerRoot(u64(c.Epoch), c.Root)
}

// AttestationData is the consensus AttestationData container.
type AttestationData struct {
	Slot            uint64
	Index           uint64
	BeaconBlockRoot Root
	Source          Checkpoint
	Target          Checkpoint
}

// HashTreeRoot returns hash_tree_root(d).
func (d AttestationData) HashTreeRoot() Root {
	return ssz.ContainerRoot(u64(d.Slot), u64(d.Index), d.BeaconBlockRoot,
		d.Source.HashTreeRoot(), d.Target.HashTreeRoot())
}

// Attestation is the consensus Attestation container: the phase0 shape when
// CommitteeBits is nil, the Electra shape (EIP-7549) when it is set.
type Attestation struct {
	// AggregationBits is the SSZ-serialized bitlist, delimiter included.
	// Limit: 2048 bits (phase0) or 131072 bits (Electra).
	AggregationBits []byte
	Data            AttestationData
	Signature       BLSSignature
	// CommitteeBits is the Electra Bitvector[64]; nil before Electra.
	CommitteeBits *[MaxCommitteesPerSlot / 8]byte
}

// IsElectra reports whether a uses the Electra shape.
func (a Attestation) IsElectra() bool { return a.CommitteeBits != nil }

func (a Attestation) aggregationBitLimit() uint64 {
	if a.IsElectra() {
		return electraAggregationBitLimit
	}
	return MaxValidatorsPerCommittee
}

// HashTreeRoot returns hash_tree_root(a) under the shape a uses.
func (a Attestation) HashTreeRoot() (Root, error) {
	bitsRoot, err := ssz.BitlistRoot(a.AggregationBits, a.aggregationBitLimit())
	if err != nil {
		return Root{}, sszErr("aggregation_bits", err)
	}
	fields := [][32]byte{bitsRoot, a.Data.HashTreeRoot(), ssz.BytesRoot(a.Signature[:])}
	if a.IsElectra() {
		cb, err := ssz.BitvectorRoot(a.CommitteeBits[:], MaxCommitteesPerSlot)
		if err != nil {
			return Root{}, sszErr("committee_bits", err)
		}
		fields = append(fields, cb)
	}
	return ssz.ContainerRoot(fields...), nil
}

// AggregateAndProof is the consensus AggregateAndProof container (phase0 or
// Electra, following its Aggregate's shape).
type AggregateAndProof struct {
	AggregatorIndex uint64
	Aggregate       Attestation
	SelectionProof  BLSSignature
}

// HashTreeRoot returns hash_tree_root(a).
func (a AggregateAndProof) HashTreeRoot() (Root, error) {
	agg, err := a.Aggregate.HashTreeRoot()
	if err != nil {
		return Root{}, err
	}
	return ssz.ContainerRoot(u64(a.AggregatorIndex), agg, ssz.BytesRoot(a.SelectionProof[:])), nil
}

// BeaconBlockHeader is the consensus BeaconBlockHeader container. Its root
// equals the root of the block it summarises.
type BeaconBlockHeader struct {
	Slot          uint64
	ProposerIndex uint64
	ParentRoot    Root
	StateRoot     Root
	BodyRoot      Root
}

// HashTreeRoot returns hash_tree_root(h).
func (h BeaconBlockHeader) HashTreeRoot() Root {
	return ssz.ContainerRoot(u64(h.Slot), u64(h.ProposerIndex), h.ParentRoot, h.StateRoot, h.BodyRoot)
}

// SignedBeaconBlockHeader is the consensus SignedBeaconBlockHeader.
type SignedBeaconBlockHeader struct {
	Message   BeaconBlockHeader
	Signature BLSSignature
}

// HashTreeRoot returns hash_tree_root(s).
func (s SignedBeaconBlockHeader) HashTreeRoot() Root {
	return ssz.ContainerRoot(s.Message.HashTreeRoot(), ssz.BytesRoot(s.Signature[:]))
}

// ProposerSlashing is the consensus ProposerSlashing container.
type ProposerSlashing struct {
	SignedHeader1 SignedBeaconBlockHeader
	SignedHeader2 SignedBeaconBlockHeader
}

// HashTreeRoot returns hash_tree_root(p).
func (p ProposerSlashing) HashTreeRoot() Root {
	return ssz.ContainerRoot(p.SignedHeader1.HashTreeRoot(), p.SignedHeader2.HashTreeRoot())
}

// IndexedAttestation is the phase0 IndexedAttestation container
// (attesting_indices limited to 2048).
type IndexedAttestation struct {
	AttestingIndices []uint64
	Data             AttestationData
	Signature        BLSSignature
}

// HashTreeRoot returns hash_tree_root(i).
func (i IndexedAttestation) HashTreeRoot() (Root, error) {
	idx, err := ssz.Uint64ListRoot(i.AttestingIndices, MaxValidatorsPerCommittee)
	if err != nil {
		return Root{}, sszErr("attesting_indices", err)
	}
	return ssz.ContainerRoot(idx, i.Data.HashTreeRoot(), ssz.BytesRoot(i.Signature[:])), nil
}

// AttesterSlashing is the phase0 AttesterSlashing container.
type AttesterSlashing struct {
	Attestation1 IndexedAttestation
	Attestation2 IndexedAttestation
}

// HashTreeRoot returns hash_tree_root(a).
func (a AttesterSlashing) HashTreeRoot() (Root, error) {
	r1, err := a.Attestation1.HashTreeRoot()
	if err != nil {
		return Root{}, err
	}
	r2, err := a.Attestation2.HashTreeRoot()
	if err != nil {
		return Root{}, err
	}
	return ssz.ContainerRoot(r1, r2), nil
}

// Eth1Data is the consensus Eth1Data container.
type Eth1Data struct {
	DepositRoot  Root
	DepositCount uint64
	BlockHash    Root
}

// HashTreeRoot returns hash_tree_root(e).
func (e Eth1Data) HashTreeRoot() Root {
	return ssz.ContainerRoot(e.DepositRoot, u64(e.DepositCount), e.BlockHash)
}

// DepositData is the consensus DepositData container.
type DepositData struct {
	Pubkey                BLSPubkey
	WithdrawalCredentials Root
	Amount                uint64
	Signature             BLSSignature
}

// HashTreeRoot returns hash_tree_root(d).
func (d DepositData) HashTreeRoot() Root {
	return ssz.ContainerRoot(ssz.BytesRoot(d.Pubkey[:]), d.WithdrawalCredentials, u64(d.Amount), ssz.BytesRoot(d.Signature[:]))
}

// Deposit is the consensus Deposit container.
type Deposit struct {
	Proof [DepositContractTreeDepth + 1]Root
	Data  DepositData
}

// HashTreeRoot returns hash_tree_root(d).
func (d Deposit) HashTreeRoot() Root {
	proof := make([][32]byte, len(d.Proof))
	for i, p := range d.Proof {
		proof[i] = p
	}
	return ssz.ContainerRoot(ssz.VectorRoot(proof), d.Data.HashTreeRoot())
}

// VoluntaryExit is the consensus VoluntaryExit container.
type VoluntaryExit struct {
	Epoch          uint64
	ValidatorIndex uint64
}

// HashTreeRoot returns hash_tree_root(v).
func (v VoluntaryExit) HashTreeRoot() Root {
	return ssz.ContainerRoot(u64(v.Epoch), u64(v.ValidatorIndex))
}

// SignedVoluntaryExit is the consensus SignedVoluntaryExit container.
type SignedVoluntaryExit struct {
	Message   VoluntaryExit
	Signature BLSSignature
}

// HashTreeRoot returns hash_tree_root(s).
func (s SignedVoluntaryExit) HashTreeRoot() Root {
	return ssz.ContainerRoot(s.Message.HashTreeRoot(), ssz.BytesRoot(s.Signature[:]))
}

// SyncAggregate is the Altair SyncAggregate container.
type SyncAggregate struct {
	SyncCommitteeBits      [SyncCommitteeSize / 8]byte
	SyncCommitteeSignature BLSSignature
}

// HashTreeRoot returns hash_tree_root(s).
func (s SyncAggregate) HashTreeRoot() Root {
	// Bitvector[512] is byte aligned: its root is that of its 64 bytes.
	return ssz.ContainerRoot(ssz.BytesRoot(s.SyncCommitteeBits[:]), ssz.BytesRoot(s.SyncCommitteeSignature[:]))
}

// BeaconBlockBody is the phase0 BeaconBlockBody, or the Altair one when
// SyncAggregate is set.
type BeaconBlockBody struct {
	RandaoReveal      BLSSignature
	Eth1Data          Eth1Data
	Graffiti          Root
	ProposerSlashings []ProposerSlashing
	AttesterSlashings []AttesterSlashing
	Attestations      []Attestation
	Deposits          []Deposit
	VoluntaryExits    []SignedVoluntaryExit
	// SyncAggregate is set for Altair bodies, nil for phase0.
	SyncAggregate *SyncAggregate
}

// HashTreeRoot returns hash_tree_root(b).
func (b BeaconBlockBody) HashTreeRoot() (Root, error) {
	ps := make([][32]byte, len(b.ProposerSlashings))
	for i, p := range b.ProposerSlashings {
		ps[i] = p.HashTreeRoot()
	}
	psRoot, err := ssz.ListRoot(ps, MaxProposerSlashings)
	if err != nil {
		return Root{}, sszErr("proposer_slashings", err)
	}
	as := make([][32]byte, len(b.AttesterSlashings))
	for i, a := range b.AttesterSlashings {
		if as[i], err = a.HashTreeRoot(); err != nil {
			return Root{}, err
		}
	}
	asRoot, err := ssz.ListRoot(as, MaxAttesterSlashings)
	if err != nil {
		return Root{}, sszErr("attester_slashings", err)
	}
	atts := make([][32]byte, len(b.Attestations))
	for i, a := range b.Attestations {
		if a.IsElectra() {
			return Root{}, sszErr("attestations", fmt.Errorf("an Electra attestation cannot be in a phase0 or Altair body"))
		}
		if atts[i], err = a.HashTreeRoot(); err != nil {
			return Root{}, err
		}
	}
	attRoot, err := ssz.ListRoot(atts, MaxAttestations)
	if err != nil {
		return Root{}, sszErr("attestations", err)
	}
	deps := make([][32]byte, len(b.Deposits))
	for i, d := range b.Deposits {
		deps[i] = d.HashTreeRoot()
	}
	depRoot, err := ssz.ListRoot(deps, MaxDeposits)
	if err != nil {
		return Root{}, sszErr("deposits", err)
	}
	exits := make([][32]byte, len(b.VoluntaryExits))
	for i, e := range b.VoluntaryExits {
		exits[i] = e.HashTreeRoot()
	}
	exitRoot, err := ssz.ListRoot(exits, MaxVoluntaryExits)
	if err != nil {
		return Root{}, sszErr("voluntary_exits", err)
	}
	fields := [][32]byte{
		ssz.BytesRoot(b.RandaoReveal[:]), b.Eth1Data.HashTreeRoot(), b.Graffiti,
		psRoot, asRoot, attRoot, depRoot, exitRoot,
	}
	if b.SyncAggregate != nil {
		fields = append(fields, b.SyncAggregate.HashTreeRoot())
	}
	return ssz.ContainerRoot(fields...), nil
}

// BeaconBlock is the phase0 or Altair BeaconBlock container.
type BeaconBlock struct {
	Slot          uint64
	ProposerIndex uint64
	ParentRoot    Root
	StateRoot     Root
	Body          BeaconBlockBody
}

// Header returns the block's BeaconBlockHeader (body replaced by its root).
func (b BeaconBlock) Header() (BeaconBlockHeader, error) {
	bodyRoot, err := b.Body.HashTreeRoot()
	if err != nil {
		return BeaconBlockHeader{}, err
	}
	return BeaconBlockHeader{
		Slot: b.Slot, ProposerIndex: b.ProposerIndex,
		ParentRoot: b.ParentRoot, StateRoot: b.StateRoot, BodyRoot: bodyRoot,
	}, nil
}

// HashTreeRoot returns hash_tree_root(b).
func (b BeaconBlock) HashTreeRoot() (Root, error) {
	bodyRoot, err := b.Body.HashTreeRoot()
	if err != nil {
		return Root{}, err
	}
	return ssz.ContainerRoot(u64(b.Slot), u64(b.ProposerIndex), b.ParentRoot, b.StateRoot, bodyRoot), nil
}

// DepositMessage is the DEPOSIT request's object: the consensus
// DepositMessage container plus the genesis fork version its domain uses.
type DepositMessage struct {
	Pubkey                BLSPubkey
	WithdrawalCredentials Root
	Amount                uint64
	// GenesisForkVersion is not part of the hashed container.
	GenesisForkVersion Version
}

// HashTreeRoot returns hash_tree_root(DepositMessage(pubkey,
// withdrawal_credentials, amount)).
func (d DepositMessage) HashTreeRoot() Root {
	return ssz.ContainerRoot(ssz.BytesRoot(d.Pubkey[:]), d.WithdrawalCredentials, u64(d.Amount))
}

// SyncCommitteeMessage is the SYNC_COMMITTEE_MESSAGE request's object. The
// signed object is the beacon block root alone.
type SyncCommitteeMessage struct {
	BeaconBlockRoot Root
	Slot            uint64
}

// SyncAggregatorSelectionData is the Altair SyncAggregatorSelectionData.
type SyncAggregatorSelectionData struct {
	Slot              uint64
	SubcommitteeIndex uint64
}

// HashTreeRoot returns hash_tree_root(s).
func (s SyncAggregatorSelectionData) HashTreeRoot() Root {
	return ssz.ContainerRoot(u64(s.Slot), u64(s.SubcommitteeIndex))
}

// SyncCommitteeContribution is the Altair SyncCommitteeContribution.
type SyncCommitteeContribution struct {
	Slot              uint64
	BeaconBlockRoot   Root
	SubcommitteeIndex uint64
	// AggregationBits is the Bitvector[128] of the subcommittee.
	AggregationBits [syncSubcommitteeSize / 8]byte
	Signature       BLSSignature
}

// HashTreeRoot returns hash_tree_root(c).
func (c SyncCommitteeContribution) HashTreeRoot() Root {
	// Bitvector[128] is byte aligned: its root is that of its 16 bytes.
	return ssz.ContainerRoot(u64(c.Slot), c.BeaconBlockRoot, u64(c.SubcommitteeIndex),
		ssz.BytesRoot(c.AggregationBits[:]), ssz.BytesRoot(c.Signature[:]))
}

// ContributionAndProof is the Altair ContributionAndProof.
type ContributionAndProof struct {
	AggregatorIndex uint64
	Contribution    SyncCommitteeContribution
	SelectionProof  BLSSignature
}

// HashTreeRoot returns hash_tree_root(c).
func (c ContributionAndProof) HashTreeRoot() Root {
	return ssz.ContainerRoot(u64(c.AggregatorIndex), c.Contribution.HashTreeRoot(), ssz.BytesRoot(c.SelectionProof[:]))
}

// ValidatorRegistration is the builder-specs ValidatorRegistrationV1.
type ValidatorRegistration struct {
	FeeRecipient ExecutionAddress
	GasLimit     uint64
	Timestamp    uint64
	Pubkey       BLSPubkey
}

// HashTreeRoot returns hash_tree_root(v).
func (v ValidatorRegistration) HashTreeRoot() Root {
	return ssz.ContainerRoot(ssz.BytesRoot(v.FeeRecipient[:]), u64(v.GasLimit), u64(v.Timestamp), ssz.BytesRoot(v.Pubkey[:]))
}
