package firmware_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
)

// portIndependent are the stm32 template's settings that mean the same on every port
// (py/mpconfig.h defaults, not port definitions): the qemu build takes them from the
// template as written, through a header forced in after the command line's -D flags (as
// the board's mpconfigboard.h comes after them on stm32). The emitter settings are port
// definitions on qemu (an unguarded #define MICROPY_EMIT_THUMB (1)) and cannot be passed;
// without the compiler they are moot.
var portIndependent = regexp.MustCompile(`(?m)^#(?:define|undef)\s+(?:MICROPY_ENABLE_COMPILER|MICROPY_PY_UCTYPES|MICROPY_PY_MACHINE_MEMX|MICROPY_MODULE_FROZEN_STR)\b.*$`)

// The stm32 template's documented configuration compiles and boots: the guard image of the
// Cortex-M3 board built with the template's port-independent settings (no compiler, no
// frozen source loader, no uctypes), frozen manifest and boot file as in
// TestGuardBootsOnCortexM3. It links, the compiler is really gone (no mp_compile in the
// image), and the guard boots and runs the sealed app at a 64 KiB heap.
func TestSTM32TemplateSettingsBuildAndBootOnCortexM3(t *testing.T) {
	h, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "boards", "stm32", "mpconfigboard.h"))
	if err != nil {
		t.Fatal(err)
	}
	lines := portIndependent.FindAllString(string(h), -1)
	settings := strings.Join(lines, "\n") + "\n"
	if !strings.Contains(settings, "MICROPY_ENABLE_COMPILER     (0)") {
		t.Fatalf("the template no longer sets MICROPY_ENABLE_COMPILER (0):\n%s", settings)
	}
	sum := sha256.Sum256([]byte(settings))
	hdr := filepath.Join(os.TempDir(), fmt.Sprintf("fieldseal-stm32-settings-%x.h", sum[:8])) // a stable name: part of the cache key
	if err := os.WriteFile(hdr, []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	defs := []string{"-include " + hdr}
	_, mainMpy := guardImage(t)
	root := filepath.Join("..", "..", "..")
	fw := firmware.QEMU(t, firmware.QEMUOptions{FrozenManifest: filepath.Join("testdata", "guard", "manifest.py"),
		Inputs: []string{filepath.Join(root, "device", "micropython", "fieldseal"), filepath.Join(root, "examples", "boards"), "qemu"},
		Flags:  []string{"CFLAGS_EXTRA=" + strings.Join(defs, " ")}})
	syms, err := exec.Command("arm-none-eabi-nm", fw.ELF).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{" mp_compile", " pyexec_friendly_repl", " mp_lexer_new"} {
		if strings.Contains(string(syms), s+"\n") {
			t.Fatalf("%s is in the image built with %v", strings.TrimSpace(s), defs)
		}
	}
	dir, _ := newDevice(t, mainMpy, false)
	vm := firmware.Start(t, fw, firmware.RunOptions{Dir: dir, HeapBytes: 64 << 10, ICount: true})
	if _, err := vm.Expect("APP ", 120*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, vm.Output())
	}
	line, _ := vm.Expect("\n", 10*time.Second)
	t.Logf("built with the template's\n%s text %d bytes; APP %s", settings, textSize(t, fw.ELF), strings.TrimSpace(line))
}

// The boards' guard list (examples/boards/guard.py, included by every template manifest)
// freezes every module of the guard package except the host adapters. A module left out
// builds fine and fails at boot on the board: fieldseal.boot imports fieldseal.uplink
// whenever the port has no send() of its own (every real board), and the ImportError resets
// the device at every boot — which the qemu builds, whose adapter sends by itself, never hit.
func TestGuardListFreezesEveryDeviceModule(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	list, err := os.ReadFile(filepath.Join(root, "examples", "boards", "guard.py"))
	if err != nil {
		t.Fatal(err)
	}
	frozen := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(fieldseal/[^"]+\.py)"`).FindAllStringSubmatch(string(list), -1) {
		frozen[m[1]] = true
	}
	hostOnly := map[string]bool{"fieldseal/ports/sim.py": true, "fieldseal/ports/unix.py": true}
	pkg := filepath.Join(root, "device", "micropython")
	var want []string
	err = filepath.WalkDir(filepath.Join(pkg, "fieldseal"), func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || filepath.Ext(p) != ".py" {
			return err
		}
		rel, _ := filepath.Rel(pkg, p)
		want = append(want, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 10 {
		t.Fatalf("found only %d guard modules under %s", len(want), pkg)
	}
	for _, m := range want {
		if hostOnly[m] && frozen[m] {
			t.Errorf("guard.py freezes %s, a host adapter that must never reach a device", m)
		}
		if !hostOnly[m] && !frozen[m] {
			t.Errorf("guard.py does not freeze %s: a board built from the templates lacks it", m)
		}
		delete(frozen, m)
	}
	for m := range frozen {
		t.Errorf("guard.py freezes %s, which is not in the guard package", m)
	}
}
