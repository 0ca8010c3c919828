package eth2

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Type is a Web3Signer eth2 signing type, exactly as it appears in the
// request's "type" field.
type Type string

// The signing types. Every one is supported by Decode.
const (
	TypeAggregationSlot                   Type = "AGGREGATION_SLOT"
	TypeAggregateAndProof                 Type = "AGGREGATE_AND_PROOF"
	TypeAggregateAndProofV2               Type = "AGGREGATE_AND_PROOF_V2"
	TypeAttestation                       Type = "ATTESTATION"
	TypeBlock                             Type = "BLOCK"
	TypeBlockV2                           Type = "BLOCK_V2"
	TypeDeposit                           Type = "DEPOSIT"
	TypeRandaoReveal                      Type = "RANDAO_REVEAL"
	TypeVoluntaryExit                     Type = "VOLUNTARY_EXIT"
	TypeSyncCommitteeMessage              Type = "SYNC_COMMITTEE_MESSAGE"
	TypeSyncCommitteeSelectionProof       Type = "SYNC_COMMITTEE_SELECTION_PROOF"
	TypeSyncCommitteeContributionAndProof Type = "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF"
	TypeValidatorRegistration             Type = "VALIDATOR_REGISTRATION"
)

// Types returns every supported signing type, in a stable order.
func Types() []Type {
	return []Type{
		TypeAggregationSlot, TypeAggregateAndProof, TypeAggregateAndProofV2,
		TypeAttestation, TypeBlock, TypeBlockV2, TypeDeposit, TypeRandaoReveal,
		TypeVoluntaryExit, TypeSyncCommitteeMessage, TypeSyncCommitteeSelectionProof,
		TypeSyncCommitteeContributionAndProof, TypeValidatorRegistration,
	}
}

// Valid reports whether t is a supported signing type.
func (t Type) Valid() bool {
	for _, k := range Types() {
		if t == k {
			return true
		}
	}
	return false
}

// needsForkInfo reports whether the type's domain depends on fork_info.
// DEPOSIT and VALIDATOR_REGISTRATION use fixed genesis-derived domains.
func (t Type) needsForkInfo() bool {
	return t != TypeDeposit && t != TypeValidatorRegistration
}

// ForkName names a consensus fork, as used in the "version" field of
// BLOCK_V2 and AGGREGATE_AND_PROOF_V2 requests.
type ForkName string

// The forks this package knows, oldest first.
const (
	ForkPhase0    ForkName = "PHASE0"
	ForkAltair    ForkName = "ALTAIR"
	ForkBellatrix ForkName = "BELLATRIX"
	ForkCapella   ForkName = "CAPELLA"
	ForkDeneb     ForkName = "DENEB"
	ForkElectra   ForkName = "ELECTRA"
	ForkFulu      ForkName = "FULU"
)

// Forks returns the known forks, oldest first.
func Forks() []ForkName {
	return []ForkName{ForkPhase0, ForkAltair, ForkBellatrix, ForkCapella, ForkDeneb, ForkElectra, ForkFulu}
}

// ParseForkName maps a version name to a ForkName. Matching ignores case
// ("ELECTRA" and "electra" are both accepted: Web3Signer clients send upper
// case, the beacon API uses lower case). Anything else is ErrUnknownFork.
func ParseForkName(s string) (ForkName, error) {
	for _, f := range Forks() {
		if strings.EqualFold(s, string(f)) {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownFork, s)
}

// order returns the fork's position, oldest = 0.
func (f ForkName) order() int {
	for i, k := range Forks() {
		if k == f {
			return i
		}
	}
	return -1
}

// AtLeast reports whether f is other or a later fork.
func (f ForkName) AtLeast(other ForkName) bool { return f.order() >= other.order() }

// Root is a 32-byte SSZ root or hash.
type Root [32]byte

// String returns the 0x-prefixed lower-case hex form.
func (r Root) String() string { return hexString(r[:]) }

// Version is a 4-byte fork version.
type Version [4]byte

// String returns the 0x-prefixed lower-case hex form.
func (v Version) String() string { return hexString(v[:]) }

// DomainType is the 4-byte domain type that prefixes a signing domain. It is
// held as the big-endian reading of those bytes, so the spec's
// DomainType('0x01000000') is DomainType(0x01000000).
type DomainType uint32

// Bytes returns the four bytes of the domain type, as they appear in a
// domain.
func (d DomainType) Bytes() [4]byte {
	return [4]byte{byte(d >> 24), byte(d >> 16), byte(d >> 8), byte(d)}
}

// String returns the 0x-prefixed lower-case hex form of the four bytes.
func (d DomainType) String() string {
	b := d.Bytes()
	return hexString(b[:])
}

// BLSPubkey is a compressed BLS12-381 G1 public key.
type BLSPubkey [48]byte

// String returns the 0x-prefixed lower-case hex form.
func (p BLSPubkey) String() string { return hexString(p[:]) }

// BLSSignature is a compressed BLS12-381 G2 signature.
type BLSSignature [96]byte

// String returns the 0x-prefixed lower-case hex form.
func (s BLSSignature) String() string { return hexString(s[:]) }

// ExecutionAddress is a 20-byte execution-layer address.
type ExecutionAddress [20]byte

// String returns the 0x-prefixed lower-case hex form.
func (a ExecutionAddress) String() string { return hexString(a[:]) }

func hexString(b []byte) string { return "0x" + hex.EncodeToString(b) }

// Domain types from the consensus specs (phase0, altair) and the builder
// specs.
const (
	DomainBeaconProposer              DomainType = 0x00000000
	DomainBeaconAttester              DomainType = 0x01000000
	DomainRandao                      DomainType = 0x02000000
	DomainDeposit                     DomainType = 0x03000000
	DomainVoluntaryExit               DomainType = 0x04000000
	DomainSelectionProof              DomainType = 0x05000000
	DomainAggregateAndProof           DomainType = 0x06000000
	DomainSyncCommittee               DomainType = 0x07000000
	DomainSyncCommitteeSelectionProof DomainType = 0x08000000
	DomainContributionAndProof        DomainType = 0x09000000
	DomainApplicationBuilder          DomainType = 0x00000001
)

// domainTypeName returns the spec name of a domain type, for Explain.
func domainTypeName(d DomainType) string {
	switch d {
	case DomainBeaconProposer:
		return "DOMAIN_BEACON_PROPOSER"
	case DomainBeaconAttester:
		return "DOMAIN_BEACON_ATTESTER"
	case DomainRandao:
		return "DOMAIN_RANDAO"
	case DomainDeposit:
		return "DOMAIN_DEPOSIT"
	case DomainVoluntaryExit:
		return "DOMAIN_VOLUNTARY_EXIT"
	case DomainSelectionProof:
		return "DOMAIN_SELECTION_PROOF"
	case DomainAggregateAndProof:
		return "DOMAIN_AGGREGATE_AND_PROOF"
	case DomainSyncCommittee:
		return "DOMAIN_SYNC_COMMITTEE"
	case DomainSyncCommitteeSelectionProof:
		return "DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF"
	case DomainContributionAndProof:
		return "DOMAIN_CONTRIBUTION_AND_PROOF"
	case DomainApplicationBuilder:
		return "DOMAIN_APPLICATION_BUILDER"
	default:
		return "unknown"
	}
}

// Mainnet-preset constants that shape SSZ types and epoch arithmetic. Every
// public network (mainnet, Sepolia, Holesky, Hoodi) uses the mainnet preset;
// the minimal preset and Gnosis (SLOTS_PER_EPOCH 16) are not supported.
const (
	SlotsPerEpoch              = 32
	MaxValidatorsPerCommittee  = 2048
	MaxCommitteesPerSlot       = 64
	MaxProposerSlashings       = 16
	MaxAttesterSlashings       = 2
	MaxAttestations            = 128
	MaxDeposits                = 16
	MaxVoluntaryExits          = 16
	DepositContractTreeDepth   = 32
	SyncCommitteeSize          = 512
	SyncCommitteeSubnetCount   = 4
	syncSubcommitteeSize       = SyncCommitteeSize / SyncCommitteeSubnetCount
	electraAggregationBitLimit = MaxValidatorsPerCommittee * MaxCommitteesPerSlot
)

// SignatureDST is the BLS ciphersuite Ethereum consensus signatures use:
// minimal-pubkey-size (G1 public keys, G2 signatures), proof-of-possession
// scheme. A signer signs the 32-byte signing root with it, e.g. with blst:
// new(blst.P2Affine).Sign(sk, root[:], []byte(SignatureDST)).
const SignatureDST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"

// FarFutureEpoch is the spec's FAR_FUTURE_EPOCH: a fork not scheduled.
const FarFutureEpoch = ^uint64(0)
