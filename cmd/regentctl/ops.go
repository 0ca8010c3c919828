package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/regent-signer/regent/failover/opsapi/opspb"
	"github.com/regent-signer/regent/raft/pki"
	"github.com/regent-signer/regent/signer/hsm"
)

// Exit codes of the operator commands (documented in `regentctl --help`).
const (
	exitLocal       = 1 // usage or local error
	exitRefused     = 2 // the cluster refused (signed command rejected, permission, policy, bad input)
	exitUnavailable = 3 // the cluster is unavailable (no region, no quorum, outcome unknown, timeout)
)

// exitHelp is appended to the root command's help.
const exitHelp = `

Operator identity (signed commands, tokens) comes from flags or environment:
  --operator-id / REGENTCTL_OPERATOR_ID     the operator id in the cluster's registry
  --operator-key / REGENTCTL_OPERATOR_KEY   PKCS#8 PEM private key (Ed25519 or P-256)
  or a PKCS#11 token: --pkcs11-module, --pkcs11-token, --pkcs11-label,
  --pkcs11-pin-file (REGENTCTL_PKCS11_MODULE, _TOKEN, _LABEL, _PIN_FILE)
Every signing command accepts --out FILE to write the signed command
instead of submitting it; other operators add their signatures with
"regentctl cosign FILE" and anyone submits it with "regentctl submit FILE".

Exit codes (stable, for scripts):
  0  success
  1  usage or local error (bad flags, unreadable files, unexpected failure)
  2  refused by the cluster: a signed command rejected by the state machine,
     permission denied, invalid input, policy; a handover watched ended
     cancelled or rejected; audit verify found a break
     (status: degraded — a region unreachable or halted, majority answering)
  3  cluster unavailable: no region answered, no quorum, the outcome of a
     write is unknown, or a wait timed out (status: no majority answering)`

// operatorFlags are the global flags naming the operator and its key.
type operatorFlags struct {
	id, keyFile          string
	p11Module, p11Token  string
	p11Label, p11PINFile string
	// ttl is the validity of commands signed here.
	ttl time.Duration
	// clusterID overrides the cluster id asked from the cluster.
	clusterID string
	// openModule loads a PKCS#11 module (hsm.LoadModule).
	openModule func(path string) (*hsm.Module, error)
	// now stamps command expiries and tokens.
	now func() time.Time
	// maxRecv bounds a response (audit files are the largest).
	maxRecv   int
	lookupEnv func(string) string
}

// setupOperator registers the operator identity flags on root and adds
// the exit codes to its help. It is called once from newRoot.
func setupOperator(root *cobra.Command) *operatorFlags {
	op := &operatorFlags{openModule: hsm.LoadModule, now: time.Now, maxRecv: 512 << 20, lookupEnv: os.Getenv}
	root.Long += exitHelp
	pf := root.PersistentFlags()
	pf.StringVar(&op.id, "operator-id", "", "operator id in the cluster's registry (env REGENTCTL_OPERATOR_ID)")
	pf.StringVar(&op.keyFile, "operator-key", "", "operator private key, PKCS#8 PEM, Ed25519 or P-256 (env REGENTCTL_OPERATOR_KEY)")
	pf.StringVar(&op.p11Module, "pkcs11-module", "", "PKCS#11 module holding the operator key (env REGENTCTL_PKCS11_MODULE)")
	pf.StringVar(&op.p11Token, "pkcs11-token", "", "PKCS#11 token label (env REGENTCTL_PKCS11_TOKEN)")
	pf.StringVar(&op.p11Label, "pkcs11-label", "", "label of the operator key in the token (env REGENTCTL_PKCS11_LABEL)")
	pf.StringVar(&op.p11PINFile, "pkcs11-pin-file", "", "file holding the token's user PIN (env REGENTCTL_PKCS11_PIN_FILE)")
	pf.DurationVar(&op.ttl, "command-ttl", time.Hour, "how long a signed command stays valid (at most 24h; leave time for co-signers)")
	pf.StringVar(&op.clusterID, "cluster-id", "", "cluster id to sign for (default: asked from the cluster)")
	return op
}

// fromEnv fills unset operator flags from REGENTCTL_* variables.
func (o *operatorFlags) fromEnv(cmd *cobra.Command) {
	set := func(flag string, dst *string) {
		if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
			return
		}
		if v := o.lookupEnv("REGENTCTL_" + envSuffix(flag)); v != "" {
			*dst = v
		}
	}
	set("operator-id", &o.id)
	set("operator-key", &o.keyFile)
	set("pkcs11-module", &o.p11Module)
	set("pkcs11-token", &o.p11Token)
	set("pkcs11-label", &o.p11Label)
	set("pkcs11-pin-file", &o.p11PINFile)
}

// signer returns the operator id and its signer; done releases it (closes
// the PKCS#11 token). Errors are local (exit 1).
func (o *operatorFlags) signer(cmd *cobra.Command) (string, crypto.Signer, func(), error) {
	o.fromEnv(cmd)
	if o.id == "" {
		return "", nil, nil, errors.New("no operator: pass --operator-id (or set REGENTCTL_OPERATOR_ID)")
	}
	switch {
	case o.keyFile != "" && o.p11Module != "":
		return "", nil, nil, errors.New("pass either --operator-key or --pkcs11-module, not both")
	case o.keyFile != "":
		s, err := loadOperatorKey(cmd, o.keyFile)
		return o.id, s, func() {}, err
	case o.p11Module != "":
		s, done, err := o.openPKCS11(cmd.Context())
		return o.id, s, done, err
	default:
		return "", nil, nil, errors.New("no operator key: pass --operator-key FILE or --pkcs11-module/--pkcs11-token/--pkcs11-label/--pkcs11-pin-file")
	}
}

// loadOperatorKey reads a PKCS#8 PEM Ed25519 or P-256 private key. It
// warns when the file is readable by others.
func loadOperatorKey(cmd *cobra.Command, path string) (crypto.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("operator key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "regentctl: warning: operator key %s is readable by others (mode %v)\n", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("operator key: %w", err)
	}
	return parseOperatorKey(b)
}

func parseOperatorKey(b []byte) (crypto.Signer, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("operator key: want a PEM \"PRIVATE KEY\" block (PKCS#8)")
	}
	if len(rest) > 0 && len(pemTrim(rest)) > 0 {
		return nil, errors.New("operator key: data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("operator key: %w", err)
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("operator key: ECDSA curve %s, want P-256", k.Curve.Params().Name)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("operator key: %T, want Ed25519 or ECDSA P-256", k)
	}
}

func pemTrim(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' || b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// openPKCS11 opens the token and wraps the labelled key as a signer.
func (o *operatorFlags) openPKCS11(ctx context.Context) (crypto.Signer, func(), error) {
	if o.p11Token == "" || o.p11Label == "" || o.p11PINFile == "" {
		return nil, nil, errors.New("--pkcs11-module needs --pkcs11-token, --pkcs11-label and --pkcs11-pin-file")
	}
	mod, err := o.openModule(o.p11Module)
	if err != nil {
		return nil, nil, fmt.Errorf("PKCS#11 module: %w", err)
	}
	h, err := mod.Open(hsm.Config{Module: o.p11Module, TokenLabel: o.p11Token, PINFile: o.p11PINFile, MaxSessions: 1})
	if err != nil {
		_ = mod.Close()
		return nil, nil, fmt.Errorf("PKCS#11 token %q: %w", o.p11Token, err)
	}
	s, err := newHSMSigner(ctx, h, o.p11Label)
	if err != nil {
		_ = h.Close()
		_ = mod.Close()
		return nil, nil, err
	}
	return s, func() { _ = h.Close(); _ = mod.Close() }, nil
}

// dial opens a connection to one region presenting the operator
// certificate, with a receive limit large enough for audit files.
func (g *globals) dial(mat *pki.Material, addr string, maxRecv int) (*grpc.ClientConn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	tc, err := mat.ClientConfig(host)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv), grpc.MaxCallSendMsgSize(maxRecv)))
}

// opsClient is a connection to one region's operator API.
type opsClient struct {
	opspb.OperationsClient
	region string
	// status is the region's answer to the probe.
	status *opspb.StatusResponse
	close  func()
}

// cliError is a failure already described for the user, with its exit code.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

func refusedf(format string, args ...any) error {
	return &cliError{code: exitRefused, msg: fmt.Sprintf(format, args...)}
}

func unavailablef(format string, args ...any) error {
	return &cliError{code: exitUnavailable, msg: fmt.Sprintf(format, args...)}
}

// rpcError turns a gRPC error into a cliError with the documented exit code.
func rpcError(what string, err error) error {
	st := status.Convert(err)
	msg := fmt.Sprintf("%s: %s (%s)", what, st.Message(), st.Code())
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted, codes.Canceled:
		return &cliError{code: exitUnavailable, msg: msg}
	case codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.FailedPrecondition,
		codes.AlreadyExists, codes.NotFound, codes.OutOfRange:
		return &cliError{code: exitRefused, msg: msg}
	case codes.Unimplemented:
		return &cliError{code: exitLocal, msg: msg + ": the region does not serve the operator API (older version?)"}
	default:
		return &cliError{code: exitLocal, msg: msg}
	}
}

// finish prints a cliError and converts it to the exit code main uses;
// other errors pass through (main prints them, exit 1).
func finish(cmd *cobra.Command, err error) error {
	var ce *cliError
	if errors.As(err, &ce) {
		fmt.Fprintln(cmd.ErrOrStderr(), "regentctl:", ce.msg)
		return exitCode(ce.code)
	}
	return err
}

// run adapts a command body to finish's error handling.
func run(fn func(cmd *cobra.Command, args []string) error) func(cmd *cobra.Command, args []string) error {
	return func(cmd *cobra.Command, args []string) error { return finish(cmd, fn(cmd, args)) }
}

// perCall returns the per-region timeout.
func (g *globals) perCall() (time.Duration, error) {
	d, err := time.ParseDuration(g.timeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--timeout %q: want a positive duration", g.timeout)
	}
	return d, nil
}

// ops connects to the first region (in --endpoints order) whose operator
// API answers Status.
func (g *globals) ops(ctx context.Context, maxRecv int) (*opsClient, error) {
	eps, err := parseEndpoints(g.endpoints)
	if err != nil {
		return nil, err
	}
	return g.opsAmong(ctx, eps, maxRecv)
}

// opsRegion connects to one named region.
func (g *globals) opsRegion(ctx context.Context, region string, maxRecv int) (*opsClient, error) {
	eps, err := parseEndpoints(g.endpoints)
	if err != nil {
		return nil, err
	}
	for _, ep := range eps {
		if ep.region == region {
			return g.opsAmong(ctx, []endpoint{ep}, maxRecv)
		}
	}
	return nil, fmt.Errorf("region %s is not among --endpoints", region)
}

func (g *globals) opsAmong(ctx context.Context, eps []endpoint, maxRecv int) (*opsClient, error) {
	timeout, err := g.perCall()
	if err != nil {
		return nil, err
	}
	mat, err := pki.LoadTLS(g.ca, g.cert, g.key)
	if err != nil {
		return nil, err
	}
	var errs []error
	unimplemented := 0
	for _, ep := range eps {
		conn, err := g.dial(mat, ep.addr, maxRecv)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep.region, err))
			continue
		}
		c := opspb.NewOperationsClient(conn)
		cctx, cancel := context.WithTimeout(ctx, timeout)
		st, err := c.Status(cctx, &opspb.StatusRequest{}, grpc.WaitForReady(false))
		cancel()
		if err != nil {
			conn.Close()
			if status.Code(err) == codes.Unimplemented {
				unimplemented++
			}
			errs = append(errs, fmt.Errorf("%s: %s", ep.region, status.Convert(err).Message()))
			continue
		}
		return &opsClient{OperationsClient: c, region: ep.region, status: st, close: func() { conn.Close() }}, nil
	}
	if unimplemented == len(eps) {
		return nil, &cliError{code: exitLocal, msg: "no region serves the operator API (older version?)"}
	}
	return nil, unavailablef("no region answered: %v", errors.Join(errs...))
}

// callCtx bounds one call to a region.
func (g *globals) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d, err := g.perCall()
	if err != nil {
		d = 3 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

// writeCtx bounds a write, which may wait for the leader and an apply.
func writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 30*time.Second)
}

var pj = protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}

// printJSONValue writes v as indented JSON.
func printJSONValue(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// protoValue renders a message as a JSON value (every field present,
// proto field names) for embedding in a larger object.
func protoValue(m proto.Message) json.RawMessage {
	b, err := pj.Marshal(m)
	if err != nil {
		return json.RawMessage(fmt.Sprintf("%q", err.Error()))
	}
	return b
}

// protoList renders messages as JSON values (never null).
func protoList[T proto.Message](xs []T) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(xs))
	for _, x := range xs {
		out = append(out, protoValue(x))
	}
	return out
}
