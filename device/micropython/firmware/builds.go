package firmware

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

// jobs is make's -j: the machine's cores (CI runs on 2).
func jobs() string { return "-j" + strconv.Itoa(runtime.NumCPU()) }

// BuildMpyCross builds (or finds in the cache) mpy-cross from MICROPYTHON_DIR and returns
// the path of the executable.
func BuildMpyCross(progress func(string)) (string, error) {
	tree, err := TreeDir()
	if err != nil {
		return "", err
	}
	dir, err := cached(buildSpec{
		kind: "mpy-cross",
		key:  []string{toolVersion("cc")},
		make: func(out string, log io.Writer) error {
			return runMake(log, filepath.Join(tree, "mpy-cross"), jobs(), "BUILD="+filepath.Join(out, "build"))
		},
		result: "build/mpy-cross",
	}, progress)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "build", "mpy-cross"), nil
}

// UnixOptions configures a unix-port build.
type UnixOptions struct {
	// FrozenManifest is a manifest.py frozen into the executable (empty: none). Relative
	// paths inside it are relative to the manifest's folder, which is part of the cache key.
	FrozenManifest string
	// Inputs are further files or folders the manifest freezes from (their content goes
	// into the cache key), e.g. the guard's package folder.
	Inputs []string
	// Flags are extra make variables (NAME=VALUE), after the defaults UnixFlags.
	Flags []string
	// TLS builds the `tls` module in, on the system's mbedTLS (UnixTLSFlags). A separate
	// cached build: only the tests of the guard's TLS uplink need it.
	TLS bool
}

// UnixFlags are the make variables every unix build uses: no TLS, btree or FFI (they need
// libraries the machines lack), and nothing else changed: real sockets, a real VFS.
var UnixFlags = []string{"MICROPY_PY_SSL=0", "MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0"}

// UnixTLSFlags replace MICROPY_PY_SSL=0 in a UnixOptions.TLS build. The pinned tree ships
// lib/mbedtls empty, so the `tls` module (extmod/modtls_mbedtls.c, which also builds
// against mbedTLS 2.28) is compiled against the system's mbedTLS: its headers and their
// configuration, linked as shared libraries, with unixtls/mbedtls_user_config.h on top (no
// debug output: it would print the session's secrets). MICROPY_SSL_MBEDTLS stays 0 for
// make, which would otherwise compile the empty lib/mbedtls with MicroPython's own
// configuration, and is 1 for the compiler, which selects the mbedTLS code in extmod.
func UnixTLSFlags() []string {
	return []string{"MICROPY_PY_SSL=1", "MICROPY_SSL_AXTLS=0", "MICROPY_SSL_MBEDTLS=0",
		// make hands CFLAGS to the shell: \" keeps the quotes the #include needs
		`CFLAGS_EXTRA=-DMICROPY_SSL_MBEDTLS=1 -DMBEDTLS_USER_CONFIG_FILE=\"` + mbedTLSUserConfig() + `\"`,
		"LDFLAGS_EXTRA=-lmbedtls -lmbedx509 -lmbedcrypto"}
}

// mbedTLSUserConfig is the path of unixtls/mbedtls_user_config.h (absolute).
func mbedTLSUserConfig() string {
	return filepath.Join(testenv.RepoRoot(), "device", "micropython", "firmware", "unixtls", "mbedtls_user_config.h")
}

// ErrNoMbedTLS is returned for a TLS build when the compiler finds no mbedTLS headers.
var ErrNoMbedTLS = errors.New("mbedTLS headers not found: the unix build with TLS needs them (apt-get install libmbedtls-dev)")

// mbedTLSVersion is the system mbedTLS the compiler sees ("mbed TLS 2.28.3"), part of a
// TLS build's cache key: an upgraded library rebuilds.
func mbedTLSVersion() (string, error) {
	cmd := exec.Command("cc", "-E", "-dM", "-include", "mbedtls/version.h", "-x", "c", "/dev/null")
	out, err := cmd.Output()
	if err != nil {
		return "", ErrNoMbedTLS
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "#define MBEDTLS_VERSION_STRING_FULL "); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", ErrNoMbedTLS
}

// BuildUnix builds (or finds in the cache) the unix port and returns the path of the
// micropython executable.
func BuildUnix(o UnixOptions, progress func(string)) (string, error) {
	tree, err := TreeDir()
	if err != nil {
		return "", err
	}
	mpy, err := BuildMpyCross(progress)
	if err != nil {
		return "", err
	}
	flags := append([]string{}, UnixFlags...)
	key := []string{toolVersion("cc")}
	inputs := append([]string{}, o.Inputs...)
	if o.TLS {
		v, err := mbedTLSVersion()
		if err != nil {
			return "", err
		}
		flags = append(UnixTLSFlags(), UnixFlags[1:]...) // [0] is MICROPY_PY_SSL=0
		key = append(key, v)
		inputs = append(inputs, mbedTLSUserConfig())
	}
	flags = append(flags, o.Flags...)
	if o.FrozenManifest != "" {
		m, err := filepath.Abs(o.FrozenManifest)
		if err != nil {
			return "", err
		}
		flags = append(flags, "FROZEN_MANIFEST="+m)
		inputs = append(inputs, filepath.Dir(m))
	}
	dir, err := cached(buildSpec{
		kind:   "unix",
		key:    append(key, flags...),
		inputs: inputs,
		make: func(out string, log io.Writer) error {
			args := append([]string{jobs(), "BUILD=" + filepath.Join(out, "build"), "MICROPY_MPYCROSS=" + mpy}, flags...)
			return runMake(log, filepath.Join(tree, "ports", "unix"), args...)
		},
		result: "build/micropython",
	}, progress)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "build", "micropython"), nil
}

// QEMUOptions configures a qemu-port build for MPS2_AN385 (Cortex-M3).
type QEMUOptions struct {
	// BoardDir is the board folder (default: the fieldseal board in this package's
	// qemu/FIELDSEAL_AN385: the AN385 plus littlefs block devices on host files, a frozen boot
	// file run first like stm32's MICROPY_BOARD_FROZEN_BOOT_FILE, then boot.py, main.py, REPL).
	BoardDir string
	// FrozenManifest is frozen into the image (default: the port's test manifest).
	FrozenManifest string
	// Inputs are further files or folders the manifest freezes from (cache key).
	Inputs []string
	// HeapBytes is the MicroPython heap (default 112 KiB, a PYBv1.1's). On the fieldseal
	// board it is the largest heap: RunOptions.HeapBytes chooses a smaller one per power-on.
	HeapBytes int
	// Flags are extra make variables (NAME=VALUE).
	Flags []string
}

// DefaultHeap is the heap of a QEMU build when QEMUOptions.HeapBytes is 0.
const DefaultHeap = 112 << 10

// QEMUFirmware is a built qemu image.
type QEMUFirmware struct {
	ELF       string // firmware.elf, run with qemu-system-arm -kernel
	Map       string // the linker map
	HeapBytes int
	Machine   string // qemu -machine
}

// BoardDir is the fieldseal qemu board (absolute).
func BoardDir() string {
	return filepath.Join(testenv.RepoRoot(), "device", "micropython", "firmware", "qemu", "FIELDSEAL_AN385")
}

// BuildQEMU builds (or finds in the cache) a qemu MPS2_AN385 image.
func BuildQEMU(o QEMUOptions, progress func(string)) (*QEMUFirmware, error) {
	tree, err := TreeDir()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("arm-none-eabi-gcc"); err != nil {
		return nil, fmt.Errorf("arm-none-eabi-gcc not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")
	}
	mpy, err := BuildMpyCross(progress)
	if err != nil {
		return nil, err
	}
	board := o.BoardDir
	if board == "" {
		board = BoardDir()
	}
	board, err = filepath.Abs(board)
	if err != nil {
		return nil, err
	}
	heap := o.HeapBytes
	if heap == 0 {
		heap = DefaultHeap
	}
	flags := []string{"BOARD=" + filepath.Base(board), "BOARD_DIR=" + board, "MICROPY_HEAP_SIZE=" + strconv.Itoa(heap)}
	flags = append(flags, o.Flags...)
	inputs := append([]string{board}, o.Inputs...)
	if o.FrozenManifest != "" {
		m, err := filepath.Abs(o.FrozenManifest)
		if err != nil {
			return nil, err
		}
		flags = append(flags, "FROZEN_MANIFEST="+m)
		inputs = append(inputs, filepath.Dir(m))
	}
	dir, err := cached(buildSpec{
		kind:   "qemu",
		key:    append([]string{toolVersion("arm-none-eabi-gcc")}, flags...),
		inputs: inputs,
		make: func(out string, log io.Writer) error {
			args := append([]string{jobs(), "BUILD=" + filepath.Join(out, "build"), "MICROPY_MPYCROSS=" + mpy}, flags...)
			return runMake(log, filepath.Join(tree, "ports", "qemu"), args...)
		},
		result: "build/firmware.elf",
	}, progress)
	if err != nil {
		return nil, err
	}
	return &QEMUFirmware{
		ELF:       filepath.Join(dir, "build", "firmware.elf"),
		Map:       filepath.Join(dir, "build", "firmware.map"),
		HeapBytes: heap,
		Machine:   "mps2-an385",
	}, nil
}

// progressFor writes build progress to stderr (visible while go test runs) and the test log.
func progressFor(t testing.TB) func(string) {
	return func(s string) {
		fmt.Fprintln(os.Stderr, s)
		t.Log(s)
	}
}

// need skips (or fails under CI=true) when the tree is absent.
func need(t testing.TB) {
	t.Helper()
	if _, err := TreeDir(); err != nil {
		testenv.SkipOrFail(t, err.Error())
	}
}

// MpyCross returns mpy-cross built from MICROPYTHON_DIR (skips without it, fails in CI).
func MpyCross(t testing.TB) string {
	t.Helper()
	need(t)
	p, err := BuildMpyCross(progressFor(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Unix returns the unix-port micropython executable built with o.
func Unix(t testing.TB, o UnixOptions) string {
	t.Helper()
	need(t)
	p, err := BuildUnix(o, progressFor(t))
	if errors.Is(err, ErrNoMbedTLS) {
		testenv.SkipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// QEMU returns a qemu MPS2_AN385 image built with o (skips without the tree, the ARM
// toolchain or qemu-system-arm; fails in CI).
func QEMU(t testing.TB, o QEMUOptions) *QEMUFirmware {
	t.Helper()
	need(t)
	for _, tool := range []string{"arm-none-eabi-gcc", "qemu-system-arm"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, tool+" not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
		}
	}
	fw, err := BuildQEMU(o, progressFor(t))
	if err != nil {
		t.Fatal(err)
	}
	return fw
}
