package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// S1: a replayed report is rejected (rseq not increasing), counted and alerted; an exact
// retransmission of the latest report gets the same ack again.
func TestThreatS1_ReplayRejected(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	d.log(wire.EntryBoot, &wire.BootPayload{BootCount: 1, Result: "ok"})
	r1 := d.report(nil)
	code, _, body := e.postReport(r1)
	if code != 200 {
		t.Fatalf("first report: %d %s", code, body)
	}
	ack1 := d.accept(body)
	r2 := d.report(nil)
	code, _, ack2 := e.postReport(r2)
	if code != 200 {
		t.Fatalf("second report: %d %s", code, ack2)
	}
	d.accept(ack2)
	// exact retransmission of r2: same ack, nothing changes
	before := e.device("meter-1")
	code, _, again := e.postReport(r2)
	if code != 200 || !bytes.Equal(again, ack2) {
		t.Fatalf("retransmission: %d, same ack %v", code, bytes.Equal(again, ack2))
	}
	// replay of r1
	code, hdr, body := e.postReport(r1)
	if code != http.StatusConflict || hdr.Get("Fieldseal-Reject") != "replay" {
		t.Fatalf("replay: status %d reason %q", code, hdr.Get("Fieldseal-Reject"))
	}
	a, err := wire.OpenAck(body, "meter-1", d.b.DownlinkKey)
	if err != nil || a.Reject != "replay" || a.AckedRSeq != 1 {
		t.Fatalf("replay answer %+v %v", a, err)
	}
	after := e.device("meter-1")
	if after.AnchorN != before.AnchorN || after.LastRSeq != before.LastRSeq || after.State != store.StateTrusted {
		t.Fatalf("replay changed the device: %+v", after)
	}
	if !hasAudit(e.audits("meter-1"), "rejection", "replay") {
		t.Fatal("no audit record for the replay")
	}
	if al := e.alerts("meter-1"); len(al) == 0 || al[0].Kind != "replay" {
		t.Fatalf("no replay alert: %+v", al)
	}
	if got := e.metric(`fieldseal_reports_rejected_total{reason="replay"}`); got != "1" {
		t.Fatalf("replay counter %q", got)
	}
	_ = ack1
}

// S2: a report forged without R fails the MAC; only the rejection is recorded.
func TestThreatS2_ForgedReportRejected(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	e.mustSend(d)
	before := e.device("meter-1")
	forged := *d
	forged.b = &wire.Bundle{}
	*forged.b = *d.b
	forged.b.UplinkKey = bytes.Repeat([]byte{0xee}, 32)
	d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
	code, hdr, _ := e.postReport(forged.report(nil))
	if code != http.StatusUnauthorized || hdr.Get("Fieldseal-Reject") != "bad-mac" {
		t.Fatalf("forged: %d %q", code, hdr.Get("Fieldseal-Reject"))
	}
	_, err := e.s.HandleReport(context.Background(), forged.report(func(r *wire.Report) { r.RSeq = 1000 }))
	wantReason(t, err, "bad-mac")
	after := e.device("meter-1")
	if after.Version != before.Version || after.State != before.State || after.AnchorN != before.AnchorN || after.Rejections != 0 {
		t.Fatalf("a forged report changed the device: before %+v after %+v", before, after)
	}
	if !hasAudit(e.audits("meter-1"), "rejection", "bad-mac") {
		t.Fatal("no audit record")
	}
}

// S3: device A cannot report as B: over HTTP the MAC fails; over MQTT the ACL refuses
// B's topics and B's username with A's password.
func TestThreatS3_CrossDeviceRejected(t *testing.T) {
	e := newEnv(t)
	a := e.provision("meter-a", "watermeter")
	b := e.provision("meter-b", "watermeter")
	e.mustSend(b)
	before := e.device("meter-b")
	// A's keys, B's identity
	evil := *a
	evil.b = &wire.Bundle{}
	*evil.b = *a.b
	evil.b.Device = "meter-b"
	_, err := e.s.HandleReport(context.Background(), evil.report(nil))
	wantReason(t, err, "bad-mac")

	passA := wire.MQTTPassword(a.b.UplinkKey)
	if _, err := mqttConnect(t, e.s.MQTTAddr(), "meter-b", passA); err == nil {
		t.Fatal("connected as meter-b with meter-a's password")
	}
	if _, err := mqttConnect(t, e.s.MQTTAddr(), "nobody", passA); err == nil {
		t.Fatal("connected as an unknown device")
	}
	ca, err := mqttConnect(t, e.s.MQTTAddr(), "meter-a", passA)
	if err != nil {
		t.Fatal(err)
	}
	sub := ca.Subscribe(wire.DefaultTopics.Down("meter-b"), 1, nil)
	sub.WaitTimeout(5 * time.Second)
	if st, ok := sub.(interface{ Result() map[string]byte }); ok {
		if code := st.Result()[wire.DefaultTopics.Down("meter-b")]; code < 0x80 {
			t.Fatalf("meter-a subscribed to meter-b's downlink (code %#x)", code)
		}
	}
	// Publishing on B's topic: the broker refuses (MQTT 3.1.1: disconnects the client). The
	// ACL check runs before the broker processes the packet, so once the connection is
	// dropped the refused report can no longer reach the pipeline: wait for that event,
	// not for a while.
	ca.Publish(wire.DefaultTopics.Up("meter-b"), 1, false, a.report(nil))
	deadline := time.Now().Add(5 * time.Second)
	for ca.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("the broker did not refuse a publish on another device's topic")
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := e.device("meter-b")
	if after.Version != before.Version || after.LastRSeq != before.LastRSeq {
		t.Fatal("meter-a's publish on meter-b's topic reached meter-b")
	}
	if after := e.device("meter-a"); after.LastRSeq != 0 {
		t.Fatal("a publish on another device's topic was processed")
	}
}

// S4: a device that goes silent is marked silent after SilentAfter intervals, with an
// alert; when it returns its log must be continuous, and tamper entries written while it
// was silent still count.
func TestThreatS4_SilentDevice(t *testing.T) {
	e := newEnv(t)
	signed, _ := e.manifest("watermeter", 1, "v1", nil)
	if _, err := e.s.RegisterManifest(context.Background(), signed); err != nil {
		t.Fatal(err)
	}
	_, m := e.manifest("watermeter", 1, "v1", nil)
	d := e.provision("meter-1", "watermeter")
	d.man.Root = m.Root
	quiet := e.provision("meter-2", "watermeter")
	quiet.man.Root = m.Root
	e.mustSend(d)
	e.mustSend(quiet)
	e.clock.Add(2 * time.Minute) // interval 60 s, 3 missed → silent after 180 s
	if err := e.s.CheckSilent(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.device("meter-1").State; st != store.StateTrusted {
		t.Fatalf("silent too early: %s", st)
	}
	e.clock.Add(2 * time.Minute)
	if err := e.s.CheckSilent(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"meter-1", "meter-2"} {
		if st := e.device(id).State; st != store.StateSilent {
			t.Fatalf("%s: %s, want silent", id, st)
		}
		if al := e.alerts(id); len(al) == 0 || al[0].Kind != "silent" {
			t.Fatalf("%s: no silent alert", id)
		}
	}
	// meter-1 returns with a continuous log: trusted again, continuity in the audit
	d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
	e.mustSend(d)
	if st := e.device("meter-1").State; st != store.StateTrusted {
		t.Fatalf("returned device: %s", st)
	}
	if !hasAudit(e.audits("meter-1"), "transition", "returned-log-continuous") {
		t.Fatal("no continuity evidence")
	}
	// meter-2 was opened while silent: tampered
	quiet.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceLatch})
	quiet.log(wire.EntryCoverClose, nil)
	e.mustSend(quiet)
	if st := e.device("meter-2"); st.State != store.StateTampered || st.StateReason != "cover-open" {
		t.Fatalf("opened while silent: %s (%s)", st.State, st.StateReason)
	}
}

// S5: an ack forged without T does not open on the device; the real ack does, and its
// receipt verifies under the server key for the anchor it names.
func TestThreatS5_ForgedAckFailsOnDevice(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	d.log(wire.EntryBoot, &wire.BootPayload{BootCount: 1, Result: "ok"})
	d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
	ack, err := e.s.HandleReport(context.Background(), d.report(nil))
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := wire.SealAck(&wire.Ack{Dev: "meter-1", Epoch: 1, AckedRSeq: 1, Anchor: wire.Anchor{N: 2, Head: make([]byte, 32)}}, bytes.Repeat([]byte{1}, 32))
	if _, err := wire.OpenAck(forged, "meter-1", d.b.DownlinkKey); err == nil {
		t.Fatal("forged ack opened under T")
	}
	a := d.accept(ack)
	if a.AckedRSeq != 1 || a.Anchor.N != 2 {
		t.Fatalf("ack %+v", a)
	}
	rc, err := wire.OpenReceipt(a.Receipt, e.s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if rc.N != 2 || !bytes.Equal(rc.Head, a.Anchor.Head) || rc.Dev != "meter-1" {
		t.Fatalf("receipt %+v does not match the anchor", rc)
	}
	if _, err := fschain.VerifyReceipt(a.Receipt, e.s.PublicKey(), "meter-1", 1); err != nil {
		t.Fatal(err)
	}
}

// S6: service and clear tokens are single use: a second service-begin with the same
// token id is a token replay (suspect), and a cover opened under it is tamper.
func TestThreatS6_TokenReplay(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	e.mustSend(d)
	tech, err := e.s.CreateAPIToken(context.Background(), "tom", server.RoleTechnician, "test")
	if err != nil {
		t.Fatal(err)
	}
	var v httpapi.VisitView
	if code := e.api("POST", "/api/v1/devices/meter-1/visits", tech, map[string]any{"work_order": "WO-1", "technician": "tom", "window_s": 600}, &v); code != 201 {
		t.Fatalf("open visit: %d", code)
	}
	if st := e.device("meter-1").State; st != store.StateService {
		t.Fatalf("state %s, want service", st)
	}
	a := e.mustSend(d)
	if len(a.Commands) != 1 {
		t.Fatalf("%d commands in the ack, want the service token", len(a.Commands))
	}
	tok, err := wire.OpenToken(a.Commands[0], "meter-1", d.b.DownlinkKey)
	if err != nil || tok.Action != wire.TokenService || tok.Args.WorkOrder != "WO-1" {
		t.Fatalf("token %+v %v", tok, err)
	}
	// the technician's visit: expected cover events
	d.log(wire.EntryServiceBegin, &wire.ServiceBeginPayload{TokenID: tok.ID, WorkOrder: "WO-1", Technician: "tom"})
	d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
	d.log(wire.EntryCoverClose, nil)
	d.log(wire.EntryServiceEnd, &wire.ServiceEndPayload{SealNumber: "S-991"})
	a = e.mustSend(d)
	if st := e.device("meter-1"); st.State != store.StateTrusted {
		t.Fatalf("after the visit: %s (%s)", st.State, st.StateReason)
	}
	if len(a.Commands) != 0 {
		t.Fatal("a used token is still delivered")
	}
	if code := e.api("POST", "/api/v1/visits/"+v.ID+"/close", tech, map[string]any{"seal_number": "S-991", "result": "meter ok"}, nil); code != 200 {
		t.Fatalf("close visit: %d", code)
	}
	// replay the token
	e.clock.Add(time.Hour)
	d.log(wire.EntryServiceBegin, &wire.ServiceBeginPayload{TokenID: tok.ID, WorkOrder: "WO-1"})
	d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
	e.mustSend(d)
	st := e.device("meter-1")
	if st.State != store.StateTampered {
		t.Fatalf("cover opened under a replayed token: %s (%s)", st.State, st.StateReason)
	}
	if !hasAudit(e.audits("meter-1"), "rejection", "token-replay") {
		t.Fatal("token replay not recorded")
	}
	// clearing: operator closes with an inspection result, a clear token goes out
	if code := e.api("POST", "/api/v1/devices/meter-1/clear", tech, map[string]any{"result": "x"}, nil); code != 403 {
		t.Fatalf("technician cleared tamper: %d", code)
	}
	if code := e.api("POST", "/api/v1/devices/meter-1/clear", e.s.AdminToken(), map[string]any{"result": "seal intact, re-sealed S-992"}, nil); code != 200 {
		t.Fatalf("clear: %d", code)
	}
	a = e.mustSend(d)
	if len(a.Commands) != 1 {
		t.Fatalf("no clear token delivered")
	}
	ct, _ := wire.OpenToken(a.Commands[0], "meter-1", d.b.DownlinkKey)
	d.log(wire.EntryTamperCleared, &wire.TamperClearedPayload{TokenID: ct.ID})
	e.mustSend(d)
	d.log(wire.EntryTamperCleared, &wire.TamperClearedPayload{TokenID: ct.ID})
	e.mustSend(d)
	if st := e.device("meter-1"); st.State != store.StateSuspect || st.StateReason != "token-replay" {
		t.Fatalf("clear token replay: %s (%s)", st.State, st.StateReason)
	}
}

// S7: only vendor-signed manifests of a higher version register; devices must report the
// manifest they should run.
func TestThreatS7_ManifestDowngradeAndForeign(t *testing.T) {
	e := newEnv(t)
	v2, m2 := e.manifest("watermeter", 2, "v2", nil)
	if _, err := e.s.RegisterManifest(context.Background(), v2); err != nil {
		t.Fatal(err)
	}
	admin := e.s.AdminToken()
	v1, _ := e.manifest("watermeter", 1, "v1", nil)
	cases := []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"downgrade", v1, 409, "downgrade"},
		{"same version, other content", func() []byte { b, _ := e.manifest("watermeter", 2, "v2 rebuilt", nil); return b }(), 409, "downgrade"},
		{"foreign key", func() []byte {
			b, _ := e.manifest("watermeter", 3, "v3", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)))
			return b
		}(), 400, "unknown-key"},
		{"bad signature", func() []byte {
			b, _ := e.manifest("watermeter", 3, "v3", nil)
			b = append([]byte(nil), b...)
			b[len(b)-5] ^= 1
			return b
		}(), 400, "bad-signature"},
		{"garbage", []byte("not cose"), 400, "malformed"},
	}
	for _, c := range cases {
		var out map[string]any
		req, _ := http.NewRequest("POST", e.base+"/api/v1/manifests", bytes.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		_ = out
		if resp.StatusCode != c.code || !strings.Contains(buf.String(), `"error":"`+c.want+`"`) {
			t.Errorf("%s: %d %s; want %d %s", c.name, resp.StatusCode, buf.String(), c.code, c.want)
		}
	}
	// The very same signed bytes again are not a downgrade: "already registered", nothing
	// changes (a deploy script run twice).
	req, _ := http.NewRequest("POST", e.base+"/api/v1/manifests", bytes.NewReader(v2))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var again struct {
		Version           uint64 `json:"version"`
		AlreadyRegistered bool   `json:"already_registered"`
	}
	json.NewDecoder(resp.Body).Decode(&again)
	resp.Body.Close()
	if resp.StatusCode != 200 || !again.AlreadyRegistered || again.Version != 2 {
		t.Errorf("the same manifest again: %d %+v; want 200 already_registered", resp.StatusCode, again)
	}
	if ms, _ := e.s.Store().ListManifests(context.Background()); len(ms) != 1 {
		t.Errorf("%d manifests registered after pushing the same one twice", len(ms))
	}
	d := e.provision("meter-1", "watermeter")
	if d.b.ManifestVersion != 2 {
		t.Fatalf("bundle manifest version %d", d.b.ManifestVersion)
	}
	d.man = wire.ManifestRef{Product: "watermeter", Version: 2, Root: m2.Root}
	e.mustSend(d)
	for name, ref := range map[string]wire.ManifestRef{
		"older":   {Product: "watermeter", Version: 1, Root: m2.Root},
		"foreign": {Product: "gasmeter", Version: 2, Root: m2.Root},
		"root":    {Product: "watermeter", Version: 2, Root: make([]byte, 32)},
	} {
		_, err := e.send(d, func(r *wire.Report) { r.Man = ref })
		if server.Reason(err) != "wrong-manifest" {
			t.Errorf("%s manifest: %v", name, err)
		}
	}
}

// S8: garbage on every endpoint is rejected with a reason, memory stays bounded and the
// pipeline keeps serving.
func TestThreatS8_GarbageEverywhere(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	rng := rand.New(rand.NewSource(1))
	deep := bytes.Repeat([]byte{0x81}, 10000) // array of array of ...
	cose := d.report(nil)
	inputs := [][]byte{nil, {}, {0xff}, deep, bytes.Repeat([]byte{0}, wire.MaxMessageSize+1), cose[:len(cose)/2],
		append(append([]byte{}, cose...), 0), wire.MustMarshal(map[string]any{"a": 1})}
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.Intn(300))
		rng.Read(b)
		inputs = append(inputs, b)
	}
	for i, in := range inputs {
		ack, err := e.s.HandleReport(context.Background(), in)
		if err == nil || ack != nil {
			t.Fatalf("input %d accepted", i)
		}
		if server.Reason(err) == "" {
			t.Fatalf("input %d: no reason", i)
		}
	}
	// HTTP ingest and batch
	for _, in := range inputs[:8] {
		code, hdr, _ := e.postReport(in)
		if code < 400 || hdr.Get("Fieldseal-Reject") == "" && code != 413 {
			t.Fatalf("HTTP garbage: %d %q", code, hdr.Get("Fieldseal-Reject"))
		}
	}
	for _, body := range [][]byte{deep, {0x9f}, []byte("junk"), wire.MustMarshal([][]byte{{1, 2}, nil})} {
		resp, err := http.Post(e.base+"/v1/reports:batch", "application/cbor", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 200 {
			t.Fatalf("batch garbage: %d", resp.StatusCode)
		}
	}
	// API garbage with a valid token
	for _, path := range []string{"/api/v1/devices", "/api/v1/manifests", "/api/v1/tokens", "/api/v1/devices/meter-1/visits", "/api/v1/devices/meter-1/clear", "/api/v1/visits/x/close", "/api/v1/alerts/zz/ack"} {
		if code := e.api("POST", path, e.s.AdminToken(), []byte("{{{{"), nil); code < 400 || code >= 500 {
			t.Fatalf("POST %s garbage: %d", path, code)
		}
	}
	// MQTT garbage from an authenticated device
	c, err := mqttConnect(t, e.s.MQTTAddr(), "meter-1", wire.MQTTPassword(d.b.UplinkKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs[:20] {
		c.Publish(wire.DefaultTopics.Up("meter-1"), 1, false, in).WaitTimeout(5 * time.Second)
	}
	// still serving
	d.rseq = 0
	e.mustSend(d)
	if st := e.device("meter-1").State; st != store.StateTrusted {
		t.Fatalf("state after garbage: %s", st)
	}
	if got := e.metric(`fieldseal_reports_rejected_total{reason="malformed"}`); got == "" || got == "0" {
		t.Fatalf("malformed counter %q", got)
	}
}

// S10: every route but /healthz (and device ingest, authenticated by the report MAC)
// needs a token.
func TestThreatS10_UnauthenticatedAccess(t *testing.T) {
	e := newEnv(t)
	for _, rt := range httpapi.New(e.s).Routes() {
		path := strings.NewReplacer("{id}", "x", "{name}", "x").Replace(rt.Path)
		for _, tok := range []string{"", "wrong-token", strings.Repeat("a", 1000)} {
			code := e.api(rt.Method, path, tok, nil, nil)
			if rt.Open {
				continue
			}
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d, want 401", rt.Method, rt.Path, tok[:min(len(tok), 8)], code)
			}
		}
	}
	if code := e.api("GET", "/healthz", "", nil, nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	if code := e.api("GET", "/api/v1/nope", "", nil, nil); code != 401 {
		t.Fatalf("unknown path without token: %d", code)
	}
	if code := e.api("GET", "/nope", e.s.AdminToken(), nil, nil); code != 404 {
		t.Fatalf("unknown path with token: %d", code)
	}
}

// Every FS-chain failure is rejected by name, recorded, and moves the device as the
// state machine says.
func TestChainFailures(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *env, d *device) func(*wire.Report)
		state string
	}{
		{"forged-entry", func(e *env, d *device) func(*wire.Report) {
			d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
			return func(r *wire.Report) { r.Log.Entries[0].Payload = wire.MustMarshal(&wire.CheckOKPayload{Files: 2}) }
		}, store.StateTampered},
		{"bad-seal", func(e *env, d *device) func(*wire.Report) {
			d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
			d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: "irq"})
			// cut the tail entry off and claim the previous head: the seal does not verify
			return func(r *wire.Report) {
				r.Log.Entries = r.Log.Entries[:1]
				r.Log.N = 2
				h := d.w.Segment().Entries
				_ = h
				r.Log.N = 2
				hd, _ := d.w.HeadAt(2)
				r.Log.Head = hd[:]
			}
		}, store.StateTampered},
		{"rollback", func(e *env, d *device) func(*wire.Report) {
			return func(r *wire.Report) { r.Log.N = 0; r.Log.First = 1; r.Log.Entries = nil }
		}, store.StateTampered},
		{"gap", func(e *env, d *device) func(*wire.Report) {
			d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
			d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
			return func(r *wire.Report) { r.Log.Entries = r.Log.Entries[1:]; r.Log.First++ }
		}, store.StateSuspect},
		{"head-mismatch", func(e *env, d *device) func(*wire.Report) {
			d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
			return func(r *wire.Report) { r.Log.Head = make([]byte, 32) }
		}, store.StateSuspect},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.provision("meter-1", "watermeter")
			d.log(wire.EntryBoot, &wire.BootPayload{BootCount: 1, Result: "ok"})
			e.mustSend(d)
			mod := c.setup(e, d)
			before := e.device("meter-1")
			a, err := e.send(d, mod)
			wantReason(t, err, c.name)
			if a == nil || a.Reject != c.name {
				t.Fatalf("device not told: %+v", a)
			}
			after := e.device("meter-1")
			if after.State != c.state || after.AnchorN != before.AnchorN || after.LastRSeq != before.LastRSeq {
				t.Fatalf("after %s: state %s anchor %d rseq %d", c.name, after.State, after.AnchorN, after.LastRSeq)
			}
			if !hasAudit(e.audits("meter-1"), "rejection", c.name) {
				t.Fatal("no rejection record")
			}
		})
	}
}

// A fork: the device resends an already verified entry with different content.
func TestChainFork(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	d.log(wire.EntryBoot, &wire.BootPayload{BootCount: 1, Result: "ok"})
	d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
	seg := d.w.Segment()
	e.mustSend(d)
	d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
	_, err := e.send(d, func(r *wire.Report) {
		old := seg.Entries[1]
		old.Tag = bytes.Repeat([]byte{1}, 16)
		r.Log.First = 2
		r.Log.Entries = append([]wire.Entry{old}, r.Log.Entries...)
	})
	wantReason(t, err, "fork")
	if st := e.device("meter-1").State; st != store.StateTampered {
		t.Fatalf("fork: %s", st)
	}
}

// Tamper entries and code mismatch make a device tampered, with decoded evidence stored
// and listed by the events API; it stays tampered until an operator clears it.
func TestTamperEvidence(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	e.mustSend(d)
	d.log(wire.EntryCheckFail, &wire.CheckFailPayload{Files: 3, Bad: []wire.BadFile{{Path: "app.mpy", Kind: wire.KindModified, Expected: bytes.Repeat([]byte{1}, 8), Seen: bytes.Repeat([]byte{2}, 8)}}})
	e.mustSend(d)
	if st := e.device("meter-1"); st.State != store.StateTampered || st.StateReason != "check-fail" {
		t.Fatalf("%s %s", st.State, st.StateReason)
	}
	// sticky: clean reports do not clear it
	e.mustSend(d)
	if st := e.device("meter-1").State; st != store.StateTampered {
		t.Fatalf("tampered was not sticky: %s", st)
	}
	var out struct{ Events []httpapi.EventView }
	if code := e.api("GET", "/api/v1/devices/meter-1/events?tamper=true", e.s.AdminToken(), nil, &out); code != 200 {
		t.Fatal(code)
	}
	if len(out.Events) != 1 || !strings.Contains(string(out.Events[0].Decoded), "app.mpy") || out.Events[0].Decoded[0] != '{' || out.Events[0].TypeName != "check-fail" {
		t.Fatalf("events %+v", out.Events)
	}
	// code mismatch flag
	d2 := e.provision("meter-2", "watermeter")
	if _, err := e.send(d2, func(r *wire.Report) { r.State |= wire.StateCodeMismatch }); err != nil {
		t.Fatal(err)
	}
	if st := e.device("meter-2"); st.State != store.StateTampered || st.StateReason != "code-mismatch" {
		t.Fatalf("%s %s", st.State, st.StateReason)
	}
	var al struct{ Alerts []server.AlertView }
	e.api("GET", "/api/v1/alerts?unacked=true", e.s.AdminToken(), nil, &al)
	if len(al.Alerts) != 2 {
		t.Fatalf("alerts %+v", al.Alerts)
	}
	if code := e.api("POST", fmt.Sprintf("/api/v1/alerts/%d/ack", al.Alerts[0].ID), e.s.AdminToken(), nil, nil); code != 200 {
		t.Fatalf("ack alert %d", code)
	}
}

// Nonces: a report must echo one of the two latest nonces; the rejection ack tells the
// device the current one.
func TestStaleNonce(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	e.mustSend(d)
	n1 := d.nonce
	e.mustSend(d)
	e.mustSend(d)
	a, err := e.send(d, func(r *wire.Report) { r.Nonce = n1 })
	wantReason(t, err, "stale-nonce")
	if a == nil || len(a.Nonce) == 0 {
		t.Fatal("no nonce in the rejection")
	}
	e.mustSend(d) // resynchronised from the rejection ack
	if _, err := e.send(d, func(r *wire.Report) { r.Epoch = 7 }); server.Reason(err) != "wrong-epoch" {
		t.Fatalf("wrong epoch: %v", err)
	}
}

// Re-provisioning starts a new epoch: the old keys stop working and it is audited.
func TestReprovision(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	e.mustSend(d)
	d2 := e.provision("meter-1", "watermeter")
	if d2.b.Epoch != 2 {
		t.Fatalf("epoch %d", d2.b.Epoch)
	}
	if _, err := e.send(d, nil); server.Reason(err) != "bad-mac" {
		t.Fatalf("old keys: %v", err)
	}
	e.mustSend(d2)
	if !hasAudit(e.audits("meter-1"), "reprovision", "reprovision") {
		t.Fatal("not audited")
	}
	_ = hex.EncodeToString
}

// A newer manifest: a device still on the old one is accepted and sent the new manifest
// as a token; once it runs the new one the token stops; going back is wrong-manifest.
func TestManifestUpgrade(t *testing.T) {
	e := newEnv(t)
	v1, m1 := e.manifest("watermeter", 1, "v1", nil)
	if _, err := e.s.RegisterManifest(context.Background(), v1); err != nil {
		t.Fatal(err)
	}
	d := e.provision("meter-1", "watermeter")
	d.man = wire.ManifestRef{Product: "watermeter", Version: 1, Root: m1.Root}
	e.mustSend(d)
	v2, m2 := e.manifest("watermeter", 2, "v2", nil)
	if _, err := e.s.RegisterManifest(context.Background(), v2); err != nil {
		t.Fatal(err)
	}
	a := e.mustSend(d)
	if len(a.Commands) != 1 {
		t.Fatalf("%d commands, want the manifest token", len(a.Commands))
	}
	tok, err := wire.OpenToken(a.Commands[0], "meter-1", d.b.DownlinkKey)
	if err != nil || tok.Action != wire.TokenManifest || !bytes.Equal(tok.Args.Manifest, v2) {
		t.Fatalf("token %+v %v", tok, err)
	}
	d.log(wire.EntryManifestUpdate, &wire.ManifestUpdatePayload{Old: 1, New: 2})
	d.man = wire.ManifestRef{Product: "watermeter", Version: 2, Root: m2.Root}
	if a := e.mustSend(d); len(a.Commands) != 0 {
		t.Fatal("manifest token still sent after the upgrade")
	}
	d.man = wire.ManifestRef{Product: "watermeter", Version: 1, Root: m1.Root}
	if _, err := e.send(d, nil); server.Reason(err) != "wrong-manifest" {
		t.Fatalf("downgrade after upgrade: %v", err)
	}
}

// S3 (sessions): a device cannot connect under another device's client id.
func TestThreatS3_ClientIDTakeover(t *testing.T) {
	e := newEnv(t)
	a := e.provision("meter-a", "watermeter")
	e.provision("meter-b", "watermeter")
	opts := pahoOptions(e.s.MQTTAddr(), "meter-b", "meter-a", wire.MQTTPassword(a.b.UplinkKey))
	c := newPaho(opts)
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("meter-a connected with meter-b's client id")
	}
}

// A device pinned to a manifest version must run exactly that one.
func TestPinnedManifest(t *testing.T) {
	e := newEnv(t)
	v1, m1 := e.manifest("watermeter", 1, "v1", nil)
	v2, m2 := e.manifest("watermeter", 2, "v2", nil)
	for _, m := range [][]byte{v1, v2} {
		if _, err := e.s.RegisterManifest(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	var b wire.Bundle
	if code := e.api("POST", "/api/v1/devices", e.s.AdminToken(), map[string]any{"device": "pinned", "product": "watermeter", "manifest": 1}, &b); code != 201 {
		t.Fatal(code)
	}
	if b.ManifestVersion != 1 {
		t.Fatalf("bundle version %d", b.ManifestVersion)
	}
	d := e.newDevice(&b)
	d.man = wire.ManifestRef{Product: "watermeter", Version: 1, Root: m1.Root}
	if a := e.mustSend(d); len(a.Commands) != 0 {
		t.Fatal("a pinned device was sent a manifest")
	}
	d.man = wire.ManifestRef{Product: "watermeter", Version: 2, Root: m2.Root}
	if _, err := e.send(d, nil); server.Reason(err) != "wrong-manifest" {
		t.Fatalf("pinned device on another version: %v", err)
	}
	if code := e.api("POST", "/api/v1/devices", e.s.AdminToken(), map[string]any{"device": "p2", "product": "watermeter", "manifest": 9}, nil); code != 400 {
		t.Fatalf("pin to an unknown version: %d", code)
	}
}

// Closing a visit revokes its token if the device never used it: no window opens later.
func TestClosedVisitRevokesToken(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	e.mustSend(d)
	var v httpapi.VisitView
	if code := e.api("POST", "/api/v1/devices/meter-1/visits", e.s.AdminToken(), map[string]any{"work_order": "WO-2"}, &v); code != 201 {
		t.Fatal(code)
	}
	a := e.mustSend(d)
	tok, _ := wire.OpenToken(a.Commands[0], "meter-1", d.b.DownlinkKey)
	if code := e.api("POST", "/api/v1/visits/"+v.ID+"/close", e.s.AdminToken(), map[string]any{"result": "cancelled"}, nil); code != 200 {
		t.Fatal(code)
	}
	if a := e.mustSend(d); len(a.Commands) != 0 {
		t.Fatal("a closed visit's token is still delivered")
	}
	d.log(wire.EntryServiceBegin, &wire.ServiceBeginPayload{TokenID: tok.ID})
	d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
	e.mustSend(d)
	if st := e.device("meter-1").State; st != store.StateTampered {
		t.Fatalf("cover opened under a revoked token: %s", st)
	}
}
