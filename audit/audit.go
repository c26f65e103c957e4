// Package audit reads a MicroPython board definition as vendors keep it
// (mpconfigboard.h, mpconfigboard.mk/.cmake, the frozen manifest.py, ESP-IDF sdkconfig
// fragments and partition tables), resolves the effective value of every setting that
// decides whether an attacker with physical access can get around fieldseal's guard,
// and reports each as closed, open or unknown with its evidence.
//
// It answers the hardware rows of the threat model (D17–D20): the guard can only be as
// strong as the firmware that runs it, and those holes are closed by build settings,
// not by code. Anything the audit cannot evaluate is reported as unknown, never as
// closed: a board passes only on what the audit could read and prove.
package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Status of one check.
type Status string

// The three answers a check can give.
const (
	Closed  Status = "closed"  // the setting closes the hole
	Open    Status = "open"    // the hole exists in this build
	Unknown Status = "unknown" // the audit could not tell; treat as open until resolved
)

// Check is one audited setting.
type Check struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Status   Status `json:"status"`
	Evidence string `json:"evidence"`
	Attack   string `json:"attack"`
	Fix      string `json:"fix"`
}

// Report is the result of auditing one board.
type Report struct {
	Port    string  `json:"port"`
	Board   string  `json:"board"`
	Checks  []Check `json:"checks"`
	Score   string  `json:"score"`
	Verdict string  `json:"verdict"`
}

// Count returns how many checks have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Find returns the check with the given id.
func (r *Report) Find(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// Options are the command-line choices of `fieldseal audit`.
type Options struct {
	Port      string // "", "stm32", "esp32" or "rp2"
	Manifest  string // frozen manifest; default: the board's manifest.py / FROZEN_MANIFEST
	Sdkconfig string // extra sdkconfig fragment applied last (esp32)
}

// Ports the audit knows.
var Ports = []string{"stm32", "esp32", "rp2"}

// ErrUsage marks errors caused by the invocation (bad --port, ambiguity, not a board
// directory); errors.Is(err, ErrUsage) tells them from I/O errors.
var ErrUsage = errors.New("bad invocation")

type usageError struct{ msg string }

func (e usageError) Error() string        { return e.msg }
func (e usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// Run audits the board in dir. An error means the audit could not run at all (missing
// directory, unreadable file, unknown or conflicting port); problems inside files are
// reported as unknown checks instead.
func Run(dir string, opt Options) (*Report, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("board directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	b, err := loadBoard(dir, opt)
	if err != nil {
		return nil, err
	}
	r := &Report{Port: b.port, Board: b.name}
	r.Checks = b.checks()
	closed := r.Count(Closed)
	r.Score = fmt.Sprintf("%d/%d", closed, len(r.Checks))
	open, unknown := r.Count(Open), r.Count(Unknown)
	switch {
	case open == 0 && unknown == 0:
		r.Verdict = fmt.Sprintf("hardened: all %d checks closed", len(r.Checks))
	case open == 0:
		r.Verdict = fmt.Sprintf("not proven: %d check(s) unknown, resolve them before shipping", unknown)
	default:
		r.Verdict = fmt.Sprintf("not hardened: %d open, %d unknown — a person with physical access can bypass the guard", open, unknown)
	}
	return r, nil
}

// board is everything read from the board directory.
type board struct {
	dir, name  string
	port, chip string
	chipWhere  string
	portDir    string // MicroPython port directory if the board sits in a MicroPython tree
	mpyDir     string

	hs       *headerSet
	defaults map[string]portDefault
	bv       *buildVars

	sc        *sdkconfig
	parts     []partition
	partsErr  string // why the partition table is unknown
	partsFile string // evidence: file name, or "port default ..."
	partsNote string // for modelled port tables: what they lack

	ms           *manifestSet
	manifestNote string // how the manifest was chosen

	otp     map[string]any // rp2350 otp.json, if present
	otpErr  string
	otpFile string
}

func (b *board) rel(p string) string {
	if r, err := filepath.Rel(b.dir, p); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return filepath.ToSlash(p)
}

// readOpt reads a board file; absent is fine, unreadable is an error.
func readOpt(path string) (string, bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		return "", false, err
	}
	return string(data), true, nil
}

var (
	rpCmake    = regexp.MustCompile(`\b(PICO_BOARD|PICO_PLATFORM|RP2\w*)\b`)
	espCmake   = regexp.MustCompile(`\b(IDF_TARGET|SDKCONFIG_DEFAULTS)\b`)
	stmMk      = regexp.MustCompile(`(?m)^\s*MCU_SERIES\s*[:?+]?=`)
	esp32Names = regexp.MustCompile(`(?i)esp32[-_]?([a-z]\d)?`)
)

// detectPort applies the rules: sdkconfig/partitions*.csv → esp32; cmake naming
// PICO_BOARD/RP2 → rp2; mk with MCU_SERIES → stm32.
func detectPort(dir, mk, cmake string) (found []string, why []string) {
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
	if stmMk.MatchString(mk) {
		found, why = append(found, "stm32"), append(why, "stm32 (mpconfigboard.mk sets MCU_SERIES)")
	}
	return found, why
}

func loadBoard(dir string, opt Options) (*board, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b := &board{dir: abs, name: filepath.Base(abs), hs: newHeaderSet(), bv: newBuildVars()}
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
	found, why := detectPort(abs, mk, cm)
	switch {
	case opt.Port != "":
		known := false
		for _, p := range Ports {
			known = known || p == opt.Port
		}
		if !known {
			return nil, usagef("--port %q: want one of %s", opt.Port, strings.Join(Ports, ", "))
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
	// Boards kept inside a MicroPython tree: ports/<port>/boards/<BOARD>.
	if parent := filepath.Dir(abs); filepath.Base(parent) == "boards" {
		pd := filepath.Dir(parent)
		if filepath.Base(pd) == b.port && filepath.Base(filepath.Dir(pd)) == "ports" {
			b.portDir, b.mpyDir = pd, filepath.Dir(filepath.Dir(pd))
		}
	}
	if hasMk {
		b.bv.parseMk("mpconfigboard.mk", mk)
	}
	if hasCm {
		b.bv.parseCmake("mpconfigboard.cmake", cm)
	}
	// -D flags from the build files come before the header, as on the compiler line.
	for _, d := range b.bv.defines {
		md := &macroDef{value: d.value, where: d.where}
		if d.cond {
			md.unknown = d.where + ": defined inside a conditional block of the build file"
		}
		b.hs.defs[d.name] = md
	}
	// Board variants (mpconfigvariant_*.cmake/.mk/.h) can change any setting and are
	// chosen at build time: the audit does not pick one, so what they could override
	// is unknown rather than assumed.
	if ents, err := os.ReadDir(abs); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "mpconfigvariant") {
				b.hs.opaque = append(b.hs.opaque, e.Name()+": board variant not evaluated")
			}
		}
	}
	b.detectChip(hdr)
	if hasHdr {
		b.hs.preprocess("mpconfigboard.h", hdr, func(name string) (string, string, bool) {
			p := filepath.Join(abs, filepath.FromSlash(name))
			if !strings.HasPrefix(p, abs+string(filepath.Separator)) {
				return "", "", false
			}
			t, ok, err := readOpt(p)
			if err != nil || !ok {
				return "", "", false
			}
			return t, b.rel(p), true
		}, 0)
	} else {
		b.hs.opaque = append(b.hs.opaque, "mpconfigboard.h: missing")
	}
	b.defaults = portDefaults(b.port, b.chip)
	if err := b.loadManifest(opt); err != nil {
		return nil, err
	}
	if b.port == "esp32" {
		if err := b.loadESP(opt); err != nil {
			return nil, err
		}
		b.refineESP32Defaults()
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

// detectChip finds the SoC: esp32 from IDF_TARGET / MCU name; rp2 from PICO_BOARD,
// PICO_PLATFORM or MICROPY_HW_MCU_NAME.
func (b *board) detectChip(hdr string) {
	mcu := ""
	if m := regexp.MustCompile(`(?m)^\s*#\s*define\s+MICROPY_HW_MCU_NAME\s+"([^"]*)"`).FindStringSubmatch(stripComments(hdr)); m != nil {
		mcu = m[1]
	}
	switch b.port {
	case "esp32":
		if t, ok := b.bv.get("IDF_TARGET"); ok && t != "" {
			b.chip, b.chipWhere = strings.ToLower(t), b.bv.where["IDF_TARGET"]
		} else if m := esp32Names.FindString(mcu); m != "" {
			b.chip, b.chipWhere = strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(m)), "mpconfigboard.h (MICROPY_HW_MCU_NAME \""+mcu+"\")"
		} else {
			b.chip, b.chipWhere = "esp32", "IDF_TARGET not set: ESP-IDF default esp32"
		}
		if _, ok := esp32Chips[b.chip]; !ok {
			b.chipWhere += " (unknown chip " + b.chip + ", modelled as esp32)"
			b.chip = "esp32"
		}
	case "rp2":
		plat, _ := b.bv.get("PICO_PLATFORM")
		board, _ := b.bv.get("PICO_BOARD")
		pl, bd, mc := strings.ToLower(plat), strings.ToLower(board), strings.ToLower(mcu)
		switch {
		case strings.HasPrefix(pl, "rp2350"):
			b.chip, b.chipWhere = pl, b.bv.where["PICO_PLATFORM"]+" (PICO_PLATFORM "+plat+")"
		case pl == "rp2040":
			b.chip, b.chipWhere = "rp2040", b.bv.where["PICO_PLATFORM"]+" (PICO_PLATFORM rp2040)"
		case strings.Contains(mc, "rp2350"):
			b.chip, b.chipWhere = "rp2350", "mpconfigboard.h (MICROPY_HW_MCU_NAME \""+mcu+"\")"
		case strings.Contains(mc, "rp2040"):
			b.chip, b.chipWhere = "rp2040", "mpconfigboard.h (MICROPY_HW_MCU_NAME \""+mcu+"\")"
		case bd == "pico" || bd == "pico_w" || strings.Contains(bd, "rp2040"):
			b.chip, b.chipWhere = "rp2040", b.bv.where["PICO_BOARD"]+" (PICO_BOARD "+board+")"
		case strings.HasPrefix(bd, "pico2") || strings.Contains(bd, "rp2350"):
			b.chip, b.chipWhere = "rp2350", b.bv.where["PICO_BOARD"]+" (PICO_BOARD "+board+")"
		default:
			b.chip, b.chipWhere = "", "neither PICO_PLATFORM, PICO_BOARD nor MICROPY_HW_MCU_NAME names RP2040 or RP2350"
		}
	}
}

func (b *board) manifestEnv() manifestEnv {
	vars := map[string]string{"BOARD_DIR": b.dir, "PORT_DIR": b.portDir, "MPY_DIR": b.mpyDir}
	if b.mpyDir != "" {
		vars["MPY_LIB_DIR"] = filepath.Join(b.mpyDir, "lib", "micropython-lib")
	}
	return manifestEnv{vars: vars, port: b.port, rel: b.rel}
}

// loadManifest picks the frozen manifest: --manifest, then FROZEN_MANIFEST /
// MICROPY_FROZEN_MANIFEST from the build file, then BOARD_DIR/manifest.py, then the
// port's default manifest.
func (b *board) loadManifest(opt Options) error {
	env := b.manifestEnv()
	path := ""
	switch {
	case opt.Manifest != "":
		path = opt.Manifest
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("--manifest: %w", err)
		}
		b.manifestNote = "--manifest " + path
	default:
		for _, v := range []string{"FROZEN_MANIFEST", "MICROPY_FROZEN_MANIFEST"} {
			if val, ok := b.bv.get(v); ok && val != "" {
				val = strings.NewReplacer("${MICROPY_BOARD_DIR}", "$(BOARD_DIR)", "${MICROPY_PORT_DIR}", "$(PORT_DIR)",
					"${CMAKE_CURRENT_LIST_DIR}", "$(BOARD_DIR)", "${MICROPY_DIR}", "$(MPY_DIR)").Replace(val)
				full, why, ok := env.expand(val, b.dir)
				if !ok {
					if modelledPortManifest(b.port, val) != nil {
						b.ms = &manifestSet{packages: map[string]string{}, requires: map[string]string{}}
						b.ms.apply(mfCall{name: "include", args: []mfVal{{s: val}}, where: b.bv.where[v]}, b.dir, env, 0, map[string]bool{})
						b.manifestNote = b.bv.where[v] + " " + v
						return nil
					}
					b.ms = &manifestSet{packages: map[string]string{}, requires: map[string]string{},
						unresolved: []string{b.bv.where[v] + ": " + v + " not resolved: " + why}}
					return nil
				}
				path, b.manifestNote = full, b.bv.where[v]+" "+v
				break
			}
		}
		if path == "" {
			if _, err := os.Stat(filepath.Join(b.dir, "manifest.py")); err == nil {
				path, b.manifestNote = filepath.Join(b.dir, "manifest.py"), "manifest.py"
			}
		}
	}
	if path == "" {
		// No manifest of the board's own: the port builds with its default manifest.
		b.ms = &manifestSet{packages: map[string]string{}, requires: map[string]string{}}
		b.ms.apply(mfCall{name: "include", args: []mfVal{{s: "$(PORT_DIR)/boards/manifest.py"}},
			where: "no board manifest"}, b.dir, env, 0, map[string]bool{})
		b.manifestNote = "port default manifest"
		return nil
	}
	// The board's own manifest must be readable (exit 2 otherwise); a missing one is
	// reported by loadManifest as unknown, like any include that cannot be followed.
	if f, err := os.Open(path); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("manifest: %w", err)
	}
	b.ms = loadManifest(path, env)
	return nil
}

// loadESP reads sdkconfig fragments in SDKCONFIG_DEFAULTS order (sdkconfig.board first
// if the list does not name it), then --sdkconfig, then the partition table.
func (b *board) loadESP(opt Options) error {
	b.sc = newSdkconfig()
	var frags []string
	if v, ok := b.bv.vars["SDKCONFIG_DEFAULTS"]; ok {
		if w, c := b.bv.cond["SDKCONFIG_DEFAULTS"]; c {
			b.sc.problems = append(b.sc.problems, w+": SDKCONFIG_DEFAULTS changed inside a conditional block")
		}
		frags = v
	}
	listed := false
	for _, f := range frags {
		listed = listed || strings.HasSuffix(f, "sdkconfig.board")
	}
	if !listed {
		if _, err := os.Stat(filepath.Join(b.dir, "sdkconfig.board")); err == nil {
			frags = append([]string{"${MICROPY_BOARD_DIR}/sdkconfig.board"}, frags...)
		}
	}
	for _, f := range frags {
		if strings.Contains(f, "${SDKCONFIG_DEFAULTS}") {
			continue
		}
		path, portFrag, ok := b.resolveFragment(f)
		if !ok {
			if portFrag {
				continue // modelled: MicroPython's own fragments set no CONFIG_SECURE_* option
			}
			b.sc.problems = append(b.sc.problems, "mpconfigboard.cmake: sdkconfig fragment "+f+" cannot be resolved")
			continue
		}
		text, exists, err := readOpt(path)
		if err != nil {
			return err
		}
		if !exists {
			if portFrag {
				continue
			}
			b.sc.problems = append(b.sc.problems, "sdkconfig fragment "+b.rel(path)+" does not exist")
			continue
		}
		b.sc.parse(b.rel(path), text)
	}
	if opt.Sdkconfig != "" {
		text, err := os.ReadFile(opt.Sdkconfig)
		if err != nil {
			return fmt.Errorf("--sdkconfig: %w", err)
		}
		b.sc.parse(b.rel(opt.Sdkconfig), string(text))
	}
	// partition table
	name := esp32DefaultPartitionTable
	nameWhere := "port default (MicroPython " + MicroPythonVersion + ", ports/esp32/boards/sdkconfig.base:106-107)"
	if v, ok := b.sc.vals["CONFIG_PARTITION_TABLE_CUSTOM_FILENAME"]; ok && v != "" {
		name, nameWhere = v, b.sc.where["CONFIG_PARTITION_TABLE_CUSTOM_FILENAME"]
	}
	var cands []string
	if filepath.IsAbs(name) {
		cands = []string{name}
	} else {
		cands = []string{filepath.Join(b.dir, name), filepath.Join(b.dir, filepath.Base(name))}
		if b.portDir != "" {
			cands = append(cands, filepath.Join(b.portDir, name))
		}
	}
	for _, c := range cands {
		text, exists, err := readOpt(c)
		if err != nil {
			return err
		}
		if !exists {
			continue
		}
		b.partsFile = b.rel(c)
		parts, perr := parsePartitions(b.rel(c), text)
		if perr != nil {
			b.partsErr = perr.Error()
		}
		b.parts = parts
		return nil
	}
	if note, ok := esp32PortPartitionTables[filepath.Base(name)]; ok {
		b.partsFile = "port partition table ports/esp32/" + filepath.Base(name) + " (MicroPython " + MicroPythonVersion + " model; selected by " + nameWhere + ")"
		b.partsNote = note
		return nil
	}
	b.partsErr = nameWhere + ": partition table " + name + " not found"
	return nil
}

// resolveFragment maps an SDKCONFIG_DEFAULTS entry to a file. portFrag reports that the
// entry names one of the port's own fragments.
func (b *board) resolveFragment(f string) (path string, portFrag, ok bool) {
	r := strings.NewReplacer("${MICROPY_BOARD_DIR}", b.dir, "${CMAKE_CURRENT_LIST_DIR}", b.dir)
	f = r.Replace(f)
	if strings.Contains(f, "${MICROPY_PORT_DIR}") {
		if b.portDir == "" {
			return "", true, false
		}
		f = strings.ReplaceAll(f, "${MICROPY_PORT_DIR}", b.portDir)
		return f, true, true
	}
	if strings.Contains(f, "${") {
		return "", false, false
	}
	if filepath.IsAbs(f) {
		return f, strings.HasPrefix(f, b.portDir+string(filepath.Separator)) && b.portDir != "", true
	}
	// relative entries are relative to the port directory in MicroPython's CMake
	if strings.HasPrefix(f, "boards/") {
		if b.portDir == "" {
			return "", true, false
		}
		return filepath.Join(b.portDir, f), true, true
	}
	return filepath.Join(b.dir, f), false, true
}

// loadOTP reads otp.json (the file given to `picotool otp load`), if the board has one.
func (b *board) loadOTP() error {
	p := filepath.Join(b.dir, "otp.json")
	text, ok, err := readOpt(p)
	if err != nil || !ok {
		return err
	}
	b.otpFile = "otp.json"
	v, perr := parseJSONObject(text)
	if perr != nil {
		b.otpErr = "otp.json: " + perr.Error()
		return nil
	}
	b.otp = v
	return nil
}

// sortedKeys is used for stable evidence strings.
func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
