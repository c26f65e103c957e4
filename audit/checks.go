package audit

import (
	"os"
	"regexp"
	"strconv"
	"strings"
)

// ---- the checks ----

var (
	importGuard = regexp.MustCompile(`(?m)^[ \t]*(import[ \t]+fieldseal\.boot\b|from[ \t]+fieldseal\.boot[ \t]+import\b|from[ \t]+fieldseal[ \t]+import[ \t]+boot\b)`)
	callMain    = regexp.MustCompile(`(?m)^[^#\n]*\bmain[ \t]*\(`)
)

// callsGuard reports whether a frozen boot file runs fieldseal.boot.main().
func callsGuard(it frozenItem) (Status, string) {
	if it.stock {
		return Open, it.where + ": the stock MicroPython " + it.name + " is frozen, which does not run the guard"
	}
	if it.src == "" {
		return Unknown, it.where + ": source of " + it.name + " cannot be located"
	}
	data, err := os.ReadFile(it.src)
	if err != nil {
		return Unknown, it.where + ": " + it.name + " cannot be read to confirm it runs the guard"
	}
	if importGuard.Match(data) && callMain.Match(data) {
		return Closed, it.where + ": frozen " + it.name + " imports fieldseal.boot and calls main()"
	}
	return Open, it.where + ": frozen " + it.name + " does not import fieldseal.boot and call main()"
}

func (b *board) manifestUnresolved() string {
	if len(b.ms.unresolved) == 0 {
		return ""
	}
	return b.ms.unresolved[0]
}

func (b *board) checks() []Check {
	var out []Check
	add := func(c Check) { out = append(out, c) }

	// D17: REPL transports and what the REPL can do.
	usbGate := []string{"MICROPY_HW_ENABLE_USBDEV", "MICROPY_HW_USB_CDC"}
	if b.port == "stm32" {
		usbGate = []string{"MICROPY_HW_ENABLE_USB"}
	}
	add(b.gated(Check{ID: "repl-usb", Title: "REPL on USB CDC/VCP",
		Attack: "Ctrl-C then raw REPL over USB (mpremote) gives full Python and skips main.py (D17, A1).",
		Fix:    fixUSB(b.port)}, usbGate...))
	if b.port == "stm32" {
		c := Check{ID: "repl-uart", Title: "REPL on UART",
			Attack: "a UART REPL gives Ctrl-C/raw REPL to anyone with three wires on the header (D17, A1).",
			Fix:    "do not define MICROPY_HW_UART_REPL in mpconfigboard.h (reference §2.2)."}
		t, ev := b.isDef("MICROPY_HW_UART_REPL")
		c.Status, c.Evidence = map[tri]Status{triTrue: Open, triFalse: Closed, triUnknown: Unknown}[t], ev
		add(c)
	} else {
		add(b.allOff(Check{ID: "repl-uart", Title: "REPL on UART",
			Attack: "a UART REPL gives Ctrl-C/raw REPL to anyone with three wires on the header (D17, A1).",
			Fix:    "#define MICROPY_HW_ENABLE_UART_REPL (0) in mpconfigboard.h (reference §2.2)."}, "MICROPY_HW_ENABLE_UART_REPL"))
	}
	if b.port == "esp32" {
		c := Check{ID: "repl-usb-jtag", Title: "REPL on USB-Serial/JTAG",
			Attack: "the USB-Serial/JTAG peripheral carries the REPL and, until DIS_USB_JTAG is burnt, JTAG itself (D17, A1, A8).",
			Fix:    "#define MICROPY_HW_ESP_USB_SERIAL_JTAG (0) and burn DIS_USB_JTAG (flash encryption release mode does) (reference §2.2, §2.6)."}
		if b.chip == "" {
			c.Status, c.Evidence = Unknown, "chip unknown: "+b.chipWhere
		} else if !esp32Chips[b.chip].usbSerial {
			c.Status, c.Evidence = Closed, b.chip+" has no USB-Serial/JTAG peripheral (chip: "+b.chipWhere+")"
		} else {
			c = b.allOff(c, "MICROPY_HW_ESP_USB_SERIAL_JTAG")
		}
		add(c)
	}
	add(b.allOff(Check{ID: "compiler", Title: "Python compiler in firmware (raw REPL exec)",
		Attack: "with the compiler built in, any REPL, WebREPL or unfrozen boot.py runs attacker source code (D17, A1, §2.2).",
		Fix:    "#define MICROPY_ENABLE_COMPILER (0); freeze boot.py/main.py and the app as .mpy (reference §2.2, micropython#8990)."},
		"MICROPY_ENABLE_COMPILER"))

	// D18: safe boot, SD boot, the guard as the frozen boot file.
	switch b.port {
	case "stm32":
		add(b.safeBootSTM32())
		add(b.gated(Check{ID: "sd-boot", Title: "Boot from SD card",
			Attack: "a swapped SD card becomes the cwd and first on sys.path, so its boot.py/main.py/hashlib.py run (D18, A4, A5).",
			Fix:    "#define MICROPY_HW_SDCARD_MOUNT_AT_BOOT (0); mount the card read-only from frozen code (reference A4)."},
			"MICROPY_HW_ENABLE_SDCARD", "MICROPY_HW_SDCARD_MOUNT_AT_BOOT"))
	default:
		add(Check{ID: "safe-boot", Title: "Safe-boot / factory-reset button", Status: Closed,
			Evidence: b.port + " has no safe-boot button (reference §3; BOOTSEL/GPIO0 are ROM bootloaders, see the secure-boot checks)",
			Attack:   "holding a button at reset skips boot.py/main.py or erases the filesystem (D18, A3).",
			Fix:      "nothing to do on this port."})
		add(Check{ID: "sd-boot", Title: "Boot from SD card", Status: Closed,
			Evidence: b.port + " never boots from an SD card (reference §3)",
			Attack:   "a swapped SD card would supply boot.py/main.py (D18, A4).",
			Fix:      "nothing to do; keep SD mounts in frozen code, read-only."})
	}
	add(b.guardFrozen())
	add(b.guardBoot())
	add(b.bootPath())
	add(b.manifestFrozen())

	// D19: USB mass storage.
	mscGate := append(append([]string{}, usbGate[:1]...), "MICROPY_HW_USB_MSC")
	add(b.gated(Check{ID: "usb-msc", Title: "USB mass storage of the live filesystem",
		Attack: "the host gets raw block read/write of the filesystem while the device runs (D19, A10, A6).",
		Fix:    fixMSC(b.port)}, mscGate...))

	// D20: bootloader jumps and roots of trust.
	add(b.bootloaderJump(usbGate))
	switch b.port {
	case "esp32":
		add(b.espSecureBoot())
		add(b.espFlashEncryption())
		add(b.espDownloadMode())
		add(b.espVfsEncrypted())
	case "rp2":
		add(b.rpSecureBoot())
	case "stm32":
		add(b.stmReadoutProtection())
	}

	// Attacker primitives once any Python runs.
	emit := map[string][]string{
		"stm32": {"MICROPY_EMIT_THUMB", "MICROPY_EMIT_INLINE_THUMB"},
		"esp32": {"MICROPY_EMIT_XTENSAWIN", "MICROPY_EMIT_RV32"},
		"rp2":   {"MICROPY_EMIT_THUMB", "MICROPY_EMIT_INLINE_THUMB", "MICROPY_EMIT_RV32"},
	}[b.port]
	add(b.nativeCode(Check{ID: "native-code", Title: "Native emitters / native .mpy loading",
		Attack: "a .mpy with native machine code runs arbitrary instructions with no validation (A7, D7).",
		Fix:    fixNative(b.port)}, emit))
	add(b.memAccess())
	add(b.webrepl())
	add(b.romfsWritable())
	add(b.romfsSealed())
	add(b.stateSlots())
	return out
}

func fixUSB(port string) string {
	switch port {
	case "stm32":
		return "#define MICROPY_HW_ENABLE_USB (0), or call pyb.usb_mode(None) first thing in the frozen boot file (weaker) (reference §2.2, A10)."
	case "esp32":
		return "#define MICROPY_HW_USB_CDC (0) (or MICROPY_HW_ENABLE_USBDEV (0)) (reference §2.2)."
	}
	return "#define MICROPY_HW_USB_CDC (0) or MICROPY_HW_ENABLE_USBDEV (0) (reference §2.2)."
}

// nativeCode: native machine code reaches the device two ways. A .mpy carrying it
// loads only with MICROPY_PERSISTENT_CODE_LOAD_NATIVE; source code becomes machine code
// (@micropython.native/viper/asm_*) only through the compiler and an emitter. The
// esp32 and rp2 port headers #define their emitters without #ifndef (defaults.go), so
// there the compiler is what a board can switch off.
func (b *board) nativeCode(c Check, emit []string) Check {
	load := b.allOff(c, "MICROPY_PERSISTENT_CODE_LOAD_NATIVE")
	if load.Status != Closed {
		return load
	}
	comp := b.allOff(c, "MICROPY_ENABLE_COMPILER")
	if comp.Status == Closed {
		c.Status, c.Evidence = Closed, load.Evidence+"; "+comp.Evidence+" (no compiler, so the native emitters are unreachable)"
		return c
	}
	em := b.allOff(c, emit...)
	switch {
	case em.Status == Closed:
		c.Status, c.Evidence = Closed, load.Evidence+"; "+em.Evidence
	case em.Status == Open && comp.Status == Open:
		c.Status, c.Evidence = Open, comp.Evidence+"; "+em.Evidence
	default:
		c.Status, c.Evidence = Unknown, strings.Join(dedupe(nonClosedEv(comp, em)), "; ")
	}
	return c
}

func nonClosedEv(cs ...Check) []string {
	var out []string
	for _, c := range cs {
		if c.Status != Closed {
			out = append(out, c.Evidence)
		}
	}
	return out
}

func fixNative(port string) string {
	if port == "stm32" {
		return "#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0), and MICROPY_EMIT_THUMB (0) and MICROPY_EMIT_INLINE_THUMB (0) (or MICROPY_ENABLE_COMPILER (0)) (reference §2.2, A7)."
	}
	return "#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0) and MICROPY_ENABLE_COMPILER (0): the " + port +
		" port #defines its native emitters without #ifndef, so a board cannot turn them off (docs/HARDENING.md §2; reference §2.2, A7)."
}

func fixBootloaderJump(port string) string {
	if port == "esp32" {
		return "#define MICROPY_HW_ENABLE_USBDEV (0) (the esp32 port #defines MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER (1) without #ifndef whenever USB is on, so a board's (0) does not help) and leave MICROPY_HW_USB_CDC_1200BPS_TOUCH undefined (reference §2.2)."
	}
	return "#define MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER (0) and MICROPY_HW_USB_CDC_1200BPS_TOUCH (0), or build without USB CDC (reference §2.2)."
}

func fixMSC(port string) string {
	if port == "stm32" {
		return "#define MICROPY_HW_USB_MSC (0) (or MICROPY_HW_ENABLE_USB (0)); pyb.usb_mode(None) in frozen code is weaker (reference A10)."
	}
	return "#define MICROPY_HW_USB_MSC (0) (reference A10)."
}

func (b *board) safeBootSTM32() Check {
	c := Check{ID: "safe-boot", Title: "Safe-boot / factory-reset button",
		Attack: "holding USR at reset skips boot.py/main.py (safe mode) or wipes /flash, including any state kept there (D18, A3).",
		Fix:    "#define MICROPY_HW_HAS_SWITCH (0), or override MICROPY_BOARD_BEFORE_SOFT_RESET_LOOP; with mboot also define MBOOT_BOARD_GET_RESET_MODE (reference A3)."}
	mboot := false
	if v, ok := b.bv.get("USE_MBOOT"); ok && strings.TrimSpace(v) == "1" {
		mboot = true
	}
	t, ev := b.isDef("MICROPY_BOARD_BEFORE_SOFT_RESET_LOOP")
	var st Status
	switch t {
	case triTrue:
		if strings.TrimSpace(b.hs.defs["MICROPY_BOARD_BEFORE_SOFT_RESET_LOOP"].value) == "boardctrl_before_soft_reset_loop" {
			// the port's own hook, which reads the button: not an override
			v, ev2, ok := b.num("MICROPY_HW_HAS_SWITCH")
			st, c.Evidence = switchStatus(v, ok), ev+"; "+ev2
			break
		}
		st, c.Evidence = Closed, ev+" (board replaces the reset-mode hook; it must not read the button)"
	case triUnknown:
		st, c.Evidence = Unknown, ev
	default:
		v, ev2, ok := b.num("MICROPY_HW_HAS_SWITCH")
		st, c.Evidence = switchStatus(v, ok), ev2
	}
	if st == Closed && mboot {
		mt, mev := b.isDef("MBOOT_BOARD_GET_RESET_MODE")
		switch mt {
		case triFalse:
			st, c.Evidence = Open, b.bv.where["USE_MBOOT"]+": USE_MBOOT=1 but "+mev+": mboot keeps the button boot modes and DFU"
		case triUnknown:
			st, c.Evidence = Unknown, mev
		default:
			c.Evidence += "; " + mev
		}
	}
	c.Status = st
	return c
}

func switchStatus(v int64, ok bool) Status {
	switch {
	case !ok:
		return Unknown
	case v != 0:
		return Open
	}
	return Closed
}

func (b *board) bootloaderJump(usbGate []string) Check {
	c := Check{ID: "bootloader-jump", Title: "Host-triggered bootloader (DTR/RTS, 1200 baud)",
		Attack: "the host toggles DTR/RTS or opens the port at 1200 baud and the device jumps to its bootloader for reflashing (D20, A8).",
		Fix:    fixBootloaderJump(b.port)}
	var unknown, closed []string
	for _, jump := range []string{"MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER", "MICROPY_HW_USB_CDC_1200BPS_TOUCH"} {
		st, ev := b.allOn(append(append([]string{}, usbGate...), jump)...)
		switch st {
		case Open:
			c.Status, c.Evidence = Open, ev
			return c
		case Unknown:
			unknown = append(unknown, ev)
		default:
			closed = append(closed, ev)
		}
	}
	if len(unknown) > 0 {
		c.Status, c.Evidence = Unknown, strings.Join(dedupe(unknown), "; ")
		return c
	}
	c.Status, c.Evidence = Closed, strings.Join(dedupe(closed), "; ")
	return c
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func (b *board) guardFrozen() Check {
	c := Check{ID: "guard-frozen", Title: "fieldseal guard package frozen into firmware",
		Attack: "a guard that lives on the filesystem can be edited, shadowed or deleted, and is skipped when boot.py fails (D18, A2, A5).",
		Fix:    "add package(\"fieldseal\", base_path=\"<repo>/device/micropython\") to the board manifest (docs/HARDENING.md)."}
	if w, ok := b.ms.packages["fieldseal"]; ok {
		c.Status, c.Evidence = Closed, w+": package(\"fieldseal\")"
		return c
	}
	for _, it := range b.ms.frozen {
		if strings.HasPrefix(it.name, "fieldseal/") {
			c.Status, c.Evidence = Closed, it.where+": freezes "+it.name
			return c
		}
	}
	if u := b.manifestUnresolved(); u != "" {
		c.Status, c.Evidence = Unknown, "the guard is not frozen by anything the audit could read; "+u
		return c
	}
	c.Status, c.Evidence = Open, "no package(\"fieldseal\") or freeze of fieldseal/ in "+b.manifestNote
	return c
}

func (b *board) manifestFrozen() Check {
	c := Check{ID: "manifest-frozen", Title: "_fieldseal_manifest.py frozen into firmware",
		Attack: "hashes and keys kept on the filesystem or in plain flash are rewritten along with the files they protect (A9, §2.1).",
		Fix:    "add module(\"_fieldseal_manifest.py\", base_path=\"<DIST>\") with the file emitted by `fieldseal build` (docs/HARDENING.md)."}
	if its := b.ms.find("_fieldseal_manifest.py"); len(its) > 0 {
		c.Status, c.Evidence = Closed, its[0].where+": freezes "+its[0].name
		return c
	}
	if u := b.manifestUnresolved(); u != "" {
		c.Status, c.Evidence = Unknown, "_fieldseal_manifest.py is not frozen by anything the audit could read; "+u
		return c
	}
	c.Status, c.Evidence = Open, "_fieldseal_manifest.py is not frozen ("+b.manifestNote+")"
	return c
}

func (b *board) guardBoot() Check {
	c := Check{ID: "guard-boot", Title: "Guard runs as the frozen boot file",
		Attack: "if the guard is not the first, uninterruptible code, Ctrl-C or a failing boot.py reaches the REPL before it runs (D18, A1, A2)."}
	if b.port == "stm32" {
		c.Fix = "#define MICROPY_BOARD_FROZEN_BOOT_FILE \"fsboot.py\" and freeze an fsboot.py that runs `import sys; sys.path[:] = [\".frozen\"]` first, then `import fieldseal.boot; fieldseal.boot.main()` (a fieldseal_boot.py would collide with fieldseal/boot.py's frozen C name; reference A2, §2.1, HARDENING.md §8)."
		t, ev := b.isDef("MICROPY_BOARD_FROZEN_BOOT_FILE")
		switch t {
		case triUnknown:
			c.Status, c.Evidence = Unknown, ev
			return c
		case triFalse:
			c.Status, c.Evidence = Open, ev+": boot.py/main.py run first, interruptibly"
			return c
		}
		raw := strings.TrimSpace(b.hs.defs["MICROPY_BOARD_FROZEN_BOOT_FILE"].value)
		raw = strings.TrimSuffix(strings.TrimPrefix(raw, "("), ")")
		name, err := strconv.Unquote(strings.TrimSpace(raw))
		if err != nil {
			c.Status, c.Evidence = Unknown, ev+": not a string literal the audit can read"
			return c
		}
		its := b.ms.find(name)
		if len(its) == 0 {
			if u := b.manifestUnresolved(); u != "" {
				c.Status, c.Evidence = Unknown, ev+"; "+name+" not found among frozen modules the audit could read; "+u
			} else {
				c.Status, c.Evidence = Open, ev+"; but "+b.manifestNote+" does not freeze "+name+" (the board would boot without the guard)"
			}
			return c
		}
		st, gev := callsGuard(its[len(its)-1])
		c.Status, c.Evidence = st, ev+"; "+gev
		return c
	}
	c.Fix = "freeze your own _boot.py that runs `import fieldseal.boot; fieldseal.boot.main()` instead of the port's stock one, i.e. do not include $(PORT_DIR)/boards/manifest.py or freeze $(PORT_DIR)/modules (reference A2, §2.1)."
	its := b.ms.find("_boot.py")
	if len(its) == 0 {
		if u := b.manifestUnresolved(); u != "" {
			c.Status, c.Evidence = Unknown, "no frozen _boot.py found in what the audit could read; "+u
		} else {
			c.Status, c.Evidence = Open, "no frozen _boot.py ("+b.manifestNote+")"
		}
		return c
	}
	var evs []string
	st := Closed
	for _, it := range its {
		s, ev := callsGuard(it)
		evs = append(evs, ev)
		if s == Open || (s == Unknown && st == Closed) {
			st = s
		}
	}
	if len(its) > 1 && st == Closed {
		st = Unknown
		evs = append(evs, "more than one _boot.py is frozen; which one wins depends on the build")
	}
	c.Status, c.Evidence = st, strings.Join(evs, "; ")
	return c
}

func (b *board) webrepl() Check {
	c := Check{ID: "webrepl-mip", Title: "WebREPL / mip frozen",
		Attack: "WebREPL is a network REPL with a password read through sys.path, over plain WebSocket; mip installs code from the network (D17, A11).",
		Fix:    "remove require(\"webrepl\"), require(\"mip\") and require(\"bundle-networking\") (and the port manifest that pulls them in) from the board manifest (reference A11)."}
	for _, name := range []string{"webrepl", "webrepl_setup", "bundle-networking", "mip"} {
		if w, ok := b.ms.requires[name]; ok {
			c.Status, c.Evidence = Open, w+": require(\""+name+"\")"
			return c
		}
	}
	for _, it := range b.ms.frozen {
		if it.name == "webrepl.py" || it.name == "mip/__init__.py" {
			c.Status, c.Evidence = Open, it.where+": freezes "+it.name
			return c
		}
	}
	if u := b.manifestUnresolved(); u != "" {
		c.Status, c.Evidence = Unknown, "not required by anything the audit could read; "+u
		return c
	}
	c.Status, c.Evidence = Closed, "no webrepl, mip or bundle-networking in "+strings.Join(b.ms.files, ", ")
	return c
}

// memAccess: raw memory access from Python. On stm32 the stm module exposes the same
// objects (stm.mem8/16/32 are machine_mem8/16/32, ports/stm32/modstm.c:44-46), so it is
// a gate too — and with MEMX off but stm on the firmware does not link.
func (b *board) memAccess() Check {
	c := Check{ID: "mem-access", Title: "machine.mem*/stm.mem*/uctypes raw memory access",
		Attack: "machine.mem32, stm.mem32 or uctypes rewrite backup registers, flash controllers and the guard's state from Python (A9).",
		Fix:    "#define MICROPY_PY_MACHINE_MEMX (0) and #define MICROPY_PY_UCTYPES (0) (reference §2.2)."}
	if b.port != "stm32" {
		return b.allOff(c, "MICROPY_PY_MACHINE_MEMX", "MICROPY_PY_UCTYPES")
	}
	c.Fix = "#define MICROPY_PY_MACHINE_MEMX (0), MICROPY_PY_STM (0) and MICROPY_PY_UCTYPES (0) (reference §2.2). " +
		"fieldseal's stm32 adapter reads the RTC backup registers through stm.mem32, so a board running it keeps this open and relies on no Python reaching the device (repl-*, compiler)."
	c = b.allOff(c, "MICROPY_PY_MACHINE_MEMX", "MICROPY_PY_STM", "MICROPY_PY_UCTYPES")
	memx, _, ok1 := b.num("MICROPY_PY_MACHINE_MEMX")
	stm, ev, ok2 := b.num("MICROPY_PY_STM")
	if ok1 && ok2 && memx == 0 && stm != 0 {
		c.Status = Open
		c.Evidence = ev + ": stm.mem8/16/32 give raw memory access, and with MICROPY_PY_MACHINE_MEMX (0) this firmware does not link (ports/stm32/modstm.c:44-46 use machine_mem8/16/32_obj)"
	}
	return c
}
