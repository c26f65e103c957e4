package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

func benchReport() *Report {
	return &Report{Dev: "meter-0001", Epoch: 1, RSeq: 5, Boot: 2, Time: 1700000000,
		Man:   ManifestRef{Product: "watermeter", Version: 3, Root: make([]byte, 32)},
		Meas:  Measurement{Status: MeasOK, FilesChecked: 4, LastCheck: 1700000000, Bad: []Finding{}},
		Log:   Segment{First: 1, Entries: []Entry{}, N: 0, Head: make([]byte, 32), Seal: make([]byte, 32)},
		Nonce: bytes.Repeat([]byte{9}, 16)}
}

func benchAck() *Ack {
	return &Ack{Dev: "meter-0001", Epoch: 1, AckedRSeq: 5, Nonce: bytes.Repeat([]byte{9}, 16),
		Anchor: Anchor{N: 7, Head: make([]byte, 32)}}
}

func BenchmarkOpenReport(b *testing.B) {
	key := bytes.Repeat([]byte{7}, 32)
	data, err := SealReport(benchReport(), key)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseReport(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := OpenReport(m, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenReportMACKey(b *testing.B) {
	key := bytes.Repeat([]byte{7}, 32)
	data, err := SealReport(benchReport(), key)
	if err != nil {
		b.Fatal(err)
	}
	k := NewMACKey(key)
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseReport(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := OpenReportWith(m, k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealAck(b *testing.B) {
	key := bytes.Repeat([]byte{8}, 32)
	a := benchAck()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SealAck(a, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealAckMACKey(b *testing.B) {
	k := NewMACKey(bytes.Repeat([]byte{8}, 32))
	a := benchAck()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SealAckWith(a, k); err != nil {
			b.Fatal(err)
		}
	}
}

// vectorPayload is the payload of the first wire vector of kind: the report carries a
// finding, an entry and a reading; the ack a receipt and a command.
func vectorPayload(kind string) []byte {
	for _, v := range GenerateVectors() {
		if v.Kind == kind {
			return mustHex(v.Payload)
		}
	}
	panic("no vector of kind " + kind)
}

// Payload decoding, before and after in one run: "fxamacker" is Unmarshal (all decoding
// did before fastdecode.go, and non-canonical input still does), "fast" the hand-written
// path decodeReport now takes.
func BenchmarkDecodeReport(b *testing.B) {
	for _, c := range []struct {
		name    string
		payload []byte
	}{{"routine", MustMarshal(benchReport())}, {"vector", vectorPayload("report")}} {
		b.Run(c.name+"/fxamacker", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r Report
				if err := Unmarshal(c.payload, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := decodeReportFast(c.payload); !ok {
					b.Fatal("not handled")
				}
			}
		})
	}
}

func BenchmarkDecodeAck(b *testing.B) {
	for _, c := range []struct {
		name    string
		payload []byte
	}{{"routine", MustMarshal(benchAck())}, {"vector", vectorPayload("ack")}} {
		b.Run(c.name+"/fxamacker", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var a Ack
				if err := Unmarshal(c.payload, &a); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := decodeAckFast(c.payload, "meter-0001"); !ok {
					b.Fatal("not handled")
				}
			}
		})
	}
}

// BenchmarkOpenAck is the device's whole path: parse, verify the MAC, decode.
func BenchmarkOpenAck(b *testing.B) {
	key := bytes.Repeat([]byte{8}, 32)
	data, err := SealAck(benchAck(), key)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OpenAck(data, "meter-0001", key); err != nil {
			b.Fatal(err)
		}
	}
}

var encSizes = []int{0, 1, 23, 24, 255, 256, 65535, 65536}

func TestProtectedConstants(t *testing.T) {
	if !bytes.Equal(protectedEdDSA, protectedFor(AlgEdDSA)) || !bytes.Equal(protectedHMAC, protectedFor(AlgHMAC256256)) {
		t.Fatalf("precomputed protected headers differ from their encoding")
	}
}

// The direct MAC_structure is byte-identical to the reflective encoding.
func TestMacStructureMatchesReflect(t *testing.T) {
	for _, prot := range [][]byte{protectedHMAC, protectedEdDSA, nil, {}, bytes.Repeat([]byte{1}, 30), bytes.Repeat([]byte{2}, 300)} {
		for _, n := range append(encSizes, -1) {
			var payload []byte // -1: nil
			if n >= 0 {
				payload = bytes.Repeat([]byte{0x5a}, n)
			}
			var got bytes.Buffer
			var scratch [32]byte
			writeMacStructure(&got, &scratch, prot, payload)
			if want := toBeSigned("MAC0", prot, payload); !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("protected %d bytes, payload %d: direct % x..., reflective % x...", len(prot), n, head(got.Bytes()), head(want))
			}
			for _, key := range [][]byte{nil, []byte("k"), bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{4}, 64), bytes.Repeat([]byte{5}, 65), bytes.Repeat([]byte{6}, 200)} {
				m := hmac.New(sha256.New, key)
				m.Write(toBeSigned("MAC0", prot, payload))
				want := m.Sum(nil)
				k := NewMACKey(key)
				for range 2 { // a reused state gives the same MAC
					if !bytes.Equal(k.sum(prot, payload), want) || !bytes.Equal(macStructure(key, prot, payload), want) {
						t.Fatalf("MAC differs for key %d bytes, payload %d", len(key), n)
					}
				}
				if !k.Is(key) || k.Is(append([]byte{1}, key...)) {
					t.Fatalf("MACKey.Is wrong for key %d bytes", len(key))
				}
			}
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

// The direct COSE encoder is byte-identical to the reflective one, and decodes the same
// through the fast and the slow path.
func TestEncodeCoseMatchesReflect(t *testing.T) {
	for _, kn := range []int{-1, 0, 10, 23, 24, 255, 256} {
		var kid []byte
		if kn >= 0 {
			kid = bytes.Repeat([]byte{'k'}, kn)
		}
		for _, n := range append(encSizes, -1) {
			var payload []byte
			if n >= 0 {
				payload = bytes.Repeat([]byte{0x5a}, n)
			}
			for _, c := range []struct {
				tag uint64
				alg int
				sig []byte
			}{{tagMac0, AlgHMAC256256, make([]byte, 32)}, {tagSign1, AlgEdDSA, make([]byte, 64)}, {tagMac0, AlgHMAC256256, nil}} {
				got := encodeCose(c.tag, c.alg, kid, payload, c.sig)
				want := encodeCoseReflect(c.tag, c.alg, kid, payload, c.sig)
				if !bytes.Equal(got, want) {
					t.Fatalf("kid %d payload %d tag %d: direct % x..., reflective % x...", kn, n, c.tag, head(got), head(want))
				}
				checkFastSlow(t, got, c.tag, c.alg)
			}
		}
	}
	k := NewMACKey([]byte("key"))
	if !bytes.Equal(k.Mac0([]byte("d"), []byte{0xa0}), Mac0([]byte("key"), []byte("d"), []byte{0xa0})) {
		t.Fatal("MACKey.Mac0 differs from Mac0")
	}
}

func checkFastSlow(t testing.TB, data []byte, tag uint64, alg int) {
	kid, prot, payload, sig, ok := decodeCoseFast(data, tag, alg)
	if !ok {
		return
	}
	kid2, prot2, payload2, sig2, err := decodeCoseSlow(data, tag, alg)
	if err != nil {
		t.Fatalf("fast path accepted % x, slow path: %v", head(data), err)
	}
	if !bytes.Equal(kid, kid2) || !bytes.Equal(prot, prot2) || !bytes.Equal(payload, payload2) || !bytes.Equal(sig, sig2) ||
		(kid == nil) != (kid2 == nil) || (payload == nil) != (payload2 == nil) || (sig == nil) != (sig2 == nil) {
		t.Fatalf("fast and slow decode of % x differ", head(data))
	}
}

// Whatever the hand-written fast path accepts, the CBOR-library path accepts identically.
func FuzzDecodeCoseFast(f *testing.F) {
	for _, v := range GenerateVectors() {
		f.Add(mustHex(v.Cose))
	}
	f.Add(Sign1(testKey(1), []byte("k"), []byte{0xa0}))
	f.Add(Mac0([]byte("k"), nil, []byte{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastSlow(t, data, tagMac0, AlgHMAC256256)
		checkFastSlow(t, data, tagSign1, AlgEdDSA)
	})
}

// Payload encoding, before and after in one run: "marshal" is Marshal (all the seals did
// before fastencode.go), "fast" the hand-written encoder they use now. Named Seal* so
// that -bench 'Seal|Open' shows them with the seals.
func BenchmarkSealPayload(b *testing.B) {
	var vr Report
	var va Ack
	if err := Unmarshal(vectorPayload("report"), &vr); err != nil {
		b.Fatal(err)
	}
	if err := Unmarshal(vectorPayload("ack"), &va); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		v    any
	}{{"report-routine", benchReport()}, {"report-vector", &vr}, {"ack-routine", benchAck()}, {"ack-vector", &va}} {
		fast := func() ([]byte, error) {
			if r, ok := c.v.(*Report); ok {
				return encodeReport(r)
			}
			return encodeAck(c.v.(*Ack))
		}
		b.Run(c.name+"/marshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Marshal(c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fast(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealReport is the device's sealing path per report. "marshal" is SealReport as
// it was (Marshal, then Mac0 under the key), "key" SealReport now, "mackey"
// SealReportWith under a prepared key.
func BenchmarkSealReport(b *testing.B) {
	key := bytes.Repeat([]byte{7}, 32)
	k := NewMACKey(key)
	r := benchReport()
	for _, c := range []struct {
		name string
		seal func() ([]byte, error)
	}{
		{"marshal", func() ([]byte, error) { return sealSlow(r, key, nil) }},
		{"key", func() ([]byte, error) { return SealReport(r, key) }},
		{"mackey", func() ([]byte, error) { return SealReportWith(r, k) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.seal(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealAckMarshal and BenchmarkSealAckMarshalMACKey are SealAck and SealAckWith
// as they were (Marshal, then Mac0): the baseline of BenchmarkSealAck and
// BenchmarkSealAckMACKey.
func BenchmarkSealAckMarshal(b *testing.B) {
	key := bytes.Repeat([]byte{8}, 32)
	a := benchAck()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sealSlow(a, key, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealAckMarshalMACKey(b *testing.B) {
	k := NewMACKey(bytes.Repeat([]byte{8}, 32))
	a := benchAck()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sealSlow(a, nil, k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenAckMACKey is BenchmarkOpenAck under a prepared key (OpenAckWith).
func BenchmarkOpenAckMACKey(b *testing.B) {
	key := bytes.Repeat([]byte{8}, 32)
	data, err := SealAck(benchAck(), key)
	if err != nil {
		b.Fatal(err)
	}
	k := NewMACKey(key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OpenAckWith(data, "meter-0001", k); err != nil {
			b.Fatal(err)
		}
	}
}
