package fschain

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// fuzzLog is a small honest log every fuzz target starts from.
func fuzzLog(tb testing.TB) (*Writer, *MemStorage) {
	w, st := newTestWriter(tb)
	appendN(tb, w, 6)
	return w, st
}

// sameSegment compares segments by meaning (nil and empty byte strings are equal).
func sameSegment(a, b wire.Segment) bool {
	if a.First != b.First || a.N != b.N || !bytes.Equal(a.Head, b.Head) || !bytes.Equal(a.Seal, b.Seal) || len(a.Entries) != len(b.Entries) {
		return false
	}
	for i := range a.Entries {
		if !entryEqual(a.Entries[i], b.Entries[i]) {
			return false
		}
	}
	return true
}

// FuzzDecodeSegment: any bytes decoded as a segment and verified from genesis or from an
// anchor at 3 never panic, and only the honest log verifies.
func FuzzDecodeSegment(f *testing.F) {
	w, _ := fuzzLog(f)
	honest := w.Segment()
	f.Add(wire.MustMarshal(honest))
	f.Add(wire.MustMarshal(wire.Segment{First: 1, Entries: []wire.Entry{}, N: 0, Head: make([]byte, 32), Seal: make([]byte, 32)}))
	srv := newServer()
	if err := srv.verify(honest); err != nil {
		f.Fatal(err)
	}
	a3 := Anchor{Dev: testDev, Epoch: 1, N: 3, Head: srv.heads[3], NextKey: KeyAt(testK1(), 4)}
	f.Fuzz(func(t *testing.T, data []byte) {
		var seg wire.Segment
		if wire.Unmarshal(data, &seg) != nil {
			return
		}
		_, _, _ = VerifyHeads(a3, seg, headsOf(srv.heads))
		for _, a := range []Anchor{NewAnchor(testDev, 1, testK1()), a3} {
			got, fresh, err := Verify(a, seg, headsOf(srv.heads))
			if err != nil {
				if _, ok := err.(*VerifyError); !ok {
					t.Fatalf("error of type %T: %v", err, err)
				}
				continue
			}
			// Only the key holder's entries verify: each new one is the honest entry n.
			for _, e := range fresh {
				if e.N < 1 || e.N > uint64(len(honest.Entries)) || !entryEqual(e, honest.Entries[e.N-1]) {
					t.Fatalf("forged entry %d verified", e.N)
				}
			}
			if h, ok := w.HeadAt(got.N); !ok || h != got.Head {
				t.Fatalf("verified a head the device never had at %d", got.N)
			}
		}
	})
}

// FuzzVerifyMutation: random byte mutations of a valid segment's encoding never verify
// unless the decoded segment is identical to the original.
func FuzzVerifyMutation(f *testing.F) {
	w, _ := fuzzLog(f)
	honest := w.Segment()
	enc := wire.MustMarshal(honest)
	srv := newServer()
	f.Add(uint16(0), byte(1), uint16(0), []byte{})
	f.Add(uint16(40), byte(0x80), uint16(3), []byte{0})
	f.Add(uint16(len(enc)-1), byte(0xff), uint16(len(enc)), []byte{})
	f.Add(uint16(100), byte(0), uint16(200), []byte{0x41, 0x00})
	f.Fuzz(func(t *testing.T, off uint16, x byte, at uint16, ins []byte) {
		b := bytes.Clone(enc)
		b[int(off)%len(b)] ^= x
		if len(ins) > 0 {
			p := int(at) % (len(b) + 1)
			b = append(b[:p], append(ins, b[p:]...)...)
		} else if x == 0 {
			b = b[:int(at)%(len(b)+1)]
		}
		var seg wire.Segment
		if wire.Unmarshal(b, &seg) != nil {
			return
		}
		if _, _, err := Verify(srv.a, seg, headsOf(srv.heads)); err == nil && !sameSegment(seg, honest) {
			t.Fatalf("mutated segment verified: %x", b)
		}
	})
}

// FuzzDecodeExport: any bytes given to `log verify` are decoded and checked without panic.
func FuzzDecodeExport(f *testing.F) {
	w, _ := fuzzLog(f)
	x := w.Export()
	c, _ := x.EncodeCBOR()
	j, _ := x.EncodeJSON()
	f.Add(c)
	f.Add(j)
	f.Add([]byte(`{"format":"fs1/export","dev":"a","epoch":1,"base_n":0,"base_h":"00","entries":[],"n":0,"head":"","seal":""}`))
	k := testK1()
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := DecodeExport(data)
		if err != nil {
			return
		}
		res, err := CheckExport(x, CheckOptions{ChainKey: &k})
		if err == nil && res.Err == nil && x.BaseN == 0 {
			for i, e := range x.Entries {
				if !entryEqual(e, w.entries[i]) {
					t.Fatalf("forged export verified at entry %d", e.N)
				}
			}
		}
		_, _ = CheckExport(x, CheckOptions{})
	})
}

// FuzzOpen: whatever storage holds, Open and ReadExport return an error or a writer
// whose segment verifies as far as its own heads go — never panic.
func FuzzOpen(f *testing.F) {
	_, st := fuzzLog(f)
	f.Add(st.log, st.slots[0], st.slots[1])
	f.Add(st.log[:len(st.log)-3], st.slots[0], st.slots[1])
	f.Add([]byte{}, st.slots[1], []byte{})
	// with device state in the slots (fsx2 trailer)
	w2, st2 := fuzzLog(f)
	w2.SaveExt(wire.MustMarshal(&wire.DeviceState{Boot: 2, RSeq: 9, Latched: 128, Summary: &wire.TamperSummary{FirstN: 3, FirstType: 3, Counts: map[uint16]uint32{3: 1}}}))
	f.Add(st2.log, st2.slots[0], st2.slots[1])
	f.Fuzz(func(t *testing.T, log, a, b []byte) {
		m := &MemStorage{log: bytes.Clone(log), slots: [2][]byte{bytes.Clone(a), bytes.Clone(b)}}
		_, _ = ReadExport(m.Clone())
		w, _, err := Open(m)
		if err != nil {
			return
		}
		seg := w.Segment()
		base, bh := w.Base()
		if _, _, err := VerifyHeads(Anchor{Dev: w.Dev(), Epoch: w.Epoch(), N: base, Head: bh}, seg, nil); err != nil {
			t.Fatalf("opened log fails its own head chain: %v", err)
		}
		if _, err := w.Append(1, wire.EntryCheckOK, nil); err != nil {
			t.Fatalf("append after open: %v", err)
		}
	})
}

// TestWriteFuzzCorpus refreshes the committed seed corpus under testdata/fuzz when
// FSCHAIN_WRITE_CORPUS=1 (the seeds also run as part of every `go test`).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("FSCHAIN_WRITE_CORPUS") != "1" {
		t.Skip("set FSCHAIN_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	w, st := fuzzLog(t)
	seg := w.Segment()
	x := w.Export()
	c, _ := x.EncodeCBOR()
	j, _ := x.EncodeJSON()
	trunc := cloneSeg(seg)
	trunc.Entries = trunc.Entries[:3]
	corpus := map[string][][]any{
		"FuzzDecodeSegment":  {{wire.MustMarshal(seg)}, {wire.MustMarshal(trunc)}},
		"FuzzVerifyMutation": {{uint16(57), byte(4), uint16(0), []byte{}}, {uint16(9), byte(0), uint16(77), []byte{}}},
		"FuzzDecodeExport":   {{c}, {j}},
		"FuzzOpen":           {{st.log, st.slots[0], st.slots[1]}, {st.log[:len(st.log)-5], st.slots[1], st.slots[0]}},
	}
	for name, seeds := range corpus {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, vals := range seeds {
			var b bytes.Buffer
			b.WriteString("go test fuzz v1\n")
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					b.WriteString("[]byte(" + strconv.Quote(string(v)) + ")\n")
				case uint16:
					b.WriteString("uint16(" + strconv.Itoa(int(v)) + ")\n")
				case byte:
					b.WriteString("byte(" + strconv.Itoa(int(v)) + ")\n")
				default:
					t.Fatalf("type %v", reflect.TypeOf(v))
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "seed-"+strconv.Itoa(i)), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
