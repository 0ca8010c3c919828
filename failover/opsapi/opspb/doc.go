// Package opspb holds the operator API's wire types (ops.proto, generated
// with `make proto`) and their Validate methods.
//
// Validate is called by the validator interceptor of the gRPC listener
// (go-grpc-middleware v2 interceptors/validator, fail-fast mode, which
// calls a request's Validate() error when it has one) before any handler
// runs: a request that fails it is answered InvalidArgument and changes
// nothing. Validate checks shape and bounds only (sizes, lengths, address
// syntax, that a signed command decodes); the handlers and the state
// machine check meaning. Every error wraps ErrInvalid.
package opspb
