package token

import (
	"context"
	"fmt"
	"time"

	"github.com/regent-signer/regent/failover"
	"github.com/regent-signer/regent/failover/failoverpb"
	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/web3signer/httpauth"
)

// DefaultSkew is the clock difference Verifier tolerates between the
// issuer and this region.
const DefaultSkew = 30 * time.Second

// Replica gives read access to a region's applied state
// (*fsm.FSM[*leader.State] implements it).
type Replica interface {
	View(fn func(ls *leader.State, lastApplied uint64))
}

// Verifier implements httpauth.TokenVerifier against the replicated
// operator registry. It is safe for concurrent use.
type Verifier struct {
	// State is the region's replica. Required.
	State Replica
	// Now is this region's clock; nil means time.Now.
	Now func() time.Time
	// Skew is the tolerated clock difference; zero means DefaultSkew.
	Skew time.Duration
}

var _ httpauth.TokenVerifier = (*Verifier)(nil)

// MayIssue reports whether an operator of role r may issue client tokens:
// admins and operators may, auditors may not.
func MayIssue(r failoverpb.Role) bool {
	return r == failoverpb.Role_ROLE_ADMIN || r == failoverpb.Role_ROLE_OPERATOR
}

// VerifyToken implements httpauth.TokenVerifier: see the package
// documentation for the checks. The identity is {client, the token's
// identity}.
func (v *Verifier) VerifyToken(_ context.Context, tok string) (httpauth.Identity, error) {
	t, err := Parse(tok)
	if err != nil {
		return httpauth.Identity{}, err
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.Skew
	if skew == 0 {
		skew = DefaultSkew
	}
	p := t.Payload
	var op failover.Operator
	var known bool
	if v.State == nil {
		return httpauth.Identity{}, fmt.Errorf("%w: verifier has no replica", ErrNotBootstrapped)
	}
	v.State.View(func(ls *leader.State, _ uint64) {
		fs := failover.From(ls)
		switch {
		case fs == nil || !fs.Bootstrapped():
			err = fmt.Errorf("%w: no operator registry on this region", ErrNotBootstrapped)
		case fs.ClusterID() != p.ClusterID:
			err = fmt.Errorf("%w: token names cluster %q, this is %q", ErrWrongCluster, p.ClusterID, fs.ClusterID())
		default:
			op, known = fs.Operator(p.OperatorID)
		}
	})
	if err != nil {
		return httpauth.Identity{}, err
	}
	t0 := now()
	if exp := time.Unix(p.ExpiresAt, 0); !t0.Before(exp.Add(skew)) {
		return httpauth.Identity{}, fmt.Errorf("%w: at %s (now %s)", ErrExpired, exp.UTC().Format(time.RFC3339), t0.UTC().Format(time.RFC3339))
	}
	if iss := time.Unix(p.IssuedAt, 0); iss.After(t0.Add(skew)) {
		return httpauth.Identity{}, fmt.Errorf("%w: issued at %s (now %s)", ErrNotYetValid, iss.UTC().Format(time.RFC3339), t0.UTC().Format(time.RFC3339))
	}
	if !known {
		return httpauth.Identity{}, fmt.Errorf("%w: %q", ErrUnknownOperator, p.OperatorID)
	}
	if !MayIssue(op.Role) {
		return httpauth.Identity{}, fmt.Errorf("%w: %q is %v", ErrNotPermitted, op.ID, op.Role)
	}
	pub, err := opsig.ParsePublicKey(op.PublicKey)
	if err != nil {
		return httpauth.Identity{}, fmt.Errorf("%w: registry key of %q: %v", ErrBadSignature, op.ID, err)
	}
	if err := verify(pub, t.Raw, t.Signature); err != nil {
		return httpauth.Identity{}, fmt.Errorf("%w (operator %q)", err, op.ID)
	}
	return httpauth.Identity{Role: pki.RoleClient, Name: p.Identity, Via: httpauth.ViaToken}, nil
}
