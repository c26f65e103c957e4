package audit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

// The built-in evaluator and MicroPython's own tools (the real C preprocessor over
// py/mpconfig.h, tools/manifestfile.py) must give the same answers. The tree is the
// pinned MicroPython's py/, tools/ and micropython-lib (MICROPYTHON_DIR), with port
// headers written here that carry the defaults defaults.go models (the pinned tree has
// only the unix and qemu ports); the boards are this test's own.

// slotsBoot is the guard boot file of a board that passes its state-slot device to the adapter.
const slotsBoot = "import sys\nsys.path[:] = [\".frozen\"]\nimport fieldseal.boot\nfrom fieldseal.ports.stm32 import Port\nfrom board_slots import bkpsram\nfieldseal.boot.main(port=Port(slots=bkpsram()))\n"

// Port headers: the #ifndef defaults and unguarded definitions defaults.go cites, in
// the order the ports have them.
var fakePorts = map[string]string{
	"ports/stm32/mpconfigport.h": `#include "mpconfigboard.h"
#include "mpconfigboard_common.h"
#ifndef MICROPY_CONFIG_ROM_LEVEL
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)
#endif
#ifndef MICROPY_EMIT_THUMB
#define MICROPY_EMIT_THUMB (1)
#endif
#ifndef MICROPY_EMIT_INLINE_THUMB
#define MICROPY_EMIT_INLINE_THUMB (1)
#endif
#ifndef MICROPY_VFS_ROM
#define MICROPY_VFS_ROM (MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH || MICROPY_HW_ROMFS_ENABLE_EXTERNAL_QSPI || MICROPY_HW_ROMFS_ENABLE_EXTERNAL_XSPI)
#endif
#ifndef MICROPY_PY_MACHINE
#define MICROPY_PY_MACHINE (1)
#endif
`,
	"ports/stm32/mpconfigboard_common.h": `#include STM32_HAL_H
#ifndef MICROPY_PY_STM
#define MICROPY_PY_STM (1)
#endif
#ifndef MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH
#define MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH (0)
#endif
#ifndef MICROPY_HW_ROMFS_ENABLE_EXTERNAL_QSPI
#define MICROPY_HW_ROMFS_ENABLE_EXTERNAL_QSPI (0)
#endif
#ifndef MICROPY_HW_ROMFS_ENABLE_EXTERNAL_XSPI
#define MICROPY_HW_ROMFS_ENABLE_EXTERNAL_XSPI (0)
#endif
#ifndef MICROPY_HW_ENABLE_USB
#define MICROPY_HW_ENABLE_USB (0)
#endif
#ifndef MICROPY_HW_HAS_SWITCH
#define MICROPY_HW_HAS_SWITCH (0)
#endif
#ifndef MICROPY_HW_ENABLE_SDCARD
#define MICROPY_HW_ENABLE_SDCARD (0)
#endif
#ifndef MICROPY_HW_SDCARD_MOUNT_AT_BOOT
#define MICROPY_HW_SDCARD_MOUNT_AT_BOOT (MICROPY_HW_ENABLE_SDCARD)
#endif
#ifndef MICROPY_HW_USB_MSC
#define MICROPY_HW_USB_MSC (MICROPY_HW_ENABLE_USB)
#endif
`,
	"ports/stm32/boardctrl.h": `#ifndef MICROPY_BOARD_BEFORE_SOFT_RESET_LOOP
#define MICROPY_BOARD_BEFORE_SOFT_RESET_LOOP boardctrl_before_soft_reset_loop
#endif
`,
	"ports/stm32/boards/manifest.py": "require(\"dht\")\nrequire(\"onewire\")\n",
	"ports/rp2/mpconfigport.h": `#include <stdint.h>
#include "hardware/flash.h"
#ifndef MICROPY_HW_ROMFS_BYTES
#define MICROPY_HW_ROMFS_BYTES (0)
#endif
#include "mpconfigboard.h"
#ifndef MICROPY_HW_ENABLE_UART_REPL
#define MICROPY_HW_ENABLE_UART_REPL (0)
#endif
#ifndef MICROPY_HW_ENABLE_USBDEV
#define MICROPY_HW_ENABLE_USBDEV (1)
#endif
#if MICROPY_HW_ENABLE_USBDEV
#ifndef MICROPY_HW_USB_CDC
#define MICROPY_HW_USB_CDC (1)
#endif
#ifndef MICROPY_HW_USB_MSC
#define MICROPY_HW_USB_MSC (0)
#endif
#endif
#ifndef MICROPY_CONFIG_ROM_LEVEL
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)
#endif
#if PICO_ARM
#define MICROPY_EMIT_THUMB (1)
#define MICROPY_EMIT_INLINE_THUMB (1)
#elif PICO_RISCV
#define MICROPY_EMIT_RV32 (1)
#define MICROPY_EMIT_INLINE_RV32 (1)
#endif
#define MICROPY_PY_MACHINE (1)
#define MICROPY_VFS_ROM (MICROPY_HW_ROMFS_BYTES > 0)
`,
	"ports/rp2/boards/manifest.py": "freeze(\"$(PORT_DIR)/modules\")\nrequire(\"onewire\")\n",
	"ports/rp2/modules/_boot.py":   "import vfs\n",
}

// Boards: a hardened and a stock one per port, each complete on disk.
var agreeBoards = map[string]string{
	"ports/stm32/boards/HARD/mpconfigboard.mk": "MCU_SERIES = f4\nCMSIS_MCU = STM32F405xx\nFROZEN_MANIFEST ?= $(BOARD_DIR)/manifest.py\nCFLAGS += -DMICROPY_PY_UCTYPES=\"(0)\"\n",
	"ports/stm32/boards/HARD/mpconfigboard.h": `#include <stdint.h>
#define MICROPY_HW_ENABLE_USB (0)
#define MICROPY_HW_HAS_SWITCH (0)
#define MICROPY_ENABLE_COMPILER (0)
#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)
#define MICROPY_PY_MACHINE_MEMX (0)
#define MICROPY_PY_STM (0)
#define MICROPY_BOARD_FROZEN_BOOT_FILE "fsboot.py"
#define FIELDSEAL_STATE_BKPSRAM (1)
#define FIELDSEAL_STM32_RDP_LEVEL (2)
`,
	"ports/stm32/boards/HARD/manifest.py":                 "module(\"fsboot.py\")\npackage(\"fieldseal\", base_path=\"$(BOARD_DIR)/g\")\nmodule(\"_fieldseal_manifest.py\", base_path=\"$(BOARD_DIR)/dist\")\n",
	"ports/stm32/boards/HARD/fsboot.py":                   slotsBoot,
	"ports/stm32/boards/HARD/g/fieldseal/__init__.py":     "",
	"ports/stm32/boards/HARD/g/fieldseal/boot.py":         "def main():\n    pass\n",
	"ports/stm32/boards/HARD/dist/_fieldseal_manifest.py": "M = b''\n",
	"ports/stm32/boards/HARD/mpconfigvariant_USB.mk":      "CFLAGS += -DMICROPY_HW_UART_REPL=1 -DMICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH=1\n",
	"ports/stm32/boards/STOCK/mpconfigboard.mk":           "MCU_SERIES = f7\nCMSIS_MCU = STM32F767xx\n",
	"ports/stm32/boards/STOCK/mpconfigboard.h":            "#define MICROPY_HW_ENABLE_USB (1)\n#define MICROPY_HW_HAS_SWITCH (1)\n#define MICROPY_HW_ENABLE_SDCARD (1)\n#define MICROPY_HW_UART_REPL (1)\n#define MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH (1)\n",
	"ports/stm32/boards/STOCK/manifest.py":                "freeze(\"nothing\")\n", // not selected: the port manifest is
	"ports/rp2/boards/RPI_PICO/mpconfigboard.cmake":       "set(PICO_BOARD \"pico\")\n",
	"ports/rp2/boards/RPI_PICO/mpconfigboard.h":           "#define MICROPY_HW_BOARD_NAME \"Pico\"\n",
	"ports/rp2/boards/ACME_RISCV/mpconfigboard.cmake":     "set(PICO_BOARD \"pico2\")\nset(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)\n",
	"ports/rp2/boards/ACME_RISCV/mpconfigvariant.cmake":   "set(PICO_PLATFORM \"rp2350-riscv\")\n",
	"ports/rp2/boards/ACME_RISCV/mpconfigboard.h": `#define MICROPY_HW_ENABLE_USBDEV (0)
#define MICROPY_ENABLE_COMPILER (0)
#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)
#define MICROPY_PY_MACHINE_MEMX (0)
#define MICROPY_PY_UCTYPES (0)
#define MICROPY_HW_ROMFS_BYTES (64 * 1024)
#define MICROPY_VFS_ROM_IOCTL (0)
`,
	"ports/rp2/boards/ACME_RISCV/manifest.py": "module(\"_boot.py\", base_path=\"$(BOARD_DIR)/m\")\nrequire(\"mip\")\n",
	"ports/rp2/boards/ACME_RISCV/m/_boot.py":  "import fieldseal.boot\n",
}

func TestRealToolsAgreeWithBuiltin(t *testing.T) {
	mpy := os.Getenv("MICROPYTHON_DIR")
	if mpy == "" {
		testenv.SkipOrFail(t, "MICROPYTHON_DIR not set (the pinned MicroPython tree)")
	}
	for _, need := range []string{"py/mpconfig.h", "tools/manifestfile.py", "lib/micropython-lib/micropython/drivers/sensor/dht"} {
		if _, err := os.Stat(filepath.Join(mpy, need)); err != nil {
			testenv.SkipOrFail(t, "MICROPYTHON_DIR lacks "+need)
		}
	}
	for _, tool := range []string{ccName(), "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, tool+" not installed")
		}
	}
	root := t.TempDir()
	for _, d := range []string{"py", "tools", "extmod", "shared", "lib"} {
		if err := os.Symlink(filepath.Join(mpy, d), filepath.Join(root, d)); err != nil {
			t.Fatal(err)
		}
	}
	writeFiles(t, root, fakePorts)
	writeFiles(t, root, agreeBoards)
	cases := []struct {
		board, variant string
		closed         int
	}{
		{"ports/stm32/boards/HARD", "", 18},
		{"ports/stm32/boards/HARD", "USB", 15}, // UART REPL, writable and unsealed ROMFS
		{"ports/stm32/boards/STOCK", "", 2},
		{"ports/rp2/boards/RPI_PICO", "", 8},
		{"ports/rp2/boards/ACME_RISCV", "", 10},
	}
	for _, tc := range cases {
		dir := filepath.Join(root, tc.board)
		b := mustRun(t, dir, Options{Tools: ToolsBuiltin, Variant: tc.variant})
		r := mustRun(t, dir, Options{Tools: ToolsRequire, Variant: tc.variant})
		if !strings.Contains(r.Resolver, "C preprocessor") || strings.Contains(b.Resolver, "preprocessor") {
			t.Fatalf("%s: resolvers %q / %q", tc.board, b.Resolver, r.Resolver)
		}
		for _, w := range r.Warnings {
			if strings.Contains(w, "manifestfile.py") {
				t.Errorf("%s: manifestfile.py not used: %s", tc.board, w)
			}
		}
		for _, c := range b.Checks {
			rc, _ := r.Find(c.ID)
			if c.Status != rc.Status {
				t.Errorf("%s %s: built-in %s (%s), tools %s (%s)", tc.board, c.ID, c.Status, c.Evidence, rc.Status, rc.Evidence)
			}
		}
		if r.Count(Closed) != tc.closed {
			t.Errorf("%s/%s: %s closed, want %d: %s", tc.board, tc.variant, r.Score, tc.closed, r.Verdict)
		}
	}
	// The tools' evidence names the real files: the port header line, manifestfile.py.
	r := mustRun(t, filepath.Join(root, "ports/stm32/boards/STOCK"), Options{Tools: ToolsRequire})
	if c, _ := r.Find("compiler"); !strings.Contains(c.Evidence, "py/mpconfig.h:") {
		t.Errorf("compiler evidence: %s", c.Evidence)
	}
	r = mustRun(t, filepath.Join(root, "ports/stm32/boards/HARD"), Options{Tools: ToolsRequire})
	if c, _ := r.Find("guard-frozen"); !strings.Contains(c.Evidence, "tools/manifestfile.py") {
		t.Errorf("guard-frozen evidence: %s", c.Evidence)
	}
}
