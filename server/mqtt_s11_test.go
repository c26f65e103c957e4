package server_test

import (
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/server/mqttingest"
	"github.com/fieldseal/fieldseal/wire"
)

// S11: the embedded broker publishes a will on the client's behalf without any ACL check,
// and keeps retained messages for every later subscriber. A device may therefore set
// neither: a connection with a will (on another device's downlink, or anywhere) is
// refused, and a retained publish is dropped unprocessed, so nothing is retained.
func TestThreatS11_BrokerRefusesWillsAndRetain(t *testing.T) {
	e := newEnv(t)
	a := e.provision("meter-a", "watermeter")
	e.provision("meter-b", "watermeter")
	passA := wire.MQTTPassword(a.b.UplinkKey)
	for _, will := range []string{wire.DefaultTopics.Down("meter-b"), wire.DefaultTopics.Up("meter-a")} {
		o := pahoOptions(e.s.MQTTAddr(), "meter-a", "meter-a", passA).SetWill(will, "forged ack", 1, true)
		c := newPaho(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10*time.Second) || tok.Error() == nil {
			c.Disconnect(0)
			t.Fatalf("connected with a will on %s", will)
		}
	}

	// A retained report is dropped: the next, ordinary report (with a lower rseq) is then
	// accepted, which it would not be had the retained one been processed first.
	c, err := mqttConnect(t, e.s.MQTTAddr(), "meter-a", passA)
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan pahoMessage, 4)
	if tok := c.Subscribe(wire.DefaultTopics.Down("meter-a"), 1, func(_ pahoClient, m pahoMessage) { acks <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	r1, r2 := a.report(nil), a.report(nil) // rseq 1 and 2
	c.Publish(wire.DefaultTopics.Up("meter-a"), 1, true, r2)
	c.Publish(wire.DefaultTopics.Up("meter-a"), 1, false, r1)
	select {
	case m := <-acks:
		ack, err := wire.OpenAck(m.Payload(), "meter-a", a.b.DownlinkKey)
		if err != nil || ack.AckedRSeq != 1 || ack.Reject != "" {
			t.Fatalf("ack %+v %v: the retained report was processed", ack, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ack for the ordinary report")
	}
	if n := e.s.Transport("mqtt").(*mqttingest.Ingest).Retained(); n != 0 {
		t.Fatalf("the broker retains %d message(s)", n)
	}
}
