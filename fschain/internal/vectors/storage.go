package vectors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// Slot is a storage vector of kind "slot": a state slot holding device state
// (wire.DeviceState) under its tag. An implementation passes when it decodes Slot to the
// same fields and a verifying tag, encodes those fields back to Slot byte for byte, and
// finds the tag of SlotEdited (one bit of the device state flipped, CRC fixed) wrong.
type Slot struct {
	Description string `json:"description"`
	Kind        string `json:"kind"` // "slot"
	Dev         string `json:"dev"`
	Epoch       uint32 `json:"epoch"`
	Gen         uint64 `json:"gen"`
	N           uint64 `json:"n"`
	Head        Hex    `json:"head"`
	Key         Hex    `json:"key"` // K_{n+1}, the key the device state's tag is under
	Seal        Hex    `json:"seal"`
	BaseN       uint64 `json:"base_n"`
	BaseH       Hex    `json:"base_h"`
	Dropped     uint32 `json:"dropped"`
	DeviceState Hex    `json:"device_state"` // its deterministic CBOR
	// Fields is the device state with the guard's names (device.py XKEYS), for readers.
	Fields     map[string]any `json:"fields"`
	Slot       Hex            `json:"slot"`
	SlotEdited Hex            `json:"slot_edited"`
}

// Recover is a storage vector of kind "recover": the log area and both slots as a device
// left them, and what opening them at boot must do (docs/PROTOCOL.md, "Storage").
type Recover struct {
	Description string      `json:"description"`
	Kind        string      `json:"kind"` // "recover"
	Dev         string      `json:"dev"`
	Epoch       uint32      `json:"epoch"`
	Log         Hex         `json:"log"`
	SlotA       Hex         `json:"slot_a"`
	SlotB       Hex         `json:"slot_b"`
	Want        RecoverWant `json:"want"`
}

// RecoverWant: the records completed beyond the slot, whether only a rolled-back or edited
// slot explains the storage, whether the device state's tag verifies, the entry the device
// logs about it (15 recovered, 17 rollback-detected, 0 none), and after the device
// accounted for it all: its latched flags (masked with cover-was-open | magnet |
// tamper-latched) and its tamper summary (null when none).
type RecoverWant struct {
	SlotN      uint64       `json:"slot_n"`
	Completed  []uint64     `json:"completed"`
	RolledBack bool         `json:"rolled_back"`
	StateAuth  bool         `json:"state_authentic"`
	Entries    []uint16     `json:"entries"` // types the device logs about recovery, in order
	Latched    uint32       `json:"latched"`
	Summary    *SummaryWant `json:"summary"`
}

// SummaryWant is the part of the tamper summary every implementation must agree on.
type SummaryWant struct {
	FirstN    uint64            `json:"first_n"`
	FirstType uint16            `json:"first_type"`
	Counts    map[string]uint32 `json:"counts"` // by entry type, decimal
}

// LatchedMask is what recover vectors compare of the latched flags.
const LatchedMask = wire.StateCoverWasOpen | wire.StateMagnet | wire.StateTamperLatched

var rKey, tKey = bytes.Repeat([]byte{0x52}, 32), bytes.Repeat([]byte{0x54}, 32)

// guardState is device state as the guard keeps it (its keys R and T included).
func guardState(boot uint32, rseq uint64, seen uint64) *wire.DeviceState {
	return &wire.DeviceState{Boot: boot, RSeq: rseq, AckedRSeq: rseq, ManifestVer: 1, LastCheck: t0,
		UplinkKey: rKey, DownlinkKey: tKey, Seen: seen}
}

func slots(st *fschain.MemStorage) (a, b []byte) {
	a, _ = st.ReadSlot(0)
	b, _ = st.ReadSlot(1)
	return a, b
}

func storageVectors(files map[string]any) error {
	// The slot vector: a rich device state, every shared field set.
	st := fschain.NewMemStorage()
	w, err := fschain.Create(st, dev, epoch, K1())
	if err != nil {
		return err
	}
	for i := 0; i < 5; i++ {
		t, typ, p := entryFor(i)
		if _, err := w.Append(t, typ, p); err != nil {
			return err
		}
	}
	ds := &wire.DeviceState{Boot: 3, RSeq: 7, AckedRSeq: 6, Nonce: []byte{1, 2, 3, 4, 5, 6, 7, 8},
		Latched: wire.StateCoverWasOpen | wire.StateTamperLatched, UsedTokens: []wire.UsedToken{{ID: bytes.Repeat([]byte{0x1d}, 16), Until: 40}},
		ServiceUntil: t0 + 4000, CheckInterval: 600, ManifestVer: 2, CoverOpen: true, LastCheck: t0 + 3600,
		UplinkKey: rKey, DownlinkKey: tKey, BadDownlinks: 1,
		Summary: &wire.TamperSummary{FirstN: 4, FirstType: wire.EntryCheckFail, FirstT: t0 + 2700, FirstWhat: "app/metrology.mpy modified",
			Counts: map[uint16]uint32{wire.EntryCheckFail: 1, wire.EntryCoverOpen: 2}, LastN: 5},
		Service: &wire.ServiceWindow{Boot: 3, OpenedAt: t0 + 400, TokenID: bytes.Repeat([]byte{0x1d}, 16)}, Seen: 5}
	ext := wire.MustMarshal(ds)
	if err := w.SaveExt(ext); err != nil {
		return err
	}
	a, b := slots(st)
	slot := a
	if len(b) > len(a) || !bytes.Contains(a, ext) {
		slot = b
	}
	edited := cp(slot)
	i := bytes.Index(edited, ext)
	if i < 0 {
		return fmt.Errorf("storage vectors: device state not in the slot")
	}
	edited[i+len(ext)-1] ^= 1 // the last byte of the device state (Seen)
	tail := i - 8
	end := i + len(ext) + fschain.TagSize
	binary.BigEndian.PutUint32(edited[end:], crc32.ChecksumIEEE(edited[tail:end]))
	n, head, seal := w.State()
	baseN, baseH := w.Base()
	key := fschain.KeyAt(K1(), n+1)
	files["storage/slot-device-state.json"] = &Slot{Description: "a state slot after 5 entries holding a device state with every shared field set; slot_edited has one bit of the device state flipped and its CRC fixed (its tag fails: threat D26)",
		Kind: "slot", Dev: dev, Epoch: epoch, Gen: binary.BigEndian.Uint64(slot[4:12]), N: n, Head: head[:], Key: key[:], Seal: seal[:],
		BaseN: baseN, BaseH: baseH[:], Dropped: w.Dropped(), DeviceState: ext, Fields: fieldsOf(ds), Slot: slot, SlotEdited: edited}

	// Recover vectors.
	type step struct {
		typ uint16
		p   []byte
	}
	fail := wire.MustMarshal(&wire.CheckFailPayload{Files: 12, Bad: []wire.BadFile{{Path: "app/metrology.mpy", Kind: wire.KindModified}}})
	boot := wire.MustMarshal(&wire.BootPayload{BootCount: 2, ManifestVersion: 1, Result: "ok"})
	// base: 2 clean entries, the device state saved, then the renter's copy of the slots.
	base := func() (*fschain.MemStorage, *fschain.Writer, [2][]byte) {
		st := fschain.NewMemStorage()
		w, _ := fschain.Create(st, dev, epoch, K1())
		for i := 0; i < 2; i++ {
			t, typ, p := entryFor(i)
			w.Append(t, typ, p)
		}
		w.SaveExt(wire.MustMarshal(guardState(1, 1, 2)))
		a, b := slots(st)
		return st, w, [2][]byte{a, b}
	}
	rec := func(name, desc string, st *fschain.MemStorage, want RecoverWant) {
		log, _ := st.ReadLog()
		a, b := slots(st)
		files["storage/"+name+".json"] = &Recover{Description: desc, Kind: "recover", Dev: dev, Epoch: epoch, Log: log, SlotA: a, SlotB: b, Want: want}
	}
	sum := func(first uint64, typ uint16, counts map[uint16]uint32) *SummaryWant {
		c := map[string]uint32{}
		for k, v := range counts {
			c[fmt.Sprint(k)] = v
		}
		return &SummaryWant{FirstN: first, FirstType: typ, Counts: c}
	}

	// 1. A power cut after record 3 reached the log, before the slot: one record to complete.
	st1, w1, _ := base()
	st1.BeforeWrite = func(op fschain.WriteOp) int {
		if op.Kind == fschain.WriteStateSlot {
			return 0
		}
		return -1
	}
	w1.Append(t0+1800, wire.EntryBoot, boot)
	st1.Revive()
	rec("recover-power-cut", "a power cut after record 3 reached the log and before its slot: the record is completed, a routine recovered entry is logged, nothing latches",
		st1, RecoverWant{SlotN: 2, Completed: []uint64{3}, StateAuth: true, Entries: []uint16{wire.EntryRecovered}})

	// 2. D22: the renter's copy of the slots (taken at n = 2) put back after an offline
	// check-fail and a reboot: both records verify and are completed, and that is tamper.
	st2, w2, saved := base()
	for _, e := range []step{{wire.EntryCheckFail, fail}, {wire.EntryBoot, boot}} {
		w2.Append(t0+2000, e.typ, e.p)
	}
	restore(st2, saved)
	rec("recover-slot-copied-back", "threat D22: the state slots copied at n = 2 put back after entries 3 (check-fail) and 4 (boot) were logged offline: both are completed, rollback-detected is logged, the check-fail latches and opens the tamper summary",
		st2, RecoverWant{SlotN: 2, Completed: []uint64{3, 4}, RolledBack: true, StateAuth: true, Entries: []uint16{wire.EntryRollbackDetected},
			Latched: wire.StateTamperLatched, Summary: sum(3, wire.EntryCheckFail, map[uint16]uint32{wire.EntryCheckFail: 1, wire.EntryRollbackDetected: 1})})

	// 3. A whole record after the slot that does not continue the chain.
	st3, _, _ := base()
	st3.AppendLog(fschain.EncodeRecord(wire.Entry{N: 3, T: t0 + 2000, Type: wire.EntryCheckOK, Payload: wire.MustMarshal(&wire.CheckOKPayload{Files: 12}), Tag: make([]byte, fschain.TagSize)}))
	rec("recover-foreign-record", "a whole record 3 (its CRC holds) whose tag does not verify: no power cut leaves one, so discarding it is logged as rollback-detected",
		st3, RecoverWant{SlotN: 2, Completed: []uint64{}, RolledBack: true, StateAuth: true, Entries: []uint16{wire.EntryRollbackDetected},
			Latched: wire.StateTamperLatched, Summary: sum(3, wire.EntryRollbackDetected, map[uint16]uint32{wire.EntryRollbackDetected: 1})})

	// 4. D26: the device state edited in the active slot (latched flags cleared), CRC fixed.
	st4, w4, _ := base()
	ds4 := guardState(1, 1, 3)
	ds4.Latched = wire.StateCoverWasOpen | wire.StateTamperLatched
	ds4.Summary = &wire.TamperSummary{FirstN: 3, FirstType: wire.EntryCoverOpen, FirstT: t0 + 1900, FirstWhat: "seen by irq", Counts: map[uint16]uint32{wire.EntryCoverOpen: 1}, LastN: 3}
	w4.StageExt(wire.MustMarshal(ds4))
	w4.Append(t0+1900, wire.EntryCoverOpen, wire.MustMarshal(&wire.CoverOpenPayload{Source: wire.CoverSourceIRQ}))
	if err := editState(st4, wire.MustMarshal(ds4), wire.MustMarshal(func() *wire.DeviceState { d := *ds4; d.Latched, d.Summary = 0, nil; return &d }())); err != nil {
		return err
	}
	rec("recover-state-edited", "threat D26: the renter cleared the latched flags and the tamper summary in the active slot's device state and fixed its CRC; the tag fails, so the device logs rollback-detected and accounts again for every entry still stored (the cover-open at 3 latches again)",
		st4, RecoverWant{SlotN: 3, Completed: []uint64{}, StateAuth: false, Entries: []uint16{wire.EntryRollbackDetected},
			Latched: wire.StateCoverWasOpen | wire.StateTamperLatched, Summary: sum(3, wire.EntryCoverOpen, map[uint16]uint32{wire.EntryCoverOpen: 1, wire.EntryRollbackDetected: 1})})
	return nil
}

func restore(st *fschain.MemStorage, s [2][]byte) {
	for i := range s {
		st.WriteSlot(i, 0, s[i])
	}
}

// editState replaces the device state old by new in whichever slot holds it, keeping the
// old tag and fixing the trailer's CRC: an edit by someone without the tag's key schedule.
func editState(st *fschain.MemStorage, old, new []byte) error {
	for i := 0; i < 2; i++ {
		b, _ := st.ReadSlot(i)
		j := bytes.Index(b, old)
		if j < 0 {
			continue
		}
		tag := cp(b[j+len(old) : j+len(old)+fschain.TagSize])
		out := append(cp(b[:j-8]), []byte("fsx2")...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(new)))
		out = append(out, new...)
		out = append(out, tag...)
		out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[j-8:]))
		st.WriteSlot(i, 0, out)
		return nil
	}
	return fmt.Errorf("storage vectors: device state to edit not found")
}

// fieldsOf names the device state's fields as the guard does (for readers of the vector).
func fieldsOf(d *wire.DeviceState) map[string]any {
	return map[string]any{"boot": d.Boot, "rseq": d.RSeq, "ack": d.AckedRSeq, "nonce": Hex(d.Nonce), "fl": d.Latched,
		"svc": d.ServiceUntil, "civ": d.CheckInterval, "mv": d.ManifestVer, "cv": d.CoverOpen, "lc": d.LastCheck,
		"bd": d.BadDownlinks, "seen": d.Seen, "sum_first_n": d.Summary.FirstN, "svw_boot": d.Service.Boot}
}
