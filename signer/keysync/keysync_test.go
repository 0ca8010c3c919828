package keysync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/hsm"
	"github.com/regent-signer/regent/signer/keystore"
	"github.com/regent-signer/regent/slashing/eth"
)

func TestImportReachesEveryRegion(t *testing.T) {
	c := newCluster(t, "dc1", "dc2", "dc3")
	dc1, dc2, dc3 := c.addRegion("dc1", regionOpts{}), c.addRegion("dc2", regionOpts{}), c.addRegion("dc3", regionOpts{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	ks, secret, want := testKeystore(t, "validator-1", "correct horse")
	pk, err := dc1.mgr.ImportKeystore(ctx, ks, "correct horse")
	if err != nil {
		t.Fatalf("ImportKeystore: %v", err)
	}
	if pk != want {
		t.Fatalf("imported %s, want %s", pk, want)
	}
	if !dc1.hasSealed(t, pk) {
		t.Fatalf("ImportKeystore returned before the importing region sealed the key")
	}
	for _, r := range []*region{dc2, dc3} {
		waitFor(t, 10*time.Second, r.id+" sealed the key", func() bool { return r.hasSealed(t, pk) })
	}

	// The registry holds one ciphertext per region, each for that region's
	// registered wrapping key, and no plaintext anywhere in the state.
	c.m.FSM.View(func(s *leader.State, _ uint64) {
		k, ok := s.Key(pk[:])
		if !ok || k.Scheme != commandpb.Scheme_SCHEME_BLS12381 || k.Network != leader.RootHex(testGVR) || k.Disabled {
			t.Fatalf("registry entry %+v, %v", k, ok)
		}
		if len(k.Wrapped) != 3 {
			t.Fatalf("%d wrapped secrets, want 3", len(k.Wrapped))
		}
		for _, id := range []string{"dc1", "dc2", "dc3"} {
			w, ok := k.WrappedFor(id)
			reg, _ := s.Region(id)
			if !ok || !bytes.Equal(w.WrapKeyId, reg.WrapKeyID) {
				t.Fatalf("wrapped secret for %s: %v (wrap key id %x, region's %x)", id, ok, w.GetWrapKeyId(), reg.WrapKeyID)
			}
		}
	})
	if bytes.Contains(c.stateBytes(), secret) {
		t.Fatalf("the replicated state contains the plaintext secret")
	}

	// Each region sealed under its own token: a sealed file opens with its
	// own region's HSM only.
	files := map[string][]byte{}
	for _, r := range []*region{dc1, dc2, dc3} {
		files[r.id] = r.sealedFile(t, pk)
		got, err := r.hsm.Unseal(ctx, sealLabel, files[r.id], pk[:])
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("%s cannot open its own sealed file: %v", r.id, err)
		}
	}
	if bytes.Equal(files["dc1"], files["dc2"]) || bytes.Equal(files["dc2"], files["dc3"]) {
		t.Fatalf("two regions wrote the same sealed file")
	}
	for _, pair := range [][2]*region{{dc1, dc2}, {dc2, dc1}, {dc3, dc1}, {dc1, dc3}} {
		got, err := pair[0].hsm.Unseal(ctx, sealLabel, files[pair[1].id], pk[:])
		if !errors.Is(err, hsm.ErrUnseal) || got != nil {
			t.Fatalf("%s opened %s's sealed file: %v", pair[0].id, pair[1].id, err)
		}
	}

	for _, r := range []*region{dc1, dc2, dc3} {
		waitFor(t, 5*time.Second, r.id+" stats", func() bool { s := r.mgr.Stats(); return s.Synced == 1 && s.Pending == 0 })
		s := r.mgr.Stats()
		if s.SyncFailures != 0 || s.NotWrapped != 0 || s.WrongWrapKey != 0 || s.Orphans != 0 {
			t.Fatalf("%s stats %+v", r.id, s)
		}
		list := r.mgr.List()
		if len(list) != 1 || !bytes.Equal(list[0].Pubkey, pk[:]) || !list[0].Local || list[0].Disabled ||
			list[0].Scheme != commandpb.Scheme_SCHEME_BLS12381 || list[0].Network != leader.RootHex(testGVR) {
			t.Fatalf("%s List = %+v", r.id, list)
		}
	}

	// Importing it again, anywhere, is a duplicate and proposes nothing.
	before, state := c.proposals.Load(), c.stateBytes()
	_, err = dc2.mgr.ImportKeystore(ctx, ks, "correct horse")
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second import: %v, want ErrDuplicate", err)
	}
	if c.proposals.Load() != before || !bytes.Equal(c.stateBytes(), state) {
		t.Fatalf("a duplicate import changed the state")
	}
}

func TestKeyImportedBeforeARegionRegisteredIsNotWrappedForIt(t *testing.T) {
	c := newCluster(t, "dc1", "dc2", "dc3")
	dc1, dc2 := c.addRegion("dc1", regionOpts{}), c.addRegion("dc2", regionOpts{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	early, _, earlyPK := testKeystore(t, "early", "pw")
	if _, err := dc1.mgr.ImportKeystore(ctx, early, "pw"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "dc2 sealed the early key", func() bool { return dc2.hasSealed(t, earlyPK) })

	dc3 := c.addRegion("dc3", regionOpts{})
	late, _, latePK := testKeystore(t, "late", "pw")
	if _, err := dc2.mgr.ImportKeystore(ctx, late, "pw"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "dc3 sealed the late key", func() bool { return dc3.hasSealed(t, latePK) })
	waitFor(t, 5*time.Second, "dc3 reports the early key as not wrapped for it", func() bool {
		s := dc3.mgr.Stats()
		return s.NotWrapped == 1 && s.Pending == 0
	})
	if dc3.hasSealed(t, earlyPK) {
		t.Fatalf("dc3 holds a key that was never wrapped for it")
	}
	if got := dc3.condition(earlyPK[:]); got != "not-wrapped" {
		t.Fatalf("dc3's condition for the early key: %q", got)
	}
	if !strings.Contains(dc3.logs.String(), "cannot sign here until re-wrapped") {
		t.Fatalf("dc3 did not log the gap:\n%s", dc3.logs)
	}
	for _, k := range dc3.mgr.List() {
		if bytes.Equal(k.Pubkey, earlyPK[:]) == k.Local {
			t.Fatalf("dc3 List: %x local=%v", k.Pubkey, k.Local)
		}
	}

	// The gap, as an operator sees it: with the lease on dc3, the late key
	// signs and the early key cannot.
	c.moveLease("dc3")
	waitFor(t, 5*time.Second, "dc3 unsealed its keys", func() bool { n, h := dc3.guard.Loaded(); return n == 1 && h })
	root := sha256.Sum256([]byte("root"))
	sig, err := dc3.guard.SignBLS(latePK, root)
	if err != nil {
		t.Fatal(err)
	}
	verifyBLS(t, latePK, root, sig)
	if _, err := dc3.guard.SignBLS(earlyPK, root); !errors.Is(err, ErrKeyNotHere) || !errors.Is(err, bls.ErrKeyNotLoaded) {
		t.Fatalf("dc3 signing the early key: %v, want ErrKeyNotHere", err)
	}

	// Importing the early keystore again wraps it for dc3 only and attaches
	// that secret; dc3 installs it and its live set follows.
	var wrappedBefore [][]byte
	c.m.FSM.View(func(s *leader.State, _ uint64) {
		k, _ := s.Key(earlyPK[:])
		for _, w := range k.Wrapped {
			wrappedBefore = append(wrappedBefore, bytes.Clone(w.Ciphertext))
		}
	})
	if _, err := dc2.mgr.ImportKeystore(ctx, early, "pw"); err != nil {
		t.Fatalf("re-import for the late region: %v", err)
	}
	c.m.FSM.View(func(s *leader.State, _ uint64) {
		k, _ := s.Key(earlyPK[:])
		if len(k.Wrapped) != 3 || !bytes.Equal(k.Wrapped[0].Ciphertext, wrappedBefore[0]) || !bytes.Equal(k.Wrapped[1].Ciphertext, wrappedBefore[1]) {
			t.Fatalf("re-import changed the existing secrets or did not add dc3's: %d secrets", len(k.Wrapped))
		}
		if w, ok := k.WrappedFor("dc3"); !ok || len(w.Ciphertext) == 0 {
			t.Fatalf("no secret for dc3")
		}
	})
	waitFor(t, 10*time.Second, "dc3 sealed the early key", func() bool { return dc3.hasSealed(t, earlyPK) })
	waitFor(t, 5*time.Second, "dc3 unsealed both keys", func() bool { n, h := dc3.guard.Loaded(); return n == 2 && h })
	sig, err = dc3.guard.SignBLS(earlyPK, root)
	if err != nil {
		t.Fatal(err)
	}
	verifyBLS(t, earlyPK, root, sig)
	if s := dc3.mgr.Stats(); s.NotWrapped != 0 {
		t.Fatalf("dc3 still reports %d keys not wrapped for it", s.NotWrapped)
	}
	// Now every region has it: a third import is a duplicate.
	before := c.proposals.Load()
	if _, err := dc1.mgr.ImportKeystore(ctx, early, "pw"); !errors.Is(err, ErrDuplicate) || c.proposals.Load() != before {
		t.Fatalf("third import: %v", err)
	}
}

func TestImportAttachesSecretsToAKeyRegisteredWithoutThem(t *testing.T) {
	c := newCluster(t, "dc1", "dc2")
	dc1, dc2 := c.addRegion("dc1", regionOpts{}), c.addRegion("dc2", regionOpts{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ks, _, pk := testKeystore(t, "history first", "pw")
	// The Keymanager API commits the slashing history first, which
	// registers the key without secrets.
	ic, err := eth.EncodeInterchange(&eth.Interchange{GenesisValidatorsRoot: eth.Root(testGVR), Data: []eth.InterchangeRecord{{
		Pubkey: eth.Pubkey(pk), SignedBlocks: []eth.SignedBlock{{Slot: 7}}}}})
	if err != nil {
		t.Fatal(err)
	}
	c.mustApply("dc1", commandpb.CommandType_IMPORT_INTERCHANGE, &commandpb.ImportInterchange{
		GenesisValidatorsRoot: testGVR[:], InterchangeJson: ic, RegisterKeys: true})
	if _, err := dc1.mgr.ImportKeystore(ctx, ks, "pw"); err != nil {
		t.Fatalf("ImportKeystore of a key registered by its history: %v", err)
	}
	waitFor(t, 10*time.Second, "dc2 sealed the key", func() bool { return dc2.hasSealed(t, pk) })
	c.m.FSM.View(func(s *leader.State, _ uint64) {
		k, _ := s.Key(pk[:])
		if len(k.Wrapped) != 2 || k.Disabled {
			t.Fatalf("registry entry after import: %d secrets, disabled %v", len(k.Wrapped), k.Disabled)
		}
	})
}

func TestLeaseMovesKeysAcrossRegions(t *testing.T) {
	c := newCluster(t, "dc1", "dc2", "dc3")
	regions := []*region{c.addRegion("dc1", regionOpts{}), c.addRegion("dc2", regionOpts{}), c.addRegion("dc3", regionOpts{})}
	dc1 := regions[0]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	ks, _, pk := testKeystore(t, "validator", "pw")
	if _, err := dc1.mgr.ImportKeystore(ctx, ks, "pw"); err != nil {
		t.Fatal(err)
	}
	cometJSON, edPriv := cometKey("cosmos-validator")
	edPub, err := regions[1].mgr.ImportCometBFTKey(ctx, cometJSON, "test-chain")
	if err != nil {
		t.Fatalf("ImportCometBFTKey: %v", err)
	}
	if !bytes.Equal(edPub, edPriv.Public().(ed25519.PublicKey)) {
		t.Fatalf("imported Ed25519 key %x", edPub)
	}
	for _, r := range regions {
		waitFor(t, 10*time.Second, r.id+" holds both keys", func() bool { return r.hasSealed(t, pk) && r.hasEd(t, edPub) })
	}

	// Nobody holds the lease: every region refuses.
	root := sha256.Sum256([]byte("attestation"))
	msg := []byte("prevote at height 5")
	for _, r := range regions {
		if n, h := r.guard.Loaded(); n != 0 || h {
			t.Fatalf("%s loaded %d keys (holding %v) without the lease", r.id, n, h)
		}
		if _, err := r.guard.SignBLS(pk, root); !errors.Is(err, ErrNotHolder) || !errors.Is(err, leader.ErrNotHolder) {
			t.Fatalf("%s SignBLS without the lease: %v", r.id, err)
		}
		if _, err := r.guard.SignEd25519(ctx, edPub, msg); !errors.Is(err, ErrNotHolder) {
			t.Fatalf("%s SignEd25519 without the lease: %v", r.id, err)
		}
	}

	var firstBLS [96]byte
	for i, r := range regions {
		epoch := c.moveLease(r.id)
		waitFor(t, 5*time.Second, r.id+" unsealed its keys", func() bool { n, h := r.guard.Loaded(); return n == 1 && h })
		if r.barrier.calls.Load() == 0 {
			t.Fatalf("%s unsealed without a barrier", r.id)
		}
		if st := r.guard.Stats(); st.Epoch != epoch {
			t.Fatalf("%s signs under epoch %d, lease epoch is %d", r.id, st.Epoch, epoch)
		}
		sig, err := r.guard.SignBLS(pk, root)
		if err != nil {
			t.Fatalf("%s SignBLS: %v", r.id, err)
		}
		verifyBLS(t, pk, root, sig)
		if i == 0 {
			firstBLS = sig
		} else if sig != firstBLS {
			t.Fatalf("%s's signature differs from dc1's: BLS is deterministic", r.id)
		}
		edSig, err := r.guard.SignEd25519(ctx, edPub, msg)
		if err != nil {
			t.Fatalf("%s SignEd25519: %v", r.id, err)
		}
		if !ed25519.Verify(edPub, msg, edSig) || !bytes.Equal(edSig, ed25519.Sign(edPriv, msg)) {
			t.Fatalf("%s's Ed25519 signature is not the file key's", r.id)
		}
		// The others refuse meanwhile.
		for _, o := range regions {
			if o == r {
				continue
			}
			if _, err := o.guard.SignBLS(pk, root); !errors.Is(err, ErrNotHolder) {
				t.Fatalf("%s signs while %s holds the lease: %v", o.id, r.id, err)
			}
		}

		// Fence: the keys are zeroed within one poll interval.
		fenced := time.Now()
		c.fence()
		waitFor(t, 5*time.Second, r.id+" zeroed its keys", func() bool {
			n, h := r.guard.Loaded()
			return n == 0 && !h && r.guard.Stats().Zeroed == 1 // Zeroed counts after the memory is wiped
		})
		took := time.Since(fenced)
		t.Logf("%s zeroed its keys %v after the fence (poll interval %v)", r.id, took, guardInterval)
		if took > guardInterval+150*time.Millisecond {
			t.Fatalf("%s zeroed its keys %v after the fence; the poll interval is %v", r.id, took, guardInterval)
		}
		if _, err := r.guard.SignBLS(pk, root); !errors.Is(err, ErrNotHolder) {
			t.Fatalf("%s SignBLS after the fence: %v", r.id, err)
		}
		if _, err := r.guard.SignEd25519(ctx, edPub, msg); !errors.Is(err, ErrNotHolder) {
			t.Fatalf("%s SignEd25519 after the fence: %v", r.id, err)
		}
		if st := r.guard.Stats(); st.Zeroed != 1 || st.Loads != 1 {
			t.Fatalf("%s guard stats %+v", r.id, st)
		}
	}
}

func TestGuardKickZeroesAtOnce(t *testing.T) {
	c := newCluster(t, "dc1")
	// A poll interval no test waits out: only Kick can make the guard act.
	r := c.addRegion("dc1", regionOpts{guardInterval: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ks, _, pk := testKeystore(t, "kicked", "pw")
	if _, err := r.mgr.ImportKeystore(ctx, ks, "pw"); err != nil {
		t.Fatal(err)
	}
	c.moveLease("dc1")
	r.guard.Kick()
	waitFor(t, 5*time.Second, "keys unsealed after Kick", func() bool { n, h := r.guard.Loaded(); return n == 1 && h })
	c.fence()
	r.guard.Kick()
	waitFor(t, 2*time.Second, "keys zeroed after Kick", func() bool { n, h := r.guard.Loaded(); return n == 0 && !h })
	if _, err := r.guard.SignBLS(pk, [32]byte{}); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("SignBLS after fence: %v", err)
	}
}

func TestGuardFailsClosed(t *testing.T) {
	c := newCluster(t, "dc1")
	r := c.addRegion("dc1", regionOpts{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ks, _, pk := testKeystore(t, "v", "pw")
	if _, err := r.mgr.ImportKeystore(ctx, ks, "pw"); err != nil {
		t.Fatal(err)
	}
	cometJSON, _ := cometKey("c")
	edPub, err := r.mgr.ImportCometBFTKey(ctx, cometJSON, "chain")
	if err != nil {
		t.Fatal(err)
	}
	root := [32]byte{1}

	// The barrier fails: the lease is held but nothing opens.
	r.barrier.failing.Store(true)
	c.moveLease("dc1")
	waitFor(t, 5*time.Second, "barrier failures counted", func() bool { return r.guard.Stats().BarrierFailures >= 2 })
	if n, h := r.guard.Loaded(); n != 0 || h {
		t.Fatalf("keys open (%d, %v) without a barrier", n, h)
	}
	if _, err := r.guard.SignBLS(pk, root); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("SignBLS without barrier: %v", err)
	}
	if _, err := r.guard.SignEd25519(ctx, edPub, []byte("m")); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("SignEd25519 without barrier: %v", err)
	}

	// The barrier passes but a sealed file is damaged: Ed25519 signs (its
	// keys are in the HSM), BLS refuses with ErrKeysNotLoaded, and the
	// failure is counted.
	path := r.store.Dir() + "/" + strings.TrimPrefix(pk.String(), "0x") + ".sealed"
	blob := r.sealedFile(t, pk)
	damaged := bytes.Clone(blob)
	damaged[len(damaged)-1] ^= 1
	writeFile(t, path, damaged)
	r.barrier.failing.Store(false)
	waitFor(t, 5*time.Second, "load failures counted", func() bool { return r.guard.Stats().LoadFailures >= 1 })
	if n, h := r.guard.Loaded(); n != 0 || !h {
		t.Fatalf("Loaded = %d, %v with a damaged store", n, h)
	}
	if _, err := r.guard.SignBLS(pk, root); !errors.Is(err, ErrKeysNotLoaded) {
		t.Fatalf("SignBLS with a damaged store: %v", err)
	}
	if _, err := r.guard.SignEd25519(ctx, edPub, []byte("m")); err != nil {
		t.Fatalf("SignEd25519 with the lease: %v", err)
	}
	if !strings.Contains(r.logs.String(), "cannot unseal the BLS keys") {
		t.Fatalf("unseal failure not logged")
	}

	// Repaired: the keys open on a later attempt.
	writeFile(t, path, blob)
	waitFor(t, 5*time.Second, "keys unsealed after repair", func() bool { n, h := r.guard.Loaded(); return n == 1 && h })
	sig, err := r.guard.SignBLS(pk, root)
	if err != nil {
		t.Fatal(err)
	}
	verifyBLS(t, pk, root, sig)
	if _, err := r.guard.SignBLS(bls.PublicKey{1}, root); !errors.Is(err, ErrKeyNotHere) {
		t.Fatalf("SignBLS with an unknown key: %v", err)
	}
	if _, err := r.guard.SignEd25519(ctx, edPub[:31], []byte("m")); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("SignEd25519 with a short key: %v", err)
	}
	other := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	if _, err := r.guard.SignEd25519(ctx, other, []byte("m")); !errors.Is(err, ErrHSM) || !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("SignEd25519 with a key not in the HSM: %v", err)
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	c := newCluster(t, "dc1", "dc2")
	dc1 := c.addRegion("dc1", regionOpts{})
	// dc2's Manager never runs, so dc2 never registers.
	dc2 := c.addRegion("dc2", regionOpts{noRun: true})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	goodComet, _ := cometKey("comet")

	tests := []struct {
		name string
		// setup runs first (its proposals are not counted); call is the
		// refused operation.
		setup   func(t *testing.T)
		call    func() error
		wantErr []error
	}{
		{"wrong password", nil, func() error {
			ks, _, _ := testKeystore(t, "a", "right")
			_, err := dc1.mgr.ImportKeystore(ctx, ks, "wrong")
			return err
		}, []error{ErrKeystore, keystore.ErrWrongPassword}},
		{"not a keystore", nil, func() error {
			_, err := dc1.mgr.ImportKeystore(ctx, []byte(`{"version": 4}`), "pw")
			return err
		}, []error{ErrKeystore, keystore.ErrMalformed}},
		{"empty keystore", nil, func() error {
			_, err := dc1.mgr.ImportKeystore(ctx, nil, "pw")
			return err
		}, []error{ErrKeystore}},
		{"duplicate keystore", func(t *testing.T) {
			ks, _, _ := testKeystore(t, "dup", "pw")
			if _, err := dc1.mgr.ImportKeystore(ctx, ks, "pw"); err != nil {
				t.Fatal(err)
			}
		}, func() error {
			ks, _, _ := testKeystore(t, "dup", "other password")
			_, err := dc1.mgr.ImportKeystore(ctx, ks, "other password")
			return err
		}, []error{ErrDuplicate}},
		{"region not registered", nil, func() error {
			ks, _, _ := testKeystore(t, "unregistered", "pw")
			_, err := dc2.mgr.ImportKeystore(ctx, ks, "pw")
			return err
		}, []error{ErrNotRegistered}},
		{"comet key, empty chain id", nil, func() error {
			_, err := dc1.mgr.ImportCometBFTKey(ctx, goodComet, "")
			return err
		}, []error{ErrInvalidInput}},
		{"comet key, chain id too long", nil, func() error {
			_, err := dc1.mgr.ImportCometBFTKey(ctx, goodComet, strings.Repeat("c", 257))
			return err
		}, []error{ErrInvalidInput}},
		{"comet key, malformed", nil, func() error {
			_, err := dc1.mgr.ImportCometBFTKey(ctx, []byte(`{"priv_key":{}}`), "chain")
			return err
		}, []error{ErrKeystore, hsm.ErrCometBFTKey}},
		{"comet key, public key of another key", nil, func() error {
			other, _ := cometKey("other")
			mixed := strings.Replace(string(goodComet), strings.Split(string(goodComet), `"value":"`)[1][:44],
				strings.Split(string(other), `"value":"`)[1][:44], 1)
			_, err := dc1.mgr.ImportCometBFTKey(ctx, []byte(mixed), "chain")
			return err
		}, []error{ErrKeystore, hsm.ErrCometBFTKey}},
		{"duplicate comet key", func(t *testing.T) {
			j, _ := cometKey("dup-comet")
			if _, err := dc1.mgr.ImportCometBFTKey(ctx, j, "chain"); err != nil {
				t.Fatal(err)
			}
		}, func() error {
			j, _ := cometKey("dup-comet")
			_, err := dc1.mgr.ImportCometBFTKey(ctx, j, "another-chain")
			return err
		}, []error{ErrDuplicate}},
		{"delete unknown key", nil, func() error {
			_, pk := blsKey("never imported")
			_, err := dc1.mgr.DeleteKey(ctx, pk)
			return err
		}, []error{ErrUnknownKey}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			before, state := c.proposals.Load(), c.stateBytes()
			err := tc.call()
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
			}
			if c.proposals.Load() != before {
				t.Fatalf("something was proposed")
			}
			if !bytes.Equal(c.stateBytes(), state) {
				t.Fatalf("the replicated state changed")
			}
		})
	}

	// A Manager without an Ethereum network refuses keystores.
	noNet, err := New(Config{Region: "dc1", Proposer: regionProposer{c, "dc1"}, State: c.m.FSM, HSM: dc1.hsm, Store: dc1.store})
	if err != nil {
		t.Fatal(err)
	}
	ks, _, _ := testKeystore(t, "no-net", "pw")
	if _, err := noNet.ImportKeystore(ctx, ks, "pw"); !errors.Is(err, ErrConfig) {
		t.Fatalf("import without a network: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	good := func() Config {
		return Config{Region: "dc1", Proposer: regionProposer{}, State: &fakeView{}, HSM: &hsm.HSM{}, Store: &bls.Store{}}
	}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no region", func(c *Config) { c.Region = "" }},
		{"no proposer", func(c *Config) { c.Proposer = nil }},
		{"no state", func(c *Config) { c.State = nil }},
		{"no hsm", func(c *Config) { c.HSM = nil }},
		{"no store", func(c *Config) { c.Store = nil }},
		{"negative interval", func(c *Config) { c.Interval = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.edit(&cfg)
			if m, err := New(cfg); !errors.Is(err, ErrConfig) || m != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("good config: %v", err)
	}
	gtests := []struct {
		name string
		cfg  GuardConfig
	}{
		{"no region", GuardConfig{State: &fakeView{}, Barrier: &testBarrier{}, Store: &bls.Store{}}},
		{"no barrier", GuardConfig{Region: "dc1", State: &fakeView{}, Store: &bls.Store{}}},
		{"no state", GuardConfig{Region: "dc1", Barrier: &testBarrier{}, Store: &bls.Store{}}},
		{"no store", GuardConfig{Region: "dc1", State: &fakeView{}, Barrier: &testBarrier{}}},
		{"negative interval", GuardConfig{Region: "dc1", State: &fakeView{}, Barrier: &testBarrier{}, Store: &bls.Store{}, Interval: -1}},
	}
	for _, tc := range gtests {
		t.Run("guard "+tc.name, func(t *testing.T) {
			if g, err := NewGuard(tc.cfg); !errors.Is(err, ErrConfig) || g != nil {
				t.Fatalf("NewGuard: %v", err)
			}
		})
	}
}

// fakeView is a StateView over a fresh state (configuration tests only).
type fakeView struct{}

func (*fakeView) View(fn func(*leader.State, uint64)) { fn(leader.NewState(), 0) }

func TestSyncRefusesBadWrappedSecrets(t *testing.T) {
	c := newCluster(t, "dc1", "dc2", "dc3")
	regions := []*region{c.addRegion("dc1", regionOpts{}), c.addRegion("dc2", regionOpts{}), c.addRegion("dc3", regionOpts{})}
	dc3 := regions[2]
	regs := map[string]leader.Region{}
	c.m.FSM.View(func(s *leader.State, _ uint64) {
		for _, r := range s.Regions() {
			regs[r.ID] = r
		}
	})
	// wrapAll wraps secret for every region; damage alters dc3's entry.
	wrapAll := func(t *testing.T, secret []byte, damage func(w *commandpb.WrappedSecret)) []*commandpb.WrappedSecret {
		var out []*commandpb.WrappedSecret
		for _, id := range []string{"dc1", "dc2", "dc3"} {
			ct, err := hsm.WrapSecret(regs[id].WrapPublicKey, secret)
			if err != nil {
				t.Fatal(err)
			}
			w := &commandpb.WrappedSecret{Region: id, Ciphertext: ct, WrapKeyId: regs[id].WrapKeyID}
			if id == "dc3" {
				damage(w)
			}
			out = append(out, w)
		}
		return out
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, w *commandpb.WrappedSecret)
		// wantErr is dc3's recorded install error; nil means the key is
		// skipped without an attempt (wantCond says why).
		wantErr  []error
		wantCond string
	}{
		{"tampered ciphertext", func(t *testing.T, w *commandpb.WrappedSecret) { w.Ciphertext[10] ^= 0x40 },
			[]error{ErrHSM, hsm.ErrUnwrap}, ""},
		{"truncated ciphertext", func(t *testing.T, w *commandpb.WrappedSecret) { w.Ciphertext = w.Ciphertext[:200] },
			[]error{ErrHSM, hsm.ErrUnwrap}, ""},
		{"another key's secret", func(t *testing.T, w *commandpb.WrappedSecret) {
			other, _ := blsKey("impostor")
			ct, err := hsm.WrapSecret(regs["dc3"].WrapPublicKey, other)
			if err != nil {
				t.Fatal(err)
			}
			w.Ciphertext = ct
		}, []error{ErrWrappedMismatch}, ""},
		{"not a BLS secret", func(t *testing.T, w *commandpb.WrappedSecret) {
			ct, err := hsm.WrapSecret(regs["dc3"].WrapPublicKey, bytes.Repeat([]byte{0xff}, 32))
			if err != nil {
				t.Fatal(err)
			}
			w.Ciphertext = ct
		}, []error{ErrWrappedMismatch}, ""},
		{"wrapped to another wrap key", func(t *testing.T, w *commandpb.WrappedSecret) {
			// dc3's registration now names a key its HSM does not hold (as
			// after a restore onto a new HSM that re-registered elsewhere);
			// the FSM accepts secrets wrapped to the registered key, and
			// dc3 must notice they are not for its own.
			k, err := rsa.GenerateKey(rand.Reader, 3072)
			if err != nil {
				t.Fatal(err)
			}
			der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			c.mustApply("dc3", commandpb.CommandType_REGISTER_REGION, &commandpb.RegisterRegion{Region: "dc3", WrapPublicKey: der})
			sum := sha256.Sum256(der)
			w.WrapKeyId = sum[:]
		}, nil, "wrong-wrap-key:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret, pk := blsKey("bad wrap " + tc.name)
			failuresBefore := dc3.mgr.Stats().SyncFailures
			wrongBefore := dc3.mgr.Stats().WrongWrapKeyTotal
			c.mustApply("dc1", commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: []*commandpb.AddKey{{
				Pubkey: pk[:], Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: leader.RootHex(testGVR),
				Wrapped: wrapAll(t, secret, func(w *commandpb.WrappedSecret) { tc.damage(t, w) }),
			}}})
			for _, r := range regions[:2] {
				waitFor(t, 10*time.Second, r.id+" sealed the key", func() bool { return r.hasSealed(t, pk) })
			}
			if tc.wantErr != nil {
				// Retried with back-off: at least two failed attempts, no crash.
				waitFor(t, 10*time.Second, "dc3 retried", func() bool { return dc3.mgr.Stats().SyncFailures >= failuresBefore+2 })
				err := dc3.lastErr(pk[:])
				for _, want := range tc.wantErr {
					if !errors.Is(err, want) {
						t.Fatalf("dc3's error %v, want %v", err, want)
					}
				}
			} else {
				waitFor(t, 10*time.Second, "dc3 noted the key", func() bool { return strings.HasPrefix(dc3.condition(pk[:]), tc.wantCond) })
				if got := dc3.mgr.Stats().WrongWrapKeyTotal; got != wrongBefore+1 {
					t.Fatalf("wrong wrap key counted %d times", got-wrongBefore)
				}
				if dc3.lastErr(pk[:]) != nil {
					t.Fatalf("dc3 tried to unwrap a secret for another key")
				}
			}
			if dc3.hasSealed(t, pk) {
				t.Fatalf("dc3 sealed a key from a bad wrapped secret")
			}
			// The loop still runs.
			passes := dc3.mgr.Stats().Passes
			dc3.mgr.Kick()
			waitFor(t, 5*time.Second, "dc3 keeps syncing", func() bool { return dc3.mgr.Stats().Passes > passes })
		})
	}
	if !strings.Contains(dc3.logs.String(), "key sync failed; will retry") || !strings.Contains(dc3.logs.String(), "not this region's current one") {
		t.Fatalf("dc3 did not log its failures:\n%s", dc3.logs)
	}
}

func TestDeleteKeyExportsInterchangeAndRemovesEverywhere(t *testing.T) {
	c := newCluster(t, "dc1", "dc2", "dc3")
	regions := []*region{c.addRegion("dc1", regionOpts{}), c.addRegion("dc2", regionOpts{}), c.addRegion("dc3", regionOpts{})}
	dc1, dc2 := regions[0], regions[1]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ks, _, pk := testKeystore(t, "to delete", "pw")
	if _, err := dc1.mgr.ImportKeystore(ctx, ks, "pw"); err != nil {
		t.Fatal(err)
	}
	ks2, _, keep := testKeystore(t, "to keep", "pw")
	if _, err := dc1.mgr.ImportKeystore(ctx, ks2, "pw"); err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		waitFor(t, 10*time.Second, r.id+" sealed both", func() bool { return r.hasSealed(t, pk) && r.hasSealed(t, keep) })
	}
	epoch := c.moveLease("dc1")
	waitFor(t, 5*time.Second, "dc1 unsealed", func() bool { n, h := dc1.guard.Loaded(); return n == 2 && h })
	// History to export: an attestation recorded by the holder.
	c.mustApply("dc1", commandpb.CommandType_RECORD_SIGNATURES, &commandpb.RecordSignatures{Holder: "dc1", LeaseEpoch: epoch,
		Records: []*commandpb.ProtectionRecord{{Record: &commandpb.ProtectionRecord_EthAttestation{EthAttestation: &commandpb.EthAttestation{
			GenesisValidatorsRoot: testGVR[:], Pubkey: pk[:], SourceEpoch: 3, TargetEpoch: 4, SigningRoot: bytes.Repeat([]byte{9}, 32)}}}}})

	ic, err := dc2.mgr.DeleteKey(ctx, pk)
	if err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	got, err := eth.DecodeInterchange(ic)
	if err != nil {
		t.Fatalf("exported interchange does not decode: %v", err)
	}
	if got.GenesisValidatorsRoot != eth.Root(testGVR) || len(got.Data) != 1 || got.Data[0].Pubkey != eth.Pubkey(pk) ||
		len(got.Data[0].SignedAttestations) != 1 || got.Data[0].SignedAttestations[0].TargetEpoch != 4 {
		t.Fatalf("interchange %+v", got)
	}
	// The FSM now refuses the key; every region drops its copy, and the
	// holder's live set follows.
	resp, err := c.apply("dc1", commandpb.CommandType_RECORD_SIGNATURES, &commandpb.RecordSignatures{Holder: "dc1", LeaseEpoch: epoch,
		Records: []*commandpb.ProtectionRecord{{Record: &commandpb.ProtectionRecord_Unslashable{Unslashable: &commandpb.Unslashable{
			Pubkey: pk[:], Kind: "RANDAO_REVEAL", SigningRoot: make([]byte, 32)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if o := resp.Value.(leader.BatchResult).Outcomes[0]; o.Accepted() || !errors.Is(o.Err, leader.ErrKeyDisabled) {
		t.Fatalf("record for the deleted key: %+v", o)
	}
	for _, r := range regions {
		waitFor(t, 10*time.Second, r.id+" deleted its copy", func() bool { return !r.hasSealed(t, pk) && r.mgr.Stats().Removed == 1 })
		if !r.hasSealed(t, keep) {
			t.Fatalf("%s lost the other key", r.id)
		}
	}
	waitFor(t, 5*time.Second, "dc1 re-unsealed without the key", func() bool { n, h := dc1.guard.Loaded(); return n == 1 && h })
	if _, err := dc1.guard.SignBLS(pk, [32]byte{}); !errors.Is(err, ErrKeyNotHere) {
		t.Fatalf("SignBLS with the deleted key: %v", err)
	}
	if _, err := dc1.guard.SignBLS(keep, [32]byte{}); err != nil {
		t.Fatalf("SignBLS with the kept key: %v", err)
	}
	for _, k := range dc1.mgr.List() {
		if bytes.Equal(k.Pubkey, pk[:]) && (!k.Disabled || k.Local) {
			t.Fatalf("List after delete: %+v", k)
		}
	}

	// Deleting again proposes nothing and returns the same export.
	before := c.proposals.Load()
	again, err := dc1.mgr.DeleteKey(ctx, pk)
	if err != nil || !bytes.Equal(again, ic) || c.proposals.Load() != before {
		t.Fatalf("second DeleteKey: %v (same export %v, proposals %d)", err, bytes.Equal(again, ic), c.proposals.Load()-before)
	}

	// Disabling an Ed25519 key removes it from every region's HSM.
	cometJSON, _ := cometKey("retired")
	edPub, err := dc1.mgr.ImportCometBFTKey(ctx, cometJSON, "chain")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		waitFor(t, 10*time.Second, r.id+" imported the Ed25519 key", func() bool { return r.hasEd(t, edPub) })
	}
	c.mustApply("dc2", commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: edPub, Reason: "retired"})
	for _, r := range regions {
		waitFor(t, 10*time.Second, r.id+" deleted the Ed25519 key", func() bool { return !r.hasEd(t, edPub) })
	}
}

func TestRegistrationIsProposedOnce(t *testing.T) {
	c := newCluster(t, "dc1")
	r := c.addRegion("dc1", regionOpts{})
	var reg leader.Region
	c.m.FSM.View(func(s *leader.State, _ uint64) { reg, _ = s.Region("dc1") })
	der, err := r.mgr.WrapKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reg.WrapPublicKey, der) || !strings.Contains(reg.HSMToken, `token "dc1"`) {
		t.Fatalf("registered %+v", reg)
	}
	if _, err := hsm.ParseWrapPublicKey(reg.WrapPublicKey, hsm.MinWrapKeyBits); err != nil {
		t.Fatal(err)
	}
	// A restarted Manager on the same HSM finds itself registered and
	// proposes nothing.
	r.stop()
	before := c.proposals.Load()
	m2, err := New(Config{Region: "dc1", GenesisValidatorsRoot: testGVR, Proposer: regionProposer{c, "dc1"}, State: c.m.FSM, HSM: r.hsm, Store: r.store})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.proposals.Load() != before || !m2.Stats().Registered {
		t.Fatalf("restarted Manager proposed %d commands (registered %v)", c.proposals.Load()-before, m2.Stats().Registered)
	}
}

func TestRegistrationFailureIsRetried(t *testing.T) {
	c := newCluster(t, "dc1")
	r := c.addRegion("dc1", regionOpts{noRun: true})
	fails := &failingProposer{inner: regionProposer{c, "dc1"}}
	fails.failing.Store(true)
	m, err := New(Config{Region: "dc1", GenesisValidatorsRoot: testGVR, Proposer: fails, State: c.m.FSM, HSM: r.hsm, Store: r.store,
		Interval: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "registration failures counted", func() bool { return m.Stats().RegisterFailures >= 2 })
	fails.failing.Store(false)
	waitFor(t, 10*time.Second, "registered after the proposer recovered", func() bool { return m.Stats().Registered })
}

type failingProposer struct {
	inner   Proposer
	failing atomic.Bool
}

func (p *failingProposer) Propose(ctx context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error) {
	if p.failing.Load() {
		return fsm.Response{}, leader.ErrNotLeader
	}
	return p.inner.Propose(ctx, t, msg)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
