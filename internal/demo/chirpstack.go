package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/sim"
	"github.com/fieldseal/fieldseal/wire"
)

// The LoRaWAN district: its meters speak the LPWAN profile, and a stand-in for the
// utility's ChirpStack v4 carries their frames as ChirpStack's MQTT integration does, on
// the server's embedded broker or on the broker --lorawan-broker names (Mosquitto). The
// fieldseal server takes them through its real ChirpStack integration, configured as a
// [[lorawan]] table of the server's TOML would configure it, and each meter is provisioned
// with its DevEUI.

// lorawanNS is the network server's sign-in on the embedded broker.
const lorawanNS = "chirpstack@demo"

// nsConns is how many MQTT connections the network server spreads its meters over: the
// embedded broker runs each connection's publishes in order, one after the other, and the
// server takes a status only once it is durably stored, so one connection would make the
// district's meters wait on each other (a real ChirpStack has no such clock to keep).
const nsConns = 4

// roundTimeout bounds how long a meter waits for the server to take its status.
const roundTimeout = 60 * time.Second

// lorawanConfig is the [[lorawan]] table of the demo: ChirpStack, a fresh application id
// (so that two demos on one Mosquitto keep apart); broker "" means the embedded one. Its
// Devices, a DevEUI per LPWAN meter, is the network server's device list: the fieldseal
// server gets the DevEUIs at provisioning.
func lorawanConfig(broker string, ids []string) (server.LoRaWAN, error) {
	l := server.LoRaWAN{Kind: server.LoRaWANChirpStack, Broker: broker, Application: uuid(), FPort: server.DefaultLoRaWANFPort,
		Devices: map[string]string{}}
	if broker == "" {
		l.Broker, l.Username, l.Password = server.LoRaWANEmbedded, lorawanNS, hex.EncodeToString(random(16))
	}
	for i, id := range ids {
		l.Devices[fmt.Sprintf("f1e1d5ea%08x", i+1)] = id
	}
	return l, l.Check()
}

// chirpStack plays ChirpStack v4 for the demo: each meter's frames become uplink events of
// its MQTT integration (application/{app}/device/{devEui}/event/up, JSON with base64
// `data` and `fPort`), and the downlinks the fieldseal server enqueues on
// …/command/down wait for the meter's next uplink, as class A allows.
type chirpStack struct {
	cfg   server.LoRaWAN
	cls   []paho.Client     // nsConns connections; the first also reads the downlinks
	euis  map[string]string // device id → DevEUI
	now   func() time.Time
	taken func(ctx context.Context, dev string, rseq uint32) bool

	mu    sync.Mutex
	down  map[string]chan []byte // DevEUI → downlinks waiting
	fcnt  map[string]uint32
	links int
}

// startChirpStack connects the network server to addr (host:port of the embedded broker,
// or the URL of another); taken says whether the fieldseal server has a device's status.
func startChirpStack(cfg server.LoRaWAN, addr string, now func() time.Time, taken func(context.Context, string, uint32) bool) (*chirpStack, error) {
	ns := &chirpStack{cfg: cfg, euis: map[string]string{}, now: now, taken: taken, down: map[string]chan []byte{}, fcnt: map[string]uint32{}}
	for eui, id := range cfg.Devices {
		ns.euis[id] = eui
		ns.down[eui] = make(chan []byte, 8)
	}
	cid := "chirpstack-demo-" + hex.EncodeToString(random(4))
	if cfg.Broker == server.LoRaWANEmbedded {
		cid = cfg.Username // the embedded broker wants client ids that start with it
	}
	for i := 0; i < nsConns; i++ {
		opts := paho.NewClientOptions().SetCleanSession(true).SetAutoReconnect(true).SetConnectTimeout(10 * time.Second).
			SetClientID(fmt.Sprintf("%s/%d", cid, i))
		if cfg.Broker == server.LoRaWANEmbedded {
			opts.AddBroker("tcp://" + addr).SetUsername(cfg.Username).SetPassword(cfg.Password)
		} else {
			opts.AddBroker(cfg.Broker)
		}
		if i == 0 {
			opts.SetOnConnectHandler(func(cl paho.Client) {
				cl.Subscribe(cfg.DownlinkTopic("+"), 1, func(_ paho.Client, m paho.Message) { ns.enqueue(m.Topic(), m.Payload()) })
			})
		}
		cl := paho.NewClient(opts)
		if tok := cl.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			ns.close()
			return nil, fmt.Errorf("LoRaWAN network server: connecting to %s: %v", strings.TrimPrefix(opts.Servers[0].String(), "tcp://"), tok.Error())
		}
		ns.cls = append(ns.cls, cl)
	}
	return ns, nil
}

func (ns *chirpStack) close() {
	for _, cl := range ns.cls {
		cl.Disconnect(500)
	}
}

// enqueue takes a downlink command ({"devEui", "fPort", "data"}) for the device's next uplink.
func (ns *chirpStack) enqueue(topic string, msg []byte) {
	var q struct {
		DevEui string `json:"devEui"`
		FPort  int    `json:"fPort"`
		Data   string `json:"data"`
	}
	seg := strings.Split(topic, "/")
	if json.Unmarshal(msg, &q) != nil || len(seg) < 3 || seg[len(seg)-3] != q.DevEui || q.FPort != int(ns.cfg.FPort) {
		return
	}
	f, err := base64.StdEncoding.DecodeString(q.Data)
	if err != nil {
		return
	}
	ns.mu.Lock()
	ch := ns.down[q.DevEui]
	ns.mu.Unlock()
	if ch != nil {
		select {
		case ch <- f:
		default: // a full device queue: ChirpStack, too, drops what it cannot deliver
		}
	}
}

// uplinkEvent is ChirpStack v4's uplink event (integration.UplinkEvent) as its MQTT
// integration publishes it in JSON.
func (ns *chirpStack) uplinkEvent(dev, eui string, fcnt uint32, frame []byte) []byte {
	b, _ := json.Marshal(map[string]any{
		"deduplicationId": uuid(), "time": ns.now().UTC().Format(time.RFC3339Nano),
		"deviceInfo": map[string]any{"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "utility",
			"applicationId": ns.cfg.Application, "applicationName": "water meters", "deviceName": dev, "devEui": eui},
		"devAddr": "0" + eui[9:], "adr": true, "dr": 0, "fCnt": fcnt, "fPort": ns.cfg.FPort, "confirmed": false,
		"data":   base64.StdEncoding.EncodeToString(frame),
		"rxInfo": []map[string]any{{"gatewayId": "0016c001ff10a235", "rssi": -112, "snr": -6.5}},
		"txInfo": map[string]any{"frequency": 868100000, "modulation": map[string]any{"lora": map[string]any{"bandwidth": 125000, "spreadingFactor": 12, "codeRate": "CR_4_5"}}},
	})
	return b
}

// dial is sim.Config.LPWANDial: the meter's link through this network server.
func (ns *chirpStack) dial(_ context.Context, b *wire.Bundle) (sim.LPLink, error) {
	eui, ok := ns.euis[b.Device]
	if !ok {
		return nil, fmt.Errorf("LoRaWAN: %s has no DevEUI", b.Device)
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	cl := ns.cls[ns.links%len(ns.cls)] // a device's frames keep to one connection: in order
	ns.links++
	return &nsLink{ns: ns, cl: cl, dev: b.Device, eui: eui}, nil
}

type nsLink struct {
	ns       *chirpStack
	cl       paho.Client
	dev, eui string
}

func (l *nsLink) Close() error { return nil }

// Round publishes the frames as uplink events, then waits until the server has the status:
// a real network server does not wait for its application, the demo's does, so that every
// tick ends with every report taken and the same seed tells the same story. When the
// status asks for an ack, it waits for that downlink; otherwise it watches the device's
// last rseq. Downlinks that come later reach the meter after its next uplink.
func (l *nsLink) Round(ctx context.Context, frames [][]byte, st *wire.LPStatusFrame) ([][]byte, error) {
	ns := l.ns
	topic := strings.Replace(ns.cfg.UplinkTopic(), "+", l.eui, 1)
	for _, f := range frames {
		ns.mu.Lock()
		ns.fcnt[l.eui]++
		fc := ns.fcnt[l.eui]
		ns.mu.Unlock()
		if tok := l.cl.Publish(topic, 0, false, ns.uplinkEvent(l.dev, l.eui, fc, f)); !tok.WaitTimeout(roundTimeout) || tok.Error() != nil {
			return nil, fmt.Errorf("uplink event: %v", tok.Error())
		}
	}
	ns.mu.Lock()
	ch := ns.down[l.eui]
	ns.mu.Unlock()
	var downs [][]byte
	wantAck := st.Ctl&wire.LPAckRequest != 0
	deadline := time.Now().Add(roundTimeout)
	for pause := time.Millisecond; ; pause = min(2*pause, 20*time.Millisecond) {
		select {
		case f := <-ch:
			downs = append(downs, f)
			continue
		default:
		}
		if len(downs) > 0 || (!wantAck && ns.taken(ctx, l.dev, st.RSeq)) {
			return downs, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return downs, errors.New("the server did not take the status in time")
		}
		select {
		case f := <-ch:
			downs = append(downs, f)
		case <-time.After(pause):
		case <-ctx.Done():
		}
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// uuid is a random (version 4) UUID, as ChirpStack names applications.
func uuid() string {
	b := random(16)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
