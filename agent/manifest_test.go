package agent_test

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// A new manifest version registered on the server reaches the device as a token in its
// next ack; the agent installs it (logged as manifest-update), checks against it from then
// on, keeps it across a restart, and the server sees the device running the new version —
// with no bad-downlink although the server re-sends the token until it sees it used.
func TestManifestTokenInstallsNewVersion(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	b, app, data := f.device("upd")
	open := func() *agent.Runner {
		r, err := agent.NewRunner(ctx, agent.RunConfig{Bundle: b, Manifest: f.man, AppDir: app, DataDir: data, Server: b.HTTP, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	f.cleanStart(r, "upd")

	// Version 2: the metrology module changed. The new files are installed first (by the
	// update mechanism), then the manifest is registered.
	newBody := "def litres(pulses):\n    return pulses * 0.25\n"
	os.WriteFile(filepath.Join(app, "lib", "metrology.py"), []byte(newBody), 0o644)
	var files []wire.File
	for p, body := range f.app {
		if p == "lib/metrology.py" {
			body = newBody
		}
		sum := sha256.Sum256([]byte(body))
		files = append(files, wire.File{Path: p, Size: uint64(len(body)), SHA256: sum[:]})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	m2 := *f.man
	m2.Version, m2.Files, m2.Root = 2, files, wire.FilesRoot(files)
	signed2, err := wire.SignManifest(&m2, f.vendor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.RegisterManifest(ctx, signed2); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := r.Report(ctx); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		if bad, err := r.Check(ctx); err != nil || (r.Manifest().Version == 2 && len(bad) != 0) {
			t.Fatalf("check after report %d: %v %v", i, bad, err)
		}
	}
	if v := r.Device().Manifest().Version; v != 2 {
		t.Fatalf("device enforces v%d after the token", v)
	}
	r.Close()
	r = open() // a restart keeps the installed manifest
	defer r.Close()
	if v := r.Manifest().Version; v != 2 {
		t.Fatalf("after restart the runner checks against v%d", v)
	}
	if bad, _ := r.Check(ctx); len(bad) != 0 {
		t.Fatalf("v2 tree does not check clean: %v", bad)
	}
	if err := r.Report(ctx); err != nil {
		t.Fatal(err)
	}
	d := f.state("upd")
	if d.RunningVersion != 2 || d.State != store.StateTrusted {
		t.Fatalf("server: running v%d, %s (%s)", d.RunningVersion, d.State, d.StateReason)
	}
	if n := len(f.events("upd", wire.EntryBadDownlink)); n != 0 {
		t.Fatalf("%d bad-downlink entries", n)
	}
	if n := len(f.events("upd", wire.EntryManifestUpdate)); n != 1 {
		t.Fatalf("%d manifest-update entries", n)
	}
}
