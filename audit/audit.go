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
	Port    string `json:"port"`
	Board   string `json:"board"`
	Variant string `json:"variant,omitempty"` // the board variant audited; "" is the default build
	// Resolver says where macro values and the frozen set came from: MicroPython's own
	// tools (the C preprocessor, tools/manifestfile.py) or the built-in evaluator.
	Resolver string   `json:"resolver,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// BuildErrors are settings with which the firmware does not compile or link: the
	// checks then describe a firmware that cannot be made.
	BuildErrors []string `json:"build_errors,omitempty"`
	Checks      []Check  `json:"checks"`
	Score       string   `json:"score"`
	Verdict     string   `json:"verdict"`
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
	Manifest  string // frozen manifest; default: what the board's build selects
	Sdkconfig string // extra sdkconfig fragment applied last (esp32)
	Variant   string // board variant (BOARD_VARIANT); "" evaluates the default build
	// Tools chooses how values are resolved: ToolsAuto asks MicroPython's own tools
	// when the board sits in a MicroPython tree and they run here; ToolsBuiltin never
	// does; ToolsRequire fails when they cannot be used.
	Tools ToolsMode
	// MicroPythonLib is the micropython-lib checkout manifestfile.py resolves require()
	// with; default <tree>/lib/micropython-lib.
	MicroPythonLib string
}

// ToolsMode selects the resolver (see Options.Tools).
type ToolsMode int

// Resolver choices.
const (
	ToolsAuto ToolsMode = iota
	ToolsBuiltin
	ToolsRequire
)

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
	b, err := loadBoard(dir, opt, "")
	if err != nil {
		return nil, err
	}
	checks := b.checks()
	if b.port == "rp2" && b.chip == "" {
		checks, err = rp2EitherChip(dir, opt, b, checks)
		if err != nil {
			return nil, err
		}
	}
	b.annotateCauses(checks)
	if w := b.flashLayoutWarning(); w != "" {
		b.warnings = append(b.warnings, w)
	}
	r := &Report{Port: b.port, Board: b.name, Variant: b.variant, Resolver: b.resolver, Warnings: b.warnings,
		BuildErrors: b.buildErrors(), Checks: checks}
	closed := r.Count(Closed)
	r.Score = fmt.Sprintf("%d/%d", closed, len(r.Checks))
	open, unknown := r.Count(Open), r.Count(Unknown)
	switch {
	case len(r.BuildErrors) > 0:
		r.Verdict = fmt.Sprintf("does not build: %d build error(s), fix them first; the checks describe a firmware that cannot be made", len(r.BuildErrors))
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

	variant      string              // the variant evaluated ("" = the default build)
	variants     []string            // every variant the board defines
	variantTouch map[string][]string // setting -> variant files (not evaluated) that set it
	warnings     []string
	resolver     string // how macro values were obtained
	real         bool   // hs is the real preprocessor's final macro table
	toolsMode    ToolsMode
	libDir       string // micropython-lib for manifestfile.py

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

// loadESP reads the sdkconfig fragments SDKCONFIG_DEFAULTS lists, in order (ESP-IDF
// reads nothing else: an unlisted sdkconfig.board is not part of the build), then
// --sdkconfig, then the partition table.
func (b *board) loadESP(opt Options) error {
	b.sc = newSdkconfig()
	var frags []string
	if v, ok := b.bv.vars["SDKCONFIG_DEFAULTS"]; ok {
		if w, c := b.bv.cond["SDKCONFIG_DEFAULTS"]; c {
			b.sc.problems = append(b.sc.problems, w+": SDKCONFIG_DEFAULTS changed inside a conditional block")
		}
		frags = v
	} else if len(b.bv.opaque) > 0 {
		b.sc.problems = append(b.sc.problems, "SDKCONFIG_DEFAULTS not found; "+b.bv.opaque[0])
	}
	listed := false
	for _, f := range frags {
		listed = listed || filepath.Base(f) == "sdkconfig.board"
	}
	if !listed {
		if _, err := os.Stat(filepath.Join(b.dir, "sdkconfig.board")); err == nil {
			b.warnings = append(b.warnings, "sdkconfig.board is not listed in SDKCONFIG_DEFAULTS, so ESP-IDF never reads it: "+
				"none of its settings (secure boot, flash encryption, download mode, partition table) is in the build; "+
				"add ${MICROPY_BOARD_DIR}/sdkconfig.board to SDKCONFIG_DEFAULTS in mpconfigboard.cmake")
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
