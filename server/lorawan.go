package server

import "fmt"

// The configuration of the LoRaWAN network servers server/lorawan ingests LPWAN frames from.

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
	// network server signs in to the embedded broker with (LoRaWANEmbedded).
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
	// Devices maps DevEUI (16 hex digits, any case) to the fieldseal device id: the older
	// way, before DevEUIs were set at provisioning (Server.Provision, WithDevEUI), kept for
	// existing deployments. A DevEUI found in neither is dropped; one this table and the
	// devices' DevEUIs map to different devices is refused.
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
		if _, err := ParseDevEUI(eui); err != nil {
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
