package firmware_test

// The guard's threat tests D2 and D8–D16 (docs/THREAT_MODEL.md) on the Cortex-M3 build, as
// mpharness runs them under WebAssembly: the real boot path where a board's own boot
// matters (D2, D9, D13, D14), the lab image (the same frozen guard and adapter, a boot file
// that leaves the REPL open) where the test drives the board's inputs (D8, D10, D11, D15).
// D16 (the erase policy) runs on an image sealed with that policy (testdata/guarderase).

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
	"github.com/fieldseal/fieldseal/device/micropython/mpharness"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// labCover defines cover(level, edges) in a lab session: the board's cover input moves
// (its level, and edges more edges on the counter the adapter's IRQ keeps), then one pass
// of the guard's loop, as the board's main loop runs it.
const labCover = "def cover(level, edges):\n    c = int.from_bytes(P.hw[16:20], 'big') + edges\n    P.hw[4] = level\n" +
	"    P.hw[16:20] = c.to_bytes(4, 'big')\n    P.hwdev.writeblocks(0, P.hw)\n    D.poll()\n"

// labExec runs code in a lab session and returns what it printed.
func labExec(t *testing.T, vm *firmware.VM, code string) string {
	t.Helper()
	out, err := vm.Exec(code, 300*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, vm.Output())
	}
	return out
}

// labReport has the lab's guard send a report now and opens it.
func labReport(t *testing.T, vm *firmware.VM, b wire.Bundle) *wire.Report {
	t.Helper()
	return openFromOutput(t, labExec(t, vm, "P.send(D.report())\n"), b.UplinkKey)
}

func entriesOf(es []wire.Entry, typ uint16) []wire.Entry {
	var out []wire.Entry
	for _, e := range es {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func coverSources(t *testing.T, es []wire.Entry) []string {
	t.Helper()
	var out []string
	for _, e := range entriesOf(es, wire.EntryCoverOpen) {
		var p wire.CoverOpenPayload
		if err := wire.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Source)
	}
	return out
}

// D2 on the Cortex-M3 build: the renter edits main.mpy on the application's volume, the
// board boots (the edit is found and reported at once, the app never runs), then puts
// the sealed file back: the next boot is clean and runs the app, but its report still
// carries the check-fail and the latched tamper flag.
func TestThreatD2_RestoredFileStaysReportedOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	bad := append([]byte{}, mainMpy...)
	bad[len(bad)/2] ^= 0x01
	sd := filepath.Join(dir, "sd.img")
	lfsWrite(t, sd, 4096, map[string][]byte{"main.mpy": bad})
	out, rep := bootToFirstReport(t, dir, 64<<10, b.UplinkKey)
	if findings(rep)["main.mpy"] != wire.KindModified || strings.Contains(out, "APP ") {
		t.Fatalf("edited boot: findings %v\n%s", findings(rep), out)
	}
	lfsWrite(t, sd, 4096, map[string][]byte{"main.mpy": mainMpy})
	rep, _, _, _ = bootRealToReport(t, dir, 64<<10, b)
	es := serverVerify(t, b, rep)
	if rep.Meas.Status != wire.MeasOK {
		t.Fatalf("restored boot: measurement %+v", rep.Meas)
	}
	if len(entriesOf(es, wire.EntryCheckFail)) == 0 {
		t.Fatalf("the check-fail is gone: %v", entryTypes(rep))
	}
	if rep.State&wire.StateTamperLatched == 0 {
		t.Fatalf("state %#x: the tamper latch cleared without a token", rep.State)
	}
}

// D8 on the Cortex-M3 build: the cover opened while powered is logged from the board's
// cover IRQ counter; an open and close between two passes of the loop is not lost.
func TestThreatD8_CoverWhilePoweredOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	vm := labSession(t, dir, 64<<10)
	labExec(t, vm, labCover+"cover(1, 1)\ncover(0, 1)\ncover(0, 2)\n")
	es := serverVerify(t, b, labReport(t, vm, b))
	var got []string
	for _, e := range es {
		got = append(got, wire.EntryName(e.Type))
	}
	if want := "boot cover-open cover-close cover-open cover-close"; strings.Join(got, " ") != want {
		t.Fatalf("entries %v, want %s", got, want)
	}
	if s := coverSources(t, es); s[0] != wire.CoverSourceIRQ || s[1] != wire.CoverSourceIRQ {
		t.Fatalf("cover-open sources %v", s)
	}
}

// D9 on the Cortex-M3 build: the cover opened and closed while the board was unpowered
// (the hardware latch holds it) is logged at the next boot with source latch and the
// latch is re-armed; a cover left open is logged from the level.
func TestThreatD9_LatchAtBootOnCortexM3(t *testing.T) {
	fw, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	bootToApp(t, fw, dir, 64<<10) // provisioning arms the latch
	pokeHW(t, dir, 5, []byte{1})  // then, unpowered, the cover opens (the latch holds it) and closes
	rep, _, _, _ := bootRealToReport(t, dir, 64<<10, b)
	if rep.State&wire.StateCoverWasOpen == 0 || readHW(t, dir)[5] != 0 {
		t.Fatalf("state %#x, latch %d: want cover-was-open and the latch re-armed", rep.State, readHW(t, dir)[5])
	}
	pokeHW(t, dir, 4, []byte{1, 1}) // opened while unpowered and left open
	rep, _, _, _ = bootRealToReport(t, dir, 64<<10, b)
	es := serverVerify(t, b, rep)
	if s := coverSources(t, es); strings.Join(s, " ") != "latch latch level" {
		t.Fatalf("cover-open sources %v", s)
	}
	if rep.State&wire.StateCoverOpenNow == 0 {
		t.Fatalf("state %#x lacks cover-open-now", rep.State)
	}
}

var tokLine = regexp.MustCompile(`TOK (\S+)`)

// D10 on the Cortex-M3 build: latched tamper flags clear only with an authentic clear
// token under T; a forged one, one under R and a replay are refused and logged as
// bad-downlink.
func TestThreatD10_ClearOnlyWithTokenOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	vm := labSession(t, dir, 64<<10)
	labExec(t, vm, labCover+"cover(1, 1)\ncover(0, 1)\n")
	id := make([]byte, 16)
	rand.Read(id)
	tok := &wire.Token{Dev: b.Device, Epoch: b.Epoch, ID: id, Action: wire.TokenClear, UntilRSeq: 10, Expires: 1767225600 + 365*86400}
	other := make([]byte, 32)
	rand.Read(other)
	var code strings.Builder
	for _, key := range [][]byte{other, b.UplinkKey, b.DownlinkKey, b.DownlinkKey} {
		raw, err := wire.SealToken(tok, key)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&code, "print('TOK', D.token(ubinascii.a2b_base64('%s')), D.flags())\n", base64.StdEncoding.EncodeToString(raw))
	}
	out := labExec(t, vm, code.String())
	var got []string
	for _, m := range tokLine.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1])
	}
	if strings.Join(got, " ") != "bad-mac bad-mac ok token-replay" {
		t.Fatalf("token results %v\n%s", got, out)
	}
	rep := labReport(t, vm, b)
	es := serverVerify(t, b, rep)
	if rep.State&(wire.StateTamperLatched|wire.StateCoverWasOpen) != 0 {
		t.Fatalf("state %#x after the clear token", rep.State)
	}
	if len(entriesOf(es, wire.EntryTamperCleared)) != 1 || len(entriesOf(es, wire.EntryBadDownlink)) != 3 {
		t.Fatalf("entries %v: want one tamper-cleared and three bad-downlink", entryTypes(rep))
	}
}

// D11 on the Cortex-M3 build: a thief reads the current chain key from the state slots on
// the board's raw slot device (bkpsram.img) and re-MACs the log with an opening hidden:
// the verifier names the first rewritten entry (forged-entry), as the key it holds is
// K_{n+1}, never an earlier one.
func TestThreatD11_RewriteWithStolenKeyOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, true)
	vm := labSession(t, dir, 64<<10)
	labExec(t, vm, labCover+"cover(1, 1)\ncover(0, 1)\n")
	rep := labReport(t, vm, b)
	vm.Kill()
	raw, err := os.ReadFile(filepath.Join(dir, "bkpsram.img"))
	if err != nil {
		t.Fatal(err)
	}
	var slot []byte
	for _, off := range []int{0, 2048} { // RawSlotStore: slot a, slot b
		s := raw[off:]
		if bytes.HasPrefix(s, []byte("fs1s")) && (slot == nil || binary.BigEndian.Uint64(s[4:12]) > binary.BigEndian.Uint64(slot[4:12])) {
			slot = s
		}
	}
	if slot == nil {
		t.Fatal("no state slot on the raw device")
	}
	var k fschain.Key
	copy(k[:], slot[56:88])
	seg := rep.Log
	prev := fschain.GenesisHead(b.Device, b.Epoch)
	for i := range seg.Entries {
		e := &seg.Entries[i]
		if e.Type == wire.EntryCoverOpen {
			e.Type, e.Payload = wire.EntryCoverClose, []byte{0xa0}
		}
		tag, h, next, seal := fschain.Step(b.Device, b.Epoch, k, prev, e.N, e.T, e.Type, e.Payload)
		e.Tag, prev, k = tag[:], h, next
		seg.Head, seg.Seal = h[:], seal[:]
	}
	_, _, err = fschain.Verify(anchor0(b), seg, nil)
	var ve *fschain.VerifyError
	if !errors.As(err, &ve) || ve.Name != "forged-entry" || ve.Seq != 1 {
		t.Fatalf("verify the rewritten log: %v", err)
	}
}

// D12 on the Cortex-M3 build: the newest entry cut off a report's log, the head chain
// recomputed (it is unkeyed): the seal no longer matches (bad-seal).
func TestThreatD12_TailTruncationOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	vm := labSession(t, dir, 64<<10)
	labExec(t, vm, labCover+"cover(1, 1)\n")
	seg := labReport(t, vm, b).Log
	seg.Entries = seg.Entries[:len(seg.Entries)-1]
	seg.N--
	h := fschain.GenesisHead(b.Device, b.Epoch)
	for i := range seg.Entries {
		h = fschain.EntryHead(b.Device, b.Epoch, h, &seg.Entries[i])
	}
	seg.Head = h[:]
	_, _, err := fschain.Verify(anchor0(b), seg, nil)
	var ve *fschain.VerifyError
	if !errors.As(err, &ve) || ve.Name != "bad-seal" {
		t.Fatalf("verify without the newest entry: %v", err)
	}
}

// D13 on the Cortex-M3 build: the board's internal flash (flash.img, log and state slots)
// copied after a boot and written back after the server has verified later entries: the
// next report does not continue from the server's anchor (rollback, fork or
// forged-entry).
func TestThreatD13_FlashSnapshotRestoreOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	vm := labSession(t, dir, 64<<10)
	vm.Kill()
	flash := filepath.Join(dir, "flash.img")
	snap, err := os.ReadFile(flash)
	if err != nil {
		t.Fatal(err)
	}
	vm = labSession(t, dir, 64<<10)
	labExec(t, vm, labCover+"cover(1, 1)\ncover(0, 1)\n")
	a, _ := verifyFrom(t, anchor0(b), labReport(t, vm, b)) // the server verified up to here
	vm.Kill()
	if err := os.WriteFile(flash, snap, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, _, _, _ := bootRealToReport(t, dir, 64<<10, b)
	_, _, err = fschain.Verify(a, rep.Log, nil)
	var ve *fschain.VerifyError
	if !errors.As(err, &ve) || (ve.Name != "rollback" && ve.Name != "fork" && ve.Name != "forged-entry") {
		t.Fatalf("verify after the snapshot restore: %v", err)
	}
	t.Logf("snapshot restore: %v", err)
}

var committedLine = regexp.MustCompile(`N (\d+)\r?\n`)

// D14 on the Cortex-M3 build: power cut (qemu killed) while the guard appends entries as
// fast as it can, at three points; after each, the board's own boot recovers the log, and
// its report verifies and holds every entry the guard had committed (printed after each
// append returned) before the cut.
func TestThreatD14_PowerCutWhileLoggingOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	for _, after := range []int{3, 11, 29} {
		vm := labSession(t, dir, 64<<10)
		if err := vm.Send("for i in range(100000):\n    print('N', D.log(device.CHECK_OK, {1: i}))\n", 60*time.Second); err != nil {
			t.Fatal(err)
		}
		var last uint64
		for i := 0; i < after; i++ {
			line, err := vm.Expect("\n", 60*time.Second)
			if err != nil {
				t.Fatalf("%v\n%s", err, vm.Output())
			}
			if m := committedLine.FindStringSubmatch(line); m != nil {
				last, _ = strconv.ParseUint(m[1], 10, 64)
			}
		}
		vm.Kill() // the power fails mid-way through whatever append runs now
		if last == 0 {
			t.Fatalf("no committed entry seen\n%s", vm.Output())
		}
		rep, _, _, _ := bootRealToReport(t, dir, 64<<10, b)
		es := serverVerify(t, b, rep)
		if es[0].N != 1 || es[len(es)-1].N < last {
			t.Fatalf("cut after %d appends: report holds %d..%d, entry %d was committed", after, es[0].N, es[len(es)-1].N, last)
		}
		t.Logf("cut after entry %d: the next boot reports %d entries (n=%d), recovered: %v", last, len(es), rep.Log.N, len(entriesOf(es, wire.EntryRecovered)) > 0)
	}
}

// D15 on the Cortex-M3 build: with the log full, routine entries are counted and the
// overflow flag is reported; tamper entries are still stored, beyond the cap; once an ack
// frees space the count is logged as one overflow entry.
func TestThreatD15_LogFullOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	vm := labSession(t, dir, 112<<10)
	_, capacity, n := fillLog(t, vm)
	// a routine entry is dropped (append returns 0); three openings are stored, their
	// closings (routine) are not
	out := labExec(t, vm, labCover+"print(D.log(device.CHECK_OK, {1: 1, 2: b'r' * 32, 3: 5}))\nfor i in range(3):\n    cover(1, 1)\n    cover(0, 1)\n"+
		"print(D.chain.s['n'], D.chain.log_size)\n")
	var routine, n2 uint64
	var size int
	if _, err := fmt.Sscan(out, &routine, &n2, &size); err != nil || routine != 0 || n2 != n+3 || size <= capacity {
		t.Fatalf("with the log full (n=%d): %q, want 0 (dropped), n=%d and more than %d bytes", n, out, n+3, capacity)
	}
	rep := labReport(t, vm, b)
	if rep.State&wire.StateLogOverflow == 0 {
		t.Fatalf("state %#x lacks log-overflow", rep.State)
	}
	a, _ := verifyFrom(t, anchor0(b), rep)
	if a.N != rep.Log.N {
		t.Fatalf("the report carried up to %d of %d", a.N, rep.Log.N)
	}
	dropped := labExec(t, vm, "print(D.chain.s['dr'])\n")
	ack, err := wire.SealAck(&wire.Ack{Dev: b.Device, Epoch: b.Epoch, AckedRSeq: rep.RSeq, Anchor: wire.Anchor{N: a.N, Head: a.Head[:]}}, b.DownlinkKey)
	if err != nil {
		t.Fatal(err)
	}
	if out := labExec(t, vm, "print('ACK', D.ack(ubinascii.a2b_base64('"+base64.StdEncoding.EncodeToString(ack)+"')))\n"); !ackOK.MatchString(out) {
		t.Fatalf("ack: %q", out)
	}
	_, es := verifyFrom(t, a, labReport(t, vm, b))
	if len(es) != 1 || es[0].Type != wire.EntryOverflow {
		t.Fatalf("entries after the ack: %v", es)
	}
	var p wire.OverflowPayload
	if err := wire.Unmarshal(es[0].Payload, &p); err != nil || strconv.FormatUint(uint64(p.Dropped), 10) != strings.TrimSpace(dropped) {
		t.Fatalf("overflow %+v, the guard counted %s (%v)", p, dropped, err)
	}
}

// D16 on the Cortex-M3 build: under the default policy (refuse) a file on the application's
// volume that the manifest does not seal is reported and kept, boot after boot; on an image
// sealed with on-mismatch=erase it is deleted at boot and the deletion logged (erased), and
// the next boot is clean and runs the app.
func TestThreatD16_EraseOptInOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	extra := map[string][]byte{"calib.mpy": []byte("not sealed")}
	dir, b := newDevice(t, mainMpy, false)
	lfsWrite(t, filepath.Join(dir, "sd.img"), 4096, extra)
	for boot := 1; boot <= 2; boot++ {
		_, rep := bootToFirstReport(t, dir, 64<<10, b.UplinkKey)
		if findings(rep)["calib.mpy"] != wire.KindExtra || hasEntry(rep, wire.EntryErased) {
			t.Fatalf("refuse policy, boot %d: findings %v, entries %v", boot, findings(rep), entryTypes(rep))
		}
	}

	m := sealedManifest(mainMpy)
	m.Policy.OnMismatch = wire.ActionErase
	fw := sealedImage(t, filepath.Join("testdata", "guarderase"), mpharness.FrozenModule(m))
	dir, b = newDevice(t, mainMpy, false)
	lfsWrite(t, filepath.Join(dir, "sd.img"), 4096, extra)
	_, rep := bootToFirstReportOn(t, fw, dir, 64<<10, b.UplinkKey)
	erased := entriesOf(serverVerify(t, b, rep), wire.EntryErased)
	if len(erased) != 1 {
		t.Fatalf("erase policy: entries %v", entryTypes(rep))
	}
	var p wire.ErasedPayload
	if err := wire.Unmarshal(erased[0].Payload, &p); err != nil || len(p.Paths) != 1 || p.Paths[0] != "calib.mpy" {
		t.Fatalf("erased %+v %v", p, err)
	}
	rep, _, _, _ = bootRealToReportOn(t, fw, dir, 64<<10, b)
	if rep.Meas.Status != wire.MeasOK || len(findings(rep)) != 0 {
		t.Fatalf("the boot after the erase: measurement %+v", rep.Meas)
	}
}
