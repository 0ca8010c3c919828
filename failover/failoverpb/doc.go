// Package failoverpb holds the generated protobuf types of the failover
// protocol (failover.proto): the payloads of OPERATOR_COMMAND (a
// SignedCommand whose body is an OperatorCommand), CONFIRM_FINALITY,
// LEASE_HEARTBEAT, DR_TAKEOVER and BOOTSTRAP_OPERATORS, and the failover
// section of the snapshot. It owns no logic; regenerate with `make proto`.
// Fields are only ever added, never renumbered or reused.
package failoverpb
