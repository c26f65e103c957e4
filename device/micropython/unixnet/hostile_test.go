package unixnet

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostileBroker accepts one client, answers CONNECT and SUBSCRIBE properly, then does what
// misbehave says after the client's PUBLISH.
func hostileBroker(t *testing.T, misbehave func(c net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		read := func() byte { // one packet: type byte, then skip its body
			h := make([]byte, 1)
			if _, err := io.ReadFull(c, h); err != nil {
				return 0
			}
			n, shift := 0, 0
			for {
				b := make([]byte, 1)
				io.ReadFull(c, b)
				n |= int(b[0]&0x7f) << shift
				shift += 7
				if b[0]&0x80 == 0 {
					break
				}
			}
			io.CopyN(io.Discard, c, int64(n))
			return h[0]
		}
		read()                            // CONNECT
		c.Write([]byte{0x20, 2, 0, 0})    // CONNACK accepted
		read()                            // SUBSCRIBE (packet id 1)
		c.Write([]byte{0x90, 3, 0, 1, 1}) // SUBACK
		read()                            // PUBLISH (packet id 2)
		misbehave(c)
		time.Sleep(5 * time.Second) // hold the connection: the client must give up by itself
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

type hostileRun struct {
	Error string `json:"error"`
	Feeds int    `json:"feeds"`
	MS    int    `json:"ms"`
}

// runHostile runs testdata/hostile.py with a 1.5 s deadline; caFile (DER) makes it connect
// over TLS.
func runHostile(t *testing.T, mp string, port int, caFile ...string) hostileRun {
	t.Helper()
	script, _ := filepath.Abs(filepath.Join("testdata", "hostile.py"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, mp, append([]string{script, itoa(port), "1500"}, caFile...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("micropython: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var r hostileRun
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	return r
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// A broker announcing a 2 MiB packet cannot make the guard allocate it: the client refuses
// any packet over its bound before reading it. One that stalls mid-packet cannot hang the
// guard: it gives up at its deadline, feeding the watchdog all the while.
func TestGuardMQTTClientAgainstHostileBroker(t *testing.T) {
	mp := micropython(t, meterManifest(t), false)
	port := hostileBroker(t, func(c net.Conn) {
		c.Write([]byte{0x40, 2, 0, 2})             // PUBACK
		c.Write([]byte{0x30, 0x80, 0x80, 0x80, 1}) // PUBLISH of 2 MiB announced
	})
	r := runHostile(t, mp, port)
	if !strings.Contains(r.Error, "refused") {
		t.Fatalf("oversize packet: %+v", r)
	}
	port = hostileBroker(t, func(c net.Conn) {
		c.Write([]byte{0x40, 2, 0, 2})             // PUBACK
		c.Write([]byte{0x30, 40, 0, 22, 'f', 'i'}) // a PUBLISH that stops after 4 of 40 bytes
	})
	r = runHostile(t, mp, port)
	if r.Error != "" && !strings.Contains(r.Error, "timeout") || r.MS < 1400 || r.MS > 10000 || r.Feeds < 4 {
		t.Fatalf("stalled packet: %+v (want to give up at the 1.5 s deadline, feeding the watchdog)", r)
	}
}
