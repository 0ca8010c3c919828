package finality

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// This file is the strict JSON layer the decoders share. encoding/json alone
// matches member names case-insensitively, keeps the last of duplicate
// members and accepts a number where the APIs specify a decimal string. Here
// an object is split into its members first: names match exactly, a
// duplicate member is an error, every member a decoder reads must be present
// with the specified type, a document must hold exactly one JSON value, and
// every error names the member's path. Members a decoder does not read are
// ignored: beacon nodes and CometBFT add members from one release to the
// next, and refusing them would make the watcher fail on an upgrade, not on
// a lie.

// jsonObject is one JSON object split into its members.
type jsonObject struct {
	path    string
	members map[string]json.RawMessage
}

func malformed(path, format string, args ...any) error {
	if path == "" {
		path = "(document)"
	}
	return fmt.Errorf("%w: %s: %s", ErrMalformed, path, fmt.Sprintf(format, args...))
}

// parseDocument reads b as exactly one JSON object followed only by white
// space.
func parseDocument(b []byte) (*jsonObject, error) {
	return parseObject(b, "", true)
}

// parseObject splits raw into members. Duplicate names are refused. When
// top is set, nothing but white space may follow the object.
func parseObject(raw []byte, path string, top bool) (*jsonObject, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(path, "invalid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, malformed(path, "want a JSON object, got %s", describe(raw))
	}
	o := &jsonObject{path: path, members: make(map[string]json.RawMessage)}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(path, "invalid JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, malformed(path, "invalid member name")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, malformed(childPath(path, name), "invalid JSON: %v", err)
		}
		if _, dup := o.members[name]; dup {
			return nil, malformed(childPath(path, name), "duplicate member")
		}
		o.members[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, malformed(path, "invalid JSON: %v", err)
	}
	if top {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, malformed(path, "data after the JSON document")
		}
	}
	return o, nil
}

func childPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// describe names the JSON type of raw, for error messages.
func describe(raw []byte) string {
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

func (o *jsonObject) has(name string) bool {
	_, ok := o.members[name]
	return ok
}

func (o *jsonObject) required(name string) (json.RawMessage, error) {
	v, ok := o.members[name]
	if !ok {
		return nil, malformed(childPath(o.path, name), "missing")
	}
	return v, nil
}

// object returns the required member name, which must be an object.
func (o *jsonObject) object(name string) (*jsonObject, error) {
	v, err := o.required(name)
	if err != nil {
		return nil, err
	}
	return parseObject(v, childPath(o.path, name), false)
}

// str returns the required member name, which must be a string.
func (o *jsonObject) str(name string) (string, error) {
	v, err := o.required(name)
	if err != nil {
		return "", err
	}
	if describe(v) != "a string" {
		return "", malformed(childPath(o.path, name), "want a string, got %s", describe(v))
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", malformed(childPath(o.path, name), "invalid string: %v", err)
	}
	return s, nil
}

// boolean returns the required member name, which must be true or false.
func (o *jsonObject) boolean(name string) (bool, error) {
	v, err := o.required(name)
	if err != nil {
		return false, err
	}
	switch string(bytes.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, malformed(childPath(o.path, name), "want a boolean, got %s", describe(v))
}

// optBool returns member name if present (it must then be a boolean).
func (o *jsonObject) optBool(name string) (value, present bool, err error) {
	if !o.has(name) {
		return false, false, nil
	}
	value, err = o.boolean(name)
	return value, err == nil, err
}

// uintString returns the required member name, a canonical unsigned decimal
// string ("0", "17"; not "017", "+1", "1e3", " 1") that fits in max.
func (o *jsonObject) uintString(name string, max uint64) (uint64, error) {
	s, err := o.str(name)
	if err != nil {
		return 0, err
	}
	return parseCanonicalUint(s, childPath(o.path, name), max)
}

func parseCanonicalUint(s, path string, max uint64) (uint64, error) {
	if s == "" || len(s) > 20 {
		return 0, malformed(path, "want a decimal string, got %q", clip(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, malformed(path, "want a decimal string, got %q", clip(s))
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, malformed(path, "leading zero in %q", clip(s))
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, malformed(path, "%q out of range", clip(s))
	}
	return v, nil
}

// hexBytes returns the required member name decoded from hex. With prefix
// set the string must start with "0x"; without, it must not. The decoded
// length must be exactly n bytes. Both letter cases are accepted.
func (o *jsonObject) hexBytes(name string, n int, prefix bool) ([]byte, error) {
	s, err := o.str(name)
	if err != nil {
		return nil, err
	}
	return parseHex(s, childPath(o.path, name), n, prefix)
}

func parseHex(s, path string, n int, prefix bool) ([]byte, error) {
	h := s
	if prefix {
		if len(h) < 2 || h[0] != '0' || (h[1] != 'x' && h[1] != 'X') {
			return nil, malformed(path, "want 0x-prefixed hex, got %q", clip(s))
		}
		h = h[2:]
	}
	if len(h) != 2*n {
		return nil, malformed(path, "want %d bytes of hex, got %q", n, clip(s))
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, malformed(path, "invalid hex %q", clip(s))
	}
	return b, nil
}

// clip shortens s for an error message so that a hostile answer cannot
// flood the logs.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
