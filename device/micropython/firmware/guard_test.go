package firmware_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
	"github.com/fieldseal/fieldseal/device/micropython/mpharness"
	"github.com/fieldseal/fieldseal/wire"
)

// sealedApp is testdata/guard/app sealed: main.mpy compiled from main.py by the mpy-cross of
// the same tree (checked here byte for byte) and the frozen manifest module describing it.
func sealedApp(t *testing.T) (mainMpy []byte, module []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "guard", "app")
	mpy := firmware.MpyCross(t)
	out := filepath.Join(t.TempDir(), "main.mpy")
	if b, err := exec.Command(mpy, "-o", out, "-s", "main.py", filepath.Join(dir, "main.py")).CombinedOutput(); err != nil {
		t.Fatalf("mpy-cross: %v\n%s", err, b)
	}
	fresh, _ := os.ReadFile(out)
	kept, _ := os.ReadFile(filepath.Join(dir, "main.mpy"))
	if !bytes.Equal(fresh, kept) {
		t.Fatalf("%s is not main.py compiled by this tree's mpy-cross: copy %s over it", filepath.Join(dir, "main.mpy"), out)
	}
	return kept, mpharness.FrozenModule(sealedManifest(kept))
}

// sealedManifest is the manifest that seals testdata/guard/app with main.mpy's bytes.
func sealedManifest(mainMpy []byte) *wire.Manifest {
	sum := sha256.Sum256(mainMpy)
	m := wire.Manifest{Product: "watermeter", Version: 1, Created: 1767225600, Mutable: []string{},
		Files:  []wire.File{{Path: "main.mpy", Size: uint64(len(mainMpy)), SHA256: sum[:]}},
		Policy: wire.DefaultPolicy(), Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	m.Root = wire.FilesRoot(m.Files)
	return &m
}

// guardImage is the qemu board with the guard frozen the way the stm32 template freezes it
// (examples/boards/guard.py and stm32/fsboot.py), the board's adapter and the sealed
// manifest module (committed, so every run shares one cached build).
func guardImage(t *testing.T) (*firmware.QEMUFirmware, []byte) {
	t.Helper()
	mainMpy, mod := sealedApp(t)
	return sealedImage(t, filepath.Join("testdata", "guard"), mod), mainMpy
}

// sealedImage is guardImage's board with the sealed manifest module mod, committed as
// dir/_fieldseal_manifest.py beside dir/manifest.py (checked current here).
func sealedImage(t *testing.T, dir string, mod []byte) *firmware.QEMUFirmware {
	t.Helper()
	p := filepath.Join(dir, "_fieldseal_manifest.py")
	if old, _ := os.ReadFile(p); !bytes.Equal(old, mod) {
		os.WriteFile(p+".new", mod, 0o644)
		t.Fatalf("%s is stale: it must hold the sealed manifest of testdata/guard/app (see %s.new)", p, p)
	}
	root := filepath.Join("..", "..", "..")
	return firmware.QEMU(t, firmware.QEMUOptions{FrozenManifest: filepath.Join(dir, "manifest.py"),
		Inputs: []string{filepath.Join(root, "device", "micropython", "fieldseal"), filepath.Join(root, "examples", "boards"), "qemu"}})
}

// lfsWrite puts files into a littlefs image with the unix port built from the same tree.
func lfsWrite(t *testing.T, img string, blockSize int, files map[string][]byte) {
	t.Helper()
	mp := firmware.Unix(t, firmware.UnixOptions{FrozenManifest: filepath.Join("testdata", "unixfrozen", "manifest.py")})
	args := []string{filepath.Join("testdata", "lfsimage.py"), img, strconv.Itoa(blockSize)}
	src := t.TempDir()
	i := 0
	for p, b := range files {
		i++
		f := filepath.Join(src, strconv.Itoa(i))
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p+"="+f)
	}
	if out, err := exec.Command(mp, args...).CombinedOutput(); err != nil {
		t.Fatalf("writing %s: %v\n%s", img, err, out)
	}
}

// hwImage writes the board's test hardware file (cover closed, no latch, clock now).
func hwImage(t *testing.T, dir string, now uint64) {
	b := make([]byte, 512)
	copy(b, "FSHW")
	for i := 0; i < 8; i++ {
		b[15-i] = byte(now >> (8 * i))
	}
	if err := os.WriteFile(filepath.Join(dir, "hw.img"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// D23: the boot path as an stm32 board runs it (internal storage mounted and the working
// directory, first on sys.path; then the frozen boot file). A folder named like the guard's
// package on that storage, with a boot.py, neither shadows nor replaces the guard: the
// guard boots from frozen code, finds the application missing and reports it at once — all
// within a 32 KiB heap.
func TestThreatD23_StorageCannotDivertFrozenBoot(t *testing.T) {
	fw, _ := guardImage(t)
	dir := t.TempDir()
	flash, err := firmware.Disk(dir, "flash.img", 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	bundle := mpharness.NewBundle("wm-d23", "watermeter", 1)
	prov := t.TempDir()
	if err := mpharness.Provision(prov, bundle); err != nil {
		t.Fatal(err)
	}
	bj, err := os.ReadFile(filepath.Join(prov, "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	lfsWrite(t, flash, 4096, map[string][]byte{
		"fieldseal/__init__.py":  []byte("print('DIVERTED: storage package imported')\n"),
		"fieldseal/boot.py":      []byte("print('DIVERTED: storage boot ran')\ndef main():\n    print('DIVERTED')\n"),
		"boot.py":                []byte("print('DIVERTED: boot.py ran')\n"),
		".fieldseal/bundle.json": bj,
	})
	hwImage(t, dir, 1767225600)
	vm := firmware.Start(t, fw, firmware.RunOptions{Dir: dir, HeapBytes: 32 << 10}) // boot, check and report in 32 KiB
	out, err := vm.Expect("\n", 90*time.Second)
	for err == nil && !strings.Contains(out, "FSREPORT ") {
		var line string
		line, err = vm.Expect("\n", 90*time.Second)
		out += line
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, vm.Output())
	}
	vm.Kill()
	all := vm.Output()
	if strings.Contains(all, "DIVERTED") {
		t.Fatalf("storage code ran:\n%s", all)
	}
	i := strings.Index(all, "FSREPORT ")
	line := strings.TrimSpace(strings.SplitN(all[i+len("FSREPORT "):], "\n", 2)[0])
	raw, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := wire.OpenReport(m, bundle.UplinkKey)
	if err != nil {
		t.Fatalf("report does not open under the device's key: %v", err)
	}
	if rep.Meas.Status != wire.MeasMismatch {
		t.Fatalf("measurement %+v: the missing app must be reported", rep.Meas)
	}
}

// A boot that cannot succeed explains itself: an unprovisioned device (no bundle on its
// storage) prints the exception on the console and resets (machine.reset() ends qemu); it
// never falls into the REPL.
func TestBootFailureIsShownThenResets(t *testing.T) {
	fw, _ := guardImage(t)
	dir := t.TempDir()
	if _, err := firmware.Disk(dir, "flash.img", 256<<10); err != nil {
		t.Fatal(err)
	}
	hwImage(t, dir, 1767225600)
	vm := firmware.Start(t, fw, firmware.RunOptions{Dir: dir, HeapBytes: 32 << 10})
	if err := vm.Wait(90 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, vm.Output())
	}
	out := vm.Output()
	if !strings.Contains(out, "Unprovisioned") || !strings.Contains(out, "Traceback") {
		t.Fatalf("no explanation on the console:\n%s", out)
	}
	if strings.Contains(out, ">>>") {
		t.Fatalf("fell into the REPL:\n%s", out)
	}
}
