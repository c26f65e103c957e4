package firmware_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
)

// write creates dir/name with text.
func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMpyCrossCompiles(t *testing.T) {
	mpy := firmware.MpyCross(t)
	dir := t.TempDir()
	src := write(t, dir, "m.py", "def f():\n    return 42\n")
	if out, err := exec.Command(mpy, "-o", filepath.Join(dir, "m.mpy"), src).CombinedOutput(); err != nil {
		t.Fatalf("mpy-cross: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "m.mpy"))
	if err != nil || len(b) < 4 || b[0] != 'M' {
		t.Fatalf("not an .mpy: %q %v", b, err)
	}
}

func TestUnixFrozenModule(t *testing.T) {
	dir := filepath.Join("testdata", "unixfrozen")
	mp := firmware.Unix(t, firmware.UnixOptions{FrozenManifest: filepath.Join(dir, "manifest.py")})
	// the frozen module answers, and the real socket module is there
	out, err := exec.Command(mp, "-c", "import fwprobe, socket; print(fwprobe.answer(), hasattr(socket, 'socket'))").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "42 True" {
		t.Fatalf("got %q", got)
	}
}

func TestQEMUBoardBootsAndKeepsStorage(t *testing.T) {
	fw := firmware.QEMU(t, firmware.QEMUOptions{FrozenManifest: filepath.Join("testdata", "qemuboot", "manifest.py"), HeapBytes: 64 << 10})
	dir := t.TempDir()
	if _, err := firmware.Disk(dir, "flash.img", 128<<10); err != nil {
		t.Fatal(err)
	}
	vm := firmware.Start(t, fw, firmware.RunOptions{Dir: dir})
	// the frozen boot file ran first, with /flash mounted and the working directory
	if _, err := vm.Expect("fwboot: cwd=/flash", 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, vm.Output())
	}
	out, err := vm.Exec("import gc\nwith open('note.txt','w') as f:\n    f.write('kept')\nprint(gc.mem_free()+gc.mem_alloc())\n", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if heap, err := strconv.Atoi(strings.TrimSpace(out)); err != nil || heap > 64<<10 || heap < 60<<10 {
		t.Fatalf("heap %q, want the 64 KiB the image was built with", out)
	}
	if _, err := vm.Exec("import machine\nmachine.reset()\n", 30*time.Second); err == nil || vm.Wait(10*time.Second) != nil {
		t.Logf("reset: %v", err)
	}
	if !vm.Exited() {
		t.Fatal("machine.reset() did not end qemu")
	}
	vm = firmware.Start(t, fw, firmware.RunOptions{Dir: dir})
	if _, err := vm.Expect("fwboot: cwd=/flash", 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, vm.Output())
	}
	out, err = vm.Exec("print(open('/flash/note.txt').read())\n", 30*time.Second)
	if err != nil || strings.TrimSpace(out) != "kept" {
		t.Fatalf("after reset: %q %v", out, err)
	}
}
