package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// LoRaWAN network servers as another ingest adapter: the server subscribes to a network
// server's MQTT integration, takes the fieldseal frames (LPWAN profile) out of its uplink
// events and enqueues the downlinks it answers with. The network server is not trusted: it
// only names the device (DevEUI, mapped here to a fieldseal id) and carries bytes; every
// frame's MAC under the device's keys decides, so a network server that alters, invents,
// duplicates or drops frames can make a device look silent or behind, never verified.

// LoRaWAN kinds.
const (
	LoRaWANChirpStack = "chirpstack" // ChirpStack v4 MQTT integration (JSON)
	LoRaWANTTS        = "tts"        // The Things Stack MQTT server (JSON)
)

// DefaultLoRaWANFPort is the LoRaWAN port fieldseal frames use unless configured.
const DefaultLoRaWANFPort = 73

// LoRaWAN configures one network server integration (server TOML: [[lorawan]]).
type LoRaWAN struct {
	Kind string // LoRaWANChirpStack or LoRaWANTTS
	// Broker is the network server's MQTT integration: tcp://host:1883 or ssl://host:8883,
	// or LoRaWANEmbedded when the network server publishes to this server's own broker.
	Broker string
	// Username and Password sign in to Broker; with LoRaWANEmbedded they are what the
	// network server signs in to the embedded broker with (lorawan_embedded.go).
	Username string
	Password string
	// Application is ChirpStack's application id (UUID) or TTS's application id.
	Application string
	// Tenant is TTS's tenant id (topics v3/{app}@{tenant}/…); empty on TTS open source.
	Tenant string
	// TopicPrefix is put before every topic (ChirpStack deployments that configure one);
	// tests use it to keep their topics apart on a shared broker.
	TopicPrefix string
	// FPort carries fieldseal frames (default DefaultLoRaWANFPort); other ports are ignored.
	FPort uint8
	// Devices maps DevEUI (16 hex digits, any case) to the fieldseal device id, as set at
	// provisioning. Uplinks from other DevEUIs are ignored.
	Devices map[string]string
}

// Check names what is wrong with the configuration (kind, broker, application, DevEUIs).
func (l *LoRaWAN) Check() error {
	if l.Kind != LoRaWANChirpStack && l.Kind != LoRaWANTTS {
		return fmt.Errorf("lorawan: kind %q: must be %q or %q", l.Kind, LoRaWANChirpStack, LoRaWANTTS)
	}
	if l.Broker == "" || l.Application == "" {
		return fmt.Errorf("lorawan %s: broker and application are required", l.Kind)
	}
	if err := l.checkEmbedded(); err != nil {
		return err
	}
	for eui := range l.Devices {
		if b, err := hex.DecodeString(eui); err != nil || len(b) != 8 {
			return fmt.Errorf("lorawan %s: DevEUI %q is not 16 hex digits", l.Kind, eui)
		}
	}
	return nil
}

func (l *LoRaWAN) appPath() string {
	if l.Kind == LoRaWANTTS && l.Tenant != "" {
		return l.Application + "@" + l.Tenant
	}
	return l.Application
}

// UplinkTopic is the subscription for the integration's uplink events.
func (l *LoRaWAN) UplinkTopic() string {
	if l.Kind == LoRaWANTTS {
		return l.TopicPrefix + "v3/" + l.appPath() + "/devices/+/up"
	}
	return l.TopicPrefix + "application/" + l.Application + "/device/+/event/up"
}

// DownlinkTopic is where a downlink for a device is enqueued (TTS: its device id on the
// network server; ChirpStack: its DevEUI, lowercase).
func (l *LoRaWAN) DownlinkTopic(nsDevice string) string {
	if l.Kind == LoRaWANTTS {
		return l.TopicPrefix + "v3/" + l.appPath() + "/devices/" + nsDevice + "/down/push"
	}
	return l.TopicPrefix + "application/" + l.Application + "/device/" + nsDevice + "/command/down"
}

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

// ParseLoRaWANUplink extracts (DevEUI, network-server device id, fPort, frame) from an
// uplink event of the given kind.
func ParseLoRaWANUplink(kind string, msg []byte) (eui, nsDevice string, fport uint32, frame []byte, err error) {
	switch kind {
	case LoRaWANChirpStack:
		var u chirpstackUp
		if err = json.Unmarshal(msg, &u); err != nil {
			return
		}
		eui, nsDevice, fport = strings.ToLower(u.DeviceInfo.DevEui), strings.ToLower(u.DeviceInfo.DevEui), u.FPort
		frame, err = base64.StdEncoding.DecodeString(u.Data)
	case LoRaWANTTS:
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

// LoRaWANDownlink is the JSON that enqueues frame on the network server.
func LoRaWANDownlink(kind, nsDevice string, fport uint8, frame []byte) []byte {
	data := base64.StdEncoding.EncodeToString(frame)
	var v any
	if kind == LoRaWANTTS {
		v = map[string]any{"downlinks": []map[string]any{{"f_port": fport, "frm_payload": data, "priority": "NORMAL"}}}
	} else {
		v = map[string]any{"devEui": nsDevice, "confirmed": false, "fPort": fport, "data": data}
	}
	b, _ := json.Marshal(v)
	return b
}

type lorawanConn struct {
	cfg     LoRaWAN
	publish func(topic string, payload []byte) // enqueues a downlink
	close   func()
}

// startLoRaWAN connects to every configured network server integration.
func (s *Server) startLoRaWAN(ctx context.Context) error {
	for i := range s.cfg.LoRaWAN {
		l := s.cfg.LoRaWAN[i]
		if err := l.Check(); err != nil {
			return err
		}
		if l.FPort == 0 {
			l.FPort = DefaultLoRaWANFPort
		}
		devs := map[string]string{}
		for eui, id := range l.Devices {
			devs[strings.ToLower(eui)] = id
		}
		l.Devices = devs
		id := make([]byte, 6)
		rand.Read(id)
		c := &lorawanConn{cfg: l}
		if l.Broker == LoRaWANEmbedded {
			if err := s.subscribeEmbedded(c); err != nil {
				return err
			}
			s.lorawan = append(s.lorawan, c)
			s.log.Info("LoRaWAN ingest", "kind", l.Kind, "broker", "embedded", "topic", l.UplinkTopic(), "devices", len(l.Devices))
			continue
		}
		opts := paho.NewClientOptions().AddBroker(l.Broker).SetClientID("fieldseal-lorawan-" + hex.EncodeToString(id)).
			SetUsername(l.Username).SetPassword(l.Password).SetCleanSession(true).SetAutoReconnect(true).
			SetOrderMatters(true). // entry frames before the status that claims them
			SetConnectTimeout(10 * time.Second).SetMaxReconnectInterval(10 * time.Second)
		opts.SetOnConnectHandler(func(cl paho.Client) {
			cl.Subscribe(l.UplinkTopic(), 0, func(_ paho.Client, m paho.Message) { s.lorawanUplink(c, m.Payload()) })
		})
		cl := paho.NewClient(opts)
		if tok := cl.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			return fmt.Errorf("lorawan %s: connecting to %s: %v", l.Kind, l.Broker, tok.Error())
		}
		c.publish = func(topic string, payload []byte) { cl.Publish(topic, 0, false, payload) }
		c.close = func() { cl.Disconnect(1000) }
		s.lorawan = append(s.lorawan, c)
		s.log.Info("LoRaWAN ingest", "kind", l.Kind, "broker", l.Broker, "topic", l.UplinkTopic(), "devices", len(l.Devices))
	}
	return nil
}

func (s *Server) stopLoRaWAN() {
	for _, c := range s.lorawan {
		c.close()
	}
}

// lorawanUplink handles one uplink event: unknown devices, other ports and undecodable
// events are ignored (logged at debug); frames go to HandleLPFrame; an answer is enqueued.
func (s *Server) lorawanUplink(c *lorawanConn, msg []byte) {
	eui, nsDev, fport, frame, err := ParseLoRaWANUplink(c.cfg.Kind, msg)
	if err != nil {
		s.log.Debug("lorawan: undecodable uplink event", "kind", c.cfg.Kind, "err", err)
		return
	}
	dev, ok := c.cfg.Devices[eui]
	if !ok || fport != uint32(c.cfg.FPort) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.HandleLPFrame(ctx, dev, frame)
	if err != nil {
		s.log.Debug("lorawan: frame refused", "dev", dev, "err", err)
		return
	}
	if res.Downlink != nil {
		c.publish(c.cfg.DownlinkTopic(nsDev), LoRaWANDownlink(c.cfg.Kind, nsDev, c.cfg.FPort, res.Downlink))
	}
}
