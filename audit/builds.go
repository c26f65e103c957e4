package audit

import (
	"regexp"
	"strings"
)

// The settings below pass every check yet give a firmware that does not compile or link:
// each was found by building the board templates with the real stm32 and rp2 ports
// (docs/HARDENING.md §11). A score describes a firmware that does not exist until they
// are fixed, so Run reports them as build errors and the verdict says so.

var cNameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// frozenCName is the C name tools/mpy-tool.py gives a frozen module (mpy-tool.py:1559: the
// source name without its extension, every other character that is not a C identifier
// character replaced by "_"), so fieldseal_boot.py and fieldseal/boot.py collide.
func frozenCName(name string) string {
	parts := strings.Split(name, ".")
	if len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	return cNameUnsafe.ReplaceAllString(strings.Join(parts, "_"), "_")
}

// frozenMakeFlags are the -D flags py/mkrules.mk:228-230 adds to every make-built port
// (stm32) whose FROZEN_MANIFEST is not empty.
var frozenMakeFlags = []string{"MICROPY_MODULE_FROZEN_MPY", "MICROPY_MODULE_FROZEN_STR"}

func (b *board) buildErrors() []string {
	var errs []string
	seen := map[string]frozenItem{}
	for _, it := range b.ms.frozen {
		if !strings.HasSuffix(it.name, ".py") && !strings.HasSuffix(it.name, ".mpy") {
			continue
		}
		c := frozenCName(it.name)
		if first, ok := seen[c]; ok {
			if first.name == it.name {
				// manifestfile.py keeps both, and mpy-tool.py writes the module twice
				errs = append(errs, first.where+" and "+it.where+" both freeze "+it.name+
					": frozen_content.c defines frozen_module_"+c+" twice and does not compile; freeze it once")
				continue
			}
			errs = append(errs, first.where+" "+first.name+" and "+it.where+" "+it.name+" get the same C name frozen_module_"+c+
				" (tools/mpy-tool.py:1559): frozen_content.c does not compile; rename one of them")
			continue
		}
		seen[c] = it
	}
	if b.port != "stm32" {
		return append(errs, b.replWithoutCompiler()...)
	}
	memx, mev, ok1 := b.num("MICROPY_PY_MACHINE_MEMX")
	stm, sev, ok2 := b.num("MICROPY_PY_STM")
	if ok1 && ok2 && memx == 0 && stm != 0 {
		errs = append(errs, mev+" with the stm module on ("+sev+") does not link: stm.mem8/16/32 are machine_mem8/16/32_obj "+
			"(ports/stm32/modstm.c:44-46); keep MEMX on, or switch off MICROPY_PY_STM too")
	}
	comp, cev, ok1 := b.num("MICROPY_ENABLE_COMPILER")
	fstr, _, ok2 := b.num("MICROPY_MODULE_FROZEN_STR")
	if ok1 && ok2 && comp == 0 && fstr != 0 {
		errs = append(errs, cev+" with a frozen manifest does not link: py/mkrules.mk:228-230 adds "+
			"-DMICROPY_MODULE_FROZEN_STR, whose loader of frozen source compiles at import (py/frozenmod.c, py/builtinimport.c); "+
			"#undef MICROPY_MODULE_FROZEN_STR and #define it (0) in mpconfigboard.h")
	}
	return errs
}

var definesRepl = regexp.MustCompile(`(?m)^\s*int\s+pyexec_friendly_repl\s*\(\s*void\s*\)\s*\{`)

// replWithoutCompiler: ports/esp32/main.c and ports/rp2/main.c call pyexec_raw_repl and
// pyexec_friendly_repl unconditionally, and shared/runtime/pyexec.c defines them only with
// the compiler, so MICROPY_ENABLE_COMPILER (0) links only if the board's own C sources
// (MICROPY_SOURCE_BOARD) define them, as examples/boards/norepl.c does.
func (b *board) replWithoutCompiler() []string {
	comp, cev, ok := b.num("MICROPY_ENABLE_COMPILER")
	if !ok || comp != 0 {
		return nil
	}
	srcs, _ := b.bv.get("MICROPY_SOURCE_BOARD")
	for _, s := range strings.FieldsFunc(srcs, func(r rune) bool { return r == ';' || r == ' ' }) {
		full, ok := b.expandBuildPath(s)
		if !ok {
			return nil // a source the audit cannot read may define them: no claim
		}
		text, exists, err := readOpt(full)
		if err != nil || !exists || definesRepl.MatchString(text) {
			return nil // unreadable or missing: the audit cannot tell what it defines
		}
	}
	return []string{cev + " does not link on " + b.port + ": ports/" + b.port + "/main.c calls pyexec_raw_repl() and pyexec_friendly_repl(), " +
		"which shared/runtime/pyexec.c builds only with the compiler; add a board source that defines them " +
		"(set(MICROPY_SOURCE_BOARD ${MICROPY_BOARD_DIR}/../norepl.c), examples/boards/norepl.c)"}
}

// flashLayoutWarning: ports/rp2/CMakeLists.txt:570-582 takes MICROPY_HW_FLASH_STORAGE_BYTES
// from CMake and gives it to the linker's FLASH/FLASH_FS regions and, as -D, to the C code.
// Set in a board header only, the firmware still links, but ld gives both regions no length
// ("invalid length for memory region FLASH"), so nothing stops the firmware from growing into
// the filesystem (measured, docs/HARDENING.md §11).
func (b *board) flashLayoutWarning() string {
	if b.port != "rp2" {
		return ""
	}
	if _, set := b.bv.get("MICROPY_HW_FLASH_STORAGE_BYTES"); set {
		return ""
	}
	d, has := b.hs.defs["MICROPY_HW_FLASH_STORAGE_BYTES"]
	if !has || d.undef || d.unknown != "" || strings.HasPrefix(d.where, "ports/") {
		return "" // the port's own default, or nothing the board set
	}
	return d.where + ": MICROPY_HW_FLASH_STORAGE_BYTES is set in a header, which the rp2 linker does not see: its FLASH and FLASH_FS " +
		"regions get no length, so nothing stops the firmware from growing into the filesystem; " +
		"set(MICROPY_HW_FLASH_STORAGE_BYTES …) in mpconfigboard.cmake instead"
}
