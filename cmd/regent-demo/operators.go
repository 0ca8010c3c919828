package main

import (
	"fmt"
	"os"
	"path/filepath"
)

const clusterID = "regent-demo"

// writeOperators creates the keys of alice and bob (admins) and carol
// (operator) with `regentctl operators keygen`, and the operators file the
// regions bootstrap their registry from: handovers and registry changes
// need 2 signatures, policy and exits 1. In production each key stays with
// its operator (a file or a hardware token), never together.
func (d *demo) writeOperators() (string, error) {
	dir := d.path("operators")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	file := "cluster_id: " + clusterID + "\noperators:\n"
	for _, id := range []string{"alice", "bob", "carol"} {
		if _, err := d.ctl("", "operators", "keygen", "--id", id, "--dir", dir); err != nil {
			return "", err
		}
		role := "operator"
		if id != "carol" {
			role = "admin"
		}
		file += fmt.Sprintf("  - {id: %s, role: %s, public_key_file: %s.pub}\n", id, role, id)
	}
	file += "thresholds: {handover: 2, registry: 2, policy: 1, exit: 1, keys: 1}\nexit_limit_per_day: 10\nfinality_quorum: 2\n"
	path := filepath.Join(dir, "operators.yaml")
	return path, os.WriteFile(path, []byte(file), 0o600)
}
