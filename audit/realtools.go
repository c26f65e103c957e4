package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Asking MicroPython's own tools. When the board sits in a MicroPython tree and a C
// compiler is installed, macro values come from the real preprocessor run over the
// port's configuration headers (py/mpconfig.h → mpconfigport.h → mpconfigboard.h) with
// the board's -D flags and the port's include paths; the frozen set comes from the
// tree's tools/manifestfile.py when python3 is there. The built-in evaluator (cpp.go,
// defaults.go, manifest.go) is the fallback.
//
// The host compiler cannot see the vendor SDKs a port build uses (STM32 HAL, ESP-IDF,
// pico-sdk) when they are not checked out: a missing vendor header is replaced by an
// empty stub, and the few facts the port headers read from those SDKs are given as
// -D flags derived from the board (stm32: the CMSIS device and series macros; esp32:
// the sdkconfig values of the listed fragments and the chip's SOC_* USB capabilities;
// rp2: PICO_RP2040/PICO_RP2350 and PICO_ARM/PICO_RISCV). The report names the
// resolver, and docs/HARDENING.md the stubs.

const toolTimeout = 60 * time.Second

// realToolsMissing says why the real preprocessor cannot be used, or "".
func (b *board) realToolsMissing() string {
	if b.mpyDir == "" {
		return "the board is not inside a MicroPython tree (ports/<port>/boards/<BOARD>)"
	}
	if _, err := os.Stat(filepath.Join(b.mpyDir, "py", "mpconfig.h")); err != nil {
		return b.mpyDir + " has no py/mpconfig.h"
	}
	if _, err := exec.LookPath(ccName()); err != nil {
		return "no C compiler (" + ccName() + ") on PATH"
	}
	if b.port == "rp2" && b.chip == "" {
		return "the rp2 chip is unknown, so the pico-sdk platform macros cannot be set"
	}
	if b.port == "esp32" && b.chip == "" {
		return "the esp32 chip is unknown, so the SoC capabilities cannot be set"
	}
	return ""
}

func ccName() string {
	if cc := os.Getenv("CC"); cc != "" {
		return cc
	}
	return "cc"
}

func (b *board) useRealTools(opt Options) error {
	if opt.Tools == ToolsBuiltin {
		return nil
	}
	if why := b.realToolsMissing(); why != "" {
		if opt.Tools == ToolsRequire {
			return usagef("MicroPython's tools cannot be used: %s", why)
		}
		return nil
	}
	hs, note, err := b.realPreprocess()
	if err != nil {
		if opt.Tools == ToolsRequire {
			return fmt.Errorf("preprocessor: %w", err)
		}
		b.warnings = append(b.warnings, "the C preprocessor could not be used ("+err.Error()+"); values come from the built-in evaluator")
		return nil
	}
	b.hs, b.defaults, b.real = hs, map[string]portDefault{}, true
	b.resolver = "C preprocessor (" + ccName() + " -E -dD over ports/" + b.port + "/mpconfigport.h" + note + ")"
	return nil
}

// realFlags returns the -D/-I flags and an optional forced-include header text that
// stand in for the port's build.
func (b *board) realFlags() (args []string, prelude string) {
	args = []string{"-I" + b.portDir, "-I" + b.mpyDir, "-I" + b.dir}
	var pre strings.Builder
	switch b.port {
	case "stm32":
		mcu, _ := b.bv.get("CMSIS_MCU")
		series, _ := b.bv.get("MCU_SERIES")
		if mcu != "" {
			args = append(args, "-D"+mcu)
		}
		// stm32<series>xx.h (CMSIS device header, not in a plain checkout) defines the
		// series macro that mpconfigboard_common.h tests.
		if series != "" {
			args = append(args, "-DSTM32"+strings.ToUpper(series), "-DSTM32_HAL_H=<stm32"+series+"xx_hal.h>")
		}
		args = append(args, "-DUSE_FULL_LL_DRIVER", "-DUSE_HAL_DRIVER")
	case "esp32":
		ch := esp32Chips[b.chip]
		// esp_idf_version.h: the port's lockfiles pin ESP-IDF v5.5.2 at this release.
		pre.WriteString("#define ESP_IDF_VERSION_VAL(major, minor, patch) ((major << 16) | (minor << 8) | (patch))\n" +
			"#define ESP_IDF_VERSION ESP_IDF_VERSION_VAL(5, 5, 2)\n")
		fmt.Fprintf(&pre, "#define CONFIG_IDF_TARGET \"%s\"\n#define CONFIG_IDF_TARGET_%s 1\n", b.chip, strings.ToUpper(b.chip))
		if ch.riscv {
			pre.WriteString("#define CONFIG_IDF_TARGET_ARCH_RISCV 1\n")
		} else {
			pre.WriteString("#define CONFIG_IDF_TARGET_ARCH_XTENSA 1\n")
		}
		if ch.usbOTG {
			fmt.Fprintf(&pre, "#define SOC_USB_OTG_SUPPORTED 1\n#define SOC_USB_OTG_PERIPH_NUM (%d)\n", ch.otgPeriphs)
		}
		if ch.usbSerial {
			pre.WriteString("#define SOC_USB_SERIAL_JTAG_SUPPORTED 1\n")
		}
		if b.sc != nil {
			for _, k := range sortedKeys(b.sc.vals) {
				v := b.sc.vals[k]
				switch {
				case v == "n":
				case v == "y":
					fmt.Fprintf(&pre, "#define %s 1\n", k)
				case isNumber(v):
					fmt.Fprintf(&pre, "#define %s %s\n", k, v)
				default:
					fmt.Fprintf(&pre, "#define %s %s\n", k, strconv.Quote(v))
				}
			}
		}
	case "rp2":
		if b.chip == "rp2040" {
			pre.WriteString("#define PICO_RP2040 1\n#define PICO_ARM 1\n")
		} else {
			pre.WriteString("#define PICO_RP2350 1\n")
			if strings.Contains(b.chip, "riscv") {
				pre.WriteString("#define PICO_RISCV 1\n")
			} else {
				pre.WriteString("#define PICO_ARM 1\n")
			}
		}
	}
	for _, d := range b.bv.defines {
		name, val := d.name, d.value
		if b.port == "stm32" {
			name, val = b.bv.expandMake(name), b.bv.expandMake(val)
		}
		args = append(args, "-D"+name+"="+val)
	}
	return args, pre.String()
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 0, 64)
	return err == nil
}

var missingHeader = regexp.MustCompile(`fatal error: ([^:\s]+): No such file or directory`)

// realPreprocess runs the preprocessor, stubbing vendor headers that are not in the
// tree, and returns the final macro table.
func (b *board) realPreprocess() (*headerSet, string, error) {
	tmp, err := os.MkdirTemp("", "fieldseal-audit-cpp-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	stubs := filepath.Join(tmp, "stubs")
	if err := os.MkdirAll(stubs, 0o755); err != nil {
		return nil, "", err
	}
	flags, prelude := b.realFlags()
	tu := filepath.Join(tmp, "fieldseal_audit.c")
	pre := filepath.Join(tmp, "fieldseal_audit_sdk.h")
	if err := os.WriteFile(pre, []byte(prelude), 0o644); err != nil {
		return nil, "", err
	}
	// py/mpconfig.h pulls in mpconfigport.h and mpconfigboard.h; a few settings are
	// defaulted in port headers the port's C files include next to it.
	src := "#include \"py/mpconfig.h\"\n"
	switch b.port {
	case "esp32":
		src += "#include \"uart.h\"\n" // MICROPY_HW_ENABLE_UART_REPL (ports/esp32/uart.h)
	case "stm32":
		src += "#include \"boardctrl.h\"\n" // MICROPY_BOARD_BEFORE_SOFT_RESET_LOOP (ports/stm32/boardctrl.h)
	}
	if err := os.WriteFile(tu, []byte(src), 0o644); err != nil {
		return nil, "", err
	}
	var stubbed []string
	for attempt := 0; attempt < 80; attempt++ {
		args := append([]string{"-E", "-dD", "-std=gnu99", "-w", "-include", pre}, flags...)
		args = append(args, "-I"+stubs, tu)
		ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
		cmd := exec.CommandContext(ctx, ccName(), args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		runErr := cmd.Run()
		cancel()
		if m := missingHeader.FindStringSubmatch(errb.String()); m != nil {
			p := filepath.Join(stubs, filepath.FromSlash(m[1]))
			if !strings.HasPrefix(p, stubs+string(filepath.Separator)) {
				return nil, "", fmt.Errorf("cannot stub header %s", m[1])
			}
			if _, err := os.Stat(p); err == nil {
				return nil, "", fmt.Errorf("header %s still missing", m[1])
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return nil, "", err
			}
			stubbed = append(stubbed, m[1])
			continue
		}
		if runErr != nil {
			msg := strings.TrimSpace(errb.String())
			if i := strings.Index(msg, "\n"); i >= 0 {
				msg = msg[:i]
			}
			if out.Len() == 0 || !strings.Contains(errb.String(), "#error") {
				return nil, "", fmt.Errorf("%s: %s", ccName(), msg)
			}
			// An #error from a port header under stubs: the values are not trustworthy.
			return nil, "", fmt.Errorf("the port headers stop with %s", msg)
		}
		hs := b.parseDD(out.Bytes(), tmp)
		note := ""
		if len(stubbed) > 0 {
			note = fmt.Sprintf("; %d vendor header(s) not in the tree stubbed empty", len(stubbed))
		}
		return hs, note, nil
	}
	return nil, "", fmt.Errorf("too many missing headers")
}

var lineMarker = regexp.MustCompile(`^# (\d+) "([^"]*)"`)

// parseDD turns `cc -E -dD` output into the final macro table, each definition with
// the file:line it came from.
func (b *board) parseDD(out []byte, tmp string) *headerSet {
	hs := newHeaderSet()
	hs.complete = true
	file, line := "", 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		t := sc.Text()
		if m := lineMarker.FindStringSubmatch(t); m != nil {
			n, _ := strconv.Atoi(m[1])
			file, line = m[2], n
			continue
		}
		where := b.srcRel(file, tmp) + ":" + strconv.Itoa(line)
		switch {
		case strings.HasPrefix(t, "#define "):
			name, val := splitMacro(strings.TrimPrefix(t, "#define "))
			if strings.Contains(name, "(") {
				break // function-like: never a setting the checks read
			}
			hs.defs[name] = &macroDef{value: strings.TrimSpace(val), where: where}
		case strings.HasPrefix(t, "#undef "):
			name := strings.TrimSpace(strings.TrimPrefix(t, "#undef "))
			hs.defs[name] = &macroDef{where: where, undef: true}
		}
		line++
	}
	return hs
}

func (b *board) srcRel(file, tmp string) string {
	switch {
	case file == "<command-line>" || file == "<built-in>":
		return "compiler command line (board build flags)"
	case strings.HasPrefix(file, tmp):
		return "audit stub for the vendor SDK"
	}
	if r, err := filepath.Rel(b.dir, file); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	if r, err := filepath.Rel(b.mpyDir, file); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return file
}

// manifestDriver runs MicroPython's tools/manifestfile.py in freeze mode and prints the
// frozen files and the require()d names as JSON.
const manifestDriver = `
import json, sys
sys.path.insert(0, sys.argv[1])
import manifestfile as mf
reqs = []
orig = mf.ManifestFile.require
def require(self, name, *a, **k):
    reqs.append(name)
    return orig(self, name, *a, **k)
mf.ManifestFile.require = require
path_vars = {"MPY_DIR": sys.argv[2], "BOARD_DIR": sys.argv[3], "PORT_DIR": sys.argv[4], "MPY_LIB_DIR": sys.argv[5]}
path_vars.update(json.loads(sys.argv[7]))
m = mf.ManifestFile(mf.MODE_FREEZE, path_vars)
try:
    m.execute(sys.argv[6])
except mf.ManifestFileError as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(0)
print(json.dumps({"files": [[f.target_path, f.full_path] for f in m.files()], "requires": reqs}))
`

// realManifest loads the frozen set with tools/manifestfile.py; false means use the
// built-in reader.
func (b *board) realManifest(path string) bool {
	if b.toolsMode == ToolsBuiltin || b.mpyDir == "" {
		return false
	}
	tools := filepath.Join(b.mpyDir, "tools")
	if _, err := os.Stat(filepath.Join(tools, "manifestfile.py")); err != nil {
		return false
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		return false
	}
	lib := b.libDir
	if lib == "" {
		lib = filepath.Join(b.mpyDir, "lib", "micropython-lib")
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	extra, _ := json.Marshal(b.manifestPathVars())
	out, err := exec.CommandContext(ctx, py, "-c", manifestDriver, tools, b.mpyDir, b.dir, b.portDir, lib, path, string(extra)).Output()
	if err != nil {
		b.warnings = append(b.warnings, "tools/manifestfile.py failed ("+err.Error()+"); the built-in manifest reader was used")
		return false
	}
	var res struct {
		Error    string      `json:"error"`
		Files    [][2]string `json:"files"`
		Requires []string    `json:"requires"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return false
	}
	if res.Error != "" {
		b.warnings = append(b.warnings, "tools/manifestfile.py: "+res.Error+"; the built-in manifest reader was used")
		return false
	}
	where := "tools/manifestfile.py (" + b.rel(path) + ")"
	ms := newManifestSet()
	ms.root, ms.files = path, []string{where}
	for _, f := range res.Files {
		ms.frozen = append(ms.frozen, frozenItem{name: f[0], src: f[1], where: where})
		if i := strings.Index(f[0], "/"); i > 0 {
			ms.packages[f[0][:i]] = where
		}
	}
	for _, r := range res.Requires {
		ms.requires[r] = where
	}
	b.ms = ms
	b.manifestNote += " via " + where
	return true
}
