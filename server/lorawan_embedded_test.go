package server_test

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/wire"
)

const nsUser, nsPassword = "chirpstack@lorawan", "a-long-network-server-secret"

func embeddedNS() server.LoRaWAN {
	return server.LoRaWAN{Kind: server.LoRaWANChirpStack, Broker: server.LoRaWANEmbedded, Username: nsUser, Password: nsPassword}
}

// ChirpStack's MQTT integration pointed at the server's embedded broker: the same rounds as
// on Mosquitto (duplicates, lost and reordered fragments, a forged frame), no second broker.
func TestLoRaWANChirpStackOnEmbeddedBroker(t *testing.T) { runRig(t, startNSRig(t, embeddedNS())) }

// The network server signed in to the embedded broker reaches its application's topics and
// nothing else: not a device's uplink or downlink, not another application; a wrong
// password, a client id that is not its own (it could take over a device's session) and a
// device using its name are refused.
func TestThreatS3_LoRaWANNetworkServerConfined(t *testing.T) {
	r := startNSRig(t, embeddedNS())
	addr := r.e.s.MQTTAddr()
	d := r.e.provision("meter-a", "watermeter")
	for _, c := range []struct{ cid, user, pass string }{
		{nsUser, nsUser, "wrong-password-wrong-password"},
		{"meter-a", nsUser, nsPassword},    // a device's client id
		{"meter-a/ns", nsUser, nsPassword}, // a device's client id space
		{nsUser, "meter-a", nsPassword},    // the network server's password under a device's name
		{"x" + nsUser, nsUser, nsPassword}, // a client id that does not start with the username
	} {
		cl := newPaho(pahoOptions(addr, c.cid, c.user, c.pass))
		if tok := cl.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			cl.Disconnect(10)
			t.Errorf("connect as %q (client id %q) accepted", c.user, c.cid)
		}
	}
	topics := wire.DefaultTopics
	for _, f := range []string{topics.Down("meter-a"), topics.Up("meter-a"), "#", "application/+/device/+/event/up",
		r.cfg.TopicPrefix + "application/other/device/+/command/down"} {
		if tok := r.c.Subscribe(f, 0, func(paho.Client, paho.Message) {}); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			if codes := tok.(*paho.SubscribeToken).Result(); codes[f] != 0x80 {
				t.Errorf("network server subscribed to %s (code %#x)", f, codes[f])
			}
		}
	}
	// A report published by the network server on a device's uplink topic goes nowhere: the
	// device's rseq does not move (its first real report is checked to get through below).
	// (From a second connection: the broker drops a client that publishes where it may not.)
	rep := d.report(nil)
	ns2 := newPaho(pahoOptions(addr, nsUser+"/2", nsUser, nsPassword))
	if tok := ns2.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer ns2.Disconnect(10)
	ns2.Publish(topics.Up("meter-a"), 0, false, rep).WaitTimeout(5 * time.Second)
	ns2.Publish(r.cfg.TopicPrefix+"application/other/device/"+r.eui+"/event/up", 0, false, rep).WaitTimeout(5 * time.Second)
	// The broker handles a client's packets in order: once this allowed QoS 1 publish is
	// acknowledged, the two above have been dealt with.
	if tok := ns2.Publish(r.cfg.TopicPrefix+"application/"+r.cfg.Application+"/device/"+r.eui+"/event/status", 1, false, []byte("{}")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("an allowed publish: %v", tok.Error())
	}
	// …while the network server's own uplinks still count: a round goes through.
	frames, _ := r.l.m.Uplink(r.l.now + 900)
	for _, f := range frames {
		r.publish(f, "eui-aa555a0000000101")
	}
	r.waitRSeq(1)
	if d := r.e.device("meter-a"); d.LastRSeq != 0 {
		t.Fatalf("a report the network server put on meter-a's topic was taken (rseq %d)", d.LastRSeq)
	}
	if !strings.HasPrefix(r.cfg.UplinkTopic(), r.cfg.TopicPrefix+"application/") {
		t.Fatal(r.cfg.UplinkTopic())
	}
}

// An integration on the embedded broker is refused at start when it cannot be confined.
func TestLoRaWANEmbeddedConfigRefused(t *testing.T) {
	for _, c := range []server.LoRaWAN{
		{Kind: server.LoRaWANTTS, Broker: server.LoRaWANEmbedded, Application: "a", Username: nsUser, Password: nsPassword},
		{Kind: server.LoRaWANChirpStack, Broker: server.LoRaWANEmbedded, Application: "a", Username: nsUser, Password: "short"},
		{Kind: server.LoRaWANChirpStack, Broker: server.LoRaWANEmbedded, Application: "a", Username: "chirpstack", Password: nsPassword},
	} {
		if err := c.Check(); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
	ok := embeddedNS()
	ok.Application = "a"
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
}
