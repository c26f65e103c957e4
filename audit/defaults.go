package audit

import "strings"

// MicroPythonVersion is the release whose port defaults this file models. The values
// were read from micropython/micropython at v1.29.0-preview (commit 1c3c2011, the
// snapshot cited by /work/shared/reference/micropython-hardening.md) and ESP-IDF's
// defaults as MicroPython's esp32 sdkconfig.base leaves them. When a board does not
// define a setting, the audit uses these values and says so in the evidence
// ("port default (MicroPython 1.29, <file>)"). docs/HARDENING.md lists the same table.
const MicroPythonVersion = "1.29"

// portDefault is the value a port gives a macro the board leaves alone: a C expression
// evaluated against the board's own macros, as the port header would.
type portDefault struct {
	expr   string
	source string // file in the MicroPython tree that sets it
}

// esp32Chip describes the SoC features that change esp32 defaults.
type esp32Chip struct {
	name      string
	usbOTG    bool // SOC_USB_OTG_SUPPORTED: TinyUSB CDC/MSC possible
	usbSerial bool // SOC_USB_SERIAL_JTAG_SUPPORTED
	riscv     bool
}

var esp32Chips = map[string]esp32Chip{
	"esp32":   {name: "esp32"},
	"esp32s2": {name: "esp32s2", usbOTG: true},
	"esp32s3": {name: "esp32s3", usbOTG: true, usbSerial: true},
	"esp32c2": {name: "esp32c2", riscv: true},
	"esp32c3": {name: "esp32c3", usbSerial: true, riscv: true},
	"esp32c5": {name: "esp32c5", usbSerial: true, riscv: true},
	"esp32c6": {name: "esp32c6", usbSerial: true, riscv: true},
	"esp32h2": {name: "esp32h2", usbSerial: true, riscv: true},
	"esp32p4": {name: "esp32p4", usbOTG: true, usbSerial: true, riscv: true},
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// portDefaults returns the modelled defaults for a port; chip refines esp32 and rp2.
func portDefaults(port, chip string) map[string]portDefault {
	const mpconfig = "py/mpconfig.h"
	d := map[string]portDefault{
		"MICROPY_ENABLE_COMPILER":               {"1", mpconfig},
		"MICROPY_PY_UCTYPES":                    {"1", mpconfig + " (ROM level EXTRA_FEATURES)"},
		"MICROPY_HW_USB_CDC_1200BPS_TOUCH":      {"0", "shared/tinyusb/mp_usbd.h"},
		"MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER": {"0", "shared/tinyusb/mp_usbd.h"},
	}
	switch port {
	case "stm32":
		c := "ports/stm32/mpconfigboard_common.h"
		d["MICROPY_HW_ENABLE_USB"] = portDefault{"0", c}
		d["MICROPY_HW_USB_MSC"] = portDefault{"MICROPY_HW_ENABLE_USB", c}
		d["MICROPY_HW_HAS_SWITCH"] = portDefault{"0", c}
		d["MICROPY_HW_ENABLE_SDCARD"] = portDefault{"0", c}
		d["MICROPY_HW_SDCARD_MOUNT_AT_BOOT"] = portDefault{"MICROPY_HW_ENABLE_SDCARD", c}
		d["MICROPY_EMIT_THUMB"] = portDefault{"1", "ports/stm32/mpconfigport.h"}
		d["MICROPY_EMIT_INLINE_THUMB"] = portDefault{"1", "ports/stm32/mpconfigport.h"}
		d["MICROPY_PY_MACHINE_MEMX"] = portDefault{"1", "ports/stm32/mpconfigport.h"}
		d["MICROPY_PERSISTENT_CODE_LOAD_NATIVE"] = portDefault{"(MICROPY_EMIT_THUMB || MICROPY_EMIT_INLINE_THUMB)", mpconfig + ":416"}
		d["MICROPY_HW_USB_CDC_1200BPS_TOUCH"] = portDefault{"0", c}
	case "esp32":
		ch := esp32Chips[chip]
		p := "ports/esp32/mpconfigport.h"
		d["MICROPY_HW_ENABLE_USBDEV"] = portDefault{b01(ch.usbOTG), p + " (SOC_USB_OTG_SUPPORTED on " + ch.name + ")"}
		d["MICROPY_HW_USB_CDC"] = portDefault{"MICROPY_HW_ENABLE_USBDEV", p}
		d["MICROPY_HW_USB_MSC"] = portDefault{"0", p}
		d["MICROPY_HW_ESP_USB_SERIAL_JTAG"] = portDefault{"(" + b01(ch.usbSerial) + " && !MICROPY_HW_ENABLE_USBDEV)", p + " (SOC_USB_SERIAL_JTAG_SUPPORTED on " + ch.name + ")"}
		d["MICROPY_HW_ENABLE_UART_REPL"] = portDefault{"1", "ports/esp32/uart.h"}
		d["MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER"] = portDefault{"1", p + ":271-273"}
		d["MICROPY_EMIT_XTENSAWIN"] = portDefault{b01(!ch.riscv), p}
		d["MICROPY_EMIT_RV32"] = portDefault{b01(ch.riscv), p}
		d["MICROPY_PY_MACHINE_MEMX"] = portDefault{"1", p}
		d["MICROPY_PERSISTENT_CODE_LOAD_NATIVE"] = portDefault{"(MICROPY_EMIT_XTENSAWIN || MICROPY_EMIT_RV32)", mpconfig + ":416"}
	case "rp2":
		p := "ports/rp2/mpconfigport.h"
		riscv := strings.Contains(chip, "riscv")
		d["MICROPY_HW_ENABLE_USBDEV"] = portDefault{"1", p}
		d["MICROPY_HW_USB_CDC"] = portDefault{"MICROPY_HW_ENABLE_USBDEV", p}
		d["MICROPY_HW_USB_MSC"] = portDefault{"0", p}
		d["MICROPY_HW_ENABLE_UART_REPL"] = portDefault{"0", p}
		d["MICROPY_EMIT_THUMB"] = portDefault{b01(!riscv), p}
		d["MICROPY_EMIT_INLINE_THUMB"] = portDefault{b01(!riscv), p}
		d["MICROPY_EMIT_RV32"] = portDefault{b01(riscv), p}
		d["MICROPY_PY_MACHINE_MEMX"] = portDefault{"1", p}
		d["MICROPY_PERSISTENT_CODE_LOAD_NATIVE"] = portDefault{"(MICROPY_EMIT_THUMB || MICROPY_EMIT_INLINE_THUMB || MICROPY_EMIT_RV32)", mpconfig + ":416"}
	}
	return d
}

// modelledManifest is what a stock MicroPython manifest contributes, for boards kept
// outside a MicroPython tree whose manifests include() the port's one.
type modelledManifest struct {
	source   string
	frozen   []frozenItem
	requires []string
}

// modelledPortManifest answers include("$(PORT_DIR)/boards/manifest.py") when the
// port tree is not available. Only facts the audit checks are modelled: which boot
// files are frozen and which micropython-lib packages are required.
func modelledPortManifest(port, p string) *modelledManifest {
	np := strings.TrimSuffix(strings.TrimSuffix(p, "/"), "/manifest.py")
	if np != "$(PORT_DIR)/boards" {
		return nil
	}
	src := "port manifest ports/" + port + "/boards/manifest.py (MicroPython " + MicroPythonVersion + " model)"
	switch port {
	case "esp32":
		return &modelledManifest{source: src,
			frozen:   stockModules("_boot.py", "inisetup.py", "flashbdev.py"),
			requires: []string{"bundle-networking", "dht", "ds18x20", "neopixel", "onewire", "umqtt.robust", "umqtt.simple", "upysh"}}
	case "rp2":
		return &modelledManifest{source: src,
			frozen:   stockModules("_boot.py", "_boot_fat.py", "rp2.py"),
			requires: []string{"onewire", "ds18x20", "dht", "neopixel"}}
	case "stm32":
		return &modelledManifest{source: src, requires: []string{"dht", "onewire"}}
	}
	return nil
}

// modelledPortModules answers freeze("$(PORT_DIR)/modules").
func modelledPortModules(port, p string) *modelledManifest {
	if strings.TrimSuffix(p, "/") != "$(PORT_DIR)/modules" {
		return nil
	}
	src := "ports/" + port + "/modules (MicroPython " + MicroPythonVersion + " model)"
	switch port {
	case "esp32":
		return &modelledManifest{source: src, frozen: stockModules("_boot.py", "inisetup.py", "flashbdev.py")}
	case "rp2":
		return &modelledManifest{source: src, frozen: stockModules("_boot.py", "_boot_fat.py", "rp2.py")}
	}
	return nil
}

func stockModules(names ...string) []frozenItem {
	out := make([]frozenItem, len(names))
	for i, n := range names {
		out[i] = frozenItem{name: n, stock: true}
	}
	return out
}

// Port partition tables shipped with MicroPython 1.29's esp32 port. None has an
// encrypted vfs entry or a state partition; partitions-4MiBplus.csv has no vfs entry at
// all (the port registers one at run time, which cannot carry the encrypted flag).
var esp32PortPartitionTables = map[string]string{
	"partitions-4MiBplus.csv":   "no vfs entry (registered at run time by main.c, cannot be encrypted)",
	"partitions-4MiB.csv":       "vfs entry without the encrypted flag",
	"partitions-2MiB.csv":       "vfs entry without the encrypted flag",
	"partitions-8MiB.csv":       "vfs entry without the encrypted flag",
	"partitions-16MiB.csv":      "vfs entry without the encrypted flag",
	"partitions-32MiB.csv":      "vfs entry without the encrypted flag",
	"partitions-4MiB-ota.csv":   "vfs entry without the encrypted flag",
	"partitions-8MiB-ota.csv":   "vfs entry without the encrypted flag",
	"partitions-4MiB-romfs.csv": "vfs entry without the encrypted flag",
}

// esp32DefaultPartitionTable is what sdkconfig.base selects when a board sets nothing.
const esp32DefaultPartitionTable = "partitions-4MiBplus.csv"
