package audit

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func run(t *testing.T, dir string, opt Options) *Report {
	t.Helper()
	r, err := Run(filepath.Join("testdata", dir), opt)
	if err != nil {
		t.Fatalf("Run(%s): %v", dir, err)
	}
	return r
}

func wantStatus(t *testing.T, r *Report, id string, want Status) Check {
	t.Helper()
	c, ok := r.Find(id)
	if !ok {
		t.Fatalf("%s: no check %q", r.Board, id)
	}
	if c.Status != want {
		t.Errorf("%s: check %s = %s, want %s (evidence: %s)", r.Board, id, c.Status, want, c.Evidence)
	}
	return c
}

func allClosed(t *testing.T, r *Report) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Status != Closed {
			t.Errorf("%s: %s is %s: %s", r.Board, c.ID, c.Status, c.Evidence)
		}
	}
}

// The figures quoted in the final report and docs/HARDENING.md.
func TestFixtureScores(t *testing.T) {
	for _, tc := range []struct{ dir, port, score string }{
		{"pyboard_default", "stm32", "4/18"},
		{"stm32_hardened", "stm32", "18/18"},
		{"include_chain", "stm32", "18/18"},
		{"include_unresolved", "stm32", "15/18"},
		{"malformed_if", "stm32", "3/18"},
		{"esp32_default", "esp32", "6/22"},
		{"esp32_secure", "esp32", "22/22"},
		{"malformed_sdkconfig", "esp32", "19/22"},
		{"malformed_csv", "esp32", "20/22"},
		{"rp2040_pico", "rp2", "17/18"},
	} {
		r := run(t, tc.dir, Options{})
		if r.Port != tc.port || r.Score != tc.score {
			t.Errorf("%s: port %s score %s, want %s %s (%s)", tc.dir, r.Port, r.Score, tc.port, tc.score, r.Verdict)
		}
	}
}

func TestThreatD17_DefaultPyboardHasREPLs(t *testing.T) {
	r := run(t, "pyboard_default", Options{})
	c := wantStatus(t, r, "repl-usb", Open)
	if !strings.Contains(c.Evidence, "mpconfigboard.h:10") {
		t.Errorf("repl-usb evidence should point at the board line: %s", c.Evidence)
	}
	wantStatus(t, r, "repl-uart", Open)
	c = wantStatus(t, r, "compiler", Open)
	if !strings.Contains(c.Evidence, "port default (MicroPython 1.29") {
		t.Errorf("compiler evidence should name the port default: %s", c.Evidence)
	}
	wantStatus(t, r, "webrepl-mip", Closed) // stm32's port manifest has no networking bundle
}

func TestThreatD17_ESP32DefaultREPLAndWebREPL(t *testing.T) {
	r := run(t, "esp32_default", Options{})
	wantStatus(t, r, "repl-usb", Open) // esp32s3: USB OTG CDC on by default
	wantStatus(t, r, "repl-uart", Open)
	c := wantStatus(t, r, "webrepl-mip", Open)
	if !strings.Contains(c.Evidence, "bundle-networking") {
		t.Errorf("webrepl evidence: %s", c.Evidence)
	}
}

func TestThreatD18_DefaultPyboardSafeBootSDBootNoGuard(t *testing.T) {
	r := run(t, "pyboard_default", Options{})
	wantStatus(t, r, "safe-boot", Open)
	c := wantStatus(t, r, "sd-boot", Open)
	if !strings.Contains(c.Evidence, "MICROPY_HW_SDCARD_MOUNT_AT_BOOT = MICROPY_HW_ENABLE_SDCARD") {
		t.Errorf("sd-boot should show the default follows ENABLE_SDCARD: %s", c.Evidence)
	}
	wantStatus(t, r, "guard-boot", Open)
	wantStatus(t, r, "guard-frozen", Open)
	wantStatus(t, r, "state-slots", Open)
}

func TestThreatD18_HardenedSTM32AllClosed(t *testing.T) {
	r := run(t, "stm32_hardened", Options{})
	allClosed(t, r)
	if !strings.HasPrefix(r.Verdict, "hardened") {
		t.Errorf("verdict %q", r.Verdict)
	}
}

func TestThreatD18_ESP32StockBootIsOpen(t *testing.T) {
	r := run(t, "esp32_default", Options{})
	c := wantStatus(t, r, "guard-boot", Open)
	if !strings.Contains(c.Evidence, "stock MicroPython _boot.py") {
		t.Errorf("evidence: %s", c.Evidence)
	}
}

func TestThreatD18_NestedIncludesResolved(t *testing.T) {
	r := run(t, "include_chain", Options{})
	allClosed(t, r)
	c := wantStatus(t, r, "guard-frozen", Closed)
	if !strings.Contains(c.Evidence, "parts/more/manifest.py:1") {
		t.Errorf("guard-frozen evidence should cite the nested manifest: %s", c.Evidence)
	}
	c = wantStatus(t, r, "manifest-frozen", Closed)
	if !strings.Contains(c.Evidence, "parts/more/manifest.py:5") {
		t.Errorf("manifest-frozen evidence: %s", c.Evidence)
	}
}

func TestThreatD18_UnresolvedIncludeIsUnknown(t *testing.T) {
	r := run(t, "include_unresolved", Options{})
	for _, id := range []string{"guard-frozen", "manifest-frozen", "webrepl-mip"} {
		c := wantStatus(t, r, id, Unknown)
		if !strings.Contains(c.Evidence, "manifest.py:3") {
			t.Errorf("%s evidence should cite the include line: %s", id, c.Evidence)
		}
	}
	if r.Count(Closed) == len(r.Checks) {
		t.Fatal("an unresolvable include must never pass")
	}
}

func TestThreatD19_USBMassStorage(t *testing.T) {
	wantStatus(t, run(t, "pyboard_default", Options{}), "usb-msc", Open)
	wantStatus(t, run(t, "stm32_hardened", Options{}), "usb-msc", Closed)
	wantStatus(t, run(t, "esp32_default", Options{}), "usb-msc", Closed) // esp32 default MSC (0)
}

func TestThreatD20_ESP32WithoutSecureBoot(t *testing.T) {
	r := run(t, "esp32_default", Options{})
	for _, id := range []string{"secure-boot", "flash-encryption", "download-mode", "vfs-encrypted", "bootloader-jump"} {
		wantStatus(t, r, id, Open)
	}
}

func TestThreatD20_ESP32WithSecureBoot(t *testing.T) {
	r := run(t, "esp32_secure", Options{})
	allClosed(t, r)
}

func TestThreatD20_ESP32DevelopmentModeEncryptionIsOpen(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "esp32_secure"), dir)
	frag := filepath.Join(dir, "extra.sdkconfig")
	os.WriteFile(frag, []byte("CONFIG_SECURE_FLASH_ENCRYPTION_MODE_RELEASE=n\nCONFIG_SECURE_FLASH_ENCRYPTION_MODE_DEVELOPMENT=y\n"), 0o644)
	r, err := Run(dir, Options{Sdkconfig: frag})
	if err != nil {
		t.Fatal(err)
	}
	c := wantStatus(t, r, "flash-encryption", Open)
	if !strings.Contains(c.Evidence, "development mode") {
		t.Errorf("evidence: %s", c.Evidence)
	}
}

func TestThreatD20_RP2040SecureBootImpossible(t *testing.T) {
	r := run(t, "rp2040_pico", Options{})
	c := wantStatus(t, r, "secure-boot", Open)
	if !strings.Contains(c.Fix, "use RP2350 with OTP secure boot or an external secure element") {
		t.Errorf("fix: %s", c.Fix)
	}
	if !strings.Contains(c.Evidence, "RP2040") {
		t.Errorf("evidence: %s", c.Evidence)
	}
	// everything else on this board is closed: the chip itself is the open item
	if r.Count(Open) != 1 {
		t.Errorf("want exactly the secure-boot check open, got %d open", r.Count(Open))
	}
}

func TestThreatD20_RP2ChipUnknown(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "rp2040_pico"), dir)
	os.WriteFile(filepath.Join(dir, "mpconfigboard.cmake"), []byte("set(PICO_BOARD \"acme_custom\")\n"), 0o644)
	// Without otp.json secure boot is open on either chip: the audit says so.
	c := wantStatus(t, mustRun(t, dir, Options{}), "secure-boot", Open)
	if !strings.Contains(c.Evidence, "same answer for RP2040 and RP2350") {
		t.Errorf("evidence: %s", c.Evidence)
	}
	// With an otp.json enabling secure boot the answer depends on the chip: unknown.
	os.WriteFile(filepath.Join(dir, "otp.json"), []byte(`{"crit1": {"secure_boot_enable": 1}}`), 0o644)
	c = wantStatus(t, mustRun(t, dir, Options{}), "secure-boot", Unknown)
	if !strings.Contains(c.Evidence, "depends on the chip") {
		t.Errorf("evidence: %s", c.Evidence)
	}
}

func TestThreatD20_BootloaderJumpOnUSBBoards(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "rp2040_pico"), dir)
	os.WriteFile(filepath.Join(dir, "mpconfigboard.h"), []byte(
		"#define MICROPY_HW_ENABLE_USBDEV (1)\n#define MICROPY_HW_USB_CDC_1200BPS_TOUCH (1)\n"), 0o644)
	r := mustRun(t, dir, Options{})
	c := wantStatus(t, r, "bootloader-jump", Open)
	if !strings.Contains(c.Evidence, "1200BPS_TOUCH") {
		t.Errorf("evidence: %s", c.Evidence)
	}
}

func TestMalformedUnterminatedIfNeverPasses(t *testing.T) {
	r := run(t, "malformed_if", Options{})
	c := wantStatus(t, r, "repl-usb", Unknown)
	if !strings.Contains(c.Evidence, "mpconfigboard.h:8") || !strings.Contains(c.Evidence, "unterminated") {
		t.Errorf("evidence should say where: %s", c.Evidence)
	}
	for _, id := range []string{"compiler", "safe-boot", "sd-boot", "usb-msc", "native-code", "guard-boot"} {
		wantStatus(t, r, id, Unknown)
	}
}

func TestMalformedSdkconfigNeverPasses(t *testing.T) {
	r := run(t, "malformed_sdkconfig", Options{})
	for _, id := range []string{"secure-boot", "flash-encryption", "download-mode"} {
		c := wantStatus(t, r, id, Unknown)
		if !strings.Contains(c.Evidence, "sdkconfig.board:2") {
			t.Errorf("%s evidence: %s", id, c.Evidence)
		}
	}
}

func TestMalformedPartitionCSVNeverPasses(t *testing.T) {
	r := run(t, "malformed_csv", Options{})
	for _, id := range []string{"vfs-encrypted", "state-slots"} {
		c := wantStatus(t, r, id, Unknown)
		if !strings.Contains(c.Evidence, "partitions-fs.csv:3") {
			t.Errorf("%s evidence: %s", id, c.Evidence)
		}
	}
}

func TestPortDetectionErrors(t *testing.T) {
	if _, err := Run(filepath.Join("testdata", "ambiguous"), Options{}); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := Run(filepath.Join("testdata", "stm32_hardened"), Options{Port: "esp32"}); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "conflicts") {
		t.Errorf("conflicting --port: %v", err)
	}
	if _, err := Run(filepath.Join("testdata", "stm32_hardened"), Options{Port: "samd"}); !errors.Is(err, ErrUsage) {
		t.Errorf("unknown --port: %v", err)
	}
	if _, err := Run(filepath.Join("testdata", "does-not-exist"), Options{}); err == nil {
		t.Error("missing dir: no error")
	}
	if _, err := Run(t.TempDir(), Options{}); !errors.Is(err, ErrUsage) {
		t.Errorf("empty dir: %v", err)
	}
	// --port that agrees with detection is fine
	if _, err := Run(filepath.Join("testdata", "stm32_hardened"), Options{Port: "stm32"}); err != nil {
		t.Errorf("matching --port: %v", err)
	}
}

func TestUnreadableFileIsError(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root: permission bits do not stop reads; TestUnreadableBoardFilesAreErrors covers this")
		return
	}
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "stm32_hardened"), dir)
	os.Chmod(filepath.Join(dir, "mpconfigboard.h"), 0)
	if _, err := Run(dir, Options{}); err == nil {
		t.Error("unreadable mpconfigboard.h: no error")
	}
	os.Chmod(filepath.Join(dir, "mpconfigboard.h"), 0o644)
	os.Chmod(filepath.Join(dir, "manifest.py"), 0)
	if _, err := Run(dir, Options{}); err == nil {
		t.Error("unreadable manifest.py: no error")
	}
}

// Every check must say which attack it answers (a threat row or a reference item)
// and how to fix it.
func TestEveryCheckCitesAThreat(t *testing.T) {
	cite := regexp.MustCompile(`\b(D1[7-9]|D20|D7|A\d+|§2\.\d)\b`)
	for _, dir := range []string{"pyboard_default", "esp32_default", "rp2040_pico"} {
		for _, c := range run(t, dir, Options{}).Checks {
			if !cite.MatchString(c.Attack) {
				t.Errorf("%s/%s: attack cites no threat: %q", dir, c.ID, c.Attack)
			}
			if c.Fix == "" || c.Evidence == "" || c.Title == "" {
				t.Errorf("%s/%s: empty field", dir, c.ID)
			}
		}
	}
}

func TestManifestOverrideFlag(t *testing.T) {
	r := run(t, "pyboard_default", Options{Manifest: filepath.Join("testdata", "stm32_hardened", "manifest.py")})
	wantStatus(t, r, "guard-frozen", Closed)
	if _, err := Run(filepath.Join("testdata", "pyboard_default"), Options{Manifest: "nope.py"}); err == nil {
		t.Error("missing --manifest: no error")
	}
}

// The templates under examples/boards must pass the audit they are written for.
// The example boards: every check closed except what the templates cannot close. stm32
// (and stm32-lorawan, which includes its header):
// mem-access (the adapter needs the stm module, which needs machine.mem*: MEMX (0) does not
// link with it, so the template leaves MEMX on). stm32 and rp2350: state-slots, because their
// boot files call main() with the default adapter, which keeps the slots as files; their
// FIELDSEAL_STATE_* defines are not read by the guard and must not count.
func TestExampleBoardsAllClosed(t *testing.T) {
	for _, tc := range []struct {
		dir, port string
		open      []string
	}{
		{"stm32", "stm32", []string{"mem-access", "state-slots"}}, {"esp32", "esp32", nil}, {"rp2350", "rp2", []string{"state-slots"}},
		{"stm32-lorawan", "stm32", []string{"mem-access", "state-slots"}}, // the stm32 template's settings, a modem on UART 2
	} {
		r := mustRun(t, filepath.Join("..", "examples", "boards", tc.dir), Options{})
		if r.Port != tc.port {
			t.Errorf("%s: port %s", tc.dir, r.Port)
		}
		if len(r.BuildErrors) != 0 {
			t.Errorf("%s does not build: %q", tc.dir, r.BuildErrors)
		}
		if tc.open == nil {
			allClosed(t, r)
			continue
		}
		for _, id := range tc.open {
			c := wantStatus(t, r, id, Open)
			switch id {
			case "mem-access":
				// the template keeps machine.mem* (the stm module needs them to link)
				if !strings.Contains(c.Evidence, "MICROPY_PY_MACHINE_MEMX") && !strings.Contains(c.Evidence, "MICROPY_PY_STM") {
					t.Errorf("%s mem-access evidence: %s", tc.dir, c.Evidence)
				}
			case "state-slots":
				if !strings.Contains(c.Evidence, "no slots=") || !strings.Contains(c.Evidence, "is not read by the guard") {
					t.Errorf("%s state-slots evidence: %s", tc.dir, c.Evidence)
				}
			}
		}
		if r.Count(Open) != len(tc.open) || r.Count(Unknown) != 0 {
			t.Errorf("%s example: only %v may be open: %s", tc.dir, tc.open, r.Verdict)
		}
	}
}

// A state define without a boot file that passes the slot device is not a state location:
// the hardened fixture with main() called on the default adapter has state-slots open.
func TestStateDefineAloneIsNotAStateLocation(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "stm32_hardened"), dir)
	boot := "import sys\nsys.path[:] = [\".frozen\"]\nimport fieldseal.boot\n\nfieldseal.boot.main()  # slots= left out\n"
	if err := os.WriteFile(filepath.Join(dir, "fsboot.py"), []byte(boot), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, dir, Options{})
	c := wantStatus(t, r, "state-slots", Open)
	if !strings.Contains(c.Evidence, "FIELDSEAL_STATE_BKPSRAM (1) is not read by the guard") || !strings.Contains(c.Fix, "slots=") {
		t.Errorf("evidence %q, fix %q", c.Evidence, c.Fix)
	}
	wantStatus(t, run(t, "stm32_hardened", Options{}), "state-slots", Closed)
}

func mustRun(t *testing.T, dir string, opt Options) *Report {
	t.Helper()
	r, err := Run(dir, opt)
	if err != nil {
		t.Fatalf("Run(%s): %v", dir, err)
	}
	return r
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A board kept inside a MicroPython tree resolves $(PORT_DIR)/$(MPY_DIR) and the port's
// sdkconfig fragments from the real files instead of the 1.29 model.
func TestBoardInsideMicroPythonTree(t *testing.T) {
	root := t.TempDir()
	port := filepath.Join(root, "ports", "esp32")
	board := filepath.Join(port, "boards", "ACME_S3")
	copyDir(t, filepath.Join("testdata", "esp32_default"), board)
	write := func(p, s string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(port, "boards", "manifest.py"), "freeze(\"$(PORT_DIR)/modules\")\ninclude(\"$(MPY_DIR)/extmod/asyncio\")\n")
	write(filepath.Join(port, "modules", "_boot.py"), "import gc\ngc.collect()\n")
	write(filepath.Join(root, "extmod", "asyncio", "manifest.py"), "package(\"asyncio\")\n")
	write(filepath.Join(port, "boards", "sdkconfig.base"), "CONFIG_SECURE_BOOT_V2_ENABLED=y\n")
	r := mustRun(t, board, Options{})
	c := wantStatus(t, r, "guard-boot", Open)
	if strings.Contains(c.Evidence, "model") || !strings.Contains(c.Evidence, "does not import fieldseal.boot") {
		t.Errorf("guard-boot should read the real stock _boot.py: %s", c.Evidence)
	}
	wantStatus(t, r, "webrepl-mip", Closed) // this tree's port manifest has no networking
	c = wantStatus(t, r, "secure-boot", Closed)
	if !strings.Contains(c.Evidence, "sdkconfig.base:1") {
		t.Errorf("secure-boot evidence: %s", c.Evidence)
	}
}

// pins.csv is on every port's boards; only partition tables point to esp32.
func TestPinsCSVDoesNotMeanESP32(t *testing.T) {
	if r := run(t, "pyboard_default", Options{}); r.Port != "stm32" {
		t.Errorf("port %s", r.Port)
	}
}

func TestThreatD18_SafeBootHookVariants(t *testing.T) {
	for _, tc := range []struct {
		hdr  string
		want Status
	}{
		{"#define MICROPY_HW_HAS_SWITCH (1)\n#define MICROPY_BOARD_BEFORE_SOFT_RESET_LOOP acme_no_button_modes\n", Closed},
		{"#define MICROPY_HW_HAS_SWITCH (1)\n#define MICROPY_BOARD_BEFORE_SOFT_RESET_LOOP boardctrl_before_soft_reset_loop\n", Open},
		{"#define MICROPY_HW_HAS_SWITCH (ACME_HAS_BUTTON)\n", Unknown}, // vendor macro the audit never saw
		{"#define ACME_HAS_BUTTON 0\n#define MICROPY_HW_HAS_SWITCH (ACME_HAS_BUTTON)\n", Closed},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "mpconfigboard.mk"), []byte("MCU_SERIES = f4\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "mpconfigboard.h"), []byte(tc.hdr), 0o644)
		wantStatus(t, mustRun(t, dir, Options{}), "safe-boot", tc.want)
	}
	// mboot keeps its own button modes unless the board replaces them
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mpconfigboard.mk"), []byte("MCU_SERIES = f4\nUSE_MBOOT ?= 1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "mpconfigboard.h"), []byte("#define MICROPY_HW_HAS_SWITCH (0)\n"), 0o644)
	wantStatus(t, mustRun(t, dir, Options{}), "safe-boot", Open)
}

// A board file that exists but cannot be read is an error (exit 2), not an unknown:
// shown with directories in place of files, which even root cannot read as files.
func TestUnreadableBoardFilesAreErrors(t *testing.T) {
	for _, tc := range []struct{ fixture, file string }{
		{"stm32_hardened", "mpconfigboard.h"},
		{"stm32_hardened", "mpconfigboard.mk"},
		{"esp32_secure", "partitions-fs.csv"},
	} {
		dir := t.TempDir()
		copyDir(t, filepath.Join("testdata", tc.fixture), dir)
		os.Remove(filepath.Join(dir, tc.file))
		os.Mkdir(filepath.Join(dir, tc.file), 0o755)
		if _, err := Run(dir, Options{}); err == nil {
			t.Errorf("%s/%s unreadable: no error", tc.fixture, tc.file)
		}
	}
}

// The default build is what a board without --variant builds: other variant files
// change nothing in it, and are only named where they touch a setting.
func TestBoardVariantsDefaultBuildIsEvaluated(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "pyboard_default"), dir)
	os.WriteFile(filepath.Join(dir, "mpconfigvariant_DP.mk"), []byte("CFLAGS += -DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_DOUBLE\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "mpconfigvariant_NOCOMP.mk"), []byte("CFLAGS += -DMICROPY_ENABLE_COMPILER=0\n"), 0o644)
	r := mustRun(t, dir, Options{})
	c := wantStatus(t, r, "compiler", Open) // the port default: the default build has the compiler
	if !strings.Contains(c.Evidence, "mpconfigvariant_NOCOMP.mk sets MICROPY_ENABLE_COMPILER") {
		t.Errorf("evidence should name the variant that differs: %s", c.Evidence)
	}
	wantStatus(t, r, "repl-uart", Open) // defined by the board itself
	r = mustRun(t, dir, Options{Variant: "NOCOMP"})
	c = wantStatus(t, r, "compiler", Closed)
	if !strings.Contains(c.Evidence, "mpconfigvariant_NOCOMP.mk:1") || r.Variant != "NOCOMP" {
		t.Errorf("variant %q evidence: %s", r.Variant, c.Evidence)
	}
	if _, err := Run(dir, Options{Variant: "NOPE"}); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "DP, NOCOMP") {
		t.Errorf("unknown variant: %v", err)
	}
}

// Settings that pass every check but do not build, each one found by building the board
// templates with the real stm32 port (docs/HARDENING.md, "Built with"): the report names
// them as build errors and its verdict says the board does not build, whatever the score.
func TestBoardsThatDoNotBuildAreReported(t *testing.T) {
	hardened := filepath.Join("testdata", "stm32_hardened")
	if r := mustRun(t, hardened, Options{}); len(r.BuildErrors) != 0 {
		t.Fatalf("stm32_hardened builds, yet: %v", r.BuildErrors)
	}
	edit := func(t *testing.T, src, file string, f func(string) string) string {
		dir := t.TempDir()
		copyDir(t, src, dir)
		p := filepath.Join(dir, file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f(string(data))), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		name, src, file string
		f               func(string) string
		want            string
	}{
		{"boot file named like the guard's boot module", hardened, "manifest.py",
			func(s string) string {
				return strings.Replace(s, `module("fsboot.py"`, `module("fieldseal_boot.py"`, 1)
			},
			"same C name frozen_module_fieldseal_boot"},
		{"a module frozen twice", hardened, "manifest.py",
			func(s string) string { return s + "module(\"fsboot.py\", base_path=\"$(BOARD_DIR)\")\n" },
			"both freeze fsboot.py"},
		{"machine.mem* off with the stm module on", hardened, "mpconfigboard.h",
			func(s string) string {
				return strings.Replace(s, "#define MICROPY_PY_STM ", "#define MICROPY_PY_STM_UNUSED ", 1)
			},
			"with the stm module on"},
		{"compiler off, frozen source loader left on", hardened, "mpconfigboard.h",
			func(s string) string {
				return regexp.MustCompile(`(?m)^#(undef|define)\s+MICROPY_MODULE_FROZEN_STR\b.*$`).ReplaceAllString(s, "")
			},
			"-DMICROPY_MODULE_FROZEN_STR"},
		{"esp32 compiler off without the REPL entry points", filepath.Join("testdata", "esp32_secure"), "mpconfigboard.cmake",
			func(s string) string { return strings.Replace(s, "set(MICROPY_SOURCE_BOARD", "set(UNUSED_SOURCE", 1) },
			"pyexec_friendly_repl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := edit(t, tc.src, tc.file, tc.f)
			if tc.name == "boot file named like the guard's boot module" {
				if err := os.Rename(filepath.Join(dir, "fsboot.py"), filepath.Join(dir, "fieldseal_boot.py")); err != nil {
					t.Fatal(err)
				}
			}
			r := mustRun(t, dir, Options{})
			if len(r.BuildErrors) != 1 || !strings.Contains(r.BuildErrors[0], tc.want) {
				t.Fatalf("build errors %q, want one naming %q", r.BuildErrors, tc.want)
			}
			if !strings.HasPrefix(r.Verdict, "does not build") {
				t.Errorf("verdict %q", r.Verdict)
			}
		})
	}
}

// rp2 takes the filesystem size from CMake (ports/rp2/CMakeLists.txt:570-582): set only in a
// header it links, but the linker's FLASH/FLASH_FS regions get no length (measured on the
// real rp2 port), so the audit warns.
func TestRP2FilesystemSizeInHeaderWarns(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("..", "examples", "boards", "rp2350"), dir)
	hasWarning := func() bool {
		for _, w := range mustRun(t, dir, Options{}).Warnings {
			if strings.Contains(w, "MICROPY_HW_FLASH_STORAGE_BYTES is set in a header") {
				return true
			}
		}
		return false
	}
	if hasWarning() {
		t.Fatal("the template sets the size in mpconfigboard.cmake, yet the audit warns")
	}
	cm := filepath.Join(dir, "mpconfigboard.cmake")
	data, err := os.ReadFile(cm)
	if err != nil {
		t.Fatal(err)
	}
	data = regexp.MustCompile(`(?m)^set\(MICROPY_HW_FLASH_STORAGE_BYTES.*$`).ReplaceAll(data, nil)
	h, err := os.ReadFile(filepath.Join(dir, "mpconfigboard.h"))
	if err != nil {
		t.Fatal(err)
	}
	h = append(h, "#define MICROPY_HW_FLASH_STORAGE_BYTES (2816 * 1024)\n"...)
	if os.WriteFile(cm, data, 0o644) != nil || os.WriteFile(filepath.Join(dir, "mpconfigboard.h"), h, 0o644) != nil {
		t.Fatal("cannot write the board")
	}
	if !hasWarning() {
		t.Fatal("no warning for a filesystem size set only in mpconfigboard.h")
	}
}
