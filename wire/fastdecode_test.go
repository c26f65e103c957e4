package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Integers at every head-size boundary, for the uint fields.
var fastInts = []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64}

func fastU32(i int) uint32 { return uint32(min(fastInts[i%len(fastInts)], math.MaxUint32)) }

// sampleEntries builds n log entries with real payloads of every entry type, plus odd
// ones (nil/empty payload and tag, large payload, application type).
func sampleEntries(n int) []Entry {
	payloads := [][]byte{
		MustMarshal(BootPayload{ResetCause: "power-on", BootCount: 3, ManifestVersion: 2, Root: make([]byte, 32), Result: "ok"}),
		MustMarshal(CheckOKPayload{Files: 5, Root: make([]byte, 32), DurationMS: 40}),
		MustMarshal(CheckFailPayload{Bad: []BadFile{{Path: "a.mpy", Kind: KindMissing, Expected: make([]byte, 8), Seen: []byte{}}}, Files: 5}),
		MustMarshal(CoverOpenPayload{Source: CoverSourceIRQ}),
		MustMarshal(EmptyPayload{}),
		MustMarshal(MagnetPayload{Strength: 1}),
		MustMarshal(RegisterPayload{Litres: 1 << 40, Flags: FlowBurst}),
		MustMarshal(ErasedPayload{Paths: []string{"x", "y"}}),
		nil,
		{},
		bytes.Repeat([]byte{0x5a}, MaxPayload),
	}
	types := []uint16{EntryBoot, EntryCheckOK, EntryCheckFail, EntryCoverOpen, EntryCoverClose, EntryMagnet, EntryRegister, EntryErased, EntryApplication, math.MaxUint16, 0}
	tags := [][]byte{bytes.Repeat([]byte{0xcd}, 16), nil, {}}
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{N: uint64(i + 1), T: fastInts[i%len(fastInts)], Type: types[i%len(types)], Payload: payloads[i%len(payloads)], Tag: tags[i%len(tags)]}
	}
	return es
}

// sampleReports covers every field of Report: present/absent Nonce and Reading, nil and
// empty slices and byte strings, findings of every kind, entries, integer boundaries.
func sampleReports() []*Report {
	base := func() *Report {
		r := benchReport()
		r.Nonce = nil
		return r
	}
	var rs []*Report
	add := func(f func(r *Report)) {
		r := base()
		f(r)
		rs = append(rs, r)
	}
	add(func(r *Report) {})
	add(func(r *Report) { r.Nonce = bytes.Repeat([]byte{9}, 16) })
	for _, n := range []int{1, 23, 24, 255, 256} {
		add(func(r *Report) { r.Nonce = bytes.Repeat([]byte{byte(n)}, n) })
	}
	add(func(r *Report) { r.Reading = &Reading{} })
	add(func(r *Report) { r.Reading = &Reading{Litres: 123456, Flags: FlowLeak | FlowReverse} })
	add(func(r *Report) {
		r.Reading = &Reading{Litres: math.MaxUint64, Flags: math.MaxUint32}
		r.Nonce = []byte{1}
	})
	for i := range fastInts {
		add(func(r *Report) {
			v := fastInts[i]
			r.Epoch, r.Boot, r.State = fastU32(i), fastU32(i+1), fastU32(i+2)
			r.RSeq, r.Time, r.Man.Version = v, fastInts[(i+1)%len(fastInts)], fastInts[(i+2)%len(fastInts)]
			r.Meas.Status, r.Meas.FilesChecked, r.Meas.LastCheck = uint8(min(v, 255)), fastU32(i+3), v
			r.Log.First, r.Log.N = v, fastInts[(i+3)%len(fastInts)]
		})
	}
	add(func(r *Report) { r.Dev, r.Man.Product = "", "" })
	add(func(r *Report) { r.Dev = "zähler-ü-0001"; r.Man.Product = string(bytes.Repeat([]byte("p"), 300)) })
	add(func(r *Report) { r.Man.Root, r.Log.Head, r.Log.Seal = nil, nil, nil })
	add(func(r *Report) { r.Man.Root, r.Log.Head, r.Log.Seal = []byte{}, []byte{}, []byte{} })
	add(func(r *Report) { r.Meas.Bad, r.Log.Entries = nil, nil })
	add(func(r *Report) {
		r.Meas.Status = MeasMismatch
		r.Meas.Bad = []Finding{{Path: "metrology.mpy", Kind: KindModified}, {Path: "a.mpy", Kind: KindMissing},
			{Path: "lib/x.mpy", Kind: KindExtra}, {Path: "ü.mpy", Kind: KindUnreadable}, {Path: "", Kind: "not-in-manifest"}, {}}
	})
	add(func(r *Report) {
		for i := range 30 {
			r.Meas.Bad = append(r.Meas.Bad, Finding{Path: fmt.Sprintf("f%02d.mpy", i), Kind: KindModified})
		}
	})
	for _, n := range []int{1, 3, 11, 24} {
		add(func(r *Report) {
			r.Log.Entries = sampleEntries(n)
			r.Log.First, r.Log.N = 1, uint64(n)
			r.Reading = &Reading{Litres: uint64(n)}
			r.Nonce = []byte{byte(n)}
		})
	}
	return rs
}

func sampleAcks() []*Ack {
	tok := Mac0([]byte("t"), []byte("meter-0001"), MustMarshal(&Token{Dev: "meter-0001", ID: make([]byte, 16), Action: TokenClear}))
	var as []*Ack
	add := func(f func(a *Ack)) {
		a := benchAck()
		a.Nonce = nil
		f(a)
		as = append(as, a)
	}
	add(func(a *Ack) {})
	add(func(a *Ack) { a.Nonce = bytes.Repeat([]byte{9}, 16) })
	add(func(a *Ack) { a.Nonce = []byte{1}; a.Anchor.Head = nil })
	add(func(a *Ack) { a.Anchor = Anchor{Head: []byte{}} })
	for i := range fastInts {
		add(func(a *Ack) {
			a.Epoch, a.AckedRSeq, a.Anchor.N = fastU32(i), fastInts[i], fastInts[(i+1)%len(fastInts)]
		})
	}
	add(func(a *Ack) { a.Dev = "" })
	add(func(a *Ack) { a.Dev = "meter-0002" })
	add(func(a *Ack) { a.Dev = "zähler" })
	add(func(a *Ack) { a.Receipt = bytes.Repeat([]byte{0x84}, 120) })
	add(func(a *Ack) { a.Commands = [][]byte{tok} })
	add(func(a *Ack) { a.Commands = [][]byte{tok, nil, {}, {1}} })
	add(func(a *Ack) {
		for range 25 {
			a.Commands = append(a.Commands, tok)
		}
	})
	add(func(a *Ack) { a.Reject = ErrBadMAC.Error() })
	add(func(a *Ack) { a.Reject = "ü" })
	add(func(a *Ack) {
		a.Nonce, a.Receipt, a.Commands, a.Reject = []byte{2}, []byte{3}, [][]byte{tok}, "replay"
	})
	return as
}

// samplePayloads are the encoded sample reports and acks plus the payloads of the wire
// vectors.
func samplePayloads() (reports, acks [][]byte) {
	for _, r := range sampleReports() {
		reports = append(reports, MustMarshal(r))
	}
	for _, a := range sampleAcks() {
		acks = append(acks, MustMarshal(a))
	}
	for _, v := range GenerateVectors() {
		switch v.Kind {
		case "report":
			reports = append(reports, mustHex(v.Payload))
		case "ack":
			acks = append(acks, mustHex(v.Payload))
		}
	}
	return reports, acks
}

// checkReportFast is the differential property: if the fast path handles data, Unmarshal
// accepts it with a deeply equal result, and the result re-encodes to data (the fast
// path takes canonical input only); conversely canonical input takes the fast path. It
// reports whether the fast path handled data.
func checkReportFast(t testing.TB, data []byte) bool {
	in := append([]byte(nil), data...)
	fast, ok := decodeReportFast(in)
	var slow Report
	err := Unmarshal(data, &slow)
	if !ok {
		// Completeness, for speed: canonical input must not miss the fast path.
		if err == nil && bytes.Equal(MustMarshal(&slow), data) {
			t.Fatalf("fast path missed canonical %x", data)
		}
		return false
	}
	clear(in) // the result must not alias its input
	if err != nil {
		t.Fatalf("fast path accepted %x, Unmarshal: %v", data, err)
	}
	if !reflect.DeepEqual(fast, &slow) {
		t.Fatalf("fast and Unmarshal decode %x differently:\nfast %#v\nslow %#v", data, fast, &slow)
	}
	if !bytes.Equal(MustMarshal(fast), data) {
		t.Fatalf("fast path accepted non-canonical %x", data)
	}
	return true
}

func checkAckFast(t testing.TB, data []byte, dev string) bool {
	in := append([]byte(nil), data...)
	fast, ok := decodeAckFast(in, dev)
	var slow Ack
	err := Unmarshal(data, &slow)
	if !ok {
		// Completeness, for speed: canonical input must not miss the fast path.
		if err == nil && bytes.Equal(MustMarshal(&slow), data) {
			t.Fatalf("fast path missed canonical %x", data)
		}
		return false
	}
	clear(in)
	if err != nil {
		t.Fatalf("fast path accepted %x, Unmarshal: %v", data, err)
	}
	if !reflect.DeepEqual(fast, &slow) {
		t.Fatalf("fast and Unmarshal decode %x differently:\nfast %#v\nslow %#v", data, fast, &slow)
	}
	if !bytes.Equal(MustMarshal(fast), data) {
		t.Fatalf("fast path accepted non-canonical %x", data)
	}
	return true
}

// Everything our encoder produces takes the fast path, with the library's result.
func TestFastDecodeSamples(t *testing.T) {
	reports, acks := samplePayloads()
	for i, p := range reports {
		if !checkReportFast(t, p) {
			t.Errorf("report sample %d not handled by the fast path: %x", i, p)
		}
	}
	for i, p := range acks {
		if !checkAckFast(t, p, "meter-0001") {
			t.Errorf("ack sample %d not handled by the fast path: %x", i, p)
		}
	}
}

// Non-canonical input the library accepts falls back to it; so does every error.
func TestFastDecodeFallback(t *testing.T) {
	routine := MustMarshal(benchReport())
	ack := MustMarshal(benchAck())
	reports := map[string][]byte{
		"empty nonce":      MustMarshal(map[int]any{1: "d", 2: 0, 3: 0, 4: 0, 5: 0, 6: ManifestRef{}, 7: Measurement{}, 8: 0, 9: Segment{}, 10: []byte{}}),
		"null reading":     MustMarshal(map[int]any{1: "d", 2: 0, 3: 0, 4: 0, 5: 0, 6: ManifestRef{}, 7: Measurement{}, 8: 0, 9: Segment{}, 11: nil}),
		"missing key":      MustMarshal(map[int]any{1: "d", 2: 0, 3: 0, 4: 0, 5: 0, 6: ManifestRef{}, 7: Measurement{}, 9: Segment{}}),
		"long int":         append([]byte{routine[0], 0x01, 0x6a}, append([]byte("meter-0001\x02\x18\x01"), routine[15:]...)...),
		"unknown key":      MustMarshal(map[int]any{1: "d", 2: 0, 3: 0, 4: 0, 5: 0, 6: ManifestRef{}, 7: Measurement{}, 8: 0, 9: Segment{}, 12: 0}),
		"trailing":         append(append([]byte(nil), routine...), 0),
		"truncated":        routine[:len(routine)-1],
		"epoch overflow":   MustMarshal(map[int]any{1: "d", 2: uint64(1) << 32}),
		"bad utf-8":        MustMarshal(map[int]any{1: "\xff"}),
		"indefinite array": append([]byte(nil), bytes.Replace(routine, []byte{0x80}, []byte{0x9f, 0xff}, 1)...),
		"empty":            {},
	}
	for name, p := range reports {
		if _, ok := decodeReportFast(p); ok {
			t.Errorf("%s: fast path handled %x", name, p)
		}
	}
	acks := map[string][]byte{
		"empty commands": MustMarshal(map[int]any{1: "d", 2: 0, 3: 0, 12: Anchor{}, 14: [][]byte{}}),
		"null commands":  MustMarshal(map[int]any{1: "d", 2: 0, 3: 0, 12: Anchor{}, 14: nil}),
		"empty reject":   MustMarshal(map[int]any{1: "d", 2: 0, 3: 0, 12: Anchor{}, 16: ""}),
		"no anchor":      MustMarshal(map[int]any{1: "d", 2: 0, 3: 0}),
		"trailing":       append(append([]byte(nil), ack...), 0),
		"report":         routine,
	}
	for name, p := range acks {
		if _, ok := decodeAckFast(p, "d"); ok {
			t.Errorf("%s: fast path handled %x", name, p)
		}
	}
	// Through the open functions, such payloads decode (or fail) exactly as Unmarshal says.
	key := bytes.Repeat([]byte{7}, 32)
	for name, p := range reports {
		var want Report
		werr := Unmarshal(p, &want)
		m, err := ParseReport(Mac0(key, []byte(want.Dev), p))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := OpenReport(m, key)
		switch {
		case werr != nil && (err == nil || err.Error() != werr.Error()):
			t.Errorf("%s: OpenReport error %v, Unmarshal %v", name, err, werr)
		case werr == nil && (err != nil || !reflect.DeepEqual(got, &want)):
			t.Errorf("%s: OpenReport %v, %#v; Unmarshal %#v", name, err, got, &want)
		}
	}
}

// Device names are still checked on the fast path.
func TestFastDecodeDeviceChecks(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	r := benchReport()
	m, err := ParseReport(Mac0(key, []byte("meter-0002"), MustMarshal(r)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReport(m, key); err == nil || err.Error() != `malformed: report names device "meter-0001" under kid "meter-0002"` {
		t.Fatalf("OpenReport under another kid: %v", err)
	}
	a := benchAck()
	data, _ := SealAck(a, key)
	if _, err := OpenAck(data, "meter-0002", key); err == nil || err.Error() != `malformed: ack for device "meter-0001", not "meter-0002"` {
		t.Fatalf("OpenAck for another device: %v", err)
	}
	if _, err := OpenAck(Mac0(key, []byte("meter-0002"), MustMarshal(a)), "meter-0001", key); err == nil {
		t.Fatal("OpenAck accepted an ack under another kid")
	}
	if got, err := OpenAck(data, "meter-0001", key); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("OpenAck: %v, %#v", err, got)
	}
}

// The differential fuzz targets take payloads (the CBOR inside the COSE_Mac0).
func FuzzDecodeReportFast(f *testing.F) {
	reports, acks := samplePayloads()
	for _, p := range append(reports, acks...) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkReportFast(t, data) })
}

func FuzzDecodeAckFast(f *testing.F) {
	reports, acks := samplePayloads()
	for _, p := range append(acks, reports...) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAckFast(t, data, "meter-0001")
		checkAckFast(t, data, "")
	})
}

// TestWriteFastDecodeCorpus (re)writes the sample payloads into the fuzz targets' seed
// corpora under testdata/fuzz: FIELDSEAL_WRITE_CORPUS=1 go test ./wire/ -run WriteFastDecodeCorpus
func TestWriteFastDecodeCorpus(t *testing.T) {
	if os.Getenv("FIELDSEAL_WRITE_CORPUS") == "" {
		t.Skip("set FIELDSEAL_WRITE_CORPUS=1 to write the seed corpus")
	}
	reports, acks := samplePayloads()
	for name, ps := range map[string][][]byte{"FuzzDecodeReportFast": reports, "FuzzDecodeAckFast": acks} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", p)
			sum := sha256.Sum256([]byte(body))
			if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(sum[:8])), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
