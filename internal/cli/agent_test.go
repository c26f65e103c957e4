package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/storeurl"
	"github.com/fieldseal/fieldseal/wire"
)

// agentRig is a real server with one provisioned Linux device, its app folder, bundle and
// manifest, and a way to run `fieldseal agent --once` on it.
type agentRig struct {
	dir, app string
	srv      *server.Server
	b        *wire.Bundle
	raw      []byte // the bundle file as written
	ctx      context.Context
	t        *testing.T
	out      string // the last run's standard output
}

func (r *agentRig) run(extra ...string) int {
	var out, errb bytes.Buffer
	args := append([]string{"agent", "--once", "--bundle", filepath.Join(r.dir, "bundle.json"),
		"--dir", r.app, "--manifest", filepath.Join(r.dir, "manifest.cose"), "--data", filepath.Join(r.dir, "data")}, extra...)
	code := Run(r.ctx, &Env{Stdout: &out, Stderr: &errb}, args)
	r.out = out.String()
	r.t.Logf("exit %d: %s%s", code, out.String(), errb.String())
	return code
}

func newAgentRig(t *testing.T, mod ...func(*server.Config)) *agentRig {
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	os.MkdirAll(app, 0o755)
	body := []byte("print('meter')\n")
	os.WriteFile(filepath.Join(app, "main.py"), body, 0o644)
	sum := sha256.Sum256(body)
	files := []wire.File{{Path: "main.py", Size: uint64(len(body)), SHA256: sum[:]}}
	pub, vendor, _ := ed25519.GenerateKey(rand.Reader)
	m := &wire.Manifest{Product: "watermeter", Version: 1, Files: files, Mutable: []string{}, Policy: wire.DefaultPolicy(), Root: wire.FilesRoot(files),
		Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	signed, err := wire.SignManifest(m, vendor)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.cose"), signed, 0o644)
	cfg := server.Config{Store: testStore(t, filepath.Join(dir, "srv")), DataDir: filepath.Join(dir, "srv"), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		VendorKeys: []ed25519.PublicKey{pub}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		srv.Shutdown(c)
	})
	if _, err := srv.RegisterManifest(ctx, signed); err != nil {
		t.Fatal(err)
	}
	b, err := srv.ProvisionDevice(ctx, "linux-1", "watermeter")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(b)
	os.WriteFile(filepath.Join(dir, "bundle.json"), raw, 0o600)
	return &agentRig{dir: dir, app: app, srv: srv, b: b, raw: raw, ctx: ctx, t: t}
}

// `fieldseal agent --once` against a real server: exit 0 when acknowledged; the second
// run after an edit is acknowledged too, and the server has the device as tampered. D11:
// K_1 is erased from the agent's own copy of the bundle in its data folder once the log
// exists, and the --bundle file (often the operator's only copy) is never modified.
func TestThreatD11_AgentOnceKeepsOperatorBundle(t *testing.T) {
	rig := newAgentRig(t)
	dir, app, srv, b, raw, ctx, run := rig.dir, rig.app, rig.srv, rig.b, rig.raw, rig.ctx, func() int { return rig.run() }
	if code := run(); code != ExitOK {
		t.Fatalf("first --once: exit %d", code)
	}
	// One line on success, saying what was checked and that the server took the report.
	if lines := strings.Split(strings.TrimSpace(rig.out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "linux-1") ||
		!strings.Contains(lines[0], "every file matches") || !strings.Contains(lines[0], "report acknowledged") {
		t.Fatalf("--once success output: %q", rig.out)
	}
	// D11: the log now holds only evolved keys, so the agent's copy of K_1 is gone; the
	// operator's file given with --bundle is untouched (it may be the only copy).
	if after, _ := os.ReadFile(filepath.Join(dir, "bundle.json")); !bytes.Equal(after, raw) {
		t.Fatal("the agent modified the --bundle file")
	}
	var erased wire.Bundle
	own := filepath.Join(dir, "data", "bundle.json")
	if raw, err := os.ReadFile(own); err != nil || json.Unmarshal(raw, &erased) != nil {
		t.Fatalf("the agent's bundle copy after the first start: %v", err)
	}
	if len(erased.ChainKey) != 0 || !bytes.Equal(erased.UplinkKey, b.UplinkKey) || erased.Device != b.Device {
		t.Fatalf("after the first start the agent's copy holds chain_key %x (want it erased, the rest kept)", erased.ChainKey)
	}
	if fi, _ := os.Stat(own); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the agent's bundle copy has mode %v", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "state.json")); !os.IsNotExist(err) {
		t.Fatalf("the agent keeps a plain state.json (%v): the state belongs in the slots", err)
	}
	if d, _ := srv.Store().GetDevice(ctx, "linux-1"); d.State != "trusted" {
		t.Fatalf("after a clean --once the device is %s", d.State)
	}
	os.WriteFile(filepath.Join(app, "main.py"), []byte("print('free water')\n"), 0o644)
	if code := run(); code != ExitOK {
		t.Fatalf("second --once: exit %d", code)
	}
	if !strings.Contains(rig.out, "1 problem(s): main.py modified") {
		t.Fatalf("--once after an edit does not say what it found: %q", rig.out)
	}
	// Daemon mode says it started, what it guards and where it reports.
	dctx, stop := context.WithCancel(ctx)
	var derr syncBuf
	done := make(chan int, 1)
	go func() {
		done <- Run(dctx, &Env{Stdout: &bytes.Buffer{}, Stderr: &derr}, []string{"agent", "--bundle", filepath.Join(dir, "bundle.json"),
			"--dir", app, "--manifest", filepath.Join(dir, "manifest.cose"), "--data", filepath.Join(dir, "data")})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(derr.String(), "guarding linux-1") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if code := <-done; code != ExitOK || !strings.Contains(derr.String(), "guarding linux-1: "+app) || !strings.Contains(derr.String(), "reporting to") {
		t.Fatalf("daemon start line: exit %d, stderr %q", code, derr.String())
	}
	if d, _ := srv.Store().GetDevice(ctx, "linux-1"); d.State != "tampered" {
		t.Fatalf("after an edit the device is %s (%s)", d.State, d.StateReason)
	}
}

// The agent's own copy of the bundle loses K_1 once the log exists (TestThreatD11_AgentOnceKeepsOperatorBundle checks that
// the agent does it on its first start): the rest of the bundle still loads, owner-only, and
// `log verify --chain-key` pointed at it says to use the operator's copy.
func TestAgentErasesChainKeyFromBundle(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	rnd := func() wire.HexBytes { k := make([]byte, 32); rand.Read(k); return k }
	b := wire.Bundle{Device: "linux-1", Epoch: 1, ChainKey: rnd(), UplinkKey: rnd(), DownlinkKey: rnd(), ServerPub: wire.HexBytes(pub), Product: "watermeter", ManifestVersion: 1}
	path := filepath.Join(dir, "bundle.json")
	raw, _ := json.Marshal(&b)
	os.WriteFile(path, raw, 0o644)
	if err := agent.EraseChainKeyFile(path, b); err != nil {
		t.Fatal(err)
	}
	var got wire.Bundle
	raw, _ = os.ReadFile(path)
	if err := json.Unmarshal(raw, &got); err != nil || got.Check() != nil {
		t.Fatalf("erased bundle does not load: %v %v", err, got.Check())
	}
	if len(got.ChainKey) != 0 || !bytes.Equal(got.DownlinkKey, b.DownlinkKey) {
		t.Fatalf("erased bundle: chain_key %x", got.ChainKey)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("erased bundle has mode %v", fi.Mode().Perm())
	}
	// (log verify's answer to this erased bundle: internal/devicecli, TestChainKeyFromErasedBundle)
}

// testStore opens the default store (SQLite) in dir for one test, closed when it ends.
func testStore(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := storeurl.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// `fieldseal agent --once` with no --topic-root, against a server under its own topic root:
// the bundle names the root and its MQTT URL, and the report is acknowledged there.
func TestAgentOnceUnderTheServersTopicRoot(t *testing.T) {
	rig := newAgentRig(t, func(c *server.Config) { c.TopicRoot = "utility-a/meters" })
	if !strings.HasPrefix(rig.b.MQTT, "mqtt://") || !strings.Contains(string(rig.raw), `"topic_root":"utility-a/meters"`) {
		t.Fatalf("bundle: %s", rig.raw)
	}
	if code := rig.run(); code != ExitOK {
		t.Fatalf("--once under the bundle's topic root: exit %d", code)
	}
	if d, err := rig.srv.Store().GetDevice(rig.ctx, "linux-1"); err != nil || d.State != store.StateTrusted {
		t.Fatalf("server: %+v %v", d, err)
	}
}
