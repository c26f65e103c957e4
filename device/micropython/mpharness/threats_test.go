package mpharness

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/wire"
)

// TestBootAndReportVerifiedByGo: a clean boot imports the app from the verified mount, and
// the report the guard makes is opened by wire.OpenReport and its log verified by fschain.
func TestBootAndReportVerifiedByGo(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	b := r.step(Cmd{"cmd": "boot", "app": "main"})
	if b.App == nil || !b.App.OK || b.App.File != "/verified/main.mpy" {
		t.Fatalf("app import: %+v", b.App)
	}
	if !reflect.DeepEqual(b.Summary.Path, []string{"/frozen", "/verified"}) {
		t.Fatalf("sys.path = %v", b.Summary.Path)
	}
	rep := r.report()
	if rep.Dev != r.bundle.Device || rep.RSeq != 1 || rep.Boot != 1 || rep.Meas.Status != wire.MeasOK || rep.Meas.FilesChecked != 3 {
		t.Fatalf("report %+v", rep)
	}
	if string(rep.Man.Root) != string(r.app.M.Root) || rep.Man.Version != 1 || rep.Man.Product != "watermeter" {
		t.Fatalf("man %+v", rep.Man)
	}
	_, es := r.verify(r.anchor0(), rep)
	if !reflect.DeepEqual(types(es), []uint16{wire.EntryBoot}) {
		t.Fatalf("entries %v", types(es))
	}
	var bp wire.BootPayload
	if err := wire.Unmarshal(es[0].Payload, &bp); err != nil || bp.BootCount != 1 || bp.Result != "ok" || string(bp.Root) != string(r.app.M.Root) {
		t.Fatalf("boot payload %+v %v", bp, err)
	}
	// the chain key of the bundle is gone from internal storage after the first boot
	if _, err := r.d.Step(Cmd{"cmd": "exec", "code": "result = D.st.read('bundle.json')"}); err != nil {
		t.Fatal(err)
	}
}

// D1: a byte edited in a .mpy on external storage is found at boot, the module refused,
// check-fail and refused logged and reported.
func TestThreatD1_EditedMpyRefusedAndReported(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	r.off()
	r.step(Cmd{"cmd": "edit", "path": "calib.mpy", "flip": 10})
	b := r.boot()
	if badKinds(b.Summary)["calib.mpy"] != wire.KindModified {
		t.Fatalf("bad = %v", b.Summary.Bad)
	}
	imp, _ := r.d.Import("calib", "K")
	if imp.OK {
		t.Fatalf("tampered calib imported: %+v", imp)
	}
	imp, _ = r.d.Import("main", "VALUE") // imports calib: refused too
	if imp.OK {
		t.Fatalf("main imported despite tampered dependency: %+v", imp)
	}
	rep := r.report()
	if rep.Meas.Status != wire.MeasMismatch || len(rep.Meas.Bad) != 1 || rep.Meas.Bad[0].Path != "calib.mpy" {
		t.Fatalf("meas %+v", rep.Meas)
	}
	if rep.State&wire.StateCodeMismatch == 0 || rep.State&wire.StateRefusingCode == 0 || rep.State&wire.StateTamperLatched == 0 {
		t.Fatalf("state %b", rep.State)
	}
	_, es := r.verify(r.anchor0(), rep)
	if !hasType(es, wire.EntryCheckFail) || !hasType(es, wire.EntryRefused) {
		t.Fatalf("entries %v", types(es))
	}
	for _, e := range es {
		if e.Type == wire.EntryCheckFail {
			var p wire.CheckFailPayload
			if err := wire.Unmarshal(e.Payload, &p); err != nil || p.Bad[0].Path != "calib.mpy" || p.Bad[0].Kind != "modified" || len(p.Bad[0].Expected) != 8 || len(p.Bad[0].Seen) != 8 {
				t.Fatalf("check-fail payload %+v %v", p, err)
			}
		}
	}
	// a data file edited while running is found by the scheduled check
	r.step(Cmd{"cmd": "edit", "path": "table.bin", "text": "calibration table v2\n"})
	tk := r.step(Cmd{"cmd": "tick", "s": 3600})
	if badKinds(tk.Summary)["table.bin"] != wire.KindModified {
		t.Fatalf("scheduled check: %v", tk.Summary.Bad)
	}
}

// D2: the renter edits, runs, restores and returns the device; the check-fail stays in the
// log and the Go verifier still finds it.
func TestThreatD2_RenterRestoresFile(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	a := r.anchor0()
	a, _ = r.verify(a, r.report()) // the server saw the clean boot
	r.step(Cmd{"cmd": "edit", "path": "main.mpy", "b64": b64(r.mpy("VALUE = 666\ndef step():\n    return 0\n"))})
	r.step(Cmd{"cmd": "tick", "s": 3600}) // scheduled check: check-fail
	r.off()
	b := r.boot() // "run" the edited app: refused at boot
	if badKinds(b.Summary)["main.mpy"] != wire.KindModified {
		t.Fatalf("bad %v", b.Summary.Bad)
	}
	r.step(Cmd{"cmd": "restore", "path": "main.mpy"})
	r.off()
	b = r.boot()
	if len(b.Summary.Bad) != 0 {
		t.Fatalf("after restore: %v", b.Summary.Bad)
	}
	tk := r.step(Cmd{"cmd": "tick", "s": 3600})
	if len(tk.Summary.Bad) != 0 {
		t.Fatal("restored file still bad")
	}
	rep := r.report()
	if rep.Meas.Status != wire.MeasOK {
		t.Fatalf("status %d", rep.Meas.Status)
	}
	_, es := r.verify(a, rep)
	if !hasType(es, wire.EntryCheckFail) {
		t.Fatalf("check-fail lost: %v", types(es))
	}
	if rep.State&wire.StateTamperLatched == 0 {
		t.Fatalf("tamper latch cleared without a token: %b", rep.State)
	}
}

// D3: the file changed after it was hashed does not change what is imported.
func TestThreatD3_TOCTOU(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot() // hashes and keeps main.mpy
	r.step(Cmd{"cmd": "edit", "path": "main.mpy", "b64": b64(r.mpy("VALUE = 666\n"))})
	imp, err := r.d.Import("main", "VALUE")
	if err != nil || !imp.OK || imp.Value != float64(1) || imp.File != "/verified/main.mpy" {
		t.Fatalf("import after swap: %+v %v", imp, err)
	}
	// a data file swapped after the boot check is re-read, re-hashed and refused
	r.step(Cmd{"cmd": "edit", "path": "table.bin", "text": "swapped\n"})
	ex := r.step(Cmd{"cmd": "exec", "code": "try:\n    result = open('/verified/table.bin').read()\nexcept OSError as e:\n    result = 'refused'"})
	if ex.Result != "refused" {
		t.Fatalf("swapped data file served: %v", ex.Result)
	}
}

// D4: a .py beside the .mpy, or any extra file, is flagged extra and never served.
func TestThreatD4_PyBesideMpy(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	r.off()
	r.step(Cmd{"cmd": "edit", "path": "main.py", "text": "VALUE = 666\n"})
	r.step(Cmd{"cmd": "edit", "path": "evil/__init__.py", "text": "X = 1\n"})
	b := r.boot()
	k := badKinds(b.Summary)
	if k["main.py"] != wire.KindExtra || k["evil/__init__.py"] != wire.KindExtra {
		t.Fatalf("bad %v", b.Summary.Bad)
	}
	imp, _ := r.d.Import("main", "VALUE")
	if !imp.OK || imp.Value != float64(1) || imp.File != "/verified/main.mpy" {
		t.Fatalf("import main: %+v", imp)
	}
	if imp, _ := r.d.Import("evil", "X"); imp.OK {
		t.Fatalf("extra package imported: %+v", imp)
	}
	s := r.step(Cmd{"cmd": "state"}).Summary
	if !reflect.DeepEqual(s.Refused, []string{"evil", "main.py"}) && !reflect.DeepEqual(s.Refused, []string{"evil/__init__.py", "main.py"}) {
		t.Logf("refused %v", s.Refused)
	}
	_, es := r.verify(r.anchor0(), r.report())
	if !hasType(es, wire.EntryRefused) || !hasType(es, wire.EntryCheckFail) {
		t.Fatalf("entries %v", types(es))
	}
}

// D5: a hashlib.py on storage does not replace the guard's SHA-256, and is flagged extra.
func TestThreatD5_ShadowedHashlib(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.step(Cmd{"cmd": "edit", "path": "hashlib.py", "text": "class sha256:\n    def __init__(s, d=b''): pass\n    def update(s, d): pass\n    def digest(s): return bytes(32)\n"})
	r.step(Cmd{"cmd": "edit", "path": "os.py", "text": "def stat(p): return (0,)*10\n"})
	b := r.boot()
	k := badKinds(b.Summary)
	if len(k) != 2 || k["hashlib.py"] != wire.KindExtra || k["os.py"] != wire.KindExtra {
		t.Fatalf("bad %v (the real files must still verify)", b.Summary.Bad)
	}
	ex := r.step(Cmd{"cmd": "exec", "code": "import hashlib, sys\nresult = [hashlib.sha256(b'abc').digest()[:4].hex(), list(sys.path)]"})
	got := ex.Result.([]any)
	if got[0] != "ba7816bf" {
		t.Fatalf("hashlib on the device is %v", got[0])
	}
	// a check with a file edited to match the fake digest still fails
	r.step(Cmd{"cmd": "edit", "path": "calib.mpy", "text": "x"})
	tk := r.step(Cmd{"cmd": "tick", "s": 3600})
	if badKinds(tk.Summary)["calib.mpy"] != wire.KindModified {
		t.Fatalf("bad %v", tk.Summary.Bad)
	}
}

// D6: a truncated .mpy (which hangs MicroPython's loader) is refused, never loaded.
func TestThreatD6_TruncatedMpyNoHang(t *testing.T) {
	r := newRig(t, nil, AppOptions{}, func(o *Options) { o.Timeout = 20 * time.Second })
	r.step(Cmd{"cmd": "edit", "path": "main.mpy", "b64": b64(r.app.Files["main.mpy"][:20])})
	b := r.boot()
	if badKinds(b.Summary)["main.mpy"] != wire.KindModified {
		t.Fatalf("bad %v", b.Summary.Bad)
	}
	start := time.Now()
	imp, err := r.d.Import("main", "VALUE")
	if err != nil || imp.OK {
		t.Fatalf("import: %+v %v", imp, err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("import took %v", time.Since(start))
	}
}

// D4 at scale: hundreds of extra files with long names do not crash the guard or break the
// 1024-byte entry limit; findings are capped and the log still verifies.
func TestThreatD4_ManyLongExtraFiles(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	for i := 0; i < 120; i++ {
		name := fmt.Sprintf("junk/%03d_%s.py", i, strings.Repeat("x", 200))
		os.MkdirAll(filepath.Join(r.app.Ext, "junk"), 0o755)
		os.WriteFile(filepath.Join(r.app.Ext, name), []byte("X = 1\n"), 0o644)
	}
	b := r.boot()
	if len(b.Summary.Bad) != 64 {
		t.Fatalf("%d findings, want the cap of 64", len(b.Summary.Bad))
	}
	if imp, _ := r.d.Import("main", "VALUE"); !imp.OK {
		t.Fatalf("the sealed app no longer imports: %+v", imp)
	}
	_, es := r.verify(r.anchor0(), r.report())
	if !hasType(es, wire.EntryCheckFail) {
		t.Fatalf("entries %v", types(es))
	}
}
