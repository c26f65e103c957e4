package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Port defaults checked against MicroPython 1c3c2011 (defaults.go, docs/HARDENING.md §2).

// esp32Board writes a minimal esp32 board for chip with the given mpconfigboard.h and
// sdkconfig.board bodies.
func esp32Board(t *testing.T, chip, hdr, sdk string) *Report {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"mpconfigboard.cmake": "set(IDF_TARGET " + chip + ")\nset(SDKCONFIG_DEFAULTS\n    boards/sdkconfig.base\n    ${MICROPY_BOARD_DIR}/sdkconfig.board\n)\n",
		"mpconfigboard.h":     "#define MICROPY_HW_BOARD_NAME \"T\"\n" + hdr,
		"sdkconfig.board":     sdk,
		"manifest.py":         "include(\"$(PORT_DIR)/boards/manifest.py\")\n",
	}
	for n, s := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return mustRun(t, dir, Options{})
}

func wantEvidence(t *testing.T, c Check, sub string) {
	t.Helper()
	if !strings.Contains(c.Evidence, sub) {
		t.Errorf("%s evidence lacks %q: %s", c.ID, sub, c.Evidence)
	}
}

// ports/esp32/uart.h:32-33: the UART REPL is on by default only without a USB REPL.
func TestDefaultsESP32UARTREPLFollowsUSB(t *testing.T) {
	wantEvidence(t, wantStatus(t, esp32Board(t, "esp32", "", ""), "repl-uart", Open), "ports/esp32/uart.h:32-33")
	wantStatus(t, esp32Board(t, "esp32s3", "", ""), "repl-uart", Closed) // USB CDC is the REPL
	wantStatus(t, esp32Board(t, "esp32c3", "", ""), "repl-uart", Closed) // USB-Serial/JTAG is the REPL
}

// ports/esp32/mpconfigport.h:325-326: USB-Serial/JTAG follows MICROPY_HW_USB_CDC, and on
// the P4 (SOC_USB_OTG_PERIPH_NUM 2) stays on next to USB CDC.
func TestDefaultsESP32USBSerialJTAG(t *testing.T) {
	wantStatus(t, esp32Board(t, "esp32s3", "", ""), "repl-usb-jtag", Closed)
	wantStatus(t, esp32Board(t, "esp32s3", "#define MICROPY_HW_USB_CDC (0)\n", ""), "repl-usb-jtag", Open)
	wantStatus(t, esp32Board(t, "esp32p4", "", ""), "repl-usb-jtag", Open)
	wantStatus(t, esp32Board(t, "esp32p4", "#define MICROPY_HW_ESP_USB_SERIAL_JTAG (0)\n", ""), "repl-usb-jtag", Closed)
}

// ports/esp32/mpconfigport.h:271-273 defines DTR_RTS_BOOTLOADER (1) with no #ifndef when
// USB is on: the board's (0) does not survive; only MICROPY_HW_ENABLE_USBDEV (0) helps.
func TestDefaultsESP32DTRRTSBootloaderIsForced(t *testing.T) {
	r := esp32Board(t, "esp32s3", "#define MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER (0)\n", "")
	c := wantStatus(t, r, "bootloader-jump", Open)
	wantEvidence(t, c, "mpconfigport.h:271-273")
	wantEvidence(t, c, "overrides mpconfigboard.h:2")
	wantStatus(t, esp32Board(t, "esp32s3", "#define MICROPY_HW_ENABLE_USBDEV (0)\n", ""), "bootloader-jump", Closed)
	wantStatus(t, esp32Board(t, "esp32c3", "", ""), "bootloader-jump", Closed) // no USB-OTG
}

// The esp32 and rp2 emitters are #defined without #ifndef: a board's (0) is overridden,
// so native code is closed by MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0) plus no compiler.
func TestDefaultsForcedEmitters(t *testing.T) {
	r := esp32Board(t, "esp32s3", "#define MICROPY_EMIT_XTENSAWIN (0)\n#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)\n", "")
	c := wantStatus(t, r, "native-code", Open)
	wantEvidence(t, c, "mpconfigport.h:51-52")
	r = esp32Board(t, "esp32s3", "#define MICROPY_EMIT_XTENSAWIN (0)\n", "")
	wantEvidence(t, wantStatus(t, r, "native-code", Open), "MICROPY_EMIT_MACHINE_CODE") // .mpy loading follows the forced emitter
	r = esp32Board(t, "esp32s3", "#define MICROPY_ENABLE_COMPILER (0)\n#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)\n", "")
	wantStatus(t, r, "native-code", Closed)

	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "rp2040_pico"), dir)
	os.WriteFile(filepath.Join(dir, "mpconfigboard.h"), []byte("#define MICROPY_EMIT_THUMB (0)\n#define MICROPY_EMIT_INLINE_THUMB (0)\n"), 0o644)
	c = wantStatus(t, mustRun(t, dir, Options{}), "native-code", Open)
	wantEvidence(t, c, "ports/rp2/mpconfigport.h:108-109")

	// stm32 guards its emitters with #ifndef: the board's (0) counts.
	dir = t.TempDir()
	copyDir(t, filepath.Join("testdata", "stm32_hardened"), dir)
	os.WriteFile(filepath.Join(dir, "mpconfigboard.h"), []byte("#define MICROPY_EMIT_THUMB (0)\n#define MICROPY_EMIT_INLINE_THUMB (0)\n"), 0o644)
	wantStatus(t, mustRun(t, dir, Options{}), "native-code", Closed)
}

// ports/esp32/mpconfigport.h:43-44: CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT=y compiles the
// RISC-V emitter out (sdkconfig.base:151 sets it to n).
func TestDefaultsESP32RV32FollowsPMPSplit(t *testing.T) {
	hdr := "#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)\n"
	wantStatus(t, esp32Board(t, "esp32c6", hdr, ""), "native-code", Open)
	c := wantStatus(t, esp32Board(t, "esp32c6", hdr, "CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT=y\n"), "native-code", Closed)
	wantEvidence(t, c, "CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT=y")
}

// MicroPython 1.29 ships five esp32 partition tables, none with a vfs entry; the old
// partitions-8MiB.csv and friends were removed in 6201e77999.
func TestDefaultsESP32PartitionTables(t *testing.T) {
	c := wantStatus(t, esp32Board(t, "esp32s3", "", "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"partitions-8MiB.csv\"\n"), "vfs-encrypted", Unknown)
	wantEvidence(t, c, "not found")
	c = wantStatus(t, esp32Board(t, "esp32s3", "", "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"partitions-8MiBplus-ota.csv\"\n"), "vfs-encrypted", Open)
	wantEvidence(t, c, "no vfs entry")
	wantEvidence(t, wantStatus(t, esp32Board(t, "esp32s3", "", ""), "vfs-encrypted", Open), "partitions-4MiBplus.csv")
}

// py/mpconfig.h:560-561, 1965-1966: the compiler and uctypes follow the ROM level.
func TestDefaultsFollowROMLevel(t *testing.T) {
	r := esp32Board(t, "esp32s3", "#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_BASIC_FEATURES)\n#define MICROPY_PY_MACHINE_MEMX (0)\n", "")
	wantStatus(t, r, "compiler", Open)
	wantStatus(t, r, "mem-access", Closed) // uctypes needs EXTRA
	wantEvidence(t, wantStatus(t, esp32Board(t, "esp32s3", "", ""), "mem-access", Open), "MICROPY_PY_MACHINE = 1")
}
