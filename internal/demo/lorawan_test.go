package demo_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldseal/fieldseal/internal/demo"
	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/sim"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

const lpMeters = 200 // two districts: d01 on LoRaWAN, d02 on MQTT and HTTP

// runLoRaWAN runs a 200-meter demo whose district d01 reports over LoRaWAN through broker
// ("" for the embedded one) and checks what every run must show: the verdict holds, the
// district's 100 meters reported (they have no other way to the server than the network
// server and the ChirpStack integration), and an attack on one of them was caught.
func runLoRaWAN(t *testing.T, broker string) *demo.Result {
	if testing.Short() {
		t.Skip("the demo runs for 20 s or more")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ids := sim.Config{Meters: lpMeters, LPWANDistrict: 1}.LPWANMeters()
	rseq := map[string]uint64{}
	res, err := demo.Run(ctx, demo.Options{Meters: lpMeters, For: 20 * time.Second, LoRaWANBroker: broker,
		Hold: func(_ *demo.Result, st store.Store) {
			for _, id := range ids {
				if d, err := st.GetDevice(ctx, id); err == nil {
					rseq[id] = d.LastRSeq
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.FalseAlarms != 0 {
		t.Errorf("verdict failed: %d false alarms (%v)", res.FalseAlarms, res.FalseAlarm)
	}
	if res.OverLoRaWAN != 100 || len(ids) != 100 || !strings.Contains(res.LoRaWAN, "district d01") {
		t.Fatalf("%d meters over LoRaWAN, %d expected ids; %q", res.OverLoRaWAN, len(ids), res.LoRaWAN)
	}
	// 96 rounds in the virtual day; the silent meter stops at 70 %, a few others go
	// offline for an hour or so.
	for _, id := range ids {
		if rseq[id] < 40 {
			t.Errorf("LoRaWAN meter %s: the server took %d of its statuses", id, rseq[id])
		}
	}
	caught := 0
	for _, s := range res.Scenarios {
		t.Logf("%s on %s (%s): %s, %s ok=%v", s.Name, s.Device, s.Link, s.Reason, s.State, s.OK)
		if !s.OK {
			t.Errorf("scenario %s failed", s.Name)
		}
		isLP := strings.HasPrefix(s.Device, "d01-m")
		if isLP != (s.Link == "lorawan") {
			t.Errorf("%s on %s: link %s", s.Name, s.Device, s.Link)
		}
		if isLP && s.Expect == "alarm" && s.Detected && s.State == "tampered" {
			caught++
		}
	}
	if caught == 0 {
		t.Error("no tamper attack on a LoRaWAN meter was caught")
	}
	return res
}

// The demo's LoRaWAN district on the server's embedded broker: no service needed.
func TestDemoLoRaWANOnEmbeddedBroker(t *testing.T) {
	res := runLoRaWAN(t, "")
	if !strings.Contains(res.LoRaWAN, "embedded broker") {
		t.Errorf("%q", res.LoRaWAN)
	}
}

// The same through real Mosquitto (--lorawan-broker tcp://127.0.0.1:1883): an observer on
// the broker sees the district's frames as ChirpStack v4 uplink events, from all 100
// DevEUIs, and the server's downlinks enqueued on …/command/down.
func TestDemoLoRaWANThroughMosquitto(t *testing.T) {
	addr := testenv.Service(t, "FIELDSEAL_TEST_MQTT", "127.0.0.1:1883", "MQTT broker")
	type appSeen struct {
		ups, downs, bad int
		euis            map[string]bool
	}
	var mu sync.Mutex
	seen := map[string]*appSeen{} // by ChirpStack application id: other runs may share the broker
	app := func(id string) *appSeen {
		if seen[id] == nil {
			seen[id] = &appSeen{euis: map[string]bool{}}
		}
		return seen[id]
	}
	obs := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("demo-observer-" + time.Now().Format("150405.000000")))
	if tok := obs.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer obs.Disconnect(100)
	up := func(_ paho.Client, m paho.Message) {
		var ev struct {
			DeviceInfo struct{ ApplicationID, DevEui string } `json:"deviceInfo"`
			FPort      int                                    `json:"fPort"`
			Data       string                                 `json:"data"`
		}
		if json.Unmarshal(m.Payload(), &ev) != nil {
			return
		}
		f, err := base64.StdEncoding.DecodeString(ev.Data)
		mu.Lock()
		defer mu.Unlock()
		a := app(ev.DeviceInfo.ApplicationID)
		a.ups++
		a.euis[ev.DeviceInfo.DevEui] = true
		if err != nil || ev.FPort != 73 || len(f) > wire.LPMaxFrame || !strings.HasSuffix(m.Topic(), "/device/"+ev.DeviceInfo.DevEui+"/event/up") {
			a.bad++
		}
	}
	down := func(_ paho.Client, m paho.Message) {
		seg := strings.Split(m.Topic(), "/")
		mu.Lock()
		defer mu.Unlock()
		app(seg[1]).downs++
	}
	for filter, h := range map[string]paho.MessageHandler{"application/+/device/+/event/up": up, "application/+/device/+/command/down": down} {
		if tok := obs.Subscribe(filter, 0, h); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	res := runLoRaWAN(t, "tcp://"+addr)
	if !strings.Contains(res.LoRaWAN, addr) || res.LoRaWANApp == "" {
		t.Errorf("%q (application %q)", res.LoRaWAN, res.LoRaWANApp)
	}
	// QoS 0 end to end: give the observer's last messages a moment, then count.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		a := app(res.LoRaWANApp)
		ups, downs, bad, euis := a.ups, a.downs, a.bad, len(a.euis)
		mu.Unlock()
		if ups >= 100*60 && downs > 0 && euis == 100 || time.Now().After(deadline) {
			t.Logf("on Mosquitto: %d uplink events from %d DevEUIs, %d downlinks", ups, euis, downs)
			if ups < 100*60 || euis != 100 || downs == 0 || bad != 0 {
				t.Errorf("observed %d uplink events (%d malformed) from %d DevEUIs and %d downlinks for application %s", ups, bad, euis, downs, res.LoRaWANApp)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
