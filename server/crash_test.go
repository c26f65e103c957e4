package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlite"
	"github.com/fieldseal/fieldseal/wire"
)

// buildFieldseal builds the fieldseal binary once per test run.
func buildFieldseal(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fieldseal")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/fieldseal")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd  *exec.Cmd
	base string
	mqtt string
}

func startServerProc(t *testing.T, bin, data string) *proc {
	t.Helper()
	addr, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	vendorKey := filepath.Join(t.TempDir(), "vendor")
	if err := keys.WritePair(vendorKey, testVendor(), false); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "--data", data, "--http", addr, "--mqtt", mqttAddr, "--log-level", "error", "--vendor-key", vendorKey+keys.PubSuffix)
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 300 {
			t.Fatalf("server did not come up: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &proc{cmd: cmd, base: base, mqtt: mqttAddr}
}

// acked is what a device learnt from its latest authentic ack.
type acked struct {
	rseq uint64
	n    uint64
	head []byte
}

// S9: SIGKILL the server while a load generator sends (over HTTP and MQTT). After restart every acked report
// is stored, every anchor is at least where the acks said (same head when equal), and
// devices carry on without gap or fork — including those whose last ack was lost.
func TestThreatS9_KillMidIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills a server process")
	}
	bin := buildFieldseal(t)
	data := t.TempDir()
	p := startServerProc(t, bin, data)
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	const nDev = 40
	devs := make([]*device, nDev)
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	e := &env{t: t, clock: clk, vendor: testVendor()}
	signed, m := e.manifest("watermeter", 1, "v1", nil)
	req, _ := http.NewRequest("POST", p.base+"/api/v1/manifests", bytes.NewReader(signed))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/cose")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("register the manifest: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	for i := range devs {
		body, _ := json.Marshal(map[string]string{"device": fmt.Sprintf("crash-%02d", i), "product": "watermeter"})
		req, _ := http.NewRequest("POST", p.base+"/api/v1/devices", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b wire.Bundle
		json.NewDecoder(resp.Body).Decode(&b)
		resp.Body.Close()
		devs[i] = e.newDevice(&b)
		devs[i].man.Root = m.Root
	}
	last := make([]acked, nDev)
	var sent, acks atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	post := func(base string, data []byte) ([]byte, int, error) {
		resp, err := http.Post(base+"/v1/reports", `application/cose; cose-type="cose-mac0"`, bytes.NewReader(data))
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return b, resp.StatusCode, err
	}
	// Odd devices report over MQTT (the ack arrives on the downlink only after the commit),
	// even ones over HTTP.
	sendMQTT := make([]func([]byte) ([]byte, bool), nDev)
	for i, d := range devs {
		if i%2 == 0 {
			continue
		}
		c, err := mqttConnect(t, p.mqtt, d.b.Device, wire.MQTTPassword(d.b.UplinkKey))
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan []byte, 1)
		if tok := c.Subscribe(wire.DefaultTopics.Down(d.b.Device), 1, func(_ pahoClient, m pahoMessage) { ch <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		sendMQTT[i] = func(rep []byte) ([]byte, bool) {
			c.Publish(wire.DefaultTopics.Up(d.b.Device), 1, false, rep)
			select {
			case b := <-ch:
				return b, true
			case <-time.After(5 * time.Second):
				return nil, false // the server died under us
			}
		}
	}
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: uint64(k)})
				sent.Add(1)
				var body []byte
				code := 200
				if send := sendMQTT[i]; send != nil {
					var ok bool
					if body, ok = send(d.report(nil)); !ok {
						return
					}
				} else {
					var err error
					if body, code, err = post(p.base, d.report(nil)); err != nil {
						return // the server died under us
					}
				}
				if code != 200 {
					t.Errorf("device %d: status %d %s", i, code, body)
					return
				}
				a, err := wire.OpenAck(body, d.b.Device, d.b.DownlinkKey)
				if err != nil {
					t.Errorf("ack: %v", err)
					return
				}
				d.accept(body)
				last[i] = acked{rseq: a.AckedRSeq, n: a.Anchor.N, head: a.Anchor.Head}
				acks.Add(1)
			}
		}()
	}
	// Kill once the load is well under way (at least 1.5 s and 200 acks), however busy the machine.
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond || acks.Load() < 200 {
		if time.Since(start) > 60*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	close(stop)
	wg.Wait()
	if acks.Load() < 50 {
		t.Fatalf("only %d acks before the kill: load too light to test anything", acks.Load())
	}
	t.Logf("%d reports sent, %d acked before SIGKILL", sent.Load(), acks.Load())

	st, err := sqlite.Open(filepath.Join(data, "fieldseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, d := range devs {
		got, err := st.GetDevice(ctx, d.b.Device)
		if err != nil {
			t.Fatal(err)
		}
		l := last[i]
		if got.LastRSeq < l.rseq {
			t.Errorf("%s: stored rseq %d below acked %d", d.b.Device, got.LastRSeq, l.rseq)
		}
		if got.AnchorN < l.n || (got.AnchorN == l.n && l.n > 0 && !bytes.Equal(got.AnchorHead, l.head)) {
			t.Errorf("%s: anchor %d went back from acked %d", d.b.Device, got.AnchorN, l.n)
		}
		evs, err := st.ListEvents(ctx, storePage(d.b.Device))
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(evs)) != got.AnchorN {
			t.Errorf("%s: %d entries stored for anchor %d", d.b.Device, len(evs), got.AnchorN)
		}
		if l.n > 0 {
			h, err := st.EventHead(ctx, d.b.Device, 1, l.n)
			if err != nil || !bytes.Equal(h, l.head) {
				t.Errorf("%s: acked head of entry %d not stored: %v", d.b.Device, l.n, err)
			}
		}
	}
	st.Close()

	// Restart: every device carries on (resending entries whose ack was lost).
	p2 := startServerProc(t, bin, data)
	for i, d := range devs {
		d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
		body, code, err := post(p2.base, d.report(nil))
		if err != nil || code != 200 {
			t.Fatalf("device %d after restart: %v %d %s", i, err, code, body)
		}
		a := d.accept(body)
		if n, _, _ := d.w.State(); a.Anchor.N != n {
			t.Fatalf("device %d: anchor %d, log at %d", i, a.Anchor.N, n)
		}
	}
}

func storePage(dev string) store.Page { return store.Page{Dev: dev, Limit: 1000} }
