package eth2_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/regent-signer/regent/signer/eth2"
)

// vector is one entry of testdata/vectors.json, written by
// testdata/gen_vectors.py — an independent Python implementation of the
// spec's SSZ merkleization and domain rules.
type vector struct {
	File        string  `json:"file"`
	Network     *string `json:"network"`
	Type        string  `json:"type"`
	ObjectRoot  string  `json:"object_root"`
	Domain      string  `json:"domain"`
	SigningRoot string  `json:"signing_root"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

func readRequest(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "requests", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hex32(t testing.TB, s string) [32]byte {
	t.Helper()
	if len(s) != 66 || s[:2] != "0x" {
		t.Fatalf("bad root %q", s)
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(b)
}

func network(t testing.TB, name string) eth2.Network {
	t.Helper()
	n, err := eth2.NetworkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestVectors checks every example request against the independently
// computed object root, domain and signing root.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			body := readRequest(t, v.File)
			if v.Network == nil {
				t.Fatal("every vector names its network")
			}
			req, err := eth2.DecodeForNetwork(body, network(t, *v.Network))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if string(req.Type) != v.Type {
				t.Fatalf("type %s, want %s", req.Type, v.Type)
			}
			obj, err := req.ObjectRoot()
			if err != nil {
				t.Fatalf("object root: %v", err)
			}
			if obj != eth2.Root(hex32(t, v.ObjectRoot)) {
				t.Errorf("object root %s, want %s", obj, v.ObjectRoot)
			}
			root, domain, err := req.SigningRoot()
			if err != nil {
				t.Fatalf("signing root: %v", err)
			}
			if domain != hex32(t, v.Domain) {
				t.Errorf("domain %x, want %s", domain, v.Domain)
			}
			if root != hex32(t, v.SigningRoot) {
				t.Errorf("signing root %x, want %s", root, v.SigningRoot)
			}
			if err := req.Verify(); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// TestVectorsWithoutNetwork: every type but VOLUNTARY_EXIT and
// VALIDATOR_REGISTRATION gives the same answer without a network; those two
// refuse with ErrNetworkRequired.
func TestVectorsWithoutNetwork(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			req, err := eth2.Decode(readRequest(t, v.File))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			root, domain, err := req.SigningRoot()
			switch eth2.Type(v.Type) {
			case eth2.TypeVoluntaryExit, eth2.TypeValidatorRegistration:
				if !errors.Is(err, eth2.ErrNetworkRequired) {
					t.Fatalf("err = %v, want ErrNetworkRequired", err)
				}
				if root != ([32]byte{}) || domain != ([32]byte{}) {
					t.Fatal("non-zero results on error")
				}
			default:
				if err != nil {
					t.Fatalf("signing root: %v", err)
				}
				if root != hex32(t, v.SigningRoot) || domain != hex32(t, v.Domain) {
					t.Fatalf("root %x domain %x differ from the vector", root, domain)
				}
			}
		})
	}
}

// TestVectorCoverage makes sure the vectors exercise every type and every
// fork variant the package accepts.
func TestVectorCoverage(t *testing.T) {
	types := map[eth2.Type]int{}
	blockForks := map[eth2.ForkName]bool{}
	aggForks := map[eth2.ForkName]bool{}
	var fullPhase0, fullAltair, electraV1, bareV2, prevVersion bool
	for _, v := range loadVectors(t) {
		req, err := eth2.DecodeForNetwork(readRequest(t, v.File), network(t, *v.Network))
		if err != nil {
			t.Fatalf("%s: %v", v.File, err)
		}
		types[req.Type]++
		switch req.Type {
		case eth2.TypeBlockV2:
			blockForks[req.Version] = true
			if req.Block != nil {
				fullPhase0 = fullPhase0 || req.Version == eth2.ForkPhase0
				fullAltair = fullAltair || req.Version == eth2.ForkAltair
			}
		case eth2.TypeAggregateAndProofV2:
			if req.Version == "" {
				bareV2 = true
			} else {
				aggForks[req.Version] = true
			}
		case eth2.TypeAggregateAndProof:
			electraV1 = electraV1 || req.AggregateAndProof.Aggregate.IsElectra()
		case eth2.TypeAttestation:
			prevVersion = prevVersion || req.Attestation.Target.Epoch < req.ForkInfo.Fork.Epoch
		}
	}
	for _, typ := range eth2.Types() {
		if types[typ] == 0 {
			t.Errorf("no vector for %s", typ)
		}
	}
	for _, f := range eth2.Forks() {
		if !blockForks[f] {
			t.Errorf("no BLOCK_V2 vector for %s", f)
		}
		if !aggForks[f] {
			t.Errorf("no AGGREGATE_AND_PROOF_V2 vector for %s", f)
		}
	}
	if !fullPhase0 || !fullAltair || !electraV1 || !bareV2 || !prevVersion {
		t.Errorf("missing variant: full phase0 %v, full altair %v, electra AGGREGATE_AND_PROOF %v, bare V2 %v, previous_version %v",
			fullPhase0, fullAltair, electraV1, bareV2, prevVersion)
	}
}

// TestVectorsAreRegenerable re-runs the independent generator (when python3
// is installed) and checks that the committed request bodies and vectors
// are exactly what it writes, so neither was edited by hand.
func TestVectorsAreRegenerable(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	out := t.TempDir()
	cmd := exec.Command(py, filepath.Join("testdata", "gen_vectors.py"), "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen_vectors.py: %v\n%s", err, b)
	}
	files, err := filepath.Glob(filepath.Join(out, "requests", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(committed) {
		t.Fatalf("generator writes %d requests, testdata has %d", len(files), len(committed))
	}
	files = append(files, filepath.Join(out, "vectors.json"))
	for _, f := range files {
		rel, err := filepath.Rel(out, f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s differs from the generator's output; run python3 testdata/gen_vectors.py", rel)
		}
	}
}
