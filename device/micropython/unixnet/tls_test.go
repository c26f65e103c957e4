package unixnet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// serverConfig is a listener's TLS configuration with a certificate from ca for dnsName,
// as the server's TOML loader builds it (TLS 1.2 or later).
func (ca *testCA) serverConfig(t *testing.T, dnsName string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// impostor is a TLS listener standing in for the server (a man in the middle): it counts
// the connections it gets, the handshakes that complete and the bytes sent to it after one.
type impostor struct {
	ln                           net.Listener
	wg                           sync.WaitGroup
	mu                           sync.Mutex
	conns, handshakes, dataBytes int
}

// localhostAddr is the listening address ("127.0.0.1:0" or "[::1]:0") at which the guard
// on the unix build mp reaches "localhost": it connects to the first address the resolver
// gives, which is ::1 on hosts that list it.
func localhostAddr(t *testing.T, mp string) string {
	t.Helper()
	out, err := exec.Command(mp, "-c", "import socket; print(socket.getaddrinfo('localhost', 1)[0][0])").CombinedOutput()
	if err != nil {
		t.Fatalf("resolving localhost on the unix build: %v %s", err, out)
	}
	if strings.TrimSpace(string(out)) == "10" { // AF_INET6 on Linux
		return "[::1]:0"
	}
	return "127.0.0.1:0"
}

func startImpostor(t *testing.T, cfg *tls.Config, addr string) *impostor {
	t.Helper()
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	im := &impostor{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Added before the handshake starts, hence before the client can fail it and exit:
			// every connection the meter made is waited for by stop.
			im.wg.Add(1)
			go func() {
				defer im.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				ok := c.(*tls.Conn).Handshake() == nil
				var n int64
				if ok {
					n, _ = io.Copy(io.Discard, c)
				}
				im.mu.Lock()
				defer im.mu.Unlock()
				im.conns++
				if ok {
					im.handshakes++
				}
				im.dataBytes += int(n)
			}()
		}
	}()
	return im
}

func (im *impostor) port() string {
	_, p, _ := net.SplitHostPort(im.ln.Addr().String())
	return p
}

// stop closes the listener once the meter has exited and waits for every connection it had.
func (im *impostor) stop() (conns, handshakes, dataBytes int) {
	im.ln.Close()
	im.wg.Wait()
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.conns, im.handshakes, im.dataBytes
}

// quiet checks that the console shows nothing of the TLS sessions: Debian's mbedTLS is
// built with debug output, which would print every handshake's secrets (unixtls in the
// firmware package turns it off).
func quiet(t *testing.T, r *run) {
	t.Helper()
	if strings.Contains(r.Out, "DBG:") || strings.Contains(r.Out, "master secret") {
		t.Fatalf("mbedTLS debug output on the console:\n%.2000s", r.Out)
	}
}

// refusedEveryTime checks that no attempt of r reached a server: each failed with the TLS
// refusal naming want, logged on the console, nothing was pruned and no socket was left open.
func refusedEveryTime(t *testing.T, r *run, want string) {
	t.Helper()
	quiet(t, r)
	for i, c := range r.Cycles {
		if c.Res != nil || c.Base != 0 || !strings.HasPrefix(c.Last, "error: TLS handshake with localhost failed: ") || !strings.Contains(c.Last, want) {
			t.Fatalf("cycle %d: %+v, want a TLS refusal naming %q", i, c, want)
		}
	}
	if !strings.Contains(r.Out, "fieldseal uplink: error: TLS handshake with localhost failed: ") {
		t.Fatalf("the refusal is not on the console:\n%s", r.Out)
	}
	if len(r.FDs) != 2 || r.FDs[1] != r.FDs[0] {
		t.Fatalf("open file descriptors %v: a refused connection left its socket open", r.FDs)
	}
}

// S15: the guard's uplink over TLS checks the server. The server's MQTT and HTTP listeners
// serve a certificate for "localhost" from the test CA, which the meter holds as ca.der.
// A listener with a certificate from another CA, and one with a certificate from the right
// CA for another name, are both refused during the handshake, over mqtts:// and https://
// alike (mbedTLS's finding logged, no byte of MQTT or HTTP sent, nothing pruned, no socket
// left open), and the meter keeps running; then the real server gets every entry over
// mqtts://, and a second meter reports over https://.
func TestThreatS15_GuardUplinkOverTLSRefusesImpostors(t *testing.T) {
	ca := newTestCA(t, "fieldseal test CA")
	e := newEnvTLS(t, ca.serverConfig(t, "localhost"))
	m := e.meter("unix-tls-1")
	if err := os.WriteFile(filepath.Join(m.intDir, "ca.der"), ca.cert.Raw, 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		cfg  *tls.Config
		want string // in mbedTLS's verification result
	}{
		{"another CA", newTestCA(t, "impostor CA").serverConfig(t, "localhost"), "not correctly signed by the trusted CA"},
		{"the right CA, another name", ca.serverConfig(t, "meters.example"), "Common Name (CN) does not match"},
	}
	for _, c := range cases {
		for _, scheme := range []string{"mqtts", "https"} {
			im := startImpostor(t, c.cfg, localhostAddr(t, e.mp))
			r := e.boot(m, scheme+"://localhost:"+im.port(), 2)
			refusedEveryTime(t, r, c.want)
			conns, handshakes, data := im.stop()
			if conns != len(r.Cycles) || handshakes != 0 || data != 0 {
				t.Fatalf("%s over %s: impostor saw %d connections, %d handshakes, %d bytes: want %d, 0, 0", c.name, scheme, conns, handshakes, data, len(r.Cycles))
			}
		}
	}
	if st := e.state(m.id); st != "provisioned" {
		t.Fatalf("server state %q after the refusals, want provisioned (nothing reached it)", st)
	}

	_, mqttPort, _ := net.SplitHostPort(e.s.MQTTAddr())
	r := e.boot(m, "mqtts://localhost:"+mqttPort, 2)
	quiet(t, r)
	acknowledged(t, r)
	if r.Cycles[0].SentN < 10 { // boot entries and register reads of the five refused runs
		t.Fatalf("first report over TLS carried entries up to %d: the refused ones were not kept", r.Cycles[0].SentN)
	}
	if st := e.state(m.id); st != "trusted" {
		t.Fatalf("server state %q, want trusted", st)
	}
	if len(r.Mem) == 3 {
		t.Logf("guard heap over mqtts: %d B before the uplink, +%d B TLS context and CA, +%d B with the session open",
			r.Mem[0], r.Mem[1]-r.Mem[0], r.Mem[2]-r.Mem[1])
	}

	h := e.meter("unix-tls-2")
	if err := os.WriteFile(filepath.Join(h.intDir, "ca.der"), ca.cert.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	_, httpPort, _ := net.SplitHostPort(e.s.HTTPAddr())
	r = e.boot(h, "https://localhost:"+httpPort, 2)
	quiet(t, r)
	acknowledged(t, r)
	if st := e.state(h.id); st != "trusted" {
		t.Fatalf("server state %q over https, want trusted", st)
	}
}

// The guard never connects unverified: firmware without a tls module that checks
// certificates gives no TLS wrapper (the uplink then refuses mqtts:// and https://), and a
// CA certificate mbedTLS cannot parse is refused when the uplink is made, not at the first
// handshake.
func TestThreatS15_GuardRefusesTLSThatCannotVerify(t *testing.T) {
	m := meterManifest(t)
	script := `from fieldseal import uplink
try:
    print(uplink.tls_wrapper(b"not a certificate"))
except ValueError as e:
    print("ValueError:", e)`
	for _, c := range []struct {
		withTLS bool
		want    string
	}{
		{false, "None"},
		{true, "ValueError: the server's CA certificate (ca.der) is unusable: invalid cert"},
	} {
		out, err := exec.Command(micropython(t, m, c.withTLS), "-c", script).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			t.Fatalf("tls=%v: %v %q, want %q", c.withTLS, err, out, c.want)
		}
	}
}

// A server that takes the connection and never answers the ClientHello cannot hold the
// guard past its deadline, and the guard feeds the watchdog while it waits: the handshake
// runs in the client's first write, in short non-blocking waits (a blocking handshake
// would wait up to the socket timeout per step, outlasting an 8 s watchdog).
func TestGuardTLSHandshakeGivesUpOnAStalledServer(t *testing.T) {
	mp := micropython(t, meterManifest(t), true)
	caFile := filepath.Join(t.TempDir(), "ca.der")
	if err := os.WriteFile(caFile, newTestCA(t, "fieldseal test CA").cert.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }() // reads the ClientHello, answers nothing
		}
	}()
	r := runHostile(t, mp, ln.Addr().(*net.TCPAddr).Port, caFile)
	if r.Error != "TLS handshake with 127.0.0.1 failed: write timeout" || r.MS < 1400 || r.MS > 10000 || r.Feeds < 4 {
		t.Fatalf("stalled handshake: %+v (want to give up at the 1.5 s deadline, feeding the watchdog)", r)
	}
}
