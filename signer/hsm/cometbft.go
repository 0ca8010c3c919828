package hsm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrCometBFTKey: a CometBFT priv_validator_key.json could not be decoded or
// is internally inconsistent. Nothing was imported.
var ErrCometBFTKey = errors.New("hsm: invalid CometBFT priv_validator_key.json")

// Amino type names used by CometBFT's priv_validator_key.json.
const (
	cometPubKeyType  = "tendermint/PubKeyEd25519"
	cometPrivKeyType = "tendermint/PrivKeyEd25519"
	maxCometKeyFile  = 64 << 10
)

type cometKeyFile struct {
	Address string        `json:"address"`
	PubKey  cometTypedKey `json:"pub_key"`
	PrivKey cometTypedKey `json:"priv_key"`
}

type cometTypedKey struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ParseCometBFTKey decodes a CometBFT priv_validator_key.json and returns
// the 32-byte Ed25519 seed and public key. It checks the key types, that the
// private key (seed || public key, 64 bytes) matches pub_key, and, when
// present, that address is the first 20 bytes of SHA-256(pub_key) in hex.
// Errors wrap ErrCometBFTKey. The caller should zero the seed after use.
func ParseCometBFTKey(data []byte) (seed []byte, pub ed25519.PublicKey, err error) {
	if len(data) > maxCometKeyFile {
		return nil, nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrCometBFTKey, len(data), maxCometKeyFile)
	}
	var f cometKeyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCometBFTKey, err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("%w: trailing data after the JSON object", ErrCometBFTKey)
	}
	if f.PrivKey.Type != cometPrivKeyType {
		return nil, nil, fmt.Errorf("%w: priv_key.type %q, want %q", ErrCometBFTKey, f.PrivKey.Type, cometPrivKeyType)
	}
	if f.PubKey.Type != cometPubKeyType {
		return nil, nil, fmt.Errorf("%w: pub_key.type %q, want %q", ErrCometBFTKey, f.PubKey.Type, cometPubKeyType)
	}
	priv, err := base64.StdEncoding.Strict().DecodeString(f.PrivKey.Value)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: priv_key.value is not base64", ErrCometBFTKey)
	}
	defer zero(priv)
	if len(priv) != ed25519.PrivateKeySize {
		return nil, nil, fmt.Errorf("%w: priv_key.value is %d bytes, want %d", ErrCometBFTKey, len(priv), ed25519.PrivateKeySize)
	}
	pubBytes, err := base64.StdEncoding.Strict().DecodeString(f.PubKey.Value)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: pub_key.value is not base64", ErrCometBFTKey)
	}
	if len(pubBytes) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("%w: pub_key.value is %d bytes, want %d", ErrCometBFTKey, len(pubBytes), ed25519.PublicKeySize)
	}
	derived := ed25519.NewKeyFromSeed(priv[:ed25519.SeedSize])
	defer zero(derived)
	if !bytes.Equal(derived[32:], priv[32:]) {
		return nil, nil, fmt.Errorf("%w: priv_key.value's public half does not match its seed", ErrCometBFTKey)
	}
	if !bytes.Equal(derived[32:], pubBytes) {
		return nil, nil, fmt.Errorf("%w: pub_key does not match priv_key", ErrCometBFTKey)
	}
	if f.Address != "" {
		sum := sha256.Sum256(pubBytes)
		if want := hex.EncodeToString(sum[:20]); !strings.EqualFold(f.Address, want) {
			return nil, nil, fmt.Errorf("%w: address %s does not match pub_key (want %s)", ErrCometBFTKey, f.Address, want)
		}
	}
	seed = bytes.Clone(priv[:ed25519.SeedSize])
	return seed, ed25519.PublicKey(pubBytes), nil
}

// ImportCometBFTKey imports the Ed25519 key of a CometBFT
// priv_validator_key.json into the token under label (see ImportKey). The
// seed is zeroed before returning; the caller should remove or zero its own
// copy of the file's contents.
func (h *HSM) ImportCometBFTKey(ctx context.Context, label string, keyJSON []byte) (PublicKey, error) {
	seed, _, err := ParseCometBFTKey(keyJSON)
	if err != nil {
		return PublicKey{}, err
	}
	defer zero(seed)
	return h.ImportKey(ctx, label, Ed25519, seed)
}
