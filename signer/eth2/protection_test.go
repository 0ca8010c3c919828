package eth2_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/regent-signer/regent/signer/eth2"
)

func TestProtection(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			body := readRequest(t, v.File)
			req, err := eth2.DecodeForNetwork(body, network(t, *v.Network))
			if err != nil {
				t.Fatal(err)
			}
			// Read the expected values straight from the JSON.
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			p := req.Protection()
			wantGVR := eth2.Root{}
			if fi, ok := m["fork_info"]; ok {
				wantGVR = eth2.Root(hex32(t, at(fi, "genesis_validators_root").(string)))
			}
			switch eth2.Type(v.Type) {
			case eth2.TypeBlock:
				expectBlock(t, p, at(m, "block", "slot").(string), wantGVR)
			case eth2.TypeBlockV2:
				bb := at(m, "beacon_block").(map[string]any)
				obj, ok := bb["block_header"]
				if !ok {
					obj = bb["block"]
				}
				expectBlock(t, p, at(obj, "slot").(string), wantGVR)
			case eth2.TypeAttestation:
				if p.Kind != eth2.ProtectionAttestation || p.GenesisValidatorsRoot != wantGVR ||
					strconv.FormatUint(p.SourceEpoch, 10) != at(m, "attestation", "source", "epoch").(string) ||
					strconv.FormatUint(p.TargetEpoch, 10) != at(m, "attestation", "target", "epoch").(string) {
					t.Fatalf("protection %+v", p)
				}
			default:
				if p != (eth2.Protection{Kind: eth2.ProtectionNone}) {
					t.Fatalf("protection %+v, want none", p)
				}
			}
			if got, want := req.IsExit(), v.Type == string(eth2.TypeVoluntaryExit); got != want {
				t.Fatalf("IsExit = %v", got)
			}
			if req.RequiresApproval() != req.IsExit() {
				t.Fatal("RequiresApproval differs from IsExit")
			}
		})
	}
}

func expectBlock(t *testing.T, p eth2.Protection, slot string, gvr eth2.Root) {
	t.Helper()
	if p.Kind != eth2.ProtectionBlock || slot != strconv.FormatUint(p.Slot, 10) || p.GenesisValidatorsRoot != gvr {
		t.Fatalf("protection %+v, want block at slot %s", p, slot)
	}
}

// The zero value of ProtectionKind must never mean "no protection needed".
func TestProtectionFailsClosed(t *testing.T) {
	if (eth2.Protection{}).Kind != eth2.ProtectionUnknown {
		t.Fatal("zero Protection is not ProtectionUnknown")
	}
	tests := []struct {
		name string
		req  eth2.Request
	}{
		{name: "block without payload", req: eth2.Request{Type: eth2.TypeBlockV2, ForkInfo: &eth2.ForkInfo{}}},
		{name: "block without fork_info", req: eth2.Request{Type: eth2.TypeBlock, Block: &eth2.BeaconBlock{}}},
		{name: "attestation without payload", req: eth2.Request{Type: eth2.TypeAttestation, ForkInfo: &eth2.ForkInfo{}}},
		{name: "unknown type", req: eth2.Request{Type: "SOMETHING"}},
	}
	for _, tt := range tests {
		if k := tt.req.Protection().Kind; k != eth2.ProtectionUnknown {
			t.Errorf("%s: kind %s, want unknown", tt.name, k)
		}
	}
	for k, want := range map[eth2.ProtectionKind]string{
		eth2.ProtectionUnknown: "unknown", eth2.ProtectionNone: "none",
		eth2.ProtectionBlock: "block", eth2.ProtectionAttestation: "attestation",
	} {
		if k.String() != want {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
}

// A hand-built Request with no payload cannot produce a signing root.
func TestSigningRootWithoutPayload(t *testing.T) {
	for _, typ := range eth2.Types() {
		req := eth2.Request{Type: typ, ForkInfo: &eth2.ForkInfo{}}
		if _, _, err := req.SigningRoot(); err == nil {
			t.Errorf("%s: signing root without a payload", typ)
		}
	}
}

func TestExplain(t *testing.T) {
	mainnet := eth2.Mainnet()
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			n := network(t, *v.Network)
			text, err := eth2.Explain(readRequest(t, v.File), &n)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{v.Type, v.SigningRoot, v.Domain, v.ObjectRoot, "slashing protection:"} {
				if !strings.Contains(text, want) {
					t.Errorf("explanation lacks %q:\n%s", want, text)
				}
			}
			e, err := eth2.ExplainRequest(readRequest(t, v.File), &n)
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatal(err)
			}
			if back["signing_root"] != v.SigningRoot || back["domain"] != v.Domain {
				t.Errorf("JSON explanation %s", js)
			}
			if (v.Type == string(eth2.TypeVoluntaryExit)) != e.RequiresApproval {
				t.Errorf("requires_approval %v", e.RequiresApproval)
			}
		})
	}
	// Spot checks of the words.
	text, err := eth2.Explain(readRequest(t, "attestation_previous_version.json"), &mainnet)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"previous_version", "DOMAIN_BEACON_ATTESTER", "attestation source_epoch=", "0x05000000"} {
		if !strings.Contains(text, want) {
			t.Errorf("lacks %q:\n%s", want, text)
		}
	}
	text, err = eth2.Explain(readRequest(t, "voluntary_exit.json"), &mainnet)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"EIP-7044", "0x03000000", "operator approval"} {
		if !strings.Contains(text, want) {
			t.Errorf("lacks %q:\n%s", want, text)
		}
	}
	if _, err := eth2.Explain(readRequest(t, "voluntary_exit.json"), nil); err == nil {
		t.Error("exit explained without a network")
	}
	if _, err := eth2.Explain([]byte("{"), nil); err == nil {
		t.Error("garbage explained")
	}
}

func TestEpoch(t *testing.T) {
	tests := []struct {
		file   string
		want   uint64
		wantOK bool
	}{
		{file: "attestation.json", want: 364167, wantOK: true},              // target epoch
		{file: "block_v2_fulu_first_slot.json", want: 411392, wantOK: true}, // slot / 32
		{file: "sync_committee_message_previous_version.json", want: 411391, wantOK: true},
		{file: "voluntary_exit_old_epoch.json", want: 200000, wantOK: true},
		{file: "deposit.json", wantOK: false},
		{file: "validator_registration.json", wantOK: false},
	}
	for _, tt := range tests {
		req, err := eth2.Decode(readRequest(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := req.Epoch()
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("%s: Epoch() = %d, %v; want %d, %v", tt.file, got, ok, tt.want, tt.wantOK)
		}
	}
	if _, ok := (&eth2.Request{Type: eth2.TypeAttestation}).Epoch(); ok {
		t.Error("Epoch without a payload")
	}
}
