package agent

import (
	"testing"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// BenchmarkAppendWithDeviceState: what keeping the device state in the slots costs per
// logged entry. "writer" is the bare fschain append of the same entry (the baseline, same
// process, same storage kind); "device" adds encoding the state into the same slot write;
// "device-tamper" also accounts a tamper entry (summary) and saves the state once more.
// Compare the ns/op of the three lines.
func BenchmarkAppendWithDeviceState(b *testing.B) {
	p := wire.MustMarshal(&wire.RegisterPayload{Litres: 123456})
	b.Run("writer", func(b *testing.B) {
		bn, _ := newBundle(b, "meter-1")
		var k1 fschain.Key
		copy(k1[:], bn.ChainKey)
		w, _ := fschain.Create(fschain.NewMemStorage(), "meter-1", 1, k1)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := w.Append(uint64(i), wire.EntryRegister, p); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 999 {
				n, h, _ := w.State()
				w.Prune(n, h)
			}
		}
	})
	for _, typ := range []uint16{wire.EntryRegister, wire.EntryMagnet} {
		name := "device"
		var payload any = &wire.RegisterPayload{Litres: 123456}
		if typ == wire.EntryMagnet {
			name, payload = "device-tamper", &wire.MagnetPayload{Strength: 1}
		}
		b.Run(name, func(b *testing.B) {
			d, _, _ := newDevice(b)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				d.mu.Lock()
				_, err := d.append(uint64(i), typ, payload)
				if i%1000 == 999 {
					n, h, _ := d.w.State()
					d.w.Prune(n, h)
				}
				d.mu.Unlock()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
