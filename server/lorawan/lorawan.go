// Package lorawan is the fleet server's LoRaWAN transport: it subscribes to network
// servers' MQTT integrations (ChirpStack v4, The Things Stack; server.LoRaWAN configures
// each), takes the fieldseal frames (LPWAN profile) out of their uplink events for
// the LPWAN profile (server/lpwan) and enqueues the downlinks it answers with. The network server is
// not trusted: it only names the device (DevEUI, set at provisioning) and carries
// bytes; every frame's MAC under the device's keys decides, so a network server that
// alters, invents, duplicates or drops frames can make a device look silent or behind,
// never verified.
package lorawan

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/lpwan"
	"github.com/fieldseal/fieldseal/store"
)

// chirpstackUp is the part of ChirpStack v4's uplink event (integration.UplinkEvent, JSON)
// fieldseal reads.
type chirpstackUp struct {
	DeviceInfo struct {
		DevEui string `json:"devEui"`
	} `json:"deviceInfo"`
	FPort uint32 `json:"fPort"`
	Data  string `json:"data"` // base64
}

// ttsUp is the part of The Things Stack's uplink message fieldseal reads.
type ttsUp struct {
	EndDeviceIDs struct {
		DeviceID string `json:"device_id"`
		DevEUI   string `json:"dev_eui"`
	} `json:"end_device_ids"`
	UplinkMessage *struct {
		FPort      uint32 `json:"f_port"`
		FRMPayload string `json:"frm_payload"` // base64
	} `json:"uplink_message"`
}

// MaxFRMPayload is the largest application payload of a LoRaWAN uplink (N of the
// Regional Parameters, any region and data rate).
const MaxFRMPayload = 242

// ParseUplink extracts (DevEUI, network-server device id, fPort, frame) from an
// uplink event of the given kind. The network server is not trusted: an event whose DevEUI
// is not 16 hex digits, whose port is not one byte or whose payload is larger than
// LoRaWAN carries is an error, not a frame.
func ParseUplink(kind string, msg []byte) (eui, nsDevice string, fport uint32, frame []byte, err error) {
	defer func() {
		if err == nil {
			err = checkUplink(eui, nsDevice, fport, frame)
		}
		if err != nil {
			eui, nsDevice, fport, frame = "", "", 0, nil
		}
	}()
	switch kind {
	case server.LoRaWANChirpStack:
		var u chirpstackUp
		if err = json.Unmarshal(msg, &u); err != nil {
			return
		}
		eui, nsDevice, fport = strings.ToLower(u.DeviceInfo.DevEui), strings.ToLower(u.DeviceInfo.DevEui), u.FPort
		frame, err = base64.StdEncoding.DecodeString(u.Data)
	case server.LoRaWANTTS:
		var u ttsUp
		if err = json.Unmarshal(msg, &u); err != nil {
			return
		}
		if u.UplinkMessage == nil {
			return "", "", 0, nil, fmt.Errorf("not an uplink message")
		}
		eui, nsDevice, fport = strings.ToLower(u.EndDeviceIDs.DevEUI), u.EndDeviceIDs.DeviceID, u.UplinkMessage.FPort
		frame, err = base64.StdEncoding.DecodeString(u.UplinkMessage.FRMPayload)
	default:
		err = fmt.Errorf("unknown kind %q", kind)
	}
	return
}

// checkUplink names what is wrong with what an uplink event gave.
func checkUplink(eui, nsDevice string, fport uint32, frame []byte) error {
	if b, err := hex.DecodeString(eui); err != nil || len(b) != 8 {
		return fmt.Errorf("DevEUI %q is not 16 hex digits", eui)
	}
	if nsDevice == "" {
		return fmt.Errorf("uplink of DevEUI %s names no device id", eui)
	}
	if fport > 255 {
		return fmt.Errorf("fPort %d is not a LoRaWAN port (0–255)", fport)
	}
	if len(frame) > MaxFRMPayload {
		return fmt.Errorf("%d-byte payload: LoRaWAN carries at most %d", len(frame), MaxFRMPayload)
	}
	return nil
}

// Downlink is the JSON that enqueues frame on the network server.
func Downlink(kind, nsDevice string, fport uint8, frame []byte) []byte {
	data := base64.StdEncoding.EncodeToString(frame)
	var v any
	if kind == server.LoRaWANTTS {
		v = map[string]any{"downlinks": []map[string]any{{"f_port": fport, "frm_payload": data, "priority": "NORMAL"}}}
	} else {
		v = map[string]any{"devEui": nsDevice, "confirmed": false, "fPort": fport, "data": data}
	}
	b, _ := json.Marshal(v)
	return b
}

// Transport is the LoRaWAN transport of one server (a server.Transport named "lorawan"):
// one connection per configured network server.
type Transport struct {
	s     *server.Server
	lp    *lpwan.Assembler
	log   *slog.Logger
	conns []*conn
}

// New is the LoRaWAN transport of s (for Config.LoRaWAN); attach it with s.Attach.
func New(s *server.Server) *Transport { return &Transport{s: s, lp: lpwan.New(s), log: s.Logger()} }

// Name is "lorawan".
func (t *Transport) Name() string { return "lorawan" }

// Addr is "": the transport connects out, it does not listen.
func (t *Transport) Addr() string { return "" }

// Start connects to every configured network server integration; on an error it
// disconnects those it had connected.
func (t *Transport) Start(context.Context) error {
	for _, l := range t.s.Config().LoRaWAN {
		if err := t.connect(l); err != nil {
			t.Shutdown(context.Background())
			return err
		}
	}
	return nil
}

// Shutdown disconnects from the network servers.
func (t *Transport) Shutdown(context.Context) error {
	for _, c := range t.conns {
		c.close()
	}
	t.conns = nil
	return nil
}

type conn struct {
	cfg     server.LoRaWAN
	publish func(topic string, payload []byte) // enqueues a downlink
	close   func()
}

// embeddedBroker is what server/mqttingest offers an integration whose network server
// publishes to the server's own broker (server.LoRaWANEmbedded).
type embeddedBroker interface {
	Embedded() bool // the broker runs in this server
	SubscribeInline(filter string, id int, fn func(payload []byte)) error
	PublishInline(topic string, payload []byte) error
	UnsubscribeInline(filter string, id int)
}

// subIDBase numbers the embedded broker's inline subscriptions of LoRaWAN integrations.
const subIDBase = 7300

// connect subscribes to one network server integration.
func (t *Transport) connect(l server.LoRaWAN) error {
	if err := l.Check(); err != nil {
		return err
	}
	if l.FPort == 0 {
		l.FPort = server.DefaultLoRaWANFPort
	}
	devs := map[string]string{}
	for eui, id := range l.Devices {
		devs[strings.ToLower(eui)] = id
	}
	l.Devices = devs
	id := make([]byte, 6)
	rand.Read(id)
	c := &conn{cfg: l}
	if l.Broker == server.LoRaWANEmbedded {
		if err := t.subscribeEmbedded(c); err != nil {
			return err
		}
		t.conns = append(t.conns, c)
		t.log.Info("LoRaWAN ingest", "kind", l.Kind, "broker", "embedded", "topic", l.UplinkTopic(), "devices", len(l.Devices))
		return nil
	}
	opts := paho.NewClientOptions().AddBroker(l.Broker).SetClientID("fieldseal-lorawan-" + hex.EncodeToString(id)).
		SetUsername(l.Username).SetPassword(l.Password).SetCleanSession(true).SetAutoReconnect(true).
		SetOrderMatters(true). // entry frames before the status that claims them
		SetConnectTimeout(10 * time.Second).SetMaxReconnectInterval(10 * time.Second)
	opts.SetOnConnectHandler(func(cl paho.Client) {
		cl.Subscribe(l.UplinkTopic(), 0, func(_ paho.Client, m paho.Message) { t.uplink(c, m.Payload()) })
	})
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("lorawan %s: connecting to %s: %v", l.Kind, l.Broker, tok.Error())
	}
	c.publish = func(topic string, payload []byte) { cl.Publish(topic, 0, false, payload) }
	c.close = func() { cl.Disconnect(1000) }
	t.conns = append(t.conns, c)
	t.log.Info("LoRaWAN ingest", "kind", l.Kind, "broker", l.Broker, "topic", l.UplinkTopic(), "devices", len(l.Devices))
	return nil
}

// subscribeEmbedded takes c's uplink events from the embedded broker (the server's own
// inline client: handled in the network server's publish, in order) and enqueues its
// downlinks there.
func (t *Transport) subscribeEmbedded(c *conn) error {
	b, ok := t.s.Transport("mqtt").(embeddedBroker)
	if !ok || !b.Embedded() {
		return fmt.Errorf("lorawan %s: broker %q needs the embedded MQTT broker (not --mqtt off, no --mqtt-broker)", c.cfg.Kind, server.LoRaWANEmbedded)
	}
	id := subIDBase + len(t.conns)
	filter := c.cfg.UplinkTopic()
	if err := b.SubscribeInline(filter, id, func(payload []byte) { t.uplink(c, payload) }); err != nil {
		return fmt.Errorf("lorawan %s: subscribing to %s on the embedded broker: %w", c.cfg.Kind, filter, err)
	}
	c.publish = func(topic string, payload []byte) {
		if err := b.PublishInline(topic, payload); err != nil {
			t.log.Warn("lorawan: enqueuing a downlink", "topic", topic, "err", err)
		}
	}
	c.close = func() { b.UnsubscribeInline(filter, id) }
	return nil
}

// uplink handles one uplink event: other ports are ignored, undecodable events (logged at
// debug) and uplinks from DevEUIs no device has are dropped and counted; frames go
// to the LPWAN profile; an answer is enqueued.
func (t *Transport) uplink(c *conn, msg []byte) {
	eui, nsDev, fport, frame, err := ParseUplink(c.cfg.Kind, msg)
	if err != nil {
		t.log.Debug("lorawan: undecodable uplink event", "kind", c.cfg.Kind, "err", err)
		t.s.CountLoRaWANDrop("undecodable")
		return
	}
	if fport != uint32(c.cfg.FPort) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dev, ok := t.device(ctx, c, eui)
	if !ok {
		return
	}
	res, err := t.lp.HandleFrame(ctx, dev, frame)
	if err != nil {
		t.log.Debug("lorawan: frame refused", "dev", dev, "err", err)
		return
	}
	if res.Downlink != nil {
		c.publish(c.cfg.DownlinkTopic(nsDev), Downlink(c.cfg.Kind, nsDev, c.cfg.FPort, res.Downlink))
	}
}

// device is the fieldseal device DevEUI eui names: the one provisioned with it (the
// store, through the server's cache) or the one the integration's TOML [lorawan.devices]
// table maps it to. Both naming different devices is a configuration error: the frame is
// refused rather than credited to either. Dropped uplinks are counted by reason.
func (t *Transport) device(ctx context.Context, c *conn, eui string) (string, bool) {
	fromTOML, inTOML := c.cfg.Devices[eui]
	fromStore, err := t.s.ResolveDevEUI(ctx, eui)
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		t.log.Warn("lorawan: looking up a DevEUI", "dev_eui", eui, "err", err)
		t.s.CountLoRaWANDrop("lookup-failed")
		return "", false
	case err == nil && inTOML && fromTOML != fromStore:
		t.log.Error("lorawan: DevEUI maps to two devices: the frame is refused; remove the [lorawan.devices] entry or re-provision the device",
			"dev_eui", eui, "toml", fromTOML, "provisioned", fromStore)
		t.s.CountLoRaWANDrop("dev-eui-conflict")
		return "", false
	case err == nil:
		return fromStore, true
	case inTOML:
		return fromTOML, true
	}
	t.log.Debug("lorawan: uplink from an unknown DevEUI", "kind", c.cfg.Kind, "dev_eui", eui)
	t.s.CountLoRaWANDrop("unknown-dev-eui")
	return "", false
}
