package unixnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
	"github.com/fieldseal/fieldseal/manifest"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store/storeurl"
	"github.com/fieldseal/fieldseal/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/fw/_fieldseal_manifest.py")

// vendor is the test vendor key (fixed, so the frozen manifest and its firmware build are
// the same on every run and the build is cached).
var vendor = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{17}, 32))

// meterManifest seals testdata/app: data files only, so no compiler is needed.
func meterManifest(t *testing.T) *wire.Manifest {
	t.Helper()
	var files []wire.File
	ents, err := os.ReadDir(filepath.Join("testdata", "app"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("testdata", "app", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		files = append(files, wire.File{Path: e.Name(), Size: uint64(len(b)), SHA256: sum[:]})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	p := wire.DefaultPolicy()
	p.ReportInterval = 60
	return &wire.Manifest{Product: "unixmeter", Version: 1, Created: 1767225600, Files: files, Mutable: []string{},
		Policy: p, Root: wire.FilesRoot(files), Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
}

// micropython returns the unix port with the guard and the meter's manifest frozen (with
// the tls module when withTLS).
func micropython(t *testing.T, m *wire.Manifest, withTLS bool) string {
	t.Helper()
	frozen := manifest.FrozenModule(m, wire.KeyID(vendor.Public().(ed25519.PublicKey)))
	path := filepath.Join("testdata", "fw", "_fieldseal_manifest.py")
	if *update {
		if err := os.WriteFile(path, frozen, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if old, _ := os.ReadFile(path); !bytes.Equal(old, frozen) {
		t.Fatalf("%s is not the manifest of testdata/app: go test ./device/micropython/unixnet -update", path)
	}
	guard, _ := filepath.Abs(filepath.Join("..", "fieldseal"))
	modem, _ := filepath.Abs(filepath.Join("..", "..", "..", "examples", "boards", "stm32-lorawan", "modules"))
	return firmware.Unix(t, firmware.UnixOptions{FrozenManifest: filepath.Join("testdata", "fw", "manifest.py"), Inputs: []string{guard, modem}, TLS: withTLS})
}

type env struct {
	t   *testing.T
	s   *server.Server
	mp  string
	man *wire.Manifest
}

func newEnv(t *testing.T, mod ...func(*server.Config)) *env { return newEnvTLS(t, nil, mod...) }

// newEnvTLS starts a server whose MQTT and HTTP listeners serve TLS with cfg (nil: plain),
// and builds the unix port with the tls module when they do; mod adjusts the server's
// configuration.
func newEnvTLS(t *testing.T, cfg *tls.Config, mod ...func(*server.Config)) *env {
	t.Helper()
	m := meterManifest(t)
	mp := micropython(t, m, cfg != nil)
	dir := t.TempDir()
	st, err := storeurl.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	listen := "127.0.0.1:0"
	if cfg != nil {
		listen = localhostAddr(t, mp) // TLS URLs name "localhost", as the certificates do
	}
	sc := server.Config{DataDir: dir, Store: st, HTTPAddr: listen, MQTTAddr: listen,
		HTTPTLS: cfg, MQTTTLS: cfg,
		VendorKeys: []ed25519.PublicKey{vendor.Public().(ed25519.PublicKey)},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mod {
		m(&sc)
	}
	s, err := serve.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	signed, err := wire.SignManifest(m, vendor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterManifest(context.Background(), signed); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, s: s, mp: mp, man: m}
}

// meter is one device's folders, provisioned on the server.
type meter struct {
	id, intDir, ext string
}

func (e *env) meter(id string) *meter {
	e.t.Helper()
	b, err := e.s.ProvisionDevice(context.Background(), id, "unixmeter")
	if err != nil {
		e.t.Fatal(err)
	}
	dir := e.t.TempDir()
	m := &meter{id: id, intDir: filepath.Join(dir, "int"), ext: filepath.Join(dir, "ext")}
	os.MkdirAll(m.intDir, 0o700)
	os.MkdirAll(m.ext, 0o755)
	raw, _ := json.Marshal(b)
	if err := os.WriteFile(filepath.Join(m.intDir, "bundle.json"), raw, 0o600); err != nil {
		e.t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join("testdata", "app"))
	for _, f := range ents {
		data, _ := os.ReadFile(filepath.Join("testdata", "app", f.Name()))
		os.WriteFile(filepath.Join(m.ext, f.Name()), data, 0o644)
	}
	return m
}

type cycle struct {
	Res   *string `json:"res"`
	Last  string  `json:"last"`
	RSeq  uint64  `json:"rseq"`
	SentN uint64  `json:"sent_n"`
	Base  uint64  `json:"base"`
	N     uint64  `json:"n"`
	// LoRaWAN: the frames of the round (lorawan.py)
	Frames int `json:"frames"`
}

type run struct {
	Cycles []cycle     `json:"cycles"`
	Mem    []int       `json:"mem"` // heap in use: before the uplink, with it, session open
	FDs    []int       `json:"fds"` // open file descriptors: before the uplink, after it closed
	Flags  uint32      `json:"flags"`
	Bad    [][2]string `json:"bad"`
	URL    string      `json:"url"`
	Root   string      `json:"root"` // the MQTT topic root the uplink used
	Out    string      `json:"-"`    // the whole console output, the JSON line last
}

// boot runs the frozen guard on the unix port: boot, then cycles reports through its uplink.
func (e *env) boot(m *meter, url string, cycles int) *run {
	e.t.Helper()
	return e.script(m, "meter.py", url, fmt.Sprint(cycles))
}

// script runs testdata/name on the unix build for meter m (its internal and application
// folders, then args) and decodes the JSON line it prints last.
func (e *env) script(m *meter, name string, args ...string) *run {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script, _ := filepath.Abs(filepath.Join("testdata", name))
	cmd := exec.CommandContext(ctx, e.mp, append([]string{script, m.intDir, m.ext}, args...)...)
	cmd.Dir = e.t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("micropython: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var r run
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		e.t.Fatalf("output %q: %v", out, err)
	}
	e.t.Logf("%s: %s", m.id, lines[len(lines)-1])
	r.Out = string(out)
	return &r
}

func (e *env) state(id string) string {
	e.t.Helper()
	d, err := e.s.Store().GetDevice(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d.State
}

// acknowledged checks that every cycle was acknowledged and pruned what it sent.
func acknowledged(t *testing.T, r *run) {
	t.Helper()
	for i, c := range r.Cycles {
		if c.Res == nil || *c.Res != "ok" {
			t.Fatalf("cycle %d: %s", i, c.Last)
		}
		if c.Base != c.SentN {
			t.Fatalf("cycle %d: pruned to %d, the report carried entries up to %d", i, c.Base, c.SentN)
		}
	}
}

// A sealed meter, the guard frozen into a real unix build, boots, reports over MQTT to the
// server's broker (the URL the provisioning bundle named), is acknowledged and prunes; the
// server trusts it. No Go code relays anything: the guard's own client speaks MQTT.
func TestSealedMeterReportsOverMQTT(t *testing.T) {
	e := newEnv(t)
	m := e.meter("unix-mqtt-1")
	r := e.boot(m, "", 2)
	if !strings.HasPrefix(r.URL, "mqtt://") {
		t.Fatalf("uplink %q: not the bundle's MQTT URL", r.URL)
	}
	acknowledged(t, r)
	if r.Flags != 0 || len(r.Bad) != 0 {
		t.Fatalf("flags %b bad %v", r.Flags, r.Bad)
	}
	// reports, acks and prunes stream the log: each pass closes the file it opened
	if len(r.FDs) != 2 || r.FDs[1] != r.FDs[0] {
		t.Fatalf("open file descriptors %v: a report, ack or prune left a file open", r.FDs)
	}
	if st := e.state(m.id); st != "trusted" {
		t.Fatalf("server state %q, want trusted", st)
	}
}

// The same over HTTP POST /v1/reports.
func TestSealedMeterReportsOverHTTP(t *testing.T) {
	e := newEnv(t)
	m := e.meter("unix-http-1")
	acknowledged(t, e.boot(m, "http://"+e.s.HTTPAddr(), 2))
	if st := e.state(m.id); st != "trusted" {
		t.Fatalf("server state %q, want trusted", st)
	}
}

// A meter whose calibration was edited on its storage reports the mismatch at boot over
// the network; the server turns it tampered, and the evidence stays acknowledged.
func TestTamperedMeterTurnsTamperedOverMQTT(t *testing.T) {
	e := newEnv(t)
	m := e.meter("unix-mqtt-2")
	if err := os.WriteFile(filepath.Join(m.ext, "calib.json"), []byte(`{"k": 1.2, "offset": -3}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.boot(m, "", 2)
	acknowledged(t, r)
	if len(r.Bad) != 1 || r.Bad[0][0] != "calib.json" || r.Flags&wire.StateCodeMismatch == 0 {
		t.Fatalf("bad %v flags %b", r.Bad, r.Flags)
	}
	if st := e.state(m.id); st != "tampered" {
		t.Fatalf("server state %q, want tampered", st)
	}
}

// Store-and-forward through the log: a meter that cannot reach the server keeps its
// entries (nothing pruned, the failure named), and after a reboot its next reports carry
// them all to the server, which verifies the whole chain and acknowledges it.
func TestMeterStoresAndForwardsOverReboot(t *testing.T) {
	e := newEnv(t)
	m := e.meter("unix-mqtt-3")
	r := e.boot(m, "mqtt://127.0.0.1:1", 2) // nothing listens on port 1
	for i, c := range r.Cycles {
		if c.Res != nil || c.Base != 0 || !strings.HasPrefix(c.Last, "error") {
			t.Fatalf("cycle %d without a server: %+v", i, c)
		}
	}
	if len(r.FDs) != 2 || r.FDs[1] != r.FDs[0] {
		t.Fatalf("open file descriptors %v: a refused connection left its socket open", r.FDs)
	}
	offline := r.Cycles[len(r.Cycles)-1].N
	r = e.boot(m, "", 2)
	acknowledged(t, r)
	if r.Cycles[0].SentN <= offline || r.Cycles[0].Base <= offline {
		t.Fatalf("after the reboot: %+v, offline entries up to %d", r.Cycles[0], offline)
	}
	if st := e.state(m.id); st != "trusted" {
		t.Fatalf("server state %q, want trusted", st)
	}
}
