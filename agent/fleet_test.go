package agent_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlite"
	"github.com/fieldseal/fieldseal/wire"
)

// fleet is a real fleet server in-process on loopback, with one registered manifest that
// seals a small application tree.
type fleet struct {
	t      *testing.T
	srv    *server.Server
	man    *wire.Manifest
	signed []byte
	app    map[string]string
	vendor ed25519.PrivateKey
}

var testApp = map[string]string{
	"app.mpy":          "M\x06\x00\x1fthe meter's code",
	"lib/metrology.py": "def litres(pulses):\n    return pulses * 0.5\n",
	"calibration.json": "{\"k\": 0.5}\n",
}

func newFleet(t *testing.T, mod ...func(*server.Config)) *fleet {
	t.Helper()
	_, vendor, _ := ed25519.GenerateKey(rand.Reader)
	var files []wire.File
	for p, body := range testApp {
		sum := sha256.Sum256([]byte(body))
		files = append(files, wire.File{Path: p, Size: uint64(len(body)), SHA256: sum[:]})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	pol := wire.DefaultPolicy()
	m := &wire.Manifest{Product: "watermeter", Version: 1, Created: 1, Files: files, Mutable: []string{}, Policy: pol,
		Root: wire.FilesRoot(files), Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	signed, err := wire.SignManifest(m, vendor)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: sqliteStore(t), DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		VendorKeys: []ed25519.PublicKey{vendor.Public().(ed25519.PublicKey)}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
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
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(c)
	})
	if _, err := srv.RegisterManifest(ctx, signed); err != nil {
		t.Fatal(err)
	}
	return &fleet{t: t, srv: srv, man: m, signed: signed, app: testApp, vendor: vendor}
}

// device provisions dev and lays out its app tree and data folder.
func (f *fleet) device(dev string) (b *wire.Bundle, appDir, dataDir string) {
	f.t.Helper()
	b, err := f.srv.ProvisionDevice(context.Background(), dev, "watermeter")
	if err != nil {
		f.t.Fatal(err)
	}
	root := f.t.TempDir()
	appDir, dataDir = filepath.Join(root, "app"), filepath.Join(root, "data")
	for p, body := range f.app {
		fp := filepath.Join(appDir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(fp), 0o755)
		if err := os.WriteFile(fp, []byte(body), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	return b, appDir, dataDir
}

// runner is a device agent driven step by step (check, cover, report) over HTTP.
func (f *fleet) runner(dev string) (*agent.Runner, *wire.Bundle, string) {
	f.t.Helper()
	b, appDir, dataDir := f.device(dev)
	r, err := agent.NewRunner(context.Background(), agent.RunConfig{Bundle: b, Manifest: f.man, AppDir: appDir, DataDir: dataDir, Server: b.HTTP,
		Logf: f.t.Logf})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(r.Close)
	return r, b, appDir
}

func (f *fleet) state(dev string) *store.Device {
	f.t.Helper()
	d, err := f.srv.Store().GetDevice(context.Background(), dev)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// waitState waits until dev is in state (or fails after d).
func (f *fleet) waitState(dev, state string, d time.Duration) *store.Device {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := f.state(dev)
		if got.State == state {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s is %s (%s), want %s", dev, got.State, got.StateReason, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// events returns the verified log entries of dev of type typ.
func (f *fleet) events(dev string, typ uint16) []store.Event {
	f.t.Helper()
	evs, err := f.srv.Store().ListEvents(context.Background(), store.Page{Dev: dev, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []store.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func (f *fleet) alerts(dev string) []store.Alert {
	f.t.Helper()
	list, err := f.srv.Store().ListAlerts(context.Background(), store.Page{Dev: dev, Limit: 100}, false)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []store.Alert
	for _, a := range list {
		if a.Dev == dev {
			out = append(out, a)
		}
	}
	return out
}

// cleanStart checks and reports once: the device must be trusted.
func (f *fleet) cleanStart(r *agent.Runner, dev string) {
	f.t.Helper()
	ctx := context.Background()
	if bad, err := r.Check(ctx); err != nil || len(bad) != 0 {
		f.t.Fatalf("first check: %v %v", bad, err)
	}
	if err := r.Report(ctx); err != nil {
		f.t.Fatalf("first report: %v", err)
	}
	f.waitState(dev, store.StateTrusted, time.Second)
}

// post sends raw report bytes to the server's HTTP ingest, as an attacker would.
func (f *fleet) post(b *wire.Bundle, report []byte) (*wire.Ack, error) {
	f.t.Helper()
	tr, err := agent.Dial(context.Background(), b.HTTP, b, agent.DialOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	defer tr.Close()
	raw, err := tr.Send(context.Background(), report)
	if err != nil {
		return nil, err
	}
	return wire.OpenAck(raw, b.Device, b.DownlinkKey)
}

// sqliteStore is a server's SQLite store for one test, closed when it ends (after the
// server's shutdown, which is registered later).
func sqliteStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "fieldseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
