package keysync

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/leader"
	"github.com/regent-signer/regent/raft/commandpb"
	"github.com/regent-signer/regent/raft/fsm"
	"github.com/regent-signer/regent/signer/bls"
	"github.com/regent-signer/regent/signer/hsm"
)

// Sentinel errors. Match with errors.Is; the errors of the packages
// underneath (keystore, hsm, bls, leader) stay wrapped as well.
var (
	// ErrConfig: a Config or GuardConfig is incomplete or inconsistent.
	ErrConfig = errors.New("keysync: invalid configuration")
	// ErrInvalidInput: an argument was refused before anything was read
	// from an HSM or proposed. Nothing changed.
	ErrInvalidInput = errors.New("keysync: invalid input")
	// ErrKeystore: the keystore or key file cannot be opened (malformed,
	// wrong password, unsupported). The underlying keystore or hsm error is
	// wrapped too. Nothing was proposed.
	ErrKeystore = errors.New("keysync: cannot open key file")
	// ErrDuplicate: the key is already in the replicated registry (enabled
	// or disabled). Nothing was proposed, or the proposal was a no-op.
	ErrDuplicate = errors.New("keysync: key already registered")
	// ErrUnknownKey: the registry has no such key.
	ErrUnknownKey = errors.New("keysync: unknown key")
	// ErrNotRegistered: this region has not (yet) published its wrapping
	// key in the replicated state, so a key imported now could not reach
	// it. Run registers the region; retry once it has.
	ErrNotRegistered = errors.New("keysync: this region's wrapping key is not registered")
	// ErrPropose: the replicated write failed. The leader error is wrapped
	// (leader.ErrMaybeCommitted means it may still have committed).
	ErrPropose = errors.New("keysync: replicated write failed")
	// ErrSyncPending: the key is registered but this region has not
	// installed it yet (the context ended first, or installing failed and
	// is being retried).
	ErrSyncPending = errors.New("keysync: key registered but not installed in this region yet")
	// ErrWrappedMismatch: a wrapped secret opened to a key whose public key
	// is not the one it was registered under. It is not installed.
	ErrWrappedMismatch = errors.New("keysync: wrapped secret does not belong to its public key")
	// ErrNotHolder: this region does not hold the active signing lease, so
	// its keys are sealed and nothing is signed. It wraps
	// leader.ErrNotHolder.
	ErrNotHolder = fmt.Errorf("keysync: keys are sealed in this region: %w", leader.ErrNotHolder)
	// ErrKeysNotLoaded: this region holds the lease but its BLS keys are not
	// unsealed (barrier or unseal pending or failing; see the logs).
	ErrKeysNotLoaded = errors.New("keysync: lease held but keys not unsealed yet")
	// ErrKeyNotHere: the unsealed key set does not contain this key.
	ErrKeyNotHere = errors.New("keysync: key not unsealed in this region")
	// ErrHSM: an HSM operation failed; the hsm error is wrapped.
	ErrHSM = errors.New("keysync: HSM operation failed")
)

// Proposer writes one command to the replicated log and waits until it is
// applied, forwarding to the Raft leader when this node is not the leader.
// The entry's envelope must name this region as its proposer (the FSM
// refuses a RegisterRegion from anyone else). A nil error means committed
// and applied without error; fsm.Response.Value is the handler's result
// when the implementation has it (nil when forwarded). Called from the
// Manager's goroutines and from the Import/Delete callers.
type Proposer interface {
	Propose(ctx context.Context, t commandpb.CommandType, msg proto.Message) (fsm.Response, error)
}

// StateView reads this node's applied replicated state (fsm.FSM.View). fn
// must not keep references into the state. Called often (every poll
// interval) from the Manager's and Guard's goroutines; it must be cheap.
type StateView interface {
	View(fn func(s *leader.State, lastApplied uint64))
}

// Barrier waits until every entry committed before the call is applied on
// this node (leader.Service.Barrier). The Guard calls it once per lease
// epoch before unsealing; an error leaves the keys sealed and is retried.
type Barrier interface {
	Barrier(timeout time.Duration) error
}

// HSM is what keysync uses of a region's token (*hsm.HSM implements it).
// All methods are called concurrently from several goroutines.
type HSM interface {
	EnsureWrapKey(ctx context.Context, label string) ([]byte, error)
	Unwrap(ctx context.Context, label string, ciphertext []byte) ([]byte, error)
	ImportKey(ctx context.Context, label string, alg hsm.Algorithm, secret []byte) (hsm.PublicKey, error)
	DeleteKey(ctx context.Context, label string) error
	PublicKey(ctx context.Context, label string) (hsm.PublicKey, error)
	Keys(ctx context.Context) ([]hsm.KeyInfo, error)
	Sign(ctx context.Context, label string, msg []byte) ([]byte, error)
	Token() hsm.TokenIdentity
}

// EdSigner is what the Guard uses to sign with Ed25519 keys (*hsm.HSM).
type EdSigner interface {
	Sign(ctx context.Context, label string, msg []byte) ([]byte, error)
}

// SealedStore is the region's BLS key store (*bls.Store implements it).
type SealedStore interface {
	Put(ctx context.Context, secret []byte) (bls.PublicKey, error)
	Delete(pk bls.PublicKey) error
	List() ([]bls.PublicKey, error)
	UnsealAll(ctx context.Context) (*bls.KeySet, error)
}

// EdLabel is the HSM label of an imported Ed25519 key: its 32-byte public key
// in lowercase hex (64 characters, the longest label the hsm package takes).
func EdLabel(pub []byte) string { return hex.EncodeToString(pub) }

// isEdLabel reports whether label has the form EdLabel produces.
func isEdLabel(label string) bool {
	if len(label) != 64 {
		return false
	}
	b, err := hex.DecodeString(label)
	return err == nil && hex.EncodeToString(b) == label
}
