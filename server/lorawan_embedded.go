package server

import (
	"crypto/hmac"
	"fmt"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fieldseal/fieldseal/wire"
)

// LoRaWANEmbedded as a [[lorawan]] broker: the network server's MQTT integration (ChirpStack
// v4: [integration.mqtt] server = "tcp://fieldseal:1883") publishes to this server's
// embedded broker, signed in with the table's username and password, so no second broker
// is needed. That client is confined to its application's topics: it may publish
// application/{app}/device/+/event/+ and read application/{app}/device/+/command/+, and
// nothing else (devices' topics stay out of its reach, and its topics out of theirs).
const LoRaWANEmbedded = "embedded"

// lorawanSubID numbers the embedded broker's inline subscriptions of LoRaWAN integrations.
const lorawanSubID = 7300

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

// subscribeEmbedded takes c's uplink events from the embedded broker (the server's own
// inline client: handled in the network server's publish, in order) and enqueues its
// downlinks there.
func (s *Server) subscribeEmbedded(c *lorawanConn) error {
	if s.broker == nil {
		return fmt.Errorf("lorawan %s: broker %q needs the embedded MQTT broker (not --mqtt off, no --mqtt-broker)", c.cfg.Kind, LoRaWANEmbedded)
	}
	id := lorawanSubID + len(s.lorawan)
	filter := c.cfg.UplinkTopic()
	if err := s.broker.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		s.lorawanUplink(c, pk.Payload)
	}); err != nil {
		return fmt.Errorf("lorawan %s: subscribing to %s on the embedded broker: %w", c.cfg.Kind, filter, err)
	}
	c.publish = func(topic string, payload []byte) {
		if err := s.broker.Publish(topic, payload, false, 0); err != nil {
			s.log.Warn("lorawan: enqueuing a downlink", "topic", topic, "err", err)
		}
	}
	c.close = func() { s.broker.Unsubscribe(filter, id) }
	return nil
}

// embeddedNS is the integration on the embedded broker whose network server signs in as
// user, or nil. It reads the configuration, which never changes after New; asked on every
// connect, ACL check and publish of the embedded broker, it allocates nothing.
func (s *Server) embeddedNS(user []byte) *LoRaWAN {
	for i := range s.cfg.LoRaWAN {
		if l := &s.cfg.LoRaWAN[i]; l.Broker == LoRaWANEmbedded && l.Username == string(user) {
			return l
		}
	}
	return nil
}

// nsAuthenticate admits a network server with its configured password and a client id
// that starts with its username (ChirpStack: client_id = username), so that it can never
// take over a device's session, nor a device its (devices' ids are their own). No will:
// the broker would publish it unchecked (S11).
func (l *LoRaWAN) nsAuthenticate(pk packets.Packet) bool {
	cid := pk.Connect.ClientIdentifier
	return !pk.Connect.WillFlag && (cid == l.Username || strings.HasPrefix(cid, l.Username+"/")) &&
		hmac.Equal([]byte(l.Password), pk.Connect.Password)
}

// nsMay says whether the network server may publish to (write) or read topic, a topic or
// a subscription filter: its application's event topics, its command topics.
func (l *LoRaWAN) nsMay(topic string, write bool) bool {
	want := "event"
	if !write {
		want = "command"
	}
	rest, ok := strings.CutPrefix(topic, l.TopicPrefix+"application/"+l.Application+"/device/")
	if !ok {
		return false
	}
	seg := strings.Split(rest, "/")
	return len(seg) == 3 && seg[0] != "" && seg[0] != "#" && seg[1] == want && seg[2] != "" && seg[2] != "#"
}
