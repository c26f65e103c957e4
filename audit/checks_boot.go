package audit

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// The boot path (D23) and ROMFS: what the first frozen code does with sys.path, and
// code that reaches the device outside the seal.

// unshadowable are modules the boot file may import before trimming sys.path: built-in
// modules that are not "extensible" (py/builtinimport.c), so no file on sys.path can
// replace them. os, time, machine, hashlib... are extensible and are not in this list.
var unshadowable = map[string]bool{"sys": true, "usys": true, "micropython": true, "gc": true, "builtins": true}

var (
	importStmt = regexp.MustCompile(`^(?:import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)|from\s+([\w.]+)\s+import\b)`)
	trimSlice  = regexp.MustCompile(`^(?:u?sys\.)?path\s*\[\s*:\s*\]\s*=\s*[\[(](.*)[\])]\s*$`)
	trimClear  = regexp.MustCompile(`^(?:u?sys\.)?path\.clear\(\s*\)\s*$`)
	pathAppend = regexp.MustCompile(`^(?:u?sys\.)?path\.append\(\s*(.*?)\s*\)\s*$`)
)

// bootFile returns the frozen boot file the port runs first, or a check result when
// it cannot be found.
func (b *board) bootFile() (frozenItem, Status, string) {
	name := "_boot.py"
	prefix := ""
	if b.port == "stm32" {
		t, ev := b.isDef("MICROPY_BOARD_FROZEN_BOOT_FILE")
		switch t {
		case triUnknown:
			return frozenItem{}, Unknown, ev
		case triFalse:
			return frozenItem{}, Open, ev + ": no frozen boot file; boot.py from the filesystem runs first"
		}
		raw := strings.TrimSpace(b.hs.defs["MICROPY_BOARD_FROZEN_BOOT_FILE"].value)
		raw = strings.TrimSuffix(strings.TrimPrefix(raw, "("), ")")
		n, err := strconv.Unquote(strings.TrimSpace(raw))
		if err != nil {
			return frozenItem{}, Unknown, ev + ": not a string literal the audit can read"
		}
		name, prefix = n, ev+"; "
	}
	its := b.ms.find(name)
	if len(its) == 0 {
		if u := b.manifestUnresolved(); u != "" {
			return frozenItem{}, Unknown, prefix + name + " not found among frozen modules the audit could read; " + u
		}
		return frozenItem{}, Open, prefix + "no frozen " + name + " (" + b.manifestNote + ")"
	}
	if len(its) > 1 {
		return frozenItem{}, Unknown, prefix + "more than one " + name + " is frozen; which one wins depends on the build"
	}
	return its[0], Closed, prefix
}

// bootPath (D23): MicroPython starts with sys.path = [”, '.frozen', ...] and the cwd on
// the writable filesystem, so the frozen boot file's first import of anything
// shadowable (the guard itself included) can be taken from storage. The boot file
// must restrict sys.path to frozen modules before it imports anything else.
func (b *board) bootPath() Check {
	c := Check{ID: "boot-path", Title: "Boot file trims sys.path to frozen modules before importing",
		Attack: "sys.path starts as ['', '.frozen', …] with the cwd on the writable filesystem, so a fieldseal/ folder or a same-named .py on storage replaces the frozen guard at its first import (D23, A5).",
		Fix:    "make the frozen boot file's first statements `import sys` and `sys.path[:] = [\".frozen\"]`, before any other import (docs/HARDENING.md)."}
	it, st, ev := b.bootFile()
	if st != Closed {
		c.Status, c.Evidence = st, ev
		return c
	}
	if it.stock {
		c.Status, c.Evidence = Open, it.where+": the stock MicroPython "+it.name+" imports from the default sys.path"
		return c
	}
	if it.src == "" {
		c.Status, c.Evidence = Unknown, it.where+": source of "+it.name+" cannot be located"
		return c
	}
	data, err := os.ReadFile(it.src)
	if err != nil {
		c.Status, c.Evidence = Unknown, it.where+": "+it.name+" cannot be read"
		return c
	}
	c.Status, c.Evidence = analyseBootPath(it.name, string(data))
	c.Evidence = ev + c.Evidence
	return c
}

// analyseBootPath walks the boot file's top-level statements until sys.path holds
// only ".frozen" or something is imported from the default path.
func analyseBootPath(name, src string) (Status, string) {
	cleared := false
	for i, raw := range strings.Split(src, "\n") {
		line := stripPyComment(strings.TrimRight(raw, "\r"))
		if strings.TrimSpace(line) == "" {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, i+1)
		if line[0] == ' ' || line[0] == '\t' {
			return Unknown, where + ": indented code before sys.path is trimmed; the audit reads only top-level statements"
		}
		for _, stmt := range splitPyStatements(line) {
			st, ev, done := bootStatement(stmt, where, &cleared)
			if done {
				return st, ev
			}
		}
	}
	return Open, name + " never restricts sys.path to frozen modules"
}

// bootStatement judges one top-level statement of the boot file; done reports a verdict.
func bootStatement(s, where string, cleared *bool) (Status, string, bool) {
	if m := importStmt.FindStringSubmatch(s); m != nil {
		var mods []string
		if m[1] != "" {
			for _, part := range strings.Split(m[1], ",") {
				mods = append(mods, strings.Fields(part)[0])
			}
		} else {
			mods = []string{m[2]}
		}
		for _, mod := range mods {
			if unshadowable[mod] {
				continue
			}
			if *cleared {
				return Open, where + ": imports " + mod + " while sys.path is empty (the import fails; add \".frozen\" first)", true
			}
			top := strings.Split(mod, ".")[0]
			return Open, where + ": imports " + mod + " before sys.path is trimmed: a " + top + ".py or " + top +
				"/ on the filesystem ('' comes first on sys.path) runs instead", true
		}
		return "", "", false
	}
	if m := trimSlice.FindStringSubmatch(s); m != nil {
		entries, ok := stringLiterals(m[1])
		if !ok {
			return Unknown, where + ": sys.path is set to something the audit cannot read", true
		}
		for _, e := range entries {
			if e != ".frozen" {
				return Open, where + ": sys.path keeps " + strconv.Quote(e) + ", which is not frozen code", true
			}
		}
		if len(entries) == 0 {
			*cleared = true
			return "", "", false
		}
		return Closed, where + ": sys.path restricted to \".frozen\" before any shadowable import", true
	}
	if trimClear.MatchString(s) {
		*cleared = true
		return "", "", false
	}
	if m := pathAppend.FindStringSubmatch(s); m != nil && *cleared {
		if e, err := strconv.Unquote(strings.Replace(m[1], "'", "\"", -1)); err == nil && e == ".frozen" {
			return Closed, where + ": sys.path cleared, then only \".frozen\" added, before any shadowable import", true
		}
		return Open, where + ": sys.path gets " + m[1] + ", which is not frozen code", true
	}
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, `'`) {
		return "", "", false // a docstring or bare string: no import
	}
	return Unknown, where + ": a statement the audit cannot follow comes before sys.path is trimmed", true
}

// splitPyStatements splits a line at top-level semicolons (outside strings).
func splitPyStatements(line string) []string {
	var out []string
	start := 0
	forTopLevel(line, func(i int) bool {
		if line[i] == ';' {
			out = append(out, strings.TrimSpace(line[start:i]))
			start = i + 1
		}
		return true
	})
	if t := strings.TrimSpace(line[start:]); t != "" {
		out = append(out, t)
	}
	return out
}

// forTopLevel calls f with the index of every byte of line that is outside a Python string
// literal (escapes inside strings skipped), until f returns false.
func forTopLevel(line string, f func(i int) bool) {
	var q byte
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case q != 0 && c == '\\':
			i++
		case q != 0 && c == q:
			q = 0
		case q != 0:
		case c == '"' || c == '\'':
			q = c
		default:
			if !f(i) {
				return
			}
		}
	}
}

// stringLiterals parses `"a", 'b'` (the inside of a list or tuple display).
func stringLiterals(s string) ([]string, bool) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		p := strings.TrimSpace(part)
		if p == "" {
			continue
		}
		if strings.HasPrefix(p, "'") && strings.HasSuffix(p, "'") && len(p) >= 2 {
			p = `"` + p[1:len(p)-1] + `"`
		}
		v, err := strconv.Unquote(p)
		if err != nil {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// romfsWritable: with MICROPY_VFS_ROM_IOCTL (on whenever ROMFS is) vfs.rom_ioctl erases
// and writes the ROMFS partition from Python (`mpremote romfs deploy` uses it).
func (b *board) romfsWritable() Check {
	c := Check{ID: "romfs-writable", Title: "ROMFS writable from Python (vfs.rom_ioctl)",
		Attack: "vfs.rom_ioctl erases and rewrites the ROMFS partition from any Python prompt (mpremote romfs deploy), replacing code the port mounts at /rom and puts on sys.path (A9, D23).",
		Fix:    "build without ROMFS (" + romfsOff(b.port) + "), or #define MICROPY_VFS_ROM_IOCTL (0)."}
	st, ev := b.allOn("MICROPY_VFS_ROM", "MICROPY_VFS_ROM_IOCTL")
	c.Status, c.Evidence = st, ev
	return c
}

// romfsSealed: fieldseal's seal covers frozen code and the verified filesystem; a
// ROMFS image is neither, so any ROMFS the firmware supports holds unsealed content.
func (b *board) romfsSealed() Check {
	c := Check{ID: "romfs-sealed", Title: "No ROMFS image outside the seal",
		Attack: "a ROMFS image is mounted at /rom (and /rom, /rom/lib added to sys.path) without passing the guard's verification: its contents are not in the seal (A6, D23).",
		Fix:    "build without ROMFS (" + romfsOff(b.port) + ") and freeze that code into the firmware instead, where the seal covers it."}
	st, ev := b.allOn("MICROPY_VFS_ROM")
	if st == Open {
		ev += " (fieldseal seals frozen modules and the verified filesystem, never a ROMFS image)"
	}
	c.Status, c.Evidence = st, ev
	return c
}

func romfsOff(port string) string {
	switch port {
	case "stm32":
		return "leave MICROPY_HW_ROMFS_ENABLE_INTERNAL_FLASH/EXTERNAL_QSPI/EXTERNAL_XSPI at (0)"
	case "rp2":
		return "leave MICROPY_HW_ROMFS_BYTES at (0)"
	}
	return "leave MICROPY_VFS_ROM at (0)"
}

// stripPyComment drops a # comment that is outside string literals.
func stripPyComment(line string) string {
	end := len(line)
	forTopLevel(line, func(i int) bool {
		if line[i] == '#' {
			end = i
			return false
		}
		return true
	})
	return line[:end]
}
