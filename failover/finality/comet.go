package finality

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// Decoders for the two CometBFT RPC answers the watcher reads (GET /status
// and GET /commit?height=H, JSON-RPC 2.0 envelopes). Same contract as the
// beacon decoders: strict, ErrMalformed (or ErrRPCError for an error
// envelope), never a panic, b not retained.

// maxChainIDLen is CometBFT's limit on a chain id (types.MaxChainIDLen).
const maxChainIDLen = 50

// CometStatus is the part of GET /status the watcher reads.
type CometStatus struct {
	// Network is node_info.network: the chain id.
	Network string
	// LatestHeight is sync_info.latest_block_height; 0 before the first
	// block.
	LatestHeight int64
	// LatestHash is sync_info.latest_block_hash; zero when LatestHeight is 0.
	LatestHash [32]byte
	CatchingUp bool
}

// CometCommit is the part of GET /commit?height=H the watcher reads.
type CometCommit struct {
	ChainID string // signed_header.header.chain_id
	Height  int64  // signed_header.header.height, equal to the commit's
	// BlockHash is signed_header.commit.block_id.hash: the hash of the
	// block at Height that more than two thirds of the voting power
	// precommitted.
	BlockHash [32]byte
	// Canonical is false when the commit is the node's "seen" commit for
	// its latest block rather than the one stored in the next block. Both
	// name the same block.
	Canonical bool
}

// rpcResult opens a JSON-RPC 2.0 envelope and returns its result object.
func rpcResult(b []byte) (*jsonObject, error) {
	doc, err := parseDocument(b)
	if err != nil {
		return nil, err
	}
	v, err := doc.str("jsonrpc")
	if err != nil {
		return nil, err
	}
	if v != "2.0" {
		return nil, malformed("jsonrpc", "want \"2.0\", got %q", clip(v))
	}
	if doc.has("error") {
		e, err := doc.object("error")
		if err != nil {
			return nil, err
		}
		msg, _ := e.str("message")
		data, _ := e.str("data")
		return nil, fmt.Errorf("%w: %q %q", ErrRPCError, clip(msg), clip(data))
	}
	return doc.object("result")
}

// DecodeCometStatus decodes the JSON-RPC answer of /status:
// result.node_info.network (a non-empty chain id of at most 50 bytes),
// result.sync_info.latest_block_height (decimal string, int64),
// result.sync_info.latest_block_hash (64 hex digits without 0x; "" only at
// height 0) and result.sync_info.catching_up.
func DecodeCometStatus(b []byte) (CometStatus, error) {
	var s CometStatus
	res, err := rpcResult(b)
	if err != nil {
		return s, err
	}
	ni, err := res.object("node_info")
	if err != nil {
		return s, err
	}
	if s.Network, err = ni.str("network"); err != nil {
		return CometStatus{}, err
	}
	if err := checkChainID(s.Network, childPath(ni.path, "network")); err != nil {
		return CometStatus{}, err
	}
	si, err := res.object("sync_info")
	if err != nil {
		return CometStatus{}, err
	}
	h, err := si.uintString("latest_block_height", math.MaxInt64)
	if err != nil {
		return CometStatus{}, err
	}
	s.LatestHeight = int64(h)
	hash, err := si.str("latest_block_hash")
	if err != nil {
		return CometStatus{}, err
	}
	if !(hash == "" && s.LatestHeight == 0) {
		raw, err := parseHex(hash, childPath(si.path, "latest_block_hash"), 32, false)
		if err != nil {
			return CometStatus{}, err
		}
		copy(s.LatestHash[:], raw)
	}
	if s.CatchingUp, err = si.boolean("catching_up"); err != nil {
		return CometStatus{}, err
	}
	return s, nil
}

// DecodeCometCommit decodes the JSON-RPC answer of /commit:
// result.signed_header.header.{chain_id, height},
// result.signed_header.commit.{height, block_id.hash} and
// result.canonical. The header's and the commit's heights must be equal
// and at least 1. Commit signatures are not decoded or verified.
func DecodeCometCommit(b []byte) (CometCommit, error) {
	var c CometCommit
	res, err := rpcResult(b)
	if err != nil {
		return c, err
	}
	sh, err := res.object("signed_header")
	if err != nil {
		return c, err
	}
	hdr, err := sh.object("header")
	if err != nil {
		return CometCommit{}, err
	}
	if c.ChainID, err = hdr.str("chain_id"); err != nil {
		return CometCommit{}, err
	}
	if err := checkChainID(c.ChainID, childPath(hdr.path, "chain_id")); err != nil {
		return CometCommit{}, err
	}
	hh, err := hdr.uintString("height", math.MaxInt64)
	if err != nil {
		return CometCommit{}, err
	}
	cm, err := sh.object("commit")
	if err != nil {
		return CometCommit{}, err
	}
	ch, err := cm.uintString("height", math.MaxInt64)
	if err != nil {
		return CometCommit{}, err
	}
	if hh != ch || hh == 0 {
		return CometCommit{}, malformed(sh.path, "header height %d and commit height %d differ or are 0", hh, ch)
	}
	c.Height = int64(hh)
	bid, err := cm.object("block_id")
	if err != nil {
		return CometCommit{}, err
	}
	hash, err := bid.hexBytes("hash", 32, false)
	if err != nil {
		return CometCommit{}, err
	}
	copy(c.BlockHash[:], hash)
	if c.Canonical, err = res.boolean("canonical"); err != nil {
		return CometCommit{}, err
	}
	return c, nil
}

func checkChainID(id, path string) error {
	if id == "" || len(id) > maxChainIDLen || !utf8.ValidString(id) {
		return malformed(path, "invalid chain id %q", clip(id))
	}
	return nil
}
