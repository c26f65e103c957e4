package mpharness

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/wire"
)

// The real entry point, fieldseal.boot.main(), on the sim port: it boots, imports the app
// from the verified mount, runs the app's run() with the guard in its loop (watchdog fed,
// scheduled checks and reports handed to port.send), and the reports open in Go with the
// app's readings in them.
func TestBootMainEntryPoint(t *testing.T) {
	node, _ := testenv.Node(t)
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := map[string]string{
		"main.py": "def run(samples=None, sleep_fn=None, report=None):\n    litres = 0\n    while True:\n        litres += 3\n        report({'litres': litres, 'leak': False})\n        sleep_fn(60)\n",
	}
	a, err := BuildApp(ctx, node, filepath.Join(data, "build"), app, AppOptions{})
	if err != nil {
		t.Fatal(err)
	}
	os.Rename(a.Ext, filepath.Join(data, "ext"))
	b, _ := os.ReadFile(a.Manifest)
	os.WriteFile(filepath.Join(data, "_fieldseal_manifest.py"), b, 0o644)
	os.RemoveAll(filepath.Join(data, "build"))
	bundle := NewBundle("wm-main", "watermeter", 1)
	if err := Provision(filepath.Join(data, "int"), bundle); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "seconds.txt"), []byte("3700"), 0o644)
	res := runPyTB(t, "mainloop.py", data)
	if len(res) != 1 {
		t.Fatalf("output %v", res)
	}
	reports, _ := res[0]["reports"].([]any)
	if len(reports) != 4 { // report interval 900 s over 3700 s
		t.Fatalf("%d reports sent, want 4: %v", len(reports), res[0])
	}
	if res[0]["feeds"].(float64) < 60 {
		t.Fatalf("watchdog fed %v times", res[0]["feeds"])
	}
	last := Bytes(reports[len(reports)-1].(string))
	m, err := wire.ParseReport(last)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := wire.OpenReport(m, bundle.UplinkKey)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reading == nil || rep.Reading.Litres < 100 || rep.Meas.Status != wire.MeasOK || rep.RSeq != 4 {
		t.Fatalf("report %+v reading %+v", rep.Meas, rep.Reading)
	}
	if !hasType(rep.Log.Entries, wire.EntryCheckOK) {
		t.Fatalf("no scheduled check in %v", types(rep.Log.Entries))
	}
}
