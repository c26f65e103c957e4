package audit

import "strings"

// MicroPythonVersion is the release whose port defaults this file models. Every value
// below was checked against micropython/micropython at commit 1c3c2011 (git describe:
// v1.29.0-preview-731-g1c3c201149, the snapshot cited by
// /work/shared/reference/micropython-hardening.md); file:line citations are to that
// commit. ESP-IDF SoC capabilities are from espressif/esp-idf
// components/soc/<chip>/include/soc/soc_caps.h. When a board does not define a
// setting, the audit uses these values and says so in the evidence ("port default
// (MicroPython 1.29, <file>)"). docs/HARDENING.md §2 lists the same table.
const MicroPythonVersion = "1.29"

// portDefault is the value a port gives a macro the board leaves alone: a C expression
// evaluated against the board's own macros, as the port header would.
type portDefault struct {
	expr   string
	source string // file:line in the MicroPython tree that sets it
	// force, if set, is a definition the port makes with no #ifndef guard after
	// mpconfigboard.h has been included: a board's own definition of the macro does
	// not survive it (GCC warns "redefined" and keeps the port's value; ports built
	// with -Werror, e.g. rp2 (ports/rp2/CMakeLists.txt:539-541), stop with an error).
	force *portForce
	// unknown, if set, makes the macro unknown: its default depends on something the
	// audit could not establish (an unknown chip).
	unknown string
}

// portForce is an unguarded port definition, made only when the #if condition when
// holds ("" = always). When it does not hold, expr/source above apply as usual.
type portForce struct {
	when, expr, source string
}

// def is an ordinary #ifndef-guarded default.
func def(expr, source string) portDefault { return portDefault{expr: expr, source: source} }

// forced is a default the board cannot override.
func forced(expr, source string) portDefault {
	return portDefault{expr: expr, source: source, force: &portForce{expr: expr, source: source}}
}

// esp32Chip describes the SoC features that change esp32 defaults. Values are the
// SOC_* capabilities in ESP-IDF's components/soc/<chip>/include/soc/soc_caps.h
// (COMMON CAPS block; verified for esp32s2, esp32s3, esp32c2, esp32c3, esp32c5,
// esp32c6, esp32h2, esp32p4; the original esp32 has no USB peripheral and is not RISC-V).
type esp32Chip struct {
	name       string
	usbOTG     bool // SOC_USB_OTG_SUPPORTED: TinyUSB CDC/MSC possible
	usbSerial  bool // SOC_USB_SERIAL_JTAG_SUPPORTED
	otgPeriphs int  // SOC_USB_OTG_PERIPH_NUM: 2 on the P4 (HS + FS), 1 on S2/S3, else undefined (0)
	riscv      bool // CONFIG_IDF_TARGET_ARCH_RISCV
}

var esp32Chips = map[string]esp32Chip{
	"esp32":   {name: "esp32"},
	"esp32s2": {name: "esp32s2", usbOTG: true, otgPeriphs: 1},
	"esp32s3": {name: "esp32s3", usbOTG: true, usbSerial: true, otgPeriphs: 1},
	"esp32c2": {name: "esp32c2", riscv: true},
	"esp32c3": {name: "esp32c3", usbSerial: true, riscv: true},
	"esp32c5": {name: "esp32c5", usbSerial: true, riscv: true},
	"esp32c6": {name: "esp32c6", usbSerial: true, riscv: true},
	"esp32h2": {name: "esp32h2", usbSerial: true, riscv: true},
	"esp32p4": {name: "esp32p4", usbOTG: true, usbSerial: true, otgPeriphs: 2, riscv: true},
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// portDefaults returns the modelled defaults for a port; chip refines esp32 and rp2.
// Each entry's comment records the value found in MicroPython 1c3c2011 and where.
func portDefaults(port, chip string) map[string]portDefault {
	const mpconfig = "py/mpconfig.h"
	d := map[string]portDefault{
		// ROM levels, py/mpconfig.h:85-95 (unconditional constants).
		"MICROPY_CONFIG_ROM_LEVEL_MINIMUM":        def("0", mpconfig+":85"),
		"MICROPY_CONFIG_ROM_LEVEL_CORE_FEATURES":  def("10", mpconfig+":87"),
		"MICROPY_CONFIG_ROM_LEVEL_BASIC_FEATURES": def("20", mpconfig+":89"),
		"MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES": def("30", mpconfig+":91"),
		"MICROPY_CONFIG_ROM_LEVEL_FULL_FEATURES":  def("40", mpconfig+":93"),
		"MICROPY_CONFIG_ROM_LEVEL_EVERYTHING":     def("50", mpconfig+":95"),
		// py/mpconfig.h:104-105 defaults the level to CORE; each port below sets EXTRA.
		"MICROPY_CONFIG_ROM_LEVEL": def("MICROPY_CONFIG_ROM_LEVEL_CORE_FEATURES", mpconfig+":104-105"),
		// Unguarded helpers, py/mpconfig.h:109-113.
		"MICROPY_CONFIG_ROM_LEVEL_AT_LEAST_CORE_FEATURES":  forced("(MICROPY_CONFIG_ROM_LEVEL >= MICROPY_CONFIG_ROM_LEVEL_CORE_FEATURES)", mpconfig+":109"),
		"MICROPY_CONFIG_ROM_LEVEL_AT_LEAST_BASIC_FEATURES": forced("(MICROPY_CONFIG_ROM_LEVEL >= MICROPY_CONFIG_ROM_LEVEL_BASIC_FEATURES)", mpconfig+":110"),
		"MICROPY_CONFIG_ROM_LEVEL_AT_LEAST_EXTRA_FEATURES": forced("(MICROPY_CONFIG_ROM_LEVEL >= MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)", mpconfig+":111"),
		"MICROPY_CONFIG_ROM_LEVEL_AT_LEAST_FULL_FEATURES":  forced("(MICROPY_CONFIG_ROM_LEVEL >= MICROPY_CONFIG_ROM_LEVEL_FULL_FEATURES)", mpconfig+":112"),
		"MICROPY_CONFIG_ROM_LEVEL_AT_LEAST_EVERYTHING":     forced("(MICROPY_CONFIG_ROM_LEVEL >= MICROPY_CONFIG_ROM_LEVEL_EVERYTHING)", mpconfig+":113"),
		// Found (MICROPY_CONFIG_ROM_LEVEL_AT_LEAST_CORE_FEATURES), py/mpconfig.h:560-561: 1 at
		// the ports' EXTRA level, 0 only if a board drops below CORE.
		"MICROPY_ENABLE_COMPILER": def("MICROPY_CONFIG_ROM_LEVEL_AT_LEAST_CORE_FEATURES", mpconfig+":560-561"),
		// Found (MICROPY_CONFIG_ROM_LEVEL_AT_LEAST_EXTRA_FEATURES), py/mpconfig.h:1965-1966: 1
		// at the ports' EXTRA level, 0 for a board that lowers the ROM level.
		"MICROPY_PY_UCTYPES": def("MICROPY_CONFIG_ROM_LEVEL_AT_LEAST_EXTRA_FEATURES", mpconfig+":1965-1966"),
		// Found (MICROPY_EMIT_MACHINE_CODE), py/mpconfig.h:415-416: every native and inline-asm
		// emitter, not only the port's own; #ifndef-guarded, so a board can set it to 0.
		"MICROPY_PERSISTENT_CODE_LOAD_NATIVE": def("MICROPY_EMIT_MACHINE_CODE", mpconfig+":415-416"),
		// Unguarded convenience macros, py/mpconfig.h:539, 547, 550.
		"MICROPY_EMIT_NATIVE":       forced("(MICROPY_EMIT_X64 || MICROPY_EMIT_X86 || MICROPY_EMIT_THUMB || MICROPY_EMIT_ARM || MICROPY_EMIT_XTENSA || MICROPY_EMIT_XTENSAWIN || MICROPY_EMIT_RV32 || MICROPY_EMIT_NATIVE_DEBUG)", mpconfig+":539"),
		"MICROPY_EMIT_INLINE_ASM":   forced("(MICROPY_EMIT_INLINE_THUMB || MICROPY_EMIT_INLINE_XTENSA || MICROPY_EMIT_INLINE_RV32)", mpconfig+":547"),
		"MICROPY_EMIT_MACHINE_CODE": forced("(MICROPY_EMIT_NATIVE || MICROPY_EMIT_INLINE_ASM)", mpconfig+":550"),
		// Found (MICROPY_PY_MACHINE), py/mpconfig.h:2098-2099 (no port header sets MEMX);
		// MICROPY_PY_MACHINE is 0 in py/mpconfig.h:2073-2074 and 1 in every port below.
		"MICROPY_PY_MACHINE_MEMX": def("MICROPY_PY_MACHINE", mpconfig+":2098-2099"),
		"MICROPY_PY_MACHINE":      def("0", mpconfig+":2073-2074"),
		// Found: no default anywhere in the tree (only Arduino board files set it, e.g.
		// ports/rp2/boards/ARDUINO_NANO_RP2040_CONNECT/mpconfigboard.h:23), so #if reads it as 0:
		// shared/tinyusb/mp_usbd_cdc.c:164, 207; ports/stm32/usbd_cdc_interface.c:76, 172.
		"MICROPY_HW_USB_CDC_1200BPS_TOUCH": def("0", "undefined in the port (read as 0 by shared/tinyusb/mp_usbd_cdc.c:164, ports/stm32/usbd_cdc_interface.c:76)"),
		// Found (0), #ifndef-guarded, shared/tinyusb/mp_usbd_cdc.h:38-39 (rp2; esp32 see below).
		// stm32's own USB stack never reads it.
		"MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER": def("0", "shared/tinyusb/mp_usbd_cdc.h:38-39"),
		// ROMFS, py/mpconfig.h:1282-1283 (off) and :1252-1253 (rom_ioctl follows it).
		"MICROPY_VFS_ROM":       def("0", mpconfig+":1282-1283"),
		"MICROPY_VFS_ROM_IOCTL": def("MICROPY_VFS_ROM", mpconfig+":1252-1253"),
	}
	switch port {
	case "stm32":
		c := "ports/stm32/mpconfigboard_common.h"
		p := "ports/stm32/mpconfigport.h"
		d["MICROPY_CONFIG_ROM_LEVEL"] = def("MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES", p+":34-35")
		d["MICROPY_HW_ENABLE_USB"] = def("0", c+":135-136")                                  // found (0), #ifndef-guarded
		d["MICROPY_PY_STM"] = def("1", c+":36-37")                                           // found (1), #ifndef-guarded
		d["MICROPY_HW_USB_MSC"] = def("MICROPY_HW_ENABLE_USB", c+":281-282")                 // found, #ifndef-guarded
		d["MICROPY_HW_HAS_SWITCH"] = def("0", c+":145-146")                                  // found (0), #ifndef-guarded
		d["MICROPY_HW_ENABLE_SDCARD"] = def("0", c+":155-156")                               // found (0), #ifndef-guarded
		d["MICROPY_HW_SDCARD_MOUNT_AT_BOOT"] = def("MICROPY_HW_ENABLE_SDCARD", c+":175-176") // found, #ifndef-guarded
		d["MICROPY_EMIT_THUMB"] = def("1", p+":61-62")                                       // found (1), #ifndef-guarded
		d["MICROPY_EMIT_INLINE_THUMB"] = def("1", p+":64-65")                                // found (1), #ifndef-guarded
		d["MICROPY_PY_MACHINE"] = def("1", p+":114-115")                                     // found (1), #ifndef-guarded
		// Found, #ifndef-guarded: ROMFS follows the three storage switches, all (0).
		d["MICROPY_VFS_ROM"] = def("(MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH || MICROPY_HW_ROMFS_ENABLE_EXTERNAL_QSPI || MICROPY_HW_ROMFS_ENABLE_EXTERNAL_XSPI)", p+":85-86")
		d["MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH"] = def("0", c+":75-76")
		d["MICROPY_HW_ROMFS_ENABLE_EXTERNAL_QSPI"] = def("0", c+":80-81")
		d["MICROPY_HW_ROMFS_ENABLE_EXTERNAL_XSPI"] = def("0", c+":85-86")
		// MICROPY_HW_USB_CDC_1200BPS_TOUCH: not in mpconfigboard_common.h; the common entry
		// above (undefined, read as 0) applies.
	case "esp32":
		ch := esp32Chips[chip]
		p := "ports/esp32/mpconfigport.h"
		d["MICROPY_CONFIG_ROM_LEVEL"] = def("MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES", p+":13-14")
		// Found (SOC_USB_OTG_SUPPORTED), #ifndef-guarded, :267-268.
		d["MICROPY_HW_ENABLE_USBDEV"] = def(b01(ch.usbOTG), p+":267-268 (SOC_USB_OTG_SUPPORTED on "+ch.name+")")
		// Found (MICROPY_HW_ENABLE_USBDEV), #ifndef-guarded, :319-320.
		d["MICROPY_HW_USB_CDC"] = def("MICROPY_HW_ENABLE_USBDEV", p+":319-320")
		// Found: the esp32 port does not define it; undefined, read as 0 by
		// shared/tinyusb/tusb_config.h:72.
		d["MICROPY_HW_USB_MSC"] = def("0", "undefined in ports/esp32 (read as 0 by shared/tinyusb/tusb_config.h:72)")
		// Found (SOC_USB_SERIAL_JTAG_SUPPORTED && (!MICROPY_HW_USB_CDC || SOC_USB_OTG_PERIPH_NUM > 1)),
		// #ifndef-guarded, :325-326: it follows USB_CDC (not ENABLE_USBDEV), and on the P4
		// (two OTG peripherals) it stays on next to USB CDC.
		d["MICROPY_HW_ESP_USB_SERIAL_JTAG"] = def("("+b01(ch.usbSerial)+" && (!MICROPY_HW_USB_CDC || "+b01(ch.otgPeriphs > 1)+"))",
			p+":325-326 (SOC_USB_SERIAL_JTAG_SUPPORTED, SOC_USB_OTG_PERIPH_NUM > 1 on "+ch.name+")")
		// Found (!MICROPY_HW_USB_CDC && !MICROPY_HW_ESP_USB_SERIAL_JTAG), #ifndef-guarded,
		// ports/esp32/uart.h:32-33 (same in v1.27.0 and v1.28.0): on only when no USB REPL
		// exists. The generic boards set it to (1) themselves (e.g.
		// ports/esp32/boards/ESP32_GENERIC_S3/mpconfigboard.h:8).
		d["MICROPY_HW_ENABLE_UART_REPL"] = def("(!MICROPY_HW_USB_CDC && !MICROPY_HW_ESP_USB_SERIAL_JTAG)", "ports/esp32/uart.h:32-33")
		// Found #define ... (1) inside #if MICROPY_HW_ENABLE_USBDEV with no #ifndef, :271-273: with USB on, a board's (0) is overridden; with USB off the
		// shared default 0 applies (shared/tinyusb/mp_usbd_cdc.h:38-39).
		d["MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER"] = portDefault{expr: "0", source: "shared/tinyusb/mp_usbd_cdc.h:38-39",
			force: &portForce{when: "MICROPY_HW_ENABLE_USBDEV", expr: "1", source: p + ":271-273"}}
		// Found: unguarded #define (1) on Xtensa
		// (:51-52) and on RISC-V (:42-46) unless CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT, which
		// ports/esp32/boards/sdkconfig.base:151 sets to n (see refineESP32Defaults). A board
		// cannot turn either emitter off in mpconfigboard.h.
		if ch.riscv {
			d["MICROPY_EMIT_RV32"] = forced("1", p+":42-46 (RISC-V; CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT=n from boards/sdkconfig.base:151)")
		} else {
			d["MICROPY_EMIT_XTENSAWIN"] = forced("1", p+":51-52 (Xtensa)")
		}
		// Unguarded #define MICROPY_PY_MACHINE (1), :120.
		d["MICROPY_PY_MACHINE"] = forced("1", p+":120")
		if _, known := esp32Chips[chip]; !known {
			why := "the esp32 default depends on the chip, which is unknown"
			for _, n := range []string{"MICROPY_HW_ENABLE_USBDEV", "MICROPY_HW_ESP_USB_SERIAL_JTAG", "MICROPY_EMIT_XTENSAWIN", "MICROPY_EMIT_RV32"} {
				d[n] = portDefault{unknown: n + ": " + why}
			}
			d["MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER"] = portDefault{unknown: "MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER: " + why}
		}
	case "rp2":
		p := "ports/rp2/mpconfigport.h"
		riscv := strings.Contains(chip, "riscv")
		d["MICROPY_CONFIG_ROM_LEVEL"] = def("MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES", p+":80-81")
		d["MICROPY_HW_ENABLE_UART_REPL"] = def("0", p+":48-49") // found (0), #ifndef-guarded
		d["MICROPY_HW_ENABLE_USBDEV"] = def("1", p+":51-52")    // found (1), #ifndef-guarded
		// Found (1) and (0), #ifndef-guarded inside #if MICROPY_HW_ENABLE_USBDEV (:55, 57-58, 61-62); without USB both are undefined (0).
		d["MICROPY_HW_USB_CDC"] = def("MICROPY_HW_ENABLE_USBDEV", p+":55, 57-58 ((1) inside #if MICROPY_HW_ENABLE_USBDEV)")
		d["MICROPY_HW_USB_MSC"] = def("0", p+":61-62")
		// Found: unguarded #define (1) under #if PICO_ARM / #elif PICO_RISCV, :108-115; the RISC-V build also enables the
		// RV32 inline assembler. rp2 builds with -Werror, so a board's (0) stops the build.
		if riscv {
			d["MICROPY_EMIT_RV32"] = forced("1", p+":111-112 (PICO_RISCV)")
			d["MICROPY_EMIT_INLINE_RV32"] = forced("1", p+":111, 115 (PICO_RISCV)")
		} else {
			d["MICROPY_EMIT_THUMB"] = forced("1", p+":108-109 (PICO_ARM)")
			d["MICROPY_EMIT_INLINE_THUMB"] = forced("1", p+":108, 110 (PICO_ARM)")
		}
		// Found: ROMFS is on when the board gives it flash; unguarded (:218), size #ifndef (:71-72).
		d["MICROPY_VFS_ROM"] = forced("(MICROPY_HW_ROMFS_BYTES > 0)", p+":218")
		d["MICROPY_HW_ROMFS_BYTES"] = def("0", p+":71-72")
		// Unguarded #define MICROPY_PY_MACHINE (1), :164.
		d["MICROPY_PY_MACHINE"] = forced("1", p+":164")
	}
	return d
}

// refineESP32Defaults applies what the board's sdkconfig fragments change in the esp32
// defaults: with CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT=y the RISC-V emitter is compiled out
// (ports/esp32/mpconfigport.h:43-44).
func (b *board) refineESP32Defaults() {
	if b.port != "esp32" || !esp32Chips[b.chip].riscv || b.sc == nil || len(b.sc.problems) > 0 {
		return
	}
	if b.sc.vals["CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT"] == "y" {
		b.defaults["MICROPY_EMIT_RV32"] = forced("0", "ports/esp32/mpconfigport.h:43-44 ("+b.sc.where["CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT"]+": CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT=y)")
	}
}

// modelledManifest is what a stock MicroPython manifest contributes, for boards kept
// outside a MicroPython tree whose manifests include() the port's one.
type modelledManifest struct {
	source   string
	frozen   []frozenItem
	requires []string
}

// Stock frozen modules: the files under ports/<port>/modules at 1c3c2011
// (git ls-tree). stm32 has no modules directory.
var (
	esp32StockModules = []string{"_boot.py", "apa106.py", "espnow.py", "flashbdev.py", "inisetup.py", "machine.py"}
	rp2StockModules   = []string{"_boot.py", "_boot_fat.py", "rp2.py"}
)

// modelledPortManifest answers include("$(PORT_DIR)/boards/manifest.py") when the
// port tree is not available. Only facts the audit checks are modelled: which boot
// files are frozen and which micropython-lib packages are required. Each port
// manifest also has include("$(MPY_DIR)/extmod/asyncio"), which freezes only the
// asyncio package and is not modelled.
func modelledPortManifest(port, p string) *modelledManifest {
	np := strings.TrimSuffix(strings.TrimSuffix(p, "/"), "/manifest.py")
	if np != "$(PORT_DIR)/boards" {
		return nil
	}
	src := "port manifest ports/" + port + "/boards/manifest.py (MicroPython " + MicroPythonVersion + " model)"
	switch port {
	case "esp32":
		// ports/esp32/boards/manifest.py:1 freeze("$(PORT_DIR)/modules"); :5 require("bundle-networking")
		// (micropython-lib bundle-networking requires mip, ntptime, ssl, requests, webrepl,
		// urequests); :8-15 aioespnow, dht, ds18x20, neopixel, onewire, umqtt.robust,
		// umqtt.simple, upysh.
		return &modelledManifest{source: src,
			frozen:   stockModules(esp32StockModules...),
			requires: []string{"bundle-networking", "aioespnow", "dht", "ds18x20", "neopixel", "onewire", "umqtt.robust", "umqtt.simple", "upysh"}}
	case "rp2":
		// ports/rp2/boards/manifest.py:1 freeze("$(PORT_DIR)/modules"); :3-6 onewire, ds18x20,
		// dht, neopixel. Networking comes from the Pico W boards' own manifests, not this one.
		return &modelledManifest{source: src,
			frozen:   stockModules(rp2StockModules...),
			requires: []string{"onewire", "ds18x20", "dht", "neopixel"}}
	case "stm32":
		// ports/stm32/boards/manifest.py:3-4 dht, onewire; nothing frozen from the port.
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
		return &modelledManifest{source: src, frozen: stockModules(esp32StockModules...)}
	case "rp2":
		return &modelledManifest{source: src, frozen: stockModules(rp2StockModules...)}
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

// Port partition tables shipped with MicroPython 1.29's esp32 port: the
// ports/esp32/partitions-*.csv files at 1c3c2011 (the same five since v1.26.0). Since
// commit 6201e77999 (2025-05-20, "Convert all boards to auto detect flash size") none
// has a vfs entry: ports/esp32/main.c:255-275 registers one at run time with
// esp_partition_register_external(), which cannot carry the encrypted flag. The older
// partitions-4MiB/8MiB/16MiB/32MiB(.csv, -ota.csv) files were removed by that commit; a
// board that still names one must supply it itself.
var esp32PortPartitionTables = map[string]string{
	"partitions-4MiBplus.csv":     "no vfs entry (registered at run time by main.c, cannot be encrypted)",
	"partitions-2MiB.csv":         "no vfs entry (registered at run time by main.c, cannot be encrypted)",
	"partitions-4MiB-ota.csv":     "no vfs entry (registered at run time by main.c, cannot be encrypted)",
	"partitions-4MiB-romfs.csv":   "no vfs entry (registered at run time by main.c, cannot be encrypted)",
	"partitions-8MiBplus-ota.csv": "no vfs entry (registered at run time by main.c, cannot be encrypted)",
}

// esp32DefaultPartitionTable is what sdkconfig.base selects when a board sets nothing:
// ports/esp32/boards/sdkconfig.base:106-107.
const esp32DefaultPartitionTable = "partitions-4MiBplus.csv"
