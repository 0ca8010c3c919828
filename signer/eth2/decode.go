package eth2

import (
	"errors"

	"github.com/regent-signer/regent/signer/eth2/ssz"
)

// Decode parses and validates a Web3Signer eth2 signing request body (the
// JSON of POST /api/v1/eth2/sign/{pubkey}) without binding it to a network.
//
// Decoding is strict: the body must be one JSON object of at most
// MaxBodyBytes, member names match exactly, duplicate and unknown members
// are refused, uint64 values are decimal strings, byte values are
// 0x-prefixed hex of the exact length, lists and bitlists respect the
// mainnet preset's limits. On error the returned Request is nil and the
// error wraps one of the package's sentinels and names the field.
//
// Without a network, SigningRoot refuses VALIDATOR_REGISTRATION and
// VOLUNTARY_EXIT (ErrNetworkRequired), whose domains depend on chain
// parameters the request does not carry. Use DecodeForNetwork in a signer.
//
// body is not modified or retained.
func Decode(body []byte) (*Request, error) { return decode(body, nil) }

// DecodeForNetwork is Decode for a signer that serves network n. In
// addition it refuses (ErrWrongNetwork) a fork_info whose
// genesis_validators_root is not n's (when n sets one) and a DEPOSIT whose
// genesis_fork_version is not n's, and it lets SigningRoot compute the
// builder domain and the EIP-7044 exit domain.
func DecodeForNetwork(body []byte, n Network) (*Request, error) { return decode(body, &n) }

// payloadField is the body member that carries each type's object.
func payloadField(t Type) string {
	switch t {
	case TypeAggregationSlot:
		return "aggregation_slot"
	case TypeAggregateAndProof, TypeAggregateAndProofV2:
		return "aggregate_and_proof"
	case TypeAttestation:
		return "attestation"
	case TypeBlock:
		return "block"
	case TypeBlockV2:
		return "beacon_block"
	case TypeDeposit:
		return "deposit"
	case TypeRandaoReveal:
		return "randao_reveal"
	case TypeVoluntaryExit:
		return "voluntary_exit"
	case TypeSyncCommitteeMessage:
		return "sync_committee_message"
	case TypeSyncCommitteeSelectionProof:
		return "sync_aggregator_selection_data"
	case TypeSyncCommitteeContributionAndProof:
		return "contribution_and_proof"
	case TypeValidatorRegistration:
		return "validator_registration"
	}
	return ""
}

func decode(body []byte, net *Network) (*Request, error) {
	if len(body) > MaxBodyBytes {
		return nil, fieldErr(ErrTooLarge, "", "%d bytes exceed the limit of %d", len(body), MaxBodyBytes)
	}
	top, err := parseObject(body, "", true)
	if err != nil {
		return nil, err
	}
	rawType, err := top.req("type")
	if err != nil {
		return nil, err
	}
	typeName, err := str(rawType, "type")
	if err != nil {
		return nil, err
	}
	r := &Request{Type: Type(typeName)}
	if !r.Type.Valid() {
		return nil, fieldErr(ErrUnknownType, "type", "%q is not a supported signing type", typeName)
	}

	if err := r.readSigningRoot(top); err != nil {
		return nil, err
	}
	if raw, ok := top.opt("fork_info"); ok {
		o, err := parseObject(raw, "fork_info", false)
		if err != nil {
			return nil, err
		}
		fi, err := readForkInfo(o)
		if err != nil {
			return nil, err
		}
		r.ForkInfo = &fi
	} else if r.Type.needsForkInfo() {
		return nil, fieldErr(ErrMissingForkInfo, "fork_info", "%s requests must carry fork_info", r.Type)
	}

	field := payloadField(r.Type)
	payload, err := top.obj(field)
	if err != nil {
		return nil, err
	}
	if err := r.readPayload(payload); err != nil {
		return nil, err
	}
	if err := top.done(); err != nil {
		return nil, err
	}
	if net != nil {
		if err := r.checkNetwork(*net); err != nil {
			return nil, err
		}
		n := *net
		r.network = &n
	}
	return r, nil
}

func (r *Request) readSigningRoot(top *object) error {
	camel, hasCamel := top.opt("signingRoot")
	snake, hasSnake := top.opt("signing_root")
	if hasCamel && hasSnake {
		return malformed("signingRoot", "both signingRoot and signing_root are present")
	}
	raw, path := camel, "signingRoot"
	if hasSnake {
		raw, path = snake, "signing_root"
	} else if !hasCamel {
		return nil
	}
	b, err := parseHex(raw, path, 32, 0)
	if err != nil {
		return err
	}
	root := Root(b)
	r.ClientSigningRoot = &root
	return nil
}

func (r *Request) checkNetwork(n Network) error {
	if r.ForkInfo != nil && n.GenesisValidatorsRoot != (Root{}) && r.ForkInfo.GenesisValidatorsRoot != n.GenesisValidatorsRoot {
		return fieldErr(ErrWrongNetwork, "fork_info.genesis_validators_root",
			"request is for genesis validators root %s, this signer serves %s (%s)",
			r.ForkInfo.GenesisValidatorsRoot, n.GenesisValidatorsRoot, n.Name)
	}
	if r.Deposit != nil && r.Deposit.GenesisForkVersion != n.GenesisForkVersion {
		return fieldErr(ErrWrongNetwork, "deposit.genesis_fork_version",
			"deposit is for genesis fork version %s, this signer serves %s (%s)",
			r.Deposit.GenesisForkVersion, n.GenesisForkVersion, n.Name)
	}
	return nil
}

func (r *Request) readPayload(o *object) error {
	var err error
	switch r.Type {
	case TypeAggregationSlot:
		var s AggregationSlot
		if s.Slot, err = o.u64("slot"); err == nil {
			r.AggregationSlot = &s
		}
	case TypeAggregateAndProof:
		var a AggregateAndProof
		if a, err = readAggregateAndProof(o, shapeAuto); err == nil {
			r.AggregateAndProof = &a
		}
	case TypeAggregateAndProofV2:
		err = r.readAggregateAndProofV2(o)
	case TypeAttestation:
		var d AttestationData
		if d, err = readAttestationData(o); err == nil {
			r.Attestation = &d
		}
	case TypeBlock:
		var b BeaconBlock
		if b, err = readBeaconBlock(o, false); err == nil {
			r.Block = &b
		}
	case TypeBlockV2:
		err = r.readBlockV2(o)
	case TypeDeposit:
		var d DepositMessage
		if d, err = readDepositMessage(o); err == nil {
			r.Deposit = &d
		}
	case TypeRandaoReveal:
		var v RandaoReveal
		if v.Epoch, err = o.u64("epoch"); err == nil {
			r.RandaoReveal = &v
		}
	case TypeVoluntaryExit:
		var v VoluntaryExit
		if v, err = readVoluntaryExit(o); err == nil {
			r.VoluntaryExit = &v
		}
	case TypeSyncCommitteeMessage:
		var m SyncCommitteeMessage
		if m, err = readSyncCommitteeMessage(o); err == nil {
			r.SyncCommitteeMessage = &m
		}
	case TypeSyncCommitteeSelectionProof:
		var s SyncAggregatorSelectionData
		if s, err = readSyncAggregatorSelectionData(o); err == nil {
			r.SyncAggregatorSelectionData = &s
		}
	case TypeSyncCommitteeContributionAndProof:
		var c ContributionAndProof
		if c, err = readContributionAndProof(o); err == nil {
			r.ContributionAndProof = &c
		}
	case TypeValidatorRegistration:
		var v ValidatorRegistration
		if v, err = readValidatorRegistration(o); err == nil {
			r.ValidatorRegistration = &v
		}
	default:
		return fieldErr(ErrUnknownType, "type", "%q is not a supported signing type", r.Type)
	}
	if err != nil {
		return err
	}
	return o.done()
}

// readVersion reads a fork "version" member.
func readVersion(o *object) (ForkName, error) {
	raw, err := o.req("version")
	if err != nil {
		return "", err
	}
	path := child(o.path, "version")
	s, err := str(raw, path)
	if err != nil {
		return "", err
	}
	f, err := ParseForkName(s)
	if err != nil {
		return "", fieldErr(ErrUnknownFork, path, "%q is not a known fork (known: PHASE0, ALTAIR, BELLATRIX, CAPELLA, DENEB, ELECTRA, FULU)", s)
	}
	return f, nil
}

// readAggregateAndProofV2 accepts the versioned form {version, data} and,
// as Web3Signer does, the bare AggregateAndProof (shape chosen by the
// presence of committee_bits).
func (r *Request) readAggregateAndProofV2(o *object) error {
	if !o.has("version") && !o.has("data") {
		a, err := readAggregateAndProof(o, shapeAuto)
		if err != nil {
			return err
		}
		r.AggregateAndProof = &a
		return nil
	}
	f, err := readVersion(o)
	if err != nil {
		return err
	}
	data, err := o.obj("data")
	if err != nil {
		return err
	}
	shape := shapePhase0
	if f.AtLeast(ForkElectra) {
		shape = shapeElectra
	}
	a, err := readAggregateAndProof(data, shape)
	if err != nil {
		return err
	}
	if err := data.done(); err != nil {
		return err
	}
	r.Version = f
	r.AggregateAndProof = &a
	return nil
}

// readBlockV2 reads beacon_block: {version, block | block_header}.
func (r *Request) readBlockV2(o *object) error {
	f, err := readVersion(o)
	if err != nil {
		return err
	}
	hasBlock, hasHeader := o.has("block"), o.has("block_header")
	switch {
	case hasBlock && hasHeader:
		return malformed(o.path, "both block and block_header are present")
	case hasHeader:
		h, err := o.obj("block_header")
		if err != nil {
			return err
		}
		hdr, err := readBeaconBlockHeader(h)
		if err != nil {
			return err
		}
		if err := h.done(); err != nil {
			return err
		}
		r.BlockHeader = &hdr
	case hasBlock:
		if f.AtLeast(ForkBellatrix) {
			return fieldErr(ErrUnsupported, child(o.path, "block"),
				"full %s blocks are not accepted; send the block_header form (as Web3Signer requires from BELLATRIX on)", f)
		}
		b, err := o.obj("block")
		if err != nil {
			return err
		}
		blk, err := readBeaconBlock(b, f == ForkAltair)
		if err != nil {
			return err
		}
		r.Block = &blk
	default:
		return malformed(o.path, "one of block or block_header is required")
	}
	r.Version = f
	return nil
}

func readForkInfo(o *object) (ForkInfo, error) {
	var fi ForkInfo
	f, err := o.obj("fork")
	if err != nil {
		return fi, err
	}
	if fi.Fork.PreviousVersion, err = f.version("previous_version"); err != nil {
		return fi, err
	}
	if fi.Fork.CurrentVersion, err = f.version("current_version"); err != nil {
		return fi, err
	}
	if fi.Fork.Epoch, err = f.u64("epoch"); err != nil {
		return fi, err
	}
	if err := f.done(); err != nil {
		return fi, err
	}
	if fi.GenesisValidatorsRoot, err = o.root("genesis_validators_root"); err != nil {
		return fi, err
	}
	return fi, o.done()
}

func readCheckpoint(o *object) (Checkpoint, error) {
	var c Checkpoint
	var err error
	if c.Epoch, err = o.u64("epoch"); err != nil {
		return c, err
	}
	if c.Root, err = o.root("root"); err != nil {
		return c, err
	}
	return c, o.done()
}

// readAttestationData reads an AttestationData; the caller checks o.done.
func readAttestationData(o *object) (AttestationData, error) {
	var d AttestationData
	var err error
	if d.Slot, err = o.u64("slot"); err != nil {
		return d, err
	}
	if d.Index, err = o.u64("index"); err != nil {
		return d, err
	}
	if d.BeaconBlockRoot, err = o.root("beacon_block_root"); err != nil {
		return d, err
	}
	for _, cp := range []struct {
		name string
		dst  *Checkpoint
	}{{"source", &d.Source}, {"target", &d.Target}} {
		c, err := o.obj(cp.name)
		if err != nil {
			return d, err
		}
		if *cp.dst, err = readCheckpoint(c); err != nil {
			return d, err
		}
	}
	return d, nil
}

// nestedAttestationData reads member name as a complete AttestationData.
func nestedAttestationData(o *object, name string) (AttestationData, error) {
	c, err := o.obj(name)
	if err != nil {
		return AttestationData{}, err
	}
	d, err := readAttestationData(c)
	if err != nil {
		return d, err
	}
	return d, c.done()
}

// attestationShape says which Attestation container a field must hold.
type attestationShape int

const (
	// shapeAuto: Electra if committee_bits is present, phase0 otherwise.
	shapeAuto attestationShape = iota
	shapePhase0
	shapeElectra
)

func readAttestation(o *object, shape attestationShape) (Attestation, error) {
	var a Attestation
	hasCB := o.has("committee_bits")
	switch {
	case shape == shapePhase0 && hasCB:
		return a, malformed(child(o.path, "committee_bits"), "committee_bits is an Electra field; this attestation must have the phase0 shape")
	case shape == shapeElectra && !hasCB:
		return a, malformed(child(o.path, "committee_bits"), "missing required field (Electra attestation)")
	}
	if hasCB {
		b, err := o.bytesN("committee_bits", MaxCommitteesPerSlot/8)
		if err != nil {
			return a, err
		}
		cb := [MaxCommitteesPerSlot / 8]byte(b)
		a.CommitteeBits = &cb
	}
	raw, err := o.req("aggregation_bits")
	if err != nil {
		return a, err
	}
	path := child(o.path, "aggregation_bits")
	limit := a.aggregationBitLimit()
	bits, err := parseHex(raw, path, -1, int(limit/8+1))
	if err != nil {
		return a, err
	}
	if n, err := ssz.BitlistLen(bits); err != nil {
		return a, malformed(path, "%v", errors.Unwrap(err))
	} else if n > limit {
		return a, malformed(path, "bitlist of %d bits exceeds the limit of %d", n, limit)
	}
	a.AggregationBits = bits
	if a.Data, err = nestedAttestationData(o, "data"); err != nil {
		return a, err
	}
	if a.Signature, err = o.signature("signature"); err != nil {
		return a, err
	}
	return a, o.done()
}

// readAggregateAndProof reads an AggregateAndProof; the caller checks o.done.
func readAggregateAndProof(o *object, shape attestationShape) (AggregateAndProof, error) {
	var a AggregateAndProof
	var err error
	if a.AggregatorIndex, err = o.u64("aggregator_index"); err != nil {
		return a, err
	}
	agg, err := o.obj("aggregate")
	if err != nil {
		return a, err
	}
	if a.Aggregate, err = readAttestation(agg, shape); err != nil {
		return a, err
	}
	if a.SelectionProof, err = o.signature("selection_proof"); err != nil {
		return a, err
	}
	return a, nil
}

// readBeaconBlockHeader reads a header; the caller checks o.done.
func readBeaconBlockHeader(o *object) (BeaconBlockHeader, error) {
	var h BeaconBlockHeader
	var err error
	if h.Slot, err = o.u64("slot"); err != nil {
		return h, err
	}
	if h.ProposerIndex, err = o.u64("proposer_index"); err != nil {
		return h, err
	}
	if h.ParentRoot, err = o.root("parent_root"); err != nil {
		return h, err
	}
	if h.StateRoot, err = o.root("state_root"); err != nil {
		return h, err
	}
	if h.BodyRoot, err = o.root("body_root"); err != nil {
		return h, err
	}
	return h, nil
}

func readSignedBeaconBlockHeader(o *object) (SignedBeaconBlockHeader, error) {
	var s SignedBeaconBlockHeader
	m, err := o.obj("message")
	if err != nil {
		return s, err
	}
	if s.Message, err = readBeaconBlockHeader(m); err != nil {
		return s, err
	}
	if err := m.done(); err != nil {
		return s, err
	}
	if s.Signature, err = o.signature("signature"); err != nil {
		return s, err
	}
	return s, o.done()
}

func readIndexedAttestation(o *object) (IndexedAttestation, error) {
	var ia IndexedAttestation
	elems, path, err := o.array("attesting_indices", MaxValidatorsPerCommittee)
	if err != nil {
		return ia, err
	}
	ia.AttestingIndices = make([]uint64, len(elems))
	for i, e := range elems {
		if ia.AttestingIndices[i], err = parseUint64(e, index(path, i)); err != nil {
			return ia, err
		}
	}
	if ia.Data, err = nestedAttestationData(o, "data"); err != nil {
		return ia, err
	}
	if ia.Signature, err = o.signature("signature"); err != nil {
		return ia, err
	}
	return ia, o.done()
}

// readList reads member name as an array of objects, each decoded by read.
func readList[T any](o *object, name string, maxLen int, read func(*object) (T, error)) ([]T, error) {
	elems, path, err := o.array(name, maxLen)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(elems))
	for i, e := range elems {
		eo, err := parseObject(e, index(path, i), false)
		if err != nil {
			return nil, err
		}
		if out[i], err = read(eo); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readBeaconBlock(o *object, altair bool) (BeaconBlock, error) {
	var b BeaconBlock
	var err error
	if b.Slot, err = o.u64("slot"); err != nil {
		return b, err
	}
	if b.ProposerIndex, err = o.u64("proposer_index"); err != nil {
		return b, err
	}
	if b.ParentRoot, err = o.root("parent_root"); err != nil {
		return b, err
	}
	if b.StateRoot, err = o.root("state_root"); err != nil {
		return b, err
	}
	body, err := o.obj("body")
	if err != nil {
		return b, err
	}
	if b.Body, err = readBeaconBlockBody(body, altair); err != nil {
		return b, err
	}
	return b, o.done()
}

func readBeaconBlockBody(o *object, altair bool) (BeaconBlockBody, error) {
	var b BeaconBlockBody
	var err error
	if b.RandaoReveal, err = o.signature("randao_reveal"); err != nil {
		return b, err
	}
	e, err := o.obj("eth1_data")
	if err != nil {
		return b, err
	}
	if b.Eth1Data.DepositRoot, err = e.root("deposit_root"); err != nil {
		return b, err
	}
	if b.Eth1Data.DepositCount, err = e.u64("deposit_count"); err != nil {
		return b, err
	}
	if b.Eth1Data.BlockHash, err = e.root("block_hash"); err != nil {
		return b, err
	}
	if err := e.done(); err != nil {
		return b, err
	}
	if b.Graffiti, err = o.root("graffiti"); err != nil {
		return b, err
	}
	if b.ProposerSlashings, err = readList(o, "proposer_slashings", MaxProposerSlashings, readProposerSlashing); err != nil {
		return b, err
	}
	if b.AttesterSlashings, err = readList(o, "attester_slashings", MaxAttesterSlashings, readAttesterSlashing); err != nil {
		return b, err
	}
	if b.Attestations, err = readList(o, "attestations", MaxAttestations, func(a *object) (Attestation, error) {
		return readAttestation(a, shapePhase0)
	}); err != nil {
		return b, err
	}
	if b.Deposits, err = readList(o, "deposits", MaxDeposits, readDeposit); err != nil {
		return b, err
	}
	if b.VoluntaryExits, err = readList(o, "voluntary_exits", MaxVoluntaryExits, readSignedVoluntaryExit); err != nil {
		return b, err
	}
	if altair {
		s, err := o.obj("sync_aggregate")
		if err != nil {
			return b, err
		}
		var sa SyncAggregate
		bits, err := s.bytesN("sync_committee_bits", SyncCommitteeSize/8)
		if err != nil {
			return b, err
		}
		sa.SyncCommitteeBits = [SyncCommitteeSize / 8]byte(bits)
		if sa.SyncCommitteeSignature, err = s.signature("sync_committee_signature"); err != nil {
			return b, err
		}
		if err := s.done(); err != nil {
			return b, err
		}
		b.SyncAggregate = &sa
	}
	return b, o.done()
}

func readProposerSlashing(o *object) (ProposerSlashing, error) {
	var p ProposerSlashing
	for _, h := range []struct {
		name string
		dst  *SignedBeaconBlockHeader
	}{{"signed_header_1", &p.SignedHeader1}, {"signed_header_2", &p.SignedHeader2}} {
		ho, err := o.obj(h.name)
		if err != nil {
			return p, err
		}
		if *h.dst, err = readSignedBeaconBlockHeader(ho); err != nil {
			return p, err
		}
	}
	return p, o.done()
}

func readAttesterSlashing(o *object) (AttesterSlashing, error) {
	var a AttesterSlashing
	for _, ia := range []struct {
		name string
		dst  *IndexedAttestation
	}{{"attestation_1", &a.Attestation1}, {"attestation_2", &a.Attestation2}} {
		io, err := o.obj(ia.name)
		if err != nil {
			return a, err
		}
		if *ia.dst, err = readIndexedAttestation(io); err != nil {
			return a, err
		}
	}
	return a, o.done()
}

func readDeposit(o *object) (Deposit, error) {
	var d Deposit
	elems, path, err := o.array("proof", DepositContractTreeDepth+1)
	if err != nil {
		return d, err
	}
	if len(elems) != DepositContractTreeDepth+1 {
		return d, malformed(path, "want exactly %d proof elements, got %d", DepositContractTreeDepth+1, len(elems))
	}
	for i, e := range elems {
		b, err := parseHex(e, index(path, i), 32, 0)
		if err != nil {
			return d, err
		}
		d.Proof[i] = Root(b)
	}
	do, err := o.obj("data")
	if err != nil {
		return d, err
	}
	if d.Data.Pubkey, err = do.pubkey("pubkey"); err != nil {
		return d, err
	}
	if d.Data.WithdrawalCredentials, err = do.root("withdrawal_credentials"); err != nil {
		return d, err
	}
	if d.Data.Amount, err = do.u64("amount"); err != nil {
		return d, err
	}
	if d.Data.Signature, err = do.signature("signature"); err != nil {
		return d, err
	}
	if err := do.done(); err != nil {
		return d, err
	}
	return d, o.done()
}

func readVoluntaryExit(o *object) (VoluntaryExit, error) {
	var v VoluntaryExit
	var err error
	if v.Epoch, err = o.u64("epoch"); err != nil {
		return v, err
	}
	v.ValidatorIndex, err = o.u64("validator_index")
	return v, err
}

func readSignedVoluntaryExit(o *object) (SignedVoluntaryExit, error) {
	var s SignedVoluntaryExit
	m, err := o.obj("message")
	if err != nil {
		return s, err
	}
	if s.Message, err = readVoluntaryExit(m); err != nil {
		return s, err
	}
	if err := m.done(); err != nil {
		return s, err
	}
	if s.Signature, err = o.signature("signature"); err != nil {
		return s, err
	}
	return s, o.done()
}

func readDepositMessage(o *object) (DepositMessage, error) {
	var d DepositMessage
	var err error
	if d.Pubkey, err = o.pubkey("pubkey"); err != nil {
		return d, err
	}
	if d.WithdrawalCredentials, err = o.root("withdrawal_credentials"); err != nil {
		return d, err
	}
	if d.Amount, err = o.u64("amount"); err != nil {
		return d, err
	}
	d.GenesisForkVersion, err = o.version("genesis_fork_version")
	return d, err
}

func readSyncCommitteeMessage(o *object) (SyncCommitteeMessage, error) {
	var m SyncCommitteeMessage
	var err error
	if m.BeaconBlockRoot, err = o.root("beacon_block_root"); err != nil {
		return m, err
	}
	m.Slot, err = o.u64("slot")
	return m, err
}

func readSyncAggregatorSelectionData(o *object) (SyncAggregatorSelectionData, error) {
	var s SyncAggregatorSelectionData
	var err error
	if s.Slot, err = o.u64("slot"); err != nil {
		return s, err
	}
	s.SubcommitteeIndex, err = o.u64("subcommittee_index")
	return s, err
}

func readContributionAndProof(o *object) (ContributionAndProof, error) {
	var c ContributionAndProof
	var err error
	if c.AggregatorIndex, err = o.u64("aggregator_index"); err != nil {
		return c, err
	}
	if c.SelectionProof, err = o.signature("selection_proof"); err != nil {
		return c, err
	}
	co, err := o.obj("contribution")
	if err != nil {
		return c, err
	}
	k := &c.Contribution
	if k.Slot, err = co.u64("slot"); err != nil {
		return c, err
	}
	if k.BeaconBlockRoot, err = co.root("beacon_block_root"); err != nil {
		return c, err
	}
	if k.SubcommitteeIndex, err = co.u64("subcommittee_index"); err != nil {
		return c, err
	}
	bits, err := co.bytesN("aggregation_bits", syncSubcommitteeSize/8)
	if err != nil {
		return c, err
	}
	k.AggregationBits = [syncSubcommitteeSize / 8]byte(bits)
	if k.Signature, err = co.signature("signature"); err != nil {
		return c, err
	}
	return c, co.done()
}

func readValidatorRegistration(o *object) (ValidatorRegistration, error) {
	var v ValidatorRegistration
	b, err := o.bytesN("fee_recipient", 20)
	if err != nil {
		return v, err
	}
	v.FeeRecipient = ExecutionAddress(b)
	if v.GasLimit, err = o.u64("gas_limit"); err != nil {
		return v, err
	}
	if v.Timestamp, err = o.u64("timestamp"); err != nil {
		return v, err
	}
	v.Pubkey, err = o.pubkey("pubkey")
	return v, err
}
