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
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/storeurl"
	"github.com/fieldseal/fieldseal/wire"
)

// `fieldseal agent --once` against a real server: exit 0 when acknowledged; the second
// run after an edit is acknowledged too, and the server has the device as tampered.
func TestAgentOnce(t *testing.T) {
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
	srv, err := server.New(server.Config{Store: testStore(t, filepath.Join(dir, "srv")), DataDir: filepath.Join(dir, "srv"), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		VendorKeys: []ed25519.PublicKey{pub}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		srv.Shutdown(c)
	}()
	if _, err := srv.RegisterManifest(ctx, signed); err != nil {
		t.Fatal(err)
	}
	b, err := srv.ProvisionDevice(ctx, "linux-1", "watermeter")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(b)
	os.WriteFile(filepath.Join(dir, "bundle.json"), raw, 0o600)
	var out bytes.Buffer
	run := func() int {
		var errb bytes.Buffer
		out.Reset()
		code := Run(ctx, &Env{Stdout: &out, Stderr: &errb}, []string{"agent", "--once", "--bundle", filepath.Join(dir, "bundle.json"),
			"--dir", app, "--manifest", filepath.Join(dir, "manifest.cose"), "--data", filepath.Join(dir, "data")})
		t.Logf("exit %d: %s%s", code, out.String(), errb.String())
		return code
	}
	if code := run(); code != ExitOK {
		t.Fatalf("first --once: exit %d", code)
	}
	// One line on success, saying what was checked and that the server took the report.
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "linux-1") ||
		!strings.Contains(lines[0], "every file matches") || !strings.Contains(lines[0], "report acknowledged") {
		t.Fatalf("--once success output: %q", out.String())
	}
	// D11: the log now holds only evolved keys, so the device's copy of K_1 is gone.
	var erased wire.Bundle
	if raw, err := os.ReadFile(filepath.Join(dir, "bundle.json")); err != nil || json.Unmarshal(raw, &erased) != nil {
		t.Fatalf("bundle after the first start: %v", err)
	}
	if len(erased.ChainKey) != 0 || !bytes.Equal(erased.UplinkKey, b.UplinkKey) || erased.Device != b.Device {
		t.Fatalf("after the first start the bundle holds chain_key %x (want it erased, the rest kept)", erased.ChainKey)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "bundle.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("rewritten bundle has mode %v", fi.Mode().Perm())
	}
	if d, _ := srv.Store().GetDevice(ctx, "linux-1"); d.State != "trusted" {
		t.Fatalf("after a clean --once the device is %s", d.State)
	}
	os.WriteFile(filepath.Join(app, "main.py"), []byte("print('free water')\n"), 0o644)
	if code := run(); code != ExitOK {
		t.Fatalf("second --once: exit %d", code)
	}
	if !strings.Contains(out.String(), "1 problem(s): main.py modified") {
		t.Fatalf("--once after an edit does not say what it found: %q", out.String())
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

// The agent's copy of the bundle loses K_1 once the log exists (TestAgentOnce checks that
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
