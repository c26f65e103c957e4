package fschain

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// D2: the renter restores the original file before returning the device. The check-fail
// logged while it was modified stays in the log, and removing it is detected.
func TestThreatD2_RestoredFileStaysInLog(t *testing.T) {
	w, _ := newTestWriter(t)
	appendN(t, w, 3)
	fail := wire.MustMarshal(&wire.CheckFailPayload{Files: 4, Bad: []wire.BadFile{{Path: "app/metrology.mpy", Kind: wire.KindModified, Expected: make([]byte, 8), Seen: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}})
	if _, err := w.Append(1767300000, wire.EntryCheckFail, fail); err != nil {
		t.Fatal(err)
	}
	// File restored: later checks pass.
	appendN(t, w, 3)
	seg := w.Segment()
	srv := newServer()
	if err := srv.verify(cloneSeg(seg)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range srv.got {
		found = found || e.Type == wire.EntryCheckFail
	}
	if !found {
		t.Fatal("server did not receive the check-fail")
	}
	x := w.Export()
	res, err := CheckExport(x, CheckOptions{ChainKey: ptr(testK1())})
	if err != nil || res.Err != nil {
		t.Fatalf("offline check: %v %v", err, res.Err)
	}
	if len(res.Tamper) != 1 || res.Tamper[0].Entry.N != 4 || !res.Tamper[0].LaterOK {
		t.Fatalf("offline check tamper events: %+v", res.Tamper)
	}
	// Dropping the check-fail entry from the export (and renumbering) is detected.
	cut := cloneSeg(seg)
	cut.Entries = append(cut.Entries[:3], cut.Entries[4:]...)
	for i := range cut.Entries {
		cut.Entries[i].N = uint64(i + 1)
	}
	cut.N--
	if _, _, err := Verify(NewAnchor(testDev, 1, testK1()), cut, nil); !errors.Is(err, ErrForgedEntry) {
		t.Fatalf("entry removed: %v", err)
	}
	// Rewriting it as a check-ok is detected.
	mod := cloneSeg(seg)
	mod.Entries[3].Type, mod.Entries[3].Payload = payloadFor(0)
	_, _, err = Verify(NewAnchor(testDev, 1, testK1()), mod, nil)
	wantVerifyErr(t, err, NameForgedEntry, 4)
}

func ptr[T any](v T) *T { return &v }

// D11: a thief reads everything the device stores, including the current key, and tries
// to rewrite or drop older entries.
func TestThreatD11_StolenKeyCannotRewriteHistory(t *testing.T) {
	w, st := newTestWriter(t)
	var keys []Key
	k := testK1()
	for i := 0; i < 20; i++ {
		keys = append(keys, k)
		k = Evolve(k)
	}
	appendN(t, w, 10)
	// Forward security of storage: no erased key K_1..K_10 remains anywhere.
	dump := st.Bytes()
	for i, old := range keys[:10] {
		if bytes.Contains(dump, old[:]) {
			t.Fatalf("K_%d still on storage", i+1)
		}
	}
	stolen := w.s.Key // K_11, what the thief has
	if stolen != keys[10] {
		t.Fatal("current key is not K_11")
	}
	seg := w.Segment()
	c := newChain(testDev, 1)

	// (a) Rewrite entry 4 and re-MAC it and everything after with the stolen key.
	forged := cloneSeg(seg)
	forged.Entries[3].Payload = wire.MustMarshal(&wire.CheckOKPayload{Files: 99})
	h := GenesisHead(testDev, 1)
	kk := stolen
	for i := range forged.Entries {
		e := &forged.Entries[i]
		if i >= 3 {
			tag, _ := c.step(&kk, &h, e.N, e.T, e.Type, e.Payload)
			e.Tag = tag[:]
		}
		h = c.headOf(&h, e.N, e.T, e.Type, e.Payload, e.Tag)
	}
	forged.Head = h[:]
	s := c.seal(&kk, forged.N, &h)
	forged.Seal = s[:]
	_, _, err := Verify(NewAnchor(testDev, 1, testK1()), forged, nil)
	wantVerifyErr(t, err, NameForgedEntry, 4)

	// (b) Drop entries 6..10 and seal the shorter log with the stolen key.
	short := cloneSeg(seg)
	short.Entries = short.Entries[:5]
	short.N = 5
	h5, _ := w.HeadAt(5)
	short.Head = h5[:]
	s = c.seal(&stolen, 5, &h5)
	short.Seal = s[:]
	_, _, err = Verify(NewAnchor(testDev, 1, testK1()), short, nil)
	wantVerifyErr(t, err, NameBadSeal, 5)

	// (c) After the server verified the log, a resent, rewritten history is a fork.
	srv := newServer()
	if err := srv.verify(cloneSeg(seg)); err != nil {
		t.Fatal(err)
	}
	re := cloneSeg(seg)
	re.Entries[1].T++
	err = srv.verify(re)
	wantVerifyErr(t, err, NameFork, 2)

	// (d) New entries the thief appends with the stolen key do verify: that is the limit of
	// the construction (fschain.md: "can only write new, future entries").
	if _, err := w.Append(1767300000, wire.EntryCheckOK, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
}

// D12: cutting off the newest entries — the unsent tail, or below the server's anchor.
func TestThreatD12_TailTruncation(t *testing.T) {
	w, st := newTestWriter(t)
	appendN(t, w, 5)
	srv := newServer()
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	snapshot := st.Clone() // state at n=5, as a thief could keep it
	appendN(t, w, 5)
	// Unsent tail cut: entries 9 and 10 removed, state claims n=8 with the seal it has.
	seg := cloneSeg(w.Segment())
	seg.Entries = seg.Entries[:len(seg.Entries)-2]
	seg.N = 8
	h8, _ := w.HeadAt(8)
	seg.Head = h8[:]
	_, _, err := Verify(srv.a, seg, headsOf(srv.heads))
	wantVerifyErr(t, err, NameBadSeal, 8)
	// Cut below the anchor: the server verified 1..10, the device is put back to n=5.
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	old, _, err := Open(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Verify(srv.a, old.Segment(), headsOf(srv.heads))
	wantVerifyErr(t, err, NameRollback, 5)
}

// D13: restoring a full flash snapshot taken earlier, then carrying on.
func TestThreatD13_SnapshotRestore(t *testing.T) {
	w, st := newTestWriter(t)
	appendN(t, w, 3)
	snapshot := st.Clone()
	appendN(t, w, 4) // includes, say, a check-fail the renter wants gone
	srv := newServer()
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	// The restored device has n=3 and appends new entries 4', 5', ... past the anchor.
	snapshot2 := snapshot.Clone()
	old, _, err := Open(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if _, err := old.Append(uint64(1767400000+i), wire.EntryCheckOK, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = Verify(srv.a, old.Segment(), headsOf(srv.heads))
	wantVerifyErr(t, err, NameFork, 4)
	// Without the overlap (only the entries past the anchor) the key is wrong.
	seg := old.Segment()
	seg.First, seg.Entries = 8, seg.Entries[7:]
	_, _, err = Verify(srv.a, seg, headsOf(srv.heads))
	wantVerifyErr(t, err, NameForgedEntry, 8)
	// A restored device that does not append is a rollback.
	old2, _, _ := Open(snapshot2)
	_, _, err = Verify(srv.a, old2.Segment(), headsOf(srv.heads))
	wantVerifyErr(t, err, NameRollback, 3)
}

// D15: a device offline with a full log keeps every tamper entry and records how many
// routine ones it dropped.
func TestThreatD15_OverflowKeepsTamperEntries(t *testing.T) {
	w, _ := newTestWriter(t)
	w.SetCapacity(5)
	srv := newServer()
	var dropped, tamper int
	for i := 0; i < 40; i++ {
		typ, p := payloadFor(i)
		if i%7 == 3 {
			typ, p = wire.EntryCoverOpen, wire.MustMarshal(&wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
			tamper++
		}
		_, err := w.Append(uint64(1767225600+i), typ, p)
		switch {
		case errors.Is(err, ErrDropped):
			if wire.IsTamper(typ) {
				t.Fatal("tamper entry dropped")
			}
			dropped++
		case err != nil:
			t.Fatal(err)
		}
	}
	if dropped == 0 || int(w.Dropped()) != dropped {
		t.Fatalf("dropped %d, writer counted %d", dropped, w.Dropped())
	}
	// Reboot keeps the count.
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	if err := w.Prune(srv.a.N, srv.a.Head); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(1767229999, wire.EntryCheckOK, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	var gotTamper, overflow int
	for _, e := range srv.got {
		if e.Type == wire.EntryCoverOpen {
			gotTamper++
		}
		if e.Type == wire.EntryOverflow {
			var p wire.OverflowPayload
			if err := wire.Unmarshal(e.Payload, &p); err != nil {
				t.Fatal(err)
			}
			overflow += int(p.Dropped)
		}
	}
	if gotTamper != tamper || overflow != dropped {
		t.Fatalf("server got %d/%d tamper entries, overflow count %d/%d", gotTamper, tamper, overflow, dropped)
	}
	if w.Dropped() != 0 {
		t.Fatal("count not reset")
	}
}

// D14: a power cut at every byte of every write of an append (record, new state slot,
// zeroing of the old slot) — and again at every byte of every write recovery makes —
// leaves a log that verifies with every committed entry intact.
func TestThreatD14_PowerCutAtEveryByte(t *testing.T) {
	const before = 3
	base, _ := newTestWriter(t)
	appendN(t, base, before)
	baseSt := base.st.(*MemStorage)
	// Learn the writes of one append.
	probe := baseSt.Clone()
	pw, _, _ := Open(probe)
	var ops []WriteOp
	probe.BeforeWrite = func(op WriteOp) int { ops = append(ops, op); return -1 }
	typ, p := wire.EntryCheckFail, wire.MustMarshal(&wire.CheckFailPayload{Files: 3, Bad: []wire.BadFile{{Path: "main.mpy", Kind: wire.KindModified}}})
	if _, err := pw.Append(1767300000, typ, p); err != nil {
		t.Fatal(err)
	}
	if len(ops) != 3 {
		t.Fatalf("an append made %d writes, want 3", len(ops))
	}
	scenarios := 0
	for wi, op := range ops {
		for keep := 0; keep <= len(op.Data); keep++ {
			st := baseSt.Clone()
			w, _, err := Open(st)
			if err != nil {
				t.Fatal(err)
			}
			st.BeforeWrite = func(o WriteOp) int {
				if o.Seq == wi {
					return keep
				}
				return -1
			}
			_, err = w.Append(1767300000, typ, p)
			if !errors.Is(err, ErrPowerCut) {
				t.Fatalf("write %d keep %d: append returned %v", wi, keep, err)
			}
			committed := wi > 0 || keep == len(op.Data)
			st.Revive()
			// Recovery itself may lose power at any byte of any of its writes.
			rops := recoveryWrites(t, st.Clone())
			for ri := -1; ri < len(rops); ri++ {
				rkeeps := []int{-1}
				if ri >= 0 {
					rkeeps = rkeeps[:0]
					for k := 0; k <= max(1, len(rops[ri].Data)); k++ {
						rkeeps = append(rkeeps, k)
					}
				}
				for _, rk := range rkeeps {
					st2 := st.Clone()
					if ri >= 0 {
						st2.BeforeWrite = func(o WriteOp) int {
							if o.Seq == ri {
								return rk
							}
							return -1
						}
						if _, _, err := Open(st2); err == nil {
							// The cut may fall after the last write mattered; fine.
						}
						st2.Revive()
					}
					scenarios++
					checkRecovered(t, st2, before, committed, fmt.Sprintf("append write %d keep %d, recovery write %d keep %d", wi, keep, ri, rk))
				}
			}
		}
	}
	t.Logf("%d power-cut scenarios", scenarios)
}

// recoveryWrites lists the writes Open makes on st.
func recoveryWrites(t *testing.T, st *MemStorage) []WriteOp {
	var ops []WriteOp
	st.BeforeWrite = func(op WriteOp) int { ops = append(ops, op); return -1 }
	if _, _, err := Open(st); err != nil {
		t.Fatal(err)
	}
	return ops
}

// checkRecovered opens st and checks the log verifies from genesis, holds entries
// 1..before unchanged and, if the interrupted append was committed, that entry too.
func checkRecovered(t *testing.T, st *MemStorage, before int, committed bool, what string) {
	t.Helper()
	w, _, err := Open(st)
	if err != nil {
		t.Fatalf("%s: open: %v", what, err)
	}
	// Forward security survives the crash: no erased key is left on storage.
	dump, k := st.Bytes(), testK1()
	for n := uint64(1); n <= w.s.N; n++ {
		if bytes.Contains(dump, k[:8]) || bytes.Contains(dump, k[24:]) {
			t.Fatalf("%s: (part of) K_%d left on storage after recovery", what, n)
		}
		k = Evolve(k)
	}
	srv := newServer()
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatalf("%s: recovered log does not verify: %v", what, err)
	}
	ref, _ := newTestWriter(t)
	want := appendN(t, ref, before)
	for i, e := range want {
		if !entryEqual(srv.got[i], e) {
			t.Fatalf("%s: committed entry %d changed", what, e.N)
		}
	}
	if committed && (len(srv.got) <= before || srv.got[before].Type != wire.EntryCheckFail) {
		t.Fatalf("%s: committed entry %d lost", what, before+1)
	}
	// The device can carry on.
	if _, err := w.Append(1767399999, wire.EntryCheckOK, nil); err != nil {
		t.Fatalf("%s: append after recovery: %v", what, err)
	}
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func entryEqual(a, b wire.Entry) bool {
	return a.N == b.N && a.T == b.T && a.Type == b.Type && bytes.Equal(a.Payload, b.Payload) && bytes.Equal(a.Tag, b.Tag)
}
