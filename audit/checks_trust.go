package audit

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
)

// Roots of trust and state: the checks that depend on the chip (secure boot, flash
// encryption, readout protection, OTP) and on where the guard keeps its state.

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
	default:
		// FIELDSEAL_STATE_BKPSRAM / FIELDSEAL_STATE_FLASH_ADDR are not read by the guard: on
		// stm32 and rp2 its slots leave the filesystem only when the board's frozen boot file
		// hands the adapter a block device over that memory (Port(slots=…)).
		c.Fix = "freeze a boot file that passes a block device over a dedicated flash sector or battery-backed SRAM to the adapter: `fieldseal.boot.main(port=Port(slots=dev))` (RawSlotStore, docs/HARDENING.md §9). The FIELDSEAL_STATE_* defines alone change nothing: the guard does not read them."
		return b.slotsPassed(c)
	}
}

// passesSlots matches a call that hands the adapter a slot device: Port(slots=...).
var passesSlots = regexp.MustCompile(`(?m)^[^#\n]*\bslots\s*=\s*[^=\s)]`)

// slotsPassed closes state-slots when the frozen boot file passes a slot device to the
// port adapter; without it the guard keeps its slots as files on the user filesystem.
func (b *board) slotsPassed(c Check) Check {
	it, st, ev := b.bootFile()
	if st != Closed {
		c.Status, c.Evidence = st, ev
		if st == Open {
			c.Evidence = ev + ": the guard keeps its state slots as files on the user filesystem"
		}
		return c
	}
	if it.src == "" {
		c.Status, c.Evidence = Open, it.where+": the stock "+it.name+" passes no slot device: the slots are files on the user filesystem"
		return c
	}
	data, err := os.ReadFile(it.src)
	if err != nil {
		c.Status, c.Evidence = Unknown, it.where+": "+err.Error()
		return c
	}
	if passesSlots.Match(data) {
		c.Status, c.Evidence = Closed, it.where+": "+it.name+" passes a slot device to the adapter (slots=)"
		return c
	}
	c.Status, c.Evidence = Open, it.where+": "+it.name+" passes no slot device to the adapter (no slots=): the guard keeps its state slots as files on the user filesystem"
	for _, n := range []string{"FIELDSEAL_STATE_BKPSRAM", "FIELDSEAL_STATE_FLASH_ADDR"} {
		if t, dev := b.isDef(n); t == triTrue {
			c.Evidence += "; " + dev + " is not read by the guard"
		}
	}
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
	// The port mounts "vfs", else "ffat" (TinyUF2's name): ports/esp32/modules/flashbdev.py.
	for _, name := range []string{"vfs", "ffat"} {
		for _, p := range b.parts {
			if p.name != name || p.typ != "data" {
				continue
			}
			if p.hasFlag("encrypted") {
				c.Status, c.Evidence = Closed, p.where+": "+name+" (the partition the port mounts) flagged encrypted"
			} else {
				c.Status, c.Evidence = Open, p.where+": "+name+" partition (the one the port mounts) without the encrypted flag"
			}
			return c
		}
	}
	c.Status, c.Evidence = Open, b.partsFile+": no vfs or ffat entry; the port registers a vfs one at run time, which cannot be encrypted"
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
