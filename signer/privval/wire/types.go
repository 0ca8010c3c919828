package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrMalformed: bytes that are not a privval message this package
	// understands — bad protobuf, a wrong wire type, a duplicated or
	// unknown field, a value out of range, or a message with no or several
	// oneof members.
	ErrMalformed = errors.New("privval wire: malformed message")
	// ErrTooLarge: a frame declares more bytes than the reader's limit.
	// Nothing beyond the length prefix was read.
	ErrTooLarge = errors.New("privval wire: message too large")
	// ErrInvalid: a message to encode is not well formed (no or several
	// members set).
	ErrInvalid = errors.New("privval wire: invalid message to encode")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// SignedMsgType values (tendermint.types.SignedMsgType).
const (
	TypePrevote   int32 = 1
	TypePrecommit int32 = 2
	TypeProposal  int32 = 32
)

// Timestamp is a google.protobuf.Timestamp as carried in votes and
// proposals.
type Timestamp struct {
	Seconds int64
	Nanos   int32
}

// GoZeroSeconds is Timestamp.Seconds of Go's zero time.Time
// (0001-01-01T00:00:00Z): what gogoproto's stdtime decoding yields for an
// absent non-nullable timestamp. CometBFT always writes the field; the
// decoder maps an absent one to this value so that sign bytes match what a
// gogoproto peer would compute from the same bytes.
const GoZeroSeconds = -62135596800

// PartSetHeader is tendermint.types.PartSetHeader.
type PartSetHeader struct {
	Total uint32
	Hash  []byte
}

// BlockID is tendermint.types.BlockID. The zero value (no hash, zero part
// set header) is a vote for nil.
type BlockID struct {
	Hash          []byte
	PartSetHeader PartSetHeader
}

// IsZero reports whether id is the nil block id (CometBFT's
// ProtoBlockIDIsNil).
func (id BlockID) IsZero() bool {
	return len(id.Hash) == 0 && id.PartSetHeader.Total == 0 && len(id.PartSetHeader.Hash) == 0
}

// Vote is tendermint.types.Vote (v0.38) / cometbft.types.v1.Vote (v1.x):
// the two are field-for-field identical.
type Vote struct {
	Type               int32
	Height             int64
	Round              int32
	BlockID            BlockID
	Timestamp          Timestamp
	ValidatorAddress   []byte
	ValidatorIndex     int32
	Signature          []byte
	Extension          []byte
	ExtensionSignature []byte
}

// Proposal is tendermint.types.Proposal / cometbft.types.v1.Proposal.
type Proposal struct {
	Type      int32
	Height    int64
	Round     int32
	POLRound  int32
	BlockID   BlockID
	Timestamp Timestamp
	Signature []byte
}

// RemoteSignerError is how a signer refuses a request.
type RemoteSignerError struct {
	Code        int32
	Description string
}

// PubKeyRequest asks for the consensus public key of a chain.
type PubKeyRequest struct{ ChainID string }

// PubKeyResponse answers PubKeyRequest. Ed25519 is written both as v0.38's
// pub_key (field 1, tendermint.crypto.PublicKey{ed25519}) and as v1's
// pub_key_bytes/pub_key_type (fields 3 and 4); each version ignores the
// other's fields.
type PubKeyResponse struct {
	Ed25519 []byte // 32 bytes, or empty with Error set
	Error   *RemoteSignerError
}

// KeyTypeEd25519 is v1's pub_key_type for Ed25519.
const KeyTypeEd25519 = "ed25519"

// SignVoteRequest asks for a vote signature. SkipExtensionSigning is v1's
// field 3; v0.38 nodes never set it.
type SignVoteRequest struct {
	Vote                 *Vote
	ChainID              string
	SkipExtensionSigning bool
}

// SignedVoteResponse answers SignVoteRequest.
type SignedVoteResponse struct {
	Vote  Vote
	Error *RemoteSignerError
}

// SignProposalRequest asks for a proposal signature.
type SignProposalRequest struct {
	Proposal *Proposal
	ChainID  string
}

// SignedProposalResponse answers SignProposalRequest.
type SignedProposalResponse struct {
	Proposal Proposal
	Error    *RemoteSignerError
}

// PingRequest and PingResponse keep the connection alive.
type (
	PingRequest  struct{}
	PingResponse struct{}
)

// SignBytesRequest (v1) asks for a signature over arbitrary bytes.
type SignBytesRequest struct{ Value []byte }

// SignBytesResponse answers SignBytesRequest.
type SignBytesResponse struct {
	Signature []byte
	Error     *RemoteSignerError
}

// Message is the privval Message oneof: exactly one member is set, except
// in the empty message (all nil) that CometBFT's own signer sends for a
// request it cannot interpret.
type Message struct {
	PubKeyRequest          *PubKeyRequest          // 1
	PubKeyResponse         *PubKeyResponse         // 2
	SignVoteRequest        *SignVoteRequest        // 3
	SignedVoteResponse     *SignedVoteResponse     // 4
	SignProposalRequest    *SignProposalRequest    // 5
	SignedProposalResponse *SignedProposalResponse // 6
	PingRequest            *PingRequest            // 7
	PingResponse           *PingResponse           // 8
	SignBytesRequest       *SignBytesRequest       // 9 (v1)
	SignBytesResponse      *SignBytesResponse      // 10 (v1)
}

// Kind names the member set, for logs and metrics: "pub_key_request",
// "sign_vote_request", ..., "empty" when none is set, "invalid" when
// several are.
func (m Message) Kind() string {
	n, count := m.member()
	if count > 1 {
		return "invalid"
	}
	switch n {
	case 1:
		return "pub_key_request"
	case 2:
		return "pub_key_response"
	case 3:
		return "sign_vote_request"
	case 4:
		return "signed_vote_response"
	case 5:
		return "sign_proposal_request"
	case 6:
		return "signed_proposal_response"
	case 7:
		return "ping_request"
	case 8:
		return "ping_response"
	case 9:
		return "sign_bytes_request"
	case 10:
		return "sign_bytes_response"
	default:
		return "empty"
	}
}

// member returns the field number of the member set and how many are set.
func (m Message) member() (num int, count int) {
	set := []bool{
		m.PubKeyRequest != nil, m.PubKeyResponse != nil, m.SignVoteRequest != nil,
		m.SignedVoteResponse != nil, m.SignProposalRequest != nil, m.SignedProposalResponse != nil,
		m.PingRequest != nil, m.PingResponse != nil, m.SignBytesRequest != nil, m.SignBytesResponse != nil,
	}
	for i, s := range set {
		if s {
			num, count = i+1, count+1
		}
	}
	if count != 1 {
		num = 0
	}
	return num, count
}
