package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/wire"
)

// docBlock returns the code block of docs/OPERATIONS.md that starts with the line first.
func docBlock(t *testing.T, first string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), first+"\n")
	if !ok {
		t.Fatalf("OPERATIONS.md has no block starting %q", first)
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// mosquitto starts a real Mosquitto with the device and server settings of
// docs/OPERATIONS.md (TLS left out), devices meter-a and meter-b, and aclDevices as the
// devices' ACL. It returns the devices' and the servers' listener addresses.
func mosquitto(t *testing.T, aclDevices string) (devices, servers string) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		testenv.SkipOrFail(t, "mosquitto not found on PATH (Debian: apt-get install mosquitto)")
	}
	pw, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		testenv.SkipOrFail(t, "mosquitto_passwd not found on PATH")
	}
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	os.WriteFile(p("passwd"), nil, 0o600)
	for _, u := range []string{"meter-a", "meter-b"} {
		if out, err := exec.Command(pw, "-b", p("passwd"), u, "pw-"+u).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v %s", err, out)
		}
	}
	os.WriteFile(p("acl-devices"), []byte(aclDevices), 0o600)
	os.WriteFile(p("acl-servers"), []byte(docBlock(t, "# /etc/mosquitto/acl-servers — read every uplink, write every downlink")), 0o600)
	devices, servers = testenv.FreeAddr(t), testenv.FreeAddr(t)
	dh, dp, _ := net.SplitHostPort(devices)
	sh, sp, _ := net.SplitHostPort(servers)
	conf := fmt.Sprintf("per_listener_settings true\n\nlistener %s %s\nallow_anonymous false\npassword_file %s\nacl_file %s\n%s\nlistener %s %s\nallow_anonymous true\nacl_file %s\n",
		dp, dh, p("passwd"), p("acl-devices"), deviceListenerExtras(t), sp, sh, p("acl-servers"))
	if os.Getuid() == 0 {
		conf = "user root\n" + conf // else it drops to "mosquitto", who cannot read the test's files
	}
	os.WriteFile(p("mosquitto.conf"), []byte(conf), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-c", p("mosquitto.conf"))
	var logs bytes.Buffer
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto:\n%s", logs.String())
		}
	})
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", devices); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("mosquitto did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return devices, servers
}

// deviceListenerExtras are the device-listener lines of the documented mosquitto.conf that
// are not about TLS, files or the listener itself (retain_available, …).
func deviceListenerExtras(t *testing.T) string {
	block := docBlock(t, "# /etc/mosquitto/mosquitto.conf")
	dev, _, _ := strings.Cut(block, "# fleet servers")
	var out []string
	sc := bufio.NewScanner(strings.NewReader(dev))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch f := strings.Fields(l); {
		case len(f) == 0, strings.HasPrefix(l, "#"):
		case f[0] == "listener", f[0] == "certfile", f[0] == "keyfile", f[0] == "password_file", f[0] == "acl_file",
			f[0] == "per_listener_settings", f[0] == "allow_anonymous":
		default:
			out = append(out, l)
		}
	}
	if !strings.Contains(strings.Join(out, "\n"), "retain_available false") {
		t.Fatal("the documented device listener does not set retain_available false")
	}
	return strings.Join(out, "\n")
}

func pahoConnect(t *testing.T, addr, id, user string, will string) (paho.Client, chan struct{}) {
	t.Helper()
	lost := make(chan struct{}, 1)
	o := pahoOptions(addr, id, user, "pw-"+user).SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} })
	if user == "" {
		o.SetUsername("").SetPassword("")
	}
	if will != "" {
		o.SetWill(will, "EVIL forged ack", 1, false)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s connects: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, lost
}

// willReaches runs the S11 attack against a Mosquitto with the given device ACL: meter-a
// connects with a will on meter-b's downlink and is then taken over (its will is due), and
// a server marks the end by publishing on meter-b's downlink. It returns what meter-b got
// before the mark.
func willReaches(t *testing.T, acl string) []string {
	devices, servers := mosquitto(t, acl)
	got := make(chan string, 8)
	b, _ := pahoConnect(t, devices, "meter-b", "meter-b", "")
	if tok := b.Subscribe(wire.DefaultTopics.Down("meter-b"), 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	_, lost := pahoConnect(t, devices, "meter-a", "meter-a", wire.DefaultTopics.Down("meter-b"))
	pahoConnect(t, devices, "meter-a", "meter-a", "") // takes the session over: the will is due
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the first meter-a connection was not taken over")
	}
	srv, _ := pahoConnect(t, servers, "fleet-1", "", "")
	srv.Publish(wire.DefaultTopics.Down("meter-b"), 1, false, "MARK").WaitTimeout(5 * time.Second)
	var before []string
	for {
		select {
		case m := <-got:
			if m == "MARK" {
				return before
			}
			before = append(before, m)
		case <-time.After(10 * time.Second):
			t.Fatal("the server's message never reached meter-b")
		}
	}
}

// S11 against a real Mosquitto configured as docs/OPERATIONS.md says: a will meter-a sets on
// meter-b's downlink never reaches meter-b (Mosquitto checks wills against the ACL when it
// publishes them), and a retained publish disconnects the device (retain_available false).
// With the `readwrite` ACL the docs warn against, the same will does arrive: the test sees
// the attack when the configuration lets it through.
func TestThreatS11_MosquittoDocumentedACL(t *testing.T) {
	acl := docBlock(t, "# /etc/mosquitto/acl-devices — username = device id: write its uplink, read its downlink")
	if got := willReaches(t, acl); len(got) != 0 {
		t.Fatalf("with the documented ACL meter-b received %q from meter-a's will", got)
	}
	t.Run("readwrite ACL lets it through", func(t *testing.T) {
		if got := willReaches(t, "pattern readwrite fieldseal/v1/#\n"); len(got) != 1 || !strings.Contains(got[0], "EVIL") {
			t.Fatalf("with a readwrite ACL meter-b received %q (want the will)", got)
		}
	})
	t.Run("retain", func(t *testing.T) {
		devices, _ := mosquitto(t, acl)
		a, lost := pahoConnect(t, devices, "meter-a", "meter-a", "")
		a.Publish(wire.DefaultTopics.Up("meter-a"), 1, true, "retained report")
		select {
		case <-lost:
		case <-time.After(5 * time.Second):
			t.Fatal("a retained publish did not disconnect the device")
		}
	})
}
