package failover

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/slashing/cometbft"
	"github.com/regent-signer/regent/slashing/eth"
)

const testCluster = "regent-test"

var (
	testGVR  = eth.Root(sha256.Sum256([]byte("test chain")))
	otherGVR = eth.Root(sha256.Sum256([]byte("other chain")))
)

const testChain = "test-chain"

// testOp is an operator with its private key.
type testOp struct {
	id     string
	role   failoverpb.Role
	signer crypto.Signer
	der    []byte
}

func edOp(t testing.TB, id string, role failoverpb.Role) testOp {
	t.Helper()
	seed := sha256.Sum256([]byte("operator " + id))
	k := ed25519.NewKeyFromSeed(seed[:])
	der, err := opsig.MarshalPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return testOp{id: id, role: role, signer: k, der: der}
}

func p256Op(t testing.TB, id string, role failoverpb.Role) testOp {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := opsig.MarshalPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return testOp{id: id, role: role, signer: k, der: der}
}

// cluster is a Machine with operators bootstrapped: alice (admin,
// Ed25519), bob (admin, P-256), carol (operator, Ed25519), erin (auditor);
// thresholds handover 2, registry 2, policy 2, exit 1, keys 1; exit limit
// 2 per day; finality quorum 2. Lease on dc1 at epoch 1; keys: BLS 0..1 on
// testGVR and otherGVR, Ed25519 0..1 on testChain.
type cluster struct {
	t   testing.TB
	m   *Machine
	ops map[string]testOp
}

type clusterOpt func(*clusterConfig)

type clusterConfig struct {
	noBootstrap bool
}

func withoutBootstrap() clusterOpt { return func(c *clusterConfig) { c.noBootstrap = true } }

func newCluster(t testing.TB, opts ...clusterOpt) *cluster {
	t.Helper()
	var cfg clusterConfig
	for _, o := range opts {
		o(&cfg)
	}
	m, err := NewMachine(MachineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, m: m, ops: map[string]testOp{}}
	for _, o := range []testOp{
		edOp(t, "alice", failoverpb.Role_ROLE_ADMIN),
		p256Op(t, "bob", failoverpb.Role_ROLE_ADMIN),
		edOp(t, "carol", failoverpb.Role_ROLE_OPERATOR),
		edOp(t, "erin", failoverpb.Role_ROLE_AUDITOR),
	} {
		c.ops[o.id] = o
	}
	// Keys are added unsigned before bootstrap (the leader path, still open).
	add := &commandpb.AddKeys{}
	for i := 0; i < 2; i++ {
		add.Keys = append(add.Keys,
			&commandpb.AddKey{Pubkey: blsKey(i), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: leader.RootHex(testGVR)},
			&commandpb.AddKey{Pubkey: blsKey(10 + i), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: leader.RootHex(otherGVR)},
			&commandpb.AddKey{Pubkey: edKey(i), Scheme: commandpb.Scheme_SCHEME_ED25519, Network: testChain})
	}
	if _, err := m.Apply("dc1", commandpb.CommandType_ADD_KEY, add); err != nil {
		t.Fatal(err)
	}
	if !cfg.noBootstrap {
		c.bootstrap()
	}
	return c
}

func (c *cluster) bootstrapMsg() *failoverpb.BootstrapOperators {
	b := &failoverpb.BootstrapOperators{ClusterId: testCluster, ExitLimitPerDay: 2, FinalityQuorum: 2}
	for _, id := range []string{"alice", "bob", "carol", "erin"} {
		o := c.ops[id]
		b.Operators = append(b.Operators, &failoverpb.Operator{Id: o.id, PublicKey: o.der, Role: o.role})
	}
	b.Thresholds = []*failoverpb.Threshold{
		{Action: failoverpb.Action_ACTION_HANDOVER, Required: 2},
		{Action: failoverpb.Action_ACTION_REGISTRY, Required: 2},
		{Action: failoverpb.Action_ACTION_POLICY, Required: 2},
		{Action: failoverpb.Action_ACTION_EXIT, Required: 1},
		{Action: failoverpb.Action_ACTION_KEYS, Required: 1},
	}
	return b
}

func (c *cluster) bootstrap() {
	c.t.Helper()
	c.mustAccept(c.m.Apply("dc1", commandpb.CommandType_BOOTSTRAP_OPERATORS, c.bootstrapMsg()))
}

// body builds an unsigned command of operator op with action set by fn.
func (c *cluster) body(op string, fn func(*failoverpb.OperatorCommand)) *failoverpb.OperatorCommand {
	c.t.Helper()
	b := opsig.Builder{ClusterID: testCluster, OperatorID: op, Now: c.m.Now, TTL: time.Hour}
	cmd, err := b.New()
	if err != nil {
		c.t.Fatal(err)
	}
	fn(cmd)
	return cmd
}

// sign signs cmd as its operator and co-signs with others.
func (c *cluster) sign(cmd *failoverpb.OperatorCommand, others ...string) *failoverpb.SignedCommand {
	c.t.Helper()
	sc, err := opsig.SignCommand(cmd, c.ops[cmd.OperatorId].signer)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, o := range others {
		if err := opsig.Cosign(sc, o, c.ops[o].signer); err != nil {
			c.t.Fatal(err)
		}
	}
	return sc
}

// submit applies a signed command proposed by proposer.
func (c *cluster) submit(proposer string, sc *failoverpb.SignedCommand) Result {
	c.t.Helper()
	v, err := c.m.Apply(proposer, commandpb.CommandType_OPERATOR_COMMAND, sc)
	if err != nil {
		c.t.Fatalf("operator command: handler error %v", err)
	}
	r, ok := v.(Result)
	if !ok {
		c.t.Fatalf("operator command: value %T", v)
	}
	return r
}

// do builds, signs (op first, then cosigners) and submits from dc1.
func (c *cluster) do(op string, fn func(*failoverpb.OperatorCommand), cosigners ...string) Result {
	c.t.Helper()
	return c.submit("dc1", c.sign(c.body(op, fn), cosigners...))
}

func (c *cluster) mustDo(op string, fn func(*failoverpb.OperatorCommand), cosigners ...string) Result {
	c.t.Helper()
	r := c.do(op, fn, cosigners...)
	if !r.Accepted {
		c.t.Fatalf("%s by %s: refused: %v", r.Action, op, r.Err)
	}
	return r
}

func (c *cluster) mustAccept(v any, err error) Result {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("handler error: %v", err)
	}
	r, ok := v.(Result)
	if !ok {
		c.t.Fatalf("value %T", v)
	}
	if !r.Accepted {
		c.t.Fatalf("%s refused: %v", r.Action, r.Err)
	}
	return r
}

func request(to, reason string) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_RequestHandover{RequestHandover: &failoverpb.RequestHandover{To: to, Reason: reason}}
	}
}

func approve(id uint64) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_ApproveHandover{ApproveHandover: &failoverpb.ApproveHandover{HandoverId: id}}
	}
}

func cancelH(id uint64) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_CancelHandover{CancelHandover: &failoverpb.CancelHandover{HandoverId: id, Reason: "changed our minds"}}
	}
}

func drPolicy(region string, sec uint32, enabled bool) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_SetDrPolicy{SetDrPolicy: &failoverpb.SetDRPolicy{Region: region, SilenceSeconds: sec, Enabled: enabled}}
	}
}

// requestAndFence requests a handover to `to` (alice) and approves it
// (bob), which fences; returns the handover id.
func (c *cluster) requestAndFence(to string) uint64 {
	c.t.Helper()
	r := c.mustDo("alice", request(to, "planned move"))
	c.mustDo("bob", approve(r.Handover.ID))
	if l := c.m.Lease(); l.State != leader.LeaseFenced {
		c.t.Fatalf("lease %s after approvals", l.State)
	}
	return r.Handover.ID
}

func (c *cluster) lease() leader.Lease { return c.m.Lease() }

func (c *cluster) fs() (out *State) {
	c.m.View(func(_ *leader.State, s *State) { out = s })
	return out
}

func (c *cluster) open() (Handover, bool) {
	var h Handover
	var ok bool
	c.m.View(func(_ *leader.State, s *State) { h, ok = s.OpenHandover() })
	return h, ok
}

func (c *cluster) audit() []AuditRecord {
	var a []AuditRecord
	c.m.View(func(_ *leader.State, s *State) { a = s.Audit() })
	return a
}

// record applies a RecordSignatures entry proposed by holder.
func (c *cluster) record(holder string, epoch uint64, recs ...*commandpb.ProtectionRecord) (leader.BatchResult, error) {
	v, err := c.m.Apply(holder, commandpb.CommandType_RECORD_SIGNATURES, &commandpb.RecordSignatures{Holder: holder, LeaseEpoch: epoch, Records: recs})
	if err != nil {
		return leader.BatchResult{}, err
	}
	return v.(leader.BatchResult), nil
}

func (c *cluster) mustRecord(holder string, epoch uint64, recs ...*commandpb.ProtectionRecord) {
	c.t.Helper()
	res, err := c.record(holder, epoch, recs...)
	if err != nil {
		c.t.Fatal(err)
	}
	for i, o := range res.Outcomes {
		if !o.Accepted() {
			c.t.Fatalf("record %d refused: %v", i, o.Reason)
		}
	}
}

// confirm proposes ConfirmFinality from proposer.
func (c *cluster) confirm(proposer string, cf *failoverpb.ConfirmFinality) Result {
	c.t.Helper()
	v, err := c.m.Apply(proposer, commandpb.CommandType_CONFIRM_FINALITY, cf)
	if err != nil {
		c.t.Fatalf("confirm: handler error %v", err)
	}
	return v.(Result)
}

func blsKey(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint("bls", i)))
	return append(h[:], h[:16]...)
}

func edKey(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint("ed", i)))
	return h[:]
}

func sroot(parts ...any) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return h[:]
}

func att(gvr eth.Root, key int, src, tgt uint64) *commandpb.ProtectionRecord {
	return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
		GenesisValidatorsRoot: gvr[:], Pubkey: blsKey(key), SourceEpoch: src, TargetEpoch: tgt, SigningRoot: sroot("att", key, src, tgt)}}}
}

func block(gvr eth.Root, key int, slot uint64) *commandpb.ProtectionRecord {
	return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthBlock{EthBlock: &commandpb.EthBlock{
		GenesisValidatorsRoot: gvr[:], Pubkey: blsKey(key), Slot: slot, SigningRoot: sroot("block", key, slot)}}}
}

func comet(t testing.TB, key int, height int64) *commandpb.ProtectionRecord {
	t.Helper()
	v := cometbft.CanonicalVote{Type: cometbft.TypePrevote, Height: height, ChainID: testChain, Timestamp: cometbft.Timestamp{Seconds: 1},
		BlockID: &cometbft.BlockID{Hash: sroot("b", height), PartSetHeader: cometbft.PartSetHeader{Total: 1, Hash: sroot("p", height)}}}
	sb, err := cometbft.EncodeVoteSignBytes(v)
	if err != nil {
		t.Fatal(err)
	}
	return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_Comet{Comet: &commandpb.CometSign{
		Pubkey: edKey(key), ChainId: testChain, Height: height, Round: 0, Step: 2, SignBytes: sb}}}
}

// ethEv and cometEv build evidence entries with n endpoints.
func ethEv(gvr eth.Root, epoch uint64, n int) *failoverpb.EthFinality {
	return &failoverpb.EthFinality{GenesisValidatorsRoot: append([]byte(nil), gvr[:]...), FinalizedEpoch: epoch,
		FinalizedRoot: sroot("cp", epoch), Endpoints: endpoints("beacon", n)}
}

func cometEv(chain string, height int64, n int) *failoverpb.CometFinality {
	return &failoverpb.CometFinality{ChainId: chain, Height: height, BlockHash: sroot("blk", height), Endpoints: endpoints("rpc", n)}
}

func endpoints(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("https://%s-%d.example", prefix, i)
	}
	return out
}

// withoutAudit returns the machine's state bytes with the failover
// audit chain removed: "nothing but the audit changed" compares these.
func withoutAudit(t testing.TB, m *Machine) []byte {
	t.Helper()
	full, err := m.StateBytes()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := bytes.NewReader(full)
	for {
		var h [12]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return out.Bytes()
			}
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint64(h[4:]))
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
		if binary.BigEndian.Uint32(h[:4]) == 100 && len(body) > 0 && string(body[1:1+int(body[0])]) == Name {
			sec := body[1+int(body[0]):]
			var p failoverpb.FailoverSnapshot
			if err := proto.Unmarshal(sec[8:], &p); err != nil {
				t.Fatal(err)
			}
			p.Audit = nil
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&p)
			if err != nil {
				t.Fatal(err)
			}
			body = append(append([]byte{}, body[:1+int(body[0])+8]...), b...)
		}
		out.Write(h[:4])
		out.Write(body)
	}
}

// checkInvariants asserts what must hold after every entry.
func checkInvariants(t testing.TB, m *Machine) {
	t.Helper()
	m.View(func(ls *leader.State, s *State) {
		l := ls.Lease()
		if l.State == leader.LeaseActive && l.Holder == "" {
			t.Fatalf("active lease without holder")
		}
		if i, err := VerifyChain(s.audit); err != nil {
			t.Fatalf("audit chain broken at %d: %v", i, err)
		}
		open := 0
		for i, h := range s.handovers {
			if h.State.Open() {
				open++
				if i != len(s.handovers)-1 {
					t.Fatalf("open handover %d is not the last", h.ID)
				}
			}
		}
		if open > 1 {
			t.Fatalf("%d open handovers", open)
		}
		if h := s.open(); h != nil && h.State == HandoverFenced && (l.State != leader.LeaseFenced || l.Epoch != h.FencedEpoch) {
			t.Fatalf("handover %d fenced at epoch %d but lease is %s at %d", h.ID, h.FencedEpoch, l.State, l.Epoch)
		}
	})
}
