package mpharness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// D7: a .mpy with native machine code put in place of a bytecode one is a mismatch and
// never reaches the loader.
func TestThreatD7_NativeMpyRefused(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	native := append([]byte{'M', 6, 0x1f, 0x1f}, r.app.Files["main.mpy"][4:]...) // armv7emsp header
	r.step(Cmd{"cmd": "edit", "path": "main.mpy", "b64": b64(native)})
	b := r.boot()
	if badKinds(b.Summary)["main.mpy"] != wire.KindModified {
		t.Fatalf("bad %v", b.Summary.Bad)
	}
	if imp, _ := r.d.Import("main", "VALUE"); imp.OK {
		t.Fatal("native .mpy imported")
	}
}

// D8: opening the cover while powered is logged from the switch IRQ; an open and close
// between two passes of the main loop is not lost (the handler only counts).
func TestThreatD8_CoverWhilePowered(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	s := r.step(Cmd{"cmd": "cover", "open": true}).Summary
	if s.Flags&wire.StateCoverOpenNow == 0 || s.Flags&wire.StateCoverWasOpen == 0 {
		t.Fatalf("flags %b", s.Flags)
	}
	r.step(Cmd{"cmd": "cover", "open": false})
	// open and close again faster than the main loop runs: two IRQs, level back to closed
	ex := r.step(Cmd{"cmd": "exec", "code": "P.cover = True\nP._irq(None)\nP.cover = False\nP._irq(None)\nD.poll()\nresult = P.ev[0]"})
	if ex.Result != float64(4) {
		t.Fatalf("irq count %v", ex.Result)
	}
	_, es := r.verify(r.anchor0(), r.report())
	want := []uint16{wire.EntryBoot, wire.EntryCoverOpen, wire.EntryCoverClose, wire.EntryCoverOpen, wire.EntryCoverClose}
	if got := types(es); !equalTypes(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	var p wire.CoverOpenPayload
	if err := wire.Unmarshal(es[1].Payload, &p); err != nil || p.Source != wire.CoverSourceIRQ {
		t.Fatalf("cover-open %+v %v", p, err)
	}
}

// D9: the cover opened and closed while the device was unpowered is seen at boot from the
// hardware latch (source latch); a cover left open is seen from the level.
func TestThreatD9_LatchAtBoot(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	r.off()
	r.step(Cmd{"cmd": "cover", "open": true}) // unpowered: sets the latch
	r.step(Cmd{"cmd": "cover", "open": false})
	b := r.boot()
	if b.Summary.Flags&wire.StateCoverWasOpen == 0 || b.HW.Latch {
		t.Fatalf("flags %b latch %v (the guard re-arms the latch)", b.Summary.Flags, b.HW.Latch)
	}
	r.off()
	r.step(Cmd{"cmd": "cover", "open": true}) // left open
	r.boot()
	_, es := r.verify(r.anchor0(), r.report())
	var sources []string
	for _, e := range es {
		if e.Type == wire.EntryCoverOpen {
			var p wire.CoverOpenPayload
			wire.Unmarshal(e.Payload, &p)
			sources = append(sources, p.Source)
		}
	}
	if len(sources) != 3 || sources[0] != wire.CoverSourceLatch || sources[1] != wire.CoverSourceLatch || sources[2] != wire.CoverSourceLevel {
		t.Fatalf("cover-open sources %v", sources)
	}
}

// D11: a thief with the device's current chain key rewrites an old entry and re-MACs the
// whole log with it: the Go verifier names the entry (forged-entry).
func TestThreatD11_RewriteWithStolenKey(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	r.step(Cmd{"cmd": "cover", "open": true})
	r.step(Cmd{"cmd": "cover", "open": false})
	rep := r.report()
	k := stolenKey(t, r.opts.Int)
	seg := rep.Log
	prev := fschain.GenesisHead(r.bundle.Device, 1)
	for i := range seg.Entries {
		e := &seg.Entries[i]
		if e.Type == wire.EntryCoverOpen {
			e.Type, e.Payload = wire.EntryCoverClose, []byte{0xa0} // hide the opening
		}
		tag, h, next, seal := fschain.Step(r.bundle.Device, 1, k, prev, e.N, e.T, e.Type, e.Payload)
		e.Tag, prev, k = tag[:], h, next
		seg.Head, seg.Seal = h[:], seal[:]
	}
	_, _, err := fschain.Verify(r.anchor0(), seg, nil)
	var ve *fschain.VerifyError
	if !errors.As(err, &ve) || ve.Name != "forged-entry" || ve.Seq != 1 {
		t.Fatalf("verify: %v", err)
	}
}

// stolenKey reads K_{n+1} from the device's state slot, as a thief with a flash dump would.
func stolenKey(t *testing.T, intDir string) fschain.Key {
	var best []byte
	for _, n := range []string{"slot-a", "slot-b"} {
		b, _ := os.ReadFile(filepath.Join(intDir, n))
		if len(b) > 120 && string(b[:4]) == "fs1s" && (best == nil || binary.BigEndian.Uint64(b[4:12]) > binary.BigEndian.Uint64(best[4:12])) {
			best = b
		}
	}
	if best == nil {
		t.Fatal("no state slot")
	}
	var k fschain.Key
	copy(k[:], best[56:88])
	return k
}

// D12: cutting the newest entries off the log (here: the report's tail) is bad-seal.
func TestThreatD12_TailTruncation(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	r.step(Cmd{"cmd": "cover", "open": true})
	seg := r.report().Log
	last := seg.Entries[len(seg.Entries)-1]
	seg.Entries = seg.Entries[:len(seg.Entries)-1]
	seg.N--
	// the thief can recompute the head chain (it is unkeyed) but not the seal
	h := fschain.GenesisHead(r.bundle.Device, 1)
	for _, e := range seg.Entries {
		h = headOf(r.bundle.Device, h, e)
	}
	seg.Head = h[:]
	_, _, err := fschain.Verify(r.anchor0(), seg, nil)
	var ve *fschain.VerifyError
	if !errors.As(err, &ve) || ve.Name != "bad-seal" {
		t.Fatalf("verify without entry %d: %v", last.N, err)
	}
}

func headOf(dev string, prev fschain.Hash, e wire.Entry) fschain.Hash {
	msg := fschain.Msg(dev, 1, e.N, e.T, e.Type, prev, e.Payload)
	var h fschain.Hash
	copy(h[:], sha256sum(append(append([]byte("fs1/head"), msg...), e.Tag...)))
	return h
}

// D13: restoring an earlier flash snapshot of internal storage: the server's anchor is
// ahead of what the device now claims (rollback) or the log forks.
func TestThreatD13_SnapshotRestore(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	snap := t.TempDir()
	copyDir(t, r.opts.Int, snap)
	r.step(Cmd{"cmd": "cover", "open": true})
	r.step(Cmd{"cmd": "cover", "open": false})
	a, _ := r.verify(r.anchor0(), r.report()) // the server verified up to here
	r.off()
	os.RemoveAll(r.opts.Int)
	copyDir(t, snap, r.opts.Int)
	r.boot()
	_, _, err := fschain.Verify(a, r.report().Log, nil)
	var ve *fschain.VerifyError
	if !errors.As(err, &ve) || (ve.Name != "rollback" && ve.Name != "fork" && ve.Name != "forged-entry") {
		t.Fatalf("verify after snapshot restore: %v", err)
	}
	t.Logf("snapshot restore detected: %v", err)
}

func copyDir(t *testing.T, from, to string) {
	os.MkdirAll(to, 0o755)
	es, _ := os.ReadDir(from)
	for _, e := range es {
		if e.IsDir() || e.Name() == ".hw.json" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, e.Name()), b, 0o600)
	}
}

// D14: power cut during each write of an append, at several byte offsets, through real
// reboots of the interpreter: the log recovered by the guard verifies in Go, keeps every
// committed entry, and Go's fschain.Open recovers the same torn storage to the same n.
// (crash.py covers every byte of every write in one interpreter.)
func TestThreatD14_PowerCutAtEveryWrite(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	for _, k := range []int{1, 2, 3} {
		for _, b := range []int{0, 1, 17, 41, 150, 10000} {
			before := r.step(Cmd{"cmd": "state"}).Summary.N
			r.step(Cmd{"cmd": "cut", "write": k, "byte": b})
			resp, err := r.d.Step(Cmd{"cmd": "cover", "open": true})
			if err == nil || resp.Error != "power-cut" {
				t.Fatalf("write %d byte %d: no power cut: %v", k, b, err)
			}
			torn := t.TempDir()
			copyDir(t, r.opts.Int, torn)
			st, err := fschain.NewFileStorage(torn)
			if err != nil {
				t.Fatal(err)
			}
			gw, _, err := fschain.Open(st)
			if err != nil {
				t.Fatalf("write %d byte %d: Go cannot open the guard's storage: %v", k, b, err)
			}
			r.step(Cmd{"cmd": "cover", "open": false}) // unpowered: closes (latch set)
			s := r.boot().Summary
			t.Logf("write %d byte %d: rebooted at n=%d", k, b, s.N)
			rep := r.report()
			_, es := r.verify(r.anchor0(), rep)
			const recLen = 48 // the cover-open record: 42 bytes of framing, 6 of payload
			committed := k >= 2 || b >= recLen
			minN := before
			if committed {
				minN++
			}
			gn, _, _ := gw.State()
			if es[len(es)-1].N < minN {
				t.Fatalf("write %d byte %d: lost entries: n=%d before=%d", k, b, s.N, before)
			}
			// Go recovers the torn storage to the same entry the guard does (before either
			// logs its own recovered/boot entries)
			if !(gn == minN || gn == minN+1) {
				t.Fatalf("write %d byte %d: Go recovered to n=%d, guard kept %d", k, b, gn, minN)
			}
			if k == 1 && b > 0 && b < recLen && !hasType(es, wire.EntryRecovered) {
				t.Fatalf("write %d byte %d: torn record without a recovered entry: %v", k, b, types(es))
			}
		}
	}
}

// D15: with the log full, routine entries are counted, tamper entries are still stored,
// and the count is logged as overflow once an ack frees space.
func TestThreatD15_LogFull(t *testing.T) {
	r := newRig(t, nil, AppOptions{}, func(o *Options) { o.LogCap = 600 })
	r.boot()
	for i := 0; i < 12; i++ {
		r.step(Cmd{"cmd": "tick", "s": 3600})
	}
	s := r.step(Cmd{"cmd": "state"}).Summary
	if s.Dropped == 0 || s.Flags&wire.StateLogOverflow == 0 {
		t.Fatalf("dropped %d flags %b", s.Dropped, s.Flags)
	}
	s2 := r.step(Cmd{"cmd": "cover", "open": true}).Summary
	if s2.N != s.N+1 || s2.LogBytes <= 600 {
		t.Fatalf("tamper entry not stored when full: n %d→%d, %d bytes", s.N, s2.N, s2.LogBytes)
	}
	rep := r.report()
	if rep.State&wire.StateLogOverflow == 0 {
		t.Fatalf("state %b", rep.State)
	}
	a, _ := r.verify(r.anchor0(), rep)
	if got := r.ack(r.seal(&wire.Ack{Dev: r.bundle.Device, Epoch: 1, AckedRSeq: rep.RSeq, Anchor: wire.Anchor{N: a.N, Head: a.Head[:]}}, r.bundle.DownlinkKey)); got != "ok" {
		t.Fatalf("ack %q", got)
	}
	_, es := r.verify(a, r.report())
	if len(es) != 1 || es[0].Type != wire.EntryOverflow {
		t.Fatalf("entries after ack %v", types(es))
	}
	var p wire.OverflowPayload
	if err := wire.Unmarshal(es[0].Payload, &p); err != nil || int(p.Dropped) != s.Dropped {
		t.Fatalf("overflow %+v (dropped %d) %v", p, s.Dropped, err)
	}
}

// D16: the default policy refuses and reports, never deletes; erase is opt-in and logged.
func TestThreatD16_EraseOptIn(t *testing.T) {
	for _, policy := range []string{wire.ActionRefuse, wire.ActionErase, wire.ActionReport} {
		pol := wire.DefaultPolicy()
		pol.OnMismatch = policy
		r := newRig(t, nil, AppOptions{Policy: pol})
		r.step(Cmd{"cmd": "edit", "path": "calib.mpy", "b64": b64(r.mpy("K = 0\n"))})
		r.boot()
		_, err := os.Stat(filepath.Join(r.app.Ext, "calib.mpy"))
		_, es := r.verify(r.anchor0(), r.report())
		switch policy {
		case wire.ActionRefuse:
			if err != nil || hasType(es, wire.EntryErased) {
				t.Fatalf("refuse policy deleted the file (%v) or logged erased %v", err, types(es))
			}
		case wire.ActionReport:
			// report only: the edited module runs (exactly the bytes that were hashed), and
			// the mismatch is logged and reported
			imp, _ := r.d.Import("calib", "K")
			if err != nil || !imp.OK || imp.Value != float64(0) || !hasType(es, wire.EntryCheckFail) || hasType(es, wire.EntryErased) {
				t.Fatalf("report policy: import %+v, entries %v", imp, types(es))
			}
		case wire.ActionErase:
			if !os.IsNotExist(err) || !hasType(es, wire.EntryErased) {
				t.Fatalf("erase policy: file %v, entries %v", err, types(es))
			}
			for _, e := range es {
				if e.Type == wire.EntryErased {
					var p wire.ErasedPayload
					if err := wire.Unmarshal(e.Payload, &p); err != nil || len(p.Paths) != 1 || p.Paths[0] != "calib.mpy" {
						t.Fatalf("erased %+v %v", p, err)
					}
				}
			}
		}
	}
}

// Every byte of every write of an append and a prune, in one interpreter (crash.py).
func TestThreatD14_PowerCutAtEveryByte(t *testing.T) {
	res := runPy(t, "crash.py", t.TempDir())
	if len(res) != 1 {
		t.Fatalf("results %v", res)
	}
	if res[0]["nfail"] != float64(0) || res[0]["cases"].(float64) < 500 {
		t.Fatalf("crash.py: %v", res[0])
	}
	t.Logf("crash.py: %v cases, outcomes %v", res[0]["cases"], res[0]["outcomes"])
}

func equalTypes(a, b []uint16) bool { return bytes.Equal(u16s(a), u16s(b)) }

func u16s(a []uint16) []byte {
	var b []byte
	for _, x := range a {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

// The optional magnet input is logged once as tamper and latched until a clear token.
func TestMagnetInput(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	s := r.step(Cmd{"cmd": "magnet", "strength": 180}).Summary
	r.step(Cmd{"cmd": "magnet", "strength": 200}) // still latched: not logged again
	if s.Flags&wire.StateMagnet == 0 || s.Flags&wire.StateTamperLatched == 0 {
		t.Fatalf("flags %b", s.Flags)
	}
	_, es := r.verify(r.anchor0(), r.report())
	var p wire.MagnetPayload
	if len(es) != 2 || es[1].Type != wire.EntryMagnet || wire.Unmarshal(es[1].Payload, &p) != nil || p.Strength != 180 {
		t.Fatalf("entries %v %+v", types(es), p)
	}
}
