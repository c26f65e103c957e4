package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/memstore"
	"github.com/fieldseal/fieldseal/store/sqlite"
	"github.com/fieldseal/fieldseal/wire"
)

// The authorization matrix: every route × every role (and no token). A role outside the
// route's list gets 403, one inside never gets 401/403.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	e.provision("x", "watermeter")
	tokens := map[string]string{}
	for _, role := range server.Roles {
		tok, err := e.s.CreateAPIToken(context.Background(), "t-"+role, role, "test")
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok
	}
	want := map[string][]string{ // the documented matrix; a change to Routes must change this too
		"GET /metrics":                          server.Roles,
		"GET /api/openapi.json":                 nil, // open: standard tooling fetches it without a token
		"GET /api/v1/whoami":                    server.Roles,
		"GET /api/v1/devices":                   server.Roles,
		"POST /api/v1/devices":                  {"admin"},
		"GET /api/v1/devices/{id}":              server.Roles,
		"GET /api/v1/devices/{id}/events":       server.Roles,
		"POST /api/v1/devices/{id}/visits":      {"operator", "technician", "admin"},
		"POST /api/v1/devices/{id}/clear":       {"operator", "admin"},
		"GET /api/v1/visits":                    server.Roles,
		"POST /api/v1/visits/{id}/close":        {"operator", "technician", "admin"},
		"GET /api/v1/alerts":                    server.Roles,
		"POST /api/v1/alerts/{id}/ack":          {"operator", "admin"},
		"GET /api/v1/audit":                     {"operator", "admin"},
		"GET /api/v1/manifests":                 server.Roles,
		"POST /api/v1/manifests":                {"admin"},
		"GET /api/v1/tokens":                    {"admin"},
		"POST /api/v1/tokens":                   {"admin"},
		"DELETE /api/v1/tokens/{name}":          {"admin"},
		"GET /api/v1/districts":                 server.Roles,
		"GET /api/v1/districts/{id}":            server.Roles,
		"PUT /api/v1/districts/{id}":            {"admin"},
		"POST /api/v1/district-members":         {"admin"},
		"GET /api/v1/districts/{id}/balance":    server.Roles,
		"GET /api/v1/districts/{id}/inspection": server.Roles,
		"GET /healthz":                          nil,
		"POST /v1/reports":                      nil,
		"POST /v1/reports:batch":                nil,
	}
	seen := 0
	for _, rt := range httpapi.New(e.s).Routes() {
		key := rt.Method + " " + rt.Path
		roles, ok := want[key]
		if !ok {
			t.Errorf("route %s is not in the authorization matrix", key)
			continue
		}
		seen++
		if !slices.Equal(roles, rt.Roles) && !(roles == nil && rt.Open) {
			t.Errorf("%s admits %v, matrix says %v", key, rt.Roles, roles)
		}
		path := strings.NewReplacer("{id}", "x", "{name}", "nobody").Replace(rt.Path)
		for _, role := range server.Roles {
			code := e.api(rt.Method, path, tokens[role], []byte("{}"), nil)
			allowed := rt.Open || slices.Contains(rt.Roles, role)
			if allowed && (code == 401 || code == 403) {
				t.Errorf("%s as %s: %d, want admitted", key, role, code)
			}
			if !allowed && code != 403 {
				t.Errorf("%s as %s: %d, want 403", key, role, code)
			}
		}
		if code := e.api(rt.Method, path, "", []byte("{}"), nil); !rt.Open && code != 401 {
			t.Errorf("%s without token: %d, want 401", key, code)
		}
	}
	if seen != len(want) {
		t.Errorf("matrix lists %d routes, server registers %d", len(want), seen)
	}
}

// Every registered route is documented in the OpenAPI document, with its roles.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Paths map[string]map[string]struct {
			Roles []string `json:"x-roles"`
		} `json:"paths"`
	}
	if code := e.api("GET", "/api/openapi.json", e.s.AdminToken(), nil, &doc); code != 200 {
		t.Fatal(code)
	}
	n := 0
	for _, rt := range httpapi.New(e.s).Routes() {
		op, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("%s %s is not documented", rt.Method, rt.Path)
			continue
		}
		n++
		if !rt.Open && !slices.Equal(op.Roles, rt.Roles) {
			t.Errorf("%s %s: documented roles %v, actual %v", rt.Method, rt.Path, op.Roles, rt.Roles)
		}
	}
	total := 0
	for _, ops := range doc.Paths {
		total += len(ops)
	}
	if total != n {
		t.Errorf("the document has %d operations, the server %d routes", total, n)
	}
}

// A device reports over the embedded MQTT broker and gets its ack on its downlink topic.
func TestMQTTIngest(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	if d.b.TopicRoot != "" {
		t.Fatalf("a server on the default root wrote topic_root %q into the bundle", d.b.TopicRoot)
	}
	c, err := mqttConnect(t, e.s.MQTTAddr(), "meter-1", wire.MQTTPassword(d.b.UplinkKey))
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan []byte, 4)
	if tok := c.Subscribe(wire.DefaultTopics.Down("meter-1"), 1, func(_ pahoClient, m pahoMessage) { acks <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	for i := 0; i < 3; i++ {
		d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: uint64(100 * i)})
		if tok := c.Publish(wire.DefaultTopics.Up("meter-1"), 1, false, d.report(nil)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		select {
		case b := <-acks:
			a := d.accept(b)
			if a.Reject != "" || a.AckedRSeq != uint64(i+1) || a.Anchor.N != uint64(i+1) {
				t.Fatalf("ack %+v", a)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no ack on the downlink")
		}
	}
	// The PUBACK came after the commit: the report is stored by now.
	if got := e.device("meter-1"); got.LastRSeq != 3 || got.AnchorN != 3 {
		t.Fatalf("device %+v", got)
	}
}

// The ack reaches whichever connection of the device listens on its downlink: the
// reporting connection itself (sent with the PUBACK), a sibling connection when the
// reporter is not subscribed, and the reporter again when it published at QoS 0 (no PUBACK
// to ride on). Each ack must answer its own report.
func TestMQTTAckDelivery(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	pass := wire.MQTTPassword(d.b.UplinkKey)
	connect := func(suffix string) pahoClient {
		c := newPaho(pahoOptions(e.s.MQTTAddr(), "meter-1/"+suffix, "meter-1", pass))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", suffix, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(100) })
		return c
	}
	subscribe := func(c pahoClient) chan []byte {
		ch := make(chan []byte, 4)
		if tok := c.Subscribe(wire.DefaultTopics.Down("meter-1"), 1, func(_ pahoClient, m pahoMessage) { ch <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		return ch
	}
	expect := func(ch chan []byte, rseq uint64, how string) {
		t.Helper()
		select {
		case b := <-ch:
			if a := d.accept(b); a.Reject != "" || a.AckedRSeq != rseq {
				t.Fatalf("%s: ack %+v, want rseq %d accepted", how, a, rseq)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no ack", how)
		}
	}
	reporter, sibling := connect("reporter"), connect("listener")
	siblingAcks := subscribe(sibling)
	publish := func(c pahoClient, qos byte) {
		t.Helper()
		d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: d.rseq})
		if tok := c.Publish(wire.DefaultTopics.Up("meter-1"), qos, false, d.report(nil)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	publish(reporter, 1)
	expect(siblingAcks, 1, "reporter not subscribed, sibling is")

	sibling.Unsubscribe(wire.DefaultTopics.Down("meter-1")).WaitTimeout(5 * time.Second)
	own := subscribe(reporter)
	publish(reporter, 1)
	expect(own, 2, "reporter subscribed, QoS 1")
	publish(reporter, 0)
	expect(own, 3, "reporter subscribed, QoS 0")
	select {
	case b := <-siblingAcks:
		t.Fatalf("the unsubscribed sibling got an ack (%d bytes)", len(b))
	default:
	}
	if got := e.device("meter-1"); got.LastRSeq != 3 {
		t.Fatalf("device last rseq %d, want 3", got.LastRSeq)
	}
}

// Gateways post batches over HTTP: one ack or reason per report, in order.
func TestHTTPBatch(t *testing.T) {
	e := newEnv(t)
	var reports [][]byte
	var devs []*device
	for i := 0; i < 5; i++ {
		d := e.provision("meter-"+string(rune('a'+i)), "watermeter")
		d.log(wire.EntryBoot, &wire.BootPayload{BootCount: 1, Result: "ok"})
		devs = append(devs, d)
		reports = append(reports, d.report(nil))
	}
	reports = append(reports, []byte("garbage"))
	body := wire.MustMarshal(reports)
	resp, err := http.Post(e.base+"/v1/reports:batch", "application/cbor", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out []httpapi.BatchResult
	if err := wire.Unmarshal(data, &out); err != nil || len(out) != 6 {
		t.Fatalf("batch answer %v %d", err, len(out))
	}
	for i, d := range devs {
		if out[i].Reject != "" {
			t.Fatalf("report %d: %s", i, out[i].Reject)
		}
		d.accept(out[i].Ack)
	}
	if out[5].Reject != "malformed" || out[5].Ack != nil {
		t.Fatalf("garbage: %+v", out[5])
	}
}

// Alerts are delivered to webhooks as JSON, retried when the hook fails.
func TestWebhookRetried(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	got := make(chan map[string]any, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(500)
			return
		}
		var v map[string]any
		json.NewDecoder(r.Body).Decode(&v)
		got <- v
	}))
	defer hook.Close()
	e := newEnv(t, func(c *server.Config) { c.Webhooks = []string{hook.URL} })
	d := e.provision("meter-1", "watermeter")
	d.log(wire.EntryMagnet, &wire.MagnetPayload{Strength: 9})
	e.mustSend(d)
	select {
	case v := <-got:
		al, _ := v["alert"].(map[string]any)
		if al["kind"] != "tampered" || al["dev"] != "meter-1" || al["reason"] != "magnet" {
			t.Fatalf("webhook body %v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("webhook not delivered")
	}
}

// First start creates the server key and the admin token (0600); a second start reuses them.
func TestFirstStartCreatesKeyAndToken(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, func(c *server.Config) { c.DataDir = dir })
	fi, err := os.Stat(filepath.Join(dir, "admin.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v %v", err, fi)
	}
	if fi, err := os.Stat(filepath.Join(dir, "server.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server.key: %v", err)
	}
	tok, pub := e.s.AdminToken(), e.s.PublicKey()
	e.s.Shutdown(context.Background())
	s2, err := serve.New(server.Config{Store: openStore(t, dir), DataDir: dir, HTTPAddr: "off", MQTTAddr: "off", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(context.Background())
	if s2.AdminToken() != tok || !bytes.Equal(s2.PublicKey(), pub) {
		t.Fatal("second start made new secrets")
	}
}

// A port in use is a clear error naming the port and the flag.
func TestPortInUse(t *testing.T) {
	e := newEnv(t)
	_, err := serve.New(server.Config{Store: memstore.New(), DataDir: t.TempDir(), HTTPAddr: e.s.HTTPAddr(), MQTTAddr: "off", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := serve.New(server.Config{Store: memstore.New(), DataDir: t.TempDir(), HTTPAddr: e.s.HTTPAddr(), MQTTAddr: "off", Logger: quietLogger()})
	err = s2.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), e.s.HTTPAddr()) || !strings.Contains(err.Error(), "--http") {
		t.Fatalf("HTTP port in use: %v", err)
	}
	httpAddr := testenv.FreeAddr(t)
	s3, _ := serve.New(server.Config{Store: memstore.New(), DataDir: t.TempDir(), HTTPAddr: httpAddr, MQTTAddr: e.s.MQTTAddr(), Logger: quietLogger()})
	err = s3.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), e.s.MQTTAddr()) || !strings.Contains(err.Error(), "--mqtt") {
		t.Fatalf("MQTT port in use: %v", err)
	}
	// the failed start released its HTTP port
	s4, _ := serve.New(server.Config{Store: memstore.New(), DataDir: t.TempDir(), HTTPAddr: httpAddr, MQTTAddr: "off", Logger: quietLogger()})
	if err := s4.Start(context.Background()); err != nil {
		t.Fatalf("HTTP port still held after a failed start: %v", err)
	}
	s4.Shutdown(context.Background())
}

// Provisioning over the API returns the bundle once; the API never shows secrets.
func TestProvisionAPI(t *testing.T) {
	e := newEnv(t)
	e.ensureManifest("watermeter")
	var b wire.Bundle
	if code := e.api("POST", "/api/v1/devices", e.s.AdminToken(), map[string]any{"device": "meter-9", "product": "watermeter"}, &b); code != 201 {
		t.Fatal(code)
	}
	if err := b.Check(); err != nil || b.Epoch != 1 || !strings.HasPrefix(b.HTTP, "http://") || !strings.HasPrefix(b.MQTT, "mqtt://") {
		t.Fatalf("bundle %+v %v", b, err)
	}
	req, _ := http.NewRequest("GET", e.base+"/api/v1/devices/meter-9", nil)
	req.Header.Set("Authorization", "Bearer "+e.s.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, secret := range [][]byte{b.ChainKey, b.UplinkKey, b.DownlinkKey} {
		if bytes.Contains(body, []byte(hexs(secret))) {
			t.Fatal("device API shows a secret")
		}
	}
	var list struct{ Devices []httpapi.DeviceView }
	e.api("GET", "/api/v1/devices?state=provisioned", e.s.AdminToken(), nil, &list)
	if len(list.Devices) != 1 {
		t.Fatalf("list %+v", list)
	}
	if code := e.api("GET", "/api/v1/devices?state=bogus", e.s.AdminToken(), nil, nil); code != 400 {
		t.Fatalf("bogus state: %d", code)
	}
	if code := e.api("POST", "/api/v1/devices", e.s.AdminToken(), map[string]any{"device": "bad/id", "product": "p"}, nil); code != 400 {
		t.Fatalf("bad id: %d", code)
	}
}

// Shutdown drains: reports in flight finish (committed and acked) before the store closes,
// and every ack handed out is durable — read back from the database file after the
// server is gone; a report refused for the shutdown changed nothing.
func TestGracefulShutdownDrains(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, func(c *server.Config) { c.DataDir = dir })
	var devs []*device
	for i := 0; i < 50; i++ {
		devs = append(devs, e.provision("m-"+string(rune('A'+i%26))+string(rune('a'+i/26)), "watermeter"))
	}
	var wg sync.WaitGroup
	results := make([]error, len(devs))
	acks := make([][]byte, len(devs))
	firstAck := make(chan struct{})
	var once sync.Once
	for i, d := range devs {
		data := d.report(nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			acks[i], results[i] = e.s.HandleReport(context.Background(), data)
			if results[i] == nil {
				once.Do(func() { close(firstAck) })
			}
		}()
	}
	<-firstAck // reports are flowing: shut down in the middle of them
	if err := e.s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	e.s.Store().Close()
	st, err := sqlite.Open(filepath.Join(dir, "fieldseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acked := 0
	for i, err := range results {
		got, gerr := st.GetDevice(context.Background(), devs[i].b.Device)
		if gerr != nil {
			t.Fatal(gerr)
		}
		switch {
		case err == nil && acks[i] == nil:
			t.Fatalf("report %d: no ack and no error", i)
		case err == nil:
			acked++
			a := devs[i].accept(acks[i])
			if got.LastRSeq != 1 || got.AnchorN != a.Anchor.N || !bytes.Equal(got.LastAck, acks[i]) {
				t.Fatalf("report %d was acked but is not durable: last rseq %d, anchor %d (ack says %d)", i, got.LastRSeq, got.AnchorN, a.Anchor.N)
			}
		case server.Reason(err) != "unavailable":
			t.Fatalf("report %d: %v", i, err)
		case got.LastRSeq != 0:
			t.Fatalf("report %d refused at shutdown, yet stored (rseq %d)", i, got.LastRSeq)
		}
	}
	if acked == 0 {
		t.Fatal("no report acked")
	}
	t.Logf("%d of %d reports acked before the shutdown, all durable", acked, len(devs))
}

func hexs(b []byte) string {
	const h = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, h[c>>4], h[c&15])
	}
	return string(out)
}

// --mqtt-broker: the server consumes from an external broker (Mosquitto in tests) and
// answers on the device's downlink topic there.
func TestExternalBroker(t *testing.T) {
	addr := testenv.Service(t, "FIELDSEAL_TEST_MQTT", "127.0.0.1:1883", "MQTT broker")
	e := newEnv(t, func(c *server.Config) { c.MQTTAddr, c.MQTTBroker = "off", "tcp://"+addr })
	if e.s.MQTTAddr() != "tcp://"+addr {
		t.Fatalf("MQTTAddr %q", e.s.MQTTAddr())
	}
	id := fmt.Sprintf("ext-%d", time.Now().UnixNano())
	d := e.provision(id, "watermeter")
	c, err := mqttConnect(t, addr, id, wire.MQTTPassword(d.b.UplinkKey))
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan []byte, 4)
	if tok := c.Subscribe(wire.DefaultTopics.Down(id), 1, func(_ pahoClient, m pahoMessage) { acks <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	time.Sleep(200 * time.Millisecond) // the server's subscription is in place before Start returns; ours now too
	for i := 0; i < 3; i++ {
		d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: uint64(i)})
		c.Publish(wire.DefaultTopics.Up(id), 1, false, d.report(nil))
		select {
		case b := <-acks:
			if a := d.accept(b); a.AckedRSeq != uint64(i+1) || a.Reject != "" {
				t.Fatalf("ack %+v", a)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no ack through the external broker")
		}
	}
}

// Two replicas share one external broker's uplink through a shared subscription.
func TestExternalBrokerShared(t *testing.T) {
	addr := testenv.Service(t, "FIELDSEAL_TEST_MQTT", "127.0.0.1:1883", "MQTT broker")
	e := newEnv(t, func(c *server.Config) {
		c.MQTTAddr, c.MQTTBroker, c.MQTTShareGroup = "off", "tcp://"+addr, fmt.Sprintf("t%d", time.Now().UnixNano())
	})
	id := fmt.Sprintf("shr-%d", time.Now().UnixNano())
	d := e.provision(id, "watermeter")
	c, err := mqttConnect(t, addr, id, wire.MQTTPassword(d.b.UplinkKey))
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan []byte, 4)
	c.Subscribe(wire.DefaultTopics.Down(id), 1, func(_ pahoClient, m pahoMessage) { acks <- m.Payload() }).WaitTimeout(5 * time.Second)
	time.Sleep(200 * time.Millisecond)
	c.Publish(wire.DefaultTopics.Up(id), 1, false, d.report(nil))
	select {
	case b := <-acks:
		d.accept(b)
	case <-time.After(10 * time.Second):
		t.Fatal("no ack through the shared subscription")
	}
}

// A device cache smaller than the fleet drops idle devices and reloads them: nothing is
// lost and nothing is verified twice.
func TestSmallDeviceCache(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.DeviceCache = 4 })
	var devs []*device
	for i := 0; i < 30; i++ {
		devs = append(devs, e.provision(fmt.Sprintf("c-%d", i), "watermeter"))
	}
	for round := 0; round < 3; round++ {
		for _, d := range devs {
			d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: uint64(round)})
			e.mustSend(d)
		}
	}
	for _, d := range devs {
		if got := e.device(d.b.Device); got.LastRSeq != 3 || got.AnchorN != 3 || got.State != store.StateTrusted {
			t.Fatalf("%s: %+v", d.b.Device, got)
		}
	}
}

// A flood of garbage is counted; only a bounded number of audit records is written.
func TestGarbageFloodBounded(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	for i := 0; i < 2000; i++ {
		e.s.HandleReport(context.Background(), []byte{0xff, byte(i)})
	}
	// 200 records of burst plus 200 per second, whatever the machine's speed
	bound := 200 + int(200*time.Since(start).Seconds()) + 10
	audits, _ := e.s.Store().ListAudit(context.Background(), store.Page{Limit: 1000})
	if len(audits) > bound || len(audits) >= 1000 {
		t.Fatalf("%d audit records for 2000 garbage reports (bound %d)", len(audits), bound)
	}
	if got := e.metric("fieldseal_rejections_unrecorded_total"); got == "" || got == "0" {
		t.Fatalf("unrecorded counter %q", got)
	}
}

// The silence check runs on its own timer.
func TestSilenceTimer(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.SilentCheck = 20 * time.Millisecond })
	d := e.provision("meter-1", "watermeter")
	e.mustSend(d)
	e.clock.Add(time.Hour) // default interval 900 s × 3
	deadline := time.Now().Add(5 * time.Second)
	for e.device("meter-1").State != store.StateSilent {
		if time.Now().After(deadline) {
			t.Fatal("the timer did not mark the device silent")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A device clock that runs backwards within one boot is an anomaly: suspect, then a clean
// report brings the device back.
func TestClockAnomaly(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	e.mustSend(d)
	if _, err := e.send(d, func(r *wire.Report) { r.Time -= 7200 }); err != nil {
		t.Fatal(err)
	}
	if st := e.device("meter-1"); st.State != store.StateSuspect || st.StateReason != "clock" {
		t.Fatalf("%s %s", st.State, st.StateReason)
	}
	e.clock.Add(3 * time.Hour)
	e.mustSend(d)
	if st := e.device("meter-1").State; st != store.StateTrusted {
		t.Fatalf("after a clean report: %s", st)
	}
}

// Two fleets on one broker: a server under its own topic root takes reports there and
// answers there.
func TestMQTTTopicRoot(t *testing.T) {
	root := wire.Topics{Root: "utility-a/meters"}
	e := newEnv(t, func(c *server.Config) { c.TopicRoot = root.Root })
	d := e.provision("meter-1", "watermeter")
	if d.b.TopicRoot != root.Root {
		t.Fatalf("the bundle names topic root %q, want %q (devices would publish where nobody listens)", d.b.TopicRoot, root.Root)
	}
	c, err := mqttConnect(t, e.s.MQTTAddr(), "meter-1", wire.MQTTPassword(d.b.UplinkKey))
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan []byte, 1)
	if tok := c.Subscribe(root.Down("meter-1"), 1, func(_ pahoClient, m pahoMessage) { acks <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := c.Publish(root.Up("meter-1"), 1, false, d.report(nil)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case b := <-acks:
		if a := d.accept(b); a.Reject != "" || a.AckedRSeq != 1 {
			t.Fatalf("ack %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ack under the topic root")
	}
	if _, err := serve.New(server.Config{Store: memstore.New(), DataDir: t.TempDir(), TopicRoot: "a/+/b"}); err == nil || !strings.Contains(err.Error(), "topic root") {
		t.Fatalf("a wildcard root: %v", err)
	}
}
