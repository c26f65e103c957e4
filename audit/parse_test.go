package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pp(text string) *headerSet {
	hs := newHeaderSet()
	hs.preprocess("b.h", text, nil, 0)
	return hs
}

func TestPreprocessorConditionals(t *testing.T) {
	hs := pp(`
/* block comment with #define FAKE (1) inside */
#define A (1)  // trailing comment
#define B 0x10
#if A && (B == 16)
#define C (1)
#else
#define C (0)
#endif
#ifdef A
#define D 1
#endif
#ifndef MICROPY_NOT_SET
#define E 1
#endif
#if defined(MICROPY_NOT_SET) || !A
#define F 1
#elif B > 1
#define F 2
#else
#define F 3
#endif
#if 0
#define G 1
#endif
#define LONG (1 + \
   2)
`)
	if hs.broken != "" {
		t.Fatal(hs.broken)
	}
	for name, want := range map[string]int64{"A": 1, "B": 16, "C": 1, "D": 1, "E": 1, "F": 2, "LONG": 3} {
		d, ok := hs.defs[name]
		if !ok || d.unknown != "" {
			t.Errorf("%s: missing or unknown: %+v", name, d)
			continue
		}
		v, why, ok := hs.evalValue(d.value, 0)
		if !ok || v != want {
			t.Errorf("%s = %d (%s), want %d", name, v, why, want)
		}
	}
	if _, ok := hs.defs["FAKE"]; ok {
		t.Error("define inside a comment was taken")
	}
	if _, ok := hs.defs["G"]; ok {
		t.Error("define under #if 0 was taken")
	}
	if hs.defs["F"].where != "b.h:19" {
		t.Errorf("F where = %s", hs.defs["F"].where)
	}
}

func TestPreprocessorUnknownCondition(t *testing.T) {
	hs := pp(`#if CONFIG_IDF_TARGET_ESP32S3
#define MICROPY_HW_ENABLE_UART_REPL (0)
#else
#define MICROPY_HW_USB_CDC (0)
#endif
#define MICROPY_X (SOME_VENDOR_MACRO + 1)
`)
	for _, n := range []string{"MICROPY_HW_ENABLE_UART_REPL", "MICROPY_HW_USB_CDC"} {
		d := hs.defs[n]
		if d == nil || d.unknown == "" || !strings.Contains(d.unknown, "b.h:1") {
			t.Errorf("%s should be unknown with its line: %+v", n, d)
		}
	}
	if _, _, ok := hs.evalValue(hs.defs["MICROPY_X"].value, 0); ok {
		t.Error("value using an unknown macro evaluated")
	}
}

func TestPreprocessorStructureErrors(t *testing.T) {
	for _, src := range []string{
		"#if 1\n#define A 1\n",
		"#endif\n",
		"#else\n",
		"#if 1\n#else\n#else\n#endif\n",
		"#define\n",
	} {
		if hs := pp(src); hs.broken == "" {
			t.Errorf("%q: not reported broken", src)
		}
	}
}

func TestPreprocessorUndefAndInclude(t *testing.T) {
	hs := newHeaderSet()
	hs.preprocess("b.h", "#define A 1\n#undef A\n#include \"pins.h\"\n#include <vendor.h>\n", func(n string) (string, string, bool) {
		if n == "pins.h" {
			return "#define PIN_X (3)\n", "pins.h", true
		}
		return "", "", false
	}, 0)
	if !hs.defs["A"].undef {
		t.Error("#undef ignored")
	}
	if hs.defs["PIN_X"] == nil || hs.defs["PIN_X"].where != "pins.h:1" {
		t.Errorf("include not followed: %+v", hs.defs["PIN_X"])
	}
	// <vendor.h> is a system header: it defines no board setting and is not opaque.
	if len(hs.opaque) != 0 {
		t.Errorf("opaque = %v", hs.opaque)
	}
	hs = newHeaderSet()
	hs.preprocess("b.h", "#include \"missing.h\"\n", func(string) (string, string, bool) { return "", "", false }, 0)
	if len(hs.opaque) != 1 || !strings.Contains(hs.opaque[0], "b.h:1") {
		t.Errorf("a quoted include that cannot be followed must be opaque: %v", hs.opaque)
	}
}

func TestManifestParser(t *testing.T) {
	calls, unparsed := parseManifest("m.py", `# comment
include("$(PORT_DIR)/boards/manifest.py")
freeze("$(BOARD_DIR)/modules", ("_boot.py", "x.py"))
package(
    "fieldseal",
    base_path="../device",  # trailing comment
)
module('single.py', base_path=r"raw")
require("mip")
x = 1
if True:
    require("webrepl")
`)
	names := []string{}
	for _, c := range calls {
		names = append(names, c.name)
	}
	if got := strings.Join(names, ","); got != "include,freeze,package,module,require" {
		t.Errorf("calls = %s", got)
	}
	if calls[1].args[1].list[0] != "_boot.py" || calls[2].kw["base_path"].s != "../device" || calls[2].where != "m.py:4" {
		t.Errorf("bad args: %+v %+v", calls[1], calls[2])
	}
	if calls[3].kw["base_path"].s != "raw" {
		t.Errorf("raw string: %+v", calls[3])
	}
	if len(unparsed) != 3 { // x = 1, if True:, indented require
		t.Errorf("unparsed = %v", unparsed)
	}
}

func TestManifestParserErrors(t *testing.T) {
	for _, src := range []string{"freeze(\"a\"\n", "include('x)\n", "x = '''doc'''\n", "))\n"} {
		_, unparsed := parseManifest("m.py", src)
		if len(unparsed) == 0 {
			t.Errorf("%q: no problem reported", src)
		}
	}
}

func TestSdkconfigParser(t *testing.T) {
	sc := newSdkconfig()
	sc.parse("s", "# c\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\nCONFIG_D=0x10\n")
	if len(sc.problems) != 0 || sc.vals["CONFIG_A"] != "y" || sc.vals["CONFIG_B"] != "n" || sc.vals["CONFIG_C"] != "x y" || sc.where["CONFIG_D"] != "s:5" {
		t.Errorf("%+v %v", sc.vals, sc.problems)
	}
	for _, bad := range []string{"garbage\n", "CONFIG_=y\n", "CONFIG_A=\"unterminated\n", "CONFIG_A=y n\n", "config_a=y\n"} {
		sc := newSdkconfig()
		sc.parse("s", bad)
		if len(sc.problems) == 0 {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPartitionParser(t *testing.T) {
	p, err := parsePartitions("p.csv", "# h\nnvs, data, nvs, 0x9000, 24K,\nvfs, data, fat, , 2M, encrypted:readonly\n")
	if err != nil || len(p) != 2 || !p[1].hasFlag("encrypted") || p[1].where != "p.csv:3" {
		t.Fatalf("%v %+v", err, p)
	}
	for _, bad := range []string{"", "a,b\n", "nvs, weird, nvs, 0x9000, 0x6000\n", "nvs, data, nvs, 0x9000, lots\n",
		"nvs, data, nvs, 0x9000, 0x6000, shiny\n", "averyveryverylongname, data, nvs, 0x9000, 0x6000\n"} {
		if _, err := parsePartitions("p.csv", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCmakeParser(t *testing.T) {
	b := newBuildVars()
	b.parseCmake("c", `set(IDF_TARGET esp32s3)
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base  # comment
    "${MICROPY_BOARD_DIR}/sdkconfig.board"
)
list(APPEND MICROPY_DEF_BOARD MICROPY_HW_BOARD_NAME="X" MICROPY_HW_USB_CDC=0)
if(MICROPY_BOARD_VARIANT STREQUAL "Y")
    set(PICO_BOARD pico2)
endif()
`)
	if v, _ := b.get("IDF_TARGET"); v != "esp32s3" {
		t.Errorf("IDF_TARGET %q", v)
	}
	if len(b.vars["SDKCONFIG_DEFAULTS"]) != 2 || b.vars["SDKCONFIG_DEFAULTS"][1] != "${MICROPY_BOARD_DIR}/sdkconfig.board" {
		t.Errorf("SDKCONFIG_DEFAULTS %q", b.vars["SDKCONFIG_DEFAULTS"])
	}
	if len(b.defines) != 2 || b.defines[1].name != "MICROPY_HW_USB_CDC" || b.defines[1].value != "0" {
		t.Errorf("defines %+v", b.defines)
	}
	if _, c := b.cond["PICO_BOARD"]; !c {
		t.Error("set inside if() not marked conditional")
	}
}

func TestMkParser(t *testing.T) {
	b := newBuildVars()
	b.parseMk("m", "MCU_SERIES = f4\nFROZEN_MANIFEST ?= $(BOARD_DIR)/manifest.py\nFROZEN_MANIFEST ?= other\nCFLAGS += -DMICROPY_HW_ENABLE_USB=0 -DFOO\nifeq ($(X),1)\nCFLAGS += -DMICROPY_HW_HAS_SWITCH=1\nendif\n")
	if v, _ := b.get("FROZEN_MANIFEST"); v != "$(BOARD_DIR)/manifest.py" {
		t.Errorf("?= overrode: %q", v)
	}
	if len(b.defines) != 3 || b.defines[1].value != "1" || !b.defines[2].cond {
		t.Errorf("defines %+v", b.defines)
	}
}

func TestBuildFlagQuoting(t *testing.T) {
	b := newBuildVars()
	b.parseCmake("c", `list(APPEND MICROPY_DEF_BOARD MICROPY_HW_BOARD_NAME="X Y" "MICROPY_BOARD_FROZEN_BOOT_FILE=\"boot_x.py\"")`+"\n")
	if len(b.defines) != 2 || b.defines[0].value != `"X Y"` || b.defines[1].value != `"boot_x.py"` {
		t.Errorf("defines %+v", b.defines)
	}
}

func TestManifestResolution(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(s), 0o644)
	}
	env := manifestEnv{vars: map[string]string{"BOARD_DIR": dir}, port: "esp32", rel: func(p string) string {
		r, _ := filepath.Rel(dir, p)
		return r
	}}
	// include cycle
	write("a.py", "include(\"b.py\")\n")
	write("b.py", "include(\"$(BOARD_DIR)/a.py\")\n")
	if ms := loadManifest(filepath.Join(dir, "a.py"), env); len(ms.unresolved) != 1 || !strings.Contains(ms.unresolved[0], "cycle") {
		t.Errorf("cycle: %v", ms.unresolved)
	}
	// freeze of a directory that cannot be listed, and of an unknown variable
	write("c.py", "freeze(\"$(BOARD_DIR)/nope\")\nfreeze(\"$(MPY_DIR)/x\")\n")
	if ms := loadManifest(filepath.Join(dir, "c.py"), env); len(ms.unresolved) != 2 {
		t.Errorf("unlistable freeze: %v", ms.unresolved)
	}
	// the modelled esp32 port manifest and modules
	write("d.py", "include(\"$(PORT_DIR)/boards/manifest.py\")\nfreeze(\"$(PORT_DIR)/modules\")\n")
	ms := loadManifest(filepath.Join(dir, "d.py"), env)
	if len(ms.unresolved) != 0 || ms.requires["bundle-networking"] == "" || len(ms.find("_boot.py")) != 2 || !ms.find("_boot.py")[0].stock {
		t.Errorf("modelled port manifest: %+v", ms)
	}
	// directory freeze lists .py/.mpy with names relative to the directory
	write("mods/_boot.py", "")
	write("mods/pkg/x.mpy", "")
	write("mods/README", "")
	write("e.py", "freeze(\"mods\")\n")
	ms = loadManifest(filepath.Join(dir, "e.py"), env)
	if len(ms.frozen) != 2 || ms.frozen[0].name != "_boot.py" || ms.frozen[1].name != "pkg/x.mpy" {
		t.Errorf("freeze dir: %+v", ms.frozen)
	}
}
