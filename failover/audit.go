package failover

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/regent-signer/regent/failover/failoverpb"
)

// Outcome is the verdict an audit record states. The zero value is
// unknown, never accepted.
type Outcome uint8

const (
	OutcomeUnknown Outcome = iota
	OutcomeAccepted
	OutcomeRejected
)

func (o Outcome) String() string {
	switch o {
	case OutcomeAccepted:
		return "accepted"
	case OutcomeRejected:
		return "rejected"
	default:
		return "unknown"
	}
}

// MarshalText implements encoding.TextMarshaler.
func (o Outcome) MarshalText() ([]byte, error) {
	if o != OutcomeAccepted && o != OutcomeRejected {
		return nil, fmt.Errorf("%w: outcome %d", ErrAuditFile, o)
	}
	return []byte(o.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; only "accepted" and
// "rejected" decode.
func (o *Outcome) UnmarshalText(b []byte) error {
	switch string(b) {
	case "accepted":
		*o = OutcomeAccepted
	case "rejected":
		*o = OutcomeRejected
	default:
		return fmt.Errorf("%w: outcome %q", ErrAuditFile, b)
	}
	return nil
}

// HexBytes is a byte string that encodes as lower-case hex in JSON.
type HexBytes []byte

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h)
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler (lower-case hex only,
// so each value has one spelling).
func (h *HexBytes) UnmarshalText(b []byte) error {
	if bytes.ContainsAny(b, "ABCDEF") {
		return fmt.Errorf("%w: upper-case hex", ErrAuditFile)
	}
	out := make([]byte, hex.DecodedLen(len(b)))
	if _, err := hex.Decode(out, b); err != nil {
		return fmt.Errorf("%w: %v", ErrAuditFile, err)
	}
	*h = out
	return nil
}

// Approval is one operator's committed approval: who, at which log index,
// at what proposer time.
type Approval struct {
	OperatorID string `json:"operator_id"`
	Index      uint64 `json:"index"`
	UnixNano   int64  `json:"unix_nano"`
}

// AuditRecord is one link of the audit chain. Hash is SHA-256 of the
// canonical encoding of every other field (PrevHash included), so
// changing any field of any record breaks the chain at that record.
type AuditRecord struct {
	Seq      uint64 `json:"seq"`
	Index    uint64 `json:"index"`
	UnixNano int64  `json:"unix_nano"` // proposer's stamp
	// Actor is the operator id (operator commands) or region id
	// (node-proposed commands).
	Actor   string  `json:"actor"`
	Action  string  `json:"action"`
	Outcome Outcome `json:"outcome"`
	// Reason is why a command was rejected, or the operator's reason.
	Reason    string     `json:"reason,omitempty"`
	Approvals []Approval `json:"approvals,omitempty"`
	// EvidenceDigest is SHA-256 of the entry's payload (the signed
	// command, the finality evidence, ...).
	EvidenceDigest HexBytes `json:"evidence_digest,omitempty"`
	Detail         string   `json:"detail,omitempty"`
	HandoverID     uint64   `json:"handover_id,omitempty"`
	// The lease after the entry.
	LeaseHolder string   `json:"lease_holder,omitempty"`
	LeaseEpoch  uint64   `json:"lease_epoch"`
	LeaseState  string   `json:"lease_state"`
	PrevHash    HexBytes `json:"prev_hash"`
	Hash        HexBytes `json:"hash"`
}

// auditDomain prefixes the hashed encoding (format version 1).
const auditDomain = "regent/failover/audit/v1\x00"

// Limits on audit strings; longer text is clipped when the record is made.
const (
	maxAuditText     = 1024
	maxAuditApproval = 64
)

// ComputeHash returns SHA-256 of the record's canonical encoding: a
// domain tag, then every field except Hash in declaration order;
// integers big-endian fixed width, strings and bytes with a 4-byte length
// prefix, approvals with a 4-byte count.
func (r *AuditRecord) ComputeHash() []byte {
	h := sha256.New()
	var n [8]byte
	u64 := func(v uint64) { binary.BigEndian.PutUint64(n[:], v); h.Write(n[:]) }
	lp := func(b []byte) { binary.BigEndian.PutUint32(n[:4], uint32(len(b))); h.Write(n[:4]); h.Write(b) }
	h.Write([]byte(auditDomain))
	u64(r.Seq)
	u64(r.Index)
	u64(uint64(r.UnixNano))
	lp([]byte(r.Actor))
	lp([]byte(r.Action))
	h.Write([]byte{byte(r.Outcome)})
	lp([]byte(r.Reason))
	binary.BigEndian.PutUint32(n[:4], uint32(len(r.Approvals)))
	h.Write(n[:4])
	for _, a := range r.Approvals {
		lp([]byte(a.OperatorID))
		u64(a.Index)
		u64(uint64(a.UnixNano))
	}
	lp(r.EvidenceDigest)
	lp([]byte(r.Detail))
	u64(r.HandoverID)
	lp([]byte(r.LeaseHolder))
	u64(r.LeaseEpoch)
	lp([]byte(r.LeaseState))
	lp(r.PrevHash)
	return h.Sum(nil)
}

// VerifyChain re-walks records from the genesis record: each must have
// Seq equal to its position, a known outcome, a non-decreasing log index,
// PrevHash equal to the previous record's Hash (32 zero bytes for the
// first) and Hash equal to ComputeHash. It returns (-1, nil) for an intact
// chain, or the position of the first bad record and an error wrapping
// ErrAuditBroken. A chain cut short at the end verifies: compare its head
// with a region's AuditHead to detect that.
func VerifyChain(records []AuditRecord) (firstBad int, err error) {
	prev := make([]byte, sha256.Size)
	var lastIndex uint64
	for i := range records {
		r := &records[i]
		switch {
		case r.Seq != uint64(i):
			return i, fmt.Errorf("%w: record %d has seq %d", ErrAuditBroken, i, r.Seq)
		case r.Outcome != OutcomeAccepted && r.Outcome != OutcomeRejected:
			return i, fmt.Errorf("%w: record %d has outcome %d", ErrAuditBroken, i, r.Outcome)
		case r.Index < lastIndex:
			return i, fmt.Errorf("%w: record %d at log index %d after index %d", ErrAuditBroken, i, r.Index, lastIndex)
		case !bytes.Equal(r.PrevHash, prev):
			return i, fmt.Errorf("%w: record %d prev_hash %x, previous record's hash is %x", ErrAuditBroken, i, []byte(r.PrevHash), prev)
		}
		if got := r.ComputeHash(); !bytes.Equal(got, r.Hash) {
			return i, fmt.Errorf("%w: record %d hash %x, content hashes to %x", ErrAuditBroken, i, []byte(r.Hash), got)
		}
		prev, lastIndex = r.Hash, r.Index
	}
	return -1, nil
}

// clip makes s valid UTF-8 (so JSON export round-trips exactly) and at
// most n bytes, cutting on a rune boundary.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Audit file format (WriteAuditFile / ReadAuditFile): JSON lines, UTF-8.
// The first line is the header {"format":"regent-audit","version":1}; each
// further line is one AuditRecord as JSON (byte strings in lower-case hex,
// outcome "accepted" or "rejected"), in chain order.
const (
	auditFormat  = "regent-audit"
	auditVersion = 1
	// MaxAuditLine bounds one line of an audit file.
	MaxAuditLine = 1 << 20
	// MaxAuditRecords bounds the records of one audit file.
	MaxAuditRecords = 10_000_000
)

type auditHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// WriteAuditFile writes records in the audit file format.
func WriteAuditFile(w io.Writer, records []AuditRecord) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(auditHeader{Format: auditFormat, Version: auditVersion}); err != nil {
		return err
	}
	for i := range records {
		if err := enc.Encode(&records[i]); err != nil {
			return fmt.Errorf("failover: audit record %d: %w", i, err)
		}
	}
	return bw.Flush()
}

// ReadAuditFile decodes an audit file. It checks the format strictly
// (header, known fields only, one JSON object per line) but not the chain:
// run VerifyChain on the result.
func ReadAuditFile(r io.Reader) ([]AuditRecord, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxAuditLine)
	line := 0
	next := func() ([]byte, bool) {
		if !sc.Scan() {
			return nil, false
		}
		line++
		return sc.Bytes(), true
	}
	first, ok := next()
	if !ok {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAuditFile, err)
		}
		return nil, fmt.Errorf("%w: empty file", ErrAuditFile)
	}
	var h auditHeader
	if err := strictJSON(first, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrAuditFile, err)
	}
	if h.Format != auditFormat || h.Version != auditVersion {
		return nil, fmt.Errorf("%w: header says %q version %d, want %q version %d", ErrAuditFile, h.Format, h.Version, auditFormat, auditVersion)
	}
	var out []AuditRecord
	for {
		b, ok := next()
		if !ok {
			break
		}
		if len(out) >= MaxAuditRecords {
			return nil, fmt.Errorf("%w: more than %d records", ErrAuditFile, MaxAuditRecords)
		}
		var rec AuditRecord
		if err := strictJSON(b, &rec); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrAuditFile, line, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrAuditFile, line+1, err)
	}
	return out, nil
}

// strictJSON decodes exactly one JSON object with known fields only.
func strictJSON(b []byte, v any) error {
	if !utf8.Valid(b) {
		return errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the object")
	}
	return nil
}

func approvalsToProto(as []Approval) []*failoverpb.Approval {
	out := make([]*failoverpb.Approval, len(as))
	for i, a := range as {
		out[i] = &failoverpb.Approval{OperatorId: a.OperatorID, Index: a.Index, UnixNano: a.UnixNano}
	}
	return out
}

func approvalsFromProto(ps []*failoverpb.Approval) []Approval {
	if len(ps) == 0 {
		return nil
	}
	out := make([]Approval, len(ps))
	for i, p := range ps {
		out[i] = Approval{OperatorID: p.GetOperatorId(), Index: p.GetIndex(), UnixNano: p.GetUnixNano()}
	}
	return out
}

func (r *AuditRecord) toProto() *failoverpb.AuditRecord {
	return &failoverpb.AuditRecord{
		Seq: r.Seq, Index: r.Index, UnixNano: r.UnixNano, Actor: r.Actor, Action: r.Action,
		Outcome: failoverpb.Outcome(r.Outcome), Reason: r.Reason, Approvals: approvalsToProto(r.Approvals),
		EvidenceDigest: r.EvidenceDigest, Detail: r.Detail, HandoverId: r.HandoverID,
		LeaseHolder: r.LeaseHolder, LeaseEpoch: r.LeaseEpoch, LeaseState: r.LeaseState,
		PrevHash: r.PrevHash, Hash: r.Hash,
	}
}

func auditFromProto(p *failoverpb.AuditRecord) AuditRecord {
	return AuditRecord{
		Seq: p.GetSeq(), Index: p.GetIndex(), UnixNano: p.GetUnixNano(), Actor: p.GetActor(), Action: p.GetAction(),
		Outcome: Outcome(p.GetOutcome()), Reason: p.GetReason(), Approvals: approvalsFromProto(p.GetApprovals()),
		EvidenceDigest: nilIfEmpty(p.GetEvidenceDigest()), Detail: p.GetDetail(), HandoverID: p.GetHandoverId(),
		LeaseHolder: p.GetLeaseHolder(), LeaseEpoch: p.GetLeaseEpoch(), LeaseState: p.GetLeaseState(),
		PrevHash: p.GetPrevHash(), Hash: p.GetHash(),
	}
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// clone returns a deep copy.
func (r AuditRecord) clone() AuditRecord {
	r.Approvals = append([]Approval(nil), r.Approvals...)
	r.EvidenceDigest = append(HexBytes(nil), r.EvidenceDigest...)
	r.PrevHash = append(HexBytes(nil), r.PrevHash...)
	r.Hash = append(HexBytes(nil), r.Hash...)
	return r
}
