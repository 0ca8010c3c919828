package failover

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/regent-signer/regent/failover/failoverpb"
)

// richAudit returns a chain with every kind of record: accepted and
// rejected, with approvals, evidence digests, handover ids and reasons.
func richAudit(t *testing.T) []AuditRecord {
	t.Helper()
	c := newCluster(t)
	c.mustRecord("dc1", 1, att(testGVR, 0, 1, 2))
	c.do("erin", request("dc2", "auditor tries")) // rejected
	id := c.requestAndFence("dc2")
	if r := c.confirm("dc2", &failoverpb.ConfirmFinality{HandoverId: id, Eth: []*failoverpb.EthFinality{ethEv(testGVR, 1, 2)}}); r.Accepted {
		t.Fatal("short evidence accepted")
	}
	if r := c.confirm("dc2", &failoverpb.ConfirmFinality{HandoverId: id, Eth: []*failoverpb.EthFinality{ethEv(testGVR, 3, 2)}}); !r.Accepted {
		t.Fatal(r.Err)
	}
	a := c.audit()
	if i, err := VerifyChain(a); err != nil {
		t.Fatalf("fresh chain broken at %d: %v", i, err)
	}
	return a
}

// mutations returns one change per field (and per approval sub-field) of
// an audit record, each of which must break the chain at that record.
func mutations(r AuditRecord) map[string]func(*AuditRecord) {
	m := map[string]func(*AuditRecord){}
	rt := reflect.TypeOf(r)
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		idx := i
		m[f.Name] = func(x *AuditRecord) { mutateValue(reflect.ValueOf(x).Elem().Field(idx)) }
	}
	if len(r.Approvals) > 0 {
		at := reflect.TypeOf(Approval{})
		for i := 0; i < at.NumField(); i++ {
			idx := i
			m["Approvals[0]."+at.Field(i).Name] = func(x *AuditRecord) {
				x.Approvals = append([]Approval(nil), x.Approvals...)
				mutateValue(reflect.ValueOf(&x.Approvals[0]).Elem().Field(idx))
			}
		}
		m["Approvals dropped"] = func(x *AuditRecord) { x.Approvals = x.Approvals[1:] }
	}
	m["Approvals added"] = func(x *AuditRecord) {
		x.Approvals = append(append([]Approval(nil), x.Approvals...), Approval{OperatorID: "mallory"})
	}
	return m
}

func mutateValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Uint64, reflect.Uint8:
		v.SetUint(v.Uint() ^ 1)
	case reflect.Int64:
		v.SetInt(v.Int() ^ 1)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := append([]byte(nil), v.Bytes()...)
			if len(b) == 0 {
				b = []byte{1}
			} else {
				b[len(b)-1] ^= 0x80
			}
			v.SetBytes(b)
			return
		}
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	default:
		panic("unhandled kind " + v.Kind().String())
	}
}

func TestAuditTamperAnyFieldDetected(t *testing.T) {
	chain := richAudit(t)
	for i := range chain {
		for name, mut := range mutations(chain[i]) {
			tampered := make([]AuditRecord, len(chain))
			for j := range chain {
				tampered[j] = chain[j].clone()
			}
			mut(&tampered[i])
			if reflect.DeepEqual(tampered[i], chain[i]) {
				t.Fatalf("record %d %s: mutation changed nothing", i, name)
			}
			bad, err := VerifyChain(tampered)
			if !errors.Is(err, ErrAuditBroken) || bad != i {
				t.Errorf("record %d field %s: VerifyChain = (%d, %v), want (%d, ErrAuditBroken)", i, name, bad, err, i)
			}
		}
	}
}

func TestAuditChainStructure(t *testing.T) {
	chain := richAudit(t)
	tests := []struct {
		name    string
		edit    func([]AuditRecord) []AuditRecord
		wantBad int
	}{
		{"intact", func(a []AuditRecord) []AuditRecord { return a }, -1},
		{"empty", func([]AuditRecord) []AuditRecord { return nil }, -1},
		{"cut at the end verifies (compare AuditHead)", func(a []AuditRecord) []AuditRecord { return a[:len(a)-1] }, -1},
		{"first record dropped", func(a []AuditRecord) []AuditRecord { return a[1:] }, 0},
		{"middle record dropped", func(a []AuditRecord) []AuditRecord { return append(append([]AuditRecord{}, a[:3]...), a[4:]...) }, 3},
		{"records swapped", func(a []AuditRecord) []AuditRecord {
			b := append([]AuditRecord{}, a...)
			b[2], b[3] = b[3], b[2]
			return b
		}, 2},
		{"record duplicated", func(a []AuditRecord) []AuditRecord {
			return append(append(append([]AuditRecord{}, a[:4]...), a[3]), a[4:]...)
		}, 4},
		{"rehashed after edit still breaks the next link", func(a []AuditRecord) []AuditRecord {
			b := append([]AuditRecord{}, a...)
			b[2].Actor = "mallory"
			b[2].Hash = b[2].ComputeHash()
			return b
		}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad, err := VerifyChain(tc.edit(chain))
			if bad != tc.wantBad || (tc.wantBad >= 0) != (err != nil) {
				t.Fatalf("VerifyChain = (%d, %v), want first bad %d", bad, err, tc.wantBad)
			}
		})
	}
}

func TestAuditFileRoundTrip(t *testing.T) {
	chain := richAudit(t)
	var buf bytes.Buffer
	if err := WriteAuditFile(&buf, chain); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAuditFile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalizeAudit(got), normalizeAudit(chain)) {
		t.Fatalf("round trip differs")
	}
	if bad, err := VerifyChain(got); err != nil {
		t.Fatalf("imported chain broken at %d: %v", bad, err)
	}
	// Any single changed character of a record line is caught by decoding
	// or by the chain.
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	for li := 1; li < len(lines); li++ {
		for _, pos := range []int{10, len(lines[li]) / 2, len(lines[li]) - 5} {
			mod := make([][]byte, len(lines))
			copy(mod, lines)
			l := append([]byte(nil), lines[li]...)
			l[pos] = flipChar(l[pos])
			mod[li] = l
			recs, err := ReadAuditFile(bytes.NewReader(bytes.Join(mod, []byte("\n"))))
			if err != nil {
				if !errors.Is(err, ErrAuditFile) {
					t.Fatalf("line %d pos %d: error %v is not ErrAuditFile", li, pos, err)
				}
				continue
			}
			if reflect.DeepEqual(normalizeAudit(recs), normalizeAudit(chain)) {
				continue // the change was invisible to decoding (e.g. JSON whitespace)
			}
			if _, err := VerifyChain(recs); err == nil {
				t.Fatalf("line %d pos %d (%q): tampered file verifies", li, pos, l)
			}
		}
	}
}

func flipChar(b byte) byte {
	switch {
	case b >= '0' && b <= '8', b >= 'a' && b <= 'y':
		return b + 1
	case b == '9':
		return '0'
	default:
		return 'z'
	}
}

// normalizeAudit maps empty byte strings and slices to nil.
func normalizeAudit(a []AuditRecord) []AuditRecord {
	out := make([]AuditRecord, len(a))
	for i, r := range a {
		r = r.clone()
		if len(r.Approvals) == 0 {
			r.Approvals = nil
		}
		out[i] = r
	}
	return out
}

func TestReadAuditFileRejects(t *testing.T) {
	good := func(t *testing.T) string {
		var buf bytes.Buffer
		if err := WriteAuditFile(&buf, richAudit(t)[:2]); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	tests := []struct {
		name string
		file func(t *testing.T) string
	}{
		{"empty", func(*testing.T) string { return "" }},
		{"no header", func(t *testing.T) string { return strings.SplitN(good(t), "\n", 2)[1] }},
		{"wrong format", func(t *testing.T) string { return strings.Replace(good(t), `"regent-audit"`, `"other"`, 1) }},
		{"wrong version", func(t *testing.T) string { return strings.Replace(good(t), `"version":1`, `"version":2`, 1) }},
		{"unknown field", func(t *testing.T) string { return strings.Replace(good(t), `"seq":0`, `"seq":0,"extra":1`, 1) }},
		{"bad outcome", func(t *testing.T) string { return strings.Replace(good(t), `"accepted"`, `"maybe"`, 1) }},
		{"upper-case hex", func(t *testing.T) string {
			g := good(t)
			i := strings.Index(g, `"hash":"`) + len(`"hash":"`)
			return g[:i] + strings.ToUpper(g[i:i+64]) + g[i+64:]
		}},
		{"odd hex", func(t *testing.T) string { return strings.Replace(good(t), `"hash":"`, `"hash":"0`, 1) }},
		{"two objects on a line", func(t *testing.T) string {
			lines := strings.Split(good(t), "\n")
			return lines[0] + "\n" + lines[1] + lines[1] + "\n"
		}},
		{"blank line", func(t *testing.T) string { return strings.Replace(good(t), "\n", "\n\n", 1) }},
		{"not JSON", func(t *testing.T) string { return good(t) + "hello\n" }},
		{"invalid UTF-8", func(t *testing.T) string { return strings.Replace(good(t), "lease.grant", "lease\xff", 1) }},
		{"line too long", func(t *testing.T) string {
			return strings.SplitN(good(t), "\n", 2)[0] + "\n" + `{"actor":"` + strings.Repeat("a", MaxAuditLine) + `"}` + "\n"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadAuditFile(strings.NewReader(tc.file(t)))
			if !errors.Is(err, ErrAuditFile) {
				t.Fatalf("err %v, want ErrAuditFile", err)
			}
		})
	}
}

func FuzzReadAuditFile(f *testing.F) {
	var buf bytes.Buffer
	rec := AuditRecord{Seq: 0, Index: 3, UnixNano: 5, Actor: "alice", Action: "handover.request", Outcome: OutcomeAccepted,
		Approvals: []Approval{{OperatorID: "alice", Index: 3, UnixNano: 5}}, EvidenceDigest: make([]byte, 32), PrevHash: make([]byte, 32)}
	rec.Hash = rec.ComputeHash()
	if err := WriteAuditFile(&buf, []AuditRecord{rec}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"regent-audit","version":1}` + "\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ReadAuditFile(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrAuditFile) {
				t.Fatalf("error %v is not ErrAuditFile", err)
			}
			return
		}
		bad, verr := VerifyChain(recs)
		if (bad >= 0) != (verr != nil) || bad >= len(recs) {
			t.Fatalf("VerifyChain = (%d, %v) for %d records", bad, verr, len(recs))
		}
		// A decodable file re-encodes to a file that decodes to the same.
		var out bytes.Buffer
		if err := WriteAuditFile(&out, recs); err != nil {
			return // an outcome the writer refuses cannot come from the reader
		}
		again, err := ReadAuditFile(&out)
		if err != nil || !reflect.DeepEqual(normalizeAudit(again), normalizeAudit(recs)) {
			t.Fatalf("re-encoded file differs: %v", err)
		}
	})
}
