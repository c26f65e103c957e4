package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// A server under its own MQTT topic root hands the root out in the bundle; the agent
// reports under it with no flag, and an explicit root (DialOptions, --topic-root) still
// wins over the bundle's.
func TestAgentTopicRootFromBundle(t *testing.T) {
	const root = "utility-a/meters"
	f := newFleet(t, func(c *server.Config) { c.TopicRoot = root })
	ctx := context.Background()

	b, app, data := f.device("meter-tr1")
	if b.TopicRoot != root {
		t.Fatalf("bundle topic_root %q, want %q", b.TopicRoot, root)
	}
	if !strings.HasPrefix(b.MQTT, "mqtt://") {
		t.Fatalf("bundle names no MQTT server: %q", b.MQTT)
	}
	r, err := agent.NewRunner(ctx, agent.RunConfig{Bundle: b, Manifest: f.man, AppDir: app, DataDir: data, Server: b.MQTT, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if bad, err := r.Check(ctx); err != nil || len(bad) != 0 {
		t.Fatalf("first check: %v %v", bad, err)
	}
	if err := r.Report(ctx); err != nil {
		t.Fatalf("report under the bundle's topic root: %v", err)
	}
	f.waitState("meter-tr1", store.StateTrusted, 30*time.Second)

	// A bundle without the root (as written before bundles carried it) with the root given
	// by the operator: the explicit one is used.
	b2, app2, data2 := f.device("meter-tr2")
	old := *b2
	old.TopicRoot = ""
	r2, err := agent.NewRunner(ctx, agent.RunConfig{Bundle: &old, Manifest: f.man, AppDir: app2, DataDir: data2, Server: b2.MQTT,
		Dial: agent.DialOptions{TopicRoot: root}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r2.Close)
	if _, err := r2.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.Report(ctx); err != nil {
		t.Fatalf("report under the explicit topic root: %v", err)
	}
	f.waitState("meter-tr2", store.StateTrusted, 30*time.Second)
}

// A topic root no server can have is refused at start, by name, before the agent takes
// the bundle into its data folder: never a silent publish where nobody listens.
func TestAgentRefusesBadTopicRoot(t *testing.T) {
	f := newFleet(t)
	b, app, data := f.device("meter-tr3")
	if b.TopicRoot != "" {
		t.Fatalf("a server on the default root wrote topic_root %q", b.TopicRoot)
	}
	for _, bad := range []string{"utility-a/+", "$SYS/meters", "utility-a//meters"} {
		c := *b
		c.TopicRoot = bad
		_, err := agent.NewRunner(context.Background(), agent.RunConfig{Bundle: &c, Manifest: f.man, AppDir: app, DataDir: data, Server: b.MQTT, Logf: t.Logf})
		if !errors.Is(err, wire.ErrMalformed) || !strings.Contains(err.Error(), "topic_root") {
			t.Fatalf("topic root %q: %v, want a malformed topic_root", bad, err)
		}
		if _, err := os.Stat(filepath.Join(data, "bundle.json")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("topic root %q: the bad bundle was taken into the data folder (%v)", bad, err)
		}
		if _, err := agent.Dial(context.Background(), b.MQTT, b, agent.DialOptions{TopicRoot: bad}); err == nil || !strings.Contains(err.Error(), "topic root") {
			t.Fatalf("Dial with topic root %q: %v", bad, err)
		}
	}
}
