package server

import (
	"fmt"

	"github.com/fieldseal/fieldseal/wire"
)

// LoRaWANEmbedded as a [[lorawan]] broker: the network server's MQTT integration (ChirpStack
// v4: [integration.mqtt] server = "tcp://fieldseal:1883") publishes to this server's
// embedded broker, signed in with the table's username and password, so no second broker
// is needed. That client is confined to its application's topics: it may publish
// application/{app}/device/+/event/+ and read application/{app}/device/+/command/+, and
// nothing else (devices' topics stay out of its reach, and its topics out of theirs):
// server/mqttingest admits it, server/lorawan subscribes for it.
const LoRaWANEmbedded = "embedded"

// checkEmbedded names what is wrong with an integration on the embedded broker.
func (l *LoRaWAN) checkEmbedded() error {
	if l.Broker != LoRaWANEmbedded {
		return nil
	}
	switch {
	case l.Kind != LoRaWANChirpStack:
		return fmt.Errorf("lorawan %s: broker %q is for ChirpStack, whose MQTT integration publishes to a broker of your choice", l.Kind, LoRaWANEmbedded)
	case l.Username == "" || len(l.Password) < 16:
		return fmt.Errorf("lorawan %s: broker %q needs the username and a password of at least 16 characters the network server signs in with", l.Kind, LoRaWANEmbedded)
	case wire.ValidDeviceID(l.Username):
		// Devices sign in by their id: a name no device can have keeps the two apart.
		return fmt.Errorf("lorawan %s: username %q could be a device id: give one with a character device ids cannot hold, such as chirpstack@lorawan", l.Kind, l.Username)
	}
	return nil
}
