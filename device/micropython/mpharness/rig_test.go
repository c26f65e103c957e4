package mpharness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/wire"
)

const t0 = 1767225600 // 2026-01-01T00:00:00Z, the simulated clock at first boot

// defaultApp is the small meter application most tests seal.
var defaultApp = map[string]string{
	"main.py":   "import calib\nVALUE = 1\ndef step():\n    return calib.K\n",
	"calib.py":  "K = 42\n",
	"table.bin": "calibration table v1\n",
}

// rig is one simulated MicroPython device with its sealed app and provisioning bundle.
type rig struct {
	t      *testing.T
	node   string
	dir    string
	app    *App
	bundle wire.Bundle
	opts   Options
	d      *Device
}

func newRig(t *testing.T, src map[string]string, o AppOptions, tweak ...func(*Options)) *rig {
	t.Helper()
	node, _ := testenv.Node(t)
	if src == nil {
		src = defaultApp
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app, err := BuildApp(ctx, node, dir, src, o)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, node: node, dir: dir, app: app, bundle: NewBundle("wm-0001", app.M.Product, app.M.Version)}
	if err := Provision(filepath.Join(dir, "int"), r.bundle); err != nil {
		t.Fatal(err)
	}
	r.opts = Options{Ext: app.Ext, Int: filepath.Join(dir, "int"), Manifest: app.Manifest, Now: t0, Node: node,
		Stderr: testWriter{t}, Timeout: 60 * time.Second}
	for _, f := range tweak {
		f(&r.opts)
	}
	r.start()
	return r
}

// start (re)starts the harness process; the device stays powered off until boot.
func (r *rig) start() {
	r.t.Helper()
	if r.d != nil {
		r.d.Close()
	}
	d, err := Start(context.Background(), r.opts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.d = d
	r.opts.Now = 0 // later harness processes continue the simulated clock
	r.t.Cleanup(func() { d.Close() })
}

func (r *rig) step(c Cmd) *Resp {
	r.t.Helper()
	resp, err := r.d.Step(c)
	if err != nil {
		r.t.Fatalf("%v: %v", c, err)
	}
	return resp
}

func (r *rig) boot() *Resp { r.t.Helper(); return r.step(Cmd{"cmd": "boot"}) }

func (r *rig) off() { r.t.Helper(); r.step(Cmd{"cmd": "power", "on": false}) }

// mpy compiles Python source to .mpy bytes.
func (r *rig) mpy(src string) []byte {
	r.t.Helper()
	p := filepath.Join(r.dir, "x.py")
	os.WriteFile(p, []byte(src), 0o644)
	if err := Compile(context.Background(), r.node, p, p+".mpy"); err != nil {
		r.t.Fatal(err)
	}
	b, _ := os.ReadFile(p + ".mpy")
	return b
}

// report asks the device for a report and opens it with the Go wire code.
func (r *rig) report() *wire.Report {
	r.t.Helper()
	b, err := r.d.Report()
	if err != nil {
		r.t.Fatal(err)
	}
	return r.open(b)
}

func (r *rig) open(b []byte) *wire.Report {
	r.t.Helper()
	m, err := wire.ParseReport(b)
	if err != nil {
		r.t.Fatalf("ParseReport: %v", err)
	}
	if string(m.Kid) != r.bundle.Device {
		r.t.Fatalf("kid %q", m.Kid)
	}
	rep, err := wire.OpenReport(m, r.bundle.UplinkKey)
	if err != nil {
		r.t.Fatalf("OpenReport: %v", err)
	}
	// the guard's encoding is Go's canonical one: decode and re-encode give the same bytes
	if again := wire.MustMarshal(rep); !bytes.Equal(again, m.Payload) {
		r.t.Fatalf("report payload is not Go's encoding:\nguard %x\ngo    %x", m.Payload, again)
	}
	for _, e := range rep.Log.Entries {
		v, err := wire.DecodePayload(e.Type, e.Payload)
		if err != nil {
			r.t.Fatalf("entry %d (%s): %v", e.N, wire.EntryName(e.Type), err)
		}
		if _, raw := v.([]byte); raw {
			continue
		}
		if again := wire.MustMarshal(v); !bytes.Equal(again, e.Payload) {
			r.t.Fatalf("entry %d (%s) payload is not Go's encoding:\nguard %x\ngo    %x", e.N, wire.EntryName(e.Type), e.Payload, again)
		}
	}
	return rep
}

// anchor0 is the server's anchor for the freshly provisioned device.
func (r *rig) anchor0() fschain.Anchor {
	var k fschain.Key
	copy(k[:], r.bundle.ChainKey)
	return fschain.NewAnchor(r.bundle.Device, r.bundle.Epoch, k)
}

// verify runs the Go verifier over a report's segment from anchor a.
func (r *rig) verify(a fschain.Anchor, rep *wire.Report) (fschain.Anchor, []wire.Entry) {
	r.t.Helper()
	na, es, err := fschain.Verify(a, rep.Log, nil)
	if err != nil {
		r.t.Fatalf("fschain.Verify: %v", err)
	}
	return na, es
}

func types(es []wire.Entry) []uint16 {
	var out []uint16
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

func hasType(es []wire.Entry, typ uint16) bool {
	for _, e := range es {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func badKinds(s *Summary) map[string]string {
	m := map[string]string{}
	for _, b := range s.Bad {
		m[b[0]] = b[1]
	}
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func sha256sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
