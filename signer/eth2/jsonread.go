package eth2

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// This file is the strict JSON layer. encoding/json alone is too lenient for
// a signer: it matches field names case-insensitively, keeps the last of
// duplicate keys, ignores unknown fields and accepts numbers where the API
// wants decimal strings. Here every object is read key by key, names match
// exactly, duplicates and leftovers are errors, and every error names the
// field path.

// object is one JSON object whose members are consumed by name.
type object struct {
	path   string
	fields map[string]json.RawMessage
	order  []string
	used   map[string]bool
}

// child returns the path of member name.
func child(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// index returns the path of element i.
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// kind describes a raw JSON value for error messages.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// parseObject reads raw as a JSON object. Duplicate member names are
// refused. When top is set, raw must hold nothing after the object but
// white space.
func parseObject(raw []byte, path string, top bool) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(path, "invalid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, malformed(path, "want a JSON object, got %s", kind(raw))
	}
	o := &object{path: path, fields: map[string]json.RawMessage{}, used: map[string]bool{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(path, "invalid JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, malformed(path, "invalid JSON object key")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, malformed(child(path, name), "invalid JSON: %v", err)
		}
		if _, dup := o.fields[name]; dup {
			return nil, malformed(child(path, name), "duplicate key")
		}
		o.fields[name] = v
		o.order = append(o.order, name)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, malformed(path, "invalid JSON: %v", err)
	}
	if top {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, malformed(path, "unexpected data after the JSON object")
		}
	}
	return o, nil
}

// has reports whether member name is present.
func (o *object) has(name string) bool {
	_, ok := o.fields[name]
	return ok
}

// opt returns member name if present and marks it consumed.
func (o *object) opt(name string) (json.RawMessage, bool) {
	v, ok := o.fields[name]
	if ok {
		o.used[name] = true
	}
	return v, ok
}

// req returns member name, or an error if it is absent.
func (o *object) req(name string) (json.RawMessage, error) {
	v, ok := o.opt(name)
	if !ok {
		return nil, malformed(child(o.path, name), "missing required field")
	}
	return v, nil
}

// done refuses any member that was not consumed.
func (o *object) done() error {
	for _, name := range o.order {
		if !o.used[name] {
			return malformed(child(o.path, name), "unknown field")
		}
	}
	return nil
}

// obj reads required member name as an object.
func (o *object) obj(name string) (*object, error) {
	raw, err := o.req(name)
	if err != nil {
		return nil, err
	}
	return parseObject(raw, child(o.path, name), false)
}

// str decodes raw as a JSON string.
func str(raw json.RawMessage, path string) (string, error) {
	if kind(raw) != "a string" {
		return "", malformed(path, "want a string, got %s", kind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", malformed(path, "invalid JSON string: %v", err)
	}
	return s, nil
}

// parseUint64 parses the API's uint64 form: a JSON string of decimal digits,
// no sign, no leading zeros (except "0" itself), at most 2^64-1.
func parseUint64(raw json.RawMessage, path string) (uint64, error) {
	if k := kind(raw); k != "a string" {
		return 0, malformed(path, "want a decimal string, got %s", k)
	}
	s, err := str(raw, path)
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, malformed(path, "empty number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, malformed(path, "%q is not a decimal number", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, malformed(path, "%q has leading zeros", s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, malformed(path, "%q does not fit in uint64", s)
	}
	return v, nil
}

// decodeHex decodes a hex string without prefix.
func decodeHex(s string) ([]byte, error) { return hex.DecodeString(s) }

// parseHex parses a 0x-prefixed hex string (either case). If n >= 0 the
// decoded value must be exactly n bytes; otherwise it may be 1..max bytes.
func parseHex(raw json.RawMessage, path string, n, maxLen int) ([]byte, error) {
	s, err := str(raw, path)
	if err != nil {
		return nil, err
	}
	if len(s) < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return nil, malformed(path, "want 0x-prefixed hex")
	}
	h := s[2:]
	if len(h)%2 != 0 {
		return nil, malformed(path, "odd number of hex digits")
	}
	if n >= 0 && len(h) != 2*n {
		return nil, malformed(path, "want %d bytes, got %d", n, len(h)/2)
	}
	if n < 0 && (len(h) == 0 || len(h) > 2*maxLen) {
		return nil, malformed(path, "want 1 to %d bytes, got %d", maxLen, len(h)/2)
	}
	b, err := decodeHex(h)
	if err != nil {
		return nil, malformed(path, "invalid hex")
	}
	return b, nil
}

// fixed helpers for the common sizes.

func (o *object) u64(name string) (uint64, error) {
	raw, err := o.req(name)
	if err != nil {
		return 0, err
	}
	return parseUint64(raw, child(o.path, name))
}

func (o *object) bytesN(name string, n int) ([]byte, error) {
	raw, err := o.req(name)
	if err != nil {
		return nil, err
	}
	return parseHex(raw, child(o.path, name), n, 0)
}

func (o *object) root(name string) (Root, error) {
	b, err := o.bytesN(name, 32)
	if err != nil {
		return Root{}, err
	}
	return Root(b), nil
}

func (o *object) version(name string) (Version, error) {
	b, err := o.bytesN(name, 4)
	if err != nil {
		return Version{}, err
	}
	return Version(b), nil
}

func (o *object) pubkey(name string) (BLSPubkey, error) {
	b, err := o.bytesN(name, 48)
	if err != nil {
		return BLSPubkey{}, err
	}
	return BLSPubkey(b), nil
}

func (o *object) signature(name string) (BLSSignature, error) {
	b, err := o.bytesN(name, 96)
	if err != nil {
		return BLSSignature{}, err
	}
	return BLSSignature(b), nil
}

// array reads required member name as a JSON array of at most maxLen
// elements and returns the raw elements.
func (o *object) array(name string, maxLen int) ([]json.RawMessage, string, error) {
	path := child(o.path, name)
	raw, err := o.req(name)
	if err != nil {
		return nil, path, err
	}
	if k := kind(raw); k != "an array" {
		return nil, path, malformed(path, "want an array, got %s", k)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, path, malformed(path, "invalid JSON array: %v", err)
	}
	if len(elems) > maxLen {
		return nil, path, malformed(path, "%d elements exceed the limit of %d", len(elems), maxLen)
	}
	return elems, path, nil
}
