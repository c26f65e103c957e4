package fschain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldseal/fieldseal/wire"
)

// ExportFormat is the value of an export's format field.
const ExportFormat = "fs1/export"

// Export is a device's log as handed to `fieldseal log verify`: the stored entries from a
// base head, the claimed head and seal, and optionally the anchor receipts the device kept.
// With the receipts and the server's public key it is a self-contained evidence bundle.
//
// Two encodings carry the same fields (docs/PROTOCOL.md, "Export"): a deterministic CBOR
// map with the integer keys below, or a JSON object with the json names and bytes as
// lowercase hex — whichever the writer finds easier (the MicroPython guard has json).
type Export struct {
	Format   string       `cbor:"0,keyasint"` // ExportFormat
	Dev      string       `cbor:"1,keyasint"`
	Epoch    uint32       `cbor:"2,keyasint"`
	BaseN    uint64       `cbor:"3,keyasint"`
	BaseH    []byte       `cbor:"4,keyasint"` // 32 bytes; h_0 when BaseN = 0
	Entries  []wire.Entry `cbor:"5,keyasint"` // BaseN+1 .. N
	N        uint64       `cbor:"6,keyasint"`
	Head     []byte       `cbor:"7,keyasint"` // h_N
	Seal     []byte       `cbor:"8,keyasint"` // seal_N
	Receipts [][]byte     `cbor:"9,keyasint,omitempty"`
	// Summary and Latched are what the device's state slot says at export time: its
	// latched tamper flags and the latched tamper summary (first tamper entry since the
	// last clear token, counts per type). They are the device's own account, kept until a
	// clear token; the chain does not sign them (see CheckExport).
	Summary *wire.TamperSummary `cbor:"10,keyasint,omitempty"`
	Latched uint32              `cbor:"11,keyasint,omitempty"`
}

type jsonSummary struct {
	FirstN    uint64            `json:"first_n"`
	FirstType uint16            `json:"first_type"`
	FirstT    uint64            `json:"first_t"`
	FirstWhat string            `json:"first_what,omitempty"`
	Counts    map[uint16]uint32 `json:"counts,omitempty"`
	LastN     uint64            `json:"last_n,omitempty"`
}

type jsonEntry struct {
	N       uint64        `json:"n"`
	T       uint64        `json:"t"`
	Type    uint16        `json:"type"`
	Payload wire.HexBytes `json:"payload"`
	Tag     wire.HexBytes `json:"tag"`
}

type jsonExport struct {
	Format   string          `json:"format"`
	Dev      string          `json:"dev"`
	Epoch    uint32          `json:"epoch"`
	BaseN    uint64          `json:"base_n"`
	BaseH    wire.HexBytes   `json:"base_h"`
	Entries  []jsonEntry     `json:"entries"`
	N        uint64          `json:"n"`
	Head     wire.HexBytes   `json:"head"`
	Seal     wire.HexBytes   `json:"seal"`
	Receipts []wire.HexBytes `json:"receipts,omitempty"`
	Summary  *jsonSummary    `json:"tamper_summary,omitempty"`
	Latched  uint32          `json:"latched,omitempty"`
}

// Export returns the stored log (from the base) with the claimed head and seal. Add the
// device's kept receipts to Receipts before writing it out.
func (w *Writer) Export() *Export {
	seg := w.Segment()
	return &Export{Format: ExportFormat, Dev: w.s.Dev, Epoch: w.s.Epoch, BaseN: w.s.BaseN, BaseH: cp(w.s.BaseH[:]),
		Entries: seg.Entries, N: seg.N, Head: seg.Head, Seal: seg.Seal}
}

// Segment is the export's log part, as Verify takes it.
func (x *Export) Segment() wire.Segment {
	return wire.Segment{First: x.BaseN + 1, Entries: x.Entries, N: x.N, Head: x.Head, Seal: x.Seal}
}

// EncodeCBOR encodes the export in deterministic CBOR.
func (x *Export) EncodeCBOR() ([]byte, error) {
	if x.Entries == nil {
		y := *x
		y.Entries = []wire.Entry{}
		x = &y
	}
	return wire.Marshal(x)
}

// EncodeJSON encodes the export as JSON with hex bytes.
func (x *Export) EncodeJSON() ([]byte, error) {
	j := jsonExport{Format: x.Format, Dev: x.Dev, Epoch: x.Epoch, BaseN: x.BaseN, BaseH: x.BaseH,
		Entries: make([]jsonEntry, len(x.Entries)), N: x.N, Head: x.Head, Seal: x.Seal}
	for i, e := range x.Entries {
		j.Entries[i] = jsonEntry{N: e.N, T: e.T, Type: e.Type, Payload: e.Payload, Tag: e.Tag}
	}
	for _, r := range x.Receipts {
		j.Receipts = append(j.Receipts, r)
	}
	if m := x.Summary; m != nil {
		j.Summary = &jsonSummary{FirstN: m.FirstN, FirstType: m.FirstType, FirstT: m.FirstT, FirstWhat: m.FirstWhat, Counts: m.Counts, LastN: m.LastN}
	}
	j.Latched = x.Latched
	return json.MarshalIndent(&j, "", " ")
}

// MaxExportSize bounds what DecodeExport accepts.
const MaxExportSize = 64 << 20

// DecodeExport reads an export in either encoding (JSON if it starts with '{').
func DecodeExport(b []byte) (*Export, error) {
	if len(b) > MaxExportSize {
		return nil, fmt.Errorf("%w: export is %d bytes, limit %d", wire.ErrOversize, len(b), MaxExportSize)
	}
	var x Export
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		var j jsonExport
		d := json.NewDecoder(bytes.NewReader(t))
		d.DisallowUnknownFields()
		if err := d.Decode(&j); err != nil {
			return nil, fmt.Errorf("%w: export JSON: %v", wire.ErrMalformed, err)
		}
		if d.More() {
			return nil, fmt.Errorf("%w: trailing data after the export", wire.ErrMalformed)
		}
		x = Export{Format: j.Format, Dev: j.Dev, Epoch: j.Epoch, BaseN: j.BaseN, BaseH: j.BaseH,
			Entries: make([]wire.Entry, len(j.Entries)), N: j.N, Head: j.Head, Seal: j.Seal}
		for i, e := range j.Entries {
			x.Entries[i] = wire.Entry{N: e.N, T: e.T, Type: e.Type, Payload: e.Payload, Tag: e.Tag}
		}
		for _, r := range j.Receipts {
			x.Receipts = append(x.Receipts, r)
		}
		if m := j.Summary; m != nil {
			x.Summary = &wire.TamperSummary{FirstN: m.FirstN, FirstType: m.FirstType, FirstT: m.FirstT, FirstWhat: m.FirstWhat, Counts: m.Counts, LastN: m.LastN}
		}
		x.Latched = j.Latched
	} else if err := wire.Unmarshal(b, &x); err != nil {
		return nil, err
	}
	if x.Format != ExportFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", wire.ErrUnsupported, x.Format, ExportFormat)
	}
	if !wire.ValidDeviceID(x.Dev) {
		return nil, fmt.Errorf("%w: invalid device id %q", wire.ErrMalformed, x.Dev)
	}
	if len(x.BaseH) != 32 {
		return nil, fmt.Errorf("%w: base_h is %d bytes", wire.ErrMalformed, len(x.BaseH))
	}
	return &x, nil
}

// MaxKeyDerivation bounds how many evolutions CheckExport runs to reach K_{base_n+1} from
// K_1 (about 10 s of hashing), so a crafted export cannot stall the checker.
const MaxKeyDerivation = 1 << 26

// CheckOptions says what an offline check can use beyond the export itself.
type CheckOptions struct {
	ChainKey  *Key              // K_1, exported by the operator for an auditor: check every tag and the seal
	ServerPub ed25519.PublicKey // checks the receipts' signatures
	Receipts  [][]byte          // receipts besides those inside the export
}

// ReceiptCheck is one receipt checked against the log.
type ReceiptCheck struct {
	N, Time uint64
	Pruned  bool // covers an entry before the export's base: signature checked, head not
}

// TamperEvent is a tamper-class entry of the log, for the verdict.
type TamperEvent struct {
	Entry   wire.Entry
	Summary string
	LaterOK bool // code events only: a later check-ok or clean boot shows the files matching again
	Cleared bool // a later tamper-cleared entry records an inspection
}

// CheckResult is the outcome of CheckExport.
type CheckResult struct {
	Err         *VerifyError // the first failure, nil if the log checks out
	Entries     int
	HeadsOK     bool // the head chain from the base reproduces the claimed head
	TagsChecked bool // every tag and the seal verified under keys derived from K_1
	Receipts    []ReceiptCheck
	Unchecked   int    // receipts present but not checked (no server key)
	Covered     uint64 // highest entry a verified receipt vouches for
	Tamper      []TamperEvent
	// KeyMismatch: the given K_1 does not belong to this log. No entry's tag and not the
	// seal verify under keys derived from it, while the head chain holds: an operator's
	// mistake (another device's key), not evidence. (A thief re-tagging entries with a
	// stolen later key still leaves the entries before the theft verifying, or holds the
	// current key and so makes the seal verify.)
	KeyMismatch bool
}

// CheckExport runs the offline check of fschain.md ("Offline check"): the head chain from
// the base, every receipt against it, and with K_1 every tag and the seal. It reports the
// first failure by name and sequence number and lists the tamper-class entries. It returns
// an error only for input it cannot check at all.
func CheckExport(x *Export, opt CheckOptions) (*CheckResult, error) {
	if !wire.ValidDeviceID(x.Dev) || len(x.BaseH) != 32 {
		return nil, fmt.Errorf("%w: export without a valid device id and base head", wire.ErrMalformed)
	}
	res := &CheckResult{Entries: len(x.Entries)}
	var base Hash
	copy(base[:], x.BaseH)
	if x.BaseN == 0 && base != GenesisHead(x.Dev, x.Epoch) {
		res.Err = verr(NameFork, 0, "base head is not h_0 of %s epoch %d", x.Dev, x.Epoch)
		return res, nil
	}
	a := Anchor{Dev: x.Dev, Epoch: x.Epoch, N: x.BaseN, Head: base}
	var err error
	if opt.ChainKey != nil {
		if x.BaseN > MaxKeyDerivation {
			return nil, fmt.Errorf("%w: base_n %d: deriving K_%d from K_1 would take too long", wire.ErrUnsupported, x.BaseN, x.BaseN+1)
		}
		a.NextKey = KeyAt(*opt.ChainKey, x.BaseN+1)
		_, _, err = Verify(a, x.Segment(), nil)
		res.TagsChecked = err == nil
		if err != nil && !matchesKey(x, base, a.NextKey) {
			if _, _, herr := VerifyHeads(Anchor{Dev: x.Dev, Epoch: x.Epoch, N: x.BaseN, Head: base}, x.Segment(), nil); herr == nil {
				res.KeyMismatch = true
				return res, nil
			}
		}
	} else {
		_, _, err = VerifyHeads(a, x.Segment(), nil)
	}
	if err != nil {
		var ve *VerifyError
		if !errors.As(err, &ve) {
			return nil, err
		}
		res.Err = ve
	} else {
		res.HeadsOK = true
	}
	res.Tamper = tamperEvents(x.Entries)
	if res.Err != nil {
		return res, nil
	}
	// Receipts: each must agree with the head chain at its n.
	heads := make([]Hash, len(x.Entries))
	c := newChain(x.Dev, x.Epoch)
	h := base
	for i := range x.Entries {
		e := &x.Entries[i]
		h = c.headOf(&h, e.N, e.T, e.Type, e.Payload, e.Tag)
		heads[i] = h
	}
	all := append(append([][]byte(nil), x.Receipts...), opt.Receipts...)
	for _, data := range all {
		if opt.ServerPub == nil {
			res.Unchecked++
			continue
		}
		r, err := VerifyReceipt(data, opt.ServerPub, x.Dev, x.Epoch)
		if err != nil {
			res.Err = verr(NameBadReceipt, 0, "%v", err)
			return res, nil
		}
		var rh Hash
		copy(rh[:], r.Head)
		switch {
		case r.N > x.N:
			res.Err = verr(NameRollback, x.N, "the server verified entries up to %d, the log ends at %d", r.N, x.N)
			return res, nil
		case r.N < x.BaseN:
			res.Receipts = append(res.Receipts, ReceiptCheck{N: r.N, Time: r.Time, Pruned: true})
			continue
		case r.N == x.BaseN && rh != base, r.N > x.BaseN && rh != heads[r.N-x.BaseN-1]:
			res.Err = verr(NameFork, r.N, "the log's head at entry %d is not the one the server verified", r.N)
			return res, nil
		}
		res.Receipts = append(res.Receipts, ReceiptCheck{N: r.N, Time: r.Time})
		res.Covered = max(res.Covered, r.N)
	}
	return res, nil
}

// matchesKey reports whether any entry's tag, or the seal, verifies under the keys that
// follow k (= K_{base+1}).
func matchesKey(x *Export, base Hash, k Key) bool {
	c := newChain(x.Dev, x.Epoch)
	h := base
	for i := range x.Entries {
		e := &x.Entries[i]
		if tag, _ := c.step(&k, &h, e.N, e.T, e.Type, e.Payload); hmac.Equal(tag[:], e.Tag) {
			return true
		}
		h = c.headOf(&h, e.N, e.T, e.Type, e.Payload, e.Tag)
		k = Evolve(k)
	}
	var head Hash
	copy(head[:], x.Head)
	seal := c.seal(&k, x.N, &head)
	return hmac.Equal(seal[:], x.Seal)
}

func tamperEvents(es []wire.Entry) []TamperEvent {
	var out []TamperEvent
	for i, e := range es {
		if !wire.IsTamper(e.Type) {
			continue
		}
		ev := TamperEvent{Entry: e, Summary: Summary(e)}
		codeEvent := e.Type == wire.EntryCheckFail || e.Type == wire.EntryRefused || e.Type == wire.EntryErased
		for _, l := range es[i+1:] {
			switch l.Type {
			case wire.EntryCheckOK:
				ev.LaterOK = ev.LaterOK || codeEvent
			case wire.EntryBoot:
				if p, err := wire.DecodePayload(l.Type, l.Payload); err == nil && p.(*wire.BootPayload).Result == "ok" {
					ev.LaterOK = ev.LaterOK || codeEvent
				}
			case wire.EntryTamperCleared:
				ev.Cleared = true
			}
		}
		out = append(out, ev)
	}
	return out
}
