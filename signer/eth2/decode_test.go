package eth2_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/regent-signer/regent/signer/eth2"
)

// sentinels lists every sentinel; an error must wrap exactly one.
var sentinels = []error{
	eth2.ErrMalformed, eth2.ErrTooLarge, eth2.ErrUnknownType, eth2.ErrUnknownFork,
	eth2.ErrMissingForkInfo, eth2.ErrUnsupported, eth2.ErrSigningRootMismatch,
	eth2.ErrNetworkRequired, eth2.ErrWrongNetwork,
}

// checkOnly fails unless err wraps want and no other sentinel, and is a
// *FieldError.
func checkOnly(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Fatalf("err = %v also wraps %v", err, s)
		}
	}
	var fe *eth2.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err %v is not a *FieldError", err)
	}
}

// edit loads a testdata request, lets f change its generic JSON form, and
// re-encodes it.
func edit(t *testing.T, file string, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readRequest(t, file), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// at walks a path of keys and indexes in a generic JSON value.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

// set replaces the value at path (the last element is the key to set).
func set(m map[string]any, val any, path ...any) {
	parent := at(m, path[:len(path)-1]...)
	switch k := path[len(path)-1].(type) {
	case string:
		parent.(map[string]any)[k] = val
	case int:
		parent.([]any)[k] = val
	}
}

func del(m map[string]any, path ...any) {
	delete(at(m, path[:len(path)-1]...).(map[string]any), path[len(path)-1].(string))
}

func hexOf(n int, b byte) string {
	return "0x" + strings.Repeat(string("0123456789abcdef"[b>>4])+string("0123456789abcdef"[b&15]), n)
}

type badCase struct {
	name  string
	body  func(t *testing.T) []byte
	net   *eth2.Network
	want  error
	field string // if set, the FieldError must name this field
}

func badCases() []badCase {
	mainnet := eth2.Mainnet()
	hoodi := eth2.Hoodi()
	raw := func(s string) func(*testing.T) []byte { return func(*testing.T) []byte { return []byte(s) } }
	mut := func(file string, f func(m map[string]any)) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return edit(t, file, f) }
	}
	setAt := func(file string, val any, path ...any) func(*testing.T) []byte {
		return mut(file, func(m map[string]any) { set(m, val, path...) })
	}
	att := "attestation.json"
	return []badCase{
		// Whole-body problems.
		{name: "oversized", want: eth2.ErrTooLarge, body: func(t *testing.T) []byte {
			b := readRequest(t, att)
			return append(b, bytes.Repeat([]byte(" "), eth2.MaxBodyBytes)...)
		}},
		{name: "empty body", want: eth2.ErrMalformed, body: raw("")},
		{name: "not JSON", want: eth2.ErrMalformed, body: raw("type=ATTESTATION")},
		{name: "array", want: eth2.ErrMalformed, body: raw(`[{"type":"ATTESTATION"}]`)},
		{name: "string", want: eth2.ErrMalformed, body: raw(`"ATTESTATION"`)},
		{name: "truncated", want: eth2.ErrMalformed, body: func(t *testing.T) []byte {
			b := readRequest(t, att)
			return b[:len(b)/2]
		}},
		{name: "trailing garbage", want: eth2.ErrMalformed, body: func(t *testing.T) []byte {
			return append(readRequest(t, att), []byte("garbage")...)
		}},
		{name: "trailing second object", want: eth2.ErrMalformed, body: func(t *testing.T) []byte {
			return append(readRequest(t, att), []byte(`{}`)...)
		}},
		{name: "trailing brace", want: eth2.ErrMalformed, body: func(t *testing.T) []byte {
			return append(readRequest(t, att), '}')
		}},
		{name: "duplicate type", want: eth2.ErrMalformed, field: "type", body: func(t *testing.T) []byte {
			return bytes.Replace(readRequest(t, att), []byte(`"type": "ATTESTATION",`), []byte(`"type": "ATTESTATION", "type": "RANDAO_REVEAL",`), 1)
		}},
		{name: "duplicate nested key", want: eth2.ErrMalformed, field: "fork_info.fork.epoch", body: func(t *testing.T) []byte {
			return bytes.Replace(readRequest(t, att), []byte(`"epoch": "364032"`), []byte(`"epoch": "364032", "epoch": "0"`), 1)
		}},
		{name: "nesting bomb in unknown field", want: eth2.ErrMalformed, field: "x", body: func(t *testing.T) []byte {
			b := readRequest(t, att)
			deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
			return append(b[:len(b)-2], []byte(`, "x": `+deep+"}")...)
		}},

		// type
		{name: "missing type", want: eth2.ErrMalformed, field: "type", body: mut(att, func(m map[string]any) { delete(m, "type") })},
		{name: "type is a number", want: eth2.ErrMalformed, field: "type", body: setAt(att, 3, "type")},
		{name: "type is null", want: eth2.ErrMalformed, field: "type", body: setAt(att, nil, "type")},
		{name: "unknown type", want: eth2.ErrUnknownType, field: "type", body: setAt(att, "BLOB_SIDECAR", "type")},
		{name: "lower-case type", want: eth2.ErrUnknownType, field: "type", body: setAt(att, "attestation", "type")},
		{name: "empty type", want: eth2.ErrUnknownType, field: "type", body: setAt(att, "", "type")},

		// members
		{name: "unknown top-level field", want: eth2.ErrMalformed, field: "extra", body: setAt(att, "1", "extra")},
		{name: "unknown nested field", want: eth2.ErrMalformed, field: "attestation.source.extra", body: setAt(att, "1", "attestation", "source", "extra")},
		{name: "unknown fork_info field", want: eth2.ErrMalformed, field: "fork_info.fork.extra", body: setAt(att, "1", "fork_info", "fork", "extra")},
		{name: "wrong-case field name", want: eth2.ErrMalformed, body: mut(att, func(m map[string]any) {
			m["Attestation"] = m["attestation"]
			delete(m, "attestation")
		})},
		{name: "another type's payload", want: eth2.ErrMalformed, field: "block", body: setAt(att, map[string]any{}, "block")},
		{name: "missing payload", want: eth2.ErrMalformed, field: "attestation", body: mut(att, func(m map[string]any) { delete(m, "attestation") })},
		{name: "payload is null", want: eth2.ErrMalformed, field: "attestation", body: setAt(att, nil, "attestation")},
		{name: "payload is an array", want: eth2.ErrMalformed, field: "attestation", body: setAt(att, []any{}, "attestation")},
		{name: "missing nested field", want: eth2.ErrMalformed, field: "attestation.target.root", body: mut(att, func(m map[string]any) { del(m, "attestation", "target", "root") })},

		// fork_info
		{name: "missing fork_info", want: eth2.ErrMissingForkInfo, field: "fork_info", body: mut(att, func(m map[string]any) { delete(m, "fork_info") })},
		{name: "fork_info null", want: eth2.ErrMalformed, field: "fork_info", body: setAt(att, nil, "fork_info")},
		{name: "fork_info without root", want: eth2.ErrMalformed, field: "fork_info.genesis_validators_root", body: mut(att, func(m map[string]any) { del(m, "fork_info", "genesis_validators_root") })},
		{name: "fork without epoch", want: eth2.ErrMalformed, field: "fork_info.fork.epoch", body: mut(att, func(m map[string]any) { del(m, "fork_info", "fork", "epoch") })},
		{name: "fork version too long", want: eth2.ErrMalformed, field: "fork_info.fork.current_version", body: setAt(att, "0x0500000000", "fork_info", "fork", "current_version")},

		// numbers
		{name: "number not a string", want: eth2.ErrMalformed, field: "attestation.slot", body: setAt(att, 12345, "attestation", "slot")},
		{name: "number with leading zero", want: eth2.ErrMalformed, field: "attestation.slot", body: setAt(att, "012", "attestation", "slot")},
		{name: "negative number", want: eth2.ErrMalformed, field: "attestation.target.epoch", body: setAt(att, "-1", "attestation", "target", "epoch")},
		{name: "plus sign", want: eth2.ErrMalformed, field: "attestation.slot", body: setAt(att, "+1", "attestation", "slot")},
		{name: "uint64 overflow", want: eth2.ErrMalformed, field: "attestation.slot", body: setAt(att, "18446744073709551616", "attestation", "slot")},
		{name: "empty number", want: eth2.ErrMalformed, field: "attestation.index", body: setAt(att, "", "attestation", "index")},
		{name: "decimal fraction", want: eth2.ErrMalformed, field: "attestation.slot", body: setAt(att, "1.5", "attestation", "slot")},
		{name: "exponent", want: eth2.ErrMalformed, field: "attestation.slot", body: setAt(att, "1e3", "attestation", "slot")},
		{name: "hex number", want: eth2.ErrMalformed, field: "attestation.slot", body: setAt(att, "0x10", "attestation", "slot")},
		{name: "space in number", want: eth2.ErrMalformed, field: "attestation.slot", body: setAt(att, " 1", "attestation", "slot")},

		// hex
		{name: "hex without 0x", want: eth2.ErrMalformed, field: "attestation.beacon_block_root", body: setAt(att, strings.Repeat("ab", 32), "attestation", "beacon_block_root")},
		{name: "hex odd length", want: eth2.ErrMalformed, field: "attestation.beacon_block_root", body: setAt(att, "0x"+strings.Repeat("a", 63), "attestation", "beacon_block_root")},
		{name: "hex bad digit", want: eth2.ErrMalformed, field: "attestation.beacon_block_root", body: setAt(att, "0x"+strings.Repeat("zz", 32), "attestation", "beacon_block_root")},
		{name: "root too short", want: eth2.ErrMalformed, field: "attestation.source.root", body: setAt(att, hexOf(31, 1), "attestation", "source", "root")},
		{name: "root too long", want: eth2.ErrMalformed, field: "attestation.source.root", body: setAt(att, hexOf(33, 1), "attestation", "source", "root")},
		{name: "root is a number", want: eth2.ErrMalformed, field: "attestation.source.root", body: setAt(att, 5, "attestation", "source", "root")},

		// signing root
		{name: "both signing root spellings", want: eth2.ErrMalformed, body: mut(att, func(m map[string]any) { m["signing_root"] = m["signingRoot"] })},
		{name: "signing root bad hex", want: eth2.ErrMalformed, field: "signingRoot", body: setAt(att, "0x1234", "signingRoot")},

		// attestations and bitlists
		{name: "bitlist without delimiter", want: eth2.ErrMalformed, field: "aggregate_and_proof.aggregate.aggregation_bits", body: setAt("aggregate_and_proof_phase0.json", "0xff00", "aggregate_and_proof", "aggregate", "aggregation_bits")},
		{name: "empty bitlist", want: eth2.ErrMalformed, field: "aggregate_and_proof.aggregate.aggregation_bits", body: setAt("aggregate_and_proof_phase0.json", "0x", "aggregate_and_proof", "aggregate", "aggregation_bits")},
		{name: "phase0 bitlist over 2048 bits", want: eth2.ErrMalformed, field: "aggregate_and_proof.aggregate.aggregation_bits", body: setAt("aggregate_and_proof_phase0.json", hexOf(256, 0xff)+"03", "aggregate_and_proof", "aggregate", "aggregation_bits")},
		{name: "phase0 bitlist of 258 bytes", want: eth2.ErrMalformed, field: "aggregate_and_proof.aggregate.aggregation_bits", body: setAt("aggregate_and_proof_phase0.json", hexOf(258, 0x01), "aggregate_and_proof", "aggregate", "aggregation_bits")},
		{name: "electra bitlist over 131072 bits", want: eth2.ErrMalformed, field: "aggregate_and_proof.aggregate.aggregation_bits", body: setAt("aggregate_and_proof_electra.json", hexOf(16384, 0xff)+"02", "aggregate_and_proof", "aggregate", "aggregation_bits")},
		{name: "committee_bits too short", want: eth2.ErrMalformed, field: "aggregate_and_proof.aggregate.committee_bits", body: setAt("aggregate_and_proof_electra.json", hexOf(7, 1), "aggregate_and_proof", "aggregate", "committee_bits")},
		{name: "V2 electra without committee_bits", want: eth2.ErrMalformed, field: "aggregate_and_proof.data.aggregate.committee_bits", body: mut("aggregate_and_proof_v2_electra.json", func(m map[string]any) {
			del(m, "aggregate_and_proof", "data", "aggregate", "committee_bits")
		})},
		{name: "V2 deneb with committee_bits", want: eth2.ErrMalformed, field: "aggregate_and_proof.data.aggregate.committee_bits", body: setAt("aggregate_and_proof_v2_deneb.json", hexOf(8, 1), "aggregate_and_proof", "data", "aggregate", "committee_bits")},
		{name: "V2 unknown version", want: eth2.ErrUnknownFork, field: "aggregate_and_proof.version", body: setAt("aggregate_and_proof_v2_electra.json", "GLOAS", "aggregate_and_proof", "version")},
		{name: "V2 version without data", want: eth2.ErrMalformed, field: "aggregate_and_proof.data", body: mut("aggregate_and_proof_v2_electra.json", func(m map[string]any) { del(m, "aggregate_and_proof", "data") })},
		{name: "V2 data without version", want: eth2.ErrMalformed, field: "aggregate_and_proof.version", body: mut("aggregate_and_proof_v2_electra.json", func(m map[string]any) { del(m, "aggregate_and_proof", "version") })},
		{name: "V2 version not a string", want: eth2.ErrMalformed, field: "aggregate_and_proof.version", body: setAt("aggregate_and_proof_v2_electra.json", 6, "aggregate_and_proof", "version")},

		// blocks
		{name: "BLOCK_V2 unknown version", want: eth2.ErrUnknownFork, field: "beacon_block.version", body: setAt("block_v2_deneb.json", "PHASE1", "beacon_block", "version")},
		{name: "BLOCK_V2 missing version", want: eth2.ErrMalformed, field: "beacon_block.version", body: mut("block_v2_deneb.json", func(m map[string]any) { del(m, "beacon_block", "version") })},
		{name: "BLOCK_V2 block and header", want: eth2.ErrMalformed, field: "beacon_block", body: mut("block_v2_altair.json", func(m map[string]any) {
			set(m, map[string]any{}, "beacon_block", "block_header")
		})},
		{name: "BLOCK_V2 neither block nor header", want: eth2.ErrMalformed, field: "beacon_block", body: mut("block_v2_deneb.json", func(m map[string]any) { del(m, "beacon_block", "block_header") })},
		{name: "BLOCK_V2 full bellatrix block", want: eth2.ErrUnsupported, field: "beacon_block.block", body: mut("block_v2_altair.json", func(m map[string]any) { set(m, "BELLATRIX", "beacon_block", "version") })},
		{name: "BLOCK_V2 full electra block", want: eth2.ErrUnsupported, field: "beacon_block.block", body: mut("block_v2_altair.json", func(m map[string]any) { set(m, "ELECTRA", "beacon_block", "version") })},
		{name: "BLOCK_V2 phase0 block with sync_aggregate", want: eth2.ErrMalformed, field: "beacon_block.block.body.sync_aggregate", body: mut("block_v2_altair.json", func(m map[string]any) { set(m, "PHASE0", "beacon_block", "version") })},
		{name: "BLOCK_V2 altair block without sync_aggregate", want: eth2.ErrMalformed, field: "beacon_block.block.body.sync_aggregate", body: mut("block_v2_phase0.json", func(m map[string]any) { set(m, "ALTAIR", "beacon_block", "version") })},
		{name: "BLOCK with sync_aggregate", want: eth2.ErrMalformed, field: "block.body.sync_aggregate", body: mut("block_phase0.json", func(m map[string]any) {
			set(m, map[string]any{"sync_committee_bits": hexOf(64, 0), "sync_committee_signature": hexOf(96, 0)}, "block", "body", "sync_aggregate")
		})},
		{name: "block attestation with committee_bits", want: eth2.ErrMalformed, field: "block.body.attestations[1].committee_bits", body: setAt("block_phase0.json", hexOf(8, 1), "block", "body", "attestations", 1, "committee_bits")},
		{name: "too many proposer slashings", want: eth2.ErrMalformed, field: "block.body.proposer_slashings", body: mut("block_phase0.json", func(m map[string]any) {
			ps := at(m, "block", "body", "proposer_slashings").([]any)
			for len(ps) < 17 {
				ps = append(ps, ps[0])
			}
			set(m, ps, "block", "body", "proposer_slashings")
		})},
		{name: "too many attester slashings", want: eth2.ErrMalformed, field: "block.body.attester_slashings", body: mut("block_phase0.json", func(m map[string]any) {
			as := at(m, "block", "body", "attester_slashings").([]any)
			set(m, []any{as[0], as[0], as[0]}, "block", "body", "attester_slashings")
		})},
		{name: "deposit proof too short", want: eth2.ErrMalformed, field: "block.body.deposits[0].proof", body: mut("block_phase0.json", func(m map[string]any) {
			p := at(m, "block", "body", "deposits", 0, "proof").([]any)
			set(m, p[:32], "block", "body", "deposits", 0, "proof")
		})},
		{name: "attesting indices over 2048", want: eth2.ErrMalformed, field: "block.body.attester_slashings[0].attestation_1.attesting_indices", body: mut("block_phase0.json", func(m map[string]any) {
			idx := make([]any, 2049)
			for i := range idx {
				idx[i] = "1"
			}
			set(m, idx, "block", "body", "attester_slashings", 0, "attestation_1", "attesting_indices")
		})},
		{name: "attesting index not a string", want: eth2.ErrMalformed, field: "block.body.attester_slashings[0].attestation_2.attesting_indices[3]", body: setAt("block_phase0.json", 5, "block", "body", "attester_slashings", 0, "attestation_2", "attesting_indices", 3)},
		{name: "list is an object", want: eth2.ErrMalformed, field: "block.body.voluntary_exits", body: setAt("block_phase0.json", map[string]any{}, "block", "body", "voluntary_exits")},
		{name: "header missing body_root", want: eth2.ErrMalformed, field: "beacon_block.block_header.body_root", body: mut("block_v2_fulu.json", func(m map[string]any) { del(m, "beacon_block", "block_header", "body_root") })},

		// sync committee
		{name: "contribution bits too short", want: eth2.ErrMalformed, field: "contribution_and_proof.contribution.aggregation_bits", body: setAt("sync_committee_contribution_and_proof.json", hexOf(15, 1), "contribution_and_proof", "contribution", "aggregation_bits")},
		{name: "sync committee bits too short", want: eth2.ErrMalformed, field: "beacon_block.block.body.sync_aggregate.sync_committee_bits", body: setAt("block_v2_altair.json", hexOf(63, 1), "beacon_block", "block", "body", "sync_aggregate", "sync_committee_bits")},

		// deposits, registrations and networks
		{name: "deposit pubkey too short", want: eth2.ErrMalformed, field: "deposit.pubkey", body: setAt("deposit.json", hexOf(47, 1), "deposit", "pubkey")},
		{name: "deposit without genesis_fork_version", want: eth2.ErrMalformed, field: "deposit.genesis_fork_version", body: mut("deposit.json", func(m map[string]any) { del(m, "deposit", "genesis_fork_version") })},
		{name: "deposit for another network", want: eth2.ErrWrongNetwork, net: &hoodi, field: "deposit.genesis_fork_version", body: func(t *testing.T) []byte { return readRequest(t, "deposit.json") }},
		{name: "fork_info for another network", want: eth2.ErrWrongNetwork, net: &hoodi, field: "fork_info.genesis_validators_root", body: func(t *testing.T) []byte { return readRequest(t, att) }},
		{name: "hoodi exit on mainnet", want: eth2.ErrWrongNetwork, net: &mainnet, body: func(t *testing.T) []byte { return readRequest(t, "voluntary_exit_hoodi.json") }},
		{name: "registration fee recipient too long", want: eth2.ErrMalformed, field: "validator_registration.fee_recipient", body: setAt("validator_registration.json", hexOf(21, 1), "validator_registration", "fee_recipient")},
		{name: "registration with bad optional fork_info", want: eth2.ErrMalformed, field: "fork_info.fork", body: setAt("validator_registration.json", map[string]any{"genesis_validators_root": hexOf(32, 0)}, "fork_info")},
	}
}

// TestDecodeRejects: every malformation yields its sentinel and nothing
// else, a *FieldError naming the field, no Request, and an untouched body.
func TestDecodeRejects(t *testing.T) {
	for _, tt := range badCases() {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body(t)
			orig := bytes.Clone(body)
			var req *eth2.Request
			var err error
			if tt.net != nil {
				req, err = eth2.DecodeForNetwork(body, *tt.net)
			} else {
				req, err = eth2.Decode(body)
			}
			if req != nil {
				t.Errorf("got a Request alongside error %v", err)
			}
			checkOnly(t, err, tt.want)
			if tt.field != "" {
				var fe *eth2.FieldError
				errors.As(err, &fe)
				if fe.Field != tt.field {
					t.Errorf("field %q, want %q (err: %v)", fe.Field, tt.field, err)
				}
			}
			if !bytes.Equal(body, orig) {
				t.Error("Decode modified its input")
			}
		})
	}
}

// TestMissingForkInfoEveryType: every type that needs fork_info refuses a
// body without it; DEPOSIT and VALIDATOR_REGISTRATION do not need one.
func TestMissingForkInfoEveryType(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			body := edit(t, v.File, func(m map[string]any) { delete(m, "fork_info") })
			req, err := eth2.DecodeForNetwork(body, network(t, *v.Network))
			switch eth2.Type(v.Type) {
			case eth2.TypeDeposit, eth2.TypeValidatorRegistration:
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if req.ForkInfo != nil {
					t.Fatal("ForkInfo set")
				}
			default:
				if req != nil {
					t.Fatal("got a Request")
				}
				checkOnly(t, err, eth2.ErrMissingForkInfo)
			}
		})
	}
}

// TestUnknownFieldEverywhere adds an unknown member to every object of every
// example body, one at a time: each must be refused, naming that member.
func TestUnknownFieldEverywhere(t *testing.T) {
	for _, v := range loadVectors(t) {
		var m map[string]any
		if err := json.Unmarshal(readRequest(t, v.File), &m); err != nil {
			t.Fatal(err)
		}
		var paths [][]any
		var walk func(v any, p []any)
		walk = func(v any, p []any) {
			switch x := v.(type) {
			case map[string]any:
				paths = append(paths, append([]any(nil), p...))
				for k, c := range x {
					walk(c, append(append([]any(nil), p...), k))
				}
			case []any:
				for i, c := range x {
					walk(c, append(append([]any(nil), p...), i))
				}
			}
		}
		walk(m, nil)
		for _, p := range paths {
			body := edit(t, v.File, func(m map[string]any) {
				at(m, p...).(map[string]any)["zz_unknown"] = "1"
			})
			req, err := eth2.DecodeForNetwork(body, network(t, *v.Network))
			if req != nil || !errors.Is(err, eth2.ErrMalformed) {
				t.Errorf("%s %v: err = %v", v.File, p, err)
				continue
			}
			var fe *eth2.FieldError
			if !errors.As(err, &fe) || !strings.HasSuffix(fe.Field, "zz_unknown") {
				t.Errorf("%s %v: error does not name the field: %v", v.File, p, err)
			}
		}
	}
}

// TestSigningRootMismatch: a client signing root that differs by one bit is
// refused, naming both values, and nothing is returned.
func TestSigningRootMismatch(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			good := hex32(t, v.SigningRoot)
			bad := good
			bad[0] ^= 0x80
			body := edit(t, v.File, func(m map[string]any) {
				delete(m, "signing_root")
				m["signingRoot"] = eth2.Root(bad).String()
			})
			req, err := eth2.DecodeForNetwork(body, network(t, *v.Network))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			root, domain, err := req.SigningRoot()
			checkOnly(t, err, eth2.ErrSigningRootMismatch)
			if root != ([32]byte{}) || domain != ([32]byte{}) {
				t.Fatal("non-zero results alongside a mismatch")
			}
			for _, want := range []string{eth2.Root(bad).String(), eth2.Root(good).String()} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if !errors.Is(req.Verify(), eth2.ErrSigningRootMismatch) {
				t.Error("Verify does not report the mismatch")
			}
			if _, err := req.Explain(); !errors.Is(err, eth2.ErrSigningRootMismatch) {
				t.Errorf("Explain: %v", err)
			}
		})
	}
}

func TestSigningRootSpellings(t *testing.T) {
	for _, name := range []string{"signingRoot", "signing_root"} {
		body := edit(t, "attestation.json", func(m map[string]any) {
			r := m["signingRoot"]
			delete(m, "signingRoot")
			m[name] = r
		})
		req, err := eth2.Decode(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if req.ClientSigningRoot == nil {
			t.Fatalf("%s: not recorded", name)
		}
		if err := req.Verify(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	req, err := eth2.Decode(readRequest(t, "attestation_no_signing_root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if req.ClientSigningRoot != nil {
		t.Fatal("ClientSigningRoot set without one in the body")
	}
}

// TestDecodeAccepts covers inputs at the edge of what is allowed.
func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name  string
		body  func(t *testing.T) []byte
		check func(t *testing.T, r *eth2.Request)
	}{
		{name: "max uint64", body: func(t *testing.T) []byte {
			return edit(t, "attestation_no_signing_root.json", func(m map[string]any) { set(m, "18446744073709551615", "attestation", "slot") })
		}, check: func(t *testing.T, r *eth2.Request) {
			if r.Attestation.Slot != ^uint64(0) {
				t.Fatal(r.Attestation.Slot)
			}
		}},
		{name: "zero", body: func(t *testing.T) []byte {
			return edit(t, "attestation_no_signing_root.json", func(m map[string]any) { set(m, "0", "attestation", "index") })
		}, check: func(t *testing.T, r *eth2.Request) {}},
		{name: "upper-case hex and 0X", body: func(t *testing.T) []byte {
			return edit(t, "attestation_no_signing_root.json", func(m map[string]any) { set(m, "0X"+strings.Repeat("AB", 32), "attestation", "beacon_block_root") })
		}, check: func(t *testing.T, r *eth2.Request) {
			if r.Attestation.BeaconBlockRoot[0] != 0xab {
				t.Fatal("hex not decoded")
			}
		}},
		{name: "lower-case version name", body: func(t *testing.T) []byte {
			return edit(t, "block_v2_deneb.json", func(m map[string]any) { set(m, "deneb", "beacon_block", "version") })
		}, check: func(t *testing.T, r *eth2.Request) {
			if r.Version != eth2.ForkDeneb {
				t.Fatal(r.Version)
			}
		}},
		{name: "header form for phase0", body: func(t *testing.T) []byte {
			return edit(t, "block_v2_altair_header.json", func(m map[string]any) { set(m, "PHASE0", "beacon_block", "version") })
		}, check: func(t *testing.T, r *eth2.Request) {
			if r.BlockHeader == nil {
				t.Fatal("no header")
			}
		}},
		{name: "bitlist of exactly 2048 bits", body: func(t *testing.T) []byte {
			return edit(t, "aggregate_and_proof_phase0.json", func(m map[string]any) {
				delete(m, "signingRoot")
				set(m, hexOf(256, 0xff)+"01", "aggregate_and_proof", "aggregate", "aggregation_bits")
			})
		}, check: func(t *testing.T, r *eth2.Request) {
			if _, _, err := r.SigningRoot(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "empty bitlist (delimiter only)", body: func(t *testing.T) []byte {
			return edit(t, "aggregate_and_proof_phase0.json", func(m map[string]any) {
				delete(m, "signingRoot")
				set(m, "0x01", "aggregate_and_proof", "aggregate", "aggregation_bits")
			})
		}, check: func(t *testing.T, r *eth2.Request) {
			if _, _, err := r.SigningRoot(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "deposit with optional fork_info", body: func(t *testing.T) []byte {
			return edit(t, "deposit.json", func(m map[string]any) {
				var a map[string]any
				_ = json.Unmarshal(readRequest(t, "attestation.json"), &a)
				m["fork_info"] = a["fork_info"]
			})
		}, check: func(t *testing.T, r *eth2.Request) {
			if err := r.Verify(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "white space around the object", body: func(t *testing.T) []byte {
			return append(append([]byte("\n\t "), readRequest(t, "attestation.json")...), "\n\n "...)
		}, check: func(t *testing.T, r *eth2.Request) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := eth2.Decode(tt.body(t))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}
