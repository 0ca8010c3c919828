package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
)

// numOperators is the size of the bootstrapped operator registry; the
// handover threshold is handoverThreshold of them.
const (
	numOperators      = 3
	handoverThreshold = 2
	clusterID         = "regent-sim"
	commandTTL        = 10 * time.Minute
)

// operators holds the operators' keys (Ed25519, derived from the seed),
// an unregistered key for forgeries, and the accepted commands kept for
// replay attempts.
type operators struct {
	ids     []string
	keys    []ed25519.PrivateKey
	mallory ed25519.PrivateKey
	nonces  io.Reader
	now     func() time.Time
	// accepted are signed commands the FSM accepted, newest last.
	accepted []*failoverpb.SignedCommand
}

func newOperators(seed int64, now func() time.Time) *operators {
	o := &operators{now: now}
	for i := range numOperators {
		s := sha256.Sum256(fmt.Appendf(nil, "regent sim operator %d/%d", seed, i))
		o.ids = append(o.ids, fmt.Sprintf("op%d", i+1))
		o.keys = append(o.keys, ed25519.NewKeyFromSeed(s[:]))
	}
	s := sha256.Sum256(fmt.Appendf(nil, "regent sim mallory %d", seed))
	o.mallory = ed25519.NewKeyFromSeed(s[:])
	var cs [32]byte
	copy(cs[:], s[:])
	cs[0] ^= 0xff
	o.nonces = rand.NewChaCha8(cs)
	return o
}

// bootstrap is the BootstrapOperators command: every operator an admin,
// handover threshold 2, finality quorum 2.
func (o *operators) bootstrap() (*failoverpb.BootstrapOperators, error) {
	b := &failoverpb.BootstrapOperators{ClusterId: clusterID, ExitLimitPerDay: 1, FinalityQuorum: 2}
	for i, k := range o.keys {
		der, err := opsig.MarshalPublicKey(k.Public())
		if err != nil {
			return nil, err
		}
		b.Operators = append(b.Operators, &failoverpb.Operator{Id: o.ids[i], PublicKey: der, Role: failoverpb.Role_ROLE_ADMIN})
	}
	b.Thresholds = []*failoverpb.Threshold{
		{Action: failoverpb.Action_ACTION_HANDOVER, Required: handoverThreshold},
		{Action: failoverpb.Action_ACTION_REGISTRY, Required: 2},
		{Action: failoverpb.Action_ACTION_POLICY, Required: 2},
		{Action: failoverpb.Action_ACTION_EXIT, Required: 1},
		{Action: failoverpb.Action_ACTION_KEYS, Required: 1},
	}
	return b, nil
}

// body builds an operator command of operator op, valid from now for ttl.
func (o *operators) body(cluster, submitter string, now time.Time, ttl time.Duration, set func(*failoverpb.OperatorCommand)) (*failoverpb.OperatorCommand, error) {
	cmd, err := opsig.Builder{ClusterID: cluster, OperatorID: submitter, Now: func() time.Time { return now }, TTL: ttl, Rand: o.nonces}.New()
	if err != nil {
		return nil, err
	}
	set(cmd)
	return cmd, nil
}

// signed builds and signs a command of operator op, co-signed by the
// next cosign operators.
func (o *operators) signed(op, cosign int, set func(*failoverpb.OperatorCommand)) (*failoverpb.SignedCommand, error) {
	cmd, err := o.body(clusterID, o.ids[op], o.now(), commandTTL, set)
	if err != nil {
		return nil, err
	}
	sc, err := opsig.SignCommand(cmd, o.keys[op])
	if err != nil {
		return nil, err
	}
	for i := 1; i <= cosign; i++ {
		c := (op + i) % numOperators
		if err := opsig.Cosign(sc, o.ids[c], o.keys[c]); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

func requestHandover(to, reason string) func(*failoverpb.OperatorCommand) {
	return func(c *failoverpb.OperatorCommand) {
		c.Action = &failoverpb.OperatorCommand_RequestHandover{RequestHandover: &failoverpb.RequestHandover{To: to, Reason: reason}}
	}
}

func approveHandover(id uint64) func(*failoverpb.OperatorCommand) {
	return func(c *failoverpb.OperatorCommand) {
		c.Action = &failoverpb.OperatorCommand_ApproveHandover{ApproveHandover: &failoverpb.ApproveHandover{HandoverId: id}}
	}
}

func cancelHandover(id uint64, reason string) func(*failoverpb.OperatorCommand) {
	return func(c *failoverpb.OperatorCommand) {
		c.Action = &failoverpb.OperatorCommand_CancelHandover{CancelHandover: &failoverpb.CancelHandover{HandoverId: id, Reason: reason}}
	}
}

func setDRPolicy(region string, silence time.Duration) func(*failoverpb.OperatorCommand) {
	return func(c *failoverpb.OperatorCommand) {
		c.Action = &failoverpb.OperatorCommand_SetDrPolicy{SetDrPolicy: &failoverpb.SetDRPolicy{
			Region: region, SilenceSeconds: uint32(silence / time.Second), Enabled: true}}
	}
}

// bad builds an operator command the state machine must refuse: a
// handover request carrying the threshold of signatures (it would fence
// the lease if accepted), broken in the way variant says. It returns
// what was broken.
func (o *operators) bad(variant, op int, to string) (*failoverpb.SignedCommand, string, error) {
	act := requestHandover(to, "forged")
	co := (op + 1) % numOperators
	switch variant {
	case 0: // a signature that does not verify
		sc, err := o.signed(op, 1, act)
		if err != nil {
			return nil, "", err
		}
		sc.Signatures[1].Signature[7] ^= 0x40
		return sc, "bad co-signature", nil
	case 1: // signed for another cluster
		cmd, err := o.body("other-cluster", o.ids[op], o.now(), commandTTL, act)
		if err != nil {
			return nil, "", err
		}
		sc, err := o.sign(cmd, op, co)
		return sc, "wrong cluster", err
	case 2: // expired an hour ago
		cmd, err := o.body(clusterID, o.ids[op], o.now().Add(-2*time.Hour), time.Hour, act)
		if err != nil {
			return nil, "", err
		}
		sc, err := o.sign(cmd, op, co)
		return sc, "expired", err
	case 3: // a replay of an accepted command
		if n := len(o.accepted); n > 0 {
			return o.accepted[n-1], "replay", nil
		}
		return o.bad(0, op, to)
	case 4: // signed by a key the registry does not hold
		cmd, err := o.body(clusterID, "mallory", o.now(), commandTTL, act)
		if err != nil {
			return nil, "", err
		}
		body, err := opsig.Marshal(cmd)
		if err != nil {
			return nil, "", err
		}
		s1, err := opsig.Sign(o.mallory, body)
		if err != nil {
			return nil, "", err
		}
		s2, err := opsig.Sign(o.keys[op], body)
		if err != nil {
			return nil, "", err
		}
		return &failoverpb.SignedCommand{Body: body, Signatures: []*failoverpb.OperatorSignature{
			{OperatorId: "mallory", Signature: s1}, {OperatorId: o.ids[op], Signature: s2}}}, "unknown operator", nil
	case 5: // expiry beyond the allowed window
		cmd, err := o.body(clusterID, o.ids[op], o.now(), commandTTL, act)
		if err != nil {
			return nil, "", err
		}
		cmd.ExpiresUnixNano = o.now().Add(opsig.MaxExpiryWindow + time.Hour).UnixNano()
		sc, err := o.sign(cmd, op, co)
		return sc, "expiry too far", err
	default: // the submitter did not sign; two others did
		cmd, err := o.body(clusterID, o.ids[op], o.now(), commandTTL, act)
		if err != nil {
			return nil, "", err
		}
		body, err := opsig.Marshal(cmd)
		if err != nil {
			return nil, "", err
		}
		sc := &failoverpb.SignedCommand{Body: body}
		for _, i := range []int{co, (op + 2) % numOperators} {
			s, err := opsig.Sign(o.keys[i], body)
			if err != nil {
				return nil, "", err
			}
			sc.Signatures = append(sc.Signatures, &failoverpb.OperatorSignature{OperatorId: o.ids[i], Signature: s})
		}
		return sc, "submitter did not sign", nil
	}
}

// sign signs an already built body as its submitter op and co-signer co.
func (o *operators) sign(cmd *failoverpb.OperatorCommand, op, co int) (*failoverpb.SignedCommand, error) {
	sc, err := opsig.SignCommand(cmd, o.keys[op])
	if err != nil {
		return nil, err
	}
	if err := opsig.Cosign(sc, o.ids[co], o.keys[co]); err != nil {
		return nil, err
	}
	return sc, nil
}
