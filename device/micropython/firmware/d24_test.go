package firmware_test

import (
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// labImage is guardImage's guard, adapter and sealed manifest with a boot file that does not
// start the guard (testdata/guardlab): the REPL is reachable, so a test can drive the
// guard's own API on a device's storage; the real boot then runs on guardImage.
func labImage(t *testing.T) *firmware.QEMUFirmware {
	t.Helper()
	sealedApp(t) // the sealed manifest module it freezes is current (guardImage checks the committed copy)
	root := filepath.Join("..", "..", "..")
	return firmware.QEMU(t, firmware.QEMUOptions{FrozenManifest: filepath.Join("testdata", "guardlab", "manifest.py"),
		Inputs: []string{filepath.Join(root, "device", "micropython", "fieldseal"), filepath.Join(root, "examples", "boards"), "qemu", filepath.Join("testdata", "guard")}})
}

// labSession powers the lab image on over dir and returns it with the guard booted on the
// board's adapter (D = the Device, P = the Port), at heap bytes.
func labSession(t *testing.T, dir string, heap int) *firmware.VM {
	t.Helper()
	vm := firmware.Start(t, labImage(t), firmware.RunOptions{Dir: dir, HeapBytes: heap, ICount: true})
	if _, err := vm.Exec("import fieldseal_port, ubinascii, time\nfrom fieldseal import device\nP = fieldseal_port.Port()\nD = device.Device(P)\nD.boot(mount=False)\n", 120*time.Second); err != nil {
		t.Fatalf("lab boot: %v\n%s", err, vm.Output())
	}
	return vm
}

// nextReport waits for the next FSREPORT line and opens it under the device's uplink key.
func nextReport(t *testing.T, vm *firmware.VM, key []byte, timeout time.Duration) (*wire.Report, []byte) {
	t.Helper()
	if _, err := vm.Expect("FSREPORT ", timeout); err != nil {
		t.Fatalf("no report: %v\n%s", err, vm.Output())
	}
	line, err := vm.Expect("\n", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := wire.OpenReport(m, key)
	if err != nil {
		t.Fatalf("report does not open under the device's key: %v", err)
	}
	return rep, raw
}

// serverVerify checks a report's log as the server does for a fresh device: the whole
// backlog with fschain.Verify, or its oldest part (a report cut to fit) with VerifyPrefix.
func serverVerify(t *testing.T, b wire.Bundle, rep *wire.Report) []wire.Entry {
	t.Helper()
	_, fresh := verifyFrom(t, anchor0(b), rep)
	return fresh
}

// anchor0 is the server's anchor for a freshly provisioned device.
func anchor0(b wire.Bundle) fschain.Anchor {
	var k fschain.Key
	copy(k[:], b.ChainKey)
	return fschain.NewAnchor(b.Device, b.Epoch, k)
}

// verifyFrom verifies a report's log from anchor a as the server does (VerifyPrefix for a
// report cut short) and returns the new anchor and the entries it adds.
func verifyFrom(t *testing.T, a fschain.Anchor, rep *wire.Report) (fschain.Anchor, []wire.Entry) {
	t.Helper()
	verify := fschain.Verify
	if n := len(rep.Log.Entries); n > 0 && rep.Log.Entries[n-1].N < rep.Log.N {
		verify = fschain.VerifyPrefix
	}
	a2, fresh, err := verify(a, rep.Log, nil)
	if err != nil {
		t.Fatalf("the server rejects the log: %v", err)
	}
	return a2, fresh
}

var appTicks = regexp.MustCompile(`APP ticks_us=(\d+) alloc=(\d+)`)

// bootRealToReport powers the guard image on over dir (the board's own boot path), waits for
// the app, then moves the board's clock past the report interval and returns the report the
// running guard sends (opened, and its bytes), with the app line's instruction count
// (thousands) and heap in use.
func bootRealToReport(t *testing.T, dir string, heap int, b wire.Bundle) (*wire.Report, []byte, int, int) {
	t.Helper()
	fw, _ := guardImage(t)
	return bootRealToReportOn(t, fw, dir, heap, b)
}

// bootRealToReportOn is bootRealToReport on image fw.
func bootRealToReportOn(t *testing.T, fw *firmware.QEMUFirmware, dir string, heap int, b wire.Bundle) (*wire.Report, []byte, int, int) {
	t.Helper()
	vm := firmware.Start(t, fw, firmware.RunOptions{Dir: dir, HeapBytes: heap, ICount: true})
	if _, err := vm.Expect("APP ", 120*time.Second); err != nil {
		t.Fatalf("heap %d: the app did not run: %v\n%s", heap, err, vm.Output())
	}
	line, _ := vm.Expect("\n", 10*time.Second)
	m := appTicks.FindStringSubmatch("APP " + line)
	if m == nil {
		t.Fatalf("app line %q", line)
	}
	setClock(t, dir, boardClock(t, dir)+1000) // time passes: the default 900 s report interval is due
	rep, raw := nextReport(t, vm, b.UplinkKey, 120*time.Second)
	vm.Kill()
	k, _ := strconv.Atoi(m[1])
	alloc, _ := strconv.Atoi(m[2])
	return rep, raw, k, alloc
}

// D24 (b), on the Cortex-M3 build: 10,000 cover openings (each an open and a close edge on
// the adapter's cover input, the IRQ counter the guard drains at every pass of its loop) at
// a 64 KiB heap. The first openings are logged one by one, the rest counted: the report
// after the flood carries a repeat entry with the count; then the board's real boot at 64
// KiB still boots and runs the app, and its next report still shows the flood.
func TestThreatD24_CoverFloodAt64KiBOnCortexM3(t *testing.T) {
	const openings = 10000
	_, mainMpy := guardImage(t)
	dir, bundle := newDevice(t, mainMpy, false)
	vm := labSession(t, dir, 64<<10)
	flood := "c = int.from_bytes(P.hw[16:20], 'big')\nt0 = time.ticks_us()\n" +
		"for i in range(" + strconv.Itoa(openings) + "):\n" +
		"    c += 2\n    P.hw[16:20] = c.to_bytes(4, 'big')\n    P.hwdev.writeblocks(0, P.hw)\n    D.poll()\n" +
		"t1 = time.ticks_us()\nimport gc\ngc.collect()\nprint('FLOOD', time.ticks_diff(t1, t0), gc.mem_alloc(), gc.mem_free())\nP.send(D.report())\n"
	out, err := vm.Exec(flood, 600*time.Second)
	if err != nil {
		t.Fatalf("flood: %v\n%s", err, vm.Output())
	}
	rep := openFromOutput(t, out, bundle.UplinkKey)
	vm.Kill()
	want := uint64(openings - 8) // REPEAT_FREE openings are logged one by one
	check := func(when string, rep *wire.Report) {
		t.Helper()
		fresh := serverVerify(t, bundle, rep)
		opens, counted := 0, uint64(0)
		for _, e := range fresh {
			switch e.Type {
			case wire.EntryCoverOpen:
				opens++
			case wire.EntryRepeat:
				var p wire.RepeatPayload
				if err := wire.Unmarshal(e.Payload, &p); err != nil {
					t.Fatal(err)
				}
				if p.Type != wire.EntryCoverOpen {
					t.Fatalf("%s: repeat of type %d", when, p.Type)
				}
				counted += p.Count
			}
		}
		if opens != 8 || counted != want {
			t.Fatalf("%s: %d cover-open entries and %d counted, want 8 and %d (entries %d)", when, opens, counted, want, len(fresh))
		}
		if rep.State&wire.StateCoverWasOpen == 0 {
			t.Fatalf("%s: state %#x lacks cover-was-open", when, rep.State)
		}
	}
	check("after the flood", rep)
	rep2, raw, kinstr, alloc := bootRealToReport(t, dir, 64<<10, bundle)
	check("after the next boot", rep2)
	t.Logf("flood: %s; next boot at 64 KiB: app after %d k-instructions, %d bytes in use; report %d bytes, log n=%d",
		strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), kinstr, alloc, len(raw), rep2.Log.N)
}

func openFromOutput(t *testing.T, out string, key []byte) *wire.Report {
	t.Helper()
	rep, _ := reportFromOutput(t, out, key)
	return rep
}

// reportFromOutput finds the first FSREPORT line in a device's output and returns the
// report opened under key, and its bytes.
func reportFromOutput(t *testing.T, out string, key []byte) (*wire.Report, []byte) {
	t.Helper()
	i := strings.Index(out, "FSREPORT ")
	if i < 0 {
		t.Fatalf("no report in %q", out)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.SplitN(out[i+9:], "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := wire.OpenReport(m, key)
	if err != nil {
		t.Fatal(err)
	}
	return rep, raw
}

// setClock moves the board's clock (hw.img bytes 8..15) in place: the running firmware
// reads hw.img at every pass of its loop and must never see it truncated.
func setClock(t *testing.T, dir string, now uint64) {
	t.Helper()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], now)
	pokeHW(t, dir, 8, b[:])
}

// boardClock reads the board's clock from hw.img.
func boardClock(t *testing.T, dir string) uint64 {
	t.Helper()
	return binary.BigEndian.Uint64(readHW(t, dir)[8:16])
}

// pokeHW writes b at offset off of the board's test hardware (hw.img; layout in
// qemu/fieldseal_port.py), in place.
func pokeHW(t *testing.T, dir string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "hw.img"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readHW(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "hw.img"))
	if err != nil || len(b) < 20 {
		t.Fatalf("hw.img: %v", err)
	}
	return b
}
