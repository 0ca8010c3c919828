package opsapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsapi"
	"github.com/regent-signer/regent/failover/opsapi/limiter"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/slashing/eth"
)

// withHistory registers key 0 and records block slot 1234 and an
// attestation with target 38 under dc1's epoch 1 (before bootstrap).
func withHistory(p *proposer) {
	if _, err := p.m.Apply("dc1", commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: []*commandpb.AddKey{
		{Pubkey: blsKey(0), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: leader.RootHex(gvr), Label: "v0"}}}); err != nil {
		panic(err)
	}
	root := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	recs := []*commandpb.ProtectionRecord{
		{Record: &commandpb.ProtectionRecord_EthBlock{EthBlock: &commandpb.EthBlock{GenesisValidatorsRoot: gvr[:], Pubkey: blsKey(0), Slot: 1234, SigningRoot: root("b")}}},
		{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{GenesisValidatorsRoot: gvr[:], Pubkey: blsKey(0), SourceEpoch: 37, TargetEpoch: 38, SigningRoot: root("a")}}},
	}
	v, err := p.m.Apply("dc1", commandpb.CommandType_RECORD_SIGNATURES, &commandpb.RecordSignatures{Holder: "dc1", LeaseEpoch: 1, Records: recs})
	if err != nil {
		panic(err)
	}
	for _, o := range v.(leader.BatchResult).Outcomes {
		if !o.Accepted() {
			panic(o.Reason)
		}
	}
}

func handover(t *testing.T, st *opspb.StatusResponse, id uint64) *opspb.HandoverInfo {
	t.Helper()
	for _, h := range st.Handovers {
		if h.Id == id {
			return h
		}
	}
	t.Fatalf("handover %d not in status %v", id, st.Handovers)
	return nil
}

// Status follows a handover from request to activation, saying what it
// waits for at each step.
func TestStatusFollowsAHandover(t *testing.T) {
	e := newEnv(t, envOpts{mode: onLeader, prepare: withHistory})
	op, reader := e.client("regentctl"), e.client("vc-1")
	st, err := reader.Status(context.Background(), &opspb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.ClusterId != clusterID || !st.Bootstrapped || len(st.Operators) != 4 || st.Lease.Holder != "dc1" || st.Lease.State != "active" {
		t.Fatalf("status %+v", st)
	}
	if st.Operators[0].Id != "alice" || st.Operators[0].Role != "admin" || len(st.Operators[0].Fingerprint) != 16 {
		t.Fatalf("operator %+v", st.Operators[0])
	}
	if len(st.Thresholds) != 5 || st.Thresholds[0].Action != "handover" || st.Thresholds[0].Required != 2 || st.Thresholds[0].Eligible != 3 {
		t.Fatalf("thresholds %+v", st.Thresholds)
	}

	r1, err := op.Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: e.sign("alice", request("dc2", "maintenance"))})
	if err != nil || !r1.Accepted {
		t.Fatalf("request: %+v %v", r1, err)
	}
	st, _ = reader.Status(context.Background(), &opspb.StatusRequest{})
	h := handover(t, st, r1.HandoverId)
	if h.State != "requested" || h.WaitingFor != "approvals: 1 of 2 (alice)" || h.From != "dc1" || h.To != "dc2" || h.Reason != "maintenance" {
		t.Fatalf("requested: %+v", h)
	}

	r2, err := op.Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: e.sign("carol", approve(r1.HandoverId))})
	if err != nil || !r2.Accepted {
		t.Fatalf("approve: %+v %v", r2, err)
	}
	st, _ = reader.Status(context.Background(), &opspb.StatusRequest{})
	h = handover(t, st, r1.HandoverId)
	want := fmt.Sprintf("finality past slot 1234 / epoch 38 on chain 0x%x…, confirmed by dc2", gvr[:4])
	if h.State != "fenced" || h.WaitingFor != want || h.ApprovalsCounted != 2 || h.FencedEpoch != 1 || h.HighWater != st.Lease.HighWater || !strings.Contains(h.HighWater, "1234") {
		t.Fatalf("fenced: %+v\nwant waiting for %q", h, want)
	}
	if st.Lease.State != "fenced" || st.Lease.HighWater == "" {
		t.Fatalf("lease %+v", st.Lease)
	}

	// dc2's watcher confirms finality past the mark.
	cf := &failoverpb.ConfirmFinality{HandoverId: r1.HandoverId, Eth: []*failoverpb.EthFinality{{
		GenesisValidatorsRoot: gvr[:], FinalizedEpoch: 40, FinalizedRoot: bytes.Repeat([]byte{7}, 32), Endpoints: []string{"http://beacon-1"}}}}
	if r := e.p.apply(t, "dc2", commandpb.CommandType_CONFIRM_FINALITY, cf).(failover.Result); !r.Accepted {
		t.Fatalf("confirm: %v", r.Err)
	}
	st, _ = reader.Status(context.Background(), &opspb.StatusRequest{})
	h = handover(t, st, r1.HandoverId)
	if h.State != "completed" || h.WaitingFor != "done: dc2 active at epoch 2" || h.ActiveEpoch != 2 ||
		!strings.Contains(h.EvidenceSummary, "finalized epoch 40") || !strings.Contains(h.HighWater, "1234") || !strings.Contains(h.HighWater, "38") {
		t.Fatalf("completed: %+v", h)
	}
	if st.Lease.Holder != "dc2" || st.Lease.Epoch != 2 || st.Lease.State != "active" {
		t.Fatalf("lease %+v", st.Lease)
	}
}

func TestStatusOfCancelledAndEmptyMark(t *testing.T) {
	e := newEnv(t, envOpts{mode: onLeader})
	op := e.client("regentctl")
	r1, _ := op.Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: e.sign("alice", request("dc3", "x"), "bob")})
	st, _ := op.Status(context.Background(), &opspb.StatusRequest{})
	if h := handover(t, st, r1.HandoverId); h.State != "fenced" || !strings.Contains(h.WaitingFor, "nothing was signed under the fenced epoch") {
		t.Fatalf("fenced with empty mark: %+v", h)
	}
	e2 := newEnv(t, envOpts{mode: onLeader})
	op2 := e2.client("regentctl")
	r2, _ := op2.Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: e2.sign("alice", request("dc3", "x"))})
	cancel := func(c *failoverpb.OperatorCommand) {
		c.Action = &failoverpb.OperatorCommand_CancelHandover{CancelHandover: &failoverpb.CancelHandover{HandoverId: r2.HandoverId, Reason: "changed my mind"}}
	}
	if r, err := op2.Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: e2.sign("carol", cancel)}); err != nil || !r.Accepted {
		t.Fatalf("cancel: %+v %v", r, err)
	}
	st, _ = op2.Status(context.Background(), &opspb.StatusRequest{})
	if h := handover(t, st, r2.HandoverId); h.State != "cancelled" || h.WaitingFor != "nothing: cancelled by carol (changed my mind)" {
		t.Fatalf("cancelled: %+v", h)
	}
}

func TestStatusBeforeBootstrap(t *testing.T) {
	e := newEnv(t, envOpts{noBootstrap: true})
	st, err := e.client("vc-1").Status(context.Background(), &opspb.StatusRequest{})
	if err != nil || st.Bootstrapped || st.ClusterId != "" || len(st.Thresholds) != 0 {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestAudit(t *testing.T) {
	e := newEnv(t, envOpts{mode: onLeader})
	op := e.client("regentctl")
	for i := range 3 {
		if _, err := op.Submit(context.Background(), &opspb.SubmitRequest{SignedCommand: badSignature(t, e.sign("alice", request("dc2", fmt.Sprint(i))))}); err != nil {
			t.Fatal(err)
		}
	}
	chain := e.audit()
	rows := []struct {
		name         string
		since, limit uint32
		first, n     int
		code         codes.Code
	}{
		{name: "all", first: 0, n: len(chain)},
		{name: "since 2", since: 2, first: 2, n: len(chain) - 2},
		{name: "limit 1", since: 1, limit: 1, first: 1, n: 1},
		{name: "past the end", since: 99, n: 0},
		{name: "limit too large", limit: opspb.MaxAuditLimit + 1, code: codes.InvalidArgument},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			resp, err := e.client("vc-1").Audit(context.Background(), &opspb.AuditRequest{SinceSeq: uint64(row.since), Limit: row.limit})
			if row.code != codes.OK {
				if status.Code(err) != row.code {
					t.Fatalf("got %v, want %v", err, row.code)
				}
				return
			}
			if err != nil || len(resp.Records) != row.n || resp.Total != uint64(len(chain)) || !bytes.Equal(resp.HeadHash, chain[len(chain)-1].Hash) {
				t.Fatalf("got %d records (total %d), %v", len(resp.GetRecords()), resp.GetTotal(), err)
			}
			for i, p := range resp.Records {
				r := opsapi.AuditFromProto(p)
				if !bytes.Equal(r.ComputeHash(), chain[row.first+i].Hash) || r.Seq != uint64(row.first+i) {
					t.Fatalf("record %d does not round-trip", row.first+i)
				}
			}
		})
	}
	f, err := e.client("vc-1").AuditFile(context.Background(), &opspb.AuditFileRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := failover.ReadAuditFile(bytes.NewReader(f.File))
	if err != nil {
		t.Fatal(err)
	}
	if bad, err := failover.VerifyChain(recs); bad != -1 || err != nil || len(recs) != len(chain) || f.Records != uint64(len(chain)) || !bytes.Equal(f.HeadHash, recs[len(recs)-1].Hash) {
		t.Fatalf("audit file: %d records, first bad %d, %v", len(recs), bad, err)
	}
	if last := recs[len(recs)-1]; last.Outcome != failover.OutcomeRejected || last.Action != "handover.request" {
		t.Fatalf("last record %+v, want the rejected submission", last)
	}
}

func TestAuditFromProtoRefusesUnknownOutcome(t *testing.T) {
	p := opsapi.AuditToProto(failover.AuditRecord{Seq: 0, Outcome: failover.OutcomeAccepted, PrevHash: make([]byte, 32)})
	p.Outcome = failoverpb.Outcome(257) // would wrap to "accepted" as a byte
	if r := opsapi.AuditFromProto(p); r.Outcome != failover.OutcomeUnknown {
		t.Fatalf("outcome %v", r.Outcome)
	}
}

func TestKeysAndInterchange(t *testing.T) {
	e := newEnv(t, envOpts{mode: forwarded, prepare: withHistory})
	keys, err := e.client("vc-1").ListKeys(context.Background(), &opspb.ListKeysRequest{})
	if err != nil || len(keys.Keys) != 1 || !bytes.Equal(keys.Keys[0].Pubkey, blsKey(0)) || keys.Keys[0].Scheme != "bls12381" ||
		keys.Keys[0].Network != leader.RootHex(gvr) || keys.Keys[0].Label != "v0" {
		t.Fatalf("keys %+v %v", keys, err)
	}
	ex, err := e.client("vc-1").ExportInterchange(context.Background(), &opspb.ExportInterchangeRequest{})
	if err != nil || ex.Keys != 1 {
		t.Fatalf("export %+v %v", ex, err)
	}
	ic, err := eth.DecodeInterchange(ex.InterchangeJson)
	if err != nil || ic.GenesisValidatorsRoot != gvr || len(ic.Data) != 1 || len(ic.Data[0].SignedBlocks) != 1 || ic.Data[0].SignedBlocks[0].Slot != 1234 {
		t.Fatalf("exported %+v %v", ic, err)
	}
	// A new key with history imports (registering the key); a conflicting
	// history is refused whole.
	ic.Data[0].Pubkey = eth.Pubkey(blsKey(1))
	doc, err := eth.EncodeInterchange(ic)
	if err != nil {
		t.Fatal(err)
	}
	conflict := *ic
	conflict.Data = append([]eth.InterchangeRecord(nil), ic.Data...)
	conflict.Data[0].Pubkey = eth.Pubkey(blsKey(0))
	conflict.Data[0].SignedBlocks = []eth.SignedBlock{{Slot: 1234, SigningRoot: eth.KnownRoot(eth.Root{9})}}
	bad, err := eth.EncodeInterchange(&conflict)
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		name     string
		caller   string
		doc      []byte
		accepted bool
		code     codes.Code
	}{
		{name: "new key", caller: "regentctl", doc: doc, accepted: true},
		{name: "conflicting block", caller: "regentctl", doc: bad, accepted: false},
		{name: "garbage", caller: "regentctl", doc: []byte("{"), code: codes.InvalidArgument},
		{name: "empty", caller: "regentctl", doc: nil, code: codes.InvalidArgument},
		{name: "client may not import", caller: "vc-1", doc: doc, code: codes.PermissionDenied},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			before := e.p.stateBytes(t)
			resp, err := e.client(row.caller).ImportInterchange(context.Background(), &opspb.ImportInterchangeRequest{InterchangeJson: row.doc})
			if row.code != codes.OK {
				if status.Code(err) != row.code {
					t.Fatalf("got %v, want %v", err, row.code)
				}
			} else if err != nil || resp.Accepted != row.accepted || (resp.Reason == "") == !row.accepted {
				t.Fatalf("got %+v, %v", resp, err)
			}
			if !row.accepted && !bytes.Equal(before, e.p.stateBytes(t)) {
				t.Fatal("a refused import changed the state")
			}
		})
	}
	keys, _ = e.client("vc-1").ListKeys(context.Background(), &opspb.ListKeysRequest{})
	if len(keys.Keys) != 2 {
		t.Fatalf("after import: %d keys", len(keys.Keys))
	}
	exportRows := []struct {
		name string
		req  *opspb.ExportInterchangeRequest
		keys uint32
		code codes.Code
	}{
		{name: "one key", req: &opspb.ExportInterchangeRequest{Pubkeys: [][]byte{blsKey(1)}}, keys: 1},
		{name: "explicit network", req: &opspb.ExportInterchangeRequest{GenesisValidatorsRoot: gvr[:]}, keys: 2},
		{name: "unknown key", req: &opspb.ExportInterchangeRequest{Pubkeys: [][]byte{blsKey(7)}}, code: codes.NotFound},
		{name: "short key", req: &opspb.ExportInterchangeRequest{Pubkeys: [][]byte{{1, 2}}}, code: codes.InvalidArgument},
		{name: "other network", req: &opspb.ExportInterchangeRequest{Pubkeys: [][]byte{blsKey(1)}, GenesisValidatorsRoot: make([]byte, 32)}, code: codes.InvalidArgument},
	}
	for _, row := range exportRows {
		t.Run("export "+row.name, func(t *testing.T) {
			resp, err := e.client("vc-1").ExportInterchange(context.Background(), row.req)
			if status.Code(err) != row.code || (row.code == codes.OK && resp.Keys != row.keys) {
				t.Fatalf("got %+v, %v", resp, err)
			}
		})
	}
}

type fakeImporter struct {
	pk  bls.PublicKey
	err error
}

func (f fakeImporter) ImportKeystore(context.Context, []byte, string) (bls.PublicKey, error) {
	return f.pk, f.err
}

func TestImportKeystore(t *testing.T) {
	var pk bls.PublicKey
	copy(pk[:], blsKey(3))
	rows := []struct {
		name   string
		keys   opsapi.KeyImporter
		caller string
		req    *opspb.ImportKeystoreRequest
		code   codes.Code
		msg    string
	}{
		{name: "imported", keys: fakeImporter{pk: pk}, caller: "regentctl", req: &opspb.ImportKeystoreRequest{KeystoreJson: []byte("{}"), Password: "pw"}},
		{name: "no signing here", caller: "regentctl", req: &opspb.ImportKeystoreRequest{KeystoreJson: []byte("{}")}, code: codes.FailedPrecondition, msg: "signing is not configured on this region"},
		{name: "signing side not running", keys: fakeImporter{err: fmt.Errorf("x: %w", opsapi.ErrSigningNotConfigured)}, caller: "regentctl", req: &opspb.ImportKeystoreRequest{KeystoreJson: []byte("{}")}, code: codes.FailedPrecondition, msg: "signing is not configured on this region"},
		{name: "duplicate", keys: fakeImporter{err: fmt.Errorf("x: %w", opsapi.ErrKeyDuplicate)}, caller: "regentctl", req: &opspb.ImportKeystoreRequest{KeystoreJson: []byte("{}")}, code: codes.AlreadyExists},
		{name: "bad password", keys: fakeImporter{err: fmt.Errorf("x: %w", opsapi.ErrKeystore)}, caller: "regentctl", req: &opspb.ImportKeystoreRequest{KeystoreJson: []byte("{}")}, code: codes.InvalidArgument},
		{name: "no quorum", keys: fakeImporter{err: fmt.Errorf("x: %w", leader.ErrUnavailable)}, caller: "regentctl", req: &opspb.ImportKeystoreRequest{KeystoreJson: []byte("{}")}, code: codes.Unavailable},
		{name: "other failure", keys: fakeImporter{err: errors.New("hsm on fire")}, caller: "regentctl", req: &opspb.ImportKeystoreRequest{KeystoreJson: []byte("{}")}, code: codes.FailedPrecondition, msg: "hsm on fire"},
		{name: "empty keystore", keys: fakeImporter{pk: pk}, caller: "regentctl", req: &opspb.ImportKeystoreRequest{}, code: codes.InvalidArgument},
		{name: "client may not import", keys: fakeImporter{pk: pk}, caller: "vc-1", req: &opspb.ImportKeystoreRequest{KeystoreJson: []byte("{}")}, code: codes.PermissionDenied},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			e := newEnv(t, envOpts{keys: row.keys})
			resp, err := e.client(row.caller).ImportKeystore(context.Background(), row.req)
			if status.Code(err) != row.code || !strings.Contains(status.Convert(err).Message(), row.msg) {
				t.Fatalf("got %+v, %v; want %v %q", resp, err, row.code, row.msg)
			}
			if row.code == codes.OK && !bytes.Equal(resp.Pubkey, pk[:]) {
				t.Fatalf("pubkey %x", resp.Pubkey)
			}
		})
	}
}

func TestMembershipWithoutRaft(t *testing.T) {
	e := newEnv(t, envOpts{})
	if _, err := e.client("vc-1").Members(context.Background(), &opspb.MembersRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("members: %v", err)
	}
	rows := []struct {
		name   string
		caller string
		call   func(c opspb.OperationsClient) error
		code   codes.Code
	}{
		{"add needs operator", "vc-1", func(c opspb.OperationsClient) error {
			_, err := c.AddMember(context.Background(), &opspb.AddMemberRequest{Id: "dc4", Address: "127.0.0.1:7000"})
			return err
		}, codes.PermissionDenied},
		{"add bad id", "regentctl", func(c opspb.OperationsClient) error {
			_, err := c.AddMember(context.Background(), &opspb.AddMemberRequest{Id: "DC 4", Address: "127.0.0.1:7000"})
			return err
		}, codes.InvalidArgument},
		{"add bad address", "regentctl", func(c opspb.OperationsClient) error {
			_, err := c.AddMember(context.Background(), &opspb.AddMemberRequest{Id: "dc4", Address: "127.0.0.1"})
			return err
		}, codes.InvalidArgument},
		{"add bad port", "regentctl", func(c opspb.OperationsClient) error {
			_, err := c.AddMember(context.Background(), &opspb.AddMemberRequest{Id: "dc4", Address: "host:99999"})
			return err
		}, codes.InvalidArgument},
		{"remove bad id", "regentctl", func(c opspb.OperationsClient) error {
			_, err := c.RemoveMember(context.Background(), &opspb.RemoveMemberRequest{Id: ""})
			return err
		}, codes.InvalidArgument},
		{"add without raft", "regentctl", func(c opspb.OperationsClient) error {
			_, err := c.AddMember(context.Background(), &opspb.AddMemberRequest{Id: "dc4", Address: "127.0.0.1:7000"})
			return err
		}, codes.Unavailable},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			if err := row.call(e.client(row.caller)); status.Code(err) != row.code {
				t.Fatalf("got %v, want %v", err, row.code)
			}
		})
	}
}

// The listener's rate limiter is in the chain: a burst of calls from one
// identity is cut to the bucket's size plus its refill.
func TestListenerRateLimits(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client("vc-1")
	start := time.Now()
	ok, limited := 0, 0
	const calls = 3 * limiter.DefaultBurst
	for range calls {
		_, err := c.Status(context.Background(), &opspb.StatusRequest{})
		switch status.Code(err) {
		case codes.OK:
			ok++
		case codes.ResourceExhausted:
			limited++
		default:
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	if bound := float64(limiter.DefaultBurst) + limiter.DefaultRate*elapsed.Seconds() + 1; float64(ok) > bound {
		t.Fatalf("%d calls allowed in %v, bound %.1f", ok, elapsed, bound)
	}
	if float64(calls) > float64(limiter.DefaultBurst)+limiter.DefaultRate*elapsed.Seconds()+1 && limited == 0 {
		t.Fatalf("no call limited in %v", elapsed)
	}
	// Another identity has its own bucket.
	if _, err := e.client("regentctl").Status(context.Background(), &opspb.StatusRequest{}); err != nil {
		t.Fatalf("another identity limited: %v", err)
	}
}
