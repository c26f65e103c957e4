package fschain

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// The vectors' fields this package's tests read (fschain/internal/vectors writes them;
// importing it here would be a cycle).
type slotVector struct {
	Gen              uint64
	N                uint64
	Key, Slot        wire.HexBytes
	SlotEdited       wire.HexBytes `json:"slot_edited"`
	DeviceStateAlias wire.HexBytes `json:"device_state"`
}

type recoverVector struct {
	Log   wire.HexBytes
	SlotA wire.HexBytes `json:"slot_a"`
	SlotB wire.HexBytes `json:"slot_b"`
	Want  struct {
		SlotN      uint64   `json:"slot_n"`
		Completed  []uint64 `json:"completed"`
		RolledBack bool     `json:"rolled_back"`
		StateAuth  bool     `json:"state_authentic"`
		Entries    []uint16 `json:"entries"`
	}
}

func storageVectorFiles(t *testing.T) map[string][]byte {
	t.Helper()
	dir := filepath.Join("..", "testdata", "vectors", "fschain", "storage")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	if len(out) < 5 {
		t.Fatalf("%d storage vectors", len(out))
	}
	return out
}

// The slot vector: decode, re-encode byte for byte, and an edited device state fails its tag.
func TestStorageVectorSlot(t *testing.T) {
	var v slotVector
	if err := json.Unmarshal(storageVectorFiles(t)["slot-device-state.json"], &v); err != nil {
		t.Fatal(err)
	}
	s, err := decodeState(v.Slot)
	if err != nil || !s.ExtAuth || !bytes.Equal(s.Ext, v.DeviceStateAlias) || s.N != v.N || !bytes.Equal(s.Key[:], v.Key) || s.Gen != v.Gen {
		t.Fatalf("decode: %v auth %v", err, s != nil && s.ExtAuth)
	}
	if got := s.encode(); !bytes.Equal(got, v.Slot) {
		t.Fatalf("re-encoded slot differs:\n%x\n%x", got, v.Slot)
	}
	var ds wire.DeviceState
	if err := wire.Unmarshal(s.Ext, &ds); err != nil || ds.RSeq != 7 || ds.Summary == nil || ds.Summary.FirstWhat != "app/metrology.mpy modified" {
		t.Fatalf("device state: %+v %v", ds, err)
	}
	e, err := decodeState(v.SlotEdited)
	if err != nil || e.ExtAuth {
		t.Fatalf("edited slot: err %v, authentic %v (want whole and not authentic)", err, e != nil && e.ExtAuth)
	}
}

// Recover vectors at the chain level: what Open completes, and whether it calls it a rollback.
func TestStorageVectorsRecover(t *testing.T) {
	for name, raw := range storageVectorFiles(t) {
		if !strings.HasPrefix(name, "recover-") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			var v recoverVector
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			st := NewMemStorage()
			st.log, st.slots[0], st.slots[1] = v.Log, v.SlotA, v.SlotB
			w, _, err := Open(st)
			if err != nil {
				t.Fatal(err)
			}
			if (w.RolledBack() != "") != v.Want.RolledBack || w.ExtAuthentic() != v.Want.StateAuth {
				t.Fatalf("rolled back %q, state authentic %v; want %v, %v", w.RolledBack(), w.ExtAuthentic(), v.Want.RolledBack, v.Want.StateAuth)
			}
			es := w.Segment().Entries
			var got []uint64
			for _, e := range es {
				if e.N > v.Want.SlotN && e.Type != wire.EntryRecovered && e.Type != wire.EntryRollbackDetected {
					got = append(got, e.N)
				}
			}
			if len(got) != len(v.Want.Completed) || (len(got) > 0 && got[len(got)-1] != v.Want.Completed[len(v.Want.Completed)-1]) {
				t.Fatalf("completed %v, want %v", got, v.Want.Completed)
			}
			// Open logs the recovery entry itself when there was something to recover.
			if v.Want.StateAuth {
				if last := es[len(es)-1]; last.Type != v.Want.Entries[0] {
					t.Fatalf("last entry %s, want %s", wire.EntryName(last.Type), wire.EntryName(v.Want.Entries[0]))
				}
			}
		})
	}
}
