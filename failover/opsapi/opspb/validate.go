package opspb

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/regent-signer/regent/failover/opsig"
	"github.com/regent-signer/regent/raft/pki"
)

// ErrInvalid is wrapped by every Validate error.
var ErrInvalid = errors.New("opspb: invalid request")

// Bounds of requests.
const (
	// MaxAuditLimit bounds AuditRequest.Limit.
	MaxAuditLimit = 1000
	// DefaultAuditLimit is used when AuditRequest.Limit is 0.
	DefaultAuditLimit = 100
	// MaxExportKeys bounds the keys of one ExportInterchangeRequest.
	MaxExportKeys = 10_000
	// MaxInterchange bounds an imported interchange document (the gRPC
	// listener's 4 MiB message limit is lower still).
	MaxInterchange = 64 << 20
	// MaxKeystore bounds an EIP-2335 keystore.
	MaxKeystore = 64 << 10
	// MaxPassword bounds a keystore password.
	MaxPassword = 4096
)

// Validate checks that the signed command decodes (opsig.DecodeSigned and
// opsig.DecodeBody); signatures are checked by the state machine.
func (r *SubmitRequest) Validate() error {
	sc, err := opsig.DecodeSigned(r.GetSignedCommand())
	if err != nil {
		return fmt.Errorf("%w: signed_command: %w", ErrInvalid, err)
	}
	if _, err := opsig.DecodeBody(sc.GetBody()); err != nil {
		return fmt.Errorf("%w: signed_command body: %w", ErrInvalid, err)
	}
	return nil
}

// Validate bounds the limit.
func (r *AuditRequest) Validate() error {
	if r.GetLimit() > MaxAuditLimit {
		return fmt.Errorf("%w: limit %d (at most %d)", ErrInvalid, r.GetLimit(), MaxAuditLimit)
	}
	return nil
}

// Validate checks key and root lengths.
func (r *ExportInterchangeRequest) Validate() error {
	if n := len(r.GetPubkeys()); n > MaxExportKeys {
		return fmt.Errorf("%w: %d pubkeys (at most %d)", ErrInvalid, n, MaxExportKeys)
	}
	for i, pk := range r.GetPubkeys() {
		if len(pk) != 48 {
			return fmt.Errorf("%w: pubkeys[%d] is %d bytes, want a 48-byte BLS public key", ErrInvalid, i, len(pk))
		}
	}
	if n := len(r.GetGenesisValidatorsRoot()); n != 0 && n != 32 {
		return fmt.Errorf("%w: genesis_validators_root is %d bytes, want 32 (or none)", ErrInvalid, n)
	}
	return nil
}

// Validate checks the document is present and bounded.
func (r *ImportInterchangeRequest) Validate() error {
	if n := len(r.GetInterchangeJson()); n == 0 || n > MaxInterchange {
		return fmt.Errorf("%w: interchange_json of %d bytes (1..%d)", ErrInvalid, n, MaxInterchange)
	}
	return nil
}

// Validate checks keystore and password sizes.
func (r *ImportKeystoreRequest) Validate() error {
	if n := len(r.GetKeystoreJson()); n == 0 || n > MaxKeystore {
		return fmt.Errorf("%w: keystore_json of %d bytes (1..%d)", ErrInvalid, n, MaxKeystore)
	}
	if n := len(r.GetPassword()); n > MaxPassword {
		return fmt.Errorf("%w: password of %d bytes (at most %d)", ErrInvalid, n, MaxPassword)
	}
	return nil
}

// Validate checks the member id (a node certificate name) and its Raft
// address (host:port).
func (r *AddMemberRequest) Validate() error {
	if !pki.ValidName(r.GetId()) {
		return fmt.Errorf("%w: member id %q is not a valid node name", ErrInvalid, r.GetId())
	}
	host, port, err := net.SplitHostPort(r.GetAddress())
	if err != nil || host == "" {
		return fmt.Errorf("%w: address %q: want host:port", ErrInvalid, r.GetAddress())
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w: address %q: port must be 1..65535", ErrInvalid, r.GetAddress())
	}
	return nil
}

// Validate checks the member id.
func (r *RemoveMemberRequest) Validate() error {
	if !pki.ValidName(r.GetId()) {
		return fmt.Errorf("%w: member id %q is not a valid node name", ErrInvalid, r.GetId())
	}
	return nil
}
