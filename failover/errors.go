package failover

import "errors"

// Sentinel errors. Match with errors.Is. A rejected command's Result.Err
// wraps one of these.
var (
	// ErrNotEnabled: the leader state has no failover extension.
	ErrNotEnabled = errors.New("failover: extension not present in the state")
	// ErrNotBootstrapped: the command needs the operator registry, which
	// has not been bootstrapped yet.
	ErrNotBootstrapped = errors.New("failover: operators not bootstrapped")
	// ErrAlreadyBootstrapped: a second BootstrapOperators.
	ErrAlreadyBootstrapped = errors.New("failover: operators already bootstrapped")
	// ErrMalformed: a payload does not decode or a field is out of range.
	ErrMalformed = errors.New("failover: malformed command")
	// ErrWrongCluster: the signed body names another cluster.
	ErrWrongCluster = errors.New("failover: command for another cluster")
	// ErrExpired: the command's expiry is not after the proposer time.
	ErrExpired = errors.New("failover: command expired")
	// ErrExpiryTooFar: the expiry lies more than opsig.MaxExpiryWindow ahead.
	ErrExpiryTooFar = errors.New("failover: command expiry too far ahead")
	// ErrReplay: the operator already used this nonce.
	ErrReplay = errors.New("failover: nonce already used")
	// ErrUnknownOperator: a signer is not a registered operator.
	ErrUnknownOperator = errors.New("failover: unknown operator")
	// ErrBadSignature: a signature does not verify, or the submitter did
	// not sign, or an operator signed twice.
	ErrBadSignature = errors.New("failover: bad operator signature")
	// ErrNotPermitted: a signer's role does not permit the action.
	ErrNotPermitted = errors.New("failover: role does not permit the action")
	// ErrBelowThreshold: fewer distinct signers than the action's threshold.
	ErrBelowThreshold = errors.New("failover: approvals below threshold")
	// ErrDuplicateApproval: an operator approves a handover it already approved.
	ErrDuplicateApproval = errors.New("failover: operator already approved")
	// ErrNoHandover: the command names a handover that is not open.
	ErrNoHandover = errors.New("failover: no such open handover")
	// ErrHandoverState: the handover or lease is not in a state that
	// allows the command (e.g. cancel after the fence).
	ErrHandoverState = errors.New("failover: handover state does not allow this")
	// ErrWrongProposer: a node-proposed command from the wrong region.
	ErrWrongProposer = errors.New("failover: wrong proposer")
	// ErrFinalityShort: the evidence does not pass the fenced high-water
	// mark, misses a chain of it, or has too few agreeing endpoints.
	ErrFinalityShort = errors.New("failover: finality evidence does not pass the high-water mark")
	// ErrStaleHeartbeat: a heartbeat not from the current holder at the
	// current epoch.
	ErrStaleHeartbeat = errors.New("failover: heartbeat not from the current lease")
	// ErrDRNotAllowed: a DR takeover no enabled policy authorises, or
	// before the holder's silence reached the policy's.
	ErrDRNotAllowed = errors.New("failover: DR takeover not allowed")
	// ErrRegistry: an operator registry change that is invalid or would
	// make a threshold unreachable.
	ErrRegistry = errors.New("failover: invalid registry change")
	// ErrExitLimit: the day's voluntary-exit approvals are used up.
	ErrExitLimit = errors.New("failover: daily exit limit reached")
	// ErrLeaderRefused: the leader state refused the delegated change
	// (policy, exit, key); the wrapped error says why.
	ErrLeaderRefused = errors.New("failover: leader state refused the change")
	// ErrUnsigned: an unsigned control-plane command after bootstrap.
	ErrUnsigned = errors.New("failover: unsigned control-plane command refused; use a signed operator command")
	// ErrAuditBroken: the audit chain does not verify.
	ErrAuditBroken = errors.New("failover: audit chain broken")
	// ErrAuditFile: an audit export file does not decode.
	ErrAuditFile = errors.New("failover: bad audit file")
	// ErrBadSnapshot: the failover snapshot section does not decode or
	// fails validation.
	ErrBadSnapshot = errors.New("failover: bad snapshot section")
)

// ErrUnknownRegion: a command names a region that is not a Raft voter.
var ErrUnknownRegion = errors.New("failover: region is not a voter")
