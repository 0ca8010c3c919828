package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/slashing"
)

var gvr = sha256.Sum256([]byte("cluster test chain"))

func key(i int) []byte {
	h := sha256.Sum256([]byte(fmt.Sprint("key", i)))
	return append(h[:], h[:16]...)
}

func keys(n int) []*commandpb.AddKey {
	var out []*commandpb.AddKey
	for i := range n {
		out = append(out, &commandpb.AddKey{Pubkey: key(i), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: leader.RootHex(gvr)})
	}
	return out
}

func attRec(k int, target uint64, salt string) *commandpb.ProtectionRecord {
	r := sha256.Sum256([]byte(fmt.Sprint(k, target, salt)))
	return &commandpb.ProtectionRecord{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
		GenesisValidatorsRoot: gvr[:], Pubkey: key(k), SourceEpoch: target - 1, TargetEpoch: target, SigningRoot: r[:]}}}
}

// recordAll commits one attestation per key at target through region on
// and returns the acknowledged records.
func recordAll(t *testing.T, c *testCluster, on string, n int, target uint64) []*commandpb.ProtectionRecord {
	t.Helper()
	var recs []*commandpb.ProtectionRecord
	for k := range n {
		recs = append(recs, attRec(k, target, "ok"))
	}
	// Records are idempotent (an identical re-sign is accepted), so a batch
	// whose fate is unknown is retried.
	var outs []leader.Outcome
	c.waitFor(20*time.Second, "records to commit on "+on, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		outs, _, _, err = c.nodes[on].Service.Record(ctx, recs)
		return err
	})
	for i, o := range outs {
		if !o.Accepted() {
			t.Fatalf("record %d refused: %s", i, o.Reason)
		}
	}
	return recs
}

// holds reports whether region r holds every record: a conflicting vote
// for each must be refused there as a double vote.
func holds(c *testCluster, r string, recs []*commandpb.ProtectionRecord) error {
	for i, rec := range recs {
		a := rec.GetEthAttestation()
		conflict := attRec(int(i), a.TargetEpoch, "conflict")
		conflict.GetEthAttestation().Pubkey = a.Pubkey
		if o := c.check(r, conflict); o.Rule != slashing.RuleAttDoubleVote {
			return fmt.Errorf("%s lacks record %d (conflict got %s %s)", r, i, o.Decision, o.Reason)
		}
	}
	return nil
}

func TestClusterCommitsOnAllRegions(t *testing.T) {
	c := newTestCluster(t)
	c.waitLeader("dc1")
	c.addKeys("dc1", keys(50)...)
	acked := recordAll(t, c, "dc1", 50, 3)
	for _, r := range c.regions {
		c.waitFor(10*time.Second, r+" to hold every record", func() error { return holds(c, r, acked) })
	}
}

func TestLeaderLossKeepsAcknowledgedRecords(t *testing.T) {
	c := newTestCluster(t)
	c.waitFor(15*time.Second, "leadership on the lease holder", func() error {
		if c.leaderOf(c.regions...) != "dc1" {
			return errors.New("dc1 does not lead yet")
		}
		return nil
	})
	c.addKeys("dc1", keys(20)...)
	acked := recordAll(t, c, "dc1", 20, 5)

	start := time.Now()
	c.stop("dc1")
	l := c.waitLeader("dc2", "dc3")
	t.Logf("new leader %s after %v", l, time.Since(start).Round(time.Millisecond))
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("new leader took %v", el)
	}
	for _, r := range []string{"dc2", "dc3"} {
		// Committed on a majority; a follower applies it once it learns the
		// commit index from the new leader.
		c.waitFor(10*time.Second, r+" to hold every acknowledged record", func() error { return holds(c, r, acked) })
		if ls := c.lease(r); ls.Holder != "dc1" || ls.Epoch != 1 {
			t.Fatalf("%s: lease moved without a handover: %+v", r, ls)
		}
	}
	// The survivors cannot record: they do not hold the lease.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, _, err := c.nodes[l].Service.Record(ctx, []*commandpb.ProtectionRecord{attRec(0, 6, "x")}); !errors.Is(err, leader.ErrNotHolder) {
		t.Fatalf("record on %s: %v, want ErrNotHolder", l, err)
	}
	// dc1 restarts from its bolt files and catches up.
	c.start("dc1")
	c.waitFor(15*time.Second, "dc1 to catch up", func() error { return holds(c, "dc1", acked) })
}

func TestMinorityCannotCommit(t *testing.T) {
	c := newTestCluster(t)
	c.waitFor(15*time.Second, "leadership on the lease holder", func() error {
		if c.leaderOf(c.regions...) != "dc1" {
			return errors.New("dc1 does not lead yet")
		}
		return nil
	})
	c.addKeys("dc1", keys(5)...)
	acked := recordAll(t, c, "dc1", 5, 2)

	c.net.isolate("dc1", "dc2", "dc3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lost := attRec(0, 3, "minority")
	_, _, _, err := c.nodes["dc1"].Service.Record(ctx, []*commandpb.ProtectionRecord{lost})
	if err == nil {
		t.Fatal("an isolated region committed a record")
	}
	if !errors.Is(err, leader.ErrMaybeCommitted) && !errors.Is(err, leader.ErrNotLeader) && !errors.Is(err, leader.ErrUnavailable) {
		t.Fatalf("isolated record: unexpected error %v", err)
	}
	t.Logf("isolated dc1 refused: %v", err)
	maj := c.waitLeader("dc2", "dc3")
	// The majority moves on; the minority's entry never reaches it.
	c.addKeys(maj, keys(6)[5])
	c.net.heal()
	c.waitFor(15*time.Second, "dc1 to rejoin and converge", func() error {
		for _, r := range c.regions {
			if c.nodes[r].FSM == nil {
				continue
			}
			var n int
			c.nodes[r].FSM.View(func(s *leader.State, _ uint64) { n = s.KeyCount() })
			if n != 6 {
				return fmt.Errorf("%s has %d keys", r, n)
			}
		}
		return nil
	})
	// A definite "not written" means absent everywhere. "Maybe committed"
	// (leadership lost mid-commit: the entry may have reached the majority
	// before the cut) promises only that no region disagrees with another.
	present := map[string]bool{}
	for _, r := range c.regions {
		present[r] = !c.check(r, attRec(0, 3, "other")).Accepted()
		if err := holds(c, r, acked); err != nil {
			t.Fatal(err)
		}
	}
	if present["dc1"] != present["dc2"] || present["dc1"] != present["dc3"] {
		t.Fatalf("regions disagree about the minority's record: %v", present)
	}
	if !errors.Is(err, leader.ErrMaybeCommitted) && present["dc1"] {
		t.Fatalf("a write refused as not written (%v) is present: %v", err, present)
	}
	t.Logf("minority's record present everywhere: %v (outcome was %v)", present["dc1"], err)
}

func TestStaleLeaseEpochRejected(t *testing.T) {
	c := newTestCluster(t)
	l := c.waitLeader(c.regions...)
	c.addKeys(l, keys(2)...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc := c.nodes[l].Service
	if _, err := svc.Propose(ctx, commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Propose(ctx, commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	// A record stamped with dc1's old epoch is rejected by the FSM itself.
	_, err := svc.Propose(ctx, commandpb.CommandType_RECORD_SIGNATURES, &commandpb.RecordSignatures{
		Holder: "dc1", LeaseEpoch: 1, Records: []*commandpb.ProtectionRecord{attRec(0, 2, "stale")}})
	if !errors.Is(err, leader.ErrStaleLease) {
		t.Fatalf("stale record: %v, want ErrStaleLease", err)
	}
	c.waitFor(10*time.Second, "dc1 to apply the handover", func() error {
		if c.lease("dc1").Holder != "dc2" {
			return errors.New("not yet")
		}
		return nil
	})
	if _, _, _, err := c.nodes["dc1"].Service.Record(ctx, []*commandpb.ProtectionRecord{attRec(0, 2, "stale")}); !errors.Is(err, leader.ErrNotHolder) {
		t.Fatalf("old holder's record: %v, want ErrNotHolder", err)
	}
	for _, r := range c.regions {
		if o := c.check(r, attRec(0, 2, "other")); !o.Accepted() {
			t.Fatalf("%s recorded the stale record", r)
		}
	}
	// The new holder records under epoch 2.
	c.waitFor(10*time.Second, "dc2 to apply the handover", func() error {
		if _, err := c.nodes["dc2"].Service.Holding(); err != nil {
			return err
		}
		return nil
	})
	c.waitFor(15*time.Second, "leadership to follow the lease to dc2", func() error {
		if c.leaderOf(c.regions...) != "dc2" {
			return errors.New("not yet")
		}
		return nil
	})
	if _, _, epoch, err := c.nodes["dc2"].Service.Record(ctx, []*commandpb.ProtectionRecord{attRec(1, 2, "new")}); err != nil || epoch != 2 {
		t.Fatalf("new holder record: epoch %d err %v", epoch, err)
	}
}

func TestForeignCertificateCannotJoin(t *testing.T) {
	c := newTestCluster(t)
	// A rogue dc3 with certificates from another CA, same peers, own data.
	rogueCerts := filepath.Join(c.dir, "rogue-certs")
	if err := pki.Init(rogueCerts, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg := *c.cfgs["dc3"]
	c.stop("dc3")
	cfg.DataDir = filepath.Join(c.dir, "rogue")
	cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(rogueCerts, "ca.crt"), filepath.Join(rogueCerts, "dc3.crt"), filepath.Join(rogueCerts, "dc3.key")
	rogue, err := Start(&cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	c.addKeys(c.waitLeader("dc1", "dc2"), keys(3)...)
	// Give the rogue every chance: several election timeouts.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		rogue.FSM.View(func(s *leader.State, _ uint64) { n = s.KeyCount() })
		if n != 0 {
			t.Fatal("the rogue region received replicated state")
		}
		if rogue.Raft.State().String() == "Leader" {
			t.Fatal("the rogue region became leader")
		}
		time.Sleep(50 * time.Millisecond) // observation window, not a wait for an event
	}
	c.waitLeader("dc1", "dc2")
	if got := c.nodes["dc1"].handshakeFailures(); got == 0 {
		t.Fatal("dc1 counted no refused handshake")
	}
}

// TestHolderForwardsWhenNotLeader: with Raft leadership on another region,
// the lease holder's records are forwarded to the leader; the holder reads
// each outcome from its own apply of the entry, so refusals still come back.
func TestHolderForwardsWhenNotLeader(t *testing.T) {
	c := newTestClusterWith(t, true)
	l := c.waitLeader(c.regions...)
	if l == "dc1" {
		if err := c.nodes["dc1"].Raft.LeadershipTransfer().Error(); err != nil {
			t.Fatal(err)
		}
		l = c.waitLeader("dc2", "dc3")
	}
	// A follower's control-plane write is forwarded too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.nodes["dc1"].Service.Propose(ctx, commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: keys(3)}); err != nil {
		t.Fatalf("forwarded AddKeys: %v", err)
	}
	c.waitFor(10*time.Second, "dc1 to apply its keys", func() error {
		if k := keyCount(c, "dc1"); k != 3 {
			return fmt.Errorf("%d keys", k)
		}
		return nil
	})
	acked := recordAll(t, c, "dc1", 3, 4)
	if c.leaderOf(c.regions...) == "dc1" {
		t.Fatal("leadership moved to dc1; the test did not exercise forwarding")
	}
	outs, _, _, err := c.nodes["dc1"].Service.Record(ctx, []*commandpb.ProtectionRecord{attRec(0, 4, "conflict")})
	if err != nil || outs[0].Rule != slashing.RuleAttDoubleVote {
		t.Fatalf("forwarded conflicting record: %v %+v", err, outs)
	}
	for _, r := range c.regions {
		c.waitFor(10*time.Second, r+" to hold the forwarded records", func() error { return holds(c, r, acked) })
	}
	t.Logf("records forwarded from dc1 to leader %s", l)
}

func keyCount(c *testCluster, r string) (n int) {
	c.nodes[r].FSM.View(func(s *leader.State, _ uint64) { n = s.KeyCount() })
	return n
}
