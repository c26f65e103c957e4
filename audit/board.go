package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Reading a board the way MicroPython's build does: the port from the board's place
// in the tree (or its build files), the build files with their includes and the
// selected variant, the chip, the board header, and the frozen manifest the build
// actually selects.

// Ports the audit knows.
var Ports = []string{"stm32", "esp32", "rp2"}

// stm32Series are the MCU_SERIES values of ports/stm32 (stm32.mk); samd, nrf, mimxrt
// and alif boards set MCU_SERIES too, to values not in this list.
var stm32Series = map[string]bool{"f0": true, "f4": true, "f7": true, "g0": true, "g4": true, "h5": true, "h7": true,
	"l0": true, "l1": true, "l4": true, "n6": true, "u5": true, "wb": true, "wl": true}

// otherPortHints recognise boards of ports the audit does not support, so that they
// get a clear refusal instead of another port's verdicts.
var otherPortHints = []struct {
	re   *regexp.Regexp
	port string
}{
	{regexp.MustCompile(`(?m)^\s*MCU_SERIES\s*[:?]?=\s*SAMD`), "samd"},
	{regexp.MustCompile(`(?m)^\s*MCU_SERIES\s*[:?]?=\s*MIMXRT`), "mimxrt"},
	{regexp.MustCompile(`(?m)^\s*MCU_SERIES\s*[:?]?=\s*m(0|4|33)\b`), "nrf"},
	{regexp.MustCompile(`(?m)^\s*MCU_VARIANT\s*[:?]?=\s*nrf`), "nrf"},
	{regexp.MustCompile(`(?m)^\s*CMSIS_MCU\s*[:?]?=\s*RA\d`), "renesas-ra"},
	{regexp.MustCompile(`(?m)^\s*(ALIF_TOOLKIT|MCU_CORE)\b|^\s*MCU_SERIES\s*[:?]?=\s*E\d`), "alif"},
}

var (
	rpCmake      = regexp.MustCompile(`\b(PICO_BOARD|PICO_PLATFORM|RP2\w*)\b`)
	espCmake     = regexp.MustCompile(`\b(IDF_TARGET|SDKCONFIG_DEFAULTS)\b|mpconfigboard_esp32\w*_common\.cmake`)
	mcuSeries    = regexp.MustCompile(`(?m)^\s*MCU_SERIES\s*[:?]?=\s*(\S+)`)
	espCommonInc = regexp.MustCompile(`(^|/)mpconfigboard_(esp32\w*)_common\.cmake$`)
)

func unsupportedPort(port, why string) error {
	return usagef("%s: the audit supports the stm32, esp32 and rp2 ports only. The %s port's defaults "+
		"(REPL transports, USB, bootloader jumps such as samd's and mimxrt's forced 1200-baud touch) are not "+
		"modelled, so any verdict would be a guess; audit a board of a supported port", why, port)
}

// portFromPath reads the port from a board kept in a MicroPython tree:
// <mpy>/ports/<port>/boards/<BOARD>.
func portFromPath(abs string) (port, portDir, mpyDir string) {
	parent := filepath.Dir(abs)
	if filepath.Base(parent) != "boards" {
		return "", "", ""
	}
	pd := filepath.Dir(parent)
	if filepath.Base(filepath.Dir(pd)) != "ports" {
		return "", "", ""
	}
	return filepath.Base(pd), pd, filepath.Dir(filepath.Dir(pd))
}

// detectPort tells the port of a board kept outside a MicroPython tree from its files:
// sdkconfig/partition tables or IDF_TARGET → esp32; PICO_BOARD/RP2 → rp2; an stm32
// MCU_SERIES → stm32. other names a port the audit does not support.
func detectPort(dir, mk, cmake string) (found []string, why []string, other string) {
	for _, h := range otherPortHints {
		if h.re.MatchString(mk) {
			return nil, nil, h.port
		}
	}
	entries, _ := os.ReadDir(dir)
	esp := ""
	for _, e := range entries {
		n := e.Name()
		// pins.csv and af.csv are common on every port: only partition tables count
		ln := strings.ToLower(n)
		if strings.HasPrefix(n, "sdkconfig") || (strings.HasSuffix(ln, ".csv") && strings.Contains(ln, "partition")) {
			esp = n
			break
		}
	}
	if esp == "" && espCmake.MatchString(cmake) {
		esp = "mpconfigboard.cmake (IDF_TARGET/SDKCONFIG_DEFAULTS)"
	}
	if esp != "" {
		found, why = append(found, "esp32"), append(why, "esp32 ("+esp+")")
	}
	if rpCmake.MatchString(cmake) {
		found, why = append(found, "rp2"), append(why, "rp2 (mpconfigboard.cmake names "+rpCmake.FindString(cmake)+")")
	}
	if m := mcuSeries.FindStringSubmatch(mk); m != nil {
		if !stm32Series[m[1]] {
			return nil, nil, "MCU_SERIES = " + m[1]
		}
		found, why = append(found, "stm32"), append(why, "stm32 (mpconfigboard.mk sets MCU_SERIES = "+m[1]+")")
	}
	return found, why, ""
}

// buildExt is the build-file type of a port: make for stm32, CMake for esp32 and rp2.
func buildExt(port string) string {
	if port == "stm32" {
		return ".mk"
	}
	return ".cmake"
}

func loadBoard(dir string, opt Options, forceChip string) (*board, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b := &board{dir: abs, name: filepath.Base(abs), hs: newHeaderSet(), bv: newBuildVars(), variant: opt.Variant}
	hdr, hasHdr, err := readOpt(filepath.Join(abs, "mpconfigboard.h"))
	if err != nil {
		return nil, err
	}
	mk, hasMk, err := readOpt(filepath.Join(abs, "mpconfigboard.mk"))
	if err != nil {
		return nil, err
	}
	cm, hasCm, err := readOpt(filepath.Join(abs, "mpconfigboard.cmake"))
	if err != nil {
		return nil, err
	}
	if opt.Port != "" {
		known := false
		for _, p := range Ports {
			known = known || p == opt.Port
		}
		if !known {
			return nil, usagef("--port %q: want one of %s", opt.Port, strings.Join(Ports, ", "))
		}
	}
	if pathPort, pd, md := portFromPath(abs); pathPort != "" {
		// A board inside a MicroPython tree belongs to the port whose boards/ holds it.
		known := false
		for _, p := range Ports {
			known = known || p == pathPort
		}
		if !known {
			return nil, unsupportedPort(pathPort, abs+" is a board of MicroPython's "+pathPort+" port")
		}
		if opt.Port != "" && opt.Port != pathPort {
			return nil, usagef("--port %s conflicts with the board's place in the MicroPython tree (ports/%s/boards)", opt.Port, pathPort)
		}
		b.port, b.portDir, b.mpyDir = pathPort, pd, md
	} else {
		found, why, other := detectPort(abs, mk, cm)
		switch {
		case other != "" && opt.Port == "":
			return nil, unsupportedPort(other, "the board files look like a "+other+" board")
		case opt.Port != "":
			if other != "" {
				return nil, usagef("--port %s conflicts with the board files, which look like a %s board", opt.Port, other)
			}
			for _, f := range found {
				if f != opt.Port {
					return nil, usagef("--port %s conflicts with the board files, which look like %s", opt.Port, strings.Join(why, ", "))
				}
			}
			b.port = opt.Port
		case len(found) == 1:
			b.port = found[0]
		case len(found) > 1:
			return nil, usagef("port is ambiguous: board files look like %s; pass --port", strings.Join(why, " and "))
		default:
			if !hasHdr && !hasMk && !hasCm {
				return nil, usagef("%s has no mpconfigboard.h, mpconfigboard.mk or mpconfigboard.cmake: not a MicroPython board directory", dir)
			}
			return nil, usagef("cannot tell the port from the board files; pass --port stm32|esp32|rp2")
		}
	}
	b.bv.include = b.includeBuildFile
	b.bv.model = b.modelBuildFile
	if b.port == "stm32" {
		if !hasMk && hasCm {
			b.warnings = append(b.warnings, "mpconfigboard.cmake is not read by the stm32 build (it uses mpconfigboard.mk)")
		}
		b.bv.parseMk("mpconfigboard.mk", mk)
	} else {
		if hasMk && !hasCm {
			b.warnings = append(b.warnings, "mpconfigboard.mk is not read by the "+b.port+" build (it uses mpconfigboard.cmake)")
		}
		b.bv.parseCmake("mpconfigboard.cmake", cm)
	}
	if err := b.loadVariants(); err != nil {
		return nil, err
	}
	if b.port == "stm32" && b.freezes(opt) {
		for _, f := range frozenMakeFlags {
			b.bv.defines = append(b.bv.defines, cmdDefine{name: f, value: "1", where: "py/mkrules.mk:228-230 (frozen manifest)"})
		}
	}
	// -D flags from the build files come before the header, as on the compiler line.
	for _, d := range b.bv.defines {
		if b.port == "stm32" {
			// make expands $(VAR) in CFLAGS when it compiles, with the final values.
			raw := d.name
			d.name, d.value = b.bv.expandMake(d.name), b.bv.expandMake(d.value)
			if raw != d.name && strings.Contains(raw, "$(") {
				pat := regexp.QuoteMeta(raw)
				pat = regexp.MustCompile(`\\\$\\\([A-Za-z_]\w*\\\)`).ReplaceAllString(pat, `\w*`)
				if re, err := regexp.Compile("^" + pat + "$"); err == nil {
					b.hs.undefFamilies = append(b.hs.undefFamilies, re)
				}
			}
		}
		md := &macroDef{value: d.value, where: d.where}
		if d.cond {
			md.unknown = d.where + ": defined inside a conditional block of the build file"
		}
		b.hs.defs[d.name] = md
	}
	if len(b.bv.opaque) > 0 {
		b.hs.opaque = append(b.hs.opaque, b.bv.opaque[0])
	}
	b.detectChip(hdr)
	if forceChip != "" {
		b.chip, b.chipWhere = forceChip, "assumed "+forceChip
	}
	if hasHdr {
		b.hs.preprocess("mpconfigboard.h", hdr, b.includeHeader, 0)
	} else {
		b.hs.opaque = append(b.hs.opaque, "mpconfigboard.h: missing")
	}
	b.defaults = portDefaults(b.port, b.chip)
	b.resolver = "built-in evaluator (MicroPython " + MicroPythonVersion + " port defaults model)"
	b.toolsMode, b.libDir = opt.Tools, opt.MicroPythonLib
	if err := b.selectManifest(opt); err != nil {
		return nil, err
	}
	if b.port == "esp32" {
		if err := b.loadESP(opt); err != nil {
			return nil, err
		}
	}
	if err := b.useRealTools(opt); err != nil {
		return nil, err
	}
	if b.port == "esp32" {
		if !b.real {
			b.refineESP32Defaults()
		}
	} else if opt.Sdkconfig != "" {
		return nil, usagef("--sdkconfig applies to esp32 boards only (port is %s)", b.port)
	}
	if b.port == "rp2" {
		if err := b.loadOTP(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// expandBuildPath substitutes the variables MicroPython's builds define for board
// files; a relative path is relative to the port directory, where make and CMake run.
func (b *board) expandBuildPath(p string) (string, bool) {
	r := strings.NewReplacer("$(BOARD_DIR)", b.dir, "${MICROPY_BOARD_DIR}", b.dir, "${CMAKE_CURRENT_LIST_DIR}", b.dir,
		"$(PORT_DIR)", b.portDir, "${MICROPY_PORT_DIR}", b.portDir, "$(TOP)", b.mpyDir, "${MICROPY_DIR}", b.mpyDir,
		"$(MPY_DIR)", b.mpyDir, "${MICROPY_BOARD}", b.name, "$(BOARD)", b.name)
	needsPort := strings.Contains(p, "PORT_DIR") || strings.Contains(p, "$(TOP)") || strings.Contains(p, "MICROPY_DIR}") || strings.Contains(p, "$(MPY_DIR)")
	out := r.Replace(p)
	if strings.Contains(out, "$(") || strings.Contains(out, "${") || (needsPort && b.portDir == "") {
		return "", false
	}
	if !filepath.IsAbs(out) {
		if b.portDir == "" {
			return "", false
		}
		out = filepath.Join(b.portDir, out)
	}
	return filepath.Clean(out), true
}

func (b *board) includeBuildFile(p string) (string, string, bool) {
	full, ok := b.expandBuildPath(p)
	if !ok {
		return "", "", false
	}
	text, exists, err := readOpt(full)
	if err != nil || !exists {
		return "", "", false
	}
	return text, b.rel(full), true
}

// modelBuildFile answers includes of the esp32 port's per-chip common files when the
// port tree is not there: each sets IDF_TARGET (its name) and SDKCONFIG_DEFAULTS to
// port fragments, which set no CONFIG_SECURE_* option (defaults.go).
func (b *board) modelBuildFile(bv *buildVars, p, where string) bool {
	m := espCommonInc.FindStringSubmatch(p)
	if b.port != "esp32" || m == nil {
		return false
	}
	src := where + " → ports/esp32/boards/mpconfigboard_" + m[2] + "_common.cmake (MicroPython " + MicroPythonVersion + " model)"
	bv.assign("IDF_TARGET", "=", []string{m[2]}, src, false)
	bv.assign("SDKCONFIG_DEFAULTS", "=", []string{"boards/sdkconfig.base"}, src, false)
	return true
}

// includeHeader resolves #include "name" as the compiler does for a board header: the
// board directory, then the port directory (-I. in the port's build).
func (b *board) includeHeader(name string) (string, string, bool) {
	dirs := []string{b.dir}
	if b.portDir != "" {
		dirs = append(dirs, b.portDir)
	}
	for _, d := range dirs {
		p := filepath.Clean(filepath.Join(d, filepath.FromSlash(name)))
		t, ok, err := readOpt(p)
		if err != nil || !ok {
			continue
		}
		return t, b.rel(p), true
	}
	return "", "", false
}

// loadVariants applies the variant the build would use: mpconfigvariant.<mk|cmake>
// when no variant is named (optional), mpconfigvariant_NAME.<ext> for --variant NAME.
// Other variants are different builds: they only mark, in the evidence, which
// settings they change.
func (b *board) loadVariants() error {
	ext := buildExt(b.port)
	ents, _ := os.ReadDir(b.dir)
	found := map[string]string{}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "mpconfigvariant") || !strings.HasSuffix(n, ext) {
			continue
		}
		v := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(n, "mpconfigvariant"), "_"), ext)
		found[v] = n
		if v != "" {
			b.variants = append(b.variants, v)
		}
	}
	sort.Strings(b.variants)
	want := "mpconfigvariant" + ext
	if b.variant != "" {
		want = "mpconfigvariant_" + b.variant + ext
		if _, ok := found[b.variant]; !ok {
			avail := "none"
			if len(b.variants) > 0 {
				avail = strings.Join(b.variants, ", ")
			}
			return usagef("--variant %s: the board has no %s (variants: %s)", b.variant, want, avail)
		}
	}
	if text, ok, err := readOpt(filepath.Join(b.dir, want)); err != nil {
		return err
	} else if ok {
		if ext == ".mk" {
			b.bv.parseMk(want, text)
		} else {
			b.bv.parseCmake(want, text)
		}
	}
	b.variantTouch = map[string][]string{}
	for v, file := range found {
		if file == want || v == "" {
			continue
		}
		text, ok, err := readOpt(filepath.Join(b.dir, file))
		if err != nil || !ok {
			continue
		}
		scratch := newBuildVars()
		if ext == ".mk" {
			scratch.parseMk(file, text)
		} else {
			scratch.parseCmake(file, text)
		}
		for name := range scratch.vars {
			b.variantTouch[name] = append(b.variantTouch[name], file)
		}
		for _, d := range scratch.defines {
			b.variantTouch[d.name] = append(b.variantTouch[d.name], file)
		}
	}
	if len(b.variants) > 0 {
		what := "the default build"
		if b.variant != "" {
			what = "variant " + b.variant
		}
		b.warnings = append(b.warnings, fmt.Sprintf("audited %s; the board also builds variants %s: audit each you ship with --variant NAME",
			what, strings.Join(b.variants, ", ")))
	}
	return nil
}

func (b *board) manifestEnv() manifestEnv {
	vars := map[string]string{"BOARD_DIR": b.dir, "PORT_DIR": b.portDir, "MPY_DIR": b.mpyDir}
	if b.mpyDir != "" {
		vars["MPY_LIB_DIR"] = filepath.Join(b.mpyDir, "lib", "micropython-lib")
	}
	// MICROPY_MANIFEST_<NAME> build variables become manifest path variables $(NAME)
	// (py/manifest.mk, py/manifest.cmake), e.g. the Arduino boards' ARDUINO_LIB_DIR.
	for name, val := range b.manifestPathVars() {
		vars[name] = val
	}
	return manifestEnv{vars: vars, port: b.port, rel: b.rel}
}

func (b *board) manifestPathVars() map[string]string {
	out := map[string]string{}
	for name := range b.bv.vars {
		short, ok := strings.CutPrefix(name, "MICROPY_MANIFEST_")
		if !ok || short == "" {
			continue
		}
		v, _ := b.bv.get(name)
		if b.port == "stm32" {
			v = b.bv.expandMake(v)
		}
		if p, ok := b.expandBuildPath(v); ok {
			out[short] = p
		}
	}
	return out
}

// manifestVar is the build variable that selects the frozen manifest.
func manifestVar(port string) string {
	if port == "stm32" {
		return "FROZEN_MANIFEST"
	}
	return "MICROPY_FROZEN_MANIFEST"
}

// selectManifest picks the frozen manifest as the port's build does: --manifest (the
// command line), else the board's FROZEN_MANIFEST (stm32 make) or
// MICROPY_FROZEN_MANIFEST (esp32/rp2 CMake), else the port's boards/manifest.py. A
// manifest.py in the board directory is not read unless one of those names it.
func (b *board) selectManifest(opt Options) error {
	env := b.manifestEnv()
	if opt.Manifest != "" {
		if _, err := os.Stat(opt.Manifest); err != nil {
			return fmt.Errorf("--manifest: %w", err)
		}
		b.manifestNote = "--manifest " + opt.Manifest
		return b.readManifest(opt.Manifest, env)
	}
	v := manifestVar(b.port)
	val, set := b.bv.get(v)
	where := b.bv.where[v]
	switch {
	case set && val == "" && b.port == "stm32":
		// make: an empty FROZEN_MANIFEST (even "?=") is defined, so the port's
		// "FROZEN_MANIFEST ?= boards/manifest.py" keeps it empty: nothing is frozen.
		b.ms = newManifestSet()
		b.manifestNote = where + " sets FROZEN_MANIFEST empty: nothing is frozen (not even the port manifest)"
		return nil
	case set && val != "":
		b.manifestNote = where + " " + v
		if full, ok := b.expandBuildPath(val); ok {
			return b.readManifest(full, env)
		}
		mv := strings.NewReplacer("${MICROPY_BOARD_DIR}", "$(BOARD_DIR)", "${MICROPY_PORT_DIR}", "$(PORT_DIR)",
			"${CMAKE_CURRENT_LIST_DIR}", "$(BOARD_DIR)", "${MICROPY_DIR}", "$(MPY_DIR)", "$(TOP)", "$(MPY_DIR)").Replace(val)
		if strings.HasPrefix(mv, "boards/") {
			mv = "$(PORT_DIR)/" + mv
		}
		b.ms = newManifestSet()
		if modelledPortManifest(b.port, mv) != nil {
			b.ms.apply(mfCall{name: "include", args: []mfVal{{s: mv}}, where: where}, b.dir, env, 0, map[string]bool{})
			return nil
		}
		b.ms.unresolved = []string{where + ": " + v + " " + val + " cannot be resolved from the board directory"}
		return nil
	case !set && len(b.bv.opaque) > 0:
		b.ms = newManifestSet()
		b.ms.unresolved = []string{v + " not found; " + b.bv.opaque[0]}
		return nil
	}
	// The port's default manifest.
	if _, err := os.Stat(filepath.Join(b.dir, "manifest.py")); err == nil {
		b.warnings = append(b.warnings, "manifest.py in the board directory is not used: the "+b.port+" build freezes a board's manifest only when "+
			filepath.Base("mpconfigboard"+buildExt(b.port))+" sets "+v+"; it freezes the port's boards/manifest.py instead")
	}
	b.manifestNote = "the port's default manifest (" + v + " not set)"
	if set {
		b.manifestNote = "the port's default manifest (" + where + " sets " + v + " empty)"
	}
	b.ms = newManifestSet()
	b.ms.apply(mfCall{name: "include", args: []mfVal{{s: "$(PORT_DIR)/boards/manifest.py"}}, where: b.manifestNote}, b.dir, env, 0, map[string]bool{})
	return nil
}

// freezes tells whether the make build has a frozen manifest (py/mkrules.mk tests
// FROZEN_MANIFEST for non-empty; stm32's Makefile defaults it to boards/manifest.py).
func (b *board) freezes(opt Options) bool {
	val, set := b.bv.get(manifestVar(b.port))
	return opt.Manifest != "" || !set || val != ""
}

func newManifestSet() *manifestSet {
	return &manifestSet{packages: map[string]string{}, requires: map[string]string{}}
}

// readManifest loads the selected manifest: MicroPython's tools/manifestfile.py when
// available (realtools.go), else the built-in reader.
func (b *board) readManifest(path string, env manifestEnv) error {
	if f, err := os.Open(path); err == nil {
		f.Close()
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("manifest: %w", err)
	}
	if b.realManifest(path) {
		return nil
	}
	b.ms = loadManifest(path, env)
	return nil
}
