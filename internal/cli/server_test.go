package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/wire"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The server verb starts with zero setup, and manifest push and provision work against it.
func TestServerProvisionManifestPush(t *testing.T) {
	dir := t.TempDir()
	vendorPath := filepath.Join(dir, "vendor.key")
	vendor, _ := keys.Generate()
	if err := keys.WritePair(vendorPath, vendor, false); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuf
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, &Env{Stdout: &out, Stderr: &errOut}, []string{"server", "--data", data, "--http", httpAddr, "--mqtt", mqttAddr, "--vendor-key", vendorPath + ".pub", "--log-level", "warn"})
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("server exit %d: %s", code, errOut.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not shut down")
		}
	}()
	// Up once it answers and has printed its start lines (they follow the listeners).
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if strings.Contains(out.String(), "MQTT ") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not up: %s %s", out.String(), errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "admin.token") {
		t.Fatalf("start does not say where the admin token is: %s", out.String())
	}
	tokenFile := filepath.Join(data, "admin.token")
	sum := sha256.Sum256([]byte("print(1)"))
	files := []wire.File{{Path: "main.mpy", Size: 8, SHA256: sum[:]}}
	m := &wire.Manifest{Product: "watermeter", Version: 5, Created: 1, Files: files, Mutable: []string{}, Policy: wire.DefaultPolicy(), Root: wire.FilesRoot(files), Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	signed, err := wire.SignManifest(m, vendor)
	if err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(dir, "manifest.cose")
	os.WriteFile(mpath, signed, 0o644)
	run := func(args ...string) (int, string) {
		var o, e bytes.Buffer
		code := Run(context.Background(), &Env{Stdout: &o, Stderr: &e}, args)
		return code, o.String() + e.String()
	}
	base := "http://" + httpAddr
	if code, msg := run("manifest", "push", "--server", base, "--token", tokenFile, mpath); code != 0 || !strings.Contains(msg, "version 5") {
		t.Fatalf("manifest push: %d %s", code, msg)
	}
	if code, msg := run("manifest", "push", "--server", base, "--token", tokenFile, mpath); code != ExitOK || !strings.Contains(msg, "already registered") {
		t.Fatalf("the same manifest pushed again: %d %s", code, msg)
	}
	m.Created = 2 // other bytes, same version
	resigned, _ := wire.SignManifest(m, vendor)
	os.WriteFile(mpath, resigned, 0o644)
	if code, msg := run("manifest", "push", "--server", base, "--token", tokenFile, mpath); code != ExitError || !strings.Contains(msg, "downgrade") {
		t.Fatalf("another manifest with the same version: %d %s", code, msg)
	}
	if code, msg := run("provision", "--server", base, "--token", tokenFile, "--device", "meter-1", "--product", "watermeterr", "--out", filepath.Join(dir, "typo.json")); code != ExitError || !strings.Contains(msg, `product "watermeterr" has no registered manifest`) || !strings.Contains(msg, "known products: watermeter") || !strings.Contains(msg, "fieldseal manifest push") {
		t.Fatalf("provision of an unknown product: %d %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "typo.json")); err == nil {
		t.Fatal("a refused provision left a bundle file")
	}
	if code, msg := run("provision", "--server", base, "--token", filepath.Join(dir, "no-such", "admin.token"), "--device", "meter-1", "--product", "watermeter", "--out", filepath.Join(dir, "x.json")); code != ExitError || !strings.Contains(msg, "no such file") {
		t.Fatalf("a missing token file: %d %s", code, msg)
	}
	foreign, _ := keys.Generate()
	fsigned, _ := wire.SignManifest(&wire.Manifest{Product: "watermeter", Version: 6, Created: 1, Files: files, Mutable: []string{}, Policy: wire.DefaultPolicy(), Root: wire.FilesRoot(files), Mpy: m.Mpy}, foreign)
	os.WriteFile(mpath, fsigned, 0o644)
	if code, msg := run("manifest", "push", "--server", base, "--token", tokenFile, mpath); code != ExitError || !strings.Contains(msg, "unknown-key") {
		t.Fatalf("foreign push: %d %s", code, msg)
	}
	bundle := filepath.Join(dir, "meter-1.json")
	if code, msg := run("provision", "--server", base, "--token", tokenFile, "--device", "meter-1", "--product", "watermeter", "--out", bundle); code != 0 {
		t.Fatalf("provision: %d %s", code, msg)
	}
	fi, err := os.Stat(bundle)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle file %v %v", fi, err)
	}
	var b wire.Bundle
	raw, _ := os.ReadFile(bundle)
	if err := json.Unmarshal(raw, &b); err != nil || b.Check() != nil || b.ManifestVersion != 5 || b.Epoch != 1 {
		t.Fatalf("bundle %+v %v", b, err)
	}
	serverPub, err := keys.LoadPublic(filepath.Join(data, "server.key.pub"))
	if err != nil || !bytes.Equal(serverPub, b.ServerPub) || !bytes.Equal(ed25519.PublicKey(b.ServerPub), serverPub) {
		t.Fatalf("bundle server key does not match server.key.pub: %v", err)
	}
	if code, msg := run("provision", "--server", base, "--token", tokenFile, "--device", "meter-1", "--product", "watermeter", "--out", bundle); code != ExitError || !strings.Contains(msg, "exists") {
		t.Fatalf("overwrite: %d %s", code, msg)
	}
	if code, msg := run("provision", "--server", base, "--token", "nope", "--device", "meter-2", "--product", "watermeter", "--out", filepath.Join(dir, "m2.json")); code != ExitError || !strings.Contains(msg, "unauthorized") {
		t.Fatalf("bad token: %d %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "m2.json")); err == nil {
		t.Fatal("a failed provision left a bundle file")
	}
	// A LoRaWAN meter is provisioned with its DevEUI (any case, stored lowercase); a second
	// device with the same DevEUI, or a malformed one, is refused and leaves no bundle.
	if code, msg := run("provision", "--server", base, "--token", tokenFile, "--device", "meter-2", "--product", "watermeter", "--dev-eui", "70B3D57ED0000001", "--out", filepath.Join(dir, "m2.json")); code != 0 || !strings.Contains(msg, "DevEUI 70b3d57ed0000001") {
		t.Fatalf("provision with a DevEUI: %d %s", code, msg)
	}
	if code, msg := run("provision", "--server", base, "--token", tokenFile, "--device", "meter-3", "--product", "watermeter", "--dev-eui", "70b3d57ed0000001", "--out", filepath.Join(dir, "m3.json")); code != ExitError || !strings.Contains(msg, `DevEUI 70b3d57ed0000001 is already device "meter-2"'s`) {
		t.Fatalf("a duplicate DevEUI: %d %s", code, msg)
	}
	if code, msg := run("provision", "--server", base, "--token", tokenFile, "--device", "meter-3", "--product", "watermeter", "--dev-eui", "70B3D57ED00001", "--out", filepath.Join(dir, "m3.json")); code != ExitError || !strings.Contains(msg, "--dev-eui 70B3D57ED00001: want 16 hex digits") {
		t.Fatalf("a malformed DevEUI: %d %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "m3.json")); err == nil {
		t.Fatal("a refused provision left a bundle file")
	}
	// The real server mounts the operator's console at / and /ui/: a browser without a
	// session is sent to sign in (a bearer token is the API's, not the console's); signed
	// in with the admin token, the pages answer.
	adminTok, _ := os.ReadFile(tokenFile)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", base+"/ui/devices", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(adminTok)))
	if resp, err := browser.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Fatalf("console without a session: %v %v, want 303 to /ui/login", resp, err)
	}
	login, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(url.Values{"token": {strings.TrimSpace(string(adminTok))}}.Encode()))
	login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := browser.Do(login); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("console sign-in: %v %v", resp, err)
	}
	for _, path := range []string{"/", "/ui/devices", "/ui/devices/meter-1", "/ui/devices/meter-2"} {
		resp, err := browser.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("console %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if path == "/ui/devices/meter-1" && !strings.Contains(string(body), "meter-1") {
			t.Fatalf("console page for meter-1 does not name it")
		}
		if path == "/ui/devices/meter-2" && !strings.Contains(string(body), `<dt>LoRaWAN DevEUI</dt><dd class="mono">70b3d57ed0000001</dd>`) {
			t.Fatalf("console page for meter-2 does not show its DevEUI")
		}
	}
}

// A port in use fails the start with the port and the flag to change.
func TestServerPortInUse(t *testing.T) {
	httpAddr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuf
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, &Env{Stdout: &out, Stderr: &errOut}, []string{"server", "--data", t.TempDir(), "--http", httpAddr, "--mqtt", "off", "--log-level", "error"})
	}()
	for i := 0; i < 300; i++ {
		if resp, err := http.Get("http://" + httpAddr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var e bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &bytes.Buffer{}, Stderr: &e}, []string{"server", "--data", t.TempDir(), "--http", httpAddr, "--mqtt", "off"})
	if code != ExitError || !strings.Contains(e.String(), httpAddr) || !strings.Contains(e.String(), "--http") {
		t.Fatalf("%d %s", code, e.String())
	}
	cancel()
	<-done
}

// --config: a TOML file sets what the flags set, plus TLS for HTTP and MQTT.
func TestServerTOMLConfigWithTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, certPEM, 0o644)
	os.WriteFile(keyPath, keyPEM, 0o600)
	httpAddr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	data := filepath.Join(dir, "data")
	conf := fmt.Sprintf(`data = %q
http = %q
mqtt = %q
log_level = "warn"
silent_after = 5
[http_tls]
cert = %q
key = %q
[mqtt_tls]
cert = %q
key = %q
`, data, httpAddr, mqttAddr, certPath, keyPath, certPath, keyPath)
	confPath := filepath.Join(dir, "fieldseal.toml")
	os.WriteFile(confPath, []byte(conf), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuf
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, &Env{Stdout: &out, Stderr: &errOut}, []string{"server", "--config", confPath})
	}()
	defer func() { cancel(); <-done }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: 5 * time.Second}
	var err error
	for i := 0; i < 200; i++ {
		var resp *http.Response
		if resp, err = hc.Get("https://" + httpAddr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("HTTPS: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "https://") || !strings.Contains(out.String(), data) {
		t.Fatalf("start message: %s", out.String())
	}
	c, err := tls.Dial("tcp", mqttAddr, tlsConf)
	if err != nil {
		t.Fatalf("MQTT over TLS: %v", err)
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(data, "admin.token")); err != nil {
		t.Fatal("the data folder from the config file was not used")
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fieldseal test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// A misspelt or malformed config key is an error that names it, not a silent default.
func TestServerConfigRejectsUnknownAndMalformedKeys(t *testing.T) {
	for name, c := range map[string]struct{ toml, want string }{
		"misspelt":          {"silent_aftr = 4\n", `unknown key "silent_aftr"`},
		"bad duration":      {"receipt_interval = \"soon\"\n", "receipt_interval"},
		"lorawan kind":      {"[[lorawan]]\nkind = \"chirpstak\"\nbroker = \"tcp://127.0.0.1:1883\"\napplication = \"a\"\n", `kind "chirpstak"`},
		"lorawan eui":       {"[[lorawan]]\nkind = \"tts\"\nbroker = \"tcp://127.0.0.1:1883\"\napplication = \"a\"\n[lorawan.devices]\n\"0102\" = \"wm-1\"\n", `DevEUI "0102"`},
		"lorawan embedded":  {"[[lorawan]]\nkind = \"chirpstack\"\nbroker = \"embedded\"\nusername = \"chirpstack\"\npassword = \"0123456789abcdef\"\napplication = \"a\"\n", `username "chirpstack" could be a device id`},
		"bad schedule":      {"balance_every = \"often\"\n", "balance_every"},
		"negative schedule": {"balance_every = \"-1h\"\n", "--balance-every"},
	} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "fieldseal.toml")
		if err := os.WriteFile(cfg, []byte(c.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		var e bytes.Buffer
		code := Run(context.Background(), &Env{Stdout: &bytes.Buffer{}, Stderr: &e}, []string{"server", "--config", cfg, "--data", dir, "--http", "off", "--mqtt", "off"})
		if code != ExitError || !strings.Contains(e.String(), c.want) {
			t.Errorf("%s: exit %d, %q; want exit 2 naming %s", name, code, e.String(), c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "server.key")); err == nil {
			t.Errorf("%s: the server started (created server.key) despite the bad config", name)
		}
	}
}

// A first start that fails on a taken port says what to do and leaves no half-made data
// folder behind; a data folder that existed before is kept.
func TestServerFailedStartLeavesNoDataFolder(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := filepath.Join(t.TempDir(), "fieldseal-data")
	var e bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &bytes.Buffer{}, Stderr: &e}, []string{"server", "--data", data, "--http", testenv.FreeAddr(t), "--mqtt", taken.Addr().String()})
	if code != ExitError {
		t.Fatalf("exit %d: %s", code, e.String())
	}
	for _, want := range []string{taken.Addr().String(), "--mqtt 127.0.0.1:1884", "--mqtt off"} {
		if !strings.Contains(e.String(), want) {
			t.Errorf("the message does not say %q: %s", want, e.String())
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("a failed first start left %s behind (%v)", data, err)
	}
	kept := t.TempDir()
	os.WriteFile(filepath.Join(kept, "notes"), []byte("mine"), 0o600)
	Run(context.Background(), &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}, []string{"server", "--data", kept, "--http", testenv.FreeAddr(t), "--mqtt", taken.Addr().String()})
	if _, err := os.Stat(filepath.Join(kept, "notes")); err != nil {
		t.Fatalf("a failed start touched a data folder that existed before: %v", err)
	}
}

// A fleet server must never hold the vendor's signing key: given the private key where the
// public one belongs, it refuses to start and names the public key file.
func TestServerRefusesVendorPrivateKey(t *testing.T) {
	dir := t.TempDir()
	vendorPath := filepath.Join(dir, "vendor.key")
	vendor, _ := keys.Generate()
	if err := keys.WritePair(vendorPath, vendor, false); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	var e bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &bytes.Buffer{}, Stderr: &e}, []string{"server", "--data", data, "--http", testenv.FreeAddr(t), "--mqtt", "off", "--vendor-key", vendorPath})
	if code != ExitError || !strings.Contains(e.String(), "private") || !strings.Contains(e.String(), "vendor.key.pub") {
		t.Fatalf("exit %d: %s", code, e.String())
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatal("the refused start created the data folder")
	}
}
