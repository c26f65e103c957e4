package unixnet

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/server"
)

// rewriteBundle edits the bundle.json waiting in meter m's internal storage.
func rewriteBundle(t *testing.T, m *meter, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(m.intDir, "bundle.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	edit(b)
	raw, _ = json.Marshal(b)
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A server under its own MQTT topic root names it in the bundle; the frozen guard reports
// under it over real sockets with nothing else configured, and is acknowledged. A port's
// TOPIC_ROOT still wins over the bundle's (here over a bundle from before bundles carried
// the root).
func TestSealedMeterReportsUnderTheServersTopicRoot(t *testing.T) {
	const root = "utility-a/meters"
	e := newEnv(t, func(c *server.Config) { c.TopicRoot = root })
	m := e.meter("unix-root-1")
	raw, _ := os.ReadFile(filepath.Join(m.intDir, "bundle.json"))
	if !strings.Contains(string(raw), `"topic_root":"`+root+`"`) {
		t.Fatalf("the bundle does not name the server's topic root: %s", raw)
	}
	r := e.boot(m, "", 2)
	if !strings.HasPrefix(r.URL, "mqtt://") || r.Root != root {
		t.Fatalf("uplink %q under %q: not the bundle's MQTT URL and topic root", r.URL, r.Root)
	}
	acknowledged(t, r)
	if st := e.state(m.id); st != "trusted" {
		t.Fatalf("server state %q, want trusted", st)
	}

	m2 := e.meter("unix-root-2")
	rewriteBundle(t, m2, func(b map[string]any) { delete(b, "topic_root") })
	r = e.script(m2, "meter.py", "", "2", root)
	if r.Root != root {
		t.Fatalf("uplink under %q, want the port's %q", r.Root, root)
	}
	acknowledged(t, r)
	if st := e.state(m2.id); st != "trusted" {
		t.Fatalf("server state %q, want trusted", st)
	}
}

// A bundle whose topic root no server can have stops provisioning with an error naming it,
// before anything is created: the bundle stays and no evidence log exists, rather than a
// meter publishing where nobody listens.
func TestGuardRefusesBundleWithBadTopicRoot(t *testing.T) {
	e := newEnv(t)
	for i, bad := range []string{"utility-a/+", "$SYS/meters", "utility-a//meters"} {
		m := e.meter("unix-badroot-" + string(rune('1'+i)))
		rewriteBundle(t, m, func(b map[string]any) { b["topic_root"] = bad })
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		script, _ := filepath.Abs(filepath.Join("testdata", "meter.py"))
		cmd := exec.CommandContext(ctx, e.mp, script, m.intDir, m.ext, "", "1")
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "bundle: topic root '"+bad+"'") {
			t.Fatalf("topic root %q: exit %v, output:\n%s", bad, err, out)
		}
		ents, _ := os.ReadDir(m.intDir)
		var names []string
		for _, f := range ents {
			names = append(names, f.Name())
		}
		if len(names) != 1 || names[0] != "bundle.json" {
			t.Fatalf("topic root %q: internal storage holds %v, want the bundle alone", bad, names)
		}
	}
}
