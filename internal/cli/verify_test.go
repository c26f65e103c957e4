package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sealBuilt builds the example app and returns the key, the dist folder and its manifest.
func sealBuilt(t *testing.T) (key, dist, man string) {
	t.Helper()
	key, src, dist := sealSetup(t)
	if code, out, errs := sealRun(t, "build", src, "--key", key, "--out", dist); code != ExitOK {
		t.Fatalf("build: %s %s", out, errs)
	}
	return key, dist, filepath.Join(dist, "manifest.cose")
}

func TestVerifyVerb(t *testing.T) {
	key, dist, man := sealBuilt(t)
	app := filepath.Join(dist, "app")
	code, out, errs := sealRun(t, "verify", app, "--manifest", man, "--pub", key+".pub")
	if code != ExitOK || !strings.HasPrefix(out, "clean") {
		t.Fatalf("clean tree: %d %q %q", code, out, errs)
	}
	// One finding of each kind a test can make without root tricks.
	os.WriteFile(filepath.Join(app, "calibration.json"), []byte("{}"), 0o644)
	os.Remove(filepath.Join(app, "leak.mpy"))
	os.WriteFile(filepath.Join(app, "main.py"), []byte("print(1)\n"), 0o644)
	code, out, _ = sealRun(t, "verify", app, "--manifest", man, "--pub", key+".pub")
	if code != ExitFound {
		t.Fatalf("tampered tree: exit %d\n%s", code, out)
	}
	for _, want := range []string{"modified   calibration.json", "missing    leak.mpy", "extra      main.py", "TAMPERED: 3 finding(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = sealRun(t, "verify", dist, "--pub", key+".pub", "--json") // DIST: manifest and app found
	assertSnakeCase(t, "verify --json", []byte(out))
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != ExitFound || rep.Clean || len(rep.Findings) != 3 {
		t.Fatalf("--json: %d %v %+v", code, err, rep)
	}
	if f := rep.Findings[0]; f.Path != "calibration.json" || f.Kind != "modified" {
		t.Fatalf("first finding %+v", f)
	}
}

func TestVerifyVerbErrors(t *testing.T) {
	key, dist, man := sealBuilt(t)
	app := filepath.Join(dist, "app")
	other := filepath.Join(t.TempDir(), "other.key")
	sealRun(t, "keygen", "--out", other)
	edited := filepath.Join(t.TempDir(), "edited.cose")
	data, _ := os.ReadFile(man)
	data[len(data)-100] ^= 1
	os.WriteFile(edited, data, 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"verify", app, "--manifest", man, "--pub", other + ".pub"}, "unknown-key"},
		{[]string{"verify", app, "--manifest", edited, "--pub", key + ".pub"}, "rejected"},
		{[]string{"verify", app, "--manifest", filepath.Join(dist, "nope.cose"), "--pub", key + ".pub"}, "nope.cose"},
		{[]string{"verify", app, "--manifest", key, "--pub", key + ".pub"}, "rejected"},
		{[]string{"verify", app, "--pub", key + ".pub"}, "missing --manifest"},
		{[]string{"verify", filepath.Join(dist, "gone"), "--manifest", man, "--pub", key + ".pub"}, "cannot open"},
		{[]string{"verify", app, "--manifest", man}, "Usage"},
	}
	for _, tc := range cases {
		code, out, errs := sealRun(t, tc.args...)
		if code != ExitError || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (stdout %q), want %q", tc.args[1:], code, errs, out, tc.want)
		}
	}
	code, out, _ := sealRun(t, "verify", app, "--manifest", man, "--pub", other+".pub", "--json")
	var rep verifyReport
	if json.Unmarshal([]byte(out), &rep) != nil || code != ExitError || !strings.Contains(rep.Error, "unknown-key") {
		t.Fatalf("--json error: %d %q", code, out)
	}
}
