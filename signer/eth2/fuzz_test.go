package eth2_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/regent-signer/regent/signer/eth2"
)

// FuzzDecode feeds arbitrary bodies to Decode and DecodeForNetwork. Seeds
// are every example request plus the malformed ones of TestDecodeRejects'
// shapes. Properties: no panic; an error wraps exactly one sentinel and
// comes with no Request; a decoded Request has a deterministic signing
// root, never returns a root that contradicts the client's, and its
// Protection, Explain and ObjectRoot agree with SigningRoot's success.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed requests: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/3])
		f.Add(bytes.Replace(b, []byte(`"0x`), []byte(`"0xg`), 1))
	}
	for _, s := range []string{
		"", "{}", "[]", "null", `{"type":"ATTESTATION"}`, `{"type":"X"}`,
		`{"type":"ATTESTATION","type":"BLOCK"}`, `{"type":"DEPOSIT","deposit":{}}`,
		`{"type":"BLOCK_V2","fork_info":{"fork":{"previous_version":"0x00000000","current_version":"0x00000000","epoch":"0"},"genesis_validators_root":"0x0000000000000000000000000000000000000000000000000000000000000000"},"beacon_block":{"version":"FULU","block_header":{"slot":"1","proposer_index":"0","parent_root":"0x0000000000000000000000000000000000000000000000000000000000000000","state_root":"0x0000000000000000000000000000000000000000000000000000000000000000","body_root":"0x0000000000000000000000000000000000000000000000000000000000000000"}}}`,
	} {
		f.Add([]byte(s))
	}
	mainnet := eth2.Mainnet()
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		for _, decode := range []func([]byte) (*eth2.Request, error){
			eth2.Decode,
			func(b []byte) (*eth2.Request, error) { return eth2.DecodeForNetwork(b, mainnet) },
		} {
			req, err := decode(body)
			if !bytes.Equal(body, orig) {
				t.Fatal("decode modified its input")
			}
			if err != nil {
				if req != nil {
					t.Fatalf("Request alongside error %v", err)
				}
				wrapped := 0
				for _, s := range sentinels {
					if errors.Is(err, s) {
						wrapped++
					}
				}
				if wrapped != 1 {
					t.Fatalf("error %v wraps %d sentinels", err, wrapped)
				}
				continue
			}
			if !req.Type.Valid() {
				t.Fatalf("decoded invalid type %q", req.Type)
			}
			root, domain, err := req.SigningRoot()
			root2, domain2, err2 := req.SigningRoot()
			if root != root2 || domain != domain2 || (err == nil) != (err2 == nil) {
				t.Fatal("SigningRoot is not deterministic")
			}
			if err != nil {
				if root != ([32]byte{}) || domain != ([32]byte{}) {
					t.Fatal("non-zero results alongside an error")
				}
				if _, xerr := req.Explain(); xerr == nil {
					t.Fatal("Explain succeeded where SigningRoot failed")
				}
			} else {
				if req.ClientSigningRoot != nil && eth2.Root(root) != *req.ClientSigningRoot {
					t.Fatal("returned a root that contradicts the client's")
				}
				obj, oerr := req.ObjectRoot()
				if oerr != nil || eth2.ComputeSigningRoot(obj, domain) != root {
					t.Fatalf("ObjectRoot disagrees with SigningRoot: %v", oerr)
				}
				if _, xerr := req.Explain(); xerr != nil {
					t.Fatalf("Explain failed where SigningRoot succeeded: %v", xerr)
				}
			}
			p := req.Protection()
			switch req.Type {
			case eth2.TypeBlock, eth2.TypeBlockV2:
				if p.Kind != eth2.ProtectionBlock {
					t.Fatalf("block protection %v", p.Kind)
				}
			case eth2.TypeAttestation:
				if p.Kind != eth2.ProtectionAttestation {
					t.Fatalf("attestation protection %v", p.Kind)
				}
			default:
				if p.Kind != eth2.ProtectionNone {
					t.Fatalf("%s protection %v", req.Type, p.Kind)
				}
			}
		}
	})
}
