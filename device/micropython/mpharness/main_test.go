package mpharness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

// D6 under on-mismatch=report (issue 12 item 10): a .mpy truncated to 20 bytes would hang
// MicroPython's loader forever. The real entry point sends its first report before importing
// the app (check-fail in it, no refusal yet), then never hands the truncated module to the
// loader (refused, logged, the device keeps running and reporting).
func TestThreatD6_ReportPolicyNeverLoadsBrokenMpy(t *testing.T) {
	node, _ := testenv.Node(t)
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pol := wire.DefaultPolicy()
	pol.OnMismatch = wire.ActionReport
	app := map[string]string{"main.py": "VALUE = 1\n" + strings.Repeat("X = 'padding'\n", 20)}
	a, err := BuildApp(ctx, node, filepath.Join(data, "build"), app, AppOptions{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	os.Rename(a.Ext, filepath.Join(data, "ext"))
	b, _ := os.ReadFile(a.Manifest)
	os.WriteFile(filepath.Join(data, "_fieldseal_manifest.py"), b, 0o644)
	os.WriteFile(filepath.Join(data, "ext", "main.mpy"), a.Files["main.mpy"][:20], 0o644)
	bundle := NewBundle("wm-d6", "watermeter", 1)
	if err := Provision(filepath.Join(data, "int"), bundle); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "seconds.txt"), []byte("1000"), 0o644)
	res := runPyTB(t, "mainloop.py", data) // a hang here fails the test (the harness's timeout)
	reports, _ := res[0]["reports"].([]any)
	if len(reports) != 2 {
		t.Fatalf("%d reports, want the one sent at boot and the scheduled one: %v", len(reports), res[0])
	}
	var logs [][]wire.Entry
	for _, r := range reports {
		m, err := wire.ParseReport(Bytes(r.(string)))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := wire.OpenReport(m, bundle.UplinkKey)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, rep.Log.Entries)
	}
	if !hasType(logs[0], wire.EntryCheckFail) || hasType(logs[0], wire.EntryRefused) {
		t.Fatalf("first report %v: want the check-fail, sent before the app was imported", types(logs[0]))
	}
	if !hasType(logs[1], wire.EntryRefused) {
		t.Fatalf("second report %v: want the refusal of the truncated main.mpy", types(logs[1]))
	}
}
