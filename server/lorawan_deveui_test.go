package server_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/storetest"
	"github.com/fieldseal/fieldseal/wire"
)

// newNSRigNoTOML is a network server rig whose server has no [lorawan.devices] entry: the
// DevEUI is the device's only by provisioning.
func newNSRigNoTOML(t *testing.T, kind string) *nsRig {
	addr := testenv.Service(t, "FIELDSEAL_TEST_MQTT", "127.0.0.1:1883", "MQTT broker")
	return startNSRig(t, server.LoRaWAN{Kind: kind, Broker: "tcp://" + addr, Devices: map[string]string{}})
}

// waitMetric waits until the metric (name with labels) reads want.
func (e *env) waitMetric(name, want string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for got := e.metric(name); got != want; got = e.metric(name) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s = %q, want %s", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const unknownEUIDrops = `fieldseal_lorawan_uplinks_dropped_total{reason="unknown-dev-eui"}`

// A meter provisioned over the API with its DevEUI, while the server runs, is ingested
// through the network server with no TOML mapping and no restart. Before that, its
// DevEUI's uplinks (carrying another device's valid frames) are dropped and counted
// without touching any device; a second device with the same DevEUI is refused.
func TestLoRaWANDevEUIProvisioned(t *testing.T) {
	for _, kind := range []string{server.LoRaWANChirpStack, server.LoRaWANTTS} {
		t.Run(kind, func(t *testing.T) {
			r := newNSRigNoTOML(t, kind)
			e, id := r.e, "lora-"+kind
			// an unknown DevEUI: dropped and counted, even with a device's authentic frames
			bystander := e.lpMeter("lora-bystander")
			frames, _ := bystander.m.Uplink(bystander.now + 900)
			for _, f := range frames {
				r.publish(f, "eui-aa555a0000000101")
			}
			e.waitMetric(unknownEUIDrops, strconv.Itoa(len(frames)))
			if d := e.device("lora-bystander"); d.LastRSeq != 0 || d.AnchorN != 0 || d.State != store.StateProvisioned {
				t.Fatalf("an unknown DevEUI's uplink touched a device: %+v", d)
			}
			for _, a := range e.audits("") {
				if a.Kind == "rejection" || a.Kind == "transition" {
					t.Fatalf("an unknown DevEUI's uplink left %s/%s", a.Kind, a.Reason)
				}
			}

			// provisioned over the API, DevEUI in capitals: stored and shown normalised
			tok := e.s.AdminToken()
			var b wire.Bundle
			if code := e.api("POST", "/api/v1/devices", tok, map[string]any{"device": id, "product": "watermeter", "dev_eui": strings.ToUpper(r.eui)}, &b); code != 201 {
				t.Fatalf("provision with dev_eui: %d", code)
			}
			var view struct {
				DevEUI string `json:"dev_eui"`
			}
			if code := e.api("GET", "/api/v1/devices/"+id, tok, nil, &view); code != 200 || view.DevEUI != r.eui {
				t.Fatalf("device view: %d dev_eui %q, want %q", code, view.DevEUI, r.eui)
			}
			// the same DevEUI for another device: refused, nothing created
			if code := e.api("POST", "/api/v1/devices", tok, map[string]any{"device": "lora-dup", "product": "watermeter", "dev_eui": r.eui}, nil); code != 409 {
				t.Fatalf("a duplicate DevEUI: %d, want 409", code)
			}
			if _, err := e.s.Store().GetDevice(context.Background(), "lora-dup"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the refused device exists: %v", err)
			}
			for _, bad := range []string{"70b3d57ed005b8", "70b3d57ed005b89z", "70-b3-d5-7e-d0-05-b8-9a"} {
				if code := e.api("POST", "/api/v1/devices", tok, map[string]any{"device": "lora-bad", "product": "watermeter", "dev_eui": bad}, nil); code != 400 {
					t.Fatalf("DevEUI %q: %d, want 400", bad, code)
				}
			}

			// the meter reports through the network server: no restart, no TOML entry (the
			// unknown DevEUI answer cached above was dropped on provisioning)
			r.l = e.lpMeterOf(&b)
			runRig(t, r)
			if got := e.metric(unknownEUIDrops); got != strconv.Itoa(len(frames)) {
				t.Fatalf("drops after provisioning: %s", got)
			}
		})
	}
}

// The TOML [lorawan.devices] table and a provisioned DevEUI naming different devices: a
// provisioning that would cause it is refused; where it exists anyway (a device given the
// DevEUI on a replica configured otherwise), the frame is refused and counted, and
// neither device is touched.
func TestLoRaWANDevEUIConflictRefused(t *testing.T) {
	r := newNSRig(t, server.LoRaWANChirpStack) // TOML: r.eui = lora-chirpstack
	e := r.e
	if code := e.api("POST", "/api/v1/devices", e.s.AdminToken(), map[string]any{"device": "lora-other", "product": "watermeter", "dev_eui": r.eui}, nil); code != 409 {
		t.Fatalf("provisioning a DevEUI the TOML maps elsewhere: %d, want 409", code)
	}
	other := storetest.NewDevice("lora-other")
	other.DevEUI = r.eui
	if errs := e.s.Store().Commit(context.Background(), []*store.Change{{Device: other, Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	frames, _ := r.l.m.Uplink(r.l.now + 900)
	for _, f := range frames {
		r.publish(f, "eui-aa555a0000000101")
	}
	e.waitMetric(`fieldseal_lorawan_uplinks_dropped_total{reason="dev-eui-conflict"}`, strconv.Itoa(len(frames)))
	for _, id := range []string{r.l.id, "lora-other"} {
		if d := e.device(id); d.LastRSeq != 0 || d.AnchorN != 0 {
			t.Fatalf("%s touched: %+v", id, d)
		}
	}
}

// S3 over LoRaWAN: the (untrusted) network server hands device A's authentic frames in
// under device B's DevEUI. They are verified under B's keys and refused (bad-mac); neither
// device advances.
func TestThreatS3_LoRaWANFramesUnderAnotherDevEUI(t *testing.T) {
	r := newNSRigNoTOML(t, server.LoRaWANChirpStack)
	e := r.e
	const euiB = "70b3d57ed005b8ff"
	ctx := context.Background()
	e.ensureManifest("watermeter")
	bA, err := e.s.Provision(ctx, "lora-a", "watermeter", 0, "test", server.WithDevEUI(r.eui))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Provision(ctx, "lora-b", "watermeter", 0, "test", server.WithDevEUI(euiB)); err != nil {
		t.Fatal(err)
	}
	a := e.lpMeterOf(bA)
	asB := *r
	asB.eui, asB.nsID = euiB, euiB
	frames, _ := a.m.Uplink(a.now + 900)
	for _, f := range frames {
		asB.publish(f, "eui-aa555a0000000101")
	}
	deadline := time.Now().Add(20 * time.Second)
	for !hasAudit(e.audits("lora-b"), "rejection", "bad-mac") {
		if time.Now().After(deadline) {
			t.Fatal("A's frames under B's DevEUI left no bad-mac rejection on B")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range []string{"lora-a", "lora-b"} {
		if d := e.device(id); d.LastRSeq != 0 || d.AnchorN != 0 {
			t.Fatalf("%s advanced: rseq %d anchor %d", id, d.LastRSeq, d.AnchorN)
		}
	}
}
