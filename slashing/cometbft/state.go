package cometbft

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/regent-signer/regent/slashing"
)

// Outcome is the answer to one signing request.
//
// Only when Result.Decision is slashing.DecisionAccepted may the caller sign,
// and then it must sign exactly SignBytes — which, on a timestamp-only retry,
// are NOT the bytes it asked for but the ones signed earlier — and report
// Timestamp as the message's timestamp. For any other decision SignBytes is
// nil and nothing may be signed.
type Outcome struct {
	slashing.Result

	// SignBytes are the bytes to sign: the request's own, or, when
	// ReusedEarlier, the sign bytes recorded earlier at this position.
	// The slice is the caller's to keep; it aliases nothing in the State.
	SignBytes []byte
	// Timestamp is the timestamp inside SignBytes. The caller puts it in the
	// vote or proposal it returns, so that the returned message matches the
	// signature.
	Timestamp Timestamp
	// SameHRS is true when the request is at the last recorded position (a
	// re-sign): Record leaves the State unchanged.
	SameHRS bool
	// ReusedEarlier is true when the request differed from the recorded sign
	// bytes only in its timestamp, so SignBytes and Timestamp are the
	// recorded ones (CometBFT FilePV returns the earlier signature and
	// timestamp in that case).
	ReusedEarlier bool
}

// Entry is the last-sign state of one (key, chain) pair.
type Entry struct {
	KeyID   string
	ChainID string
	// HRS is the highest position signed.
	HRS HRS
	// SignBytes are the bytes signed at HRS. Empty only for a position that
	// was imported without sign bytes (a bare watermark); then no request at
	// exactly HRS can be proven to be a re-sign, and all are refused.
	SignBytes []byte
}

type pairKey struct {
	key   string
	chain string
}

type entry struct {
	hrs       HRS
	signBytes []byte // never aliased by anything handed out
}

// State is the CometBFT double-sign protection state: for every (key id,
// chain id) pair, the last position signed and the bytes signed there.
//
// The zero value is an empty, ready-to-use State. A State is not safe for
// concurrent use: the replicated state machine owns it and mutates it from
// Apply only; readers on other goroutines must hold the owner's lock or work
// on a Clone. All methods are deterministic functions of the State and their
// arguments.
type State struct {
	m map[pairKey]entry
}

// NewState returns an empty State.
func NewState() *State { return &State{m: make(map[pairKey]entry)} }

// Len returns the number of (key, chain) pairs with a recorded position.
func (s *State) Len() int { return len(s.m) }

// Check evaluates a request to sign signBytes at position hrs for key on
// chainID, without changing the State. The rules, in order:
//
//  1. key, chainID and hrs must be valid, and signBytes must be canonical
//     vote or proposal sign bytes whose chain id, height, round and step
//     (proposal → propose, prevote → prevote, precommit → precommit) equal
//     the request's; otherwise DecisionFailed, with Err wrapping
//     ErrInvalidRequest, ErrMalformedSignBytes or ErrRequestMismatch.
//  2. Nothing recorded for (key, chainID), or hrs above the recorded
//     position: accepted; SignBytes are the request's.
//  3. hrs below the recorded position: denied, slashing.RuleHRSRegression.
//  4. hrs equal to the recorded position: accepted with SameHRS if the
//     bytes are identical; accepted with SameHRS and ReusedEarlier if they
//     differ only in the timestamp (SignBytes and Timestamp are then the
//     recorded ones); otherwise denied, slashing.RuleHRSConflict.
func (s *State) Check(key, chainID string, hrs HRS, signBytes []byte) Outcome {
	o, _ := s.evaluate(key, chainID, hrs, signBytes)
	return o
}

// Record evaluates the request exactly as Check does and, when it is
// accepted at a position above the recorded one (or the first for the pair),
// makes that position and signBytes the new last-sign state. Every other
// outcome leaves the State unchanged. The caller may sign only what an
// accepted Outcome names, and only after Record has run in a committed log
// entry (DESIGN.md I1).
func (s *State) Record(key, chainID string, hrs HRS, signBytes []byte) Outcome {
	o, advance := s.evaluate(key, chainID, hrs, signBytes)
	if advance {
		if s.m == nil {
			s.m = make(map[pairKey]entry)
		}
		s.m[pairKey{key, chainID}] = entry{hrs: hrs, signBytes: cloneBytes(signBytes)}
	}
	return o
}

// evaluate implements Check; advance reports whether Record must store the
// request as the new last-sign state.
func (s *State) evaluate(key, chainID string, hrs HRS, signBytes []byte) (o Outcome, advance bool) {
	msg, err := validateRequest(key, chainID, hrs, signBytes)
	if err != nil {
		return failed(err), false
	}
	last, ok := s.m[pairKey{key, chainID}]
	if !ok || hrs.Compare(last.hrs) > 0 {
		return accepted(cloneBytes(signBytes), msg.Timestamp(), false, false), true
	}
	if hrs.Compare(last.hrs) < 0 {
		return denied(slashing.RuleHRSRegression,
			"height/round/step regression for key %q on chain %q: requested %s, but %s was already signed",
			key, chainID, hrs, last.hrs), false
	}
	// Same position: only a re-sign of what was signed may pass.
	if len(last.signBytes) == 0 {
		return denied(slashing.RuleHRSConflict,
			"key %q on chain %q already signed at %s (imported without sign bytes), so no request there can be shown to be a re-sign",
			key, chainID, hrs), false
	}
	if bytes.Equal(last.signBytes, signBytes) {
		return accepted(cloneBytes(signBytes), msg.Timestamp(), true, false), false
	}
	prev, err := ParseSignBytes(last.signBytes)
	if err != nil {
		return failed(fmt.Errorf("%w: recorded sign bytes for key %q on chain %q at %s do not decode: %v",
			ErrCorruptState, key, chainID, last.hrs, err)), false
	}
	if diff := diffExceptTimestamp(prev, msg); diff != nil {
		return denied(slashing.RuleHRSConflict,
			"conflicting sign bytes for key %q on chain %q at %s: the request's %s differs from what was signed (signed timestamp %s, requested %s)",
			key, chainID, hrs, strings.Join(diff, ", "), prev.Timestamp(), msg.Timestamp()), false
	}
	return accepted(cloneBytes(last.signBytes), prev.Timestamp(), true, true), false
}

// validateRequest checks everything about a request that does not depend on
// the State, and returns its decoded sign bytes.
func validateRequest(key, chainID string, hrs HRS, signBytes []byte) (Message, error) {
	if err := validateIDs(key, chainID); err != nil {
		return Message{}, err
	}
	if err := hrs.Validate(); err != nil {
		return Message{}, err
	}
	msg, err := ParseSignBytes(signBytes)
	if err != nil {
		return Message{}, err
	}
	if got := msg.ChainID(); got != chainID {
		return Message{}, fmt.Errorf("%w: request names chain %q, sign bytes name chain %q", ErrRequestMismatch, chainID, got)
	}
	if got := msg.HRS(); got != hrs {
		return Message{}, fmt.Errorf("%w: request names %s, sign bytes (%s) are at %s", ErrRequestMismatch, hrs, msg.Type, got)
	}
	return msg, nil
}

func validateIDs(key, chainID string) error {
	if key == "" || len(key) > MaxKeyIDLen || !utf8.ValidString(key) {
		return fmt.Errorf("%w: key id must be 1..%d bytes of UTF-8, got %d bytes", ErrInvalidRequest, MaxKeyIDLen, len(key))
	}
	if chainID == "" || len(chainID) > MaxChainIDLen || !utf8.ValidString(chainID) {
		return fmt.Errorf("%w: chain id must be 1..%d bytes of UTF-8, got %d bytes", ErrInvalidRequest, MaxChainIDLen, len(chainID))
	}
	return nil
}

func accepted(signBytes []byte, ts Timestamp, same, reused bool) Outcome {
	return Outcome{
		Result:        slashing.Result{Decision: slashing.DecisionAccepted},
		SignBytes:     signBytes,
		Timestamp:     ts,
		SameHRS:       same,
		ReusedEarlier: reused,
	}
}

func denied(rule slashing.Rule, format string, args ...any) Outcome {
	return Outcome{Result: slashing.Result{Decision: slashing.DecisionDenied, Rule: rule, Reason: fmt.Sprintf(format, args...)}}
}

func failed(err error) Outcome {
	return Outcome{Result: slashing.Result{Decision: slashing.DecisionFailed, Reason: err.Error(), Err: err}}
}

// Last returns the last position recorded for key on chainID, and false if
// there is none.
func (s *State) Last(key, chainID string) (HRS, bool) {
	e, ok := s.m[pairKey{key, chainID}]
	return e.hrs, ok
}

// MaxHeight returns the highest height recorded on chainID by any key, or 0
// if none. It is the high-water mark a fenced lease must see finalized
// before another holder may sign for the chain.
func (s *State) MaxHeight(chainID string) int64 {
	var highest int64
	for k, e := range s.m {
		if k.chain == chainID && e.hrs.Height > highest {
			highest = e.hrs.Height
		}
	}
	return highest
}

// Entries returns every (key, chain) pair's last-sign state, sorted by key
// id then chain id. The result shares no memory with the State.
func (s *State) Entries() []Entry {
	out := make([]Entry, 0, len(s.m))
	for k, e := range s.m {
		out = append(out, Entry{KeyID: k.key, ChainID: k.chain, HRS: e.hrs, SignBytes: cloneBytes(e.signBytes)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].KeyID != out[j].KeyID {
			return out[i].KeyID < out[j].KeyID
		}
		return out[i].ChainID < out[j].ChainID
	})
	return out
}

// Clone returns a deep copy of s, for example for a snapshot that is written
// while Apply goes on.
func (s *State) Clone() *State {
	c := &State{m: make(map[pairKey]entry, len(s.m))}
	for k, e := range s.m {
		c.m[k] = entry{hrs: e.hrs, signBytes: cloneBytes(e.signBytes)}
	}
	return c
}

// Import merges an externally kept last-sign state into s — for example a
// CometBFT priv_validator_state.json (height, round, step, signbytes) when a
// validator moves to Regent — so that s never signs below what was signed
// elsewhere. signBytes may be empty (the position is then a bare watermark:
// nothing at exactly hrs will be signed); if present they must be canonical
// sign bytes for chainID at hrs.
//
// Merging keeps the higher position. At an equal position it keeps the
// recorded sign bytes, adopts the imported ones if none were recorded, and
// returns an error wrapping ErrImportConflict if both exist and differ in
// more than the timestamp. Any error leaves s unchanged.
func (s *State) Import(key, chainID string, hrs HRS, signBytes []byte) error {
	if err := validateIDs(key, chainID); err != nil {
		return err
	}
	if err := hrs.Validate(); err != nil {
		return err
	}
	if len(signBytes) > 0 {
		if _, err := validateRequest(key, chainID, hrs, signBytes); err != nil {
			return err
		}
	}
	k := pairKey{key, chainID}
	last, ok := s.m[k]
	switch {
	case !ok || hrs.Compare(last.hrs) > 0:
	case hrs.Compare(last.hrs) < 0:
		return nil
	case len(signBytes) == 0 || bytes.Equal(signBytes, last.signBytes):
		return nil
	case len(last.signBytes) == 0:
	default:
		_, same, err := OnlyTimestampDiffers(last.signBytes, signBytes)
		if err != nil {
			return fmt.Errorf("%w: recorded sign bytes for key %q on chain %q: %v", ErrCorruptState, key, chainID, err)
		}
		if !same {
			return fmt.Errorf("%w: key %q on chain %q at %s", ErrImportConflict, key, chainID, hrs)
		}
		return nil
	}
	if s.m == nil {
		s.m = make(map[pairKey]entry)
	}
	s.m[k] = entry{hrs: hrs, signBytes: cloneBytes(signBytes)}
	return nil
}

// cloneBytes returns a copy of b that aliases nothing, or nil if b is empty.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
