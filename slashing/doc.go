// Package slashing owns Regent's slashing-protection rules and the replicated
// protection state they are evaluated against.
//
// Everything here is pure: no clock, no randomness, no I/O, no keys. The
// replicated state machine calls into this package from inside Raft's Apply,
// so every function must return the same answer on every replica for the same
// inputs (DESIGN.md I3).
//
// Decisions fail closed: the zero value of Decision is DecisionUnknown, which
// every caller treats as "do not sign". A rule that refuses a record answers
// DecisionDenied with the rule that fired and the values it compared; an
// input the engine cannot evaluate answers DecisionFailed with an error.
package slashing
