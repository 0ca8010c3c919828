package finality

import (
	"errors"
	"strings"
	"testing"

	"github.com/regent-signer/regent/slashing/eth"
)

func TestDecodeGenesis(t *testing.T) {
	good := genesisJSON(gvrA, 1606824023)
	g, err := DecodeGenesis([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if g.Time != 1606824023 || g.ValidatorsRoot != gvrA || !g.HasForkVersion {
		t.Fatalf("decoded %+v", g)
	}
	bad := []struct{ name, body string }{
		{"empty", ``},
		{"not an object", `[]`},
		{"no data", `{}`},
		{"data null", `{"data":null}`},
		{"time as number", `{"data":{"genesis_time":1606824023,"genesis_validators_root":"` + hex0x(gvrA[:]) + `"}}`},
		{"time leading zero", `{"data":{"genesis_time":"01","genesis_validators_root":"` + hex0x(gvrA[:]) + `"}}`},
		{"time negative", `{"data":{"genesis_time":"-1","genesis_validators_root":"` + hex0x(gvrA[:]) + `"}}`},
		{"time overflow", `{"data":{"genesis_time":"18446744073709551616","genesis_validators_root":"` + hex0x(gvrA[:]) + `"}}`},
		{"root short", `{"data":{"genesis_time":"1","genesis_validators_root":"0x00"}}`},
		{"root no prefix", `{"data":{"genesis_time":"1","genesis_validators_root":"` + hex0x(gvrA[:])[2:] + `"}}`},
		{"root not hex", `{"data":{"genesis_time":"1","genesis_validators_root":"0x` + strings.Repeat("zz", 32) + `"}}`},
		{"fork version long", `{"data":{"genesis_time":"1","genesis_validators_root":"` + hex0x(gvrA[:]) + `","genesis_fork_version":"0x0000000000"}}`},
		{"duplicate member", `{"data":{"genesis_time":"1","genesis_time":"2","genesis_validators_root":"` + hex0x(gvrA[:]) + `"}}`},
		{"wrong case", `{"Data":{"genesis_time":"1","genesis_validators_root":"` + hex0x(gvrA[:]) + `"}}`},
		{"trailing data", good + `{}`},
		{"truncated", good[:len(good)-3]},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			g, err := DecodeGenesis([]byte(tc.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if g != (Genesis{}) {
				t.Fatalf("decoded %+v alongside an error", g)
			}
		})
	}
}

func TestDecodeFinalityCheckpoints(t *testing.T) {
	fin := Checkpoint{Epoch: 100, Root: testRoot(0, 100)}
	f, err := DecodeFinalityCheckpoints([]byte(checkpointsJSON(fin, true)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Finalized != fin || !f.ExecutionOptimistic || f.CurrentJustified.Epoch != 101 || !f.HasFinalizedFlag || f.FinalizedFlag {
		t.Fatalf("decoded %+v", f)
	}
	// Flags absent: accepted, not optimistic.
	cp := checkpointJSON(fin)
	f, err = DecodeFinalityCheckpoints([]byte(`{"data":{"previous_justified":` + cp + `,"current_justified":` + cp + `,"finalized":` + cp + `,"extra":1},"extra":[1]}`))
	if err != nil || f.ExecutionOptimistic || f.HasFinalizedFlag || f.Finalized != fin {
		t.Fatalf("decoded %+v, %v", f, err)
	}
	just := checkpointJSON(Checkpoint{Epoch: 99, Root: fin.Root})
	bad := []struct{ name, body string }{
		{"missing finalized", `{"data":{"previous_justified":` + cp + `,"current_justified":` + cp + `}}`},
		{"finalized above current justified", `{"data":{"previous_justified":` + just + `,"current_justified":` + just + `,"finalized":` + cp + `}}`},
		{"previous above current", `{"data":{"previous_justified":` + cp + `,"current_justified":` + just + `,"finalized":` + just + `}}`},
		{"optimistic as string", `{"execution_optimistic":"false","data":{"previous_justified":` + cp + `,"current_justified":` + cp + `,"finalized":` + cp + `}}`},
		{"epoch as number", `{"data":{"previous_justified":` + cp + `,"current_justified":` + cp + `,"finalized":{"epoch":100,"root":"` + hex0x(fin.Root[:]) + `"}}}`},
		{"epoch with plus", `{"data":{"previous_justified":` + cp + `,"current_justified":` + cp + `,"finalized":{"epoch":"+100","root":"` + hex0x(fin.Root[:]) + `"}}}`},
		{"epoch empty", `{"data":{"previous_justified":` + cp + `,"current_justified":` + cp + `,"finalized":{"epoch":"","root":"` + hex0x(fin.Root[:]) + `"}}}`},
		{"root missing", `{"data":{"previous_justified":` + cp + `,"current_justified":` + cp + `,"finalized":{"epoch":"100"}}}`},
		{"checkpoint is array", `{"data":{"previous_justified":` + cp + `,"current_justified":` + cp + `,"finalized":[]}}`},
		{"duplicate finalized", `{"data":{"previous_justified":` + cp + `,"current_justified":` + cp + `,"finalized":` + cp + `,"finalized":` + just + `}}`},
		{"two documents", `{"data":{}} {"data":{}}`},
		{"garbage", `<html>502 Bad Gateway</html>`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeFinalityCheckpoints([]byte(tc.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if f != (FinalityCheckpoints{}) {
				t.Fatalf("decoded %+v alongside an error", f)
			}
		})
	}
}

func TestDecodeBlockHeader(t *testing.T) {
	root := testRoot(0, 5)
	h, err := DecodeBlockHeader([]byte(headerJSON(160, root, true, false)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Slot != 160 || h.Root != root || !h.Finalized || !h.HasFinalized || !h.Canonical || h.ProposerIndex != 7 {
		t.Fatalf("decoded %+v", h)
	}
	good := headerJSON(160, root, true, false)
	bad := []struct{ name, body string }{
		{"no header", `{"data":{"root":"` + hex0x(root[:]) + `","canonical":true}}`},
		{"canonical string", strings.Replace(good, `"canonical":true`, `"canonical":"true"`, 1)},
		{"slot hex", strings.Replace(good, `"slot":"160"`, `"slot":"0xa0"`, 1)},
		{"signature short", strings.Replace(good, hex0x(make([]byte, 96)), hex0x(make([]byte, 95)), 1)},
		{"finalized null", strings.Replace(good, `"finalized":true`, `"finalized":null`, 1)},
		{"message missing body_root", strings.Replace(good, `,"body_root"`, `,"x"`, 1)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			h, err := DecodeBlockHeader([]byte(tc.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if h != (BlockHeader{}) {
				t.Fatalf("decoded %+v alongside an error", h)
			}
		})
	}
}

func TestDecodeCometStatus(t *testing.T) {
	hash := testRoot(0, 42)
	s, err := DecodeCometStatus([]byte(statusJSON("chain-1", 42, hash, false)))
	if err != nil {
		t.Fatal(err)
	}
	if s != (CometStatus{Network: "chain-1", LatestHeight: 42, LatestHash: hash}) {
		t.Fatalf("decoded %+v", s)
	}
	// Height 0: empty hash allowed.
	s, err = DecodeCometStatus([]byte(statusJSON("chain-1", 0, hash, true)))
	if err != nil || s.LatestHeight != 0 || s.LatestHash != ([32]byte{}) || !s.CatchingUp {
		t.Fatalf("decoded %+v, %v", s, err)
	}
	good := statusJSON("chain-1", 42, hash, false)
	hashHex := strings.ToUpper(hex0x(hash[:])[2:])
	bad := []struct {
		name, body string
		want       error
	}{
		{"rpc error", `{"jsonrpc":"2.0","id":-1,"error":{"code":-32603,"message":"boom"}}`, ErrRPCError},
		{"wrong jsonrpc", strings.Replace(good, `"2.0"`, `"1.0"`, 1), ErrMalformed},
		{"no result", `{"jsonrpc":"2.0","id":-1}`, ErrMalformed},
		{"empty hash at height", strings.Replace(good, hashHex, "", 1), ErrMalformed},
		{"0x hash", strings.Replace(good, hashHex, "0x"+hashHex[2:], 1), ErrMalformed},
		{"height number", strings.Replace(good, `"latest_block_height":"42"`, `"latest_block_height":42`, 1), ErrMalformed},
		{"height above int64", strings.Replace(good, `"latest_block_height":"42"`, `"latest_block_height":"9223372036854775808"`, 1), ErrMalformed},
		{"catching_up string", strings.Replace(good, `"catching_up":false`, `"catching_up":"false"`, 1), ErrMalformed},
		{"empty network", strings.Replace(good, `"network":"chain-1"`, `"network":""`, 1), ErrMalformed},
		{"network too long", strings.Replace(good, `"network":"chain-1"`, `"network":"`+strings.Repeat("x", 51)+`"`, 1), ErrMalformed},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s, err := DecodeCometStatus([]byte(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if s != (CometStatus{}) {
				t.Fatalf("decoded %+v alongside an error", s)
			}
		})
	}
}

func TestDecodeCometCommit(t *testing.T) {
	hash := testRoot(0, 42)
	c, err := DecodeCometCommit([]byte(commitJSON("chain-1", 42, hash)))
	if err != nil {
		t.Fatal(err)
	}
	if c != (CometCommit{ChainID: "chain-1", Height: 42, BlockHash: hash, Canonical: true}) {
		t.Fatalf("decoded %+v", c)
	}
	// Lower-case hex is accepted.
	lower := strings.Replace(commitJSON("chain-1", 42, hash), strings.ToUpper(hex0x(hash[:])[2:]), hex0x(hash[:])[2:], 1)
	if c2, err := DecodeCometCommit([]byte(lower)); err != nil || c2 != c {
		t.Fatalf("lower case: %+v, %v", c2, err)
	}
	good := commitJSON("chain-1", 42, hash)
	bad := []struct{ name, body string }{
		{"heights differ", strings.Replace(good, `"commit":{"height":"42"`, `"commit":{"height":"41"`, 1)},
		{"height zero", commitJSON("chain-1", 0, hash)},
		{"no canonical", strings.Replace(good, `,"canonical":true`, ``, 1)},
		{"no block id", strings.Replace(good, `"block_id"`, `"blockid"`, 1)},
		{"short hash", strings.Replace(good, strings.ToUpper(hex0x(hash[:])[2:]), "ABCD", 1)},
		{"no chain id", strings.Replace(good, `"chain_id"`, `"chainid"`, 1)},
		{"result array", `{"jsonrpc":"2.0","id":-1,"result":[]}`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeCometCommit([]byte(tc.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if c != (CometCommit{}) {
				t.Fatalf("decoded %+v alongside an error", c)
			}
		})
	}
}

// The pre-finality checkpoint (epoch 0, zero root) decodes.
func TestDecodePreFinalityCheckpoint(t *testing.T) {
	f, err := DecodeFinalityCheckpoints([]byte(checkpointsJSON(Checkpoint{}, false)))
	if err != nil || f.Finalized != (Checkpoint{}) || f.Finalized.Root != (eth.Root{}) {
		t.Fatalf("decoded %+v, %v", f, err)
	}
}
