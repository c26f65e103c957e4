package manifest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/manifest"
	mpycross "github.com/fieldseal/fieldseal/tools/mpy-cross"
)

// The example app as built (.mpy from the WebAssembly mpy-cross) and the frozen manifest
// module import and run under MicroPython's WebAssembly port, which loads .mpy v6 like the
// MCU ports. The module is also compiled with mpy-cross, as freezing it does.
func TestBuildOutputRunsUnderMicroPython(t *testing.T) {
	node, modules := testenv.Node(t)
	b := mustBuild(t, exampleSrc(t), nil)
	frozen := filepath.Join(t.TempDir(), manifest.FrozenFile)
	data, _ := os.ReadFile(filepath.Join(b.dist, manifest.FrozenFile))
	os.WriteFile(frozen, data, 0o644)
	c := &mpycross.Node{NodePath: node, Script: mpycross.Script, Modules: modules}
	if err := c.Compile(t.Context(), []manifest.CompileJob{{Src: frozen, Out: frozen + ".mpy", Name: manifest.FrozenFile}}, nil); err != nil {
		t.Fatalf("mpy-cross on the frozen module: %v", err)
	}

	script := `
import { loadMicroPython } from ` + jsString(filepath.Join(modules, "@micropython", "micropython-webassembly-pyscript", "micropython.mjs")) + `;
import fs from 'node:fs';
const [app, frozen] = process.argv.slice(1);
let out = '';
const mp = await loadMicroPython({ stdout: (s) => { out += s + '\n'; }, stderr: (s) => { out += s + '\n'; } });
mp.FS.mkdir('/app');
for (const f of fs.readdirSync(app)) mp.FS.writeFile('/app/' + f, fs.readFileSync(app + '/' + f));
mp.FS.mkdir('/frozen');
mp.FS.writeFile('/frozen/_fieldseal_manifest.mpy', fs.readFileSync(frozen));
try {
  mp.runPython(` + "`" + `
import sys, os
sys.path.insert(0, '/frozen')
sys.path.insert(0, '/app')
os.chdir('/app')
import _fieldseal_manifest as m
print('manifest', m.FORMAT, m.PRODUCT, m.VERSION, len(m.ROOT), len(m.KID), len(m.FILES), m.FILES[0][0], m.POLICY['on_mismatch'], m.MPY['arch'])
import main
print('run', main.run(samples=3, sleep_fn=lambda s: None))
print('mpy', main.__file__)
` + "`" + `);
} catch (e) { out += 'ERROR ' + e.message; }
process.stdout.write(out);
`
	cmd := exec.CommandContext(t.Context(), node, "--input-type=module", "-e", script, "--", b.app, frozen+".mpy")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("MicroPython did not finish in 60 s: main must not block at import")
	}
	got := string(out)
	if err != nil || strings.Contains(got, "ERROR") || strings.Contains(got, "Traceback") {
		t.Fatalf("MicroPython: %v\n%s", err, got)
	}
	wantLine := "manifest 1 watermeter 1 32 8 4 calibration.json refuse bytecode"
	if !strings.Contains(got, wantLine) || !strings.Contains(got, "run {") || !strings.Contains(got, "main.mpy") {
		t.Fatalf("MicroPython output:\n%s\nwant %q", got, wantLine)
	}
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
