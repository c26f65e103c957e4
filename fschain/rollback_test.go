package fschain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// copySlots returns the two state slots: what a renter copies off the device.
func copySlots(t *testing.T, st *MemStorage) [2][]byte {
	t.Helper()
	var s [2][]byte
	for i := range s {
		b, err := st.ReadSlot(i)
		if err != nil {
			t.Fatal(err)
		}
		s[i] = b
	}
	return s
}

func putSlots(t *testing.T, st *MemStorage, s [2][]byte) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.slots[0], st.slots[1] = append([]byte(nil), s[0]...), append([]byte(nil), s[1]...)
}

// D22: the renter copies the two state slots after a clean report, tampers offline (a
// check-fail is logged), restores the files and copies the slots back. Recovery must not
// keep one record and cut the rest as torn: every record whose tag verifies is completed,
// and the rollback itself is logged as tamper evidence that the server verifies.
func TestThreatD22_SlotRollbackKeepsEvidence(t *testing.T) {
	w, st := newTestWriter(t)
	appendN(t, w, 3)
	anchor := NewAnchor(testDev, 1, testK1())
	anchor, _, err := Verify(anchor, w.Segment(), nil) // the clean report
	if err != nil {
		t.Fatal(err)
	}
	saved := copySlots(t, st)
	fail := wire.MustMarshal(&wire.CheckFailPayload{Bad: []wire.BadFile{{Path: "app/metrology.mpy", Kind: "modified"}}, Files: 4})
	if _, err := w.Append(1767300000, wire.EntryCheckFail, fail); err != nil {
		t.Fatal(err)
	}
	appendN(t, w, 2) // the renter's own activity after the tamper
	putSlots(t, st, saved)

	w2, recovered, err := Open(st)
	if err != nil || !recovered {
		t.Fatalf("open after slot rollback: recovered=%v err=%v", recovered, err)
	}
	seg := w2.Segment()
	var types []uint16
	for _, e := range seg.Entries {
		types = append(types, e.Type)
	}
	if len(seg.Entries) != 7 || types[3] != wire.EntryCheckFail || types[6] != wire.EntryRollbackDetected {
		t.Fatalf("entries after recovery: %v (want 3 clean, check-fail, 2 more, rollback-detected)", types)
	}
	if !strings.Contains(w2.RolledBack(), "entries 4..6") {
		t.Fatalf("RolledBack = %q", w2.RolledBack())
	}
	// The server verifies the recovered log and sees both tamper entries.
	if _, fresh, err := Verify(anchor, seg, nil); err != nil || len(fresh) != 4 {
		t.Fatalf("server verify: %d fresh, %v", len(fresh), err)
	}
	if !wire.IsTamper(wire.EntryRollbackDetected) {
		t.Fatal("rollback-detected must be tamper-class")
	}
	// A reopen finds nothing more to recover.
	if _, rec, err := Open(st); err != nil || rec {
		t.Fatalf("second open: recovered=%v err=%v", rec, err)
	}
}

// A power cut leaves at most one committed record beyond the slot: that stays a routine
// recovered entry, never a rollback (no false alarm).
func TestPowerCutIsNotRollback(t *testing.T) {
	w, st := newTestWriter(t)
	appendN(t, w, 2)
	st.BeforeWrite = func(op WriteOp) int {
		if op.Kind == WriteStateSlot {
			return 0
		}
		return -1
	}
	typ, p := payloadFor(5)
	if _, err := w.Append(1767300000, typ, p); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("append: %v", err)
	}
	st.Revive()
	w2, rec, err := Open(st)
	if err != nil || !rec || w2.RolledBack() != "" {
		t.Fatalf("open: rec=%v rolledBack=%q err=%v", rec, w2.RolledBack(), err)
	}
	last := w2.Segment().Entries[len(w2.Segment().Entries)-1]
	if last.Type != wire.EntryRecovered {
		t.Fatalf("last entry %s, want recovered", wire.EntryName(last.Type))
	}
}

// A whole record (its CRC holds) that does not continue the chain cannot come from a power
// cut either: discarding it is logged as rollback-detected.
func TestWholeForeignRecordIsRollback(t *testing.T) {
	w, st := newTestWriter(t)
	appendN(t, w, 2)
	bogus := EncodeRecord(wire.Entry{N: 3, T: 1, Type: wire.EntryCheckOK, Tag: make([]byte, TagSize)})
	st.mu.Lock()
	st.log = append(st.log, bogus...)
	st.mu.Unlock()
	w2, _, err := Open(st)
	if err != nil {
		t.Fatal(err)
	}
	es := w2.Segment().Entries
	if last := es[len(es)-1]; last.Type != wire.EntryRollbackDetected || !strings.Contains(Summary(last), "discarded 1 whole record") {
		t.Fatalf("last entry %q", Summary(last))
	}
}

// D26: the device state in the slot is authenticated under the chain key: an edit that keeps
// the CRC right is seen at Open (ExtAuthentic false); a torn write is not an edit.
func TestThreatD26_DeviceStateAuthenticated(t *testing.T) {
	w, st := newTestWriter(t)
	if err := w.SaveExt([]byte{0xa1, 0x02, 0x05}); err != nil { // {2: 5}: rseq 5
		t.Fatal(err)
	}
	appendN(t, w, 2)
	w2, _, err := Open(st)
	if err != nil || !w2.ExtAuthentic() || !bytes.Equal(w2.Ext(), []byte{0xa1, 0x02, 0x05}) {
		t.Fatalf("reopen: ext %x auth %v err %v", w2.Ext(), w2.ExtAuthentic(), err)
	}
	// Edit rseq 5 -> 1 in the active slot and fix both CRCs, as a renter with a hex editor would.
	act := w2.active
	b, _ := st.ReadSlot(act)
	s, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	s.Ext = []byte{0xa1, 0x02, 0x01}
	forged := s.encode()
	ext := len(forged) - (8 + 3 + TagSize + 4)
	copy(forged[ext+8+3:], b[ext+8+3:ext+8+3+TagSize]) // keep the old tag: he has no MAC code
	binary.BigEndian.PutUint32(forged[len(forged)-4:], crc32.ChecksumIEEE(forged[ext:len(forged)-4]))
	st.mu.Lock()
	st.slots[act] = forged
	st.mu.Unlock()
	w3, _, err := Open(st)
	if err != nil {
		t.Fatal(err)
	}
	if w3.ExtAuthentic() {
		t.Fatal("an edited device state passed as authentic")
	}
	// An older guard's trailer ("fsx1", CRC over the CBOR, no tag) is read, as unauthenticated.
	legacy := append([]byte(nil), forged[:ext]...)
	legacy = append(legacy, "fsx1"...)
	legacy = binary.BigEndian.AppendUint32(legacy, 3)
	legacy = append(legacy, 0xa1, 0x02, 0x05)
	legacy = binary.BigEndian.AppendUint32(legacy, crc32.ChecksumIEEE([]byte{0xa1, 0x02, 0x05}))
	if ls, err := decodeState(legacy); err != nil || ls.ExtAuth || !bytes.Equal(ls.Ext, []byte{0xa1, 0x02, 0x05}) {
		t.Fatalf("fsx1 trailer: %v", err)
	}
	// A torn device state makes the slot invalid: the other slot (older generation) is used.
	st2 := NewMemStorage()
	w4, _ := Create(st2, testDev, 1, testK1())
	w4.SaveExt([]byte{0xa0})
	st2.BeforeWrite = func(op WriteOp) int {
		if op.Kind == WriteStateSlot && op.Off == 0 {
			return len(op.Data) - 2
		}
		return -1
	}
	w4.SaveExt([]byte{0xa1, 0x02, 0x07})
	st2.Revive()
	w5, _, err := Open(st2)
	if err != nil || !w5.ExtAuthentic() || !bytes.Equal(w5.Ext(), []byte{0xa0}) {
		t.Fatalf("torn ext: %x auth %v err %v", w5.Ext(), w5.ExtAuthentic(), err)
	}
}

// D26: a log whose committed entries are gone from storage is salvaged, not refused: the
// device keeps its chain state and logs log-corrupt (tamper class) as entry n+1.
func TestThreatD26_CorruptLogSalvaged(t *testing.T) {
	w, st := newTestWriter(t)
	appendN(t, w, 4)
	_, h4, _ := w.State()
	st.mu.Lock()
	st.log[30] ^= 0xff // inside entry 1: its CRC fails, so entries 1..4 are unreadable
	st.mu.Unlock()
	if _, _, err := Open(st); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: %v", err)
	}
	w2, err := Salvage(st, 1767400000)
	if err != nil {
		t.Fatal(err)
	}
	seg := w2.Segment()
	if seg.First != 5 || len(seg.Entries) != 1 || seg.Entries[0].Type != wire.EntryLogCorrupt || !wire.IsTamper(wire.EntryLogCorrupt) {
		t.Fatalf("salvaged segment first=%d entries=%v", seg.First, seg.Entries)
	}
	// A server that had verified up to entry 4 verifies the log-corrupt entry: the device's own.
	a := Anchor{Dev: testDev, Epoch: 1, N: 4, Head: h4, NextKey: KeyAt(testK1(), 5)}
	if _, fresh, err := Verify(a, seg, nil); err != nil || len(fresh) != 1 {
		t.Fatalf("server verify: %v", err)
	}
	// One whose anchor is below the lost entries sees a gap: still not silence.
	a0 := NewAnchor(testDev, 1, testK1())
	var ve *VerifyError
	if _, _, err := Verify(a0, seg, nil); !errors.As(err, &ve) || ve.Name != NameGap {
		t.Fatalf("server verify from genesis: %v", err)
	}
	if _, rec, err := Open(st); err != nil || rec {
		t.Fatalf("open after salvage: rec=%v err=%v", rec, err)
	}
}
