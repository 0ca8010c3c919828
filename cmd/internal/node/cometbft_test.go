package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/signer/keysync"
	"github.com/regent-signer/regent/signer/privval"
	"github.com/regent-signer/regent/signer/privval/cometbfttest"
)

// A real CometBFT chain (v0.38, kvstore, one validator, vote extensions on)
// whose validator key lives only in the HSMs of Regent's three regions,
// each configured as the node's remote signer, all dialling the node's
// priv_validator_laddr. Only the lease holder past its barrier connects
// (privval.Config.Ready, wired by startPrivval), so a standby never holds
// the node's single signer connection:
//
//  1. The key is generated here, written as a priv_validator_key.json,
//     imported through dc1's key sync (every region's HSM gets it as a
//     non-extractable key), and the file is deleted. A replicated policy
//     lets "cometbft-<chain>" sign votes, proposals and vote extensions.
//  2. The node produces blocks signed through Regent while dc1 holds the
//     lease; dc2 and dc3 stand by and are asked nothing.
//  3. dc1 stops. The lease is fenced (epoch 1) and dc2 activated (epoch 2)
//     on the Raft leader among dc2/dc3; the chain goes on, signed by dc2.
//
// Verdict: no block carries evidence, every commit signature verifies
// against the validator key over independently rebuilt sign bytes, the
// node's log has no conflicting vote; replaying the surviving regions'
// Raft logs shows every commit signature was cleared by the lease holder of
// its time (dc1@1 before, dc2@2 after the handover) and that no two
// different messages were ever cleared at one height/round/step.
func TestCometBFTChainSurvivesRegionLoss(t *testing.T) {
	requireCometBFT(t)
	began := time.Now()
	bin := cometBinary(t, cometbfttest.Version)
	built := time.Since(began)
	const chainID = "regent-node-chain"
	identity := "cometbft-" + chainID

	// The validator key. Its public half goes into genesis; the private
	// half exists only in the key file until the import, then only in HSMs.
	pub, vk, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "cometbft")
	node, err := cometbfttest.Init(t.Context(), cometbfttest.Options{
		Binary: bin, Home: home, ChainID: chainID, Validator: pub, VoteExtensionsHeight: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The node keeps no validator key of its own (Init deleted the one
	// `cometbft init` made); it must get every signature from a signer.
	if _, err := os.Stat(filepath.Join(home, "config", "priv_validator_key.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the node has a priv_validator_key.json: %v", err)
	}
	t.Cleanup(func() {
		if err := node.Stop(5 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("node log tail:\n%s", node.LogTail(80))
		}
	})

	addrs := map[string]string{}
	for _, r := range []string{"dc1", "dc2", "dc3"} {
		addrs[r] = node.PrivvalAddr()
	}
	c := newCometCluster(t, chainID, addrs)

	// 1. Import the key through dc1; every region's HSM must hold it.
	keyFile := filepath.Join(t.TempDir(), "priv_validator_key.json")
	writeValidatorKeyFile(t, keyFile, vk)
	clear(vk)
	keyJSON, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	got, err := c.nodes["dc1"].signing.manager.ImportCometBFTKey(ctx, keyJSON, chainID)
	cancel()
	clear(keyJSON)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(pub) {
		t.Fatalf("imported key %x, want %x", got, pub)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the key file is still there: %v", err)
	}
	// From here on the seed exists only inside the three HSMs (and, in the
	// Raft log, wrapped under each region's HSM-held wrapping key).
	for _, r := range c.regions {
		c.waitFor(30*time.Second, r+"'s HSM to hold the validator key", func() error {
			local := false
			for _, k := range c.nodes[r].signing.manager.List() {
				local = local || (bytes.Equal(k.Pubkey, pub) && k.Local)
			}
			if !local {
				return errors.New("key sync has not imported it yet")
			}
			// PublicKey checks the HSM key policy too: sensitive,
			// non-extractable, sign only.
			hpub, err := c.nodes[r].signing.hsm.PublicKey(t.Context(), keysync.EdLabel(pub))
			if err != nil {
				return err
			}
			if !bytes.Equal(hpub.Bytes, pub) {
				return fmt.Errorf("HSM key %x, want %x", hpub.Bytes, pub)
			}
			return nil
		})
	}
	c.proposeOnLeader(commandpb.CommandType_SET_POLICY, &commandpb.SetPolicy{
		Identity: identity, KeyPatterns: []string{"0x" + hex.EncodeToString(pub)},
		MessageTypes: []string{privval.TypeVote, privval.TypeProposal, privval.KindVoteExtension},
	})
	for _, r := range c.regions {
		c.waitFor(10*time.Second, r+" to apply the policy", func() error {
			ok := false
			c.nodes[r].FSM.View(func(s *leader.State, _ uint64) { _, ok = s.Policy(identity) })
			if !ok {
				return errors.New("not yet")
			}
			return nil
		})
	}
	setup := time.Since(began) - built

	// 2. The chain runs, signed by dc1's HSM.
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	waitChain(t, node, 6, 90*time.Second)
	st, err := node.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Validator.Equal(pub) {
		t.Fatalf("node reports validator %x, want the key in Regent's HSMs %x", st.Validator, pub)
	}
	before := map[string]privvalCounts{}
	for _, r := range c.regions {
		if before[r], err = c.scrapePrivval(r, chainID); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s privval before the handover: %v", r, before[r])
	}
	if before["dc1"].signed() == 0 {
		t.Fatal("dc1 signed nothing")
	}
	for _, r := range []string{"dc2", "dc3"} {
		// Standing by, they never had the node's connection: no request
		// reached them, so none was refused.
		if len(before[r].requests) != 0 || before[r].connections[privval.ConnConnected] != 0 {
			t.Fatalf("%s served the node without the lease: %v", r, before[r])
		}
	}
	firstPhase := time.Since(began) - built - setup
	t.Logf("phase 1: height %d signed through dc1", st.Height)

	// 3. dc1 is lost; fence its epoch and activate dc2.
	lost := height(t, node)
	c.stop("dc1")
	handoverStart := time.Now()
	l := c.waitLeader("dc2", "dc3")
	c.proposeUntil(l, commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1, Reason: "dc1 lost"}, func(le leader.Lease) bool {
		return le.Epoch > 1 || le.State == leader.LeaseFenced
	})
	l = c.waitLeader("dc2", "dc3")
	c.proposeUntil(l, commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 2}, func(le leader.Lease) bool {
		return le.State == leader.LeaseActive && le.Holder == "dc2" && le.Epoch == 2
	})
	for _, r := range []string{"dc2", "dc3"} {
		c.waitFor(10*time.Second, r+" to see dc2@2 active", func() error {
			if le := c.lease(r); le.State != leader.LeaseActive || le.Holder != "dc2" || le.Epoch != 2 {
				return fmt.Errorf("%s@%d %s", le.Holder, le.Epoch, le.State)
			}
			return nil
		})
	}
	activated := time.Since(handoverStart)
	waitChain(t, node, lost+6, 120*time.Second)
	resumed := time.Since(handoverStart)
	after := map[string]privvalCounts{}
	for _, r := range []string{"dc2", "dc3"} {
		if after[r], err = c.scrapePrivval(r, chainID); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s privval after the handover: %v", r, after[r])
	}
	if after["dc2"].signed() == 0 {
		t.Fatal("dc2 signed nothing after the handover")
	}
	if len(after["dc3"].requests) != 0 || after["dc3"].connections[privval.ConnConnected] != 0 {
		t.Fatalf("dc3 served the node without the lease: %v", after["dc3"])
	}
	if n := after["dc2"].refused(); n != 0 {
		t.Fatalf("dc2 refused %v votes or proposals as the lease holder: %v", n, after["dc2"])
	}
	t.Logf("phase 2: dc1 stopped at height %d; dc2 active after %v; chain at %d after %v",
		lost, activated.Round(time.Millisecond), height(t, node), resumed.Round(time.Millisecond))

	// Verdict from the chain.
	last := height(t, node)
	if err := cometbfttest.CheckChain(t.Context(), node, chainID, pub, nil, 1, last-1); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"conflicting vote", "double sign", "duplicate vote"} {
		found, err := node.LogContains(s)
		if err != nil {
			t.Fatal(err)
		}
		if found {
			t.Fatalf("node log mentions %q", s)
		}
	}
	blocks := make([]cometbfttest.Block, 0, last)
	for h := int64(1); h < last; h++ {
		b, err := node.Block(t.Context(), h)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}

	// Verdict from the replicated log: stop the regions and replay what
	// their Raft logs hold.
	c.stop("dc2")
	c.stop("dc3")
	audits := map[string]raftAudit{}
	for _, r := range c.regions {
		audits[r] = auditRaftLog(t, c.cfgs[r].DataDir, r)
		t.Logf("%s raft log: %d entries, %d CometBFT records cleared, extensions by holder %v, lease commands %v",
			r, audits[r].entries, len(audits[r].comet), audits[r].unslashable, audits[r].leases)
	}
	for _, r := range []string{"dc2", "dc3"} {
		if err := checkNoDoubleSign(audits[r].comet); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	if err := sameRecords(audits["dc2"].comet, audits["dc3"].comet); err != nil {
		t.Fatalf("dc2 and dc3 disagree on what was cleared: %v", err)
	}
	if err := prefixRecords(audits["dc1"].comet, audits["dc2"].comet); err != nil {
		t.Fatalf("dc1's log is not a prefix of the survivors': %v", err)
	}
	bySigner := map[string]int{}
	addr := cometbfttest.Address(pub)
	prev := ""
	for _, b := range blocks {
		sb, sig, err := commitSignBytes(chainID, b, addr)
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(pub, sb, sig) {
			t.Fatalf("block %d: commit signature does not verify", b.Height)
		}
		rec, ok := findRecord(audits["dc2"].comet, sb)
		if !ok {
			t.Fatalf("block %d: its commit precommit was never cleared by Regent's state machine", b.Height)
		}
		who := fmt.Sprintf("%s@%d", rec.holder, rec.epoch)
		switch who {
		case "dc1@1", "dc2@2":
		default:
			t.Fatalf("block %d: precommit cleared under %s", b.Height, who)
		}
		if prev == "dc2@2" && who != "dc2@2" {
			t.Fatalf("block %d: signed by %s after dc2 took over", b.Height, who)
		}
		prev = who
		bySigner[who]++
	}
	if bySigner["dc1@1"] < 5 || bySigner["dc2@2"] < 5 {
		t.Fatalf("commit signatures by lease holder: %v; want at least 5 each", bySigner)
	}
	for _, rec := range audits["dc2"].comet {
		if rec.holder == "dc3" {
			t.Fatalf("dc3 recorded a CometBFT signature at h=%d", rec.height)
		}
	}
	t.Logf("verdict: blocks 1..%d checked; commit signatures by holder %v; wall time %v (cometbft build %v, cluster+import %v, phase 1 %v, handover+phase 2 %v)",
		last-1, bySigner, time.Since(began).Round(time.Second), built.Round(time.Second), setup.Round(time.Second),
		firstPhase.Round(time.Second), resumed.Round(time.Second))
}

// waitChain waits until the chain reaches height h.
func waitChain(t *testing.T, n *cometbfttest.Node, h int64, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	if err := n.WaitHeight(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func height(t *testing.T, n *cometbfttest.Node) int64 {
	t.Helper()
	h, err := n.Height(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// proposeUntil proposes msg on region r until done holds for the lease r
// sees. A write whose fate was unknown may have committed; done, not the
// error, decides.
func (c *testCluster) proposeUntil(r string, typ commandpb.CommandType, msg proto.Message, done func(leader.Lease) bool) {
	c.t.Helper()
	c.waitFor(30*time.Second, fmt.Sprintf("%v on %s", typ, r), func() error {
		if done(c.lease(r)) {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.nodes[r].Service.Propose(ctx, typ, msg); err != nil {
			return err
		}
		if !done(c.lease(r)) {
			return fmt.Errorf("lease is %+v", c.lease(r))
		}
		return nil
	})
}
