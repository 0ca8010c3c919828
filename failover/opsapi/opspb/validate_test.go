package opspb

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
)

func signed(t testing.TB) []byte {
	t.Helper()
	b := opsig.Builder{ClusterID: "c", OperatorID: "alice", Now: func() time.Time { return time.Unix(1e9, 0) }}
	cmd, err := b.New()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Action = &failoverpb.OperatorCommand_RemoveOperator{RemoveOperator: &failoverpb.RemoveOperator{Id: "bob"}}
	seed := sha256.Sum256([]byte("alice"))
	sc, err := opsig.SignCommand(cmd, ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	out, err := opsig.EncodeSigned(sc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValidate(t *testing.T) {
	noBody, _ := opsig.EncodeSigned(&failoverpb.SignedCommand{Body: []byte{0x0a, 0x01, 'c'}, Signatures: []*failoverpb.OperatorSignature{{OperatorId: "a", Signature: []byte{1}}}})
	rows := []struct {
		name string
		req  interface{ Validate() error }
		ok   bool
	}{
		{"submit", &SubmitRequest{SignedCommand: signed(t)}, true},
		{"submit empty", &SubmitRequest{}, false},
		{"submit garbage", &SubmitRequest{SignedCommand: []byte("xx")}, false},
		{"submit body without action", &SubmitRequest{SignedCommand: noBody}, false},
		{"audit", &AuditRequest{Limit: MaxAuditLimit}, true},
		{"audit limit", &AuditRequest{Limit: MaxAuditLimit + 1}, false},
		{"export", &ExportInterchangeRequest{Pubkeys: [][]byte{make([]byte, 48)}, GenesisValidatorsRoot: make([]byte, 32)}, true},
		{"export short key", &ExportInterchangeRequest{Pubkeys: [][]byte{make([]byte, 47)}}, false},
		{"export short root", &ExportInterchangeRequest{GenesisValidatorsRoot: make([]byte, 31)}, false},
		{"export too many", &ExportInterchangeRequest{Pubkeys: make([][]byte, MaxExportKeys+1)}, false},
		{"import", &ImportInterchangeRequest{InterchangeJson: []byte("{}")}, true},
		{"import empty", &ImportInterchangeRequest{}, false},
		{"keystore", &ImportKeystoreRequest{KeystoreJson: []byte("{}"), Password: "pw"}, true},
		{"keystore empty", &ImportKeystoreRequest{}, false},
		{"keystore long password", &ImportKeystoreRequest{KeystoreJson: []byte("{}"), Password: string(make([]byte, MaxPassword+1))}, false},
		{"add member", &AddMemberRequest{Id: "dc4", Address: "10.0.0.4:7000"}, true},
		{"add member bad id", &AddMemberRequest{Id: "DC4", Address: "10.0.0.4:7000"}, false},
		{"add member no port", &AddMemberRequest{Id: "dc4", Address: "10.0.0.4"}, false},
		{"add member port 0", &AddMemberRequest{Id: "dc4", Address: "10.0.0.4:0"}, false},
		{"add member no host", &AddMemberRequest{Id: "dc4", Address: ":7000"}, false},
		{"remove member", &RemoveMemberRequest{Id: "dc4"}, true},
		{"remove member empty", &RemoveMemberRequest{}, false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			err := row.req.Validate()
			if row.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func FuzzSubmitValidate(f *testing.F) {
	f.Add(signed(f))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := (&SubmitRequest{SignedCommand: b}).Validate()
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// What passes decodes as the state machine will decode it.
		sc, err := opsig.DecodeSigned(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := opsig.DecodeBody(sc.GetBody()); err != nil {
			t.Fatal(err)
		}
	})
}
