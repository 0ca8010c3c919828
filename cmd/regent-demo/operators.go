package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/status"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader/nodepb"
	"github.com/regent-signer/regent/raft/commandpb"
)

const clusterID = "regent-demo"

// operators holds the demo's three operator keys. In production each
// lives with its operator (a file or a hardware token), never together.
type operators struct {
	dir  string
	keys map[string]ed25519.PrivateKey
}

// writeOperators creates alice and bob (admins) and carol (operator) and
// the operators file: handovers and registry changes need 2 signatures,
// policy and exits 1.
func writeOperators(dir string) (*operators, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	o := &operators{dir: dir, keys: map[string]ed25519.PrivateKey{}}
	file := "cluster_id: " + clusterID + "\noperators:\n"
	for _, id := range []string{"alice", "bob", "carol"} {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		o.keys[id] = priv
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, id+".pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			return nil, err
		}
		pk8, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, id+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8}), 0o600); err != nil {
			return nil, err
		}
		role := "operator"
		if id != "carol" {
			role = "admin" // registry changes need 2 admins
		}
		file += fmt.Sprintf("  - {id: %s, role: %s, public_key_file: %s.pub}\n", id, role, id)
	}
	file += "thresholds: {handover: 2, registry: 2, policy: 1, exit: 1, keys: 1}\nexit_limit_per_day: 10\nfinality_quorum: 2\n"
	return o, os.WriteFile(o.file(), []byte(file), 0o600)
}

func (o *operators) file() string { return filepath.Join(o.dir, "operators.yaml") }

// command builds a command for operator id with the action set by fill.
func (o *operators) command(id string, fill func(*failoverpb.OperatorCommand)) (*failoverpb.SignedCommand, error) {
	b := opsig.Builder{ClusterID: clusterID, OperatorID: id, TTL: 10 * time.Minute, Now: time.Now}
	cmd, err := b.New()
	if err != nil {
		return nil, err
	}
	fill(cmd)
	return opsig.SignCommand(cmd, o.keys[id])
}

// submit sends a signed command through any region (it is forwarded to
// the Raft leader) and returns the committed index.
func (o *operators) submit(ctx context.Context, node nodepb.NodeClient, sc *failoverpb.SignedCommand) (uint64, error) {
	payload, err := opsig.EncodeSigned(sc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := node.OperatorPropose(ctx, &nodepb.ProposeRequest{Type: commandpb.CommandType_OPERATOR_COMMAND, Payload: payload})
	if err != nil {
		return 0, errors.New(status.Convert(err).Message())
	}
	return resp.Index, nil
}
