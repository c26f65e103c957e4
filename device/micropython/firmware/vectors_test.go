package firmware_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
	"github.com/fieldseal/fieldseal/internal/testenv"
)

// vectorSets are the harness scripts that run the shared cross-language vectors
// (testdata/vectors) through the guard, with their folders: mpharness runs the same
// scripts under WebAssembly (TestFSChainVectorsInMicroPython and the others).
// oneFile marks the sets kept in one vectors.json (one result line per vector in it).
var vectorSets = []struct {
	script, dir string
	oneFile     bool
}{
	{"vectors.py", "fschain", false},
	{"storagevec.py", filepath.Join("fschain", "storage"), false},
	{"wirevectors.py", "wire", true},
	{"lpvectors.py", "lpwan", true},
}

// vectorFiles copies the JSON files of a vector folder no larger than maxSize into a fresh
// folder (the storage vectors write beside them) and returns it with their names.
func vectorFiles(t *testing.T, set string, maxSize int64) (string, []string) {
	t.Helper()
	from := filepath.Join(testenv.RepoRoot(), "testdata", "vectors", set)
	files, _ := filepath.Glob(filepath.Join(from, "*.json"))
	dir := t.TempDir()
	var names []string
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() > maxSize {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(f))
	}
	if len(names) == 0 {
		t.Fatalf("no vectors in %s", from)
	}
	return dir, names
}

// wantResults is the least number of result lines for the files of a set.
func wantResults(oneFile bool, names []string) int {
	if oneFile {
		return 2 // vectors.json holds several vectors
	}
	return len(names)
}

// vectorResults checks a script's JSON lines: at least want of them, every one ok.
func vectorResults(t *testing.T, script, out string, want int) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: bad line %q", script, line)
		}
		n++
		if r["ok"] != true {
			t.Errorf("%s: %v", script, r)
		}
	}
	if n < want || n == 0 {
		t.Fatalf("%s: %d results, want %d\n%s", script, n, want, out)
	}
	t.Logf("%s: %d vectors", script, n)
}

// The shared vectors on the unix build of the pinned tree (64-bit, the guard's modules
// compiled by the build itself from device/micropython/fieldseal).
func TestSharedVectorsOnUnixBuild(t *testing.T) {
	mp := firmware.Unix(t, firmware.UnixOptions{FrozenManifest: filepath.Join("testdata", "unixfrozen", "manifest.py")})
	guard, _ := filepath.Abs("..")
	harness := filepath.Join(guard, "harness")
	for _, v := range vectorSets {
		dir, names := vectorFiles(t, v.dir, 1<<30)
		cmd := exec.Command(mp, filepath.Join(harness, v.script), dir)
		cmd.Env = append(os.Environ(), "MICROPYPATH="+guard+":"+harness)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", v.script, err, out)
		}
		vectorResults(t, v.script, string(out), wantResults(v.oneFile, names))
	}
}

// The shared vectors on the Cortex-M3 build (32-bit: timestamps and u64 fields are big
// integers there), through the guard as board images freeze it (examples/boards/guard.py,
// the LPWAN profile included). Vector files larger than
// 20 KB (chain-100.json, 124 KB of JSON) do not fit a meter's heap as one JSON document
// and are left to the unix and WebAssembly runs.
func TestSharedVectorsOnCortexM3(t *testing.T) {
	fw := labImage(t)
	harness := filepath.Join("..", "harness")
	for _, v := range vectorSets {
		src, names := vectorFiles(t, v.dir, 20<<10)
		files := map[string][]byte{}
		for _, n := range names {
			files["v/"+n], _ = os.ReadFile(filepath.Join(src, n))
		}
		for _, s := range []string{v.script, "fsverify.py"} {
			files["h/"+s], _ = os.ReadFile(filepath.Join(harness, s))
		}
		dir := t.TempDir()
		flash, err := firmware.Disk(dir, "flash.img", 256<<10)
		if err != nil {
			t.Fatal(err)
		}
		lfsWrite(t, flash, 4096, files)
		vm := firmware.Start(t, fw, firmware.RunOptions{Dir: dir})
		out, err := vm.Exec("import sys\nsys.argv[:] = ['"+v.script+"', '/flash/v']\nsys.path.append('/flash/h')\nimport "+strings.TrimSuffix(v.script, ".py")+"\n", 300*time.Second)
		vm.Kill()
		if err != nil {
			t.Fatalf("%s: %v\n%s", v.script, err, vm.Output())
		}
		vectorResults(t, v.script, out, wantResults(v.oneFile, names))
	}
}
