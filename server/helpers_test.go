package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/dashboard"
	"github.com/fieldseal/fieldseal/server/lpwan"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlite"
	"github.com/fieldseal/fieldseal/wire"
)

// clock is a settable clock for the server under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	s      *server.Server
	clock  *clock
	vendor ed25519.PrivateKey
	base   string         // http://addr
	man    *wire.Manifest // registered by registerManifest: the manifest devices report
	lpa    *lpwan.Assembler
}

func quietLogger() *slog.Logger {
	if os.Getenv("FIELDSEAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testVendor is the vendor key whose public half the servers under test trust.
func testVendor() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, 32)) }

// newEnv starts a server on loopback with free ports, real SQLite in a temp folder, the
// embedded broker and a settable clock.
func newEnv(t *testing.T, mod ...func(*server.Config)) *env {
	t.Helper()
	vendor := testVendor()
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	cfg := server.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		VendorKeys: []ed25519.PublicKey{vendor.Public().(ed25519.PublicKey)}, Now: c.Now, Logger: quietLogger()}
	for _, m := range mod {
		m(&cfg)
	}
	if cfg.Store == nil {
		cfg.Store = openStore(t, cfg.DataDir)
	}
	s, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dashboard == nil {
		s.SetDashboard(dashboard.ForServer(s)) // as `fieldseal server` mounts it
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return &env{t: t, s: s, clock: c, vendor: vendor, base: "http://" + s.HTTPAddr()}
}

// manifest signs a manifest of product at version whose single file has content.
func (e *env) manifest(product string, version uint64, content string, key ed25519.PrivateKey) ([]byte, *wire.Manifest) {
	e.t.Helper()
	sum := sha256.Sum256([]byte(content))
	files := []wire.File{{Path: "app.mpy", Size: uint64(len(content)), SHA256: sum[:]}}
	p := wire.DefaultPolicy()
	p.ReportInterval = 60
	m := &wire.Manifest{Product: product, Version: version, Created: 1764000000, Files: files, Mutable: []string{}, Policy: p, Root: wire.FilesRoot(files),
		Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	if key == nil {
		key = e.vendor
	}
	signed, err := wire.SignManifest(m, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return signed, m
}

// device is a simulated device: a real FS-chain log and the report/ack logic of the guard.
type device struct {
	t     *testing.T
	b     *wire.Bundle
	w     *fschain.Writer
	rseq  uint64
	nonce []byte
	boot  uint32
	man   wire.ManifestRef
	clock func() uint64
	last  *wire.Ack
}

// provision provisions a device of product, registering the product's first manifest
// (version 1, content "v1") before if it has none: the server provisions no device of a
// product without one, and an operator must push it first too.
func (e *env) provision(id, product string) *device {
	e.t.Helper()
	e.ensureManifest(product)
	b, err := e.s.ProvisionDevice(context.Background(), id, product)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.newDevice(b)
}

// ensureManifest registers manifest version 1 of product (content "v1", as tests sign it
// with e.manifest) unless the product has a manifest already.
func (e *env) ensureManifest(product string) {
	e.t.Helper()
	if _, err := e.s.Store().CurrentManifest(context.Background(), product); err == nil {
		return
	}
	signed, _ := e.manifest(product, 1, "v1", nil)
	if _, err := e.s.RegisterManifest(context.Background(), signed); err != nil {
		e.t.Fatal(err)
	}
}

// runs is the manifest a device provisioned with b runs: the version b names, with its
// registered root (zeros if this server does not hold it).
func (e *env) runs(b *wire.Bundle) wire.ManifestRef {
	root := make([]byte, 32)
	if e.s == nil { // a server in another process: the caller sets the root
		return wire.ManifestRef{Product: b.Product, Version: b.ManifestVersion, Root: root}
	}
	if m, err := e.s.Manifest(context.Background(), b.Product, b.ManifestVersion); err == nil {
		root = m.Root
	}
	return wire.ManifestRef{Product: b.Product, Version: b.ManifestVersion, Root: root}
}

// newDevice is a device set up from bundle b, running the manifest b names.
func (e *env) newDevice(b *wire.Bundle) *device {
	var k1 fschain.Key
	copy(k1[:], b.ChainKey)
	w, err := fschain.Create(fschain.NewMemStorage(), b.Device, b.Epoch, k1)
	if err != nil {
		e.t.Fatal(err)
	}
	return &device{t: e.t, b: b, w: w, boot: 1, man: e.runs(b),
		clock: func() uint64 { return uint64(e.clock.Now().Unix()) }}
}

func (d *device) log(typ uint16, payload any) wire.Entry {
	d.t.Helper()
	var p []byte
	if payload == nil {
		p = wire.MustMarshal(wire.EmptyPayload{})
	} else {
		p = wire.MustMarshal(payload)
	}
	e, err := d.w.Append(d.clock(), typ, p)
	if err != nil {
		d.t.Fatal(err)
	}
	return e
}

// report builds and seals the next report; mod may change it before sealing.
func (d *device) report(mod func(*wire.Report)) []byte {
	d.t.Helper()
	d.rseq++
	n, head, seal := d.w.State()
	r := &wire.Report{Dev: d.b.Device, Epoch: d.b.Epoch, RSeq: d.rseq, Boot: d.boot, Time: d.clock(), Man: d.man,
		Meas: wire.Measurement{Status: wire.MeasOK, FilesChecked: 1, LastCheck: d.clock(), Bad: []wire.Finding{}},
		Log:  d.w.Segment(), Nonce: d.nonce}
	r.Log.N, r.Log.Head, r.Log.Seal = n, head[:], seal[:]
	if mod != nil {
		mod(r)
	}
	data, err := wire.SealReport(r, d.b.UplinkKey)
	if err != nil {
		d.t.Fatal(err)
	}
	return data
}

// accept opens an ack like the guard does, remembers the nonce and prunes the log.
func (d *device) accept(ackBytes []byte) *wire.Ack {
	d.t.Helper()
	a, err := wire.OpenAck(ackBytes, d.b.Device, d.b.DownlinkKey)
	if err != nil {
		d.t.Fatalf("ack does not open under T: %v", err)
	}
	if a.Epoch != d.b.Epoch {
		d.t.Fatalf("ack epoch %d", a.Epoch)
	}
	d.nonce = a.Nonce
	if a.Reject == "" && a.Anchor.N > 0 {
		var h fschain.Hash
		copy(h[:], a.Anchor.Head)
		if base, _ := d.w.Base(); a.Anchor.N > base {
			if err := d.w.Prune(a.Anchor.N, h); err != nil {
				d.t.Fatalf("prune to %d: %v", a.Anchor.N, err)
			}
		}
	}
	d.last = a
	return a
}

// send runs a report through the pipeline directly and accepts the ack.
func (e *env) send(d *device, mod func(*wire.Report)) (*wire.Ack, error) {
	e.t.Helper()
	ack, err := e.s.HandleReport(context.Background(), d.report(mod))
	var a *wire.Ack
	if ack != nil {
		a = d.accept(ack)
	}
	return a, err
}

func (e *env) mustSend(d *device) *wire.Ack {
	e.t.Helper()
	a, err := e.send(d, nil)
	if err != nil {
		e.t.Fatalf("report of %s rejected: %v", d.b.Device, err)
	}
	return a
}

// postReport sends a report over HTTP.
func (e *env) postReport(data []byte) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.base+"/v1/reports", bytes.NewReader(data))
	req.Header.Set("Content-Type", `application/cose; cose-type="cose-mac0"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// api calls the JSON API with a bearer token and decodes the answer into out (if any).
func (e *env) api(method, path, token string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func (e *env) device(id string) *store.Device {
	e.t.Helper()
	d, err := e.s.Store().GetDevice(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) audits(dev string) []store.Audit {
	e.t.Helper()
	a, err := e.s.Store().ListAudit(context.Background(), store.Page{Dev: dev})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func hasAudit(as []store.Audit, kind, reason string) bool {
	for _, a := range as {
		if a.Kind == kind && a.Reason == reason {
			return true
		}
	}
	return false
}

func (e *env) alerts(dev string) []store.Alert {
	e.t.Helper()
	a, err := e.s.Store().ListAlerts(context.Background(), store.Page{Dev: dev}, false)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want rejection %q", reason)
	}
	if got := server.Reason(err); got != reason {
		t.Fatalf("rejected as %q (%v); want %q", got, err, reason)
	}
	var re *server.RejectError
	if !errors.As(err, &re) {
		t.Fatalf("error %T is not a *server.RejectError", err)
	}
}

func (e *env) metric(name string) string {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+e.s.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

// mqttDevice connects to the embedded broker as dev with password.
func mqttConnect(t *testing.T, addr, user, password string) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(user + "/" + time.Now().Format("150405.000000")).
		SetUsername(user).SetPassword(password).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timeout")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

type (
	pahoClient  = paho.Client
	pahoMessage = paho.Message
)

func pahoOptions(addr, clientID, user, password string) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).SetUsername(user).SetPassword(password).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
}

func newPaho(o *paho.ClientOptions) paho.Client { return paho.NewClient(o) }

// openStore opens a SQLite store in dir, closed when the test ends (after the servers on
// it have shut down: cleanups run last-registered first).
func openStore(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(dir, "fieldseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
