package server_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/wire"
)

// nsRig plays a LoRaWAN network server on a real Mosquitto: it publishes uplink events in
// the network server's JSON and reads the downlinks the fieldseal server enqueues.
type nsRig struct {
	t    *testing.T
	e    *env
	cfg  server.LoRaWAN
	c    paho.Client
	down chan []byte
	l    *lpMeter
	eui  string
	nsID string
}

func newNSRig(t *testing.T, kind string) *nsRig {
	addr := testenv.Service(t, "FIELDSEAL_TEST_MQTT", "127.0.0.1:1883", "MQTT broker")
	return startNSRig(t, server.LoRaWAN{Kind: kind, Broker: "tcp://" + addr})
}

// startNSRig starts a server with the integration cfg (kind, broker and credentials set)
// and the network server's client: on cfg.Broker, or on the server's own broker when that
// is server.LoRaWANEmbedded. The meter's DevEUI is mapped in the TOML-equivalent
// cfg.Devices and the meter provisioned, unless cfg.Devices is given (possibly empty): then
// the test provisions the meter (r.l) itself.
func startNSRig(t *testing.T, cfg server.LoRaWAN) *nsRig {
	uniq := fmt.Sprintf("fs%d", time.Now().UnixNano())
	eui := "70b3d57ed005b89a"
	kind := cfg.Kind
	cfg.Application, cfg.Tenant, cfg.TopicPrefix = "app-"+uniq, "ttn", uniq+"/"
	provision := cfg.Devices == nil
	if provision {
		cfg.Devices = map[string]string{strings.ToUpper(eui): "lora-" + kind}
	}
	e := newEnv(t, func(c *server.Config) { c.LoRaWAN = []server.LoRaWAN{cfg} })
	cfg.FPort = server.DefaultLoRaWANFPort
	r := &nsRig{t: t, e: e, cfg: cfg, down: make(chan []byte, 16), eui: eui, nsID: eui}
	if kind == server.LoRaWANTTS {
		r.nsID = "meter-17" // TTS names devices by its own id; downlinks go to that
	}
	addr, cid := strings.TrimPrefix(cfg.Broker, "tcp://"), "ns-"+uniq
	if cfg.Broker == server.LoRaWANEmbedded {
		addr, cid = e.s.MQTTAddr(), cfg.Username
	}
	r.c = newPaho(pahoOptions(addr, cid, cfg.Username, cfg.Password))
	if tok := r.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { r.c.Disconnect(100) })
	if tok := r.c.Subscribe(cfg.DownlinkTopic(r.nsID), 0, func(_ paho.Client, m paho.Message) { r.down <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if provision {
		r.l = e.lpMeter("lora-" + kind)
	}
	return r
}

// event is an uplink event carrying frame, in the network server's documented JSON.
func (r *nsRig) event(frame []byte, gateway string) []byte {
	data := base64.StdEncoding.EncodeToString(frame)
	var v any
	if r.cfg.Kind == server.LoRaWANTTS {
		v = map[string]any{
			"end_device_ids": map[string]any{"device_id": r.nsID, "application_ids": map[string]any{"application_id": r.cfg.Application},
				"dev_eui": strings.ToUpper(r.eui), "join_eui": "0000000000000001", "dev_addr": "260BABCD"},
			"correlation_ids": []string{"as:up:01HX6YGQ7E0V83YRZ7K4S5J4ZN"}, "received_at": time.Now().UTC().Format(time.RFC3339Nano),
			"uplink_message": map[string]any{"f_port": server.DefaultLoRaWANFPort, "f_cnt": 12, "frm_payload": data,
				"rx_metadata": []map[string]any{{"gateway_ids": map[string]any{"gateway_id": gateway}, "rssi": -90, "snr": 4.5}},
				"settings":    map[string]any{"data_rate": map[string]any{"lora": map[string]any{"bandwidth": 125000, "spreading_factor": 12}}}},
		}
	} else {
		v = map[string]any{
			"deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d", "time": time.Now().UTC().Format(time.RFC3339Nano),
			"deviceInfo": map[string]any{"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "utility",
				"applicationId": r.cfg.Application, "applicationName": "meters", "deviceName": "meter-17", "devEui": r.eui},
			"devAddr": "00189440", "adr": true, "dr": 0, "fCnt": 12, "fPort": server.DefaultLoRaWANFPort, "confirmed": false, "data": data,
			"rxInfo": []map[string]any{{"gatewayId": gateway, "rssi": -90, "snr": 4.5}},
			"txInfo": map[string]any{"frequency": 868100000, "modulation": map[string]any{"lora": map[string]any{"bandwidth": 125000, "spreadingFactor": 12, "codeRate": "CR_4_5"}}},
		}
	}
	b, _ := json.Marshal(v)
	return b
}

func (r *nsRig) publish(frame []byte, gateway string) {
	r.t.Helper()
	topic := strings.Replace(r.cfg.UplinkTopic(), "+", r.nsID, 1)
	if tok := r.c.Publish(topic, 0, false, r.event(frame, gateway)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		r.t.Fatal(tok.Error())
	}
}

// frame reads the fieldseal frame out of a downlink the server enqueued.
func (r *nsRig) frame(msg []byte) []byte {
	r.t.Helper()
	var v struct {
		DevEui    string `json:"devEui"`
		FPort     int    `json:"fPort"`
		Data      string `json:"data"`
		Downlinks []struct {
			FPort      int    `json:"f_port"`
			FRMPayload string `json:"frm_payload"`
		} `json:"downlinks"`
	}
	if err := json.Unmarshal(msg, &v); err != nil {
		r.t.Fatalf("downlink %s: %v", msg, err)
	}
	data, port := v.Data, v.FPort
	if r.cfg.Kind == server.LoRaWANTTS {
		if len(v.Downlinks) != 1 {
			r.t.Fatalf("downlink %s", msg)
		}
		data, port = v.Downlinks[0].FRMPayload, v.Downlinks[0].FPort
	} else if v.DevEui != r.eui {
		r.t.Fatalf("downlink for %q", v.DevEui)
	}
	f, err := base64.StdEncoding.DecodeString(data)
	if err != nil || port != server.DefaultLoRaWANFPort || len(f) > wire.LPMaxFrame {
		r.t.Fatalf("downlink %s: %v", msg, err)
	}
	return f
}

// waitRSeq waits until the server has accepted the status with rseq.
func (r *nsRig) waitRSeq(rseq uint64) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.e.device(r.l.id).LastRSeq < rseq {
		if time.Now().After(deadline) {
			r.t.Fatalf("status %d never accepted (last %d)", rseq, r.e.device(r.l.id).LastRSeq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *nsRig) awaitDownlink() []byte {
	r.t.Helper()
	select {
	case m := <-r.down:
		return r.frame(m)
	case <-time.After(10 * time.Second):
		r.t.Fatal("no downlink enqueued")
	}
	return nil
}

// runNS drives one meter through the network server: a routine round, a tamper round with
// every frame duplicated by two gateways, a round with a lost and reordered fragment that
// the server asks to be resent, and a forged frame the MAC refuses.
func runNS(t *testing.T, kind string) { runRig(t, newNSRig(t, kind)) }

func runRig(t *testing.T, r *nsRig) {
	l := r.l
	frames, _ := l.m.Uplink(l.now + 900)
	for _, f := range frames {
		r.publish(f, "eui-aa555a0000000101")
	}
	r.waitRSeq(1)
	if d := r.e.device(l.id); d.State != "trusted" || d.AnchorN != 1 {
		t.Fatalf("after the first round: %s anchor %d", d.State, d.AnchorN)
	}
	// tamper: the meter asks for an ack; two gateways deliver every frame
	l.d.Cover(l.now+1000, true, wire.CoverSourceIRQ)
	frames, _ = l.m.Uplink(l.now + 1800)
	for _, f := range frames {
		r.publish(f, "eui-aa555a0000000101")
		r.publish(f, "eui-aa555a0000000202")
	}
	if err := l.m.Downlink(r.awaitDownlink(), l.now+1801); err != nil {
		t.Fatal(err)
	}
	if d := r.e.device(l.id); d.State != "tampered" || d.AnchorN != 2 || l.m.Pending() != 0 {
		t.Fatalf("after the tamper round: %s anchor %d pending %d", d.State, d.AnchorN, l.m.Pending())
	}
	// a check-fail across several frames: the second fragment is lost, the rest reordered
	var bad []wire.Finding
	for _, p := range []string{"app/a.mpy", "app/b.mpy", "app/calibration.json"} {
		bad = append(bad, wire.Finding{Path: p, Kind: wire.KindModified})
	}
	l.d.Check(l.now+2000, 9, bad, nil, nil)
	frames, _ = l.m.Uplink(l.now + 2700)
	if len(frames) < 3 {
		t.Fatalf("%d frames", len(frames))
	}
	entries := frames[:len(frames)-1]
	for i := len(entries) - 1; i >= 0; i-- {
		if i != 1 {
			r.publish(entries[i], "eui-aa555a0000000101")
		}
	}
	r.publish(frames[len(frames)-1], "eui-aa555a0000000101")
	resend := r.awaitDownlink()
	if err := l.m.Downlink(resend, l.now+2701); err != nil {
		t.Fatal(err)
	}
	// the network server forges a frame: refused by its MAC
	forged := append([]byte(nil), frames[len(frames)-1]...)
	forged[5] ^= 0xff
	r.publish(forged, "eui-aa555a0000000101")
	frames, _ = l.m.Uplink(l.now + 3600)
	for _, f := range frames {
		r.publish(f, "eui-aa555a0000000101")
	}
	if err := l.m.Downlink(r.awaitDownlink(), l.now+3601); err != nil { // a tamper entry again: ack asked
		t.Fatal(err)
	}
	if d := r.e.device(l.id); d.AnchorN != 3 || l.m.Pending() != 0 {
		t.Fatalf("after the resend: anchor %d pending %d", d.AnchorN, l.m.Pending())
	}
	found := false
	for _, a := range r.e.audits(l.id) {
		found = found || a.Reason == "bad-mac"
	}
	if !found {
		t.Fatal("the forged frame left no bad-mac rejection")
	}
}

// ChirpStack v4's MQTT integration: application/{app}/device/{devEui}/event/up in, JSON
// with base64 data and fPort; downlinks enqueued on …/command/down.
func TestLoRaWANChirpStackIngest(t *testing.T) { runNS(t, server.LoRaWANChirpStack) }

// The Things Stack: v3/{app}@{tenant}/devices/{dev}/up in, …/down/push out.
func TestLoRaWANTheThingsStackIngest(t *testing.T) { runNS(t, server.LoRaWANTTS) }
