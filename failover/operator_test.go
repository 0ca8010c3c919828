package failover

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
)

func setThreshold(a failoverpb.Action, n uint32) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_SetThreshold{SetThreshold: &failoverpb.SetThreshold{Action: a, Required: n}}
	}
}

func addOp(o testOp) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_AddOperator{AddOperator: &failoverpb.AddOperator{Id: o.id, PublicKey: o.der, Role: o.role}}
	}
}

func removeOp(id string) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_RemoveOperator{RemoveOperator: &failoverpb.RemoveOperator{Id: id}}
	}
}

func exitFor(key []byte) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_ApproveExit{ApproveExit: &failoverpb.ApproveExit{Pubkey: key, Reason: "validator retired"}}
	}
}

func policy(identity string, patterns ...string) func(*failoverpb.OperatorCommand) {
	return func(cmd *failoverpb.OperatorCommand) {
		cmd.Action = &failoverpb.OperatorCommand_SetPolicy{SetPolicy: &failoverpb.SetPolicy{Identity: identity, KeyPatterns: patterns, MessageTypes: []string{"ATTESTATION"}}}
	}
}

func payload(t testing.TB, sc *failoverpb.SignedCommand) []byte {
	t.Helper()
	b, err := opsig.EncodeSigned(sc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOperatorCommands: each row builds its own prior state through
// commands, then submits one OPERATOR_COMMAND payload. A refused row must
// be audited as rejected and change nothing else.
func TestOperatorCommands(t *testing.T) {
	type row struct {
		name string
		// build runs prior commands and returns the payload to submit.
		build func(t *testing.T, c *cluster) []byte
		want  error
		check func(t *testing.T, c *cluster, r Result)
	}
	signed := func(op string, fn func(*failoverpb.OperatorCommand), cosigners ...string) func(*testing.T, *cluster) []byte {
		return func(t *testing.T, c *cluster) []byte { return payload(t, c.sign(c.body(op, fn), cosigners...)) }
	}
	mallory := func(t *testing.T) testOp { return edOp(t, "mallory", failoverpb.Role_ROLE_ADMIN) }
	rows := []row{
		// --- authentication -------------------------------------------
		{name: "garbage payload", want: ErrMalformed,
			build: func(*testing.T, *cluster) []byte { return []byte{0xff, 0x01, 0x02} }},
		{name: "no signatures", want: ErrMalformed, build: func(t *testing.T, c *cluster) []byte {
			sc := c.sign(c.body("alice", request("dc2", "x")))
			sc.Signatures = nil
			return payload(t, sc)
		}},
		{name: "body with an unknown field", want: ErrMalformed, build: func(t *testing.T, c *cluster) []byte {
			cmd := c.body("alice", request("dc2", "x"))
			body, _ := opsig.Marshal(cmd)
			body = protowire.AppendTag(body, 999, protowire.VarintType)
			body = protowire.AppendVarint(body, 1)
			sig, err := opsig.Sign(c.ops["alice"].signer, body)
			if err != nil {
				t.Fatal(err)
			}
			return payload(t, &failoverpb.SignedCommand{Body: body, Signatures: []*failoverpb.OperatorSignature{{OperatorId: "alice", Signature: sig}}})
		}},
		{name: "short nonce", want: ErrMalformed, build: func(t *testing.T, c *cluster) []byte {
			cmd := c.body("alice", request("dc2", "x"))
			cmd.Nonce = cmd.Nonce[:8]
			body, _ := proto.Marshal(cmd)
			sig, _ := opsig.Sign(c.ops["alice"].signer, body)
			return payload(t, &failoverpb.SignedCommand{Body: body, Signatures: []*failoverpb.OperatorSignature{{OperatorId: "alice", Signature: sig}}})
		}},
		{name: "bad signature", want: ErrBadSignature, build: func(t *testing.T, c *cluster) []byte {
			sc := c.sign(c.body("alice", request("dc2", "x")))
			sc.Signatures[0].Signature[5] ^= 1
			return payload(t, sc)
		}},
		{name: "bad P-256 signature", want: ErrBadSignature, build: func(t *testing.T, c *cluster) []byte {
			sc := c.sign(c.body("bob", request("dc2", "x")))
			sc.Signatures[0].Signature[len(sc.Signatures[0].Signature)-1] ^= 1
			return payload(t, sc)
		}},
		{name: "body changed after signing", want: ErrBadSignature, build: func(t *testing.T, c *cluster) []byte {
			cmd := c.body("alice", request("dc2", "x"))
			sc := c.sign(cmd)
			cmd.GetRequestHandover().To = "dc3"
			sc.Body, _ = opsig.Marshal(cmd)
			return payload(t, sc)
		}},
		{name: "signature labelled as another operator", want: ErrBadSignature, build: func(t *testing.T, c *cluster) []byte {
			sc := c.sign(c.body("alice", request("dc2", "x")))
			sig, _ := opsig.Sign(c.ops["bob"].signer, sc.Body)
			sc.Signatures[0].Signature = sig
			return payload(t, sc)
		}},
		{name: "submitter did not sign", want: ErrBadSignature, build: func(t *testing.T, c *cluster) []byte {
			body, _ := opsig.Marshal(c.body("alice", request("dc2", "x")))
			sig, _ := opsig.Sign(c.ops["bob"].signer, body)
			return payload(t, &failoverpb.SignedCommand{Body: body, Signatures: []*failoverpb.OperatorSignature{{OperatorId: "bob", Signature: sig}}})
		}},
		{name: "unknown operator", want: ErrUnknownOperator, build: func(t *testing.T, c *cluster) []byte {
			c.ops["mallory"] = mallory(t)
			return payload(t, c.sign(c.body("mallory", request("dc2", "x"))))
		}},
		{name: "unknown co-signer", want: ErrUnknownOperator, build: func(t *testing.T, c *cluster) []byte {
			c.ops["mallory"] = mallory(t)
			return payload(t, c.sign(c.body("alice", request("dc2", "x")), "mallory"))
		}},
		{name: "removed operator", want: ErrUnknownOperator, build: func(t *testing.T, c *cluster) []byte {
			c.mustDo("alice", removeOp("carol"), "bob")
			return payload(t, c.sign(c.body("carol", request("dc2", "x"))))
		}},
		{name: "wrong cluster id", want: ErrWrongCluster, build: func(t *testing.T, c *cluster) []byte {
			cmd := c.body("alice", request("dc2", "x"))
			cmd.ClusterId = "someone-else"
			return payload(t, c.sign(cmd))
		}},
		{name: "expired", want: ErrExpired, build: func(t *testing.T, c *cluster) []byte {
			cmd := c.body("alice", request("dc2", "x"))
			c.m.Advance(time.Hour + time.Second)
			return payload(t, c.sign(cmd))
		}},
		{name: "expiry too far ahead", want: ErrExpiryTooFar, build: func(t *testing.T, c *cluster) []byte {
			cmd := c.body("alice", request("dc2", "x"))
			cmd.ExpiresUnixNano = c.m.Now().Add(25 * time.Hour).UnixNano()
			return payload(t, c.sign(cmd))
		}},
		{name: "replayed nonce", want: ErrReplay, build: func(t *testing.T, c *cluster) []byte {
			p := payload(t, c.sign(c.body("alice", func(cmd *failoverpb.OperatorCommand) {
				cmd.Action = &failoverpb.OperatorCommand_SetExitLimit{SetExitLimit: &failoverpb.SetExitLimit{PerDay: 5}}
			}), "bob"))
			if _, err := c.m.ApplyPayload("dc1", commandpb.CommandType_OPERATOR_COMMAND, p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "role does not permit (auditor)", want: ErrNotPermitted, build: signed("erin", request("dc2", "x"))},
		{name: "role does not permit (operator on registry)", want: ErrNotPermitted,
			build: signed("carol", setThreshold(failoverpb.Action_ACTION_KEYS, 1), "alice")},

		// --- handovers -----------------------------------------------
		{name: "request to a non-member", want: ErrUnknownRegion, build: signed("alice", request("dc9", "x"))},
		{name: "request to the holder", want: ErrHandoverState, build: signed("alice", request("dc1", "x"))},
		{name: "request while one is open", want: ErrHandoverState, build: func(t *testing.T, c *cluster) []byte {
			c.mustDo("alice", request("dc2", "x"))
			return payload(t, c.sign(c.body("bob", request("dc3", "y"))))
		}},
		{name: "request with a long reason", want: ErrMalformed, build: signed("alice", request("dc2", string(make([]byte, MaxReason+1))))},
		{name: "request accepted", build: signed("alice", request("dc2", "x")), check: func(t *testing.T, c *cluster, r Result) {
			if r.Handover == nil || r.Handover.ID != c.m.Index() || r.Handover.From != "dc1" || r.Handover.To != "dc2" || r.Handover.RequestedBy != "alice" {
				t.Fatalf("handover %+v", r.Handover)
			}
		}},
		{name: "approve unknown handover", want: ErrNoHandover, build: signed("bob", approve(12345))},
		{name: "approve after fence", want: ErrHandoverState, build: func(t *testing.T, c *cluster) []byte {
			id := c.requestAndFence("dc2")
			return payload(t, c.sign(c.body("carol", approve(id))))
		}},
		{name: "cancel unknown handover", want: ErrNoHandover, build: signed("bob", cancelH(7))},

		// --- registry ------------------------------------------------
		{name: "add operator below threshold", want: ErrBelowThreshold, build: func(t *testing.T, c *cluster) []byte {
			return payload(t, c.sign(c.body("alice", addOp(mallory(t)))))
		}},
		{name: "add operator with a taken key", want: ErrRegistry, build: func(t *testing.T, c *cluster) []byte {
			o := mallory(t)
			o.der = c.ops["carol"].der
			return payload(t, c.sign(c.body("alice", addOp(o)), "bob"))
		}},
		{name: "add operator twice", want: ErrRegistry, build: func(t *testing.T, c *cluster) []byte {
			o := c.ops["carol"]
			o.der = mallory(t).der
			return payload(t, c.sign(c.body("alice", addOp(o)), "bob"))
		}},
		{name: "add operator with an RSA-less garbage key", want: ErrRegistry, build: func(t *testing.T, c *cluster) []byte {
			o := mallory(t)
			o.der = []byte("not a key")
			return payload(t, c.sign(c.body("alice", addOp(o)), "bob"))
		}},
		{name: "add operator with no role", want: ErrRegistry, build: func(t *testing.T, c *cluster) []byte {
			o := mallory(t)
			o.role = failoverpb.Role_ROLE_UNSPECIFIED
			return payload(t, c.sign(c.body("alice", addOp(o)), "bob"))
		}},
		{name: "add operator accepted", build: func(t *testing.T, c *cluster) []byte {
			return payload(t, c.sign(c.body("alice", addOp(mallory(t))), "bob"))
		}, check: func(t *testing.T, c *cluster, r Result) {
			c.ops["mallory"] = edOp(t, "mallory", failoverpb.Role_ROLE_ADMIN)
			c.mustDo("mallory", request("dc2", "new operator can sign"))
		}},
		{name: "remove an unknown operator", want: ErrUnknownOperator, build: signed("alice", removeOp("zed"), "bob")},
		{name: "remove makes a threshold unreachable", want: ErrRegistry, build: signed("alice", removeOp("bob"), "bob")},
		{name: "remove accepted", build: signed("alice", removeOp("erin"), "bob"), check: func(t *testing.T, c *cluster, r Result) {
			if _, ok := c.fs().Operator("erin"); ok {
				t.Fatal("erin still registered")
			}
		}},
		{name: "threshold above eligible", want: ErrRegistry, build: signed("alice", setThreshold(failoverpb.Action_ACTION_HANDOVER, 4), "bob")},
		{name: "threshold zero", want: ErrRegistry, build: signed("alice", setThreshold(failoverpb.Action_ACTION_HANDOVER, 0), "bob")},
		{name: "threshold unknown action", want: ErrRegistry, build: signed("alice", setThreshold(99, 1), "bob")},
		{name: "threshold accepted", build: signed("alice", setThreshold(failoverpb.Action_ACTION_HANDOVER, 3), "bob"),
			check: func(t *testing.T, c *cluster, r Result) {
				if got := c.fs().Threshold(failoverpb.Action_ACTION_HANDOVER); got != 3 {
					t.Fatalf("threshold %d", got)
				}
			}},
		{name: "DR policy silence too short", want: ErrMalformed, build: signed("alice", drPolicy("dc2", 5, true), "bob")},
		{name: "DR policy for a non-member", want: ErrUnknownRegion, build: signed("alice", drPolicy("dc7", 60, true), "bob")},
		{name: "DR policy disable without one", want: ErrMalformed, build: signed("alice", drPolicy("dc2", 0, false), "bob")},
		{name: "DR policy below threshold", want: ErrBelowThreshold, build: signed("alice", drPolicy("dc2", 60, true))},
		{name: "DR policy accepted", build: signed("alice", drPolicy("dc2", 60, true), "bob"), check: func(t *testing.T, c *cluster, r Result) {
			p := c.fs().DRPolicies()
			if len(p) != 1 || p[0].Region != "dc2" || !p[0].Enabled || p[0].SilenceSeconds != 60 || len(p[0].Approvals) != 2 {
				t.Fatalf("policies %+v", p)
			}
		}},
		{name: "finality quorum zero", want: ErrMalformed, build: signed("alice", func(cmd *failoverpb.OperatorCommand) {
			cmd.Action = &failoverpb.OperatorCommand_SetFinalityQuorum{SetFinalityQuorum: &failoverpb.SetFinalityQuorum{}}
		}, "bob")},
		{name: "finality quorum accepted", build: signed("alice", func(cmd *failoverpb.OperatorCommand) {
			cmd.Action = &failoverpb.OperatorCommand_SetFinalityQuorum{SetFinalityQuorum: &failoverpb.SetFinalityQuorum{Endpoints: 3}}
		}, "bob"), check: func(t *testing.T, c *cluster, r Result) {
			if c.fs().FinalityQuorum() != 3 {
				t.Fatal("quorum not set")
			}
		}},

		// --- policy, exits, keys (delegated to leader) ---------------
		{name: "policy below threshold", want: ErrBelowThreshold, build: signed("alice", policy("client-a", "*"))},
		{name: "policy refused by leader", want: ErrLeaderRefused, build: signed("alice", policy("client-a", "0xZZ"), "bob")},
		{name: "policy accepted", build: signed("alice", policy("client-a", "*"), "bob"), check: func(t *testing.T, c *cluster, r Result) {
			var ok bool
			c.m.View(func(ls *leader.State, _ *State) { _, ok = ls.Policy("client-a") })
			if !ok {
				t.Fatal("policy missing")
			}
		}},
		{name: "exit limit too large", want: ErrMalformed, build: signed("alice", func(cmd *failoverpb.OperatorCommand) {
			cmd.Action = &failoverpb.OperatorCommand_SetExitLimit{SetExitLimit: &failoverpb.SetExitLimit{PerDay: MaxExitLimit + 1}}
		}, "bob")},
		{name: "exit for an unknown key", want: ErrLeaderRefused, build: signed("carol", exitFor(blsKey(99)))},
		{name: "exit accepted", build: signed("carol", exitFor(blsKey(0))), check: func(t *testing.T, c *cluster, r Result) {
			var a leader.ExitApproval
			var ok bool
			c.m.View(func(ls *leader.State, _ *State) { a, ok = ls.ExitApproval(blsKey(0)) })
			if !ok || a.Operator != "carol" {
				t.Fatalf("exit approval %+v", a)
			}
		}},
		{name: "exit over the daily limit", want: ErrExitLimit, build: func(t *testing.T, c *cluster) []byte {
			c.mustDo("carol", exitFor(blsKey(0)))
			c.mustDo("carol", exitFor(blsKey(1)))
			return payload(t, c.sign(c.body("carol", exitFor(blsKey(10)))))
		}},
		{name: "exit limit resets the next UTC day", build: func(t *testing.T, c *cluster) []byte {
			c.mustDo("carol", exitFor(blsKey(0)))
			c.mustDo("carol", exitFor(blsKey(1)))
			c.m.Advance(24 * time.Hour)
			return payload(t, c.sign(c.body("carol", exitFor(blsKey(10)))))
		}},
		{name: "add keys accepted", build: signed("carol", func(cmd *failoverpb.OperatorCommand) {
			cmd.Action = &failoverpb.OperatorCommand_AddKeys{AddKeys: &commandpb.AddKeys{Keys: []*commandpb.AddKey{
				{Pubkey: blsKey(50), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: leader.RootHex(testGVR)}}}}
		}), check: func(t *testing.T, c *cluster, r Result) {
			var ok bool
			c.m.View(func(ls *leader.State, _ *State) { _, ok = ls.Key(blsKey(50)) })
			if !ok {
				t.Fatal("key missing")
			}
		}},
		{name: "add keys empty", want: ErrLeaderRefused, build: signed("carol", func(cmd *failoverpb.OperatorCommand) {
			cmd.Action = &failoverpb.OperatorCommand_AddKeys{AddKeys: &commandpb.AddKeys{}}
		})},
		{name: "disable unknown key", want: ErrLeaderRefused, build: signed("carol", func(cmd *failoverpb.OperatorCommand) {
			cmd.Action = &failoverpb.OperatorCommand_DisableKey{DisableKey: &commandpb.DisableKey{Pubkey: blsKey(77)}}
		})},
		{name: "disable key accepted", build: signed("carol", func(cmd *failoverpb.OperatorCommand) {
			cmd.Action = &failoverpb.OperatorCommand_DisableKey{DisableKey: &commandpb.DisableKey{Pubkey: blsKey(0), Reason: "compromised"}}
		}), check: func(t *testing.T, c *cluster, r Result) {
			var k leader.Key
			c.m.View(func(ls *leader.State, _ *State) { k, _ = ls.Key(blsKey(0)) })
			if !k.Disabled {
				t.Fatal("key not disabled")
			}
		}},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			p := tc.build(t, c)
			before := withoutAudit(t, c.m)
			nAudit := len(c.audit())
			v, err := c.m.ApplyPayload("dc1", commandpb.CommandType_OPERATOR_COMMAND, p)
			if err != nil {
				t.Fatalf("handler error %v", err)
			}
			r := v.(Result)
			a := c.audit()
			if len(a) <= nAudit {
				t.Fatal("no audit record")
			}
			rec := a[nAudit]
			if tc.want != nil {
				if r.Accepted || !errors.Is(r.Err, tc.want) {
					t.Fatalf("accepted=%v err=%v, want %v", r.Accepted, r.Err, tc.want)
				}
				if rec.Outcome != OutcomeRejected || rec.Reason == "" || len(a) != nAudit+1 {
					t.Fatalf("audit %+v", rec)
				}
				if string(withoutAudit(t, c.m)) != string(before) {
					t.Fatal("a refused command changed more than the audit chain")
				}
				if ResponseError(fsmResponse(v, err)) == nil {
					t.Fatal("ResponseError hides the refusal")
				}
				return
			}
			if !r.Accepted {
				t.Fatalf("refused: %v", r.Err)
			}
			if rec.Outcome != OutcomeAccepted {
				t.Fatalf("audit %+v", rec)
			}
			if tc.check != nil {
				tc.check(t, c, r)
			}
		})
	}
}

func TestOperatorCommandBeforeBootstrap(t *testing.T) {
	c := newCluster(t, withoutBootstrap())
	sc := c.sign(c.body("alice", request("dc2", "x")))
	r := c.submit("dc1", sc)
	if r.Accepted || !errors.Is(r.Err, ErrNotBootstrapped) {
		t.Fatalf("accepted=%v err=%v", r.Accepted, r.Err)
	}
	if a := c.audit(); a[len(a)-1].Outcome != OutcomeRejected {
		t.Fatal("not audited")
	}
}

func TestBootstrap(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *cluster, b *failoverpb.BootstrapOperators)
		twice  bool
		want   error
	}{
		{name: "accepted", mutate: func(*cluster, *failoverpb.BootstrapOperators) {}},
		{name: "second bootstrap", mutate: func(*cluster, *failoverpb.BootstrapOperators) {}, twice: true, want: ErrAlreadyBootstrapped},
		{name: "no cluster id", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) { b.ClusterId = "" }, want: ErrMalformed},
		{name: "cluster id with a space", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) { b.ClusterId = "a b" }, want: ErrMalformed},
		{name: "no operators", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) { b.Operators = nil }, want: ErrRegistry},
		{name: "duplicate operator id", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) {
			b.Operators[1].Id = b.Operators[0].Id
		}, want: ErrRegistry},
		{name: "duplicate key", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) {
			b.Operators[2].PublicKey = b.Operators[0].PublicKey
		}, want: ErrRegistry},
		{name: "bad key", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) { b.Operators[0].PublicKey = []byte{1, 2, 3} }, want: ErrRegistry},
		{name: "missing threshold", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) { b.Thresholds = b.Thresholds[1:] }, want: ErrRegistry},
		{name: "duplicate threshold", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) {
			b.Thresholds = append(b.Thresholds, b.Thresholds[0])
		}, want: ErrRegistry},
		{name: "unreachable threshold", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) {
			b.Thresholds[1].Required = 3 // registry: only alice and bob are admins
		}, want: ErrRegistry},
		{name: "zero threshold", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) { b.Thresholds[0].Required = 0 }, want: ErrRegistry},
		{name: "zero finality quorum", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) { b.FinalityQuorum = 0 }, want: ErrMalformed},
		{name: "exit limit too high", mutate: func(_ *cluster, b *failoverpb.BootstrapOperators) { b.ExitLimitPerDay = MaxExitLimit + 1 }, want: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, withoutBootstrap())
			if tc.twice {
				c.bootstrap()
			}
			b := c.bootstrapMsg()
			tc.mutate(c, b)
			before := withoutAudit(t, c.m)
			v, err := c.m.Apply("dc1", commandpb.CommandType_BOOTSTRAP_OPERATORS, b)
			if err != nil {
				t.Fatal(err)
			}
			r := v.(Result)
			if tc.want == nil {
				if !r.Accepted || !c.fs().Bootstrapped() || len(c.fs().Operators()) != 4 {
					t.Fatalf("accepted=%v err=%v", r.Accepted, r.Err)
				}
				return
			}
			if r.Accepted || !errors.Is(r.Err, tc.want) {
				t.Fatalf("accepted=%v err=%v, want %v", r.Accepted, r.Err, tc.want)
			}
			if string(withoutAudit(t, c.m)) != string(before) {
				t.Fatal("refused bootstrap changed the state")
			}
		})
	}
}

// TestUnsignedKeyCommandsStayOpen: after bootstrap a region may still
// propose unsigned key registry changes (the Keymanager API path); they are
// applied and audited with the proposing region.
func TestUnsignedKeyCommandsStayOpen(t *testing.T) {
	cmds := []struct {
		t   commandpb.CommandType
		msg proto.Message
	}{
		{commandpb.CommandType_ADD_KEY, &commandpb.AddKeys{Keys: []*commandpb.AddKey{{Pubkey: blsKey(60), Scheme: commandpb.Scheme_SCHEME_BLS12381, Network: leader.RootHex(testGVR)}}}},
		{commandpb.CommandType_DISABLE_KEY, &commandpb.DisableKey{Pubkey: blsKey(0)}},
	}
	for _, tc := range cmds {
		t.Run(tc.t.String(), func(t *testing.T) {
			c := newCluster(t)
			n := len(c.audit())
			if _, err := c.m.Apply("dc1", tc.t, tc.msg); err != nil {
				t.Fatalf("after bootstrap: %v", err)
			}
			if a := c.audit(); len(a) != n+1 || a[n].Outcome != OutcomeAccepted || a[n].Actor != "dc1" {
				t.Fatalf("unsigned key command not audited with its region: %+v", c.audit()[n:])
			}
		})
	}
}

// TestUnsignedCommandsGated: with NewRegistry, the unsigned lease, policy
// and exit commands work before bootstrap (and are audited) and are
// refused after it, changing nothing.
func TestUnsignedCommandsGated(t *testing.T) {
	cmds := []struct {
		t   commandpb.CommandType
		msg proto.Message
	}{
		{commandpb.CommandType_FENCE_LEASE, &commandpb.FenceLease{Epoch: 1}},
		{commandpb.CommandType_SET_POLICY, &commandpb.SetPolicy{Identity: "c", KeyPatterns: []string{"*"}, MessageTypes: []string{"*"}}},
		{commandpb.CommandType_APPROVE_EXIT, &commandpb.ApproveExit{Pubkey: blsKey(0), Operator: "x"}},
	}
	for _, tc := range cmds {
		t.Run(tc.t.String(), func(t *testing.T) {
			pre := newCluster(t, withoutBootstrap())
			n := len(pre.audit())
			if _, err := pre.m.Apply("dc1", tc.t, tc.msg); err != nil {
				t.Fatalf("before bootstrap: %v", err)
			}
			if a := pre.audit(); len(a) != n+1 || a[n].Outcome != OutcomeAccepted {
				t.Fatal("unsigned command before bootstrap not audited")
			}

			post := newCluster(t)
			before, _ := post.m.StateBytes()
			if _, err := post.m.Apply("dc1", tc.t, tc.msg); !errors.Is(err, ErrUnsigned) {
				t.Fatalf("after bootstrap: %v", err)
			}
			after, _ := post.m.StateBytes()
			if string(after) != string(before) {
				t.Fatal("refused unsigned command changed the state")
			}
		})
	}
	t.Run("ACTIVATE_LEASE", func(t *testing.T) {
		c := newCluster(t)
		c.requestAndFence("dc2")
		if _, err := c.m.Apply("dc2", commandpb.CommandType_ACTIVATE_LEASE, &commandpb.ActivateLease{Holder: "dc2", Epoch: 2}); !errors.Is(err, ErrUnsigned) {
			t.Fatalf("unsigned activation after bootstrap: %v", err)
		}
		if l := c.lease(); l.State != leader.LeaseFenced {
			t.Fatalf("lease %+v", l)
		}
	})
}

// TestNonceRetention: nonces are kept until their expiry and pruned with
// proposer time that never runs backwards.
func TestNonceRetention(t *testing.T) {
	c := newCluster(t)
	limit := func(n uint32) func(*failoverpb.OperatorCommand) {
		return func(cmd *failoverpb.OperatorCommand) {
			cmd.Action = &failoverpb.OperatorCommand_SetExitLimit{SetExitLimit: &failoverpb.SetExitLimit{PerDay: n}}
		}
	}
	sc := c.sign(c.body("alice", limit(3)), "bob") // expires in 1h
	c.submit("dc1", sc)
	if c.fs().NonceCount() != 1 {
		t.Fatalf("%d nonces", c.fs().NonceCount())
	}
	c.m.Advance(2 * time.Hour)
	c.mustDo("alice", limit(4), "bob") // prunes the first nonce
	if c.fs().NonceCount() != 1 {
		t.Fatalf("%d nonces after expiry", c.fs().NonceCount())
	}
	// The pruned command replayed by a proposer whose clock lags is refused
	// as expired: the state's clock does not run backwards.
	v, err := c.m.ApplyAt("dc3", c.m.Now().Add(-3*time.Hour).UnixNano(), commandpb.CommandType_OPERATOR_COMMAND, sc)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.(Result); r.Accepted || !errors.Is(r.Err, ErrExpired) {
		t.Fatalf("lagging replay: accepted=%v err=%v", r.Accepted, r.Err)
	}
	if c.fs().ExitLimit() != 4 {
		t.Fatalf("exit limit %d", c.fs().ExitLimit())
	}
}

// TestFailoverCommandsWithoutExtension: a registry with failover handlers
// over a state without the extension fails closed.
func TestFailoverCommandsWithoutExtension(t *testing.T) {
	r := leader.NewRegistry()
	Register(r)
	m, err := NewMachine(MachineConfig{Registry: r})
	if err != nil {
		t.Fatal(err)
	}
	m.FSM, err = newPlainFSM(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply("dc1", commandpb.CommandType_LEASE_HEARTBEAT, &failoverpb.LeaseHeartbeat{Holder: "dc1", Epoch: 1}); !errors.Is(err, ErrNotEnabled) {
		t.Fatalf("err %v", err)
	}
}

func fsmResponse(v any, err error) fsm.Response { return fsm.Response{Value: v, Err: err} }

func newPlainFSM(r *fsm.Registry[*leader.State]) (*fsm.FSM[*leader.State], error) {
	f, err := fsm.New(fsm.Config[*leader.State]{New: leader.NewState, Registry: r, Fatal: func(error) {}})
	if err != nil {
		return nil, err
	}
	f.Apply(&raft.Log{Index: 1, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{
		{ID: "dc1", Address: "dc1", Suffrage: raft.Voter}}})})
	return f, nil
}

// TestFastProposerClock: a command stamped by a proposer whose clock is
// past the command's expiry is refused and does not move the state's
// clock, so later commands from honest clocks still pass.
func TestFastProposerClock(t *testing.T) {
	c := newCluster(t)
	clock := c.fs().Clock()
	sc := c.sign(c.body("alice", request("dc2", "x")))
	v, err := c.m.ApplyAt("dc3", c.m.Now().Add(48*time.Hour).UnixNano(), commandpb.CommandType_OPERATOR_COMMAND, sc)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.(Result); r.Accepted || !errors.Is(r.Err, ErrExpired) {
		t.Fatalf("accepted=%v err=%v", r.Accepted, r.Err)
	}
	if c.fs().Clock() != clock {
		t.Fatal("a refused command moved the clock")
	}
	c.submit("dc1", sc) // the same command through an honest clock
	if _, ok := c.open(); !ok {
		t.Fatal("honest submission refused after a fast-clock attempt")
	}
}
