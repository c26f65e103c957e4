package server_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
)

// Events the network server garbled (no or a malformed DevEUI, a port beyond one byte, a
// payload larger than LoRaWAN carries, not JSON) are dropped and counted as undecodable,
// not looked up as a DevEUI nobody has, and touch no device.
func TestLoRaWANUndecodableEventsCounted(t *testing.T) {
	r := newNSRigNoTOML(t, server.LoRaWANChirpStack)
	e := r.e
	meter := e.lpMeter("lora-bystander")
	topic := strings.Replace(r.cfg.UplinkTopic(), "+", r.nsID, 1)
	send := func(event string) {
		t.Helper()
		if tok := r.c.Publish(topic, 0, false, event); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	garbled := []string{
		`{"deviceInfo":{},"fPort":73,"data":"AQID"}`,
		`{"deviceInfo":{"devEui":"0102"},"fPort":73,"data":"AQID"}`,
		`{"deviceInfo":{"devEui":"70b3d57ed005b89a"},"fPort":329,"data":"AQID"}`,
		`{"deviceInfo":{"devEui":"70b3d57ed005b89a"},"fPort":73,"data":"` + base64.StdEncoding.EncodeToString(make([]byte, 243)) + `"}`,
		`{"deviceInfo":`,
	}
	for _, ev := range garbled {
		send(ev)
	}
	// A well-formed event from a DevEUI nobody has, sent last: once it is counted, every
	// event before it was handled (the transport takes them in order).
	send(`{"deviceInfo":{"devEui":"70b3d57ed005b89a"},"fPort":73,"data":"AQID"}`)
	e.waitMetric(unknownEUIDrops, "1")
	if got := e.metric(`fieldseal_lorawan_uplinks_dropped_total{reason="undecodable"}`); got != "5" {
		t.Fatalf("undecodable drops: %q, want 5", got)
	}
	if d := e.device(meter.id); d.LastRSeq != 0 || d.AnchorN != 0 || d.State != store.StateProvisioned {
		t.Fatalf("a garbled event touched a device: %+v", d)
	}
}
