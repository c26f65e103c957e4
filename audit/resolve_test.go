package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Reading a board as MicroPython's build does (issue: false passes and avoidable
// unknowns). Fixtures are written here; the MicroPython tree layout is imitated in a
// temporary directory.

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, s := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func builtin(t *testing.T, dir string, opt Options) *Report {
	t.Helper()
	opt.Tools = ToolsBuiltin
	return mustRun(t, dir, opt)
}

const guardBoot = "import sys\nsys.path[:] = [\".frozen\"]\nimport fieldseal.boot\nfieldseal.boot.main()\n"

func TestUnsupportedPortsAreUsageErrors(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"ports/samd/boards/ACME/mpconfigboard.mk":       "MCU_SERIES = SAMD21\nCMSIS_MCU = SAMD21G18A\n",
		"ports/samd/boards/ACME/mpconfigboard.h":        "#define MICROPY_HW_BOARD_NAME \"acme\"\n",
		"out/samd51/mpconfigboard.mk":                   "MCU_SERIES = SAMD51\n",
		"out/mimxrt/mpconfigboard.mk":                   "MCU_SERIES = MIMXRT1062\n",
		"out/nrf/mpconfigboard.mk":                      "MCU_SERIES = m4\nMCU_VARIANT = nrf52\n",
		"out/ra/mpconfigboard.mk":                       "CMSIS_MCU = RA6M2\n",
		"out/alif/mpconfigboard.mk":                     "MCU_CORE = M55_HP\n",
		"out/odd/mpconfigboard.mk":                      "MCU_SERIES = zz9\n",
		"ports/stm32/boards/NUCLEO_X/mpconfigboard.mk":  "MCU_SERIES = f4\n",
		"ports/stm32/boards/NUCLEO_X/mpconfigboard.h":   "#define MICROPY_HW_ENABLE_USB (0)\n",
		"ports/nrf/boards/PCA10040/mpconfigboard.cmake": "",
	})
	for dir, want := range map[string]string{
		"ports/samd/boards/ACME": "samd port", "out/samd51": "samd", "out/mimxrt": "mimxrt", "out/nrf": "nrf",
		"out/ra": "renesas-ra", "out/alif": "alif", "out/odd": "MCU_SERIES = zz9", "ports/nrf/boards/PCA10040": "nrf port",
	} {
		_, err := Run(filepath.Join(root, dir), Options{Tools: ToolsBuiltin})
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "stm32, esp32 and rp2") {
			t.Errorf("%s: %v, want a usage error naming %q", dir, err, want)
		}
	}
	// A board inside ports/stm32/boards needs no --port, and a contrary --port is refused.
	r := builtin(t, filepath.Join(root, "ports/stm32/boards/NUCLEO_X"), Options{})
	if r.Port != "stm32" {
		t.Errorf("port %s", r.Port)
	}
	if _, err := Run(filepath.Join(root, "ports/stm32/boards/NUCLEO_X"), Options{Port: "esp32"}); !errors.Is(err, ErrUsage) {
		t.Errorf("--port esp32 on an stm32 tree board: %v", err)
	}
}

// The build freezes a board's manifest.py only when the board's build file selects it.
func TestBoardManifestOnlyWhenSelected(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"ports/stm32/boards/manifest.py":           "require(\"dht\")\n",
		"ports/stm32/boards/B/mpconfigboard.mk":    "MCU_SERIES = f4\n",
		"ports/stm32/boards/B/mpconfigboard.h":     "#define MICROPY_BOARD_FROZEN_BOOT_FILE \"fsboot.py\"\n",
		"ports/stm32/boards/B/manifest.py":         "module(\"fsboot.py\")\npackage(\"fieldseal\", base_path=\"g\")\nmodule(\"_fieldseal_manifest.py\")\n",
		"ports/stm32/boards/B/fsboot.py":           guardBoot,
		"ports/stm32/boards/B/g/fieldseal/boot.py": "def main(): pass\n",
	})
	board := filepath.Join(root, "ports/stm32/boards/B")
	r := builtin(t, board, Options{})
	c := wantStatus(t, r, "guard-frozen", Open)
	if !strings.Contains(c.Evidence, "port's default manifest") {
		t.Errorf("evidence should say the port manifest is frozen: %s", c.Evidence)
	}
	wantStatus(t, r, "guard-boot", Open)
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "manifest.py in the board directory is not used") {
		t.Errorf("warnings: %v", r.Warnings)
	}
	// Selected: everything the manifest freezes counts.
	writeFiles(t, root, map[string]string{"ports/stm32/boards/B/mpconfigboard.mk": "MCU_SERIES = f4\nFROZEN_MANIFEST = $(BOARD_DIR)/manifest.py\n"})
	r = builtin(t, board, Options{})
	wantStatus(t, r, "guard-frozen", Closed)
	wantStatus(t, r, "guard-boot", Closed)
	wantStatus(t, r, "boot-path", Closed)
	// An empty FROZEN_MANIFEST ?= freezes nothing at all (make keeps it defined and empty).
	writeFiles(t, root, map[string]string{"ports/stm32/boards/B/mpconfigboard.mk": "MCU_SERIES = f4\nFROZEN_MANIFEST ?=\n"})
	r = builtin(t, board, Options{})
	c = wantStatus(t, r, "guard-boot", Open)
	if !strings.Contains(c.Evidence, "nothing is frozen") || strings.Contains(c.Evidence, "port's default") {
		t.Errorf("empty FROZEN_MANIFEST evidence: %s", c.Evidence)
	}
	wantStatus(t, r, "webrepl-mip", Closed)
}

// ESP-IDF reads only the fragments SDKCONFIG_DEFAULTS lists.
func TestUnlistedSdkconfigBoardIsNotRead(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "esp32_secure"), dir)
	writeFiles(t, dir, map[string]string{"mpconfigboard.cmake": "set(IDF_TARGET esp32s3)\nset(SDKCONFIG_DEFAULTS boards/sdkconfig.base)\nset(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)\n"})
	r := builtin(t, dir, Options{})
	wantStatus(t, r, "secure-boot", Open)
	wantStatus(t, r, "flash-encryption", Open)
	wantStatus(t, r, "download-mode", Open)
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "sdkconfig.board is not listed in SDKCONFIG_DEFAULTS") {
		t.Errorf("warnings: %v", r.Warnings)
	}
}

// Every upstream esp32 board takes its chip from include(boards/mpconfigboard_<chip>_common.cmake).
func TestESP32ChipFromCommonInclude(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"mpconfigboard.cmake": "include(boards/mpconfigboard_esp32s3_common.cmake)\n",
		"mpconfigboard.h":     "#define MICROPY_HW_BOARD_NAME \"S3\"\n#include <stdint.h>\n",
	})
	r := builtin(t, dir, Options{Port: "esp32"})
	c := wantStatus(t, r, "repl-usb", Open)
	if !strings.Contains(c.Evidence, "esp32s3") {
		t.Errorf("evidence should name the S3: %s", c.Evidence)
	}
	wantStatus(t, r, "bootloader-jump", Open) // DTR/RTS forced on with USB
	wantStatus(t, r, "compiler", Open)        // <stdint.h> does not make defaults unknown
	// An unknown chip is unknown, never esp32.
	writeFiles(t, dir, map[string]string{"mpconfigboard.cmake": "set(IDF_TARGET esp32x9)\n"})
	r = builtin(t, dir, Options{Port: "esp32"})
	for _, id := range []string{"repl-usb", "repl-usb-jtag", "bootloader-jump"} {
		if c := wantStatus(t, r, id, Unknown); !strings.Contains(c.Evidence, "unknown") {
			t.Errorf("%s: %s", id, c.Evidence)
		}
	}
}

// PICO_BOARD defaults to the board's name in lower case; the pico-sdk header it names
// gives PICO_PLATFORM (here the board's own header).
func TestRP2ChipFromPicoBoard(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"ports/rp2/boards/ADAFRUIT_FEATHER_RP2040/mpconfigboard.cmake": "",
		"ports/rp2/boards/ADAFRUIT_FEATHER_RP2040/mpconfigboard.h":     "#define MICROPY_HW_BOARD_NAME \"F\"\n",
		"ports/rp2/boards/ACME2350/mpconfigboard.cmake":                "list(APPEND PICO_BOARD_HEADER_DIRS ${MICROPY_BOARD_DIR})\nset(PICO_BOARD \"acme_2350\")\n",
		"ports/rp2/boards/ACME2350/acme_2350.h":                        "pico_board_cmake_set(PICO_PLATFORM, rp2350)\n",
		"ports/rp2/boards/ACME2350/mpconfigboard.h":                    "#define MICROPY_HW_BOARD_NAME \"A\"\n",
		"ports/rp2/boards/ACME2350/otp.json":                           `{"secure_boot_enable": 1}`,
	})
	r := builtin(t, filepath.Join(root, "ports/rp2/boards/ADAFRUIT_FEATHER_RP2040"), Options{})
	c := wantStatus(t, r, "secure-boot", Open)
	if !strings.Contains(c.Evidence, "RP2040") || !strings.Contains(c.Evidence, "adafruit_feather_rp2040") {
		t.Errorf("evidence: %s", c.Evidence)
	}
	r = builtin(t, filepath.Join(root, "ports/rp2/boards/ACME2350"), Options{})
	c = wantStatus(t, r, "secure-boot", Closed)
	if !strings.Contains(c.Evidence, "acme_2350.h sets PICO_PLATFORM rp2350") {
		t.Errorf("evidence: %s", c.Evidence)
	}
}

// Board headers include port headers relative to the port directory.
func TestPortRelativeIncludes(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"ports/stm32/boards/BASE/mpconfigboard.h":     "#define MICROPY_HW_HAS_SWITCH (0)\n#define MICROPY_HW_ENABLE_USB (0)\n",
		"ports/stm32/boards/BASE/mpconfigboard.mk":    "MCU_SERIES = h7\nCFLAGS += -DACME_SPI=\"(2 * 1024)\"\n",
		"ports/stm32/boards/DERIVED/mpconfigboard.h":  "#include <stddef.h>\n#include \"boards/BASE/mpconfigboard.h\"\n#if ACME_SPI > 1024\n#define MICROPY_HW_UART_REPL (1)\n#endif\n",
		"ports/stm32/boards/DERIVED/mpconfigboard.mk": "include boards/BASE/mpconfigboard.mk\n",
	})
	r := builtin(t, filepath.Join(root, "ports/stm32/boards/DERIVED"), Options{})
	c := wantStatus(t, r, "safe-boot", Closed)
	if !strings.Contains(c.Evidence, "boards/BASE/mpconfigboard.h:1") {
		t.Errorf("evidence: %s", c.Evidence)
	}
	wantStatus(t, r, "repl-usb", Closed)
	wantStatus(t, r, "repl-uart", Open) // the -D flag from the included build file, shell quotes removed
}

// MicroPython mounts "vfs", else "ffat" (TinyUF2's name).
func TestEncryptedFfatPartitionCounts(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "esp32_secure"), dir)
	writeFiles(t, dir, map[string]string{"partitions-fs.csv": "nvs, data, nvs, 0x9000, 0x6000,\nfsstate, data, undefined, 0x10000, 0x10000, encrypted\nfactory, app, factory, 0x20000, 0x1e0000,\nffat, data, fat, 0x200000, 0x200000, encrypted\n"})
	c := wantStatus(t, builtin(t, dir, Options{}), "vfs-encrypted", Closed)
	if !strings.Contains(c.Evidence, "ffat") {
		t.Errorf("evidence: %s", c.Evidence)
	}
	writeFiles(t, dir, map[string]string{"partitions-fs.csv": "nvs, data, nvs, 0x9000, 0x6000,\nfsstate, data, undefined, 0x10000, 0x10000, encrypted\nfactory, app, factory, 0x20000, 0x1e0000,\nffat, data, fat, 0x200000, 0x200000,\n"})
	wantStatus(t, builtin(t, dir, Options{}), "vfs-encrypted", Open)
}

// A fix says what caused the finding: the (variant) file and the value it sets.
func TestFixTextNamesTheCause(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "stm32_hardened"), dir)
	writeFiles(t, dir, map[string]string{"mpconfigvariant.mk": "CFLAGS += -DMICROPY_HW_UART_REPL=1\n"})
	r := builtin(t, dir, Options{})
	c := wantStatus(t, r, "repl-uart", Open)
	if !strings.HasPrefix(c.Fix, "cause: variant file mpconfigvariant.mk:1 sets MICROPY_HW_UART_REPL 1") {
		t.Errorf("fix: %s", c.Fix)
	}
}

func TestThreatD23_BootFileMustTrimSysPathFirst(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want Status
		ev   string
	}{
		{guardBoot, Closed, "restricted"},
		{"# boot\n\"\"\"doc\"\"\"\nimport usys as sys, micropython\nmicropython.alloc_emergency_exception_buf(0) if 0 else None\n", Unknown, "cannot follow"},
		{"import sys\nsys.path.clear()\nsys.path.append('.frozen')\nimport fieldseal.boot\n", Closed, "cleared"},
		{"import fieldseal.boot\nfieldseal.boot.main()\n", Open, "imports fieldseal.boot before sys.path is trimmed"},
		{"import sys, os\nsys.path[:] = ['.frozen']\n", Open, "imports os"},
		{"import sys\nsys.path[:] = ['.frozen', '/flash']\nimport fieldseal.boot\n", Open, "\"/flash\""},
		{"import sys\nimport fieldseal.boot\nsys.path[:] = ['.frozen']\n", Open, "before sys.path is trimmed"},
		{"import sys\n", Open, "never restricts"},
		{"import sys; sys.path[:] = [\".frozen\"]  # noqa: E702\nimport vfs\n", Closed, "_boot.py:1: sys.path restricted"},
		{"import sys; import os; sys.path[:] = [\".frozen\"]\n", Open, "imports os"},
	} {
		st, ev := analyseBootPath("_boot.py", tc.src)
		if st != tc.want || !strings.Contains(ev, tc.ev) {
			t.Errorf("%q: %s %q, want %s containing %q", tc.src, st, ev, tc.want, tc.ev)
		}
	}
	// A board whose frozen _boot.py imports the guard before trimming fails the audit.
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "esp32_secure"), dir)
	writeFiles(t, dir, map[string]string{"modules/_boot.py": "import fieldseal.boot\nfieldseal.boot.main()\n"})
	r := builtin(t, dir, Options{})
	wantStatus(t, r, "guard-boot", Closed)   // it does run the guard...
	c := wantStatus(t, r, "boot-path", Open) // ...from wherever sys.path finds it first
	if !strings.Contains(c.Evidence, "_boot.py:1") || !strings.Contains(c.Attack, "D23") {
		t.Errorf("evidence %s / attack %s", c.Evidence, c.Attack)
	}
	if r.Count(Open) != 1 {
		t.Errorf("only boot-path should be open: %s", r.Verdict)
	}
}

// ROMFS: rom_ioctl makes it writable, and nothing in it is under the seal.
func TestThreatD23_ROMFSWritableAndUnsealed(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "rp2040_pico"), dir)
	writeFiles(t, dir, map[string]string{"mpconfigboard.h": readFile(t, filepath.Join(dir, "mpconfigboard.h")) + "\n#define MICROPY_HW_ROMFS_BYTES (128 * 1024)\n"})
	r := builtin(t, dir, Options{})
	wantStatus(t, r, "romfs-writable", Open)
	c := wantStatus(t, r, "romfs-sealed", Open)
	if !strings.Contains(c.Evidence, "MICROPY_HW_ROMFS_BYTES") {
		t.Errorf("evidence: %s", c.Evidence)
	}
	writeFiles(t, dir, map[string]string{"mpconfigboard.h": readFile(t, filepath.Join(dir, "mpconfigboard.h")) + "\n#define MICROPY_VFS_ROM_IOCTL (0)\n"})
	r = builtin(t, dir, Options{})
	wantStatus(t, r, "romfs-writable", Closed)
	wantStatus(t, r, "romfs-sealed", Open)
	wantStatus(t, run(t, "stm32_hardened", Options{}), "romfs-sealed", Closed)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
