package fschain

import (
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// BenchmarkAppend: appends to in-memory storage (all three writes of fschain.md's append
// order), pruning every 4096 entries as acks would. Target ≥ 200,000 entries/s.
func BenchmarkAppend(b *testing.B) {
	w, _ := newTestWriter(b)
	p := wire.MustMarshal(&wire.CheckOKPayload{Files: 12, Root: make([]byte, 32), DurationMS: 840})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.Append(uint64(1767225600+i), wire.EntryCheckOK, p); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			n, h, _ := w.State()
			if err := w.Prune(n, h); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

func benchSegment(b *testing.B, count int) wire.Segment {
	w, _ := newTestWriter(b)
	p := wire.MustMarshal(&wire.CheckOKPayload{Files: 12, Root: make([]byte, 32), DurationMS: 840})
	for i := 0; i < count; i++ {
		if _, err := w.Append(uint64(1767225600+i), wire.EntryCheckOK, p); err != nil {
			b.Fatal(err)
		}
	}
	return w.Segment()
}

// BenchmarkVerify: incremental verification of 1000-entry segments (every tag, the heads
// and the seal). Target ≥ 1,000,000 entries/s on one core.
func BenchmarkVerify(b *testing.B) {
	const per = 1000
	seg := benchSegment(b, per)
	a := NewAnchor(testDev, 1, testK1())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := Verify(a, seg, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*per/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkVerifyHeads: the key-less check of an auditor holding receipts only.
func BenchmarkVerifyHeads(b *testing.B) {
	const per = 1000
	seg := benchSegment(b, per)
	a := NewAnchor(testDev, 1, Key{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := VerifyHeads(a, seg, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*per/b.Elapsed().Seconds(), "entries/s")
}
