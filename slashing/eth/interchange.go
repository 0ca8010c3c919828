package eth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/regent-signer/regent/slashing"
)

// InterchangeFormatVersion is the only EIP-3076 format version read and
// written.
const InterchangeFormatVersion = "5"

// MaxInterchangeBytes bounds the size of an interchange document accepted by
// DecodeInterchange. Larger histories must be split by key into several
// documents (each import is atomic on its own).
const MaxInterchangeBytes = 64 << 20

// Interchange is a decoded EIP-3076 interchange document (format version 5,
// the complete format: every record, signing roots optional).
type Interchange struct {
	GenesisValidatorsRoot Root
	// Data may name one pubkey in several entries; Import merges them.
	Data []InterchangeRecord
}

// InterchangeRecord is one entry of the "data" array.
type InterchangeRecord struct {
	Pubkey             Pubkey
	SignedBlocks       []SignedBlock
	SignedAttestations []SignedAttestation
}

// SignedBlock is one entry of "signed_blocks".
type SignedBlock struct {
	Slot        uint64
	SigningRoot SigningRoot
}

// SignedAttestation is one entry of "signed_attestations".
type SignedAttestation struct {
	SourceEpoch uint64
	TargetEpoch uint64
	SigningRoot SigningRoot
}

// DecodeInterchange parses an EIP-3076 interchange document strictly:
//   - at most MaxInterchangeBytes, exactly one JSON object, nothing after it;
//   - metadata.interchange_format_version is the string "5" (another string
//     gives an error wrapping slashing.ErrUnsupportedVersion);
//   - genesis_validators_root, pubkey and signing_root are 0x-prefixed hex of
//     32, 48 and 32 bytes; signing_root may be omitted but not null;
//   - slot, source_epoch and target_epoch are decimal strings without sign,
//     spaces or leading zeros, fitting in uint64;
//   - every field the schema requires is present, no field appears twice,
//     and no unknown field appears (an unknown field could carry protection
//     semantics this version does not understand).
//
// Every other malformation gives an error wrapping slashing.ErrInvalidInput
// whose message names the field path, e.g. "data[2].signed_blocks[0].slot".
// Slashable content is not checked here; Import does that.
func DecodeInterchange(data []byte) (*Interchange, error) {
	if len(data) > MaxInterchangeBytes {
		return nil, fmt.Errorf("%w: interchange is %d bytes, limit is %d", slashing.ErrInvalidInput, len(data), MaxInterchangeBytes)
	}
	p := &icParser{dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	ic := &Interchange{}
	var haveMeta, haveData bool
	err := p.object("interchange", func(key, path string) error {
		switch key {
		case "metadata":
			haveMeta = true
			return p.metadata(path, ic)
		case "data":
			haveData = true
			return p.array(path, func(i int, path string) error {
				rec, err := p.record(path)
				if err == nil {
					ic.Data = append(ic.Data, rec)
				}
				return err
			})
		}
		return unknownField(path)
	})
	if err != nil {
		return nil, err
	}
	if !haveMeta {
		return nil, missing("interchange.metadata")
	}
	if !haveData {
		return nil, missing("interchange.data")
	}
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: interchange: unexpected data after the top-level object", slashing.ErrInvalidInput)
	}
	return ic, nil
}

// icParser walks the JSON token stream, keeping field paths for errors.
type icParser struct {
	dec *json.Decoder
}

func (p *icParser) token(path string) (json.Token, error) {
	t, err := p.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %s: malformed JSON: %v", slashing.ErrInvalidInput, path, err)
	}
	return t, nil
}

// describe names a token's JSON type for error messages.
func describe(t json.Token) string {
	switch v := t.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	}
	return "an unexpected token"
}

func wrongType(path, want string, t json.Token) error {
	return fmt.Errorf("%w: %s: want %s, got %s", slashing.ErrInvalidInput, path, want, describe(t))
}

func unknownField(path string) error {
	return fmt.Errorf("%w: %s: unknown field", slashing.ErrInvalidInput, path)
}

func missing(path string) error {
	return fmt.Errorf("%w: %s: required field missing", slashing.ErrInvalidInput, path)
}

// object reads a JSON object, calling field for each member; field must
// consume the member's value. Duplicate member names are refused.
func (p *icParser) object(path string, field func(key, path string) error) error {
	t, err := p.token(path)
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return wrongType(path, "an object", t)
	}
	var seen []string
	for p.dec.More() {
		kt, err := p.token(path)
		if err != nil {
			return err
		}
		key, ok := kt.(string)
		if !ok {
			return wrongType(path, "a member name", kt)
		}
		sub := path + "." + key
		if slices.Contains(seen, key) {
			return fmt.Errorf("%w: %s: duplicate field", slashing.ErrInvalidInput, sub)
		}
		seen = append(seen, key)
		if err := field(key, sub); err != nil {
			return err
		}
	}
	_, err = p.token(path) // the closing '}'
	return err
}

// array reads a JSON array, calling elem for each element.
func (p *icParser) array(path string, elem func(i int, path string) error) error {
	t, err := p.token(path)
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return wrongType(path, "an array", t)
	}
	for i := 0; p.dec.More(); i++ {
		if err := elem(i, path+"["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	_, err = p.token(path) // the closing ']'
	return err
}

// str reads a JSON string.
func (p *icParser) str(path string) (string, error) {
	t, err := p.token(path)
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", wrongType(path, "a string", t)
	}
	return s, nil
}

func (p *icParser) decimal(path string) (uint64, error) {
	s, err := p.str(path)
	if err != nil {
		return 0, err
	}
	v, err := parseDecimal(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", slashing.ErrInvalidInput, path, err)
	}
	return v, nil
}

// parseDecimal parses a canonical unsigned decimal: digits only, no leading
// zero unless the value is 0, at most MaxUint64.
func parseDecimal(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty decimal string")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal string", clip(s))
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", clip(s))
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q does not fit in 64 bits", clip(s))
	}
	return v, nil
}

func (p *icParser) hexField(path string, dst []byte) error {
	s, err := p.str(path)
	if err != nil {
		return err
	}
	if err := parseHex(s, dst); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func (p *icParser) metadata(path string, ic *Interchange) error {
	var haveVersion, haveGVR bool
	err := p.object(path, func(key, path string) error {
		switch key {
		case "interchange_format_version":
			haveVersion = true
			v, err := p.str(path)
			if err != nil {
				return err
			}
			if v != InterchangeFormatVersion {
				return fmt.Errorf("%w: %s: %q (this signer reads version %q)",
					slashing.ErrUnsupportedVersion, path, clip(v), InterchangeFormatVersion)
			}
			return nil
		case "genesis_validators_root":
			haveGVR = true
			return p.hexField(path, ic.GenesisValidatorsRoot[:])
		}
		return unknownField(path)
	})
	if err != nil {
		return err
	}
	if !haveVersion {
		return missing(path + ".interchange_format_version")
	}
	if !haveGVR {
		return missing(path + ".genesis_validators_root")
	}
	return nil
}

func (p *icParser) record(path string) (InterchangeRecord, error) {
	rec := InterchangeRecord{}
	var havePK, haveBlocks, haveAtts bool
	err := p.object(path, func(key, path string) error {
		switch key {
		case "pubkey":
			havePK = true
			return p.hexField(path, rec.Pubkey[:])
		case "signed_blocks":
			haveBlocks = true
			return p.array(path, func(i int, path string) error {
				b, err := p.block(path)
				if err == nil {
					rec.SignedBlocks = append(rec.SignedBlocks, b)
				}
				return err
			})
		case "signed_attestations":
			haveAtts = true
			return p.array(path, func(i int, path string) error {
				a, err := p.attestation(path)
				if err == nil {
					rec.SignedAttestations = append(rec.SignedAttestations, a)
				}
				return err
			})
		}
		return unknownField(path)
	})
	switch {
	case err != nil:
		return rec, err
	case !havePK:
		return rec, missing(path + ".pubkey")
	case !haveBlocks:
		return rec, missing(path + ".signed_blocks")
	case !haveAtts:
		return rec, missing(path + ".signed_attestations")
	}
	return rec, nil
}

func (p *icParser) signingRoot(path string, dst *SigningRoot) error {
	if err := p.hexField(path, dst.Value[:]); err != nil {
		return err
	}
	dst.Present = true
	return nil
}

func (p *icParser) block(path string) (SignedBlock, error) {
	var b SignedBlock
	var haveSlot bool
	err := p.object(path, func(key, path string) error {
		var err error
		switch key {
		case "slot":
			haveSlot = true
			b.Slot, err = p.decimal(path)
			return err
		case "signing_root":
			return p.signingRoot(path, &b.SigningRoot)
		}
		return unknownField(path)
	})
	if err == nil && !haveSlot {
		err = missing(path + ".slot")
	}
	return b, err
}

func (p *icParser) attestation(path string) (SignedAttestation, error) {
	var a SignedAttestation
	var haveSource, haveTarget bool
	err := p.object(path, func(key, path string) error {
		var err error
		switch key {
		case "source_epoch":
			haveSource = true
			a.SourceEpoch, err = p.decimal(path)
			return err
		case "target_epoch":
			haveTarget = true
			a.TargetEpoch, err = p.decimal(path)
			return err
		case "signing_root":
			return p.signingRoot(path, &a.SigningRoot)
		}
		return unknownField(path)
	})
	switch {
	case err != nil:
	case !haveSource:
		err = missing(path + ".source_epoch")
	case !haveTarget:
		err = missing(path + ".target_epoch")
	}
	return a, err
}

// JSON shapes for EncodeInterchange.
type (
	jsonInterchange struct {
		Metadata jsonMetadata `json:"metadata"`
		Data     []jsonRecord `json:"data"`
	}
	jsonMetadata struct {
		Version string `json:"interchange_format_version"`
		GVR     string `json:"genesis_validators_root"`
	}
	jsonRecord struct {
		Pubkey             string            `json:"pubkey"`
		SignedBlocks       []jsonBlock       `json:"signed_blocks"`
		SignedAttestations []jsonAttestation `json:"signed_attestations"`
	}
	jsonBlock struct {
		Slot        string `json:"slot"`
		SigningRoot string `json:"signing_root,omitempty"`
	}
	jsonAttestation struct {
		SourceEpoch string `json:"source_epoch"`
		TargetEpoch string `json:"target_epoch"`
		SigningRoot string `json:"signing_root,omitempty"`
	}
)

func rootField(r SigningRoot) string {
	if !r.Present {
		return ""
	}
	return r.Value.String()
}

// EncodeInterchange renders ic as an EIP-3076 version 5 document, indented,
// with absent signing roots omitted. The output is a deterministic function
// of ic and DecodeInterchange reads it back to an equal value.
func EncodeInterchange(ic *Interchange) ([]byte, error) {
	if ic == nil {
		return nil, fmt.Errorf("%w: nil interchange", slashing.ErrInvalidInput)
	}
	out := jsonInterchange{
		Metadata: jsonMetadata{Version: InterchangeFormatVersion, GVR: ic.GenesisValidatorsRoot.String()},
		Data:     make([]jsonRecord, 0, len(ic.Data)),
	}
	for _, rec := range ic.Data {
		jr := jsonRecord{
			Pubkey:             rec.Pubkey.String(),
			SignedBlocks:       make([]jsonBlock, 0, len(rec.SignedBlocks)),
			SignedAttestations: make([]jsonAttestation, 0, len(rec.SignedAttestations)),
		}
		for _, b := range rec.SignedBlocks {
			jr.SignedBlocks = append(jr.SignedBlocks, jsonBlock{Slot: u(b.Slot), SigningRoot: rootField(b.SigningRoot)})
		}
		for _, a := range rec.SignedAttestations {
			jr.SignedAttestations = append(jr.SignedAttestations, jsonAttestation{
				SourceEpoch: u(a.SourceEpoch), TargetEpoch: u(a.TargetEpoch), SigningRoot: rootField(a.SigningRoot),
			})
		}
		out.Data = append(out.Data, jr)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("eth: encode interchange: %w", err)
	}
	return append(b, '\n'), nil
}

// Import merges the interchange into the history of chain gvr. It is atomic:
// on any error the State is unchanged.
//
//   - ic.GenesisValidatorsRoot must equal gvr, else slashing.ErrGenesisMismatch.
//   - Entries naming the same pubkey are merged.
//   - Records are merged into each key's retained history. An exact
//     duplicate of a retained or imported record (same slot, or same source
//     and target, and the same root or both roots absent) is a no-op. Any
//     record that is slashable with the retained history or with another
//     record of the document (see the package documentation) refuses the
//     whole import with slashing.ErrSlashableImport; the message names the
//     data path of an imported record of the offending pair.
//   - Each key's floors become max(floors, minimum of the key's imported
//     slots / sources / targets) — EIP-3076 conditions 2, 4, 5 — and records
//     below them are folded, as is any excess over the Options caps.
//
// Records may come in any order; each key's records are sorted and merged
// with its history in O(n log n).
func (s *State) Import(ic *Interchange, gvr Root) error {
	if ic == nil {
		return fmt.Errorf("%w: nil interchange", slashing.ErrInvalidInput)
	}
	if ic.GenesisValidatorsRoot != gvr {
		return fmt.Errorf("%w: interchange is for %s, this chain is %s",
			slashing.ErrGenesisMismatch, ic.GenesisValidatorsRoot, gvr)
	}
	// Group the document's records by key, remembering where each came from.
	var order []Pubkey
	byKey := make(map[Pubkey]*importKey)
	for di, rec := range ic.Data {
		ik := byKey[rec.Pubkey]
		if ik == nil {
			ik = &importKey{pk: rec.Pubkey}
			byKey[rec.Pubkey] = ik
			order = append(order, rec.Pubkey)
		}
		for bi, b := range rec.SignedBlocks {
			ik.blocks = append(ik.blocks, importedBlock{rec: blockRec{slot: b.Slot, root: b.SigningRoot}, at: recordPos{di, bi}})
		}
		for ai, a := range rec.SignedAttestations {
			if a.SourceEpoch > a.TargetEpoch {
				return fmt.Errorf("%w: data[%d].signed_attestations[%d] (pubkey %s): source epoch %d is after target epoch %d",
					slashing.ErrSlashableImport, di, ai, rec.Pubkey, a.SourceEpoch, a.TargetEpoch)
			}
			ik.atts = append(ik.atts, importedAtt{rec: attRec{source: a.SourceEpoch, target: a.TargetEpoch, root: a.SigningRoot}, at: recordPos{di, ai}})
		}
	}
	// Stage every key; nothing is applied until all are known good.
	staged := make([]*keyState, 0, len(order))
	for _, pk := range order {
		ik := byKey[pk]
		old := s.lookup(gvr, pk)
		if old == nil {
			old = &keyState{}
		}
		ks := &keyState{blockFloor: old.blockFloor, srcFloor: old.srcFloor, tgtFloor: old.tgtFloor, flags: old.flags}
		var err error
		if ks.blocks, err = mergeBlocks(old.blocks, ik.blocks); err != nil {
			return fmt.Errorf("%w: %v", slashing.ErrSlashableImport, withKey(err, pk))
		}
		if ks.atts, err = mergeAtts(old.atts, ik.atts); err != nil {
			return fmt.Errorf("%w: %v", slashing.ErrSlashableImport, withKey(err, pk))
		}
		if len(ik.blocks) > 0 {
			minSlot := ik.blocks[0].rec.slot
			for _, b := range ik.blocks {
				minSlot = min(minSlot, b.rec.slot)
			}
			ks.raiseBlockFloor(minSlot)
		}
		if len(ik.atts) > 0 {
			minSrc, minTgt := ik.atts[0].rec.source, ik.atts[0].rec.target
			for _, a := range ik.atts {
				minSrc, minTgt = min(minSrc, a.rec.source), min(minTgt, a.rec.target)
			}
			ks.raiseAttFloors(minSrc, minTgt)
		}
		ks.foldBelowFloors()
		ks.capBlocks(s.opts.MaxBlocks)
		ks.capAtts(s.opts.MaxAttestations)
		ks.blocks = slices.Clip(ks.blocks)
		ks.atts = slices.Clip(ks.atts)
		staged = append(staged, ks)
	}
	// Nothing below can fail: commit.
	for i, pk := range order {
		ik := byKey[pk]
		if len(ik.blocks) == 0 && len(ik.atts) == 0 {
			continue // entries with no records change nothing
		}
		c, _ := s.ensure(gvr, pk)
		c.keys[pk] = staged[i]
		c.hw = c.hw.merge(staged[i].highWater())
	}
	return nil
}

// recordPos locates an imported record: data[entry].signed_*[index].
type recordPos struct{ entry, index int }

func (p recordPos) before(q recordPos) bool {
	return p.entry < q.entry || (p.entry == q.entry && p.index < q.index)
}

type importedBlock struct {
	rec blockRec
	at  recordPos
}

type importedAtt struct {
	rec attRec
	at  recordPos
}

type importKey struct {
	pk     Pubkey
	blocks []importedBlock
	atts   []importedAtt
}

// importError is a slashable pair found while merging; path names the
// imported record reported.
type importError struct {
	path string
	msg  string
}

func (e *importError) Error() string { return e.path + ": " + e.msg }

func withKey(err error, pk Pubkey) error {
	var ie *importError
	if errors.As(err, &ie) {
		return fmt.Errorf("%s (pubkey %s): %s", ie.path, pk, ie.msg)
	}
	return err
}

// mergeBlocks merges imported blocks (any order) into the retained blocks
// (sorted, unique) and returns the merged, sorted, unique list, or the first
// conflict: two records at one slot that are not the same record.
func mergeBlocks(retained []blockRec, imp []importedBlock) ([]blockRec, error) {
	if len(imp) == 0 {
		return slices.Clone(retained), nil
	}
	imp = slices.Clone(imp)
	slices.SortStableFunc(imp, func(a, b importedBlock) int { return cmpU64(a.rec.slot, b.rec.slot) })
	out := make([]blockRec, 0, len(retained)+len(imp))
	i, j := 0, 0
	for i < len(retained) || j < len(imp) {
		var x blockRec
		var from *importedBlock
		if j >= len(imp) || (i < len(retained) && retained[i].slot <= imp[j].rec.slot) {
			x = retained[i] // retained first on equal slots
			i++
		} else {
			x, from = imp[j].rec, &imp[j]
			j++
		}
		if n := len(out); n > 0 && out[n-1].slot == x.slot {
			if out[n-1].root.sameRecord(x.root) {
				continue
			}
			// x is imported: retained slots are unique and come first.
			return nil, &importError{
				path: fmt.Sprintf("data[%d].signed_blocks[%d]", from.at.entry, from.at.index),
				msg:  fmt.Sprintf("double proposal: slot %d signed with root %s and with root %s", x.slot, out[n-1].root, x.root),
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// mergeAtts merges imported votes into the retained votes and checks that
// the result is slashing-free: unique targets (identical duplicates merge)
// and sources that never decrease along targets. A decrease between two
// neighbours is a surround of one by the other; any slashable pair in the
// union shows up as one of these two defects between neighbours.
func mergeAtts(retained []attRec, imp []importedAtt) ([]attRec, error) {
	if len(imp) == 0 {
		return slices.Clone(retained), nil
	}
	imp = slices.Clone(imp)
	slices.SortStableFunc(imp, func(a, b importedAtt) int { return cmpU64(a.rec.target, b.rec.target) })
	out := make([]attRec, 0, len(retained)+len(imp))
	var lastFrom *importedAtt // the import that produced out[len-1], nil if retained
	i, j := 0, 0
	for i < len(retained) || j < len(imp) {
		var x attRec
		var from *importedAtt
		if j >= len(imp) || (i < len(retained) && retained[i].target <= imp[j].rec.target) {
			x = retained[i]
			i++
		} else {
			x, from = imp[j].rec, &imp[j]
			j++
		}
		n := len(out)
		if n == 0 {
			out, lastFrom = append(out, x), from
			continue
		}
		y := out[n-1]
		if y.target == x.target {
			if y.source == x.source && y.root.sameRecord(x.root) {
				continue
			}
			return nil, &importError{
				path: attPath(from),
				msg: fmt.Sprintf("double vote: target epoch %d signed as (source %d, root %s) and as (source %d, root %s)",
					x.target, y.source, y.root, x.source, x.root),
			}
		}
		if x.source < y.source {
			// Report the later of the two imported records (x if y is retained).
			rep := from
			if rep == nil || (lastFrom != nil && rep.at.before(lastFrom.at)) {
				rep = lastFrom
			}
			return nil, &importError{
				path: attPath(rep),
				msg: fmt.Sprintf("surround vote: (source %d, target %d) surrounds (source %d, target %d)",
					x.source, x.target, y.source, y.target),
			}
		}
		out, lastFrom = append(out, x), from
	}
	return out, nil
}

func attPath(a *importedAtt) string {
	return fmt.Sprintf("data[%d].signed_attestations[%d]", a.at.entry, a.at.index)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Export returns the complete interchange for chain gvr: for each requested
// key with history (all keys when keys is empty), every retained block and
// attestation with its signing root where known, sorted by pubkey, slot and
// target. Keys without history are left out.
//
// Watermarks that no retained record stands for are exported as one
// synthetic record without a signing root at the floor — (block floor) and
// (source floor, target floor) — so that an EIP-3076 importer, which refuses
// anything at or below the minimum it imports, is at least as strict as this
// State. Importing the export into an empty State yields the same decisions.
func (s *State) Export(gvr Root, keys []Pubkey) *Interchange {
	if len(keys) == 0 {
		keys = s.Keys(gvr)
	} else {
		keys = slices.Clone(keys)
		slices.SortFunc(keys, func(a, b Pubkey) int { return bytes.Compare(a[:], b[:]) })
		keys = slices.Compact(keys)
	}
	ic := &Interchange{GenesisValidatorsRoot: gvr, Data: []InterchangeRecord{}}
	for _, pk := range keys {
		ks := s.lookup(gvr, pk)
		if ks == nil {
			continue
		}
		rec := InterchangeRecord{
			Pubkey:             pk,
			SignedBlocks:       make([]SignedBlock, 0, len(ks.blocks)+1),
			SignedAttestations: make([]SignedAttestation, 0, len(ks.atts)+1),
		}
		if ks.flags&flagBlockFloor != 0 && (len(ks.blocks) == 0 || ks.blocks[0].slot != ks.blockFloor) {
			rec.SignedBlocks = append(rec.SignedBlocks, SignedBlock{Slot: ks.blockFloor})
		}
		for _, b := range ks.blocks {
			rec.SignedBlocks = append(rec.SignedBlocks, SignedBlock{Slot: b.slot, SigningRoot: b.root})
		}
		if ks.flags&flagAttFloor != 0 && (len(ks.atts) == 0 || ks.atts[0].target != ks.tgtFloor) {
			rec.SignedAttestations = append(rec.SignedAttestations,
				SignedAttestation{SourceEpoch: ks.srcFloor, TargetEpoch: ks.tgtFloor})
		}
		for _, a := range ks.atts {
			rec.SignedAttestations = append(rec.SignedAttestations,
				SignedAttestation{SourceEpoch: a.source, TargetEpoch: a.target, SigningRoot: a.root})
		}
		ic.Data = append(ic.Data, rec)
	}
	return ic
}
