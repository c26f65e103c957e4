package mpharness

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/manifest"
	mpycross "github.com/fieldseal/fieldseal/tools/mpy-cross"
	"github.com/fieldseal/fieldseal/wire"
)

// buildExample seals examples/watermeter with `fieldseal build`'s code path (manifest.Build
// and the WebAssembly mpy-cross): DIST/app and DIST/_fieldseal_manifest.py.
func buildExample(t testing.TB) (dist string, m *wire.Manifest) {
	t.Helper()
	testenv.Node(t)
	comp, err := mpycross.Find("", nil)
	if err != nil {
		testenv.SkipOrFail(t, "mpy-cross: "+err.Error())
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	dist = filepath.Join(t.TempDir(), "dist")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := manifest.Build(ctx, manifest.BuildOptions{Src: filepath.Join(testenv.RepoRoot(), "examples", "watermeter"),
		Out: dist, Key: key, Product: "watermeter", Created: t0, Compiler: comp})
	if err != nil {
		t.Fatal(err)
	}
	return dist, res.Manifest
}

// The example application sealed by `fieldseal build` boots under the guard: every file
// verifies against the frozen module build wrote, the app imports from /verified, runs
// with the guard in its loop, reads its calibration table through the verified mount, and
// its readings reach reports that Go opens.
func TestExampleWatermeterUnderGuard(t *testing.T) {
	dist, m := buildExample(t)
	node, _ := testenv.Node(t)
	intDir := filepath.Join(t.TempDir(), "int")
	b := NewBundle("wm-0042", m.Product, m.Version)
	if err := Provision(intDir, b); err != nil {
		t.Fatal(err)
	}
	d, err := Start(context.Background(), Options{Ext: filepath.Join(dist, "app"), Int: intDir,
		Manifest: filepath.Join(dist, manifest.FrozenFile), Now: t0, Node: node, Stderr: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	boot, err := d.Step(Cmd{"cmd": "boot", "app": "main"})
	if err != nil {
		t.Fatal(err)
	}
	if len(boot.Summary.Bad) != 0 || boot.App == nil || !boot.App.OK || boot.App.File != "/verified/main.mpy" {
		t.Fatalf("boot: bad %v app %+v", boot.Summary.Bad, boot.App)
	}
	// the calibration table is a sealed data file, opened by a relative path: it comes
	// from the verified mount, not from raw storage
	ex, err := d.Step(Cmd{"cmd": "exec", "code": "import metrology\nresult = metrology.load_table()['meter']"})
	if err != nil || ex.Result != "DN20 multi-jet, reed pulse output" {
		t.Fatalf("calibration table: %v %v", ex, err)
	}
	run, err := d.Step(Cmd{"cmd": "run_app", "samples": 20})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := d.Report()
	if err != nil {
		t.Fatal(err)
	}
	mac, err := wire.ParseReport(rb)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := wire.OpenReport(mac, b.UplinkKey)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reading == nil || rep.Reading.Litres == 0 || rep.Meas.Status != wire.MeasOK || string(rep.Man.Root) != string(m.Root) {
		t.Fatalf("report reading %+v meas %+v (run: %s)", rep.Reading, rep.Meas, run.Raw)
	}
}
