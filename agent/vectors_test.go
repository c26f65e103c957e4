package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// recoverVector is a storage vector of testdata/vectors/fschain/storage (README there).
type recoverVector struct {
	Description string
	Dev         string
	Epoch       uint32
	Log         wire.HexBytes
	SlotA       wire.HexBytes `json:"slot_a"`
	SlotB       wire.HexBytes `json:"slot_b"`
	Want        struct {
		SlotN     uint64   `json:"slot_n"`
		Completed []uint64 `json:"completed"`
		Entries   []uint16 `json:"entries"`
		Latched   uint32   `json:"latched"`
		Summary   *struct {
			FirstN    uint64            `json:"first_n"`
			FirstType uint16            `json:"first_type"`
			Counts    map[string]uint32 `json:"counts"`
		} `json:"summary"`
	}
}

// The Go agent passes the shared recover vectors that the MicroPython guard passes too
// (device/micropython/mpharness TestThreatD22_GuardRecoverVectors): after opening the
// storage at boot, the same entries are completed and logged, the same flags latch and the
// tamper summary names the same first entry and counts (threats D22, D26).
func TestThreatD22_AgentRecoverVectors(t *testing.T) {
	dir := filepath.Join("..", "testdata", "vectors", "fschain", "storage")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "recover-") {
			continue
		}
		ran++
		t.Run(e.Name(), func(t *testing.T) {
			raw, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			var v recoverVector
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			st := fschain.NewMemStorage()
			st.AppendLog(v.Log)
			st.WriteSlot(0, 0, v.SlotA)
			st.WriteSlot(1, 0, v.SlotB)
			b := &wire.Bundle{Device: v.Dev, Epoch: v.Epoch, UplinkKey: bytes.Repeat([]byte{0x52}, 32), DownlinkKey: bytes.Repeat([]byte{0x54}, 32),
				ServerPub: make([]byte, 32), Product: "watermeter", ManifestVersion: 1}
			d, err := New(Config{Bundle: b, Manifest: wire.ManifestRef{Product: "watermeter", Version: 1}, Chain: st, Now: 1767300000})
			if err != nil {
				t.Fatal(err)
			}
			var logged []uint16
			var completed []uint64
			for _, e := range d.Segment().Entries {
				switch {
				case e.N <= v.Want.SlotN:
				case e.Type == wire.EntryRecovered || e.Type == wire.EntryRollbackDetected:
					logged = append(logged, e.Type)
				case e.Type != wire.EntryBoot || len(logged) == 0:
					completed = append(completed, e.N)
				}
			}
			if fmt.Sprint(completed) != fmt.Sprint(nonNil(v.Want.Completed)) || fmt.Sprint(logged) != fmt.Sprint(v.Want.Entries) {
				t.Fatalf("completed %v logged %v; want %v, %v", completed, logged, v.Want.Completed, v.Want.Entries)
			}
			if got := d.Status().Flags & (wire.StateCoverWasOpen | wire.StateMagnet | wire.StateTamperLatched); got != v.Want.Latched {
				t.Fatalf("latched %#x, want %#x", got, v.Want.Latched)
			}
			sum, want := d.Summary(), v.Want.Summary
			if (sum == nil) != (want == nil) {
				t.Fatalf("summary %+v, want %+v", sum, want)
			}
			if want != nil {
				counts := map[string]uint32{}
				for k, c := range sum.Counts {
					counts[fmt.Sprint(k)] = c
				}
				if sum.FirstN != want.FirstN || sum.FirstType != want.FirstType || fmt.Sprint(counts) != fmt.Sprint(want.Counts) {
					t.Fatalf("summary %+v, want %+v", sum, want)
				}
			}
		})
	}
	if ran < 4 {
		t.Fatalf("%d recover vectors", ran)
	}
}

func nonNil(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}
