// Package vectors generates the language-neutral FS-chain v1 test vectors of
// testdata/vectors/fschain (README.md there describes the fields). The Go tests check the
// checked-in files are exactly what Generate produces; the MicroPython guard's tests read
// the same files.
package vectors

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// Hex is bytes as lowercase hex in JSON.
type Hex = wire.HexBytes

// Step is one entry of a chain vector with every intermediate value.
type Step struct {
	N           uint64 `json:"n"`
	T           uint64 `json:"t"`
	Type        uint16 `json:"type"`
	TypeName    string `json:"type_name"`
	Payload     Hex    `json:"payload"`
	PayloadHash Hex    `json:"payload_hash"` // H(payload)
	Key         Hex    `json:"key"`          // K_n, the key this entry is tagged under
	MACKey      Hex    `json:"mac_key"`      // H("fs1/mac" || K_n)
	Msg         Hex    `json:"msg"`          // msg_n
	Tag         Hex    `json:"tag"`          // tag_n
	Head        Hex    `json:"head"`         // h_n
	NextKey     Hex    `json:"next_key"`     // K_{n+1}
	Seal        Hex    `json:"seal"`         // seal_n
	Record      Hex    `json:"record"`       // the log-area record (docs/PROTOCOL.md, storage)
}

// Chain is a positive vector: the construction step by step from genesis.
type Chain struct {
	Description string `json:"description"`
	Kind        string `json:"kind"` // "chain"
	Dev         string `json:"dev"`
	Epoch       uint32 `json:"epoch"`
	K1          Hex    `json:"k1"`
	GenesisHead Hex    `json:"genesis_head"` // h_0
	Seal0       Hex    `json:"seal_0"`       // seal_0 under K_1
	Steps       []Step `json:"steps"`
	SegmentCBOR Hex    `json:"segment_cbor"` // wire.Segment of all entries, as in a report
}

// Entry is a wire entry in a verify vector.
type Entry struct {
	N       uint64 `json:"n"`
	T       uint64 `json:"t"`
	Type    uint16 `json:"type"`
	Payload Hex    `json:"payload"`
	Tag     Hex    `json:"tag"`
}

// Segment is a wire.Segment in a verify vector.
type Segment struct {
	First   uint64  `json:"first"`
	Entries []Entry `json:"entries"`
	N       uint64  `json:"n"`
	Head    Hex     `json:"head"`
	Seal    Hex     `json:"seal"`
}

// Anchor is the verifier's state in a verify vector.
type Anchor struct {
	N       uint64 `json:"n"`
	Head    Hex    `json:"head"`
	NextKey Hex    `json:"next_key"`
}

// Want is a verify vector's expected outcome: an error name and sequence number, or
// (Error empty) the new anchor and the numbers of the newly verified entries.
type Want struct {
	Error  string   `json:"error"`
	Seq    uint64   `json:"seq"`
	Anchor *Anchor  `json:"anchor,omitempty"`
	Fresh  []uint64 `json:"fresh,omitempty"`
}

// Verify is a verify vector: an anchor, a segment (often mutated) and the outcome.
type Verify struct {
	Description string         `json:"description"`
	Kind        string         `json:"kind"` // "verify"
	Dev         string         `json:"dev"`
	Epoch       uint32         `json:"epoch"`
	K1          Hex            `json:"k1"`
	Mutation    string         `json:"mutation"`
	Anchor      Anchor         `json:"anchor"`
	KnownHeads  map[string]Hex `json:"known_heads"` // heads the verifier stored, by n (decimal)
	Segment     Segment        `json:"segment"`
	SegmentCBOR Hex            `json:"segment_cbor"`
	Want        Want           `json:"want"`
}

const (
	dev   = "meter-0001"
	epoch = 1
	t0    = 1767225600 // 2026-01-01T00:00:00Z
)

// K1 is the first chain key of every vector: bytes 0x00..0x1f.
func K1() fschain.Key {
	var k fschain.Key
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

// entryFor is the i-th (0-based) entry of the vector logs: a mix of real payloads.
func entryFor(i int) (t uint64, typ uint16, payload []byte) {
	t = t0 + uint64(i)*900
	switch i % 8 {
	case 0:
		return t, wire.EntryBoot, wire.MustMarshal(&wire.BootPayload{ResetCause: "power-on", BootCount: uint32(i/8 + 1), ManifestVersion: 3, Root: bytes.Repeat([]byte{0xab}, 32), Result: "ok"})
	case 1:
		return t, wire.EntryCheckOK, wire.MustMarshal(&wire.CheckOKPayload{Files: 12, Root: bytes.Repeat([]byte{0xab}, 32), DurationMS: 840})
	case 2:
		return t, wire.EntryRegister, wire.MustMarshal(&wire.RegisterPayload{Litres: 120000 + uint64(i)*37})
	case 3:
		return t, wire.EntryCheckFail, wire.MustMarshal(&wire.CheckFailPayload{Files: 12, Bad: []wire.BadFile{{Path: "app/metrology.mpy", Kind: wire.KindModified, Expected: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Seen: []byte{8, 7, 6, 5, 4, 3, 2, 1}}}})
	case 4:
		return t, wire.EntryCoverOpen, wire.MustMarshal(&wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
	case 5:
		return t, wire.EntryCoverClose, wire.MustMarshal(&wire.EmptyPayload{})
	case 6:
		return t, wire.EntryServiceBegin, wire.MustMarshal(&wire.ServiceBeginPayload{TokenID: bytes.Repeat([]byte{0x5e}, 16), WorkOrder: "WO-17", Technician: "kim"})
	default:
		return t, wire.EntryRecovered, wire.MustMarshal(&wire.RecoveredPayload{What: "completed entry after a power cut"})
	}
}

type log struct {
	entries []wire.Entry
	heads   []fschain.Hash // heads[n] = h_n, heads[0] = h_0
	keys    []fschain.Key  // keys[n] = K_n (keys[0] unused)
	seals   []fschain.Hash // seals[n] = seal_n
	steps   []Step
}

func build(count int, gen func(i int) (uint64, uint16, []byte)) *log {
	k := K1()
	l := &log{heads: []fschain.Hash{fschain.GenesisHead(dev, epoch)}, keys: []fschain.Key{{}, k}}
	l.seals = []fschain.Hash{fschain.Seal(dev, epoch, k, 0, l.heads[0])}
	for i := 0; i < count; i++ {
		t, typ, p := gen(i)
		n := uint64(i + 1)
		prev := l.heads[n-1]
		tag, head, next, seal := fschain.Step(dev, epoch, k, prev, n, t, typ, p)
		e := wire.Entry{N: n, T: t, Type: typ, Payload: p, Tag: tag[:]}
		ph := sha256.Sum256(p)
		mk := sha256.Sum256(append([]byte("fs1/mac"), k[:]...))
		l.steps = append(l.steps, Step{N: n, T: t, Type: typ, TypeName: wire.EntryName(typ), Payload: p, PayloadHash: ph[:],
			Key: cp(k[:]), MACKey: mk[:], Msg: fschain.Msg(dev, epoch, n, t, typ, prev, p), Tag: tag[:], Head: cp(head[:]),
			NextKey: cp(next[:]), Seal: cp(seal[:]), Record: fschain.EncodeRecord(e)})
		l.entries = append(l.entries, e)
		l.heads = append(l.heads, head)
		l.keys = append(l.keys, next)
		l.seals = append(l.seals, seal)
		k = next
	}
	return l
}

func cp(b []byte) []byte { return append([]byte(nil), b...) }

func (l *log) chain(desc string) *Chain {
	n := uint64(len(l.entries))
	return &Chain{Description: desc, Kind: "chain", Dev: dev, Epoch: epoch, K1: cp(l.keys[1][:]), GenesisHead: cp(l.heads[0][:]),
		Seal0: cp(l.seals[0][:]), Steps: l.steps,
		SegmentCBOR: wire.MustMarshal(l.segment(1, n))}
}

// segment is the honest segment of entries first..last claiming (last, h_last, seal_last).
func (l *log) segment(first, last uint64) *wire.Segment {
	es := []wire.Entry{}
	for n := first; n <= last; n++ {
		e := l.entries[n-1]
		e.Payload, e.Tag = cp(e.Payload), cp(e.Tag)
		es = append(es, e)
	}
	return &wire.Segment{First: first, Entries: es, N: last, Head: cp(l.heads[last][:]), Seal: cp(l.seals[last][:])}
}

func (l *log) anchor(n uint64) Anchor {
	return Anchor{N: n, Head: cp(l.heads[n][:]), NextKey: cp(l.keys[n+1][:])}
}

func (l *log) verify(desc, mutation string, an uint64, seg *wire.Segment, want Want) *Verify {
	known := map[string]Hex{}
	for n := uint64(0); n <= an; n++ {
		known[strconv.FormatUint(n, 10)] = cp(l.heads[n][:])
	}
	v := &Verify{Description: desc, Kind: "verify", Dev: dev, Epoch: epoch, K1: cp(l.keys[1][:]), Mutation: mutation,
		Anchor: l.anchor(an), KnownHeads: known, SegmentCBOR: wire.MustMarshal(seg), Want: want}
	v.Segment = Segment{First: seg.First, Entries: []Entry{}, N: seg.N, Head: seg.Head, Seal: seg.Seal}
	for _, e := range seg.Entries {
		v.Segment.Entries = append(v.Segment.Entries, Entry{N: e.N, T: e.T, Type: e.Type, Payload: e.Payload, Tag: e.Tag})
	}
	return v
}

func fail(name string, seq uint64) Want { return Want{Error: name, Seq: seq} }

func (l *log) ok(an, to uint64, fresh ...uint64) Want {
	a := l.anchor(to)
	return Want{Anchor: &a, Fresh: fresh}
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

// Generate returns every vector file by name.
func Generate() (map[string][]byte, error) {
	files := map[string]any{}
	files["chain-genesis.json"] = build(0, entryFor).chain("genesis only: h_0 and seal_0 of a freshly provisioned device (n = 0)")
	files["chain-1.json"] = build(1, entryFor).chain("one entry (boot)")
	files["chain-100.json"] = build(100, entryFor).chain("100 entries cycling through boot, check-ok, register, check-fail, cover-open, cover-close, service-begin, recovered")
	files["chain-max-payload.json"] = build(3, func(i int) (uint64, uint16, []byte) {
		p := make([]byte, wire.MaxPayload)
		for j := range p {
			p[j] = byte(j + i)
		}
		if i == 1 {
			return t0 + uint64(i), wire.EntryCheckOK, []byte{}
		}
		return t0 + uint64(i), wire.EntryApplication + uint16(i), p
	}).chain("maximum payload (1024 bytes, application types 0x8000 and 0x8002) around an empty payload (0 bytes)")

	l := build(10, entryFor)
	// A different history after entry 3, as a device restored from a flash snapshot taken at n=3 writes it.
	alt := build(9, func(i int) (uint64, uint16, []byte) {
		if i < 3 {
			return entryFor(i)
		}
		return t0 + 100000 + uint64(i), wire.EntryCheckOK, wire.MustMarshal(&wire.CheckOKPayload{Files: 12})
	})
	type vec struct {
		name string
		v    *Verify
	}
	var vs []vec
	add := func(name string, v *Verify) { vs = append(vs, vec{name, v}) }

	add("verify-ok-incremental", l.verify("honest segment 4..10 after an anchor at 3", "none", 3, l.segment(4, 10), l.ok(3, 10, seq(4, 10)...)))
	add("verify-ok-resend", l.verify("honest segment 1..10 resent after an anchor at 5: entries 1..5 are checked against the known heads and not returned", "none", 5, l.segment(1, 10), l.ok(5, 10, seq(6, 10)...)))
	add("verify-ok-heartbeat", l.verify("no new entries: the device claims the anchor itself", "none", 10, &wire.Segment{First: 11, Entries: []wire.Entry{}, N: 10, Head: cp(l.heads[10][:]), Seal: cp(l.seals[10][:])}, l.ok(10, 10)))
	add("verify-ok-genesis", l.verify("a fresh device reports n = 0 with seal_0", "none", 0, l.segment(1, 0), l.ok(0, 0)))

	s := l.segment(5, 10)
	add("gap-first", l.verify("entry 4 missing at the start", "segment starts at 5 after an anchor at 3", 3, s, fail("gap", 4)))
	s = l.segment(4, 10)
	s.Entries = append(s.Entries[:2], s.Entries[3:]...)
	add("gap-inside", l.verify("entry 6 removed from the middle", "entries 4,5,7,8,9,10 with first = 4", 3, s, fail("gap", 6)))
	s = l.segment(4, 8)
	s.N, s.Head, s.Seal = 10, cp(l.heads[10][:]), cp(l.seals[10][:])
	add("gap-count", l.verify("the device claims n = 10 but sends only up to 8", "entries 4..8, claimed n, head and seal of 10", 3, s, fail("gap", 9)))
	s = l.segment(4, 10)
	s.Entries[1], s.Entries[2] = s.Entries[2], s.Entries[1]
	add("reorder-swap", l.verify("entries 5 and 6 swapped", "order 4,6,5,7,8,9,10", 3, s, fail("reorder", 5)))
	s = l.segment(4, 10)
	s.Entries = append(s.Entries[:3], append([]wire.Entry{s.Entries[1]}, s.Entries[3:]...)...)
	s.Entries = s.Entries[:7]
	add("reorder-duplicate", l.verify("entry 5 sent twice", "order 4,5,6,5,7,8,9", 3, s, fail("reorder", 7)))
	s = &wire.Segment{First: 9, Entries: []wire.Entry{}, N: 8, Head: cp(l.heads[8][:]), Seal: cp(l.seals[8][:])}
	add("rollback-snapshot", l.verify("a device put back to an earlier state (n = 8) after the server verified up to 10 (D12, D13)", "claimed n, head, seal of entry 8; anchor at 10", 10, s, fail("rollback", 8)))
	s = l.segment(3, 10)
	s.Entries[1].T++
	add("fork-resend", l.verify("a resent, already verified entry 4 was altered (its time +1 s)", "segment 3..10, entry 4 time + 1; anchor at 5", 5, s, fail("fork", 4)))
	s = alt.segment(4, 9)
	add("fork-snapshot", l.verify("flash snapshot at n = 3 restored and new entries 4'..9' written with the snapshot's key; the server had verified up to 7 (D13)", "segment 4'..9' of the alternative history; anchor at 7", 7, s, fail("fork", 4)))
	s = l.segment(1, 10)
	s.Entries[5].Payload = wire.MustMarshal(&wire.CoverOpenPayload{Source: wire.CoverSourceLevel})
	add("forged-entry-payload", l.verify("payload of entry 6 replaced, tag kept", "entry 6 payload changed", 0, s, fail("forged-entry", 6)))
	s = forgeWithKey(l, 2, l.keys[11])
	add("forged-entry-stolen-key", l.verify("a thief holding the current key K_11 rewrites the payload of entry 2, re-tags entries 2..10 with K_11 and re-seals (D11)", "entries 2..10 re-tagged under K_11, head and seal recomputed", 0, s, fail("forged-entry", 2)))
	s = l.segment(4, 10)
	s.Head[31] ^= 1
	add("head-mismatch", l.verify("claimed head h_10 with its last bit flipped", "head[31] ^= 1", 3, s, fail("head-mismatch", 10)))
	s = l.segment(4, 8)
	s.Seal = cp(l.seals[10][:])
	add("bad-seal-truncated", l.verify("the unsent tail 9..10 cut off: the device can only offer seal_10, not seal_8 (K_9 is erased) (D12)", "entries 4..8, head h_8, seal_10", 3, s, fail("bad-seal", 8)))
	s = l.segment(4, 10)
	s.Seal[0] ^= 0x80
	add("bad-seal-flipped", l.verify("seal corrupted", "seal[0] ^= 0x80", 3, s, fail("bad-seal", 10)))

	for _, v := range vs {
		files[v.name+".json"] = v.v
	}
	files["export/pruned.json"] = l.export("an export after pruning 1..3, with receipts at 3 (the base) and 8, checked with K_1 and the server key", "none", 3, nil, ExportWant{Covered: 8, Receipts: 2}, ExportWant{Covered: 8, Receipts: 2})
	files["export/truncated.json"] = l.export("an export whose last 2 entries were cut off and whose head was recomputed; the receipt at 10 shows the server had seen them", "entries 9..10 removed, n = 8, head = h_8, seal kept", 3,
		func(x *fschain.Export) {
			x.Entries = x.Entries[:5]
			x.N, x.Head = 8, cp(l.heads[8][:])
		}, ExportWant{Error: "bad-seal", Seq: 8}, ExportWant{Error: "rollback", Seq: 8})
	if err := storageVectors(files); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := json.MarshalIndent(files[n], "", "  ")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out[n] = append(b, '\n')
	}
	return out, nil
}

// ServerSeed is the Ed25519 seed of the server key that signs the vectors' receipts.
var ServerSeed = bytes.Repeat([]byte{0x5e}, 32)

// ExportWant is the expected outcome of checking an export with K_1 and the server key.
type ExportWant struct {
	Error    string `json:"error"`
	Seq      uint64 `json:"seq"`
	Covered  uint64 `json:"covered,omitempty"`  // highest n a receipt vouches for
	Receipts int    `json:"receipts,omitempty"` // receipts that agree with the log
}

// ExportVector is an exported log (docs/PROTOCOL.md, "Export") in both encodings.
type ExportVector struct {
	Description string          `json:"description"`
	Kind        string          `json:"kind"` // "export"
	K1          Hex             `json:"k1"`
	ServerPub   Hex             `json:"server_pub"` // raw 32-byte Ed25519 public key
	Mutation    string          `json:"mutation"`
	ExportCBOR  Hex             `json:"export_cbor"`
	ExportJSON  json.RawMessage `json:"export_json"`
	Want        ExportWant      `json:"want"`        // checked with k1 and server_pub
	WantNoKey   ExportWant      `json:"want_no_key"` // checked with server_pub only (no k1)
}

func (l *log) export(desc, mutation string, base uint64, mut func(*fschain.Export), want, wantNoKey ExportWant) *ExportVector {
	priv := ed25519.NewKeyFromSeed(ServerSeed)
	x := &fschain.Export{Format: fschain.ExportFormat, Dev: dev, Epoch: epoch, BaseN: base, BaseH: cp(l.heads[base][:])}
	seg := l.segment(base+1, uint64(len(l.entries)))
	x.Entries, x.N, x.Head, x.Seal = seg.Entries, seg.N, seg.Head, seg.Seal
	for _, n := range []uint64{base, 8} {
		if n == 8 && mut != nil {
			n = 10
		}
		x.Receipts = append(x.Receipts, wire.SignReceipt(&wire.Receipt{Dev: dev, Epoch: epoch, N: n, Head: cp(l.heads[n][:]), Time: t0 + 86400}, priv))
	}
	if mut != nil {
		mut(x)
	}
	c, err := x.EncodeCBOR()
	if err != nil {
		panic(err)
	}
	j, err := x.EncodeJSON()
	if err != nil {
		panic(err)
	}
	return &ExportVector{Description: desc, Kind: "export", K1: cp(l.keys[1][:]), ServerPub: Hex(priv.Public().(ed25519.PublicKey)),
		Mutation: mutation, ExportCBOR: c, ExportJSON: j, Want: want, WantNoKey: wantNoKey}
}

// forgeWithKey rewrites entry at, re-tags it and all later entries under k (a stolen
// current key), recomputes the heads and re-seals with the evolved key.
func forgeWithKey(l *log, at uint64, k fschain.Key) *wire.Segment {
	s := l.segment(1, uint64(len(l.entries)))
	s.Entries[at-1].Payload = wire.MustMarshal(&wire.CheckOKPayload{Files: 12, DurationMS: 1})
	h := l.heads[at-1]
	for i := at - 1; i < uint64(len(s.Entries)); i++ {
		e := &s.Entries[i]
		tag, head, next, _ := fschain.Step(dev, epoch, k, h, e.N, e.T, e.Type, e.Payload)
		e.Tag = tag[:]
		h, k = head, next
	}
	seal := fschain.Seal(dev, epoch, k, s.N, h)
	s.Head, s.Seal = cp(h[:]), cp(seal[:])
	return s
}
