package agent

import (
	"bytes"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// FuzzDeviceState: whatever bytes a state slot's device state holds (the guard's or the
// agent's, edited or not), decoding returns an error or a state that encodes and decodes
// to itself; never a panic.
func FuzzDeviceState(f *testing.F) {
	f.Add(wire.MustMarshal(&wire.DeviceState{Boot: 3, RSeq: 7, Latched: 132, UsedTokens: []wire.UsedToken{{ID: bytes.Repeat([]byte{1}, 16), Until: 4}},
		Summary: &wire.TamperSummary{FirstN: 4, FirstType: 3, FirstWhat: "app.mpy modified", Counts: map[uint16]uint32{3: 1}},
		Service: &wire.ServiceWindow{Boot: 3, OpenedAt: 100, BootID: "b", TokenID: []byte{1}}, Seen: 5, Receipt: []byte{0xd2}}))
	f.Add([]byte{0xa0})
	f.Add([]byte{0xa1, 0x10, 0xf6})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(data)
		if err != nil {
			return
		}
		enc, err := encodeState(st)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		st2, err := decodeState(enc)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		enc2, _ := encodeState(st2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("state does not round-trip:\n%x\n%x", enc, enc2)
		}
	})
}
