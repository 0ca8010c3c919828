package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/signer/hsm"
	"github.com/regent-signer/regent/signer/hsm/hsmtest"
	"github.com/regent-signer/regent/signer/privval"
	"github.com/regent-signer/regent/signer/privval/cometbfttest"
	"github.com/regent-signer/regent/slashing"
	"github.com/regent-signer/regent/slashing/cometbft"
)

// cometEnvGuard must be "1" for the real-node tests to run (the same
// variable package cometbfttest reads).
const cometEnvGuard = "REGENT_COMETBFT_TEST"

// requireCometBFT gates the real-node tests exactly as package cometbfttest
// does: they run real processes and need the network once (to build
// cometbft), so only with REGENT_COMETBFT_TEST=1 and not in -short mode.
func requireCometBFT(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real CometBFT node: skipped in -short mode")
	}
	if os.Getenv(cometEnvGuard) != "1" {
		t.Skipf("real CometBFT node: set %s=1 (or run make cometbft-test)", cometEnvGuard)
	}
}

// cometBinary returns the cached cometbft binary of version, building it on
// first use.
func cometBinary(t *testing.T, version string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	bin, err := cometbfttest.Binary(ctx, version)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("built cometbft %s in %v (cached at %s)", version, d.Round(time.Second), bin)
	}
	return bin
}

// writeValidatorKeyFile writes k as a CometBFT priv_validator_key.json
// (mode 0600), the file an operator would import.
func writeValidatorKeyFile(t *testing.T, path string, k ed25519.PrivateKey) {
	t.Helper()
	pub := k.Public().(ed25519.PublicKey)
	typed := func(typ string, b []byte) map[string]string {
		return map[string]string{"type": typ, "value": base64.StdEncoding.EncodeToString(b)}
	}
	body, err := json.MarshalIndent(map[string]any{
		"address":  cometbfttest.Address(pub),
		"pub_key":  typed("tendermint/PubKeyEd25519", pub),
		"priv_key": typed("tendermint/PrivKeyEd25519", k),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
}

// newCometCluster starts dc1..dc3 as newSigningCluster does — each region
// with its own SoftHSM2 token, one PKCS#11 module for the process, real TCP
// and mutual TLS between regions — and configures privval on every region
// for chainID: dial addr[region] (the node's priv_validator_laddr), accept
// any node key, a connection key of the
// region's own written with privval.WriteConnKey, policy identity
// "cometbft-<chainID>". Each region also serves /metrics on a loopback
// port. dc1 holds the lease.
func newCometCluster(t *testing.T, chainID string, addr map[string]string) *testCluster {
	t.Helper()
	env := hsmtest.New(t)
	dir := t.TempDir()
	for _, r := range []string{"dc1", "dc2", "dc3"} {
		env.InitToken(t, "regent-"+r, "1234")
		if err := os.WriteFile(filepath.Join(dir, r+".pin"), []byte("1234\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, ck, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := privval.WriteConnKey(filepath.Join(dir, r+".privval-conn.pem"), ck); err != nil {
			t.Fatal(err)
		}
	}
	module, err := hsm.LoadModule(env.Module)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = module.Close() }) // after the regions close (cleanups run last-in first-out)
	c := newTestClusterFull(t, &testCluster{
		configure: func(r string, c *Config) {
			c.HSM.Module, c.HSM.TokenLabel, c.HSM.PINFile = env.Module, "regent-"+r, filepath.Join(dir, r+".pin")
			c.Network = "mainnet"
			c.API.HTTP = freeAddr(t)
			c.Privval = []PrivvalConfig{{
				ChainID:           chainID,
				Address:           addr[r],
				NodeKeys:          []string{"any"},
				ConnectionKeyFile: filepath.Join(dir, r+".privval-conn.pem"),
				Identity:          "cometbft-" + chainID,
			}}
		},
		opts: func(_ string, o *Options) { o.HSMModule = module },
	})
	c.waitFor(20*time.Second, "every region to publish its HSM wrapping key", func() error {
		var n int
		c.nodes["dc1"].FSM.View(func(s *leader.State, _ uint64) { n = len(s.Regions()) })
		if n != 3 {
			return fmt.Errorf("%d regions registered", n)
		}
		return nil
	})
	return c
}

// proposeOnLeader proposes a control command on the current Raft leader
// (some commands cannot be forwarded), retrying while there is none or the
// outcome is unknown. Only for commands that are idempotent.
func (c *testCluster) proposeOnLeader(typ commandpb.CommandType, msg proto.Message) {
	c.t.Helper()
	c.waitFor(20*time.Second, fmt.Sprintf("%v on the leader", typ), func() error {
		var running []string
		for _, r := range c.regions {
			if _, ok := c.nodes[r]; ok {
				running = append(running, r)
			}
		}
		l := c.leaderOf(running...)
		if l == "" {
			return errors.New("no leader")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.nodes[l].Service.Propose(ctx, typ, msg)
		return err
	})
}

// privvalCounts is what one region's privval signer did, read from its
// /metrics: requests by type and outcome, connection events by result.
type privvalCounts struct {
	requests    map[[2]string]float64 // {type, outcome}
	connections map[string]float64    // result
}

func (p privvalCounts) signed() float64 {
	return p.requests[[2]string{privval.ReqSignVote, privval.OutcomeOK}] + p.requests[[2]string{privval.ReqSignProposal, privval.OutcomeOK}]
}

func (p privvalCounts) refused() float64 {
	var n float64
	for k, v := range p.requests {
		if (k[0] == privval.ReqSignVote || k[0] == privval.ReqSignProposal) && k[1] != privval.OutcomeOK {
			n += v
		}
	}
	return n
}

func (p privvalCounts) String() string {
	var parts []string
	for k, v := range p.requests {
		parts = append(parts, fmt.Sprintf("%s/%s=%v", k[0], k[1], v))
	}
	for k, v := range p.connections {
		parts = append(parts, fmt.Sprintf("conn/%s=%v", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// scrapePrivval reads region r's privval counters for chainID from its
// /metrics endpoint.
func (c *testCluster) scrapePrivval(r, chainID string) (privvalCounts, error) {
	out := privvalCounts{requests: map[[2]string]float64{}, connections: map[string]float64{}}
	n, ok := c.nodes[r]
	if !ok {
		return out, fmt.Errorf("%s is not running", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTPAddr+"/metrics", nil)
	if err != nil {
		return out, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return out, fmt.Errorf("%s /metrics: %w", r, err)
	}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	if f := families[privval.RequestsMetric]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m, "chain_id") == chainID {
				out.requests[[2]string{label(m, "type"), label(m, "outcome")}] += m.GetCounter().GetValue()
			}
		}
	}
	if f := families[privval.ConnectionsMetric]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m, "chain_id") == chainID {
				out.connections[label(m, "result")] += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

// cometRecord is one CometBFT protection record the replicated state
// machine accepted, as found by replaying a region's Raft log.
type cometRecord struct {
	index     uint64
	holder    string
	epoch     uint64
	chainID   string
	pubkey    string // hex
	height    int64
	round     int32
	step      int32
	signBytes []byte // the bytes the holder was cleared to sign (the earlier ones on a timestamp-only re-sign)
}

// raftAudit is what a region's Raft log says was cleared for signing.
type raftAudit struct {
	region  string
	entries int
	comet   []cometRecord
	// unslashable counts accepted non-HRS records (vote extensions) by holder.
	unslashable map[string]int
	// leases lists the lease commands applied, in log order.
	leases []string
}

// auditRaftLog replays region r's Raft log from its bolt store through a
// fresh state machine — the same deterministic Apply every region runs —
// and returns every CometBFT record the state machine accepted, with the
// lease holder and epoch it was accepted under. The region must be closed
// (bolt holds an exclusive lock while it runs). It fails if the log was
// compacted (the replay would need the snapshot).
func auditRaftLog(t *testing.T, dataDir, region string) raftAudit {
	t.Helper()
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dataDir, "raft.db"),
		BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatalf("%s: open raft log: %v", region, err)
	}
	defer store.Close()
	first, err := store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first != 1 {
		t.Fatalf("%s: the raft log starts at index %d (compacted); the audit needs it from 1", region, first)
	}
	audit := raftAudit{region: region, unslashable: map[string]int{}}
	type pending struct {
		recs []*commandpb.ProtectionRecord
	}
	var cur pending
	fc := failover.FSMConfig() // the state machine Start runs
	f, err := fsm.New(fsm.Config[*leader.State]{
		New:      fc.New,
		Registry: fc.Registry,
		Fatal:    func(err error) { t.Errorf("%s: replay stopped: %v", region, err) },
		Applied: func(i uint64, typ commandpb.CommandType, resp fsm.Response) {
			switch typ {
			case commandpb.CommandType_GRANT_LEASE, commandpb.CommandType_FENCE_LEASE, commandpb.CommandType_ACTIVATE_LEASE:
				audit.leases = append(audit.leases, fmt.Sprintf("%d:%v(err=%v)", i, typ, resp.Err))
			case commandpb.CommandType_RECORD_SIGNATURES:
				br, ok := resp.Value.(leader.BatchResult)
				if !ok || resp.Err != nil {
					return // the whole batch was refused (stale holder or epoch): nothing was cleared
				}
				for k, o := range br.Outcomes {
					if o.Decision != slashing.DecisionAccepted || k >= len(cur.recs) {
						continue
					}
					switch r := cur.recs[k].Record.(type) {
					case *commandpb.ProtectionRecord_Comet:
						audit.comet = append(audit.comet, cometRecord{
							index: i, holder: br.Holder, epoch: br.LeaseEpoch, chainID: r.Comet.ChainId,
							pubkey: hex.EncodeToString(r.Comet.Pubkey), height: r.Comet.Height, round: r.Comet.Round,
							step: r.Comet.Step, signBytes: bytes.Clone(o.SignBytes),
						})
					case *commandpb.ProtectionRecord_Unslashable:
						audit.unslashable[br.Holder]++
					}
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			t.Fatalf("%s: raft log entry %d: %v", region, i, err)
		}
		audit.entries++
		cur = pending{}
		if l.Type == raft.LogCommand {
			var env commandpb.Envelope
			if err := proto.Unmarshal(l.Data, &env); err != nil {
				t.Fatalf("%s: entry %d: %v", region, i, err)
			}
			if env.Type == commandpb.CommandType_RECORD_SIGNATURES {
				var rs commandpb.RecordSignatures
				if err := proto.Unmarshal(env.Payload, &rs); err != nil {
					t.Fatalf("%s: entry %d: %v", region, i, err)
				}
				cur.recs = rs.Records
			}
		}
		f.Apply(&l)
	}
	if h := f.Halted(); h != nil {
		t.Fatalf("%s: replay halted: %v", region, h)
	}
	return audit
}

// checkNoDoubleSign reports the first height/round/step at which the state
// machine cleared two different sign bytes for one key and chain — a
// CometBFT double sign, judged on everything Regent could have released.
func checkNoDoubleSign(recs []cometRecord) error {
	type pos struct {
		key, chain string
		h          int64
		r, s       int32
	}
	seen := map[pos][]byte{}
	for _, rec := range recs {
		p := pos{rec.pubkey, rec.chainID, rec.height, rec.round, rec.step}
		if prev, ok := seen[p]; ok && !bytes.Equal(prev, rec.signBytes) {
			return fmt.Errorf("%w: two different messages cleared at %s h=%d r=%d s=%d (entry %d by %s@%d)",
				errDoubleSign, rec.chainID, rec.height, rec.round, rec.step, rec.index, rec.holder, rec.epoch)
		}
		seen[p] = rec.signBytes
	}
	return nil
}

var errDoubleSign = errors.New("double sign")

// commitSignBytes returns the canonical precommit sign bytes of the
// validator's signature in block b's commit, rebuilt from the commit, and
// the signature.
func commitSignBytes(chainID string, b cometbfttest.Block, addr string) (signBytes, sig []byte, err error) {
	for _, s := range b.Sigs {
		if s.ValidatorAddress != addr {
			continue
		}
		sb, err := cometbft.EncodeVoteSignBytes(cometbft.CanonicalVote{
			Type: cometbft.TypePrecommit, Height: b.Height, Round: b.Round,
			BlockID:   &cometbft.BlockID{Hash: b.BlockHash, PartSetHeader: cometbft.PartSetHeader{Total: b.PartTotal, Hash: b.PartsHash}},
			Timestamp: cometbft.Timestamp{Seconds: s.Timestamp.Unix(), Nanos: int32(s.Timestamp.Nanosecond())},
			ChainID:   chainID,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("block %d: rebuilding precommit sign bytes: %w", b.Height, err)
		}
		return sb, s.Signature, nil
	}
	return nil, nil, fmt.Errorf("block %d: no commit signature from %s", b.Height, addr)
}

// findRecord returns the accepted CometBFT record whose cleared sign bytes
// are sb.
func findRecord(recs []cometRecord, sb []byte) (cometRecord, bool) {
	for _, r := range recs {
		if bytes.Equal(r.signBytes, sb) {
			return r, true
		}
	}
	return cometRecord{}, false
}

func sameRecord(a, b cometRecord) bool {
	return a.index == b.index && a.holder == b.holder && a.epoch == b.epoch && a.chainID == b.chainID && a.pubkey == b.pubkey &&
		a.height == b.height && a.round == b.round && a.step == b.step && bytes.Equal(a.signBytes, b.signBytes)
}

// sameRecords reports the first difference between two regions' accepted
// records (I6: what one accepted, every region holds).
func sameRecords(a, b []cometRecord) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d records against %d", len(a), len(b))
	}
	return prefixRecords(a, b)
}

// prefixRecords checks that a is a prefix of b.
func prefixRecords(a, b []cometRecord) error {
	if len(a) > len(b) {
		return fmt.Errorf("%d records, longer than the %d it should prefix", len(a), len(b))
	}
	for i := range a {
		if !sameRecord(a[i], b[i]) {
			return fmt.Errorf("record %d differs: %+v against %+v", i, a[i], b[i])
		}
	}
	return nil
}
