package mqttingest

import (
	"crypto/hmac"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fieldseal/fieldseal/server"
)

// A LoRaWAN network server may publish to the embedded broker (server.LoRaWANEmbedded):
// here it is admitted and confined to its application's topics, and server/lorawan takes
// its events through the inline subscriptions below.

// embeddedNS is the integration on the embedded broker whose network server signs in as
// user, or nil. It reads the configuration, which never changes after New; asked on every
// connect, ACL check and publish of the embedded broker, it allocates nothing.
func (m *Ingest) embeddedNS(user []byte) *server.LoRaWAN {
	for i := range m.lorawan {
		if l := &m.lorawan[i]; l.Broker == server.LoRaWANEmbedded && l.Username == string(user) {
			return l
		}
	}
	return nil
}

// nsAuthenticate admits a network server with its configured password and a client id
// that starts with its username (ChirpStack: client_id = username), so that it can never
// take over a device's session, nor a device its (devices' ids are their own). No will:
// the broker would publish it unchecked (S11).
func nsAuthenticate(l *server.LoRaWAN, pk packets.Packet) bool {
	cid := pk.Connect.ClientIdentifier
	return !pk.Connect.WillFlag && (cid == l.Username || strings.HasPrefix(cid, l.Username+"/")) &&
		hmac.Equal([]byte(l.Password), pk.Connect.Password)
}

// nsMay says whether the network server may publish to (write) or read topic, a topic or
// a subscription filter: its application's event topics, its command topics.
func nsMay(l *server.LoRaWAN, topic string, write bool) bool {
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

// Embedded says whether the broker runs in this server (started, not off, not external).
func (m *Ingest) Embedded() bool { return m.broker != nil }

// SubscribeInline hands fn the payload of every message published to filter on the
// embedded broker, in the publisher's goroutine and order, under subscription id.
func (m *Ingest) SubscribeInline(filter string, id int, fn func(payload []byte)) error {
	return m.broker.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) { fn(pk.Payload) })
}

// PublishInline publishes on the embedded broker, at QoS 0, not retained.
func (m *Ingest) PublishInline(topic string, payload []byte) error {
	return m.broker.Publish(topic, payload, false, 0)
}

// UnsubscribeInline ends a SubscribeInline.
func (m *Ingest) UnsubscribeInline(filter string, id int) { m.broker.Unsubscribe(filter, id) }
