package firmware_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
	"github.com/fieldseal/fieldseal/device/micropython/mpharness"
	"github.com/fieldseal/fieldseal/wire"
)

// newDevice lays out a provisioned qemu device in a fresh folder: flash.img (littlefs,
// the bundle in /.fieldseal), sd.img (littlefs, the sealed app), hw.img, and with rawSlots a
// 4 KiB bkpsram.img for the state slots (the battery-backed SRAM / flash-sector path).
func newDevice(t *testing.T, mainMpy []byte, rawSlots bool) (string, wire.Bundle) {
	t.Helper()
	bundle := mpharness.NewBundle("wm-qemu", "watermeter", 1)
	return provisioned(t, mainMpy, rawSlots, bundle), bundle
}

// provisioned is newDevice with a given bundle (one a server made, say).
func provisioned(t *testing.T, mainMpy []byte, rawSlots bool, bundle wire.Bundle) string {
	t.Helper()
	dir := t.TempDir()
	prov := t.TempDir()
	if err := mpharness.Provision(prov, bundle); err != nil {
		t.Fatal(err)
	}
	bj, _ := os.ReadFile(filepath.Join(prov, "bundle.json"))
	flash, _ := firmware.Disk(dir, "flash.img", 256<<10)
	lfsWrite(t, flash, 4096, map[string][]byte{".fieldseal/bundle.json": bj})
	sd, _ := firmware.Disk(dir, "sd.img", 128<<10)
	lfsWrite(t, sd, 4096, map[string][]byte{"main.mpy": mainMpy})
	if rawSlots {
		if _, err := firmware.Disk(dir, "bkpsram.img", 4096); err != nil {
			t.Fatal(err)
		}
	}
	hwImage(t, dir, 1767225600)
	return dir
}

var appLine = regexp.MustCompile(`APP ticks_us=(\d+) alloc=(\d+) free=(\d+) path=(.*)`)

// bootToApp powers the device on and waits for the sealed app's line.
func bootToApp(t *testing.T, fw *firmware.QEMUFirmware, dir string, heap int) (ticks, alloc int) {
	t.Helper()
	vm := firmware.Start(t, fw, firmware.RunOptions{Dir: dir, HeapBytes: heap, ICount: true})
	if _, err := vm.Expect("APP ", 120*time.Second); err != nil {
		t.Fatalf("heap %d: %v\n%s", heap, err, vm.Output())
	}
	line, err := vm.Expect("\n", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	vm.Kill()
	m := appLine.FindStringSubmatch("APP " + strings.TrimSpace(line))
	if m == nil {
		t.Fatalf("app line %q", line)
	}
	if m[4] != "['.frozen', '/verified']" {
		t.Fatalf("the app ran with sys.path %s", m[4])
	}
	ticks, _ = strconv.Atoi(m[1])
	alloc, _ = strconv.Atoi(m[2])
	free, _ := strconv.Atoi(m[3])
	if alloc+free > heap {
		t.Fatalf("heap %d asked, the app sees %d bytes: the board ignored heap=", heap, alloc+free)
	}
	return ticks, alloc
}

// The guard boots on the Cortex-M3 build exactly as the board runs it (flash mounted, the
// frozen boot file first), verifies the sealed app on its littlefs volume and imports it
// from verified bytes, at a PYBv1.1's heap (112 KiB), at 64 KiB and at 32 KiB; a second
// boot (state and log on flash) too. Figures: instructions to the app's first line (qemu
// -icount: 1 tick = 1,000 instructions), heap in use after boot with the app imported.
func TestGuardBootsOnCortexM3(t *testing.T) {
	fw, mainMpy := guardImage(t)
	for _, heap := range []int{112 << 10, 64 << 10, 32 << 10} {
		dir, _ := newDevice(t, mainMpy, false)
		k1, a1 := bootToApp(t, fw, dir, heap)
		k2, a2 := bootToApp(t, fw, dir, heap)
		t.Logf("heap %3d KiB: first boot (provisioning) %d k-instructions, %d bytes in use; second boot %d k-instructions, %d bytes in use", heap>>10, k1, a1, k2, a2)
	}
	if plain := plainImage(t); plain != nil {
		t.Logf("flash: %d bytes of text with the guard, %d without: the guard adds %d bytes", textSize(t, fw.ELF), textSize(t, plain.ELF), textSize(t, fw.ELF)-textSize(t, plain.ELF))
	}
}

// The state slots on a raw block device (bkpsram.img, as FIELDSEAL_STATE_BKPSRAM and
// FIELDSEAL_STATE_FLASH_ADDR boards keep them): the guard writes its A/B slots there, not
// as files, and boots again from them.
func TestRawSlotsOnCortexM3(t *testing.T) {
	fw, mainMpy := guardImage(t)
	dir, _ := newDevice(t, mainMpy, true)
	bootToApp(t, fw, dir, 64<<10)
	raw, err := os.ReadFile(filepath.Join(dir, "bkpsram.img"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("fs1s")) && !bytes.HasPrefix(raw[2048:], []byte("fs1s")) {
		t.Fatalf("no state slot on the raw device: % x", raw[:16])
	}
	bootToApp(t, fw, dir, 64<<10)
}

// plainImage is the board with only a tiny boot file frozen (TestQEMUBoardBootsAndKeepsStorage's).
func plainImage(t *testing.T) *firmware.QEMUFirmware {
	return firmware.QEMU(t, firmware.QEMUOptions{FrozenManifest: filepath.Join("testdata", "qemuboot", "manifest.py"), HeapBytes: 64 << 10})
}

func textSize(t *testing.T, elf string) int {
	t.Helper()
	out, err := exec.Command("arm-none-eabi-size", elf).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(strings.Split(string(out), "\n")[1])
	n, _ := strconv.Atoi(f[0])
	return n
}
