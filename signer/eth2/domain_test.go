package eth2_test

import (
	"crypto/sha256"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/regent-signer/regent/signer/eth2"
)

// Published constants: the mainnet deposit and builder domains (genesis
// fork version 0x00000000, zero genesis validators root).
func TestPublishedDomains(t *testing.T) {
	tests := []struct {
		name string
		dt   eth2.DomainType
		want string
	}{
		{name: "deposit", dt: eth2.DomainDeposit, want: "0x03000000f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"},
		{name: "builder", dt: eth2.DomainApplicationBuilder, want: "0x00000001f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"},
	}
	for _, tt := range tests {
		got := eth2.ComputeDomain(tt.dt, eth2.Version{}, eth2.Root{})
		if eth2.Root(got).String() != tt.want {
			t.Errorf("%s domain %x, want %s", tt.name, got, tt.want)
		}
	}
}

func TestDomainTypeBytes(t *testing.T) {
	tests := []struct {
		dt   eth2.DomainType
		want [4]byte
	}{
		{eth2.DomainBeaconProposer, [4]byte{0, 0, 0, 0}},
		{eth2.DomainBeaconAttester, [4]byte{1, 0, 0, 0}},
		{eth2.DomainContributionAndProof, [4]byte{9, 0, 0, 0}},
		{eth2.DomainApplicationBuilder, [4]byte{0, 0, 0, 1}},
	}
	for _, tt := range tests {
		if got := tt.dt.Bytes(); got != tt.want {
			t.Errorf("%s bytes %x, want %x", tt.dt, got, tt.want)
		}
	}
}

// The spec's definitions written out with sha256 directly.
func TestComputeDomainAndSigningRootByHand(t *testing.T) {
	version := eth2.Version{0x05, 0x00, 0x00, 0x00}
	gvr := eth2.Network{}.GenesisValidatorsRoot
	gvr[0], gvr[31] = 0x4b, 0x95
	var chunk [64]byte
	copy(chunk[:4], version[:])
	copy(chunk[32:], gvr[:])
	forkDataRoot := sha256.Sum256(chunk[:])
	if got := eth2.ComputeForkDataRoot(version, gvr); got != eth2.Root(forkDataRoot) {
		t.Fatalf("fork data root %s, want %x", got, forkDataRoot)
	}
	var wantDomain [32]byte
	wantDomain[0] = 0x01
	copy(wantDomain[4:], forkDataRoot[:28])
	domain := eth2.ComputeDomain(eth2.DomainBeaconAttester, version, gvr)
	if domain != wantDomain {
		t.Fatalf("domain %x, want %x", domain, wantDomain)
	}
	obj := eth2.Root{1, 2, 3}
	wantRoot := sha256.Sum256(append(obj[:], domain[:]...))
	if got := eth2.ComputeSigningRoot(obj, domain); got != wantRoot {
		t.Fatalf("signing root %x, want %x", got, wantRoot)
	}
}

func TestForkInfoVersionAt(t *testing.T) {
	fi := eth2.ForkInfo{Fork: eth2.Fork{PreviousVersion: eth2.Version{1}, CurrentVersion: eth2.Version{2}, Epoch: 100}}
	tests := []struct {
		epoch uint64
		want  eth2.Version
	}{
		{0, eth2.Version{1}}, {99, eth2.Version{1}}, {100, eth2.Version{2}}, {1 << 62, eth2.Version{2}},
	}
	for _, tt := range tests {
		if got := fi.VersionAt(tt.epoch); got != tt.want {
			t.Errorf("VersionAt(%d) = %s, want %s", tt.epoch, got, tt.want)
		}
	}
}

// The full-block and header forms of one block have one root.
func TestBlockHeaderRootEqualsBlockRoot(t *testing.T) {
	for _, file := range []string{"block_phase0.json", "block_v2_phase0.json", "block_v2_altair.json"} {
		req, err := eth2.Decode(readRequest(t, file))
		if err != nil {
			t.Fatal(err)
		}
		full, err := req.Block.HashTreeRoot()
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := req.Block.Header()
		if err != nil {
			t.Fatal(err)
		}
		if hdr.HashTreeRoot() != full {
			t.Errorf("%s: header root %s != block root %s", file, hdr.HashTreeRoot(), full)
		}
	}
}

// exitBody builds a VOLUNTARY_EXIT body for the EIP-7044 table.
func exitBody(t *testing.T, gvr eth2.Root, forkEpoch, exitEpoch uint64) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"type": "VOLUNTARY_EXIT",
		"fork_info": map[string]any{
			"fork": map[string]any{
				"previous_version": "0x0a000000", "current_version": "0x0b000000",
				"epoch": jsonUint(forkEpoch),
			},
			"genesis_validators_root": gvr.String(),
		},
		"voluntary_exit": map[string]any{"epoch": jsonUint(exitEpoch), "validator_index": "9"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonUint(v uint64) string { return strconv.FormatUint(v, 10) }

// TestExitDomainEIP7044 spells out the exit version rule row by row.
func TestExitDomainEIP7044(t *testing.T) {
	net := eth2.Network{
		Name: "test", GenesisValidatorsRoot: eth2.Root{7},
		CapellaForkVersion: eth2.Version{0xca}, DenebForkEpoch: 1000,
	}
	prev, cur := eth2.Version{0x0a}, eth2.Version{0x0b}
	tests := []struct {
		name                 string
		forkEpoch, exitEpoch uint64
		want                 eth2.Version
	}{
		{name: "pre-deneb chain, exit before fork epoch", forkEpoch: 500, exitEpoch: 499, want: prev},
		{name: "pre-deneb chain, exit at fork epoch", forkEpoch: 500, exitEpoch: 500, want: cur},
		{name: "pre-deneb chain, exit epoch at deneb", forkEpoch: 500, exitEpoch: 1000, want: eth2.Version{0xca}},
		{name: "deneb chain, old exit epoch", forkEpoch: 1000, exitEpoch: 3, want: eth2.Version{0xca}},
		{name: "later chain, current exit", forkEpoch: 2000, exitEpoch: 2001, want: eth2.Version{0xca}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := eth2.DecodeForNetwork(exitBody(t, eth2.Root{7}, tt.forkEpoch, tt.exitEpoch), net)
			if err != nil {
				t.Fatal(err)
			}
			_, domain, err := req.SigningRoot()
			if err != nil {
				t.Fatal(err)
			}
			if want := eth2.ComputeDomain(eth2.DomainVoluntaryExit, tt.want, eth2.Root{7}); domain != want {
				t.Fatalf("domain %x, want version %s", domain, tt.want)
			}
		})
	}
}

func TestDeneblessNetworkNeverUsesCapella(t *testing.T) {
	net := eth2.Network{Name: "old", CapellaForkVersion: eth2.Version{0xca}, DenebForkEpoch: eth2.FarFutureEpoch}
	req, err := eth2.DecodeForNetwork(exitBody(t, eth2.Root{}, 10, 1<<40), net)
	if err != nil {
		t.Fatal(err)
	}
	_, domain, err := req.SigningRoot()
	if err != nil {
		t.Fatal(err)
	}
	if want := eth2.ComputeDomain(eth2.DomainVoluntaryExit, eth2.Version{0x0b}, eth2.Root{}); domain != want {
		t.Fatalf("domain %x, want the fork_info current version", domain)
	}
}

func TestNetworkByName(t *testing.T) {
	for _, name := range []string{"mainnet", "Hoodi", "SEPOLIA", "holesky"} {
		if _, err := eth2.NetworkByName(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := eth2.NetworkByName("gnosis"); err == nil {
		t.Error("gnosis: want an error")
	}
}

// The built-in networks carry the published genesis validators roots.
func TestBuiltInNetworkRoots(t *testing.T) {
	tests := map[string]string{
		"mainnet": "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95",
		"hoodi":   "0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f",
		"sepolia": "0xd8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078",
		"holesky": "0x9143aa7c615a7f7115e2b6aac319c03529df8242ae705fba9df39b79c59fa8b1",
	}
	for name, want := range tests {
		if got := network(t, name).GenesisValidatorsRoot.String(); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}
