#!/usr/bin/env python3
"""Generate example eth2 signing requests and their expected signing roots.

This is an independent reference for the Go package: a generic,
schema-driven SSZ merkleizer (the whole padded tree is materialised, no
zero-hash shortcuts) and the domain rules, both written from the
consensus-specs / builder-specs definitions. It shares no code with the Go
implementation. It writes:

  requests/*.json   request bodies in the Web3Signer eth2 API shape
  vectors.json      for each body: network, domain, object root, signing root

Run:  python3 gen_vectors.py [--out DIR]   (default DIR: this directory)
Deterministic: the same script always writes the same files; the Go test
TestVectorsAreRegenerable checks that the committed files match.
"""

import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def sha256(b):
    return hashlib.sha256(b).digest()


# ---------------------------------------------------------------- SSZ ------

def next_pow2(n):
    p = 1
    while p < n:
        p *= 2
    return p


def merkleize(chunks, limit=None):
    count = len(chunks) if limit is None else limit
    assert len(chunks) <= count, (len(chunks), count)
    width = next_pow2(max(count, 1))
    layer = list(chunks) + [b"\x00" * 32] * (width - len(chunks))
    while len(layer) > 1:
        layer = [sha256(layer[i] + layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]


def pack(data):
    if len(data) % 32:
        data = data + b"\x00" * (32 - len(data) % 32)
    return [data[i:i + 32] for i in range(0, len(data), 32)]


def mix_in_length(root, n):
    return sha256(root + n.to_bytes(32, "little"))


def unhex(s, n=None):
    assert s.startswith("0x"), s
    b = bytes.fromhex(s[2:])
    if n is not None:
        assert len(b) == n, (s, n)
    return b


class Uint64:
    basic = True

    def serialize(self, v):
        assert isinstance(v, str) and v.isdigit()
        return int(v).to_bytes(8, "little")

    def htr(self, v):
        return merkleize(pack(self.serialize(v)))


class ByteVector:
    basic = False

    def __init__(self, n):
        self.n = n

    def htr(self, v):
        return merkleize(pack(unhex(v, self.n)))


class Container:
    basic = False

    def __init__(self, *fields):
        self.fields = fields

    def htr(self, v):
        assert set(v) == {name for name, _ in self.fields}, (sorted(v), self.fields)
        return merkleize([t.htr(v[name]) for name, t in self.fields])


class List:
    basic = False

    def __init__(self, elem, limit):
        self.elem, self.limit = elem, limit

    def htr(self, v):
        assert len(v) <= self.limit
        if self.elem.basic:
            data = b"".join(self.elem.serialize(x) for x in v)
            root = merkleize(pack(data), (self.limit * 8 + 31) // 32)
        else:
            root = merkleize([self.elem.htr(x) for x in v], self.limit)
        return mix_in_length(root, len(v))


class Vector:
    basic = False

    def __init__(self, elem, n):
        self.elem, self.n = elem, n

    def htr(self, v):
        assert len(v) == self.n
        return merkleize([self.elem.htr(x) for x in v])


def bits_to_bytes(bits):
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


class Bitlist:
    basic = False

    def __init__(self, limit):
        self.limit = limit

    def htr(self, v):
        raw = unhex(v)
        bits = [(raw[i // 8] >> (i % 8)) & 1 for i in range(8 * len(raw))]
        last = max(i for i, bit in enumerate(bits) if bit)  # the delimiter
        assert last >= 8 * (len(raw) - 1)
        bits = bits[:last]
        assert len(bits) <= self.limit
        root = merkleize(pack(bits_to_bytes(bits)), (self.limit + 255) // 256)
        return mix_in_length(root, len(bits))


class Bitvector:
    basic = False

    def __init__(self, n):
        self.n = n

    def htr(self, v):
        raw = unhex(v, (self.n + 7) // 8)
        return merkleize(pack(raw), (self.n + 255) // 256)


# ---------------------------------------- consensus types (mainnet preset) --

U64 = Uint64()
B4, B20, B32, B48, B96 = ByteVector(4), ByteVector(20), ByteVector(32), ByteVector(48), ByteVector(96)

Checkpoint = Container(("epoch", U64), ("root", B32))
AttestationData = Container(("slot", U64), ("index", U64), ("beacon_block_root", B32),
                            ("source", Checkpoint), ("target", Checkpoint))
Attestation = Container(("aggregation_bits", Bitlist(2048)), ("data", AttestationData), ("signature", B96))
AttestationElectra = Container(("aggregation_bits", Bitlist(2048 * 64)), ("data", AttestationData),
                               ("signature", B96), ("committee_bits", Bitvector(64)))
AggregateAndProof = Container(("aggregator_index", U64), ("aggregate", Attestation), ("selection_proof", B96))
AggregateAndProofElectra = Container(("aggregator_index", U64), ("aggregate", AttestationElectra),
                                     ("selection_proof", B96))
BeaconBlockHeader = Container(("slot", U64), ("proposer_index", U64), ("parent_root", B32),
                              ("state_root", B32), ("body_root", B32))
SignedBeaconBlockHeader = Container(("message", BeaconBlockHeader), ("signature", B96))
ProposerSlashing = Container(("signed_header_1", SignedBeaconBlockHeader), ("signed_header_2", SignedBeaconBlockHeader))
IndexedAttestation = Container(("attesting_indices", List(U64, 2048)), ("data", AttestationData), ("signature", B96))
AttesterSlashing = Container(("attestation_1", IndexedAttestation), ("attestation_2", IndexedAttestation))
Eth1Data = Container(("deposit_root", B32), ("deposit_count", U64), ("block_hash", B32))
DepositData = Container(("pubkey", B48), ("withdrawal_credentials", B32), ("amount", U64), ("signature", B96))
Deposit = Container(("proof", Vector(B32, 33)), ("data", DepositData))
VoluntaryExit = Container(("epoch", U64), ("validator_index", U64))
SignedVoluntaryExit = Container(("message", VoluntaryExit), ("signature", B96))
SyncAggregate = Container(("sync_committee_bits", Bitvector(512)), ("sync_committee_signature", B96))
_body_fields = (("randao_reveal", B96), ("eth1_data", Eth1Data), ("graffiti", B32),
                ("proposer_slashings", List(ProposerSlashing, 16)),
                ("attester_slashings", List(AttesterSlashing, 2)),
                ("attestations", List(Attestation, 128)),
                ("deposits", List(Deposit, 16)),
                ("voluntary_exits", List(SignedVoluntaryExit, 16)))
BeaconBlockBody = Container(*_body_fields)
BeaconBlockBodyAltair = Container(*(_body_fields + (("sync_aggregate", SyncAggregate),)))
BeaconBlock = Container(("slot", U64), ("proposer_index", U64), ("parent_root", B32), ("state_root", B32),
                        ("body", BeaconBlockBody))
BeaconBlockAltair = Container(("slot", U64), ("proposer_index", U64), ("parent_root", B32), ("state_root", B32),
                              ("body", BeaconBlockBodyAltair))
DepositMessage = Container(("pubkey", B48), ("withdrawal_credentials", B32), ("amount", U64))
SyncAggregatorSelectionData = Container(("slot", U64), ("subcommittee_index", U64))
SyncCommitteeContribution = Container(("slot", U64), ("beacon_block_root", B32), ("subcommittee_index", U64),
                                      ("aggregation_bits", Bitvector(128)), ("signature", B96))
ContributionAndProof = Container(("aggregator_index", U64), ("contribution", SyncCommitteeContribution),
                                 ("selection_proof", B96))
ValidatorRegistrationV1 = Container(("fee_recipient", B20), ("gas_limit", U64), ("timestamp", U64), ("pubkey", B48))
ForkData = Container(("current_version", B4), ("genesis_validators_root", B32))
SigningData = Container(("object_root", B32), ("domain", B32))

# ------------------------------------------------------------ domains ------

DOMAIN = {
    "BEACON_PROPOSER": "00000000", "BEACON_ATTESTER": "01000000", "RANDAO": "02000000",
    "DEPOSIT": "03000000", "VOLUNTARY_EXIT": "04000000", "SELECTION_PROOF": "05000000",
    "AGGREGATE_AND_PROOF": "06000000", "SYNC_COMMITTEE": "07000000",
    "SYNC_COMMITTEE_SELECTION_PROOF": "08000000", "CONTRIBUTION_AND_PROOF": "09000000",
    "APPLICATION_BUILDER": "00000001",
}
ZERO_ROOT = "0x" + "00" * 32
SLOTS_PER_EPOCH = 32


def h(b):
    return "0x" + b.hex()


def compute_domain(domain_type, fork_version, gvr):
    fdr = ForkData.htr({"current_version": fork_version, "genesis_validators_root": gvr})
    return bytes.fromhex(DOMAIN[domain_type]) + fdr[:28]


def compute_signing_root(object_root, domain):
    return SigningData.htr({"object_root": h(object_root), "domain": h(domain)})


def get_domain(fork_info, domain_type, epoch):
    fork = fork_info["fork"]
    version = fork["previous_version"] if epoch < int(fork["epoch"]) else fork["current_version"]
    return compute_domain(domain_type, version, fork_info["genesis_validators_root"])


NETWORKS = {
    "mainnet": {
        "gvr": "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95",
        "genesis": "0x00000000", "capella": "0x03000000", "deneb_epoch": 269568,
        "forks": [("PHASE0", "0x00000000", 0), ("ALTAIR", "0x01000000", 74240),
                  ("BELLATRIX", "0x02000000", 144896), ("CAPELLA", "0x03000000", 194048),
                  ("DENEB", "0x04000000", 269568), ("ELECTRA", "0x05000000", 364032),
                  ("FULU", "0x06000000", 411392)],
    },
    "hoodi": {
        "gvr": "0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f",
        "genesis": "0x10000910", "capella": "0x40000910", "deneb_epoch": 0,
        "forks": [("PHASE0", "0x10000910", 0), ("ALTAIR", "0x20000910", 0), ("BELLATRIX", "0x30000910", 0),
                  ("CAPELLA", "0x40000910", 0), ("DENEB", "0x50000910", 0), ("ELECTRA", "0x60000910", 2048),
                  ("FULU", "0x70000910", 50688)],
    },
}


def signing_root_of(req, network):
    """Returns (object_root, domain) for a request body, per the specs."""
    t = req["type"]
    fi = req.get("fork_info")
    if t == "AGGREGATION_SLOT":
        slot = req["aggregation_slot"]["slot"]
        return U64.htr(slot), get_domain(fi, "SELECTION_PROOF", int(slot) // SLOTS_PER_EPOCH)
    if t in ("AGGREGATE_AND_PROOF", "AGGREGATE_AND_PROOF_V2"):
        a = req["aggregate_and_proof"]
        if "version" in a:
            electra = a["version"] in ("ELECTRA", "FULU")
            a = a["data"]
            assert electra == ("committee_bits" in a["aggregate"])
        else:
            electra = "committee_bits" in a["aggregate"]
        typ = AggregateAndProofElectra if electra else AggregateAndProof
        slot = int(a["aggregate"]["data"]["slot"])
        return typ.htr(a), get_domain(fi, "AGGREGATE_AND_PROOF", slot // SLOTS_PER_EPOCH)
    if t == "ATTESTATION":
        d = req["attestation"]
        return AttestationData.htr(d), get_domain(fi, "BEACON_ATTESTER", int(d["target"]["epoch"]))
    if t == "BLOCK":
        b = req["block"]
        return BeaconBlock.htr(b), get_domain(fi, "BEACON_PROPOSER", int(b["slot"]) // SLOTS_PER_EPOCH)
    if t == "BLOCK_V2":
        bb = req["beacon_block"]
        if "block_header" in bb:
            obj, typ = bb["block_header"], BeaconBlockHeader
        else:
            obj = bb["block"]
            typ = {"PHASE0": BeaconBlock, "ALTAIR": BeaconBlockAltair}[bb["version"]]
        return typ.htr(obj), get_domain(fi, "BEACON_PROPOSER", int(obj["slot"]) // SLOTS_PER_EPOCH)
    if t == "DEPOSIT":
        d = dict(req["deposit"])
        version = d.pop("genesis_fork_version")
        return DepositMessage.htr(d), compute_domain("DEPOSIT", version, ZERO_ROOT)
    if t == "RANDAO_REVEAL":
        e = req["randao_reveal"]["epoch"]
        return U64.htr(e), get_domain(fi, "RANDAO", int(e))
    if t == "VOLUNTARY_EXIT":
        v = req["voluntary_exit"]
        net = NETWORKS[network]
        epoch = int(v["epoch"])
        if epoch >= net["deneb_epoch"] or int(fi["fork"]["epoch"]) >= net["deneb_epoch"]:
            # EIP-7044 (Deneb process_voluntary_exit): fixed to CAPELLA_FORK_VERSION.
            domain = compute_domain("VOLUNTARY_EXIT", net["capella"], fi["genesis_validators_root"])
        else:
            domain = get_domain(fi, "VOLUNTARY_EXIT", epoch)
        return VoluntaryExit.htr(v), domain
    if t == "SYNC_COMMITTEE_MESSAGE":
        m = req["sync_committee_message"]
        return B32.htr(m["beacon_block_root"]), get_domain(fi, "SYNC_COMMITTEE", int(m["slot"]) // SLOTS_PER_EPOCH)
    if t == "SYNC_COMMITTEE_SELECTION_PROOF":
        s = req["sync_aggregator_selection_data"]
        return (SyncAggregatorSelectionData.htr(s),
                get_domain(fi, "SYNC_COMMITTEE_SELECTION_PROOF", int(s["slot"]) // SLOTS_PER_EPOCH))
    if t == "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF":
        c = req["contribution_and_proof"]
        slot = int(c["contribution"]["slot"])
        return ContributionAndProof.htr(c), get_domain(fi, "CONTRIBUTION_AND_PROOF", slot // SLOTS_PER_EPOCH)
    if t == "VALIDATOR_REGISTRATION":
        v = req["validator_registration"]
        # Builder specs: compute_domain(DOMAIN_APPLICATION_BUILDER) defaults to
        # GENESIS_FORK_VERSION and a zero genesis validators root.
        return ValidatorRegistrationV1.htr(v), compute_domain("APPLICATION_BUILDER", NETWORKS[network]["genesis"],
                                                              ZERO_ROOT)
    raise ValueError(t)


# ------------------------------------------------------ example bodies -----

_counter = [0]


def rnd(n):
    """Deterministic pseudo-random bytes as 0x-hex."""
    out = b""
    while len(out) < n:
        _counter[0] += 1
        out += sha256(b"regent-eth2-testdata-%d" % _counter[0])
    return h(out[:n])


def bitlist(nbits, pattern):
    bits = [(pattern >> (i % 61)) & 1 for i in range(nbits)] + [1]
    return h(bits_to_bytes(bits))


def fork_info(network, fork):
    forks = NETWORKS[network]["forks"]
    i = [f[0] for f in forks].index(fork)
    prev = forks[max(i - 1, 0)][1]
    return {"fork": {"previous_version": prev, "current_version": forks[i][1], "epoch": str(forks[i][2])},
            "genesis_validators_root": NETWORKS[network]["gvr"]}


def fork_epoch(network, fork):
    return dict((f[0], f[2]) for f in NETWORKS[network]["forks"])[fork]


def checkpoint(epoch):
    return {"epoch": str(epoch), "root": rnd(32)}


def att_data(slot, index="0"):
    epoch = slot // SLOTS_PER_EPOCH
    return {"slot": str(slot), "index": index, "beacon_block_root": rnd(32),
            "source": checkpoint(epoch - 1), "target": checkpoint(epoch)}


def attestation(slot, electra=False, nbits=77):
    a = {"aggregation_bits": bitlist(nbits, 0x5a5a5a5a5a5a5a5 + slot), "data": att_data(slot), "signature": rnd(96)}
    if electra:
        a["committee_bits"] = "0x0400100000000080"
    return a


def aggregate_and_proof(slot, electra):
    return {"aggregator_index": str(123456 + slot % 1000),
            "aggregate": attestation(slot, electra, nbits=(700 if electra else 130)),
            "selection_proof": rnd(96)}


def header(slot):
    return {"slot": str(slot), "proposer_index": str(slot % 900000), "parent_root": rnd(32),
            "state_root": rnd(32), "body_root": rnd(32)}


def indexed_attestation(slot, n):
    return {"attesting_indices": [str(1000 + 7 * i) for i in range(n)], "data": att_data(slot), "signature": rnd(96)}


def block(slot, altair):
    body = {
        "randao_reveal": rnd(96),
        "eth1_data": {"deposit_root": rnd(32), "deposit_count": "71234", "block_hash": rnd(32)},
        "graffiti": h(b"regent test graffiti".ljust(32, b"\x00")),
        "proposer_slashings": [{"signed_header_1": {"message": header(slot - 5), "signature": rnd(96)},
                                "signed_header_2": {"message": header(slot - 5), "signature": rnd(96)}}],
        "attester_slashings": [{"attestation_1": indexed_attestation(slot - 40, 5),
                                "attestation_2": indexed_attestation(slot - 40, 9)}],
        "attestations": [attestation(slot - 1), attestation(slot - 2, nbits=128), attestation(slot - 3, nbits=2048)],
        "deposits": [{"proof": [rnd(32) for _ in range(33)],
                      "data": {"pubkey": rnd(48), "withdrawal_credentials": rnd(32),
                               "amount": "32000000000", "signature": rnd(96)}}],
        "voluntary_exits": [{"message": {"epoch": str(slot // 32 - 10), "validator_index": "4242"},
                             "signature": rnd(96)}],
    }
    if altair:
        body["sync_aggregate"] = {"sync_committee_bits": rnd(64), "sync_committee_signature": rnd(96)}
    return {"slot": str(slot), "proposer_index": "31337", "parent_root": rnd(32), "state_root": rnd(32), "body": body}


def build_bodies():
    """Returns [(file name, network or None, body without signing root, root field name or None)]."""
    out = []
    m = "mainnet"

    def slot_in(fork, offset, network=m):
        return fork_epoch(network, fork) * SLOTS_PER_EPOCH + offset

    out.append(("aggregation_slot.json", m, {
        "type": "AGGREGATION_SLOT", "fork_info": fork_info(m, "FULU"),
        "aggregation_slot": {"slot": str(slot_in("FULU", 1000))}}, "signingRoot"))
    out.append(("aggregate_and_proof_phase0.json", m, {
        "type": "AGGREGATE_AND_PROOF", "fork_info": fork_info(m, "DENEB"),
        "aggregate_and_proof": aggregate_and_proof(slot_in("DENEB", 77), False)}, "signingRoot"))
    out.append(("aggregate_and_proof_electra.json", m, {
        "type": "AGGREGATE_AND_PROOF", "fork_info": fork_info(m, "ELECTRA"),
        "aggregate_and_proof": aggregate_and_proof(slot_in("ELECTRA", 5000), True)}, "signingRoot"))
    for fork, _, _ in NETWORKS[m]["forks"]:
        electra = fork in ("ELECTRA", "FULU")
        out.append(("aggregate_and_proof_v2_%s.json" % fork.lower(), m, {
            "type": "AGGREGATE_AND_PROOF_V2", "fork_info": fork_info(m, fork),
            "aggregate_and_proof": {"version": fork,
                                    "data": aggregate_and_proof(slot_in(fork, 33), electra)}}, "signingRoot"))
    out.append(("aggregate_and_proof_v2_bare.json", m, {
        "type": "AGGREGATE_AND_PROOF_V2", "fork_info": fork_info(m, "FULU"),
        "aggregate_and_proof": aggregate_and_proof(slot_in("FULU", 64), True)}, "signingRoot"))
    out.append(("attestation.json", m, {
        "type": "ATTESTATION", "fork_info": fork_info(m, "ELECTRA"),
        "attestation": att_data(slot_in("ELECTRA", 4321))}, "signingRoot"))
    # Last epoch before Fulu, signed with a Fulu fork_info: previous_version.
    out.append(("attestation_previous_version.json", m, {
        "type": "ATTESTATION", "fork_info": fork_info(m, "FULU"),
        "attestation": att_data(slot_in("FULU", -3))}, "signing_root"))
    out.append(("attestation_no_signing_root.json", m, {
        "type": "ATTESTATION", "fork_info": fork_info(m, "FULU"),
        "attestation": att_data(slot_in("FULU", 99999))}, None))
    out.append(("block_phase0.json", m, {
        "type": "BLOCK", "fork_info": fork_info(m, "PHASE0"),
        "block": block(slot_in("PHASE0", 1234567), False)}, "signingRoot"))
    out.append(("block_v2_phase0.json", m, {
        "type": "BLOCK_V2", "fork_info": fork_info(m, "PHASE0"),
        "beacon_block": {"version": "PHASE0", "block": block(slot_in("PHASE0", 2000000), False)}}, "signingRoot"))
    altair_block = block(slot_in("ALTAIR", 321), True)
    out.append(("block_v2_altair.json", m, {
        "type": "BLOCK_V2", "fork_info": fork_info(m, "ALTAIR"),
        "beacon_block": {"version": "ALTAIR", "block": altair_block}}, "signingRoot"))
    # The same Altair block in header form: must have the same signing root.
    altair_header = {k: altair_block[k] for k in ("slot", "proposer_index", "parent_root", "state_root")}
    altair_header["body_root"] = h(BeaconBlockBodyAltair.htr(altair_block["body"]))
    out.append(("block_v2_altair_header.json", m, {
        "type": "BLOCK_V2", "fork_info": fork_info(m, "ALTAIR"),
        "beacon_block": {"version": "ALTAIR", "block_header": altair_header}}, "signingRoot"))
    for fork in ("BELLATRIX", "CAPELLA", "DENEB", "ELECTRA", "FULU"):
        out.append(("block_v2_%s.json" % fork.lower(), m, {
            "type": "BLOCK_V2", "fork_info": fork_info(m, fork),
            "beacon_block": {"version": fork, "block_header": header(slot_in(fork, 4097))}}, "signingRoot"))
    # Fork boundaries for slot-based epochs: the first slot of a fork uses
    # current_version, the last slot before it previous_version.
    out.append(("block_v2_fulu_first_slot.json", m, {
        "type": "BLOCK_V2", "fork_info": fork_info(m, "FULU"),
        "beacon_block": {"version": "FULU", "block_header": header(slot_in("FULU", 0))}}, "signingRoot"))
    out.append(("sync_committee_message_previous_version.json", m, {
        "type": "SYNC_COMMITTEE_MESSAGE", "fork_info": fork_info(m, "FULU"),
        "sync_committee_message": {"beacon_block_root": rnd(32), "slot": str(slot_in("FULU", -1))}},
                "signingRoot"))
    out.append(("aggregate_and_proof_v2_previous_version.json", m, {
        "type": "AGGREGATE_AND_PROOF_V2", "fork_info": fork_info(m, "FULU"),
        "aggregate_and_proof": {"version": "ELECTRA",
                                "data": aggregate_and_proof(slot_in("FULU", -1), True)}}, "signingRoot"))
    out.append(("deposit.json", m, {
        "type": "DEPOSIT",
        "deposit": {"pubkey": rnd(48), "withdrawal_credentials": "0x01" + "00" * 11 + rnd(20)[2:],
                    "amount": "32000000000", "genesis_fork_version": "0x00000000"}}, "signingRoot"))
    out.append(("deposit_hoodi.json", "hoodi", {
        "type": "DEPOSIT",
        "deposit": {"pubkey": rnd(48), "withdrawal_credentials": "0x02" + "00" * 11 + rnd(20)[2:],
                    "amount": "2048000000000", "genesis_fork_version": "0x10000910"}}, "signingRoot"))
    out.append(("randao_reveal.json", m, {
        "type": "RANDAO_REVEAL", "fork_info": fork_info(m, "FULU"),
        "randao_reveal": {"epoch": str(fork_epoch(m, "FULU") + 12)}}, "signingRoot"))
    out.append(("voluntary_exit.json", m, {
        "type": "VOLUNTARY_EXIT", "fork_info": fork_info(m, "FULU"),
        "voluntary_exit": {"epoch": str(fork_epoch(m, "FULU") + 5), "validator_index": "123456"}}, "signingRoot"))
    # Exit epoch before Deneb but the chain is past it: still Capella (EIP-7044).
    out.append(("voluntary_exit_old_epoch.json", m, {
        "type": "VOLUNTARY_EXIT", "fork_info": fork_info(m, "ELECTRA"),
        "voluntary_exit": {"epoch": "200000", "validator_index": "77"}}, "signingRoot"))
    # Pre-Deneb chain: the ordinary get_domain rule (Bellatrix version).
    out.append(("voluntary_exit_pre_deneb.json", m, {
        "type": "VOLUNTARY_EXIT", "fork_info": fork_info(m, "BELLATRIX"),
        "voluntary_exit": {"epoch": str(fork_epoch(m, "BELLATRIX") + 100), "validator_index": "88"}}, "signingRoot"))
    out.append(("voluntary_exit_hoodi.json", "hoodi", {
        "type": "VOLUNTARY_EXIT", "fork_info": fork_info("hoodi", "FULU"),
        "voluntary_exit": {"epoch": "60000", "validator_index": "1"}}, "signingRoot"))
    out.append(("sync_committee_message.json", m, {
        "type": "SYNC_COMMITTEE_MESSAGE", "fork_info": fork_info(m, "FULU"),
        "sync_committee_message": {"beacon_block_root": rnd(32), "slot": str(slot_in("FULU", 77777))}},
                "signingRoot"))
    out.append(("sync_committee_selection_proof.json", m, {
        "type": "SYNC_COMMITTEE_SELECTION_PROOF", "fork_info": fork_info(m, "ELECTRA"),
        "sync_aggregator_selection_data": {"slot": str(slot_in("ELECTRA", 31)), "subcommittee_index": "3"}},
                "signingRoot"))
    out.append(("sync_committee_contribution_and_proof.json", m, {
        "type": "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF", "fork_info": fork_info(m, "FULU"),
        "contribution_and_proof": {
            "aggregator_index": "555",
            "selection_proof": rnd(96),
            "contribution": {"slot": str(slot_in("FULU", 12)), "beacon_block_root": rnd(32),
                             "subcommittee_index": "2", "aggregation_bits": rnd(16), "signature": rnd(96)}}},
                "signingRoot"))
    out.append(("validator_registration.json", m, {
        "type": "VALIDATOR_REGISTRATION",
        "validator_registration": {"fee_recipient": rnd(20), "gas_limit": "36000000",
                                   "timestamp": "1767225600", "pubkey": rnd(48)}}, "signingRoot"))
    out.append(("validator_registration_hoodi.json", "hoodi", {
        "type": "VALIDATOR_REGISTRATION",
        "validator_registration": {"fee_recipient": rnd(20), "gas_limit": "60000000",
                                   "timestamp": "1767225601", "pubkey": rnd(48)}}, "signingRoot"))
    return out


def self_check():
    # Published constants: the mainnet deposit and builder domains.
    assert h(compute_domain("DEPOSIT", "0x00000000", ZERO_ROOT)) == \
        "0x03000000f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"
    assert h(compute_domain("APPLICATION_BUILDER", "0x00000000", ZERO_ROOT)) == \
        "0x00000001f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"
    # Bitlist with the delimiter alone in its byte, and inside a data byte.
    assert Bitlist(8).htr("0x01") == mix_in_length(b"\x00" * 32, 0)
    assert Bitlist(8).htr("0x0b") == mix_in_length(b"\x03" + b"\x00" * 31, 3)


def main():
    self_check()
    out_dir = HERE
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        out_dir = sys.argv[2]
    elif len(sys.argv) != 1:
        sys.exit("usage: gen_vectors.py [--out DIR]")
    vectors = []
    req_dir = os.path.join(out_dir, "requests")
    os.makedirs(req_dir, exist_ok=True)
    for name, network, body, root_field in build_bodies():
        obj_root, domain = signing_root_of(body, network)
        root = compute_signing_root(obj_root, domain)
        out = {"type": body["type"]}
        if root_field:
            out[root_field] = h(root)
        out.update({k: v for k, v in body.items() if k != "type"})
        with open(os.path.join(req_dir, name), "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        vectors.append({"file": name, "network": network, "type": body["type"],
                        "object_root": h(obj_root), "domain": h(domain), "signing_root": h(root)})
    with open(os.path.join(out_dir, "vectors.json"), "w") as f:
        json.dump(vectors, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
