package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// ---- resolving settings ----

// num returns the effective integer value of a macro: the board's definition (build
// flags, then mpconfigboard.h), else the modelled port default, else undefined (0).
// ok=false means unknown; ev always says where the answer came from.
func (b *board) num(name string) (int64, string, bool) { return b.numD(name, 0) }

func (b *board) numD(name string, depth int) (int64, string, bool) {
	if depth > 16 {
		return 0, name + ": macro expansion too deep", false
	}
	if b.hs.broken != "" {
		return 0, b.hs.broken, false
	}
	if d, has := b.hs.defs[name]; has && !d.undef {
		if d.unknown != "" {
			return 0, d.unknown, false
		}
		ev := fmt.Sprintf("%s: %s %s", d.where, name, orEmpty(d.value))
		if d.value == "" {
			return 1, ev, true // #define X with no value: only meaningful via defined()
		}
		v, why, refs, ok := b.evalExpr(d.value, depth+1)
		ev = joinEv(ev, refs)
		if !ok {
			return 0, ev + " — " + why, false
		}
		return v, ev, true
	}
	if len(b.hs.opaque) > 0 {
		return 0, b.hs.opaque[0] + " (it may define " + name + ")", false
	}
	if pd, has := b.defaults[name]; has {
		ev := fmt.Sprintf("port default (MicroPython %s, %s): %s = %s", MicroPythonVersion, pd.source, name, pd.expr)
		v, why, refs, ok := b.evalExpr(pd.expr, depth+1)
		ev = joinEv(ev, refs)
		if !ok {
			return 0, ev + " — " + why, false
		}
		return v, ev, true
	}
	return 0, name + " not defined (port default: undefined, MicroPython " + MicroPythonVersion + ")", true
}

func orEmpty(s string) string {
	if s == "" {
		return "(defined, no value)"
	}
	return s
}

func joinEv(ev string, refs []string) string {
	if len(refs) == 0 {
		return ev
	}
	return ev + " [" + strings.Join(refs, "; ") + "]"
}

// evalExpr evaluates a macro body with identifiers resolved through num.
func (b *board) evalExpr(expr string, depth int) (int64, string, []string, bool) {
	var refs []string
	p := &exprParser{toks: tokenize(expr), lookup: func(name string) (int64, string, bool) {
		v, ev, ok := b.numD(name, depth)
		refs = append(refs, ev)
		if !ok {
			return 0, ev, false
		}
		return v, "", true
	}, defined: func(name string) (tri, string) { return b.isDef(name) }}
	v, why, ok := p.parse()
	return v, why, refs, ok
}

// isDef answers whether the board defines name (port defaults aside).
func (b *board) isDef(name string) (tri, string) {
	if b.hs.broken != "" {
		return triUnknown, b.hs.broken
	}
	if d, has := b.hs.defs[name]; has {
		if d.unknown != "" {
			return triUnknown, d.unknown
		}
		if d.undef {
			return triFalse, d.where + ": #undef " + name
		}
		return triTrue, fmt.Sprintf("%s: %s %s", d.where, name, orEmpty(d.value))
	}
	if len(b.hs.opaque) > 0 {
		return triUnknown, b.hs.opaque[0] + " (it may define " + name + ")"
	}
	return triFalse, name + " not defined (port default: undefined, MicroPython " + MicroPythonVersion + ")"
}

// allOff: closed when every macro is 0; open when one is not.
func (b *board) allOff(c Check, names ...string) Check {
	var unknown []string
	var evs []string
	for _, n := range names {
		v, ev, ok := b.num(n)
		switch {
		case !ok:
			unknown = append(unknown, ev)
		case v != 0:
			c.Status, c.Evidence = Open, ev
			return c
		default:
			evs = append(evs, ev)
		}
	}
	if len(unknown) > 0 {
		c.Status, c.Evidence = Unknown, strings.Join(dedupe(unknown), "; ")
		return c
	}
	c.Status, c.Evidence = Closed, strings.Join(evs, "; ")
	return c
}

// allOn: the feature exists only when every gate is on. Open when all are on, closed
// when one is known off.
func (b *board) allOn(names ...string) (Status, string) {
	var unknown, on []string
	for _, n := range names {
		v, ev, ok := b.num(n)
		switch {
		case !ok:
			unknown = append(unknown, ev)
		case v == 0:
			return Closed, ev
		default:
			on = append(on, ev)
		}
	}
	if len(unknown) > 0 {
		return Unknown, strings.Join(dedupe(unknown), "; ")
	}
	return Open, strings.Join(on, "; ")
}

func (b *board) gated(c Check, names ...string) Check {
	c.Status, c.Evidence = b.allOn(names...)
	return c
}

// sc returns an sdkconfig option, "n" when no fragment sets it.
func (b *board) scVal(name string) (string, string, bool) {
	if len(b.sc.problems) > 0 {
		return "", b.sc.problems[0], false
	}
	if v, ok := b.sc.vals[name]; ok {
		return v, b.sc.where[name] + ": " + name + "=" + v, true
	}
	return "n", name + " not set: ESP-IDF default off (MicroPython " + MicroPythonVersion + " port fragments leave it unset)", true
}

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
		if !esp32Chips[b.chip].usbSerial {
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
	add(b.allOff(Check{ID: "native-code", Title: "Native emitters / native .mpy loading",
		Attack: "a .mpy with native machine code runs arbitrary instructions with no validation (A7, D7).",
		Fix:    "set every MICROPY_EMIT_* for the port to (0) and #define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0) (reference §2.2, A7)."},
		append(emit, "MICROPY_PERSISTENT_CODE_LOAD_NATIVE")...))
	add(b.allOff(Check{ID: "mem-access", Title: "machine.mem*/uctypes raw memory access",
		Attack: "machine.mem32/uctypes rewrite backup registers, flash controllers and the guard's state from Python (A9).",
		Fix:    "#define MICROPY_PY_MACHINE_MEMX (0) and #define MICROPY_PY_UCTYPES (0) (reference §2.2)."},
		"MICROPY_PY_MACHINE_MEMX", "MICROPY_PY_UCTYPES"))
	add(b.webrepl())
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
		st, c.Evidence = Closed, ev+" (board overrides the reset-mode logic)"
	case triUnknown:
		st, c.Evidence = Unknown, ev
	default:
		v, ev2, ok := b.num("MICROPY_HW_HAS_SWITCH")
		switch {
		case !ok:
			st, c.Evidence = Unknown, ev2
		case v != 0:
			st, c.Evidence = Open, ev2
		default:
			st, c.Evidence = Closed, ev2
		}
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

func (b *board) bootloaderJump(usbGate []string) Check {
	c := Check{ID: "bootloader-jump", Title: "Host-triggered bootloader (DTR/RTS, 1200 baud)",
		Attack: "the host toggles DTR/RTS or opens the port at 1200 baud and the device jumps to its bootloader for reflashing (D20, A8).",
		Fix:    "#define MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER (0) and MICROPY_HW_USB_CDC_1200BPS_TOUCH (0), or build without USB CDC (reference §2.2)."}
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
		c.Fix = "#define MICROPY_BOARD_FROZEN_BOOT_FILE \"fieldseal_boot.py\" and freeze a fieldseal_boot.py that runs `import fieldseal.boot; fieldseal.boot.main()` (reference A2, §2.1)."
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
				c.Status, c.Evidence = Open, ev+"; but the manifest does not freeze "+name+" (the board would boot without the guard)"
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

func (b *board) stateSlots() Check {
	c := Check{ID: "state-slots", Title: "Guard state slots outside the user filesystem",
		Attack: "state kept on the user filesystem is erased by a factory reset, a forced reformat or a block-device write (A9, §2.8)."}
	switch b.port {
	case "esp32":
		c.Fix = "add an `fsstate, data, undefined, , 0x6000, encrypted` partition (or an `fsstate, data, nvs` one with CONFIG_NVS_ENCRYPTION=y) to the board's partition CSV and enable flash encryption; for NVS use CONFIG_NVS_ENCRYPTION=y (reference §2.6, §2.8)."
		if b.partsErr != "" {
			c.Status, c.Evidence = Unknown, b.partsErr
			return c
		}
		if b.partsNote != "" {
			c.Status, c.Evidence = Open, b.partsFile+": has no fsstate partition"
			return c
		}
		for _, p := range b.parts {
			if !strings.HasPrefix(p.name, "fsstate") {
				continue
			}
			// NVS is protected by NVS encryption, not the partition flag (ESP-IDF
			// does not flash-encrypt NVS); other data partitions need the flag.
			if p.subtype != "nvs" && p.hasFlag("encrypted") {
				c.Status, c.Evidence = Closed, p.where+": partition "+p.name+" ("+p.typ+"/"+p.subtype+") flagged encrypted"
				return c
			}
			if p.subtype == "nvs" {
				v, ev, ok := b.scVal("CONFIG_NVS_ENCRYPTION")
				if !ok {
					c.Status, c.Evidence = Unknown, p.where+"; "+ev
					return c
				}
				if v == "y" {
					c.Status, c.Evidence = Closed, p.where+": NVS partition "+p.name+"; "+ev
					return c
				}
			}
			c.Status, c.Evidence = Open, p.where+": partition "+p.name+" is not encrypted: esptool or a SOIC clip reads and rewrites it"
			return c
		}
		c.Status, c.Evidence = Open, b.partsFile+": no partition named fsstate*"
		return c
	case "stm32":
		c.Fix = "#define FIELDSEAL_STATE_BKPSRAM (1) (battery-backed, erased by RTC tamper) or FIELDSEAL_STATE_FLASH_ADDR/FIELDSEAL_STATE_FLASH_SIZE for a dedicated internal-flash sector outside the filesystem (docs/HARDENING.md)."
		return b.stateDefine(c, "FIELDSEAL_STATE_BKPSRAM", "FIELDSEAL_STATE_FLASH_ADDR")
	default:
		c.Fix = "#define FIELDSEAL_STATE_FLASH_ADDR/FIELDSEAL_STATE_FLASH_SIZE for a dedicated flash sector outside the filesystem, and on RP2350 FIELDSEAL_STATE_OTP (1) for counters (docs/HARDENING.md); external flash can still be snapshot-restored (D13)."
		names := []string{"FIELDSEAL_STATE_FLASH_ADDR"}
		if strings.HasPrefix(b.chip, "rp2350") {
			names = append(names, "FIELDSEAL_STATE_OTP")
		}
		return b.stateDefine(c, names...)
	}
}

func (b *board) stateDefine(c Check, names ...string) Check {
	var unknown []string
	for _, n := range names {
		t, ev := b.isDef(n)
		switch t {
		case triUnknown:
			unknown = append(unknown, ev)
		case triTrue:
			v, ev2, ok := b.num(n)
			if !ok {
				unknown = append(unknown, ev2)
				continue
			}
			if v != 0 || n == "FIELDSEAL_STATE_FLASH_ADDR" {
				if n == "FIELDSEAL_STATE_FLASH_ADDR" {
					if st, sev := b.isDef("FIELDSEAL_STATE_FLASH_SIZE"); st != triTrue {
						unknown = append(unknown, ev2+" but "+sev)
						continue
					}
				}
				c.Status, c.Evidence = Closed, ev2
				return c
			}
		}
	}
	if len(unknown) > 0 {
		c.Status, c.Evidence = Unknown, strings.Join(unknown, "; ")
		return c
	}
	c.Status, c.Evidence = Open, "none of "+strings.Join(names, ", ")+" is defined: the guard would keep its state on the user filesystem"
	return c
}

func (b *board) espSecureBoot() Check {
	c := Check{ID: "secure-boot", Title: "ESP32 Secure Boot v2",
		Attack: "without secure boot, esptool flashes a lookalike firmware without the guard and keeps the data (D20, A8).",
		Fix:    "CONFIG_SECURE_BOOT=y and CONFIG_SECURE_BOOT_V2_ENABLED=y in sdkconfig.board, signing key kept offline (reference §2.6)."}
	v, ev, ok := b.scVal("CONFIG_SECURE_BOOT_V2_ENABLED")
	c.Status, c.Evidence = yesStatus(v, ok), ev
	return c
}

func yesStatus(v string, ok bool) Status {
	switch {
	case !ok:
		return Unknown
	case v == "y":
		return Closed
	}
	return Open
}

func (b *board) espFlashEncryption() Check {
	c := Check{ID: "flash-encryption", Title: "ESP32 flash encryption (release mode)",
		Attack: "a SOIC clip or ROM download mode reads and rewrites the external flash: firmware, keys, NVS and state (D20, A9).",
		Fix:    "CONFIG_SECURE_FLASH_ENC_ENABLED=y and CONFIG_SECURE_FLASH_ENCRYPTION_MODE_RELEASE=y (development mode can be turned off again) (reference §2.6)."}
	en, ev, ok := b.scVal("CONFIG_SECURE_FLASH_ENC_ENABLED")
	if !ok || en != "y" {
		c.Status, c.Evidence = yesStatus(en, ok), ev
		return c
	}
	rel, ev2, ok := b.scVal("CONFIG_SECURE_FLASH_ENCRYPTION_MODE_RELEASE")
	c.Evidence = ev + "; " + ev2
	c.Status = yesStatus(rel, ok)
	if c.Status == Open {
		c.Evidence += " (development mode: encryption can be disabled and plaintext re-flashed)"
	}
	return c
}

func (b *board) espDownloadMode() Check {
	c := Check{ID: "download-mode", Title: "ESP32 ROM download mode disabled or secure",
		Attack: "GPIO0 at reset enters ROM download mode, where esptool reads and writes the whole flash (D20, A8).",
		Fix:    "CONFIG_SECURE_DISABLE_ROM_DL_MODE=y (ESP32 needs rev ≥ 3) or CONFIG_SECURE_ENABLE_SECURE_ROM_DL_MODE=y (reference §2.6)."}
	var evs []string
	for _, n := range []string{"CONFIG_SECURE_DISABLE_ROM_DL_MODE", "CONFIG_SECURE_ENABLE_SECURE_ROM_DL_MODE"} {
		v, ev, ok := b.scVal(n)
		if !ok {
			c.Status, c.Evidence = Unknown, ev
			return c
		}
		if v == "y" {
			c.Status, c.Evidence = Closed, ev
			return c
		}
		evs = append(evs, ev)
	}
	c.Status, c.Evidence = Open, strings.Join(evs, "; ")
	return c
}

func (b *board) espVfsEncrypted() Check {
	c := Check{ID: "vfs-encrypted", Title: "vfs partition flagged encrypted",
		Attack: "data partitions are encrypted only when flagged; a plain vfs partition is read and rewritten off-chip (A9, §2.6).",
		Fix:    "use a custom partition CSV with an explicit `vfs, data, fat, …, encrypted` entry (reference §2.6 gotcha)."}
	if b.partsErr != "" {
		c.Status, c.Evidence = Unknown, b.partsErr
		return c
	}
	if b.partsNote != "" {
		c.Status, c.Evidence = Open, b.partsFile+": "+b.partsNote
		return c
	}
	for _, p := range b.parts {
		if p.name == "vfs" {
			if p.hasFlag("encrypted") {
				c.Status, c.Evidence = Closed, p.where+": vfs flagged encrypted"
			} else {
				c.Status, c.Evidence = Open, p.where+": vfs partition without the encrypted flag"
			}
			return c
		}
	}
	c.Status, c.Evidence = Open, b.partsFile+": no vfs entry; the port registers one at run time, which cannot be encrypted"
	return c
}

func (b *board) rpSecureBoot() Check {
	c := Check{ID: "secure-boot", Title: "RP2 secure boot (signed images, OTP)",
		Attack: "BOOTSEL's ROM loader reads and writes all external flash, so a lookalike firmware without the guard replaces ours (D20, A8)."}
	switch {
	case b.chip == "rp2040":
		c.Status = Open
		c.Evidence = "RP2040 (" + b.chipWhere + ") has no secure boot and BOOTSEL cannot be disabled (reference §2.6)"
		c.Fix = "use RP2350 with OTP secure boot or an external secure element (e.g. ATECC608) with server-side attestation."
	case strings.HasPrefix(b.chip, "rp2350"):
		c.Fix = "sign the image (picotool seal --sign) and keep the OTP settings in the board's otp.json with secure_boot_enable, boot keys and BOOTSEL/debug disabled; load with picotool otp load (reference §2.6)."
		switch {
		case b.otpErr != "":
			c.Status, c.Evidence = Unknown, b.otpErr
		case b.otp == nil:
			c.Status, c.Evidence = Open, "RP2350 ("+b.chipWhere+"): no otp.json in the board directory, so nothing shows secure boot is provisioned"
		default:
			if v, ok := findJSONKey(b.otp, "secure_boot_enable"); ok && truthy(v) {
				c.Status, c.Evidence = Closed, "otp.json: secure_boot_enable set (RP2350, "+b.chipWhere+")"
			} else {
				c.Status, c.Evidence = Open, "otp.json does not set secure_boot_enable"
			}
		}
	default:
		c.Status, c.Evidence = Unknown, "chip unknown: "+b.chipWhere
		c.Fix = "set PICO_BOARD/PICO_PLATFORM in mpconfigboard.cmake or MICROPY_HW_MCU_NAME; RP2040 cannot be secured, RP2350 needs OTP secure boot."
	}
	return c
}

func parseJSONObject(text string) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, err
	}
	return v, nil
}

// findJSONKey looks for key (case-insensitive) anywhere in a JSON document.
func findJSONKey(v any, key string) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if strings.EqualFold(k, key) {
				return x, true
			}
		}
		for _, k := range sortedJSONKeys(t) {
			if r, ok := findJSONKey(t[k], key); ok {
				return r, true
			}
		}
	case []any:
		for _, x := range t {
			if r, ok := findJSONKey(x, key); ok {
				return r, true
			}
		}
	}
	return nil, false
}

func sortedJSONKeys(m map[string]any) []string {
	s := make(map[string]string, len(m))
	for k := range m {
		s[k] = k
	}
	return sortedKeys(s)
}

func truthy(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case float64:
		return t != 0
	case string:
		s := strings.ToLower(t)
		return s == "1" || s == "true" || s == "yes" || s == "y"
	}
	return false
}

// stmReadoutProtection reads the RDP level the board declares for production. Option
// bytes are set with STM32CubeProgrammer, outside the build, so the board states the
// level it is made for (FIELDSEAL_STM32_RDP_LEVEL); the guard can compare it with the
// option bytes at boot and report a mismatch.
func (b *board) stmReadoutProtection() Check {
	c := Check{ID: "readout-protection", Title: "STM32 readout protection (RDP) declared",
		Attack: "BOOT0 or SWD reaches the ST ROM bootloader/debugger, which reads and rewrites flash including the frozen guard (D20, A8).",
		Fix:    "#define FIELDSEAL_STM32_RDP_LEVEL (2) and set RDP level 2 in production (or level 1 plus WRP plus mboot with MBOOT_ENABLE_PACKING = 1) (reference §2.3)."}
	t, ev := b.isDef("FIELDSEAL_STM32_RDP_LEVEL")
	switch t {
	case triUnknown:
		c.Status, c.Evidence = Unknown, ev
		return c
	case triFalse:
		c.Status, c.Evidence = Open, ev+": nothing in the board shows readout protection is part of production"
		return c
	}
	v, ev, ok := b.num("FIELDSEAL_STM32_RDP_LEVEL")
	switch {
	case !ok:
		c.Status, c.Evidence = Unknown, ev
	case v == 2:
		c.Status, c.Evidence = Closed, ev
	case v == 1:
		mb, _ := b.bv.get("USE_MBOOT")
		pk, _ := b.bv.get("MBOOT_ENABLE_PACKING")
		if strings.TrimSpace(mb) == "1" && strings.TrimSpace(pk) == "1" {
			c.Status, c.Evidence = Closed, ev+"; mpconfigboard.mk: USE_MBOOT=1, MBOOT_ENABLE_PACKING=1 (signed packs only)"
		} else {
			c.Status, c.Evidence = Open, ev+": RDP1 without mboot signed packs (RDP1 can be regressed and has known weaknesses, A14)"
		}
	default:
		c.Status, c.Evidence = Open, ev+": RDP level 0 leaves flash readable and writable"
	}
	return c
}
