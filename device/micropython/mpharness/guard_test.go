package mpharness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

func guardFiles(t *testing.T) []string {
	var files []string
	filepath.WalkDir(filepath.Join(Dir(), "fieldseal"), func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".py") {
			files = append(files, p)
		}
		return err
	})
	if len(files) < 10 {
		t.Fatalf("guard files: %v", files)
	}
	return files
}

// Every module of the guard compiles to bytecode with mpy-cross (what freezing does),
// including the port adapters that cannot run in the WebAssembly interpreter.
func TestGuardCompilesWithMpyCross(t *testing.T) {
	node, _ := testenv.Node(t)
	files := guardFiles(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(Dir(), "harness", "mpycross.mjs"), "--check"}, files...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		var r struct {
			File string `json:"file"`
			OK   bool   `json:"ok"`
			Err  string `json:"err"`
		}
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		n++
		if !r.OK {
			t.Errorf("%s: %s", r.File, r.Err)
		}
	}
	if err != nil || n != len(files) {
		t.Fatalf("mpy-cross: %v (%d of %d files): %s", err, n, len(files), out.String())
	}
}

// builtins the guard may import: MicroPython built-in modules by their u-names (which a
// file on storage cannot shadow) and non-extensible built-ins; plus its own package and
// the frozen manifest module.
var allowedImports = map[string]bool{
	"uhashlib": true, "uos": true, "usys": true, "ujson": true, "ubinascii": true, "utime": true,
	"uio": true, "urandom": true, "ustruct": true, "umachine": true, "vfs": true, "micropython": true,
	"stm": true, "pyb": true, "esp32": true, "rp2": true, "_fieldseal_manifest": true,
	"usocket": true, "uselect": true, "tls": true, "ussl": true, "network": true,
	"gc": true, // built-in, not extensible (py/builtinimport.c): no file can shadow it
	// a board's own adapter, frozen; imported only after the boot file trimmed sys.path
	// to frozen modules (D23)
	"fieldseal_port": true,
}

var importRE = regexp.MustCompile(`^\s*(?:import\s+([\w.]+)|from\s+([\w.]+)\s+import\b)`)

// The guard imports nothing outside MicroPython's built-ins (by names that cannot be
// shadowed from storage, threat D5) and its own package.
func TestGuardImportsOnlyBuiltins(t *testing.T) {
	for _, f := range guardFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inDoc := false
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Count(line, `"""`) == 1 {
				inDoc = !inDoc
			}
			if inDoc || strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			m := importRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			mod := m[1] + m[2]
			if mod == "fieldseal" || strings.HasPrefix(mod, "fieldseal.") || allowedImports[mod] {
				continue
			}
			t.Errorf("%s:%d imports %q (not a built-in by an unshadowable name)", filepath.Base(f), i+1, mod)
		}
	}
}
