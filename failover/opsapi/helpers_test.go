package opsapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsapi"
	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/leader/nodeapi"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/slashing/eth"
)

const clusterID = "regent-ops-test"

var gvr = eth.Root(sha256.Sum256([]byte("ops test chain")))

func blsKey(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint("ops key ", i)))
	return append(h[:], h[:16]...)
}

// operators of the test registry: alice and bob admins, carol operator,
// erin auditor; every threshold 2 except exit and keys 1.
var opNames = []string{"alice", "bob", "carol", "erin"}

func opKey(id string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("ops operator " + id))
	return ed25519.NewKeyFromSeed(seed[:])
}

// mode is how the fake proposer behaves.
type mode int

const (
	// onLeader applies and returns the value, like Service on the leader.
	onLeader mode = iota
	// forwarded applies but returns only the index (accepted) or
	// ErrRejected without index (refused), like a forwarded proposal.
	forwarded
	// maybe returns ErrMaybeCommitted without applying.
	maybe
	// down returns ErrUnavailable without applying.
	down
)

// proposer applies commands to a failover.Machine the way
// leader.Service.Propose reports them.
type proposer struct {
	mu    sync.Mutex
	m     *failover.Machine
	mode  mode
	calls int
}

func (p *proposer) Propose(_ context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	switch p.mode {
	case maybe:
		return fsm.Response{}, fmt.Errorf("%w: leadership lost", leader.ErrMaybeCommitted)
	case down:
		return fsm.Response{}, fmt.Errorf("%w: no quorum", leader.ErrUnavailable)
	}
	index := p.m.NextIndex()
	v, err := p.m.Apply("dc1", t, msg)
	resp := fsm.Response{Index: index, Value: v, Err: err}
	if err == nil {
		if r, ok := v.(interface{ Refusal() error }); ok && r.Refusal() != nil {
			err = fmt.Errorf("%w: %w", leader.ErrRejected, r.Refusal())
		}
	}
	if p.mode == forwarded {
		if err != nil {
			return fsm.Response{}, fmt.Errorf("%w: rejected at index %d: %v", leader.ErrRejected, index, err)
		}
		return fsm.Response{Index: index}, nil
	}
	return resp, err
}

func (p *proposer) now() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.Now()
}

func (p *proposer) apply(t testing.TB, proposerID string, ct commandpb.CommandType, msg proto.Message) any {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	v, err := p.m.Apply(proposerID, ct, msg)
	if err != nil {
		t.Fatalf("apply %v: %v", ct, err)
	}
	return v
}

func (p *proposer) stateBytes(t testing.TB) []byte {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := p.m.StateBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// devPKI writes a dev PKI (dc1..dc3, operator regentctl, client vc-1).
func devPKI(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Init(dir, pki.Options{Clients: []string{"vc-1"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// env is one region's operator API over real mutual TLS, backed by a
// failover.Machine.
type env struct {
	t    testing.TB
	p    *proposer
	addr string
	dir  string
}

type envOpts struct {
	mode mode
	keys opsapi.KeyImporter
	// prepare runs on the machine before bootstrap (unsigned commands).
	prepare func(p *proposer)
	// noBootstrap leaves the registry empty.
	noBootstrap bool
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	m, err := failover.NewMachine(failover.MachineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p := &proposer{m: m}
	if o.prepare != nil {
		o.prepare(p)
	}
	if !o.noBootstrap {
		boot := &failoverpb.BootstrapOperators{ClusterId: clusterID, FinalityQuorum: 1, ExitLimitPerDay: 3}
		roles := map[string]failoverpb.Role{"alice": failoverpb.Role_ROLE_ADMIN, "bob": failoverpb.Role_ROLE_ADMIN,
			"carol": failoverpb.Role_ROLE_OPERATOR, "erin": failoverpb.Role_ROLE_AUDITOR}
		for _, id := range opNames {
			der, err := opsig.MarshalPublicKey(opKey(id).Public())
			if err != nil {
				t.Fatal(err)
			}
			boot.Operators = append(boot.Operators, &failoverpb.Operator{Id: id, PublicKey: der, Role: roles[id]})
		}
		thr := map[failoverpb.Action]uint32{failoverpb.Action_ACTION_HANDOVER: 2, failoverpb.Action_ACTION_REGISTRY: 2,
			failoverpb.Action_ACTION_POLICY: 2, failoverpb.Action_ACTION_EXIT: 1, failoverpb.Action_ACTION_KEYS: 1}
		for _, a := range failover.Actions() {
			boot.Thresholds = append(boot.Thresholds, &failoverpb.Threshold{Action: a, Required: thr[a]})
		}
		if r := p.apply(t, "dc1", commandpb.CommandType_BOOTSTRAP_OPERATORS, boot).(failover.Result); !r.Accepted {
			t.Fatalf("bootstrap: %v", r.Err)
		}
	}
	p.mode = o.mode
	dir := devPKI(t)
	mat, err := pki.LoadTLS(filepath.Join(dir, "ca.crt"), pki.CertPath(dir, "dc1"), pki.KeyPath(dir, "dc1"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := mat.ServerConfig(pki.RoleOperator, pki.RoleNode, pki.RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	g := nodeapi.NewGRPCServer(credentials.NewTLS(sc), slog.New(slog.DiscardHandler), &nodeapi.Server{NodeID: "dc1", Region: "dc1", FSM: m.FSM})
	if err := opsapi.Register(g, opsapi.Deps{NodeID: "dc1", FSM: m.FSM, Proposer: p, Keys: o.keys, OutcomeWait: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return &env{t: t, p: p, addr: ln.Addr().String(), dir: dir}
}

// client dials the env as identity name (a dev PKI certificate).
func (e *env) client(name string) opspb.OperationsClient {
	e.t.Helper()
	mat, err := pki.LoadTLS(filepath.Join(e.dir, "ca.crt"), pki.CertPath(e.dir, name), pki.KeyPath(e.dir, name))
	if err != nil {
		e.t.Fatal(err)
	}
	tc, err := mat.ClientConfig("127.0.0.1")
	if err != nil {
		e.t.Fatal(err)
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return opspb.NewOperationsClient(conn)
}

// sign builds a command from the submitter with action set by fill, signed
// by the submitter and cosigned by others.
func (e *env) sign(submitter string, fill func(*failoverpb.OperatorCommand), others ...string) []byte {
	e.t.Helper()
	b := opsig.Builder{ClusterID: clusterID, OperatorID: submitter, Now: e.p.now}
	cmd, err := b.New()
	if err != nil {
		e.t.Fatal(err)
	}
	fill(cmd)
	sc, err := opsig.SignCommand(cmd, opKey(submitter))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, o := range others {
		if err := opsig.Cosign(sc, o, opKey(o)); err != nil {
			e.t.Fatal(err)
		}
	}
	out, err := opsig.EncodeSigned(sc)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func request(to, reason string) func(*failoverpb.OperatorCommand) {
	return func(c *failoverpb.OperatorCommand) {
		c.Action = &failoverpb.OperatorCommand_RequestHandover{RequestHandover: &failoverpb.RequestHandover{To: to, Reason: reason}}
	}
}

func approve(id uint64) func(*failoverpb.OperatorCommand) {
	return func(c *failoverpb.OperatorCommand) {
		c.Action = &failoverpb.OperatorCommand_ApproveHandover{ApproveHandover: &failoverpb.ApproveHandover{HandoverId: id}}
	}
}

// badSignature flips a bit of the first signature.
func badSignature(t testing.TB, signed []byte) []byte {
	t.Helper()
	var sc failoverpb.SignedCommand
	if err := proto.Unmarshal(signed, &sc); err != nil {
		t.Fatal(err)
	}
	sc.Signatures[0].Signature[3] ^= 1
	out, err := opsig.EncodeSigned(&sc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// audit returns the replica's audit chain.
func (e *env) audit() []failover.AuditRecord {
	var out []failover.AuditRecord
	e.p.m.FSM.View(func(ls *leader.State, _ uint64) { out = failover.From(ls).Audit() })
	return out
}
