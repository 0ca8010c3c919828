package pipeline_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	blst "github.com/supranational/blst/bindings/go"

	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/eth2"
	"github.com/regent-signer/regent/signer/pipeline"
	"github.com/regent-signer/regent/signer/pipeline/pipelinetest"
	"github.com/regent-signer/regent/slashing"
)

var caller = pipeline.Caller{Name: "vc-1"}

// setup returns an env on mainnet with one BLS key allowed to vc-1.
func setup(t *testing.T) (*pipelinetest.Env, bls.PublicKey) {
	t.Helper()
	net := eth2.Mainnet()
	env, err := pipelinetest.New(net)
	if err != nil {
		t.Fatal(err)
	}
	ikm := sha256.Sum256([]byte("pipeline test key"))
	pk, err := env.AddBLSKey(ikm[:], net.GenesisValidatorsRoot)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Allow("vc-1", []string{"*"}, []string{"*"}); err != nil {
		t.Fatal(err)
	}
	return env, pk
}

func request(t *testing.T, name string, edit func(string) string) *eth2.Request {
	t.Helper()
	b, err := os.ReadFile("../eth2/testdata/requests/" + name)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	if edit != nil {
		body = edit(body)
	}
	req, err := eth2.DecodeForNetwork([]byte(body), eth2.Mainnet())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// otherBlock changes the attested block root: same duty, different message.
func otherBlock(body string) string {
	body = strings.Replace(body, "0x76de63474a287ee7a299d38303a30942f2ca6f6470367a13da15ef169d0e5640",
		"0x1111111111111111111111111111111111111111111111111111111111111111", 1)
	return dropSigningRoot(body)
}

func dropSigningRoot(body string) string {
	i := strings.Index(body, `"signingRoot"`)
	if i < 0 {
		return body
	}
	j := strings.Index(body[i:], "\n")
	return body[:i] + body[i+j+1:]
}

func verify(t *testing.T, pk bls.PublicKey, req *eth2.Request, sig [96]byte) {
	t.Helper()
	root, _, err := req.SigningRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := new(blst.P1Affine).Uncompress(pk[:])
	s := new(blst.P2Affine).Uncompress(sig[:])
	if p == nil || s == nil || !s.Verify(true, p, true, root[:], []byte(bls.DST)) {
		t.Fatal("signature does not verify against the public key and signing root")
	}
}

func TestSignAttestationAndIdenticalRetry(t *testing.T) {
	env, pk := setup(t)
	req := request(t, "attestation.json", nil)
	sig1, err := env.Pipeline.SignEth(context.Background(), caller, pk, req)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, pk, req, sig1)
	sig2, err := env.Pipeline.SignEth(context.Background(), caller, pk, req)
	if err != nil || sig1 != sig2 {
		t.Fatalf("identical retry: %v, same signature %v", err, sig1 == sig2)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name string
		prep func(t *testing.T, env *pipelinetest.Env, pk bls.PublicKey)
		req  string
		edit func(string) string
		key  func(pk bls.PublicKey) bls.PublicKey
		who  pipeline.Caller
		want error
		rule slashing.Rule
	}{
		{name: "double vote", prep: func(t *testing.T, env *pipelinetest.Env, pk bls.PublicKey) {
			if _, err := env.Pipeline.SignEth(context.Background(), caller, pk, request(t, "attestation.json", nil)); err != nil {
				t.Fatal(err)
			}
		}, req: "attestation.json", edit: otherBlock, want: pipeline.ErrSlashable, rule: slashing.RuleAttDoubleVote},
		{name: "unknown key", req: "attestation.json", key: func(bls.PublicKey) bls.PublicKey { return bls.PublicKey{1} }, want: pipeline.ErrUnknownKey},
		{name: "no policy for identity", req: "attestation.json", who: pipeline.Caller{Name: "stranger"}, want: pipeline.ErrForbidden},
		{name: "policy excludes type", prep: func(t *testing.T, env *pipelinetest.Env, _ bls.PublicKey) {
			if err := env.Allow("vc-1", []string{"*"}, []string{"BLOCK_V2"}); err != nil {
				t.Fatal(err)
			}
		}, req: "attestation.json", want: pipeline.ErrForbidden},
		{name: "exit without approval", req: "voluntary_exit.json", want: pipeline.ErrNotApproved},
		{name: "not lease holder", prep: func(_ *testing.T, env *pipelinetest.Env, _ bls.PublicKey) { env.Holding = false },
			req: "attestation.json", want: pipeline.ErrCannotSign},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, pk := setup(t)
			if tc.prep != nil {
				tc.prep(t, env, pk)
			}
			if tc.key != nil {
				pk = tc.key(pk)
			}
			who := caller
			if tc.who.Name != "" {
				who = tc.who
			}
			sig, err := env.Pipeline.SignEth(context.Background(), who, pk, request(t, tc.req, tc.edit))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if sig != ([96]byte{}) {
				t.Fatal("a refused request returned a signature")
			}
			var r *pipeline.Refusal
			if tc.rule != "" && (!errors.As(err, &r) || r.Rule != tc.rule || r.Reason == "") {
				t.Fatalf("refusal = %+v, want rule %s with a reason", r, tc.rule)
			}
		})
	}
}

func TestApprovedExitSignsOnceAndRetries(t *testing.T) {
	env, pk := setup(t)
	if err := env.ApproveExit(pk[:], "alice"); err != nil {
		t.Fatal(err)
	}
	req := request(t, "voluntary_exit.json", nil)
	sig, err := env.Pipeline.SignEth(context.Background(), caller, pk, req)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, pk, req, sig)
	if again, err := env.Pipeline.SignEth(context.Background(), caller, pk, req); err != nil || again != sig {
		t.Fatalf("identical exit retry: %v", err)
	}
	other := request(t, "voluntary_exit.json", func(b string) string {
		return dropSigningRoot(strings.Replace(b, `"validator_index": "`, `"validator_index": "9`, 1))
	})
	if _, err := env.Pipeline.SignEth(context.Background(), caller, pk, other); !errors.Is(err, pipeline.ErrNotApproved) {
		t.Fatalf("second, different exit: %v, want ErrNotApproved", err)
	}
}

func TestCheckRecordsNothing(t *testing.T) {
	env, pk := setup(t)
	req := request(t, "attestation.json", nil)
	if err := env.Pipeline.CheckEth(caller, pk, req); err != nil {
		t.Fatal(err)
	}
	// Had Check recorded, a conflicting vote would now be refused.
	if _, err := env.Pipeline.SignEth(context.Background(), caller, pk, request(t, "attestation.json", otherBlock)); err != nil {
		t.Fatalf("after a dry run, the first real vote was refused: %v", err)
	}
	if err := env.Pipeline.CheckEth(caller, pk, req); !errors.Is(err, pipeline.ErrSlashable) {
		t.Fatalf("check of the conflicting vote: %v, want ErrSlashable", err)
	}
}

// TestConcurrentConflictingRequests: many goroutines ask for conflicting
// votes at one target; exactly one distinct message may be signed.
func TestConcurrentConflictingRequests(t *testing.T) {
	env, pk := setup(t)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		signed = map[[32]byte]bool{}
	)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			edit := func(b string) string {
				return dropSigningRoot(strings.Replace(b, "0x76de63474a287ee7a299d38303a30942f2ca6f6470367a13da15ef169d0e5640",
					"0x"+strings.Repeat(string("0123456789abcdef"[i]), 64), 1))
			}
			req := request(t, "attestation.json", edit)
			if _, err := env.Pipeline.SignEth(context.Background(), caller, pk, req); err == nil {
				root, _, _ := req.SigningRoot()
				mu.Lock()
				signed[root] = true
				mu.Unlock()
			} else if !errors.Is(err, pipeline.ErrSlashable) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(signed) != 1 {
		t.Fatalf("%d distinct conflicting votes were signed, want exactly 1", len(signed))
	}
}

// TestSlashableRefusedBeforeLeaseCheck: a standby region answers a
// slashable request with the slashing refusal, not "not lease holder".
func TestSlashableRefusedBeforeLeaseCheck(t *testing.T) {
	env, pk := setup(t)
	if _, err := env.Pipeline.SignEth(context.Background(), caller, pk, request(t, "attestation.json", nil)); err != nil {
		t.Fatal(err)
	}
	env.Holding = false
	_, err := env.Pipeline.SignEth(context.Background(), caller, pk, request(t, "attestation.json", otherBlock))
	if !errors.Is(err, pipeline.ErrSlashable) {
		t.Fatalf("slashable request on a non-holder: %v, want ErrSlashable", err)
	}
	if _, err := env.Pipeline.SignEth(context.Background(), caller, pk, request(t, "attestation.json", nil)); !errors.Is(err, pipeline.ErrCannotSign) {
		t.Fatalf("allowed request on a non-holder: %v, want ErrCannotSign", err)
	}
}

// notReady is a BLS signer that cannot sign any key (a holder missing it).
type notReady struct{ pipeline.BLSKeys }

func (notReady) CanSignBLS(bls.PublicKey) error { return errors.New("test: key not here") }

// TestMissingKeyRefusedBeforeRecord: a holder that cannot sign the key
// refuses without writing the record.
func TestMissingKeyRefusedBeforeRecord(t *testing.T) {
	env, pk := setup(t)
	p, err := pipeline.New(pipeline.Config{Recorder: env, State: env, BLS: notReady{env}, Network: eth2.Mainnet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.SignEth(context.Background(), caller, pk, request(t, "attestation.json", nil)); !errors.Is(err, pipeline.ErrCannotSign) {
		t.Fatalf("err = %v, want ErrCannotSign", err)
	}
	// Nothing was recorded: a different vote at that target is still allowed.
	if err := env.Pipeline.CheckEth(caller, pk, request(t, "attestation.json", otherBlock)); err != nil {
		t.Fatalf("the refused request left a record: %v", err)
	}
}
