// Package firmware builds real MicroPython firmware from a MicroPython source tree for tests:
// mpy-cross, the unix port and the qemu port (Cortex-M3, MPS2_AN385), with frozen manifests.
//
// The tree comes from MICROPYTHON_DIR (.ci/run unpacks the pinned archive in
// ../shared/micropython and sets it); without it the test helpers skip with a reason, and
// fail under CI=true. The tree is only read: every build runs out of tree.
//
// Builds are cached by a content hash of their inputs (the whole source tree, the frozen
// manifest, every file the caller names as an input, the make flags and the toolchain) under
// FIELDSEAL_FIRMWARE_CACHE (default os.UserCacheDir()/fieldseal/firmware). A lock file per
// build makes concurrent test processes build each firmware once: the others wait and reuse
// it. A finished build is renamed into place, so a killed build never leaves a half result.
//
//	mpy := firmware.MpyCross(t)                                           // path of mpy-cross
//	mp := firmware.Unix(t, firmware.UnixOptions{FrozenManifest: m})       // path of micropython
//	fw := firmware.QEMU(t, firmware.QEMUOptions{FrozenManifest: m, HeapBytes: 64 << 10})
//	vm := firmware.Start(t, fw, firmware.RunOptions{Dir: dir})            // serial console
//	out, err := vm.Exec("print(1+1)")                                     // raw REPL
package firmware

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvTree names the environment variable holding the MicroPython source tree.
const EnvTree = "MICROPYTHON_DIR"

// EnvCache names the environment variable that overrides the cache folder.
const EnvCache = "FIELDSEAL_FIRMWARE_CACHE"

// ErrNoTree is returned when MICROPYTHON_DIR is unset or does not hold a MicroPython tree.
var ErrNoTree = errors.New("MICROPYTHON_DIR is not set (point it at a MicroPython source tree, e.g. an unpacked ../shared/micropython/micropython-*.tar.gz)")

// TreeDir returns the MicroPython source tree named by MICROPYTHON_DIR, checked to look like one.
func TreeDir() (string, error) {
	dir := os.Getenv(EnvTree)
	if dir == "" {
		return "", ErrNoTree
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, p := range []string{"py/mpconfig.h", "mpy-cross/Makefile"} {
		if _, err := os.Stat(filepath.Join(abs, p)); err != nil {
			return "", fmt.Errorf("%s=%s is not a MicroPython source tree (no %s)", EnvTree, dir, p)
		}
	}
	return abs, nil
}

// CacheDir returns the folder where builds are kept.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder (set %s): %w", EnvCache, err)
	}
	return filepath.Join(base, "fieldseal", "firmware"), nil
}

var (
	treeHashMu sync.Mutex
	treeHashes = map[string]string{}
)

// treeID is the content hash of every file in the tree (paths and bytes), computed once per
// process: a tree unpacked again elsewhere keeps its builds.
func treeID(tree string) (string, error) {
	treeHashMu.Lock()
	defer treeHashMu.Unlock()
	if id, ok := treeHashes[tree]; ok {
		return id, nil
	}
	h := sha256.New()
	if err := hashPath(h, tree, ""); err != nil {
		return "", err
	}
	id := hex.EncodeToString(h.Sum(nil))
	treeHashes[tree] = id
	return id, nil
}

// hashPath adds a file, or every file under a folder (sorted, with relative names), to h.
// Build folders inside a tree (build*, __pycache__) are skipped.
func hashPath(h io.Writer, root, label string) error {
	st, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return hashFile(h, root, label)
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (strings.HasPrefix(name, "build") || name == "__pycache__" || name == ".git" || name == "node_modules") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, p := range files {
		rel, _ := filepath.Rel(root, p)
		if err := hashFile(h, p, label+"/"+filepath.ToSlash(rel)); err != nil {
			return err
		}
	}
	return nil
}

func hashFile(h io.Writer, p, label string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(h, "file %q\n", label)
	n, err := io.Copy(h, f)
	fmt.Fprintf(h, "\nlen %d\n", n)
	return err
}

// toolVersion identifies a compiler for the cache key (a toolchain upgrade rebuilds).
func toolVersion(name string) string {
	out, err := exec.Command(name, "--version").Output()
	if err != nil {
		return name + ": absent"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return name + ": " + line
}

// buildSpec is one cached build: what goes into its key and how to make it.
type buildSpec struct {
	kind   string   // "mpy-cross", "unix", "qemu": first part of the cache folder's name
	key    []string // flags, tool versions: anything besides files that changes the result
	inputs []string // files or folders whose content changes the result
	// make runs the build, writing its results into out (a fresh folder); log receives
	// the build's output.
	make func(out string, log io.Writer) error
	// result is the path (relative to the build's folder) that must exist once built.
	result string
}

// cached returns the folder of the build described by s, building it first if no finished
// build with the same key exists. progress receives a line when a build starts, every 15 s
// while it runs (or while another process holds the lock) and when it ends.
func cached(s buildSpec, progress func(string)) (string, error) {
	root, err := CacheDir()
	if err != nil {
		return "", err
	}
	tree, err := TreeDir()
	if err != nil {
		return "", err
	}
	id, err := treeID(tree)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", tree, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "fieldseal firmware v1\nkind %s\ntree %s\n", s.kind, id)
	for _, k := range s.key {
		fmt.Fprintf(h, "key %q\n", k)
	}
	for i, in := range s.inputs {
		if err := hashPath(h, in, fmt.Sprintf("input%d", i)); err != nil {
			return "", fmt.Errorf("firmware input %s: %w", in, err)
		}
	}
	name := s.kind + "-" + hex.EncodeToString(h.Sum(nil))[:20]
	final := filepath.Join(root, name)
	if done(final, s.result) {
		return final, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(filepath.Join(root, name+".lock"), name, progress)
	if err != nil {
		return "", err
	}
	defer unlock()
	if done(final, s.result) { // built by another process while this one waited
		return final, nil
	}
	tmp, err := os.MkdirTemp(root, name+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	logPath := filepath.Join(tmp, "build.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	progress(fmt.Sprintf("firmware: building %s (%s; log %s)", s.kind, name, logPath))
	start := time.Now()
	stop := ticker(func() {
		progress(fmt.Sprintf("firmware: still building %s (%s)", s.kind, time.Since(start).Round(time.Second)))
	})
	err = s.make(tmp, logf)
	stop()
	if err != nil {
		return "", fmt.Errorf("building %s: %w\n%s", s.kind, err, tail(logPath, 40))
	}
	if _, err := os.Stat(filepath.Join(tmp, s.result)); err != nil {
		return "", fmt.Errorf("building %s: no %s after the build\n%s", s.kind, s.result, tail(logPath, 40))
	}
	os.RemoveAll(final) // a folder left without its result by an older, broken version
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	progress(fmt.Sprintf("firmware: built %s in %s", s.kind, time.Since(start).Round(time.Second)))
	return final, nil
}

func done(dir, result string) bool {
	_, err := os.Stat(filepath.Join(dir, result))
	return err == nil
}

// lock takes an exclusive flock on path, saying every 15 s that it still waits.
func lock(path, name string, progress func(string)) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		progress(fmt.Sprintf("firmware: waiting for another process building %s", name))
		start := time.Now()
		stop := ticker(func() {
			progress(fmt.Sprintf("firmware: still waiting for %s (%s)", name, time.Since(start).Round(time.Second)))
		})
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		stop()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// ticker calls fn every 15 s until the returned stop is called.
func ticker(fn func()) (stop func()) {
	t := time.NewTicker(15 * time.Second)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				fn()
			case <-quit:
				return
			}
		}
	}()
	return func() { t.Stop(); close(quit) }
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runMake runs make in dir with args, its output going to log.
func runMake(log io.Writer, dir string, args ...string) error {
	fmt.Fprintf(log, "$ make -C %s %s\n", dir, strings.Join(args, " "))
	cmd := exec.Command("make", append([]string{"-C", dir}, args...)...)
	cmd.Stdout = log
	cmd.Stderr = log
	return cmd.Run()
}
